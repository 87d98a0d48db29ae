"""epsanet: EPSANet and its attention-ResNet peers, official-compatible, for PyTorch, timm and torch.hub.

``import epsanet`` registers every model with timm, so ``timm.create_model("epsanet50_small")``
works, and with torchvision's model listing (``torchvision.models.get_model("epsanet50_small")``);
the same models are built torchvision-style by ``epsanet.epsanet50_small(weights=None)``.
"""
__version__ = "0.1.0"

from ._utils.errors import EpsanetError, InvalidArgumentError, PathExistsError, PathNotFoundError, PathPermissionError
from .hub import HubError, TransplantReport, convert_checkpoint, from_pretrained, publish, save_pretrained, transplant
from .layers import create_attention, list_attention
from .models import *  # noqa: F401,F403
from .models import __all__ as _models_all
from .models._torchvision import register_with_torchvision
from .tools import explain  # epsanet.explain.psa_scale_weights; the grad-cam package is imported only for CAMs
from .tools.export import deploy
from .tools.stats import count_macs, count_params
from .weights.catalogue import list_pretrained
from .weights.checkpoint import CheckpointMismatchError, load_checkpoint

register_with_torchvision()

__all__ = [
    "__version__", "EpsanetError", "InvalidArgumentError", "PathNotFoundError", "PathExistsError",
    "PathPermissionError", "list_pretrained", "CheckpointMismatchError", "load_checkpoint", "from_pretrained",
    "save_pretrained", "publish", "HubError", "convert_checkpoint", "transplant", "TransplantReport",
    "create_attention", "list_attention", "count_macs", "count_params", "deploy", "explain", *_models_all,
]
