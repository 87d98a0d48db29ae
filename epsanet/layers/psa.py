"""Pyramid Squeeze Attention (PSA), the module of EPSANet.

Zhang et al., "EPSANet: An Efficient Pyramid Squeeze Attention Block on Convolutional Neural
Network", ACCV 2022 (arXiv:2105.14447), https://github.com/murufeng/EPSANet (MIT).

Where it sits: it replaces the 3x3 convolution (``conv2``) of a ResNet bottleneck, which makes
the EPSA block. Four branch convolutions with growing kernels (3, 5, 7, 9) and group counts each
read the full input and write a quarter of the output channels (the stride is applied on all
four); a squeeze-and-excitation gate scores every branch's channels, a softmax across the
branches turns the scores into weights, and the weighted branches are concatenated.
"""
from typing import Optional, Sequence

import torch
from torch import nn

from .se import SEModule

__all__ = ["PSAModule"]


class PSAModule(nn.Module):
    """Pyramid Squeeze Attention, parameter- and output-compatible with the official code.

    The state_dict holds ``conv_1`` .. ``conv_4`` (no bias) and one ``se`` (``fc1``/``fc2``).

    Args:
        in_channels: input channels; must be divisible by every group count.
        out_channels: output channels (default: ``in_channels``); must be divisible by 4, and a
            quarter of it by every group count.
        kernel_sizes: the four branch kernel sizes.
        groups: the four branch group counts: (1, 4, 8, 16) for EPSANet Small, (32, 32, 32, 32)
            for Large.
        stride: stride of every branch.
        dilation: dilation of every branch (padding keeps the spatial size at stride 1).
        se_reduction: reduction of the shared SE gate, whose width is ``out_channels // 4``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: Optional[int] = None,
        kernel_sizes: Sequence[int] = (3, 5, 7, 9),
        groups: Sequence[int] = (1, 4, 8, 16),
        stride: int = 1,
        dilation: int = 1,
        se_reduction: int = 16,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        out_channels = out_channels or in_channels
        if len(kernel_sizes) != 4 or len(groups) != 4:
            raise ValueError(
                f"PSAModule has four branches: pass four kernel_sizes and four groups, "
                f"got {list(kernel_sizes)} and {list(groups)}"
            )
        if out_channels % 4:
            raise ValueError(f"PSAModule out_channels must be divisible by 4, got {out_channels}")
        split = out_channels // 4
        for g in groups:
            if in_channels % g or split % g:
                raise ValueError(
                    f"PSAModule group count {g} must divide in_channels ({in_channels}) and "
                    f"out_channels / 4 ({split}): choose groups that divide both"
                )
        dd = {"device": device, "dtype": dtype}
        convs = [
            nn.Conv2d(in_channels, split, k, stride=stride, padding=dilation * (k // 2), dilation=dilation,
                      groups=g, bias=False, **dd)
            for k, g in zip(kernel_sizes, groups)
        ]
        self.conv_1, self.conv_2, self.conv_3, self.conv_4 = convs
        # One SE gate shared by all four branches, as in the official code (its state_dict has one).
        self.se = SEModule(split, reduction=se_reduction, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.conv_1(x), self.conv_2(x), self.conv_3(x), self.conv_4(x)]
        feats = torch.stack(branches, dim=1)  # (N, 4, C/4, H, W)
        scores = torch.stack([self.se.gate(b) for b in branches], dim=1)  # (N, 4, C/4, 1, 1)
        weighted = feats * scores.softmax(dim=1)
        # The official code concatenates the weighted branches in reverse (branch 4 first); the
        # next layer (bn2, conv3) was trained on that channel order, so official weights need it.
        return weighted.flip(1).flatten(1, 2)
