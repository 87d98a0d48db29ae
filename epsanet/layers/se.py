"""Squeeze-and-Excitation (SE) channel attention.

Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018 (arXiv:1709.01507),
https://github.com/hujie-frank/SENet.

Where it sits: after ``bn3`` of a ResNet bottleneck, before the residual add (SE-ResNet). Its
parameters use timm's ``seresnet50`` layout (``fc1``/``fc2`` 1x1 convolutions with bias), so
timm's SE-ResNet weights load unchanged. EPSANet's PSA module reuses :meth:`SEModule.gate` to
weigh its branches.
"""
from typing import Optional

import torch
from torch import nn

__all__ = ["SEModule"]


class SEModule(nn.Module):
    """Squeeze (global average pool) and excite (two 1x1 convs, ReLU, sigmoid) per channel.

    Args:
        channels: input and output channels.
        reduction: hidden width is ``channels // reduction`` (at least 1).
        rd_channels: hidden width, overriding ``reduction``.
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        rd_channels: Optional[int] = None,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        rd_channels = rd_channels or max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, rd_channels, kernel_size=1, bias=True, **dd)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd_channels, channels, kernel_size=1, bias=True, **dd)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel weights in (0, 1), shaped ``(N, C, 1, 1)``."""
        squeezed = x.mean((2, 3), keepdim=True)
        return torch.sigmoid(self.fc2(self.act(self.fc1(squeezed))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)
