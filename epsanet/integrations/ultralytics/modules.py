"""The zoo's layers as Ultralytics model-YAML layers.

Each attention class here is the zoo's module itself (same constructor, parameters and
state_dict), subclassed only so that a pickled YOLO checkpoint names this package: unpickling it
imports the package, which registers the YAML names again (a checkpoint's ``model.yaml`` is parsed
again when training resumes or fine-tunes from it).

In a YAML row the channel count comes first and is never written: ``[-1, 1, EMAModule, [8]]``
builds ``EMAModule(channels_of_previous_layer, 8)``. Channel-changing layers (``PSAModule``,
``PSAConv``, ``C3k2EPSA``) take the output channels first, scaled by the model's width multiple
as Ultralytics scales its own ``Conv`` and ``C3k2``.
"""
from typing import Sequence, Union

import torch
from torch import nn
from ultralytics.nn.modules import C3k2, Conv
from ultralytics.nn.modules.block import Bottleneck

from ... import layers
from ...models import create_model


class SEModule(layers.SEModule):
    """Squeeze-and-excitation (Hu et al., 2018). YAML args: ``[reduction]``."""


class ECAModule(layers.ECAModule):
    """Efficient channel attention (Wang et al., 2020). YAML args: ``[kernel_size]`` (default adaptive)."""


class CBAMModule(layers.CBAMModule):
    """The zoo's CBAM (Woo et al., 2018; with the reduction MLP of the official code), not Ultralytics'
    ``CBAM``. YAML args: ``[reduction, kernel_size]``."""


class BAMModule(layers.BAMModule):
    """Bottleneck attention module (Park et al., 2018). YAML args: ``[reduction, dilation, num_dilated]``."""


class ShuffleAttentionModule(layers.ShuffleAttentionModule):
    """Shuffle attention (Zhang & Yang, 2021). YAML args: ``[groups]``; channels divisible by 2 * groups."""


class PolarizedAttentionModule(layers.PolarizedAttentionModule):
    """Parallel polarized self-attention (Liu et al., 2021). No YAML args."""


class SequentialPolarizedAttentionModule(layers.SequentialPolarizedAttentionModule):
    """Sequential polarized self-attention (Liu et al., 2021). No YAML args."""


class SGEModule(layers.SGEModule):
    """Spatial group-wise enhance (Li et al., 2019). YAML args: ``[groups]``; channels divisible by groups."""


class CoordAttentionModule(layers.CoordAttentionModule):
    """Coordinate attention (Hou et al., 2021). YAML args: ``[reduction, min_channels]``."""


class GAMModule(layers.GAMModule):
    """Global attention mechanism (Liu et al., 2021). YAML args: ``[rate, groups]``."""


class EMAModule(layers.EMAModule):
    """Efficient multi-scale attention (Ouyang et al., 2023). YAML args: ``[factor]``; channels divisible by it."""


class PSAModule(layers.PSAModule):
    """EPSANet's pyramid squeeze attention as a convolution (no BatchNorm or activation after it).
    YAML args: ``[out_channels, kernel_sizes, groups, stride, dilation, se_reduction]``."""


class PSAConv(nn.Module):
    """PSA, BatchNorm and the model's activation: a drop-in for Ultralytics' ``Conv`` (as the EPSA block
    follows its PSA with ``bn2`` and ReLU). YAML args: ``[out_channels, kernel_sizes, groups, stride]``.

    Not a subclass of ``Conv``: Ultralytics' ``fuse()`` folds BatchNorm into ``Conv.conv``, which here
    is four grouped convolutions and a gate, so this layer keeps its BatchNorm.
    """

    def __init__(self, c1: int, c2: int, kernel_sizes: Sequence[int] = (3, 5, 7, 9),
                 groups: Sequence[int] = (1, 4, 8, 16), stride: int = 1) -> None:
        super().__init__()
        self.psa = layers.PSAModule(c1, c2, kernel_sizes=kernel_sizes, groups=groups, stride=stride)
        self.bn = nn.BatchNorm2d(c2)
        self.act = Conv.default_act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.psa(x)))


class C3k2EPSA(C3k2):
    """Ultralytics' ``C3k2`` whose bottlenecks are EPSA bottlenecks: the 3x3 convolution that ends
    each bottleneck (``cv2``, also inside ``C3k`` blocks) is a :class:`PSAConv`, as EPSANet replaces
    the 3x3 convolution of a ResNet bottleneck with PSA.

    YAML args: ``[out_channels, c3k, e, groups, kernel_sizes]``. Each PSA's branches are a quarter
    of the bottleneck width, which every group count must divide: EPSANet-Small's groups
    ``(1, 4, 8, 16)`` need bottlenecks of 64 channels or more; at YOLO11n's widths use ``(1, 2, 4, 8)``.
    """

    def __init__(self, c1: int, c2: int, n: int = 1, c3k: bool = False, e: float = 0.5,
                 groups: Sequence[int] = (1, 4, 8, 16), kernel_sizes: Sequence[int] = (3, 5, 7, 9),
                 shortcut: bool = True) -> None:
        super().__init__(c1, c2, n, c3k=c3k, e=e, shortcut=shortcut)
        for block in self.m.modules():
            if isinstance(block, Bottleneck):
                conv = block.cv2.conv
                block.cv2 = PSAConv(conv.in_channels, conv.out_channels, kernel_sizes=kernel_sizes, groups=groups)


class EpsanetBackbone(nn.Module):
    """A zoo model's feature levels (timm ``features_only``) as the backbone of a YOLO model; its
    output is the list of levels, picked by Ultralytics' ``Index`` rows.

    YAML args: ``[model_name, out_indices]`` (default ``[2, 3, 4]``: strides 8, 16, 32, i.e. P3-P5),
    e.g. ``[-1, 1, EpsanetBackbone, [epsanet50_small]]`` then ``[0, 1, Index, [512, 0]]``, ``[0, 1,
    Index, [1024, 1]]``, ``[0, 1, Index, [2048, 2]]`` (each Index row states its level's channels,
    as for Ultralytics' ``TorchVision`` backbones; a wrong count is reported when the model is built).
    Not scaled by the width multiple: the zoo model keeps its architecture. Randomly initialised.
    """

    def __init__(self, c1: int, model_name: str = "epsanet50_small",
                 out_indices: Union[Sequence[int], int] = (2, 3, 4)) -> None:
        super().__init__()
        indices = (out_indices,) if isinstance(out_indices, int) else tuple(out_indices)
        self.body = create_model(model_name, features_only=True, out_indices=indices, in_chans=c1)
        self.model_name = model_name
        self.channels = list(self.body.feature_info.channels())
        self.strides = list(self.body.feature_info.reduction())

    def forward(self, x: torch.Tensor) -> list:
        return self.body(x)


# YAML name -> class. Names Ultralytics defines (CBAM, PSA, C2PSA, ...) are not here and keep
# Ultralytics' meaning.
ATTENTION_LAYERS = {cls.__name__: cls for cls in (
    SEModule, ECAModule, CBAMModule, BAMModule, ShuffleAttentionModule, PolarizedAttentionModule,
    SequentialPolarizedAttentionModule, SGEModule, CoordAttentionModule, GAMModule, EMAModule,
)}
CONV_LAYERS = {"PSAModule": PSAModule, "PSAConv": PSAConv}
BLOCK_LAYERS = {"C3k2EPSA": C3k2EPSA}
BACKBONE_LAYERS = {"EpsanetBackbone": EpsanetBackbone}
LAYERS = {**ATTENTION_LAYERS, **CONV_LAYERS, **BLOCK_LAYERS, **BACKBONE_LAYERS}

# The zoo's attention names (epsanet.list_attention) and the YAML name of each.
ZOO_NAMES = {
    "se": "SEModule", "eca": "ECAModule", "cbam": "CBAMModule", "bam": "BAMModule", "sa": "ShuffleAttentionModule",
    "polarized": "PolarizedAttentionModule", "polarized_seq": "SequentialPolarizedAttentionModule",
    "sge": "SGEModule", "coord": "CoordAttentionModule", "gam": "GAMModule", "ema": "EMAModule", "psa": "PSAModule",
}

__all__ = [*LAYERS, "LAYERS", "ATTENTION_LAYERS", "CONV_LAYERS", "BLOCK_LAYERS", "BACKBONE_LAYERS", "ZOO_NAMES"]
