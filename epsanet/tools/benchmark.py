"""Side-by-side speed benchmark of zoo models against a torchvision baseline and against the
official PSA formulation, all measured interleaved in one run.

Method: every model is built once; for each setting (batch size, dtype, memory format, inference
or training) each model is warmed up, then timed one call at a time in round-robin rounds (the
starting model rotates every round), and the median of its rounds is kept. Ratios between models
of one run are meaningful on a busy machine; absolute numbers are not. Peak memory is the peak of
tensor memory allocated during one call (the profiler's allocation events on CPU, the caching
allocator's peak on CUDA), beyond the model's own weights.
"""
import contextlib
import copy
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.profiler import ProfilerActivity, profile

from .._utils.device import resolve_device
from .._utils.errors import InvalidArgumentError
from .._utils.files import atomic_file
from .._utils.optional import require
from .._utils.timing import time_interleaved
from ..layers import PSAModule
from ..layers import _autotune as autotune
from ..models import create_model
from ..runtimes import RUNTIMES, get_runtime
from ..runtimes.exported import prepare
from .stats import count_macs, count_params

__all__ = ["Setting", "Candidate", "default_settings", "candidates", "same_depth_resnet", "run_benchmark",
           "format_table", "describe_machine", "save_chart", "as_json", "machine_info"]


@dataclass(frozen=True)
class Setting:
    """One way of running the models: batch size, dtype, memory format, inference or training."""

    batch_size: int
    dtype: str = "fp32"  # "fp32", "bf16" or "int8" (runtimes only)
    channels_last: bool = False
    train: bool = False

    @property
    def name(self) -> str:
        layout = "+cl" if self.channels_last else ""
        return f"{'train ' if self.train else ''}{self.dtype}{layout} b{self.batch_size}"


@dataclass
class Candidate:
    """A model under test: a label, how to build it, and the label of its reference, if any."""

    label: str
    build: Callable[[], nn.Module]
    reference: Optional[str] = None
    stats: Dict[str, float] = field(default_factory=dict)
    baseline: Optional[str] = None  # label of the baseline of its ratios (default: the first candidate)
    runtime: str = "eager"  # "eager", "compile" (torch.compile), "openvino" or "onnxruntime"
    inference_only: bool = False
    plans: str = "measure"  # in a runtime: PSA plans measured there, or the eager "rule"
    eager: Optional[str] = None  # label of the same model in eager PyTorch (the "x eager" ratio)


def default_settings(batch_sizes: Sequence[int] = (1, 16), train_batch_size: int = 8,
                     int8: bool = False) -> List[Setting]:
    """fp32 and bf16+channels_last inference at each batch size (with ``int8``, int8 inference
    too, which only runtimes run), then fp32 training."""
    for size in (*batch_sizes, *([train_batch_size] if train_batch_size != 0 else [])):  # 0: no training
        if size < 1:
            raise InvalidArgumentError(f"batch sizes must be positive, got {size}")
    settings = [Setting(b) for b in batch_sizes] + [Setting(b, "bf16", True) for b in batch_sizes]
    settings += [Setting(b, "int8") for b in batch_sizes] if int8 else []
    return settings + [Setting(train_batch_size, train=True)] if train_batch_size else settings


def _has_psa(model: nn.Module) -> bool:
    return any(type(m) is PSAModule for m in model.modules())


def same_depth_resnet(model_name: str) -> str:
    """The torchvision ResNet a zoo model replaces: the one of the same depth (``epsanet101_small``
    -> ``resnet101``), or resnet50."""
    match = re.search(r"(\d+)", model_name)
    name = f"resnet{match.group(1)}" if match else "resnet50"
    return name if name in torchvision.models.list_models(torchvision.models) else "resnet50"


def _untuned(name: str) -> nn.Module:
    model = create_model(name)
    for module in model.modules():
        if isinstance(module, PSAModule):
            module.autotune = False
    return model


def candidates(
    models: Sequence[str],
    baseline: Optional[str] = "auto",
    reference: bool = True,
    untuned: bool = False,
    deploy: bool = False,
    runtimes: Sequence[str] = ("eager",),
) -> List[Candidate]:
    """The baselines, each zoo model and its variants, once per runtime.

    ``baseline`` is a torchvision model name, ``"auto"`` (each model against the torchvision
    ResNet of its depth, :func:`same_depth_resnet`) or None. For each model with PSA modules:
    the official formulation (``reference``, ``psa_layer="psa_reference"``), the fast PSA with
    the rule's plans instead of measured ones (``untuned``), and :func:`epsanet.deploy`'s
    inference form (``deploy``). ``runtimes``: ``"eager"``, ``"compile"`` (``torch.compile`` of
    every candidate), ``"openvino"`` and ``"onnxruntime"`` (every candidate exported as
    ``epsanet export`` does, :func:`epsanet.runtimes.exported.prepare`, and run there; inference
    only). In a runtime, the model is its inference form with plans measured in that runtime, and
    ``untuned`` adds it with the eager rule's plans instead; ``deploy`` adds nothing.
    """
    from .export import deploy as deploy_model

    known = torchvision.models.list_models(torchvision.models)
    if baseline and baseline != "auto" and baseline not in known:
        raise InvalidArgumentError(f"unknown torchvision baseline {baseline!r}: use a torchvision.models name such as "
                                   f"resnet50, or auto")
    for name in models:
        create_model(name, device="meta")  # fail early, with the zoo's message, on an unknown name
    for runtime in runtimes:
        if runtime not in ("eager", "compile", *RUNTIMES):
            raise InvalidArgumentError(f"unknown runtime {runtime!r}: use eager, compile, {' or '.join(RUNTIMES)}")
    baselines = {name: (same_depth_resnet(name) if baseline == "auto" else baseline) for name in models}
    result = []
    for runtime in runtimes:
        suffix = "" if runtime == "eager" else f" [{runtime}]"
        base_labels = {}
        for torchvision_name in dict.fromkeys(b for b in baselines.values() if b):
            label = f"{torchvision_name} (torchvision){suffix}"
            base_labels[torchvision_name] = label
            result.append(Candidate(label, lambda n=torchvision_name: torchvision.models.get_model(n), baseline=label,
                                    runtime=runtime))
        for name in models:
            base = base_labels.get(baselines[name])
            eager = name if runtime != "eager" and "eager" in runtimes else None
            fast = Candidate(f"{name}{suffix}", lambda name=name: create_model(name), baseline=base, runtime=runtime,
                             eager=eager)
            result.append(fast)
            if not _has_psa(create_model(name, device="meta")):
                continue
            if reference:
                result.append(Candidate(f"{name} (reference PSA){suffix}",
                                        lambda name=name: create_model(name, psa_layer="psa_reference"),
                                        baseline=base, runtime=runtime))
                fast.reference = result[-1].label
            in_runtime = runtime in RUNTIMES
            if untuned:
                result.append(Candidate(f"{name} ({'rule plans' if in_runtime else 'untuned PSA'}){suffix}",
                                        lambda name=name: _untuned(name), baseline=base, runtime=runtime,
                                        plans="rule", eager=eager))
            if deploy and not in_runtime:
                result.append(Candidate(f"{name} (deploy){suffix}",
                                        lambda name=name: deploy_model(create_model(name)),
                                        baseline=base, runtime=runtime, inference_only=True))
    return result


def _runtime_runner(cand: Candidate, model: nn.Module, setting: Setting, img_size: int,
                    compiled: Dict[tuple, Callable]) -> Optional[Callable[[], None]]:
    """One call of the candidate as exported for its runtime, or None where the runtime cannot
    run the setting (training; bf16 in ONNX Runtime or on a CPU without bf16). The graph has a
    dynamic batch size, so it is built once per precision (kept in ``compiled``). int8 graphs are
    calibrated on random inputs: what they compute is not measured, only how fast."""
    backend = get_runtime(cand.runtime)
    try:
        backend.require_support(setting.dtype)
    except InvalidArgumentError:
        return None
    if setting.train:
        return None
    key = (cand.label, setting.dtype)
    if key not in compiled:
        example = torch.randn(2, 3, img_size, img_size)
        _, graph, _ = prepare(copy.deepcopy(model), backend, example, setting.dtype, cand.plans)
        if setting.dtype == "int8":
            generator = torch.Generator().manual_seed(0)
            graph = backend.quantize(graph, [torch.randn(8, 3, img_size, img_size, generator=generator).numpy()
                                             for _ in range(4)])
        compiled[key] = backend.compile(graph, setting.dtype)
    run = compiled[key]
    feed = torch.randn(setting.batch_size, 3, img_size, img_size).numpy()

    def infer() -> None:
        run(feed)
    return infer


def _runner(cand: Candidate, model: nn.Module, setting: Setting, img_size: int,
            device: torch.device, compiled: Dict[tuple, Callable]) -> Optional[Callable[[], None]]:
    """One call of the candidate in the setting, or None where it does not apply."""
    if setting.train and cand.inference_only:
        return None
    if cand.runtime in RUNTIMES:
        return _runtime_runner(cand, model, setting, img_size, compiled) if device.type == "cpu" else None
    if setting.dtype == "int8":
        return None
    dtype = torch.bfloat16 if setting.dtype == "bf16" else torch.float32
    layout = torch.channels_last if setting.channels_last else torch.contiguous_format
    model = copy.deepcopy(model).to(device=device, dtype=dtype, memory_format=layout)
    x = torch.randn(setting.batch_size, 3, img_size, img_size, device=device, dtype=dtype)
    x = x.contiguous(memory_format=layout)
    model.train(setting.train)
    forward = torch.compile(model) if cand.runtime == "compile" else model
    if not setting.train:
        def infer() -> None:
            with torch.inference_mode():
                forward(x)
        return infer

    target = torch.randint(0, 1000, (setting.batch_size,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(forward(x), target).backward()
        optimizer.step()
    return train_step


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the profiler backend's start/stop lines, which it writes straight to fd 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _peak_memory_mb(run: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        run()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    current = peak = 0
    for event in events:
        current += event.nbytes()
        peak = max(peak, current)
    return peak / 2**20


def run_benchmark(
    cands: Sequence[Candidate],
    settings: Sequence[Setting],
    img_size: int = 224,
    repeats: int = 10,
    warmup: int = 3,
    device: str = "cpu",
    log: Optional[Callable[[str], None]] = None,
) -> Dict[str, Dict[str, Dict[str, float]]]:
    """Time every candidate in every setting, interleaved; returns ``{label: {setting name:
    {"images_per_s", "latency_ms", "peak_mb", "vs_baseline", "vs_reference", "vs_eager"}}}`` (settings a
    candidate cannot run, such as training a deploy form, are left out). Ratios are against
    each candidate's ``baseline`` (default: the first candidate). Also fills each candidate's
    ``stats`` (params, GMACs at ``img_size``)."""
    if repeats < 1 or warmup < 0:
        raise InvalidArgumentError(f"repeats must be at least 1 and warmup at least 0, got {repeats} and {warmup}")
    device = resolve_device(device)
    log = log or (lambda message: None)
    models = {}
    for cand in cands:
        model = models[cand.label] = cand.build()
        cand.stats = {"params": count_params(model), "gmacs": count_macs(model, (3, img_size, img_size)) / 1e9}
    results: Dict[str, Dict[str, Dict[str, float]]] = {c.label: {} for c in cands}
    compiled: Dict[tuple, Callable] = {}  # runtime graphs, by candidate and precision
    # Calls of PyTorch, OpenVINO and ONNX Runtime alternate: each first waits for the others' threads to idle.
    settle = _SETTLE_SECONDS if any(cand.runtime in RUNTIMES for cand in cands) else 0.0
    for setting in settings:
        log(f"{setting.name}: warming up {len(cands)} models")
        by_label = {cand.label: cand for cand in cands}
        runners = {label: _runner(by_label[label], model, setting, img_size, device, compiled)
                   for label, model in models.items()}
        runners = {label: run for label, run in runners.items() if run is not None}
        medians = time_interleaved(runners, repeats, warmup=warmup, device=device, settle=settle,
                                   on_round=lambda done, name=setting.name: log(f"{name}: round {done}/{repeats}"))
        for label, run in runners.items():
            seconds = medians[label]
            results[label][setting.name] = {
                "images_per_s": setting.batch_size / seconds,
                "latency_ms": seconds * 1e3,
                "peak_mb": None if by_label[label].runtime in RUNTIMES else _peak_memory_mb(run, device),
            }
        del runners
    for cand in cands:
        baseline = cand.baseline or cands[0].label
        for name, row in results[cand.label].items():
            if name in results[baseline]:
                row["vs_baseline"] = row["images_per_s"] / results[baseline][name]["images_per_s"]
            if cand.reference and name in results[cand.reference]:
                row["vs_reference"] = row["images_per_s"] / results[cand.reference][name]["images_per_s"]
            eager_fp32 = _eager_fp32_name(name)
            if cand.eager and eager_fp32 in results[cand.eager]:
                row["vs_eager"] = row["images_per_s"] / results[cand.eager][eager_fp32]["images_per_s"]
    return results


# How long the thread pools of PyTorch (OpenMP), OpenVINO (TBB) and ONNX Runtime keep spinning after
# a call is theirs to decide (milliseconds); this is ample.
_SETTLE_SECONDS = 0.05


def _eager_fp32_name(setting_name: str) -> str:
    """The fp32 inference setting of the same batch size as ``setting_name``: eager PyTorch's
    default way to run, which the runtimes are compared with."""
    return f"fp32 b{setting_name.rsplit(' b', 1)[1]}"


def machine_info(device: str = "cpu") -> Dict[str, object]:
    """Where the numbers come from: processor and the instruction sets in effect (avx2 / avx512 /
    amx, see :func:`epsanet.layers._autotune.isa_summary`), cores, threads, torch version, whether the
    PSA plans are autotuned, load average."""
    info: Dict[str, object] = {
        "cpu": autotune.machine_key("cpu")["cpu"], "isa": autotune.isa_summary(), "cores": os.cpu_count(),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "device": device,
        "mkldnn": torch.backends.mkldnn.is_available(), "autotune": autotune.enabled(),
    }
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def describe_machine(info: Dict[str, object]) -> str:
    """One line naming the machine of a table: CPU, instruction sets, threads, torch, load."""
    line = (f"CPU: {info['cpu']}, {info['isa']}, {info['cores']} cores, {info['threads']} threads, "
            f"torch {info['torch']}, PSA plans {'autotuned' if info.get('autotune') else 'by rule'}")
    if info.get("gpu"):
        line += f", GPU: {info['gpu']}"
    if "load_average" in info:
        line += f", load average {' '.join(str(v) for v in info['load_average'])}"  # type: ignore[union-attr]
    return line


def format_table(cands: Sequence[Candidate], settings: Sequence[Setting], results,
                 machine: Optional[Dict[str, object]] = None) -> str:
    """A markdown table: size, cost, then per setting latency (batch 1) or images/s, each with its
    speed ratio against its baseline and, for fast PSA models, against the reference; ``-``
    where a candidate does not run. With ``machine`` (:func:`machine_info`), a first line names
    the machine."""
    header = ["model", "params (M)", "GMACs"] + [
        f"{s.name} {'ms' if s.batch_size == 1 and not s.train else 'img/s'}" for s in settings
    ] + [f"peak MB {settings[-1].name}"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for cand in cands:
        baseline = (cand.baseline or cands[0].label).split(" ")[0]
        cells = [cand.label, f"{cand.stats['params'] / 1e6:.2f}", f"{cand.stats['gmacs']:.2f}"]
        for s in settings:
            row = results[cand.label].get(s.name)
            if row is None:
                cells.append("-")
                continue
            value = f"{row['latency_ms']:.1f}" if s.batch_size == 1 and not s.train else f"{row['images_per_s']:.1f}"
            is_baseline = cand.label == (cand.baseline or cands[0].label)
            ratios = [] if is_baseline or "vs_baseline" not in row else [f"{row['vs_baseline']:.2f}x {baseline}"]
            if "vs_reference" in row:
                ratios.append(f"{row['vs_reference']:.2f}x ref")
            if "vs_eager" in row:
                ratios.append(f"{row['vs_eager']:.2f}x eager fp32")
            cells.append(value + (f" ({', '.join(ratios)})" if ratios else ""))
        last = results[cand.label].get(settings[-1].name)
        cells.append(f"{last['peak_mb']:.0f}" if last and last["peak_mb"] is not None else "-")
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    return f"{describe_machine(machine)}\n\n{table}" if machine else table


def save_chart(cands: Sequence[Candidate], settings: Sequence[Setting], results, path: str) -> None:
    """A grouped bar chart (PNG) of every model's speed relative to the baseline, per setting."""
    matplotlib = require("matplotlib", "bench", "the benchmark chart")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(settings)), 4.0))
    width = 0.8 / len(cands)
    for i, cand in enumerate(cands):
        ratios = [results[cand.label].get(s.name, {}).get("vs_baseline", 0.0) for s in settings]
        ax.bar([j + i * width for j in range(len(settings))], ratios, width, label=cand.label)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([j + width * (len(cands) - 1) / 2 for j in range(len(settings))], [s.name for s in settings])
    ax.set_ylabel("speed relative to the same-depth baseline")
    ax.legend(fontsize="small")
    fig.tight_layout()
    try:
        with atomic_file(path, ".png") as tmp:
            fig.savefig(tmp, dpi=120)
    finally:
        plt.close(fig)


def as_json(cands: Sequence[Candidate], settings: Sequence[Setting], results, img_size: int, device: str) -> Dict:
    """Everything the table shows, and the machine it came from, as a JSON-ready dict."""
    return {
        "machine": machine_info(device),
        "img_size": img_size,
        "settings": [dict(asdict(s), name=s.name) for s in settings],
        "models": [dict(label=c.label, reference=c.reference, baseline=c.baseline or cands[0].label, runtime=c.runtime,
                        **c.stats, results=results[c.label]) for c in cands],
    }
