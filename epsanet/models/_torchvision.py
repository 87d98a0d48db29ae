"""The zoo in torchvision's model listing: after ``import epsanet``,
``torchvision.models.get_model("epsanet50_small", weights=...)``, ``list_models()`` and
``get_model_weights("se_resnet50")`` include the zoo's builders and their weights enums.

torchvision documents listing and retrieving its own models and keeps the registration function
private (``torchvision.models._api.register_model``; see pytorch/vision#7142): the zoo adds its
builders through it, and a name torchvision already has is left to torchvision.
"""
from torchvision.models import _api as torchvision_api

from . import get_model_builder, list_models

__all__ = ["register_with_torchvision"]


def register_with_torchvision() -> None:
    """Add every zoo builder that torchvision does not know yet to its registry (idempotent)."""
    registry = torchvision_api.BUILTIN_MODELS
    for name in list_models():
        if name not in registry:
            torchvision_api.register_model(name)(get_model_builder(name))
