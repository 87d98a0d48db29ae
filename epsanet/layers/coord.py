"""Coordinate Attention (CA).

Hou, Zhou and Feng, "Coordinate Attention for Efficient Mobile Network Design", CVPR 2021
(arXiv:2103.02907), https://github.com/houqb/CoordAttention (MIT).

Where it sits: the paper places it in MobileNetV2 / MobileNeXt blocks and publishes no ResNet
placement; the zoo's ``coord_resnet50`` applies it after ``bn3`` of every bottleneck, before the
residual add. The features are average-pooled along the width and along the height separately, the
two pooled strips are encoded together by a 1x1 convolution (``mip = max(8, channels //
reduction)`` channels), BatchNorm and h-swish, split again and turned into a height gate and a
width gate (1x1 convolution, sigmoid) that multiply the input. Parameter names are the official ones.
"""
from typing import Optional

import torch
from torch import nn

__all__ = ["CoordAttentionModule"]


class CoordAttentionModule(nn.Module):
    """Direction-aware gates from features pooled along each spatial axis.

    Args:
        channels: input and output channels.
        reduction: the shared encoding has ``max(min_channels, channels // reduction)`` channels.
        min_channels: lower bound of the encoding width (8 in the official code).
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 32,
        min_channels: int = 8,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        mip = max(min_channels, channels // reduction)
        self.conv1 = nn.Conv2d(channels, mip, 1, **dd)
        self.bn1 = nn.BatchNorm2d(mip, **dd)
        self.act = nn.Hardswish(inplace=True)  # the official h_swish: x * relu6(x + 3) / 6
        self.conv_h = nn.Conv2d(mip, channels, 1, **dd)
        self.conv_w = nn.Conv2d(mip, channels, 1, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        pooled_h = x.mean(3, keepdim=True)  # (N, C, H, 1)
        pooled_w = x.mean(2, keepdim=True).transpose(2, 3)  # (N, C, W, 1)
        encoded = self.act(self.bn1(self.conv1(torch.cat((pooled_h, pooled_w), 2))))
        encoded_h, encoded_w = torch.split(encoded, [h, w], 2)
        gate_h = torch.sigmoid(self.conv_h(encoded_h))
        gate_w = torch.sigmoid(self.conv_w(encoded_w.transpose(2, 3)))
        return x * gate_w * gate_h
