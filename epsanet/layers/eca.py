"""Efficient Channel Attention (ECA).

Wang et al., "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks",
CVPR 2020 (arXiv:1910.03151), https://github.com/BangguWu/ECANet.

Where it sits: after ``bn3`` of a ResNet bottleneck, before the residual add (ECA-ResNet). A 1-D
convolution without bias (``conv.weight``) across the pooled channel descriptor replaces SE's
two fully connected layers. The paper picks the kernel size from the channel count
(:func:`adaptive_kernel_size`), but the released ImageNet checkpoints fix it per stage:
``eca_resnet50_k3557`` uses kernels 3, 5, 5, 7 and ``eca_resnet101_k3357`` uses 3, 3, 5, 7.
"""
import math
from typing import Optional

import torch
from torch import nn

from .._utils.errors import InvalidArgumentError

__all__ = ["ECAModule", "adaptive_kernel_size"]


def adaptive_kernel_size(channels: int, gamma: int = 2, beta: int = 1) -> int:
    """The paper's kernel size for ``channels``: ``|log2(C) / gamma + beta / gamma|``, made odd."""
    t = int(abs((math.log2(channels) + beta) / gamma))
    return t if t % 2 else t + 1


class ECAModule(nn.Module):
    """Channel gate from a 1-D convolution over the globally pooled channels.

    Args:
        channels: input channels; only used to pick the kernel when ``kernel_size`` is None.
        kernel_size: odd 1-D kernel size; None selects :func:`adaptive_kernel_size`.
    """

    def __init__(
        self,
        channels: Optional[int] = None,
        kernel_size: Optional[int] = None,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if kernel_size is None:
            if channels is None:
                raise InvalidArgumentError("ECAModule needs channels or kernel_size: pass one of them")
            kernel_size = adaptive_kernel_size(channels)
        if kernel_size % 2 == 0:
            raise InvalidArgumentError(f"ECAModule kernel_size must be odd, got {kernel_size}: use e.g. "
                                       f"{kernel_size + 1}")
        self.conv = nn.Conv1d(
            1, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False, device=device, dtype=dtype
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean((2, 3)).unsqueeze(1)  # (N, 1, C): channels become the sequence axis
        weights = torch.sigmoid(self.conv(pooled)).transpose(1, 2).unsqueeze(-1)
        return x * weights
