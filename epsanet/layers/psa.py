"""Pyramid Squeeze Attention (PSA), the module of EPSANet.

Zhang et al., "EPSANet: An Efficient Pyramid Squeeze Attention Block on Convolutional Neural
Network", ACCV 2022 (arXiv:2105.14447), https://github.com/murufeng/EPSANet (MIT).

Where it sits: it replaces the 3x3 convolution (``conv2``) of a ResNet bottleneck, which makes
the EPSA block. Four branch convolutions with growing kernels (3, 5, 7, 9) and group counts each
read the full input and write a quarter of the output channels (the stride is applied on all
four); a squeeze-and-excitation gate scores every branch's channels, a softmax across the
branches turns the scores into weights, and the weighted branches are concatenated.

Two implementations share one set of parameters and one state_dict. :class:`PSAModule`, the
default, computes the official formulation faster: each branch convolution runs as the
equivalent computation that is fastest for its shape (:func:`branch_conv_plan`), the four SE
gates run as one batched call, and the weighted branches are written in reverse order with a
single copy. :class:`ReferencePSAModule` is the official formulation written plainly, kept for
tests and benchmarks.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .se import SEModule

__all__ = [
    "PSAModule", "ReferencePSAModule", "branch_conv_plan", "grouped_conv2d", "merge_groups", "merged_group_count",
    "depthwise_weight",
]


def branch_conv_plan(
    in_per_group: int, out_per_group: int, groups: int, kernel_size: int, device_type: str, dtype: torch.dtype
) -> Tuple[str, int]:
    """How to compute one grouped branch convolution: ``(method, groups_to_run)``.

    ``method`` is ``"native"`` (``F.conv2d`` with ``groups_to_run`` groups; when that is fewer
    than ``groups`` the weight is block-diagonal, see :func:`merge_groups`) or ``"depthwise"``
    (a depthwise convolution and a sum over each group's input channels, see
    :func:`grouped_conv2d`). All give the same result up to float rounding.

    The rule comes from measurements on CPU (AVX-512 and AMX, oneDNN 3;
    ``benchmarks/branch_convs.py`` repeats them): oneDNN runs grouped convolutions whose groups
    are narrower than its vector block (16 float32 or 32 bfloat16 channels) on padded blocks or
    im2col GEMM, at 3-12x below the throughput of wide groups. So thin groups are merged until
    each reads one block of input channels: the zeros this adds cost less than the padding they
    replace. In float32, groups with a single output channel and a kernel of 7 or more run
    fastest as a depthwise convolution plus a sum. cuDNN and other devices keep the native
    grouped convolution.
    """
    if dtype == torch.float32:
        block = 16
    elif dtype == torch.bfloat16 or dtype == torch.float16:
        block = 32
    else:
        block = 0  # float64 and integer types do not run on oneDNN: nothing to gain
    if device_type != "cpu" or in_per_group >= block:
        return "native", groups
    if dtype == torch.float32 and out_per_group == 1 and kernel_size >= 7:
        return "depthwise", groups
    return "native", merged_group_count(groups, in_per_group, block)


def merged_group_count(groups: int, in_per_group: int, width: int) -> int:
    """The group count after merging pairs of groups until each reads ``width`` input channels
    (or no even count is left)."""
    merged = groups
    while merged % 2 == 0 and (groups // merged) * in_per_group < width:
        merged = merged // 2
    return merged


def merge_groups(weight: torch.Tensor, groups: int, new_groups: int) -> torch.Tensor:
    """The weight of the same grouped convolution run with ``new_groups`` wider groups.

    Each new group holds ``groups // new_groups`` old ones on its block diagonal; the blocks off
    the diagonal are zero. Differentiable: gradients reach ``weight`` unchanged.
    """
    out_channels, in_per_group, kh, kw = weight.shape
    ratio = groups // new_groups
    out_per_group = out_channels // groups
    eye = torch.eye(ratio, dtype=weight.dtype, device=weight.device).view(1, ratio, 1, ratio, 1, 1, 1)
    blocks = weight.view(new_groups, ratio, out_per_group, 1, in_per_group, kh, kw) * eye
    return blocks.reshape(out_channels, ratio * in_per_group, kh, kw)


def depthwise_weight(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """A grouped convolution's weight as depthwise filters, one per (input channel, output
    channel of its group), ordered input channel first: shape ``(C_in * out_per_group, 1, kh, kw)``."""
    out_channels, in_per_group, kh, kw = weight.shape
    out_per_group = out_channels // groups
    per_group = weight.view(groups, out_per_group, in_per_group, kh, kw).transpose(1, 2)
    return per_group.reshape(groups * in_per_group * out_per_group, 1, kh, kw)


def grouped_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    groups: int,
    stride: int,
    padding: int,
    dilation: int,
    method: str,
    groups_to_run: int,
) -> torch.Tensor:
    """``F.conv2d(x, weight, None, stride, padding, dilation, groups)`` computed by ``method``
    with ``groups_to_run`` groups (see :func:`branch_conv_plan`)."""
    if method == "depthwise":
        out_channels, in_per_group = weight.shape[0], weight.shape[1]
        out_per_group = out_channels // groups
        y = F.conv2d(x, depthwise_weight(weight, groups), None, stride, padding, dilation, groups * in_per_group)
        n, h, w = y.shape[0], y.shape[2], y.shape[3]
        return y.view(n, groups, in_per_group, out_per_group, h, w).sum(2).flatten(1, 2)
    if groups_to_run != groups:
        weight = merge_groups(weight, groups, groups_to_run)
    return F.conv2d(x, weight, None, stride, padding, dilation, groups_to_run)


@torch.jit.unused
def _autocast_dtype(device_type: str) -> Optional[torch.dtype]:
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return None


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype convolutions of ``x`` run in: the autocast dtype inside autocast."""
    if not torch.jit.is_scripting():
        autocast_dtype = _autocast_dtype(x.device.type)
        if autocast_dtype is not None:
            return autocast_dtype
    return x.dtype


class PSAModule(nn.Module):
    """Pyramid Squeeze Attention, parameter- and output-compatible with the official code.

    The state_dict holds ``conv_1`` .. ``conv_4`` (no bias) and one ``se`` (``fc1``/``fc2``).
    The outputs equal :class:`ReferencePSAModule`'s to float rounding (below 1e-5 relative error
    in float32, forward and gradients); each branch convolution is computed the fastest way for
    its shape and device (:func:`branch_conv_plan`).

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
        self.in_channels = in_channels
        self.split = split
        self.kernel_sizes: List[int] = list(kernel_sizes)
        self.groups: List[int] = list(groups)
        self.stride = stride
        self.dilation = dilation

    def _branch(self, index: int, weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        groups, kernel_size = self.groups[index], self.kernel_sizes[index]
        method, groups_to_run = branch_conv_plan(
            self.in_channels // groups, self.split // groups, groups, kernel_size, x.device.type, _compute_dtype(x)
        )
        return grouped_conv2d(x, weight, groups, self.stride, self.dilation * (kernel_size // 2), self.dilation,
                              method, groups_to_run)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # oneDNN's backward passes of grouped convolutions are 3-10x slower on NCHW than on
        # channels_last tensors, so training on CPU runs the branches channels_last; the output
        # goes back to the input's layout (two copies, negligible next to the convolutions).
        restore_nchw = (x.device.type == "cpu" and torch.is_grad_enabled()
                        and not x.is_contiguous(memory_format=torch.channels_last))
        if restore_nchw:
            x = x.contiguous(memory_format=torch.channels_last)
        out = self._attend_branches(x)
        if restore_nchw:
            out = out.contiguous()
        return out

    def _attend_branches(self, x: torch.Tensor) -> torch.Tensor:
        # Branch 4 first: the official code concatenates the weighted branches in reverse, and
        # the next layer (bn2, conv3) was trained on that channel order.
        feats = torch.cat(
            [self._branch(3, self.conv_4.weight, x), self._branch(2, self.conv_3.weight, x),
             self._branch(1, self.conv_2.weight, x), self._branch(0, self.conv_1.weight, x)], 1)
        n = feats.shape[0]
        # The shared SE gate on all four branches at once: (N * 4, C / 4) rows through fc1, fc2.
        squeezed = feats.mean((2, 3)).view(n * 4, self.split)
        hidden = F.relu(F.linear(squeezed, self.se.fc1.weight.flatten(1), self.se.fc1.bias))
        gates = torch.sigmoid(F.linear(hidden, self.se.fc2.weight.flatten(1), self.se.fc2.bias))
        weights = gates.view(n, 4, self.split).softmax(1).view(n, 4 * self.split, 1, 1)
        return feats * weights


class ReferencePSAModule(PSAModule):
    """The official PSA formulation written plainly: four native grouped convolutions, four calls
    of the shared SE gate, a softmax across the stacked branches and a reversed concatenation.

    Same constructor, parameters and state_dict as :class:`PSAModule`; for tests and benchmarks
    (``create_model(..., psa_layer="psa_reference")``).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.conv_1(x), self.conv_2(x), self.conv_3(x), self.conv_4(x)]
        feats = torch.stack(branches, dim=1)  # (N, 4, C/4, H, W)
        scores = torch.stack([self.se.gate(b) for b in branches], dim=1)  # (N, 4, C/4, 1, 1)
        weighted = feats * scores.softmax(dim=1)
        return weighted.flip(1).flatten(1, 2)
