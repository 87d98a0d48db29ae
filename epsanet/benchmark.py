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
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.profiler import ProfilerActivity, profile

from ._files import atomic_file
from ._optional import require
from .layers import PSAModule
from .models import create_model
from .stats import count_macs, count_params

__all__ = ["Setting", "Candidate", "default_settings", "candidates", "run_benchmark", "format_table",
           "save_chart", "as_json", "machine_info"]


@dataclass(frozen=True)
class Setting:
    """One way of running the models: batch size, dtype, memory format, inference or training."""

    batch_size: int
    dtype: str = "fp32"  # "fp32" or "bf16"
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


def default_settings(batch_sizes: Sequence[int] = (1, 16), train_batch_size: int = 8) -> List[Setting]:
    """fp32 and bf16+channels_last inference at each batch size, then fp32 training."""
    for size in (*batch_sizes, *([train_batch_size] if train_batch_size != 0 else [])):  # 0: no training
        if size < 1:
            raise ValueError(f"batch sizes must be positive, got {size}")
    settings = [Setting(b) for b in batch_sizes] + [Setting(b, "bf16", True) for b in batch_sizes]
    return settings + [Setting(train_batch_size, train=True)] if train_batch_size else settings


def _has_psa(model: nn.Module) -> bool:
    return any(type(m) is PSAModule for m in model.modules())


def candidates(models: Sequence[str], baseline: Optional[str] = "resnet50", reference: bool = True) -> List[Candidate]:
    """The baseline (a torchvision model name, or None), each zoo model, and, for each model with
    PSA modules, the same model with the official formulation (``psa_layer="psa_reference"``)."""
    result = []
    if baseline:
        if baseline not in torchvision.models.list_models(torchvision.models):
            raise ValueError(f"unknown torchvision baseline {baseline!r}: "
                             "use a torchvision.models name such as resnet50")
        result.append(Candidate(f"{baseline} (torchvision)", lambda: torchvision.models.get_model(baseline)))
    for name in models:
        create_model(name, device="meta")  # fail early, with the zoo's message, on an unknown name
        result.append(Candidate(name, lambda name=name: create_model(name)))
        if reference and _has_psa(create_model(name, device="meta")):
            result.append(Candidate(f"{name} (reference PSA)",
                                    lambda name=name: create_model(name, psa_layer="psa_reference")))
            result[-2].reference = result[-1].label
    return result


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _runner(model: nn.Module, setting: Setting, img_size: int, device: torch.device) -> Callable[[], None]:
    dtype = torch.bfloat16 if setting.dtype == "bf16" else torch.float32
    layout = torch.channels_last if setting.channels_last else torch.contiguous_format
    model = copy.deepcopy(model).to(device=device, dtype=dtype, memory_format=layout)
    x = torch.randn(setting.batch_size, 3, img_size, img_size, device=device, dtype=dtype)
    x = x.contiguous(memory_format=layout)
    if not setting.train:
        model.eval()

        def infer() -> None:
            with torch.inference_mode():
                model(x)
        return infer

    model.train()
    target = torch.randint(0, 1000, (setting.batch_size,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), target).backward()
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
    {"images_per_s", "latency_ms", "peak_mb", "vs_baseline", "vs_reference"}}}``. The first
    candidate is the baseline of the ratios. Also fills each candidate's ``stats`` (params,
    GMACs at ``img_size``)."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be at least 1 and warmup at least 0, got {repeats} and {warmup}")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda needs a CUDA GPU, and none is available: use --device cpu")
    log = log or (lambda message: None)
    models = {}
    for cand in cands:
        model = models[cand.label] = cand.build()
        cand.stats = {"params": count_params(model), "gmacs": count_macs(model, (3, img_size, img_size)) / 1e9}
    results: Dict[str, Dict[str, Dict[str, float]]] = {c.label: {} for c in cands}
    for setting in settings:
        log(f"{setting.name}: warming up {len(cands)} models")
        runners = {label: _runner(model, setting, img_size, device) for label, model in models.items()}
        for run in runners.values():
            for _ in range(warmup):
                run()
        times: Dict[str, List[float]] = {label: [] for label in runners}
        labels = list(runners)
        for round_index in range(repeats):
            shift = round_index % len(labels)
            for label in labels[shift:] + labels[:shift]:
                _synchronize(device)
                start = time.perf_counter()
                runners[label]()
                _synchronize(device)
                times[label].append(time.perf_counter() - start)
            log(f"{setting.name}: round {round_index + 1}/{repeats}")
        for label, run in runners.items():
            seconds = statistics.median(times[label])
            results[label][setting.name] = {
                "images_per_s": setting.batch_size / seconds,
                "latency_ms": seconds * 1e3,
                "peak_mb": _peak_memory_mb(run, device),
            }
        del runners
    baseline = cands[0].label
    for cand in cands:
        for name, row in results[cand.label].items():
            row["vs_baseline"] = row["images_per_s"] / results[baseline][name]["images_per_s"]
            if cand.reference:
                row["vs_reference"] = row["images_per_s"] / results[cand.reference][name]["images_per_s"]
    return results


def machine_info(device: str = "cpu") -> Dict[str, object]:
    """Where the numbers come from: processor, cores, threads, torch version, load average."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info: Dict[str, object] = {
        "cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "device": device, "mkldnn": torch.backends.mkldnn.is_available(),
    }
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def format_table(cands: Sequence[Candidate], settings: Sequence[Setting], results) -> str:
    """A markdown table: size, cost, then per setting latency (batch 1) or images/s, each with its
    speed ratio against the baseline (first row) and, for fast PSA models, against the reference."""
    baseline = cands[0].label.split(" ")[0]
    header = ["model", "params (M)", "GMACs"] + [
        f"{s.name} {'ms' if s.batch_size == 1 and not s.train else 'img/s'}" for s in settings
    ] + [f"peak MB {settings[-1].name}"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for cand in cands:
        cells = [cand.label, f"{cand.stats['params'] / 1e6:.2f}", f"{cand.stats['gmacs']:.2f}"]
        for s in settings:
            row = results[cand.label][s.name]
            value = f"{row['latency_ms']:.1f}" if s.batch_size == 1 and not s.train else f"{row['images_per_s']:.1f}"
            ratios = [] if cand is cands[0] else [f"{row['vs_baseline']:.2f}x {baseline}"]
            if "vs_reference" in row:
                ratios.append(f"{row['vs_reference']:.2f}x ref")
            cells.append(value + (f" ({', '.join(ratios)})" if ratios else ""))
        cells.append(f"{results[cand.label][settings[-1].name]['peak_mb']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save_chart(cands: Sequence[Candidate], settings: Sequence[Setting], results, path: str) -> None:
    """A grouped bar chart (PNG) of every model's speed relative to the baseline, per setting."""
    matplotlib = require("matplotlib", "bench", "the benchmark chart")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(settings)), 4.0))
    width = 0.8 / len(cands)
    for i, cand in enumerate(cands):
        ratios = [results[cand.label][s.name]["vs_baseline"] for s in settings]
        ax.bar([j + i * width for j in range(len(settings))], ratios, width, label=cand.label)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([j + width * (len(cands) - 1) / 2 for j in range(len(settings))], [s.name for s in settings])
    ax.set_ylabel(f"speed relative to {cands[0].label}")
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
        "models": [dict(label=c.label, reference=c.reference, **c.stats, results=results[c.label]) for c in cands],
    }
