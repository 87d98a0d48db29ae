"""Polarized Self-Attention, parallel and sequential (not EPSANet's Pyramid Squeeze Attention).

Liu et al., "Polarized Self-Attention: Towards High-quality Pixel-wise Regression"
(arXiv:2107.00782), https://github.com/DeLightCMU/PSA (no licence file published). Registered as
``polarized`` (PSA_p) and ``polarized_seq`` (PSA_s) so that neither is mistaken for ``psa``.

Where it sits: the paper adds it to the residual blocks of HRNet (after the first 3x3 convolution)
for pose estimation and segmentation and publishes no ResNet classification placement; the zoo's
``polarized_resnet50`` / ``polarized_seq_resnet50`` apply it after ``bn3`` of every bottleneck,
before the residual add, at the block's full width (``2 * C^2`` parameters per module).

Two branches keep half the channels (``C/2``) and collapse the other dimension completely:

- channel-only: a 1-channel query softmax-normalised over the positions pools a ``C/2``-channel
  value into one vector, which a 1x1 convolution lifts back to ``C`` channels and a sigmoid turns
  into a per-channel gate;
- spatial-only: the globally pooled ``C/2``-channel query is multiplied with the ``C/2``-channel
  value at every position, giving one map turned into a per-position gate by a sigmoid.

The parallel variant sums the two gated outputs; the sequential variant gates channels first and
positions second. This follows the official code, which trained the released weights and differs
from the paper's equations: the parallel channel branch has no LayerNorm, and the sequential one
lifts through a bottleneck (1x1 to ``C/8``, LayerNorm, ReLU, 1x1 to ``C``); the parallel spatial
branch applies its softmax to the product over the positions, and the sequential one to the value
over the positions, instead of the paper's softmax over the pooled query's channels. The four
query/value convolutions start Kaiming-normal with fan in, as the official ``reset_parameters``.
Parameter names map to the official ones as ``channel_query`` = ``conv_q_right``,
``channel_value`` = ``conv_v_right``, ``channel_up`` = ``conv_up``, ``spatial_query`` =
``conv_q_left``, ``spatial_value`` = ``conv_v_left``.
"""
from collections import OrderedDict
from typing import Optional

import torch
from torch import nn

from .._utils.errors import InvalidArgumentError

__all__ = ["PolarizedAttentionModule", "SequentialPolarizedAttentionModule"]


class _PolarizedAttention(nn.Module):
    """The query and value convolutions shared by both variants; each builds its own ``channel_up``."""

    min_channels = 2

    def __init__(self, channels: int, device: Optional[torch.device] = None,
                 dtype: Optional[torch.dtype] = None) -> None:
        super().__init__()
        if channels < self.min_channels:
            raise InvalidArgumentError(f"{type(self).__name__} needs at least {self.min_channels} channels, got "
                                       f"{channels}")
        dd = {"device": device, "dtype": dtype}
        inner = channels // 2
        self.channel_query = nn.Conv2d(channels, 1, 1, bias=False, **dd)
        self.channel_value = nn.Conv2d(channels, inner, 1, bias=False, **dd)
        self.channel_up = self._channel_up(inner, channels, **dd)
        self.spatial_query = nn.Conv2d(channels, inner, 1, bias=False, **dd)
        self.spatial_value = nn.Conv2d(channels, inner, 1, bias=False, **dd)
        self.reset_parameters()

    def _channel_up(self, inner: int, channels: int, **dd) -> nn.Module:
        raise NotImplementedError

    def reset_parameters(self) -> None:
        """The official initialisation: Kaiming normal (fan in) for the query/value convolutions."""
        for conv in (self.channel_query, self.channel_value, self.spatial_query, self.spatial_value):
            nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")

    def channel_gate(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel weights in (0, 1), shaped ``(N, C, 1, 1)``."""
        value = self.channel_value(x).flatten(2)  # (N, C/2, HW)
        query = self.channel_query(x).flatten(2).softmax(-1)  # (N, 1, HW)
        context = torch.matmul(value, query.transpose(1, 2)).unsqueeze(-1)  # (N, C/2, 1, 1)
        return torch.sigmoid(self.channel_up(context))

    def spatial_logits(self, x: torch.Tensor, softmax_value: bool) -> torch.Tensor:
        """The pooled query times the value at every position, ``(N, 1, HW)``."""
        query = self.spatial_query(x).mean((2, 3)).unsqueeze(1)  # (N, 1, C/2)
        value = self.spatial_value(x).flatten(2)  # (N, C/2, HW)
        if softmax_value:
            value = value.softmax(-1)
        return torch.matmul(query, value)


class PolarizedAttentionModule(_PolarizedAttention):
    """Parallel polarized self-attention (official ``PSA_p``): ``x * Ach + x * Asp``.

    Args:
        channels: input and output channels (at least 2).
    """

    def _channel_up(self, inner: int, channels: int, **dd) -> nn.Module:
        return nn.Conv2d(inner, channels, 1, bias=False, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = self.spatial_logits(x, softmax_value=False).softmax(-1).reshape_as(x[:, :1])
        return x * torch.sigmoid(spatial) + x * self.channel_gate(x)


class SequentialPolarizedAttentionModule(_PolarizedAttention):
    """Sequential polarized self-attention (official ``PSA_s``): channel gate, then spatial gate.

    Args:
        channels: input and output channels (at least 8: the channel branch narrows to ``C/8``).
    """

    min_channels = 8

    def _channel_up(self, inner: int, channels: int, **dd) -> nn.Module:
        bottleneck = inner // 4
        return nn.Sequential(OrderedDict([
            ("reduce", nn.Conv2d(inner, bottleneck, 1, **dd)),
            ("norm", nn.LayerNorm([bottleneck, 1, 1], **dd)),
            ("act", nn.ReLU(inplace=True)),
            ("expand", nn.Conv2d(bottleneck, channels, 1, **dd)),
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.channel_gate(x)
        spatial = self.spatial_logits(x, softmax_value=True).reshape_as(x[:, :1])
        return x * torch.sigmoid(spatial)
