"""Shuffle Attention (SA).

Zhang and Yang, "SA-Net: Shuffle Attention for Deep Convolutional Neural Networks", ICASSP 2021
(arXiv:2102.00240), https://github.com/wofmanaf/SA-Net (no licence file published).

Where it sits: after ``bn3`` of a ResNet bottleneck, before the residual add (SA-Net). The channels
are split into ``groups`` sub-features, each halved: one half gets a channel gate (global average,
then a per-channel scale ``cweight`` and shift ``cbias``, sigmoid), the other a spatial gate
(GroupNorm with one channel per group, then ``sweight``/``sbias``, sigmoid). The halves are
concatenated and a channel shuffle with two groups mixes them. Parameter names and shapes are the
official ones, so official SA-ResNet checkpoints load unchanged.
"""
from typing import Optional

import torch
from torch import nn
from torchvision.models.shufflenetv2 import channel_shuffle

from .._utils.errors import InvalidArgumentError

__all__ = ["ShuffleAttentionModule"]


class ShuffleAttentionModule(nn.Module):
    """Grouped channel and spatial gates with a channel shuffle; 3 * channels / groups parameters.

    Args:
        channels: input and output channels; must be divisible by ``2 * groups``.
        groups: number of sub-features (64 in the paper).
    """

    def __init__(
        self,
        channels: int,
        groups: int = 64,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if channels % (2 * groups):
            raise InvalidArgumentError(
                f"ShuffleAttentionModule needs channels divisible by 2 * groups = {2 * groups}, got {channels}: "
                "choose groups so that 2 * groups divides channels"
            )
        dd = {"device": device, "dtype": dtype}
        half = channels // (2 * groups)
        self.groups = groups
        self.cweight = nn.Parameter(torch.empty(1, half, 1, 1, **dd))
        self.cbias = nn.Parameter(torch.empty(1, half, 1, 1, **dd))
        self.sweight = nn.Parameter(torch.empty(1, half, 1, 1, **dd))
        self.sbias = nn.Parameter(torch.empty(1, half, 1, 1, **dd))
        self.gn = nn.GroupNorm(half, half, **dd)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation: scales zero and shifts one, so both gates start at sigmoid(1)."""
        nn.init.zeros_(self.cweight)
        nn.init.ones_(self.cbias)
        nn.init.zeros_(self.sweight)
        nn.init.ones_(self.sbias)
        self.gn.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        grouped = x.reshape(b * self.groups, c // self.groups, h, w)
        x_channel, x_spatial = grouped.chunk(2, dim=1)
        x_channel = x_channel * torch.sigmoid(self.cweight * x_channel.mean((2, 3), keepdim=True) + self.cbias)
        x_spatial = x_spatial * torch.sigmoid(self.sweight * self.gn(x_spatial) + self.sbias)
        return channel_shuffle(torch.cat((x_channel, x_spatial), 1).reshape(b, c, h, w), 2)
