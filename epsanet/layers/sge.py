"""Spatial Group-wise Enhance (SGE).

Li, Hu and Yang, "Spatial Group-wise Enhance: Improving Semantic Feature Learning in
Convolutional Networks" (arXiv:1905.09646), https://github.com/implus/PytorchInsight (no licence
file published).

Where it sits: after ``bn3`` of a ResNet bottleneck, before the residual add (SGE-ResNet). The
channels are split into ``groups``; in each group, every position's similarity to the group's
global average feature is normalised over the positions (mean 0, std 1), scaled and shifted by the
per-group ``weight``/``bias`` and turned into a sigmoid gate for the whole group at that position.

As in the official code, the normaliser is the unbiased standard deviation with 1e-5 added
*after* it (not inside a square root), so at least two spatial positions are needed. ``weight``
starts at 0 and ``bias`` at 1, both of shape ``(1, groups, 1, 1)`` as in the official
checkpoints.
"""
from typing import Optional

import torch
from torch import nn

from .._utils.errors import InvalidArgumentError

__all__ = ["SGEModule"]


class SGEModule(nn.Module):
    """Per-group spatial gate from the similarity to the group's mean feature; 2 * groups parameters.

    Args:
        channels: input and output channels; must be divisible by ``groups``.
        groups: number of groups (64 in the paper).
    """

    def __init__(
        self,
        channels: int,
        groups: int = 64,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        if channels % groups:
            raise InvalidArgumentError(
                f"SGEModule needs channels divisible by groups = {groups}, got {channels}: "
                "choose groups that divide channels"
            )
        self.groups = groups
        self.weight = nn.Parameter(torch.empty(1, groups, 1, 1, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(1, groups, 1, 1, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation: ``weight`` 0 and ``bias`` 1."""
        nn.init.zeros_(self.weight)
        nn.init.ones_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        torch._assert(h * w > 1, "SGEModule normalises over spatial positions: it needs inputs larger than 1x1")
        grouped = x.reshape(b * self.groups, c // self.groups, h, w)
        similarity = (grouped * grouped.mean((2, 3), keepdim=True)).sum(1).reshape(b * self.groups, h * w)
        similarity = similarity - similarity.mean(1, keepdim=True)
        similarity = similarity / (similarity.std(1, keepdim=True) + 1e-5)
        gate = similarity.reshape(b, self.groups, h, w) * self.weight + self.bias
        return (grouped * torch.sigmoid(gate.reshape(b * self.groups, 1, h, w))).reshape(b, c, h, w)
