"""The zoo's models: one ResNet family, builders per architecture, all registered with timm."""
from ._registry import create_model, get_model_builder, list_models, register_model
from .attention_resnet import *  # noqa: F401,F403
from .attention_resnet import __all__ as _attention_resnet_all
from .epsanet import *  # noqa: F401,F403
from .epsanet import __all__ as _epsanet_all
from .resnet import Bottleneck, ResNet

__all__ = [
    "create_model", "get_model_builder", "list_models", "register_model", "Bottleneck", "ResNet",
    *_epsanet_all, *_attention_resnet_all,
]
