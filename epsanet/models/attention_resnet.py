"""ResNets with a channel attention module after every bottleneck's ``bn3``.

The plain ResNet baselines come from torchvision / timm themselves; names here never collide
with timm's (``seresnet50`` is timm's, ``se_resnet50`` ours, with the same weight layout).
"""
from typing import Any, Optional

from timm.models import generate_default_cfgs

from ..catalogue import timm_default_cfgs, weights_enum
from ._registry import register_model
from .resnet import ResNet, _resnet

__all__ = [
    "SE_ResNet50_Weights", "SE_ResNet101_Weights", "ECA_ResNet50_Weights", "ECA_ResNet101_Weights",
    "se_resnet50", "se_resnet101", "eca_resnet50", "eca_resnet101",
]

default_cfgs = generate_default_cfgs(timm_default_cfgs())

SE_ResNet50_Weights = weights_enum("SE_ResNet50_Weights", "se_resnet50", __name__)
SE_ResNet101_Weights = weights_enum("SE_ResNet101_Weights", "se_resnet101", __name__)
ECA_ResNet50_Weights = weights_enum("ECA_ResNet50_Weights", "eca_resnet50", __name__)
ECA_ResNet101_Weights = weights_enum("ECA_ResNet101_Weights", "eca_resnet101", __name__)


def _eca_kernels(*sizes: int) -> list:
    return [dict(kernel_size=k) for k in sizes]


@register_model
def se_resnet50(*, weights: Optional[SE_ResNet50_Weights] = None, progress: bool = True,
                **kwargs: Any) -> ResNet:
    """SE-ResNet-50 from `Squeeze-and-Excitation Networks <https://arxiv.org/abs/1709.01507>`__.

    ResNet-50 with an SE module (reduction 16) after every bottleneck's ``bn3``: 28,088,024
    parameters. Same state_dict as timm's ``seresnet50``, whose ImageNet weights it loads.

    Args:
        weights: pretrained weights, e.g. ``SE_ResNet50_Weights.IMAGENET1K_A1`` or ``"a1_in1k"``.
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = SE_ResNet50_Weights.verify(weights)
    return _resnet("se_resnet50", dict(layers=(3, 4, 6, 3), attn_layer="se"), weights, progress, **kwargs)


@register_model
def se_resnet101(*, weights: Optional[SE_ResNet101_Weights] = None, progress: bool = True,
                 **kwargs: Any) -> ResNet:
    """SE-ResNet-101 from `Squeeze-and-Excitation Networks <https://arxiv.org/abs/1709.01507>`__.

    ResNet-101 with an SE module (reduction 16) after every bottleneck's ``bn3``: 49,326,872
    parameters.

    Args:
        weights: pretrained weights.
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = SE_ResNet101_Weights.verify(weights)
    return _resnet("se_resnet101", dict(layers=(3, 4, 23, 3), attn_layer="se"), weights, progress, **kwargs)


@register_model
def eca_resnet50(*, weights: Optional[ECA_ResNet50_Weights] = None, progress: bool = True,
                 **kwargs: Any) -> ResNet:
    """ECA-ResNet-50 from `ECA-Net: Efficient Channel Attention for Deep Convolutional Neural
    Networks <https://arxiv.org/abs/1910.03151>`__.

    ResNet-50 with an ECA module after every bottleneck's ``bn3``, kernel sizes 3/5/5/7 per stage
    as in the released ``eca_resnet50_k3557`` checkpoint: 25,557,112 parameters.

    Args:
        weights: pretrained weights.
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = ECA_ResNet50_Weights.verify(weights)
    model_args = dict(layers=(3, 4, 6, 3), attn_layer="eca", attn_kwargs=_eca_kernels(3, 5, 5, 7))
    return _resnet("eca_resnet50", model_args, weights, progress, **kwargs)


@register_model
def eca_resnet101(*, weights: Optional[ECA_ResNet101_Weights] = None, progress: bool = True,
                  **kwargs: Any) -> ResNet:
    """ECA-ResNet-101 from `ECA-Net: Efficient Channel Attention for Deep Convolutional Neural
    Networks <https://arxiv.org/abs/1910.03151>`__.

    ResNet-101 with an ECA module after every bottleneck's ``bn3``, kernel sizes 3/3/5/7 per
    stage as in the released ``eca_resnet101_k3357`` checkpoint: 44,549,317 parameters.

    Args:
        weights: pretrained weights.
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = ECA_ResNet101_Weights.verify(weights)
    model_args = dict(layers=(3, 4, 23, 3), attn_layer="eca", attn_kwargs=_eca_kernels(3, 3, 5, 7))
    return _resnet("eca_resnet101", model_args, weights, progress, **kwargs)
