"""ResNets with an attention module after every bottleneck's ``bn3``, or between stages (BAM).

The plain ResNet baselines come from torchvision / timm themselves; names here never collide
with timm's (``seresnet50`` is timm's, ``se_resnet50`` ours, with the same weight layout).
Official CBAM and BAM checkpoints load through :func:`epsanet.load_checkpoint`, which renames
their keys (:func:`epsanet.weights.checkpoint.from_official_layout`); official SA and SGE checkpoints
have the zoo's keys already.
"""
from typing import Any, Optional

from timm.models import generate_default_cfgs

from ..weights.catalogue import timm_default_cfgs
from ._api import weights_enum
from ._registry import register_model
from .resnet import ResNet, _resnet

__all__ = [
    "SE_ResNet50_Weights", "SE_ResNet101_Weights", "ECA_ResNet50_Weights", "ECA_ResNet101_Weights",
    "se_resnet50", "se_resnet101", "eca_resnet50", "eca_resnet101",
    "CBAM_ResNet50_Weights", "CBAM_ResNet101_Weights", "BAM_ResNet50_Weights", "BAM_ResNet101_Weights",
    "SA_ResNet50_Weights", "SA_ResNet101_Weights", "Polarized_ResNet50_Weights", "Polarized_Seq_ResNet50_Weights",
    "SGE_ResNet50_Weights", "SGE_ResNet101_Weights", "Coord_ResNet50_Weights", "GAM_ResNet50_Weights",
    "EMA_ResNet50_Weights",
    "cbam_resnet50", "cbam_resnet101", "bam_resnet50", "bam_resnet101", "sa_resnet50", "sa_resnet101",
    "polarized_resnet50", "polarized_seq_resnet50", "sge_resnet50", "sge_resnet101", "coord_resnet50",
    "gam_resnet50", "ema_resnet50",
]

default_cfgs = generate_default_cfgs(timm_default_cfgs())

SE_ResNet50_Weights = weights_enum("SE_ResNet50_Weights", "se_resnet50", __name__)
SE_ResNet101_Weights = weights_enum("SE_ResNet101_Weights", "se_resnet101", __name__)
ECA_ResNet50_Weights = weights_enum("ECA_ResNet50_Weights", "eca_resnet50", __name__)
ECA_ResNet101_Weights = weights_enum("ECA_ResNet101_Weights", "eca_resnet101", __name__)
CBAM_ResNet50_Weights = weights_enum("CBAM_ResNet50_Weights", "cbam_resnet50", __name__)
CBAM_ResNet101_Weights = weights_enum("CBAM_ResNet101_Weights", "cbam_resnet101", __name__)
BAM_ResNet50_Weights = weights_enum("BAM_ResNet50_Weights", "bam_resnet50", __name__)
BAM_ResNet101_Weights = weights_enum("BAM_ResNet101_Weights", "bam_resnet101", __name__)
SA_ResNet50_Weights = weights_enum("SA_ResNet50_Weights", "sa_resnet50", __name__)
SA_ResNet101_Weights = weights_enum("SA_ResNet101_Weights", "sa_resnet101", __name__)
Polarized_ResNet50_Weights = weights_enum("Polarized_ResNet50_Weights", "polarized_resnet50", __name__)
Polarized_Seq_ResNet50_Weights = weights_enum("Polarized_Seq_ResNet50_Weights", "polarized_seq_resnet50", __name__)
SGE_ResNet50_Weights = weights_enum("SGE_ResNet50_Weights", "sge_resnet50", __name__)
SGE_ResNet101_Weights = weights_enum("SGE_ResNet101_Weights", "sge_resnet101", __name__)
Coord_ResNet50_Weights = weights_enum("Coord_ResNet50_Weights", "coord_resnet50", __name__)
GAM_ResNet50_Weights = weights_enum("GAM_ResNet50_Weights", "gam_resnet50", __name__)
EMA_ResNet50_Weights = weights_enum("EMA_ResNet50_Weights", "ema_resnet50", __name__)

_RESNET50 = (3, 4, 6, 3)
_RESNET101 = (3, 4, 23, 3)


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


@register_model
def cbam_resnet50(*, weights: Optional[CBAM_ResNet50_Weights] = None, progress: bool = True,
                  **kwargs: Any) -> ResNet:
    """CBAM-ResNet-50 from `CBAM: Convolutional Block Attention Module
    <https://arxiv.org/abs/1807.06521>`__.

    ResNet-50 with a CBAM module (channel MLP reduction 16, 7x7 spatial gate) after every
    bottleneck's ``bn3``, as the paper and the official code place it: 28,089,624 parameters.
    Loads the official checkpoints (see :func:`epsanet.load_checkpoint`).

    Args:
        weights: ``"official_in1k"`` (the official checkpoint: fetched by hand, then
            ``epsanet convert``), a hub folder or an ``hf-hub:`` id.
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = CBAM_ResNet50_Weights.verify(weights)
    return _resnet("cbam_resnet50", dict(layers=_RESNET50, attn_layer="cbam"), weights, progress, **kwargs)


@register_model
def cbam_resnet101(*, weights: Optional[CBAM_ResNet101_Weights] = None, progress: bool = True,
                   **kwargs: Any) -> ResNet:
    """CBAM-ResNet-101 from `CBAM: Convolutional Block Attention Module
    <https://arxiv.org/abs/1807.06521>`__.

    ResNet-101 with a CBAM module after every bottleneck's ``bn3``: 49,330,172 parameters.

    Args:
        weights: a hub folder or an ``hf-hub:`` id (no published weights exist yet).
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = CBAM_ResNet101_Weights.verify(weights)
    return _resnet("cbam_resnet101", dict(layers=_RESNET101, attn_layer="cbam"), weights, progress, **kwargs)


@register_model
def bam_resnet50(*, weights: Optional[BAM_ResNet50_Weights] = None, progress: bool = True,
                 **kwargs: Any) -> ResNet:
    """BAM-ResNet-50 from `BAM: Bottleneck Attention Module <https://arxiv.org/abs/1807.06514>`__.

    ResNet-50 with a BAM module (reduction 16, dilation 4) where the network downsamples: at the
    end of ``layer1``, ``layer2`` and ``layer3`` (keys ``layer1.3``, ``layer2.4``, ``layer3.6``), as
    the official code places its ``bam1..3``: 25,915,099 parameters. The gates are combined as a
    product, as in the official code that trained the released weights; pass
    ``stage_attn_kwargs=dict(combine="sum")`` for the paper's sum. Loads the official checkpoints.

    Args:
        weights: ``"official_in1k"`` (the official checkpoint: fetched by hand, then
            ``epsanet convert``), a hub folder or an ``hf-hub:`` id.
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = BAM_ResNet50_Weights.verify(weights)
    return _resnet("bam_resnet50", dict(layers=_RESNET50, stage_attn_layer="bam"), weights, progress, **kwargs)


@register_model
def bam_resnet101(*, weights: Optional[BAM_ResNet101_Weights] = None, progress: bool = True,
                  **kwargs: Any) -> ResNet:
    """BAM-ResNet-101 from `BAM: Bottleneck Attention Module <https://arxiv.org/abs/1807.06514>`__.

    ResNet-101 with a BAM module at the end of ``layer1``, ``layer2`` and ``layer3``:
    44,907,227 parameters.

    Args:
        weights: a hub folder or an ``hf-hub:`` id (no published weights exist yet).
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = BAM_ResNet101_Weights.verify(weights)
    return _resnet("bam_resnet101", dict(layers=_RESNET101, stage_attn_layer="bam"), weights, progress, **kwargs)


@register_model
def sa_resnet50(*, weights: Optional[SA_ResNet50_Weights] = None, progress: bool = True,
                **kwargs: Any) -> ResNet:
    """SA-ResNet-50 (SA-Net-50) from `SA-Net: Shuffle Attention for Deep Convolutional Neural
    Networks <https://arxiv.org/abs/2102.00240>`__.

    ResNet-50 with a shuffle attention module (64 groups) after every bottleneck's ``bn3``, as the
    official code places it: 25,557,740 parameters. Official checkpoints load unchanged.

    Args:
        weights: a hub folder or an ``hf-hub:`` id (no published weights exist yet).
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = SA_ResNet50_Weights.verify(weights)
    return _resnet("sa_resnet50", dict(layers=_RESNET50, attn_layer="sa"), weights, progress, **kwargs)


@register_model
def sa_resnet101(*, weights: Optional[SA_ResNet101_Weights] = None, progress: bool = True,
                 **kwargs: Any) -> ResNet:
    """SA-ResNet-101 (SA-Net-101) from `SA-Net: Shuffle Attention for Deep Convolutional Neural
    Networks <https://arxiv.org/abs/2102.00240>`__.

    ResNet-101 with a shuffle attention module (64 groups) after every bottleneck's ``bn3``:
    44,550,684 parameters.

    Args:
        weights: a hub folder or an ``hf-hub:`` id (no published weights exist yet).
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = SA_ResNet101_Weights.verify(weights)
    return _resnet("sa_resnet101", dict(layers=_RESNET101, attn_layer="sa"), weights, progress, **kwargs)


@register_model
def polarized_resnet50(*, weights: Optional[Polarized_ResNet50_Weights] = None, progress: bool = True,
                       **kwargs: Any) -> ResNet:
    """Polarized-ResNet-50 with the parallel module of `Polarized Self-Attention: Towards
    High-quality Pixel-wise Regression <https://arxiv.org/abs/2107.00782>`__ (PSA_p).

    The paper adds polarized self-attention to HRNet for pose estimation and segmentation and
    publishes no ResNet placement; here, as for the zoo's other attention ResNets, it sits after
    every bottleneck's ``bn3``, before the residual add, at the block's full width. Its four
    full-width 1x1 convolutions cost ``2 * C^2`` parameters per block: 65,811,240 parameters.

    Args:
        weights: a hub folder or an ``hf-hub:`` id (no published weights exist yet).
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = Polarized_ResNet50_Weights.verify(weights)
    return _resnet("polarized_resnet50", dict(layers=_RESNET50, attn_layer="polarized"), weights, progress, **kwargs)


@register_model
def polarized_seq_resnet50(*, weights: Optional[Polarized_Seq_ResNet50_Weights] = None, progress: bool = True,
                           **kwargs: Any) -> ResNet:
    """Polarized-Seq-ResNet-50 with the sequential module of `Polarized Self-Attention: Towards
    High-quality Pixel-wise Regression <https://arxiv.org/abs/2107.00782>`__ (PSA_s).

    As :func:`polarized_resnet50` (module after every bottleneck's ``bn3``, no published ResNet
    placement), with the channel gate applied before the spatial gate and a bottlenecked channel
    branch: 59,544,648 parameters.

    Args:
        weights: a hub folder or an ``hf-hub:`` id (no published weights exist yet).
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = Polarized_Seq_ResNet50_Weights.verify(weights)
    return _resnet("polarized_seq_resnet50", dict(layers=_RESNET50, attn_layer="polarized_seq"), weights,
                   progress, **kwargs)


@register_model
def sge_resnet50(*, weights: Optional[SGE_ResNet50_Weights] = None, progress: bool = True,
                 **kwargs: Any) -> ResNet:
    """SGE-ResNet-50 from `Spatial Group-wise Enhance: Improving Semantic Feature Learning in
    Convolutional Networks <https://arxiv.org/abs/1905.09646>`__.

    ResNet-50 with an SGE module (64 groups) after every bottleneck's ``bn3``, as the official
    code places it: 25,559,080 parameters. Official checkpoints load unchanged.

    Args:
        weights: ``"official_in1k"`` (the official checkpoint: fetched by hand, then
            ``epsanet convert``), a hub folder or an ``hf-hub:`` id.
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = SGE_ResNet50_Weights.verify(weights)
    return _resnet("sge_resnet50", dict(layers=_RESNET50, attn_layer="sge"), weights, progress, **kwargs)


@register_model
def sge_resnet101(*, weights: Optional[SGE_ResNet101_Weights] = None, progress: bool = True,
                  **kwargs: Any) -> ResNet:
    """SGE-ResNet-101 from `Spatial Group-wise Enhance: Improving Semantic Feature Learning in
    Convolutional Networks <https://arxiv.org/abs/1905.09646>`__.

    ResNet-101 with an SGE module (64 groups) after every bottleneck's ``bn3``: 44,553,384
    parameters.

    Args:
        weights: ``"official_in1k"`` (the official checkpoint: fetched by hand, then
            ``epsanet convert``), a hub folder or an ``hf-hub:`` id.
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = SGE_ResNet101_Weights.verify(weights)
    return _resnet("sge_resnet101", dict(layers=_RESNET101, attn_layer="sge"), weights, progress, **kwargs)


@register_model
def coord_resnet50(*, weights: Optional[Coord_ResNet50_Weights] = None, progress: bool = True,
                   **kwargs: Any) -> ResNet:
    """Coord-ResNet-50 with the module of `Coordinate Attention for Efficient Mobile Network
    Design <https://arxiv.org/abs/2103.02907>`__.

    The paper evaluates mobile networks and publishes no ResNet placement; here, as for the zoo's
    other attention ResNets, coordinate attention (reduction 32, at least 8 channels) sits after
    every bottleneck's ``bn3``, before the residual add: 27,474,864 parameters.

    Args:
        weights: a hub folder or an ``hf-hub:`` id (no published weights exist yet).
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = Coord_ResNet50_Weights.verify(weights)
    return _resnet("coord_resnet50", dict(layers=_RESNET50, attn_layer="coord"), weights, progress, **kwargs)


@register_model
def gam_resnet50(*, weights: Optional[GAM_ResNet50_Weights] = None, progress: bool = True,
                 **kwargs: Any) -> ResNet:
    """GAM-ResNet-50 with the module of `Global Attention Mechanism: Retain Information to Enhance
    Channel-Spatial Interactions <https://arxiv.org/abs/2112.05561>`__.

    The paper publishes no code and no ResNet placement; here, as for the zoo's other attention
    ResNets, GAM (rate 4) sits after every bottleneck's ``bn3``, before the residual add. For
    ResNet-50 the paper makes the spatial convolutions grouped with a channel shuffle without
    giving the group count: here 4 groups, shuffled between the two convolutions, for
    158,905,704 parameters and 25.87 GMACs at 224 px. ``attn_kwargs=dict(groups=1)`` gives the
    dense module (528,602,472 parameters).

    Args:
        weights: a hub folder or an ``hf-hub:`` id (no published weights exist yet).
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = GAM_ResNet50_Weights.verify(weights)
    model_args = dict(layers=_RESNET50, attn_layer="gam", attn_kwargs=dict(groups=4))
    return _resnet("gam_resnet50", model_args, weights, progress, **kwargs)


@register_model
def ema_resnet50(*, weights: Optional[EMA_ResNet50_Weights] = None, progress: bool = True,
                 **kwargs: Any) -> ResNet:
    """EMA-ResNet-50 with the module of `Efficient Multi-Scale Attention Module with Cross-Spatial
    Learning <https://arxiv.org/abs/2305.13563>`__.

    The paper evaluates ResNets on CIFAR-100 without publishing the placement; here, as for the
    zoo's other attention ResNets, EMA (factor 32) sits after every bottleneck's ``bn3``, before
    the residual add: 25,755,400 parameters.

    Args:
        weights: a hub folder or an ``hf-hub:`` id (no published weights exist yet).
        progress: show a progress bar while downloading weights.
        **kwargs: passed to :class:`~epsanet.models.resnet.ResNet`.
    """
    weights = EMA_ResNet50_Weights.verify(weights)
    return _resnet("ema_resnet50", dict(layers=_RESNET50, attn_layer="ema"), weights, progress, **kwargs)
