"""Pyramid Squeeze Attention (PSA), the module of EPSANet.

Zhang et al., "EPSANet: An Efficient Pyramid Squeeze Attention Block on Convolutional Neural
Network", ACCV 2022 (arXiv:2105.14447); official code https://github.com/murufeng/EPSANet (MIT).

Where it sits: it replaces the 3x3 convolution (``conv2``) of a ResNet bottleneck, which makes
the EPSA block. With S = 4 scales, for an input X, in the paper's notation (i = 1..4 here, as
the parameters ``conv_1`` .. ``conv_4``):

    F_i   = Conv(k_i × k_i, G_i)(X)                    SPC module: multi-scale grouped convolutions
    Z_i   = SEWeight(F_i) = σ(W_2 δ(W_1 GAP(F_i)))     channel attention of each scale (σ sigmoid, δ ReLU)
    att_i = Softmax(Z_i) = exp(Z_i) / Σ_j exp(Z_j)     across the scales, per channel
    Y_i   = F_i ⊙ att_i
    Out   = Cat([Y_1, Y_2, Y_3, Y_4])

with kernels k = (3, 5, 7, 9) and groups G = (1, 4, 8, 16) (EPSANet Small) or 32 for every
branch (Large). Each branch reads the whole input and writes a quarter of the output channels,
with the stride applied on all four.

The official code, whose checkpoints this module loads, has two quirks the trained weights
depend on, both kept: ONE SE module is shared by the four branches (the official state_dict holds
one ``se``), and the weighted branches are concatenated in REVERSE, Out = Cat([Y_4, Y_3, Y_2,
Y_1]) (the layer after the module, ``bn2`` then ``conv3``, was trained on that channel order).

:class:`PSAModule` holds the parameters and writes the formulation plainly in its forward; by
default (``fast=True``) it computes the same outputs faster, with the fast path of
:mod:`epsanet.layers._psa_fast` (measured branch-convolution plans, one pass over the four
branches, and :func:`epsanet.deploy`'s folded BatchNorm). :class:`ReferencePSAModule` is the plain
path alone, for tests and benchmarks.
"""
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._utils.errors import InvalidArgumentError
from ._psa_fast import (
    FastPSA,
    branch_conv_candidates,
    branch_conv_plan,
    depthwise_weight,
    grouped_conv2d,
    merge_groups,
    merged_group_count,
)
from .se import SEModule

__all__ = [
    "PSAModule", "ReferencePSAModule", "branch_conv_plan", "grouped_conv2d", "merge_groups", "merged_group_count",
    "depthwise_weight", "branch_conv_candidates",
]


class PSAModule(FastPSA, nn.Module):
    """Pyramid Squeeze Attention, parameter- and output-compatible with the official code.

    The state_dict holds ``conv_1`` .. ``conv_4`` (no bias) and one ``se`` (``fc1``/``fc2``).
    With ``fast`` (the default) the forward runs the fast path of :mod:`epsanet.layers._psa_fast`,
    whose outputs equal the plain formulation's to float rounding (below 1e-5 relative error in
    float32, forward and gradients): each branch convolution is computed the way measured fastest
    for its shape, dtype, layout and device on this machine (:mod:`epsanet.layers._autotune`;
    ``EPSANET_AUTOTUNE=0``, ``module.autotune = False``, TorchScript, tracing, ``torch.compile``
    and export use the deterministic rule of :func:`branch_conv_plan`).

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
        fast: compute with the fast path (else as written in :meth:`forward`); also the
            attribute ``module.fast``.
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
        fast: bool = True,
        device: Optional[torch.device] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__()
        out_channels = out_channels or in_channels
        if len(kernel_sizes) != 4 or len(groups) != 4:
            raise InvalidArgumentError(
                f"PSAModule has four branches: pass four kernel_sizes and four groups, "
                f"got {list(kernel_sizes)} and {list(groups)}"
            )
        if out_channels % 4:
            raise InvalidArgumentError(f"PSAModule out_channels must be divisible by 4, got {out_channels}")
        split = out_channels // 4
        for g in groups:
            if in_channels % g or split % g:
                raise InvalidArgumentError(
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
        # ONE SE gate for all four branches, as in the official code (its state_dict has one `se`).
        self.se = SEModule(split, reduction=se_reduction, **dd)
        self.in_channels = in_channels
        self.split = split
        self.kernel_sizes: List[int] = list(kernel_sizes)
        self.groups: List[int] = list(groups)
        self.stride = stride
        self.dilation = dilation
        self.fast = fast
        # Fast path only: False always uses the rule of :func:`branch_conv_plan` (as EPSANET_AUTOTUNE=0 does).
        self.autotune = True
        # Fast path only: a plan chosen for another runtime (:mod:`epsanet.runtimes.plans`), which
        # the export traces instead of the autotuner's or the rule's.
        self.runtime_plan = None
        # The BatchNorm that follows, folded in by :func:`epsanet.deploy` (None otherwise).
        self.register_buffer("out_scale", None)
        self.register_buffer("out_shift", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fast:
            return self._forward_fast(x)
        # F_i = Conv(k_i × k_i, G_i)(X), i = 1..4, stacked: (N, 4, C/4, H, W).
        feats = torch.stack([self.conv_1(x), self.conv_2(x), self.conv_3(x), self.conv_4(x)], dim=1)
        # Z_i = SEWeight(F_i) and att_i = Softmax(Z_i) across the scales: (N, 4, C/4).
        att = self._scale_attention(feats.mean((3, 4)))
        # Y_i = F_i ⊙ att_i.
        weighted = feats * att[:, :, :, None, None]
        # Out = Cat([Y_4, Y_3, Y_2, Y_1]): reversed, as the official code (the next layer was trained on it).
        out = weighted.flip(1).flatten(1, 2)
        out_scale, out_shift = self.out_scale, self.out_shift
        if out_scale is not None and out_shift is not None:
            # Deploy form only (:meth:`fold_batchnorm`): the BatchNorm that followed.
            return out * out_scale + out_shift
        return out

    def _scale_attention(self, squeezed: torch.Tensor) -> torch.Tensor:
        """``att`` from the squeezed branches: ``squeezed[:, i]`` is GAP(F_i), shape ``(N, S, C/4)``;
        returns att_i = Softmax(Z_i) across the S scales, Z_i = SEWeight(F_i), same shape.

        The shared SE gate's 1x1 convolutions act on the squeezed vectors as matrices, so that one
        call scores every branch (the fast path feeds it all four at once)."""
        hidden = F.relu(F.linear(squeezed, self.se.fc1.weight.flatten(1), self.se.fc1.bias))
        gates = torch.sigmoid(F.linear(hidden, self.se.fc2.weight.flatten(1), self.se.fc2.bias))  # Z_i
        return gates.softmax(dim=1)

    def branch_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The softmax weight att_i each branch gives each channel for the module's input ``x``:
        shape ``(N, 4, out_channels // 4)``, summing to 1 over dim 1. Index ``i`` is branch
        ``conv_{i+1}`` (kernel ``kernel_sizes[i]``), whatever order the forward concatenates in.

        For inspection (see :func:`epsanet.tools.explain.psa_scale_weights`); the forward pass does
        not call it.
        """
        squeezed = torch.stack([conv(x).mean((2, 3)) for conv in (self.conv_1, self.conv_2, self.conv_3, self.conv_4)],
                               dim=1)
        return self._scale_attention(squeezed)


class ReferencePSAModule(PSAModule):
    """:class:`PSAModule` computed as written in its forward (``fast=False``): the official
    formulation, plainly. Same constructor (without ``fast``), parameters and state_dict; for
    tests and benchmarks (``create_model(..., psa_layer="psa_reference")``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, fast=False, **kwargs)
