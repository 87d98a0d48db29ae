"""Bottleneck Attention Module (BAM).

Park et al., "BAM: Bottleneck Attention Module", BMVC 2018 (arXiv:1807.06514),
https://github.com/Jongchan/attention-module (MIT).

Where it sits: between stages, where the network downsamples (BAM-ResNet: after ``layer1``,
``layer2`` and ``layer3``), not inside the blocks. A channel gate (global average pool, then an
MLP with BatchNorm) and a spatial gate (1x1 reduction, two dilated 3x3 convolutions, 1x1 to one
map, each but the last with BatchNorm and ReLU) are combined into one 3-D attention map ``A`` and
the output is ``x * (1 + sigmoid(A))``.

The paper combines the gates as a sum, ``A = Mc + Ms``; the official code multiplies them,
``A = Mc * Ms``, and the released ImageNet weights were trained with the product, so the product is
the default and the paper's sum is ``combine="sum"``. The official ``ChannelGate`` also assigns an
undefined ``gate_activation`` (a NameError), which nothing else uses: it is left out. Its global
pool uses an ``H x H`` window, which is the global average only for square inputs; here it is the
global average for every input size.

Parameter names are readable (``channel_gate.fc1``, ``spatial_gate.dilated.0.conv``, ...);
:func:`epsanet.weights.checkpoint.from_official_layout` renames the official checkpoints' keys
(``channel_att.gate_c.gate_c_fc_0``, ``spatial_att.gate_s.gate_s_conv_di_0``, ...) to them.
"""
from collections import OrderedDict
from typing import Optional

import torch
from torch import nn

from .._utils.errors import InvalidArgumentError

__all__ = ["BAMModule"]


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, dilation: int, **dd) -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(in_channels, out_channels, kernel_size, padding=dilation * (kernel_size // 2),
                           dilation=dilation, **dd)),
        ("bn", nn.BatchNorm2d(out_channels, **dd)),
        ("act", nn.ReLU(inplace=True)),
    ]))


class _ChannelGate(nn.Module):
    def __init__(self, channels: int, hidden: int, **dd) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden, **dd)
        self.bn = nn.BatchNorm1d(hidden, **dd)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, channels, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.bn(self.fc1(x.mean((2, 3))))))[:, :, None, None]


class _SpatialGate(nn.Module):
    def __init__(self, channels: int, hidden: int, dilation: int, num_dilated: int, **dd) -> None:
        super().__init__()
        self.reduce = _conv_bn_relu(channels, hidden, 1, 1, **dd)
        self.dilated = nn.Sequential(*[_conv_bn_relu(hidden, hidden, 3, dilation, **dd) for _ in range(num_dilated)])
        self.project = nn.Conv2d(hidden, 1, 1, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.dilated(self.reduce(x)))


class BAMModule(nn.Module):
    """Channel and spatial gates in parallel, applied as ``x * (1 + sigmoid(A))``.

    Args:
        channels: input and output channels.
        reduction: hidden width of both gates is ``channels // reduction`` (at least 1).
        dilation: dilation of the spatial gate's 3x3 convolutions.
        num_dilated: number of dilated 3x3 convolutions in the spatial gate.
        combine: ``"product"`` (the official code, which trained the released weights) or
            ``"sum"`` (the paper's equation).
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        dilation: int = 4,
        num_dilated: int = 2,
        combine: str = "product",
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if combine not in ("product", "sum"):
            raise InvalidArgumentError("BAMModule combine must be 'product' (official code) or 'sum' (paper), got "
                                       f"{combine!r}")
        dd = {"device": device, "dtype": dtype}
        hidden = max(channels // reduction, 1)
        self.combine_sum = combine == "sum"
        self.channel_gate = _ChannelGate(channels, hidden, **dd)
        self.spatial_gate = _SpatialGate(channels, hidden, dilation, num_dilated, **dd)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official ResNet's initialisation of BAM: convolutions Kaiming (fan out), every bias
        zero, BatchNorm scales one, linear weights PyTorch's default."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, (nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)):
                module.reset_parameters()
            else:
                continue
            nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel, spatial = self.channel_gate(x), self.spatial_gate(x)
        attention = channel + spatial if self.combine_sum else channel * spatial
        return x * (1 + torch.sigmoid(attention))
