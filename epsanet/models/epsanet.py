"""EPSANet builders: ResNets whose 3x3 convolutions are Pyramid Squeeze Attention modules.

Zhang et al., "EPSANet: An Efficient Pyramid Squeeze Attention Block on Convolutional Neural
Network", ACCV 2022 (arXiv:2105.14447), official code https://github.com/murufeng/EPSANet (MIT).
The official code implements the Small models only, as ``epsanet50`` and ``epsanet101``; those
names are kept as aliases.
"""
from typing import Any, Optional

from timm.models import generate_default_cfgs

from ..weights.catalogue import timm_default_cfgs
from ._api import weights_enum
from ._registry import register_model
from .resnet import ResNet, _resnet

__all__ = [
    "EPSANet50_Small_Weights", "EPSANet101_Small_Weights", "EPSANet50_Large_Weights", "EPSANet101_Large_Weights",
    "epsanet50_small", "epsanet101_small", "epsanet50_large", "epsanet101_large", "epsanet50", "epsanet101",
]

default_cfgs = generate_default_cfgs(timm_default_cfgs())

EPSANet50_Small_Weights = weights_enum("EPSANet50_Small_Weights", "epsanet50_small", __name__)
EPSANet101_Small_Weights = weights_enum("EPSANet101_Small_Weights", "epsanet101_small", __name__)
EPSANet50_Large_Weights = weights_enum("EPSANet50_Large_Weights", "epsanet50_large", __name__)
EPSANet101_Large_Weights = weights_enum("EPSANet101_Large_Weights", "epsanet101_large", __name__)

_SMALL = dict(psa_groups=(1, 4, 8, 16), psa_kernel_sizes=(3, 5, 7, 9))
# Paper Table 1: 32 groups on every branch and doubled bottleneck widths, i.e. base width 128
# as in torchvision's wide_resnet50_2.
_LARGE = dict(psa_groups=(32, 32, 32, 32), psa_kernel_sizes=(3, 5, 7, 9), base_width=128)


@register_model
def epsanet50_small(*, weights: Optional[EPSANet50_Small_Weights] = None, progress: bool = True,
                    **kwargs: Any) -> ResNet:
    """EPSANet-50 (Small) from `EPSANet: An Efficient Pyramid Squeeze Attention Block on
    Convolutional Neural Network <https://arxiv.org/abs/2105.14447>`__.

    ResNet-50 whose 3x3 convolutions are PSA modules with branch kernels 3/5/7/9 and groups
    1/4/8/16: 22,561,715 parameters, 3.60 GMACs at 224 px. Loads the official code's checkpoints
    (see :func:`epsanet.load_checkpoint`).

    Args:
        weights: pretrained weights; none exist yet for EPSANet (the README shows how to train
            and publish them).
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet` (``num_classes``, ``in_chans``,
            ``drop_rate``, ``drop_path_rate``, ``global_pool``, ``output_stride``, ...).
    """
    weights = EPSANet50_Small_Weights.verify(weights)
    return _resnet("epsanet50_small", dict(layers=(3, 4, 6, 3), **_SMALL), weights, progress, **kwargs)


@register_model
def epsanet101_small(*, weights: Optional[EPSANet101_Small_Weights] = None, progress: bool = True,
                     **kwargs: Any) -> ResNet:
    """EPSANet-101 (Small) from `EPSANet: An Efficient Pyramid Squeeze Attention Block on
    Convolutional Neural Network <https://arxiv.org/abs/2105.14447>`__.

    ResNet-101 whose 3x3 convolutions are PSA modules with branch kernels 3/5/7/9 and groups
    1/4/8/16: 38,900,279 parameters, 6.79 GMACs at 224 px. Loads the official code's checkpoints.

    Args:
        weights: pretrained weights; none exist yet for EPSANet.
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = EPSANet101_Small_Weights.verify(weights)
    return _resnet("epsanet101_small", dict(layers=(3, 4, 23, 3), **_SMALL), weights, progress, **kwargs)


@register_model
def epsanet50_large(*, weights: Optional[EPSANet50_Large_Weights] = None, progress: bool = True,
                    **kwargs: Any) -> ResNet:
    """EPSANet-50 (Large) from `EPSANet: An Efficient Pyramid Squeeze Attention Block on
    Convolutional Neural Network <https://arxiv.org/abs/2105.14447>`__, as in the paper's Table 1.

    PSA branch kernels 3/5/7/9 with 32 groups on every branch, and bottleneck widths doubled
    (128/256/512/1024): 30,100,094 parameters, 5.05 GMACs at 224 px. The paper lists 27.90M
    parameters for this model, but no configuration it documents gives that count; the official
    code does not implement the Large models.

    Args:
        weights: pretrained weights; none exist yet for EPSANet.
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = EPSANet50_Large_Weights.verify(weights)
    return _resnet("epsanet50_large", dict(layers=(3, 4, 6, 3), **_LARGE), weights, progress, **kwargs)


@register_model
def epsanet101_large(*, weights: Optional[EPSANet101_Large_Weights] = None, progress: bool = True,
                     **kwargs: Any) -> ResNet:
    """EPSANet-101 (Large) from `EPSANet: An Efficient Pyramid Squeeze Attention Block on
    Convolutional Neural Network <https://arxiv.org/abs/2105.14447>`__, as in the paper's Table 1.

    PSA branch kernels 3/5/7/9 with 32 groups on every branch, and bottleneck widths doubled:
    53,742,470 parameters, 9.67 GMACs at 224 px. The paper lists 49.59M parameters for this
    model, but no configuration it documents gives that count.

    Args:
        weights: pretrained weights; none exist yet for EPSANet.
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = EPSANet101_Large_Weights.verify(weights)
    return _resnet("epsanet101_large", dict(layers=(3, 4, 23, 3), **_LARGE), weights, progress, **kwargs)


@register_model
def epsanet50(*, weights: Optional[EPSANet50_Small_Weights] = None, progress: bool = True,
              **kwargs: Any) -> ResNet:
    """EPSANet-50 under the official code's name: the same model as :func:`epsanet50_small`."""
    weights = EPSANet50_Small_Weights.verify(weights)
    return _resnet("epsanet50", dict(layers=(3, 4, 6, 3), **_SMALL), weights, progress, **kwargs)


@register_model
def epsanet101(*, weights: Optional[EPSANet101_Small_Weights] = None, progress: bool = True,
               **kwargs: Any) -> ResNet:
    """EPSANet-101 under the official code's name: the same model as :func:`epsanet101_small`."""
    weights = EPSANet101_Small_Weights.verify(weights)
    return _resnet("epsanet101", dict(layers=(3, 4, 23, 3), **_SMALL), weights, progress, **kwargs)
