"""Efficient Multi-scale Attention (EMA).

Ouyang et al., "Efficient Multi-Scale Attention Module with Cross-Spatial Learning", ICASSP 2023
(arXiv:2305.13563), https://github.com/YOLOonMe/EMA-attention-module (no licence file published).

Where it sits: the paper evaluates it in ResNets on CIFAR-100, MobileNetV2 and YOLOv5 without
publishing a ResNet placement; the zoo's ``ema_resnet50`` applies it after ``bn3`` of every
bottleneck, before the residual add. The channels are split into ``factor`` groups. In each, a 1x1
branch encodes the features pooled along the height and along the width (coordinate-attention
style) into two directional gates, followed by a GroupNorm; a 3x3 branch convolves the group. Each
branch's globally pooled descriptor, softmax-normalised over the channels, weighs the *other*
branch's features (cross-spatial learning); the two resulting maps are summed into one spatial
gate per group. Parameter names are the official ones.
"""
from typing import Optional

import torch
from torch import nn

from .._utils.errors import InvalidArgumentError

__all__ = ["EMAModule"]


class EMAModule(nn.Module):
    """Grouped 1x1 / 3x3 branches with cross-spatial softmax attention.

    Args:
        channels: input and output channels; must be divisible by ``factor``.
        factor: number of channel groups (32 in the paper).
    """

    def __init__(
        self,
        channels: int,
        factor: int = 32,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if channels % factor:
            raise InvalidArgumentError(
                f"EMAModule needs channels divisible by factor = {factor}, got {channels}: "
                "choose a factor that divides channels"
            )
        dd = {"device": device, "dtype": dtype}
        width = channels // factor
        self.groups = factor
        self.gn = nn.GroupNorm(width, width, **dd)
        self.conv1x1 = nn.Conv2d(width, width, 1, **dd)
        self.conv3x3 = nn.Conv2d(width, width, 3, padding=1, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        grouped = x.reshape(b * self.groups, c // self.groups, h, w)
        pooled_h = grouped.mean(3, keepdim=True)  # (BG, C/G, H, 1)
        pooled_w = grouped.mean(2, keepdim=True).transpose(2, 3)  # (BG, C/G, W, 1)
        gate_h, gate_w = torch.split(self.conv1x1(torch.cat((pooled_h, pooled_w), 2)), [h, w], 2)
        branch_1x1 = self.gn(grouped * torch.sigmoid(gate_h) * torch.sigmoid(gate_w.transpose(2, 3)))
        branch_3x3 = self.conv3x3(grouped)
        # Each branch's pooled descriptor, a softmax over channels, weighs the other branch's pixels.
        weights_1x1 = branch_1x1.mean((2, 3)).softmax(-1).unsqueeze(1)  # (BG, 1, C/G)
        weights_3x3 = branch_3x3.mean((2, 3)).softmax(-1).unsqueeze(1)
        spatial = (torch.matmul(weights_1x1, branch_3x3.flatten(2))
                   + torch.matmul(weights_3x3, branch_1x1.flatten(2))).reshape(b * self.groups, 1, h, w)
        return (grouped * torch.sigmoid(spatial)).reshape(b, c, h, w)
