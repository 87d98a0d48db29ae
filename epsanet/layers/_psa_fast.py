"""The fast path of :class:`~epsanet.layers.psa.PSAModule`: the same formulation, computed faster.

What it changes, and only in how the result is computed (outputs equal the plain path's to float
rounding, below 1e-5 relative error in float32, forward and gradients):

- each branch convolution runs as the equivalent computation (native grouped, merged groups,
  dense, depthwise + sum; NCHW or channels_last) measured fastest for its shape on this machine
  the first time the shape is seen (:mod:`epsanet.layers._autotune`; with autotuning off, and
  under TorchScript, tracing, ``torch.compile`` and export, the rule of :func:`branch_conv_plan`);
- the four branches are written straight into one tensor in the official (reversed) channel
  order, and the shared SE gate runs on all four at once (the plain path's
  :meth:`~epsanet.layers.psa.PSAModule._scale_attention`, fed all branches in one call);
- :func:`epsanet.deploy` folds the following BatchNorm into the final multiply
  (:meth:`FastPSA.fold_batchnorm`).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .._utils.errors import InvalidArgumentError
from . import _autotune as autotune

__all__ = [
    "FastPSA", "branch_conv_plan", "branch_conv_candidates", "merged_group_count", "merge_groups", "depthwise_weight",
    "grouped_conv2d", "group_sum_weight",
]

# Merged groups wider than this many input channels, or merging more than this many groups, cost
# more in zeros than they can save.
_WIDEST_MERGED_GROUP = 64
_MOST_MERGED_GROUPS = 8
# Plans are measured on at most this many images of the batch, and shared by all larger batches:
# per image, the work of every candidate is the same, and timing 16 images would cost 4x longer.
_TUNING_BATCH = 4
# The "depthwise_1x1" form (runtimes only) runs one depthwise convolution per output channel of a
# group: at most this many.
_MOST_DEPTHWISE_PASSES = 8

# A plan: (run the branches channels_last, [(method, groups_to_run)] per branch).
Plan = Tuple[bool, List[Tuple[str, int]]]


def branch_conv_plan(
    in_per_group: int, out_per_group: int, groups: int, kernel_size: int, device_type: str, dtype: torch.dtype
) -> Tuple[str, int]:
    """How to compute one grouped branch convolution: ``(method, groups_to_run)``.

    ``method`` is ``"native"`` (``F.conv2d`` with ``groups_to_run`` groups; when that is fewer
    than ``groups`` the weight is block-diagonal, see :func:`merge_groups`) or ``"depthwise"``
    (a depthwise convolution and a sum over each group's input channels, see
    :func:`grouped_conv2d`). All give the same result up to float rounding.

    This rule is the default only where plans are not measured (see :mod:`epsanet.layers._autotune`),
    and comes from one CPU's measurements (AVX-512 and AMX, oneDNN 3;
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


def branch_conv_candidates(in_per_group: int, out_per_group: int, groups: int,
                           runtime: bool = False) -> List[Tuple[str, int]]:
    """Every computation of one grouped branch convolution the autotuner times: the native
    grouped convolution, the same with groups merged pairwise (block-diagonal weights) while a
    merged group reads at most 64 input channels and holds at most 8 groups (down to a dense
    convolution), and, for groups of one or two output channels, a depthwise convolution plus a
    sum. With ``runtime`` (the plans of :mod:`epsanet.runtimes.plans`), also ``"depthwise_1x1"``
    for groups of at most 8 output channels (see :func:`grouped_conv2d`)."""
    found = [("native", groups)]
    merged = groups
    while (merged % 2 == 0 and (groups // (merged // 2)) * in_per_group <= _WIDEST_MERGED_GROUP
           and groups // (merged // 2) <= _MOST_MERGED_GROUPS):
        merged //= 2
        found.append(("native", merged))
    if groups > 1 and out_per_group <= 2:
        found.append(("depthwise", groups))
    if runtime and groups > 1 and out_per_group <= _MOST_DEPTHWISE_PASSES:
        found.append(("depthwise_1x1", groups))
    return found


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


def group_sum_weight(groups: int, in_per_group: int, out_per_group: int, dtype: torch.dtype,
                     device: torch.device) -> torch.Tensor:
    """The 1x1 convolution weight that sums, for output channel ``g * out_per_group + j``, the
    channels ``j * C + g * in_per_group + i`` (``i < in_per_group``, ``C = groups * in_per_group``)
    of ``out_per_group`` depthwise outputs concatenated: ones there, zeros elsewhere."""
    eye_groups = torch.eye(groups, dtype=dtype, device=device).view(groups, 1, 1, groups, 1)
    eye_outputs = torch.eye(out_per_group, dtype=dtype, device=device).view(1, out_per_group, out_per_group, 1, 1)
    ones = (eye_groups * eye_outputs).expand(groups, out_per_group, out_per_group, groups, in_per_group)
    return ones.reshape(groups * out_per_group, out_per_group * groups * in_per_group, 1, 1)


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
    with ``groups_to_run`` groups (see :func:`branch_conv_plan`).

    ``"depthwise_1x1"`` (for runtimes: :mod:`epsanet.runtimes.plans`) computes, for each output
    channel ``j`` of a group, one depthwise convolution of multiplier 1 (filter ``j`` of every
    input channel's group), concatenates them and sums each group's input channels with a 1x1
    convolution of ones and zeros (:func:`group_sum_weight`). Same multiply-adds in the depthwise
    part as the grouped convolution, plus ``C * out_per_group`` per output pixel and channel in the
    1x1 part; every convolution is one that ONNX Runtime's NCHWc kernels and oneDNN's depthwise
    and 1x1 kernels take, where thin grouped convolutions (fewer than 16 channels a group) and
    depthwise ones of multiplier 2 fall to slow generic code."""
    if method == "depthwise_1x1":
        out_channels, in_per_group, kh, kw = weight.shape
        out_per_group = out_channels // groups
        channels = groups * in_per_group
        filters = depthwise_weight(weight, groups).view(channels, out_per_group, 1, kh, kw)
        passes = [F.conv2d(x, filters[:, j], None, stride, padding, dilation, channels) for j in range(out_per_group)]
        y = passes[0] if out_per_group == 1 else torch.cat(passes, 1)
        return F.conv2d(y, group_sum_weight(groups, in_per_group, out_per_group, y.dtype, y.device))
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
def _autotune_allowed(x: torch.Tensor) -> bool:
    if torch.compiler.is_compiling() or torch.jit.is_tracing() or not autotune.enabled():
        return False
    return x.device.type in ("cpu", "cuda") and _compute_dtype(x) in (torch.float32, torch.bfloat16, torch.float16)


@torch.jit.unused
def _parse_plan(entry: object, groups: Sequence[int]) -> Optional[Plan]:
    """A cached plan, or None when the entry is missing or not a valid plan for these groups."""
    if not isinstance(entry, dict) or not isinstance(entry.get("channels_last"), bool):
        return None
    branches = entry.get("branches")
    if not isinstance(branches, list) or len(branches) != len(groups):
        return None
    plans = []
    for branch, g in zip(branches, groups):
        if not (isinstance(branch, list) and len(branch) == 2 and isinstance(branch[1], int)):
            return None
        method, groups_to_run = branch
        if not ((method == "native" and 0 < groups_to_run <= g and g % groups_to_run == 0)
                or (method in ("depthwise", "depthwise_1x1") and groups_to_run == g)):
            return None
        plans.append((method, groups_to_run))
    return entry["channels_last"], plans


def _layout_of(x: torch.Tensor) -> torch.memory_format:
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


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


class FastPSA:
    """The fast path, mixed into :class:`~epsanet.layers.psa.PSAModule` (which runs it while its
    ``fast`` switch is on): methods over the module's ``conv_1`` .. ``conv_4``, ``se``, shape
    attributes and deploy buffers, reusing its :meth:`~epsanet.layers.psa.PSAModule._scale_attention`."""

    def _forward_fast(self, x: torch.Tensor) -> torch.Tensor:
        channels_last, plans = self._plan(x)
        input_channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        # The branches may run in the other layout; the output is handed back in the input's
        # (the autotuner's measurement of the whole module includes these copies).
        x = x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()
        out = self._attend_fast(x, plans, self._conv_weights())
        if input_channels_last:
            return out.contiguous(memory_format=torch.channels_last)
        return out.contiguous()

    def _attend_fast(self, x: torch.Tensor, plans: List[Tuple[str, int]], weights: List[torch.Tensor]) -> torch.Tensor:
        """The module's output from ``x``, each branch convolution ``i`` computed by ``plans[i]``
        with the weight ``weights[i]``."""
        # Cat([F_4, F_3, F_2, F_1]): the branches in the channel order of the output (reversed, as
        # the official code), so that weighting them is one multiply over one tensor.
        branches: List[torch.Tensor] = []
        for index in [3, 2, 1, 0]:
            method, groups_to_run = plans[index]
            kernel_size = self.kernel_sizes[index]
            branches.append(grouped_conv2d(x, weights[index], self.groups[index], self.stride,
                                           self.dilation * (kernel_size // 2), self.dilation, method, groups_to_run))
        feats = torch.cat(branches, 1)
        n = feats.shape[0]
        # The plain path's attention, on all four branches at once; the softmax across the scales
        # does not depend on their order, so the weights come out in the (reversed) order of feats.
        attention = self._scale_attention(feats.mean((2, 3)).view(n, 4, self.split)).view(n, 4 * self.split, 1, 1)
        out_scale, out_shift = self.out_scale, self.out_shift
        if out_scale is not None and out_shift is not None:
            # Deploy form (:func:`epsanet.deploy`): the following BatchNorm in the same pass.
            return torch.addcmul(out_shift, feats, attention * out_scale)
        return feats * attention

    @torch.no_grad()
    def fold_batchnorm(self, bn: nn.BatchNorm2d) -> None:
        """Fold the eval-mode BatchNorm that follows this module into its output (inference
        only; see :func:`epsanet.deploy`): the attention weights absorb its scale and the final
        multiply adds its shift, so the BatchNorm's own pass over the output disappears."""
        if self.out_scale is not None:
            raise InvalidArgumentError("this PSA module already holds a folded BatchNorm: fold each BatchNorm once")
        if bn.num_features != 4 * self.split or bn.running_mean is None or bn.running_var is None:
            raise InvalidArgumentError(f"cannot fold {bn} into a PSA module with {4 * self.split} output channels and "
                                       "the BatchNorm needs running statistics")
        scale = torch.rsqrt(bn.running_var + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight
        shift = -bn.running_mean * scale
        if bn.bias is not None:
            shift = shift + bn.bias
        shape = (1, 4 * self.split, 1, 1)
        self.register_buffer("out_scale", scale.detach().reshape(shape).clone())
        self.register_buffer("out_shift", shift.detach().reshape(shape).clone())

    def _conv_weights(self) -> List[torch.Tensor]:
        return [self.conv_1.weight, self.conv_2.weight, self.conv_3.weight, self.conv_4.weight]

    def _plan(self, x: torch.Tensor) -> Plan:
        """``(run channels_last, [(method, groups_to_run)] per branch)``: measured (see
        :mod:`epsanet.layers._autotune`) unless autotuning is off or the module is being scripted,
        traced, compiled or exported, where the rule of :func:`branch_conv_plan` decides."""
        if not torch.jit.is_scripting():
            if self.runtime_plan is not None:
                return self.runtime_plan
            if self.autotune and _autotune_allowed(x):
                return self._tuned_plan(x)
        return self._default_plan(x)

    def _default_plan(self, x: torch.Tensor) -> Plan:
        # oneDNN's backward passes of grouped convolutions are 3-10x slower on NCHW than on
        # channels_last tensors, so by default training on CPU runs the branches channels_last.
        channels_last = x.is_contiguous(memory_format=torch.channels_last) or (
            x.device.type == "cpu" and torch.is_grad_enabled())
        dtype = _compute_dtype(x)
        plans: List[Tuple[str, int]] = []
        for groups, kernel_size in zip(self.groups, self.kernel_sizes):
            plans.append(branch_conv_plan(self.in_channels // groups, self.split // groups, groups, kernel_size,
                                          x.device.type, dtype))
        return channels_last, plans

    @torch.jit.unused
    def _tuned_plan(self, x: torch.Tensor) -> Plan:
        dtype = _compute_dtype(x)
        training = torch.is_grad_enabled() and (
            x.requires_grad or any(w.requires_grad for w in self._conv_weights()))
        key = self._autotune_key(x, dtype, training)
        plan = _parse_plan(autotune.lookup(x.device.type, key), self.groups)
        if plan is None:
            plan, times_ms = self._measure_plan(x, training)
            autotune.store(x.device.type, key, {"channels_last": plan[0], "branches": [list(p) for p in plan[1]],
                                                "times_ms": times_ms})
        return plan

    @torch.jit.unused
    def _autotune_key(self, x: torch.Tensor, dtype: torch.dtype, training: bool) -> str:
        n, c, h, w = x.shape
        layout = "channels_last" if _layout_of(x) == torch.channels_last else "nchw"
        batch = f"batch={n}" if n < _TUNING_BATCH else f"batch>={_TUNING_BATCH}"
        return (f"psa {'train' if training else 'infer'} {str(dtype).replace('torch.', '')} {layout} "
                f"threads={torch.get_num_threads()} {batch} in={c}x{h}x{w} out={self.split} "
                f"k={self.kernel_sizes} g={self.groups} stride={self.stride} dilation={self.dilation}")

    @torch.jit.unused
    def _measure_plan(self, x: torch.Tensor, training: bool) -> Tuple[Plan, Dict[str, Dict[str, float]]]:
        """Time every candidate computation of every branch in both memory formats, then the
        whole module with each format's fastest branches (the format conversions included).
        Returns the plan and what each candidate took (ms, for the cache file: a record of why)."""
        def timed(call, inp):
            if not training:
                def run():
                    with torch.no_grad():
                        call(inp, weights)
                return run
            grad_outputs = []

            def run_with_backward():
                xi = inp.detach().requires_grad_(x.requires_grad)
                params = [w.detach().requires_grad_() for w in weights]
                with torch.enable_grad():
                    out = call(xi, params)
                    if not grad_outputs:
                        grad_outputs.append(torch.randn_like(out))
                    torch.autograd.grad(out, params + ([xi] if x.requires_grad else []), grad_outputs[0],
                                        allow_unused=True)
            return run_with_backward

        source = x.detach()[:_TUNING_BATCH]
        weights = [w.detach() for w in self._conv_weights()]
        layouts = {False: source.contiguous(), True: source.contiguous(memory_format=torch.channels_last)}
        best: Dict[bool, List[Tuple[str, int]]] = {False: [], True: []}
        report: Dict[str, Dict[str, float]] = {}
        for index, (groups, kernel_size) in enumerate(zip(self.groups, self.kernel_sizes)):
            runs = {}
            for channels_last, inp in layouts.items():
                for method, groups_to_run in branch_conv_candidates(self.in_channels // groups, self.split // groups,
                                                                    groups):
                    def call(xi, params, index=index, method=method, groups_to_run=groups_to_run, groups=groups,
                             kernel_size=kernel_size):
                        return grouped_conv2d(xi, params[index], groups, self.stride,
                                              self.dilation * (kernel_size // 2), self.dilation, method, groups_to_run)
                    runs[(channels_last, method, groups_to_run)] = timed(call, inp)
            times = autotune.time_candidates(runs, x.device)
            label = f"branch {index + 1} k{kernel_size} g{groups}"
            autotune.log_times(label, times)
            report[label] = {f"{'channels_last' if key[0] else 'nchw'} {key[1]} {key[2]}": round(t * 1e3, 3)
                             for key, t in times.items()}
            for channels_last in layouts:
                best[channels_last].append(min((t, key[1:]) for key, t in times.items() if key[0] == channels_last)[1])
        wholes = {}
        for channels_last in layouts:
            def whole(xi, params, channels_last=channels_last):
                # The module as forward runs it: from the caller's layout, in this one, and back.
                xi = xi.contiguous(memory_format=torch.channels_last) if channels_last else xi.contiguous()
                out = self._attend_fast(xi, best[channels_last], params)
                return out.contiguous(memory_format=_layout_of(source))
            wholes[channels_last] = timed(whole, source)
        times = autotune.time_candidates(wholes, x.device)
        autotune.log_times("module", times)
        report["module"] = {"channels_last" if key else "nchw": round(t * 1e3, 3) for key, t in times.items()}
        channels_last = times[True] < times[False]
        return (channels_last, best[channels_last]), report
