"""Global Attention Mechanism (GAM).

Liu, Shao and Hoffmann, "Global Attention Mechanism: Retain Information to Enhance
Channel-Spatial Interactions" (arXiv:2112.05561). No official code was published; this follows
the paper's equations and figures.

Where it sits: the paper keeps CBAM's sequential channel-then-spatial layout and evaluates GAM in
ResNets and MobileNetV2 without publishing a ResNet placement; the zoo's ``gam_resnet50`` applies
it after ``bn3`` of every bottleneck, before the residual add.

- Channel submodule: the features are permuted to channels-last (keeping all three dimensions),
  a two-layer MLP (reduction ``rate``) runs over the channels at every position, the result is
  permuted back and a sigmoid gives the channel attention (``F2 = sigmoid(Mc(F1)) * F1``).
- Spatial submodule: two 7x7 convolutions (channels -> channels / rate -> channels), each followed
  by BatchNorm, the first by ReLU, and a sigmoid (``F3 = sigmoid(Ms(F2)) * F2``); no pooling.

The spatial convolutions cost ``2 * 49 * channels^2 / rate`` parameters. For ResNet-50 the paper
uses group convolution with channel shuffle to limit them without giving the group count;
``groups`` makes both convolutions grouped, with a channel shuffle between them so that the second
convolution mixes the first one's groups. The convolutions have no bias, since BatchNorm follows.
"""
from typing import Optional

import torch
from torch import nn
from torchvision.models.shufflenetv2 import channel_shuffle

from .._utils.errors import InvalidArgumentError

__all__ = ["GAMModule"]


class GAMModule(nn.Module):
    """Permuted-MLP channel gate, then a convolutional spatial gate.

    Args:
        channels: input and output channels; must be divisible by ``rate``.
        rate: reduction of both submodules (4 in the paper).
        groups: groups of the spatial convolutions; must divide ``channels / rate``. Above 1, a
            channel shuffle sits between the two convolutions.
    """

    def __init__(
        self,
        channels: int,
        rate: int = 4,
        groups: int = 1,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if channels % rate:
            raise InvalidArgumentError(f"GAMModule needs channels divisible by rate = {rate}, got {channels}: "
                                       "choose a rate that divides channels")
        hidden = channels // rate
        if hidden % groups:
            raise InvalidArgumentError(
                f"GAMModule groups ({groups}) must divide channels / rate ({hidden}): choose groups that divide it"
            )
        dd = {"device": device, "dtype": dtype}
        self.groups = groups
        self.channel_fc1 = nn.Linear(channels, hidden, **dd)
        self.channel_act = nn.ReLU(inplace=True)
        self.channel_fc2 = nn.Linear(hidden, channels, **dd)
        self.spatial_conv1 = nn.Conv2d(channels, hidden, 7, padding=3, groups=groups, bias=False, **dd)
        self.spatial_bn1 = nn.BatchNorm2d(hidden, **dd)
        self.spatial_act = nn.ReLU(inplace=True)
        self.spatial_conv2 = nn.Conv2d(hidden, channels, 7, padding=3, groups=groups, bias=False, **dd)
        self.spatial_bn2 = nn.BatchNorm2d(channels, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel = self.channel_fc2(self.channel_act(self.channel_fc1(x.permute(0, 2, 3, 1))))
        x = x * torch.sigmoid(channel.permute(0, 3, 1, 2))
        spatial = self.spatial_act(self.spatial_bn1(self.spatial_conv1(x)))
        if self.groups > 1:
            spatial = channel_shuffle(spatial, self.groups)
        spatial = self.spatial_bn2(self.spatial_conv2(spatial))
        return x * torch.sigmoid(spatial)
