"""How each PSA branch is computed in a runtime, chosen by timing the candidates in that runtime.

The eager autotuner (:mod:`epsanet.layers._autotune`) times each branch convolution's equivalent
computations in PyTorch. A runtime runs its own kernels, and the fastest computation differs:
the depthwise + sum form that helps some shapes in eager PyTorch can be the slowest in OpenVINO.
So :func:`measure_plans` times every candidate of :func:`~epsanet.layers._psa_fast.branch_conv_candidates`
(native grouped, groups merged up to dense, depthwise + sum, and, for runtimes only, depthwise
convolutions of multiplier 1 summed by a 1x1 convolution, ``"depthwise_1x1"``: the form ONNX
Runtime's NCHWc kernels and OpenVINO's brgconv kernels take, where thin grouped convolutions fall
to slow generic code) as a one-convolution graph *in the target runtime*, at the shape and
precision the export will run, and keeps the fastest for each branch. The choices are cached
with the eager ones (same file, keys naming the runtime and its version; an entry timed among
other candidates is timed again), and recorded in the export's metadata. Every candidate is exact: outputs equal the
official formulation to float rounding.

A plan records, per distinct PSA module shape, which modules have it and, per branch, the
computation chosen and what each candidate took (ms)::

    {"source": "measured in openvino 2026.4.1 fp32, 2 threads, batch 1",
     "shapes": [{"modules": ["layer1.0.conv2", ...], "input": [64, 56, 56], "stride": 1,
                 "branches": [{"kernel": 3, "groups": 1, "method": "native", "groups_to_run": 1,
                               "times_ms": {"native 1": 0.41}}, ...]}, ...]}
"""
import warnings
from types import ModuleType
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from .._utils.timing import time_interleaved
from ..layers import _autotune as autotune
from ..layers._psa_fast import branch_conv_candidates, grouped_conv2d
from ..layers.psa import PSAModule

__all__ = ["measure_plans", "rule_plans", "apply_plans", "psa_inputs"]

# Timed rounds per candidate, interleaved, after two untimed calls; the fastest is kept: on a shared
# machine a call is often preempted, never sped up. Every candidate runs every round (a runtime's
# first calls can be slow, and a candidate dropped after one slow round would never be chosen).
_ROUNDS = 5
_WARMUP = 2


class _Branch(nn.Module):
    """One branch convolution of a PSA module computed by one candidate: the graph that is timed."""

    def __init__(self, module: PSAModule, index: int, method: str, groups_to_run: int) -> None:
        super().__init__()
        self.weight = module._conv_weights()[index].detach().clone()
        self.groups, self.kernel_size = module.groups[index], module.kernel_sizes[index]
        self.stride, self.dilation = module.stride, module.dilation
        self.method, self.groups_to_run = method, groups_to_run

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grouped_conv2d(x, self.weight, self.groups, self.stride, self.dilation * (self.kernel_size // 2),
                              self.dilation, self.method, self.groups_to_run)


def psa_inputs(model: nn.Module, example: torch.Tensor) -> Dict[str, Tuple[PSAModule, Tuple[int, ...]]]:
    """Every fast PSA module of ``model`` by name, with the shape of its input (channels, height,
    width) when ``model`` runs ``example``."""
    found: Dict[str, Tuple[PSAModule, Tuple[int, ...]]] = {}
    names = {module: name for name, module in model.named_modules() if type(module) is PSAModule and module.fast}

    def record(module: nn.Module, args: tuple) -> None:
        found.setdefault(names[module], (module, tuple(args[0].shape[1:])))

    hooks = [module.register_forward_pre_hook(record) for module in names]
    try:
        with torch.no_grad():
            model.eval()(example[:1])
    finally:
        for hook in hooks:
            hook.remove()
    return found


def _shape_groups(inputs: Dict[str, Tuple[PSAModule, Tuple[int, ...]]]) -> List[Tuple[List[str], PSAModule, tuple]]:
    """The modules grouped by what decides their plans: input shape, widths, kernels, groups, stride."""
    grouped: Dict[tuple, Tuple[List[str], PSAModule, tuple]] = {}
    for name, (module, shape) in inputs.items():
        key = (shape, module.split, tuple(module.kernel_sizes), tuple(module.groups), module.stride, module.dilation)
        grouped.setdefault(key, ([], module, shape))[0].append(name)
    return list(grouped.values())


def _cache_key(runtime: ModuleType, precision: str, threads: int, module: PSAModule, shape: tuple, index: int,
               candidates: List[Tuple[str, int]]) -> str:
    c, h, w = shape
    forms = ",".join(dict.fromkeys(method for method, _ in candidates))
    return (f"{runtime.NAME} {runtime.version()} {precision} threads={threads} batch=1 forms={forms} in={c}x{h}x{w} "
            f"out={module.split} k={module.kernel_sizes[index]} g={module.groups[index]} stride={module.stride} "
            f"dilation={module.dilation}")


class _Candidates(nn.Module):
    """Every candidate to time, one output each, from one input per distinct PSA input shape: the
    runtime converts them all at once, then compiles each output on its own (``compile_each_output``)."""

    def __init__(self, branches: List[_Branch], inputs: List[int]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.inputs = inputs

    def forward(self, *xs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(branch(xs[i]) for branch, i in zip(self.branches, self.inputs))


def _candidates(module: PSAModule, index: int) -> List[Tuple[str, int]]:
    groups = module.groups[index]
    return branch_conv_candidates(module.in_channels // groups, module.split // groups, groups, runtime=True)


def _is_current(entry: object, candidates: List[Tuple[str, int]]) -> bool:
    """Whether a cached entry is a choice among exactly these candidates (an entry measured
    before a candidate was added is measured again)."""
    if not (isinstance(entry, dict) and {"method", "groups_to_run", "times_ms"} <= set(entry)):
        return False
    timed = set(entry["times_ms"]) if isinstance(entry["times_ms"], dict) else None
    return timed == ({f"{m} {g}" for m, g in candidates} if len(candidates) > 1 else set())


def _measure(runtime: ModuleType, precision: str, threads: int,
             todo: List[Tuple[str, PSAModule, tuple, int, List[Tuple[str, int]]]],
             log: Callable[[str], None]) -> Dict[str, Dict[str, object]]:
    """Cache entries for the branches ``todo`` (cache key, module, input shape, branch index,
    candidates): each branch's candidates timed interleaved in ``runtime``."""
    shapes = sorted({shape for _, _, shape, _, _ in todo})
    branches, inputs, owners = [], [], []
    entries: Dict[str, Dict[str, object]] = {}
    for key, module, shape, index, found in todo:
        if len(found) == 1:
            entries[key] = {"method": found[0][0], "groups_to_run": found[0][1], "times_ms": {}}
            continue
        for method, groups_to_run in found:
            branches.append(_Branch(module, index, method, groups_to_run))
            inputs.append(shapes.index(shape))
            owners.append((key, method, groups_to_run))
    if not branches:
        return entries
    log(f"timing {len(branches)} PSA branch computations in {runtime.NAME}")
    feeds = [torch.randn(1, *shape) for shape in shapes]
    runs = runtime.compile_each_output(_Candidates(branches, inputs), feeds,
                                       "bf16" if precision == "bf16" else "fp32", threads)
    for key in dict.fromkeys(owner[0] for owner in owners):
        calls = {(method, groups): run for (owner, method, groups), run in zip(owners, runs) if owner == key}
        times = time_interleaved(calls, _ROUNDS, warmup=_WARMUP, statistic=min)
        autotune.log_times(f"{runtime.NAME} {key}", times)
        method, groups_to_run = min(times, key=times.get)
        entries[key] = {"method": method, "groups_to_run": groups_to_run,
                        "times_ms": {f"{m} {g}": round(t * 1e3, 3) for (m, g), t in sorted(times.items(),
                                                                                            key=lambda kv: kv[1])}}
    return entries


def measure_plans(model: nn.Module, runtime: ModuleType, example: torch.Tensor, precision: str = "fp32",
                  threads: Optional[int] = None, log: Optional[Callable[[str], None]] = None) -> Dict[str, object]:
    """Time every candidate computation of every branch of every distinct PSA module of
    ``model`` in ``runtime`` (batch 1, at ``example``'s size, in ``precision``; int8 exports use
    the float32 choice) and return the plan of the fastest (see the module docstring). Choices
    found in the cache are not timed again."""
    threads = threads or torch.get_num_threads()
    groups = _shape_groups(psa_inputs(model, example))
    branches = [(module, shape, index, _candidates(module, index))
                for _, module, shape in groups for index in range(4)]
    keys = {(id(module), index): _cache_key(runtime, precision, threads, module, shape, index, found)
            for module, shape, index, found in branches}
    entries = {key: autotune.lookup("cpu", key) for key in keys.values()}
    todo = [(keys[(id(module), index)], module, shape, index, found) for module, shape, index, found in branches
            if not _is_current(entries[keys[(id(module), index)]], found)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace's deprecation, by the OpenVINO route
        measured = _measure(runtime, precision, threads, todo, log or (lambda message: None))
    for key, entry in measured.items():
        autotune.store("cpu", key, entry)
    entries.update(measured)
    shapes = []
    for names, module, shape in groups:
        branches = []
        for index in range(4):
            entry = entries[keys[(id(module), index)]]
            branches.append({"kernel": module.kernel_sizes[index], "groups": module.groups[index],
                             "method": entry["method"], "groups_to_run": entry["groups_to_run"],
                             "times_ms": entry["times_ms"]})
        shapes.append({"modules": names, "input": list(shape), "stride": module.stride, "branches": branches})
    return {"source": f"measured in {runtime.NAME} {runtime.version()} {precision}, {threads} threads, batch 1",
            "shapes": shapes}


def rule_plans(model: nn.Module, example: torch.Tensor) -> Dict[str, object]:
    """The plan of :func:`~epsanet.layers._psa_fast.branch_conv_plan`'s rule, in the same form."""
    shapes = []
    for names, module, shape in _shape_groups(psa_inputs(model, example)):
        _, plans = module._default_plan(example.new_empty(1, *shape))
        shapes.append({"modules": names, "input": list(shape), "stride": module.stride, "branches": [
            {"kernel": k, "groups": g, "method": method, "groups_to_run": groups_to_run, "times_ms": {}}
            for k, g, (method, groups_to_run) in zip(module.kernel_sizes, module.groups, plans)]})
    return {"source": "rule", "shapes": shapes}


def apply_plans(model: nn.Module, plans: Dict[str, object]) -> nn.Module:
    """Make each PSA module of ``model`` named in ``plans`` compute its branches as planned
    (NCHW), whatever the autotuner would choose; returns ``model``."""
    modules = dict(model.named_modules())
    for shape in plans["shapes"]:
        branches = [(branch["method"], branch["groups_to_run"]) for branch in shape["branches"]]
        for name in shape["modules"]:
            modules[name].runtime_plan = (False, branches)
    return model
