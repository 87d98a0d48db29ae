"""Convolutional Block Attention Module (CBAM).

Woo et al., "CBAM: Convolutional Block Attention Module", ECCV 2018 (arXiv:1807.06521),
https://github.com/Jongchan/attention-module (MIT).

Where it sits: after ``bn3`` of a ResNet bottleneck, before the residual add (CBAM-ResNet). A
channel gate (one MLP shared by the average- and max-pooled descriptors, the two outputs summed,
then a sigmoid) is followed by a spatial gate (a 7x7 convolution without bias and a BatchNorm over
the channel-wise max and mean maps, then a sigmoid).

Parameter names are readable (``channel_gate.fc1``, ``spatial_gate.conv``, ...);
:func:`epsanet.weights.checkpoint.from_official_layout` renames the official checkpoints' keys
(``ChannelGate.mlp.1``, ``SpatialGate.spatial.conv``, ...) to them.
"""
from typing import Optional

import torch
from torch import nn

from .._utils.errors import InvalidArgumentError

__all__ = ["CBAMModule"]


class _ChannelGate(nn.Module):
    def __init__(self, channels: int, hidden: int, **dd) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden, **dd)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, channels, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.stack((x.mean((2, 3)), x.amax((2, 3))))  # (2, N, C): the MLP is shared
        scores = self.fc2(self.act(self.fc1(pooled))).sum(0)
        return x * torch.sigmoid(scores)[:, :, None, None]


class _SpatialGate(nn.Module):
    def __init__(self, kernel_size: int, **dd) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False, **dd)
        self.bn = nn.BatchNorm2d(1, momentum=0.01, **dd)  # the official BasicConv's momentum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Channel-wise [max, mean], in this order: the official ChannelPool's order, on which the
        # two input channels of the released weights' convolution were trained.
        pooled = torch.cat((x.amax(1, keepdim=True), x.mean(1, keepdim=True)), 1)
        return x * torch.sigmoid(self.bn(self.conv(pooled)))


class CBAMModule(nn.Module):
    """Channel gate, then spatial gate, each multiplied onto its input.

    Args:
        channels: input and output channels.
        reduction: hidden width of the channel MLP is ``channels // reduction`` (at least 1).
        kernel_size: odd kernel size of the spatial gate's convolution.
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        kernel_size: int = 7,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise InvalidArgumentError(f"CBAMModule kernel_size must be odd, got {kernel_size}: use e.g. "
                                       f"{kernel_size + 1}")
        dd = {"device": device, "dtype": dtype}
        self.channel_gate = _ChannelGate(channels, max(channels // reduction, 1), **dd)
        self.spatial_gate = _SpatialGate(kernel_size, **dd)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official ResNet's initialisation of CBAM: biases zero, the spatial convolution
        Kaiming (fan out), and the spatial BatchNorm's scale zero, so that the spatial gate starts
        as a constant 0.5."""
        for fc in (self.channel_gate.fc1, self.channel_gate.fc2):
            fc.reset_parameters()
            nn.init.zeros_(fc.bias)
        nn.init.kaiming_normal_(self.spatial_gate.conv.weight, mode="fan_out", nonlinearity="relu")
        self.spatial_gate.bn.reset_parameters()
        nn.init.zeros_(self.spatial_gate.bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial_gate(self.channel_gate(x))
