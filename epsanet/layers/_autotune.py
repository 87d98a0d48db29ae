"""Choices measured on this machine, cached on disk: the autotuner of the fast PSA path.

The same idea as cuDNN's benchmark mode and Triton's autotuner: the first call with a new
problem times every equivalent computation and keeps the fastest; later calls, and later
processes on the same machine, reuse the choice. A choice is only valid where it was measured,
so the cache file is named after, and records, the machine it was measured on (:func:`machine_key`:
CPU model, the instruction set torch and oneDNN actually use, torch version, GPU and cuDNN);
each entry's key adds the thread count and the problem (shapes, dtype, memory format, device,
inference or training).

Environment:
    ``EPSANET_AUTOTUNE=0``: no timing; the deterministic default plans (also always under
    ``torch.jit.script``, tracing, ``torch.compile`` and ``torch.export``).
    ``EPSANET_CACHE_DIR``: where the cache lives (default ``$XDG_CACHE_HOME/epsanet``, that is
    ``~/.cache/epsanet``).

Timings taken while other work shares the cores mislead, and a cached choice lasts: an entry
measured while the load average exceeded the CPUs this process may use is marked
(``measured_under_load``) and measured again by the first process that finds the machine quiet.

A corrupt cache file, or one measured on another machine, is ignored with a warning and
rewritten; a cache directory that cannot be written (a read-only home) leaves the choices in
memory for the process, with one warning. Writes go to a temporary file that is renamed into
place, so concurrent processes never see a partial file, and honour the umask.
"""
import functools
import hashlib
import json
import logging
import os
import platform
import threading
import warnings
from pathlib import Path
from typing import Callable, Dict, Hashable, Optional

import torch

from .._utils.files import write_json
from .._utils.timing import time_interleaved

__all__ = ["enabled", "cache_dir", "cache_path", "machine_key", "isa_summary", "busy_load", "lookup", "store",
           "time_candidates", "clear_memory", "log_times"]

CACHE_FORMAT = 1
logger = logging.getLogger(__name__)
_OFF = {"0", "false", "no", "off"}


def enabled() -> bool:
    """Whether plans are chosen by measurement (``EPSANET_AUTOTUNE`` is not ``0``)."""
    return os.environ.get("EPSANET_AUTOTUNE", "1").strip().lower() not in _OFF


def cache_dir() -> Path:
    """``$EPSANET_CACHE_DIR``, else ``$XDG_CACHE_HOME/epsanet``, else ``~/.cache/epsanet``."""
    if os.environ.get("EPSANET_CACHE_DIR"):
        return Path(os.environ["EPSANET_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache") / "epsanet"


def busy_load() -> Optional[float]:
    """The 1-minute load average when it exceeds the CPUs this process may run on (other work then
    shares the cores, and timings mislead), else None; None where the OS keeps no load average."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return round(load, 2) if load > cpus else None


def _cpu_info() -> Dict[str, str]:
    model, flags = platform.processor() or platform.machine(), ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == (platform.processor() or platform.machine()):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = line.split(":", 1)[1]
    except OSError:
        pass
    return {"model": model, "flags": flags}


@functools.lru_cache(maxsize=None)
def isa_summary() -> str:
    """The vector instruction sets the CPU kernels run with, e.g. ``"avx512 (bf16, vnni; no amx)"``
    or ``"avx2 (capped: ONEDNN_MAX_CPU_ISA=AVX2; cpu has avx512)"``: what the CPU offers, less
    what torch (``ATEN_CPU_CAPABILITY``) and oneDNN (``ONEDNN_MAX_CPU_ISA``) were told not to use."""
    flags = set(_cpu_info()["flags"].split())
    if {"amx_tile", "amx_bf16"} <= flags:
        cpu = "amx"
    elif "avx512f" in flags:
        cpu = "avx512"
    elif "avx2" in flags:
        cpu = "avx2"
    else:
        cpu = platform.machine().lower() or "unknown"
    extras = [name for name, flag in (("bf16", "avx512_bf16"), ("fp16", "avx512_fp16"), ("vnni", "avx512_vnni"))
              if flag in flags]
    caps = []
    aten = torch.backends.cpu.get_cpu_capability().lower()
    onednn = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").strip()
    order = ["default", "avx2", "avx512", "amx"]
    effective = cpu
    if cpu in order:
        if aten in order and order.index(aten) < order.index(effective):
            effective = aten
            caps.append(f"ATEN_CPU_CAPABILITY={aten}")
        if onednn and onednn.upper() != "ALL":
            level = next((name for name in reversed(order) if name in onednn.lower()), "default")
            if order.index(level) < order.index(cpu):
                effective = level if order.index(level) < order.index(effective) else effective
                caps.append(f"ONEDNN_MAX_CPU_ISA={onednn}")
    if caps:
        return f"{effective} (capped: {', '.join(caps)}; cpu has {cpu})"
    details = ", ".join(extras + ([] if cpu == "amx" or cpu not in order else ["no amx"]))
    return f"{cpu} ({details})" if details else cpu


@functools.lru_cache(maxsize=None)
def machine_key(device_type: str = "cpu") -> Dict[str, str]:
    """What a measured choice depends on besides the problem: CPU model, the instruction sets in
    effect, torch version, and on CUDA the GPU and cuDNN version."""
    key = {
        "cpu": _cpu_info()["model"],
        "isa": isa_summary(),
        "aten_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "",
        "torch": torch.__version__,
        "device": device_type,
    }
    if device_type == "cuda" and torch.cuda.is_available():
        key["gpu"] = torch.cuda.get_device_name()
        key["cudnn"] = str(torch.backends.cudnn.version())
    return key


def cache_path(device_type: str = "cpu") -> Path:
    """The cache file of this machine and device type."""
    digest = hashlib.sha256(json.dumps(machine_key(device_type), sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"autotune-{device_type}-{digest}.json"


class _PlanCache:
    """One device type's entries: in memory for the process, mirrored to one JSON file."""

    def __init__(self, device_type: str) -> None:
        self.device_type = device_type
        self.entries: Dict[str, object] = {}
        self.loaded = False
        self.writable = True
        self.load_checked: set = set()  # marked entries whose re-measurement was decided this process

    def _read(self, path: Path, warn: bool) -> Dict[str, object]:
        try:
            text = path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return {}
        except OSError as error:
            if warn:
                warnings.warn(f"epsanet autotune: cannot read the cache {path} ({error}); measuring again",
                              stacklevel=4)
            return {}
        try:
            data = json.loads(text)
            if (not isinstance(data, dict) or data.get("format") != CACHE_FORMAT
                    or not isinstance(data.get("plans"), dict)):
                raise ValueError("not an epsanet autotune cache")
        except ValueError as error:
            if warn:
                warnings.warn(f"epsanet autotune: ignoring the corrupt cache {path} ({error}); it will be rebuilt",
                              stacklevel=4)
            return {}
        if data.get("machine") != machine_key(self.device_type):
            if warn:
                warnings.warn(f"epsanet autotune: ignoring the cache {path}, measured on another machine or torch "
                              f"({data.get('machine')}); it will be rebuilt", stacklevel=4)
            return {}
        return data["plans"]

    def load(self) -> None:
        if not self.loaded:
            self.loaded = True
            self.entries.update(self._read(cache_path(self.device_type), warn=True))

    def save(self) -> None:
        if not self.writable:
            return
        path = cache_path(self.device_type)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Another process may have added entries since this one loaded: keep theirs too.
            merged = {**self._read(path, warn=False), **self.entries}
            data = {"format": CACHE_FORMAT, "machine": machine_key(self.device_type), "plans": merged}
            write_json(path, data)
        except OSError as error:
            self.writable = False
            warnings.warn(f"epsanet autotune: cannot write the cache in {path.parent} ({error}); choices are kept "
                          f"for this process only (set EPSANET_CACHE_DIR to a writable folder to keep them)",
                          stacklevel=4)


_caches: Dict[str, _PlanCache] = {}
_lock = threading.Lock()


def _cache(device_type: str) -> _PlanCache:
    if device_type not in _caches:
        _caches[device_type] = _PlanCache(device_type)
    return _caches[device_type]


def lookup(device_type: str, key: str) -> Optional[object]:
    """The choice stored under ``key`` for this machine, or None: also None, once per process, for
    a choice measured under load (see :func:`store`) when the machine is now quiet."""
    with _lock:
        cache = _cache(device_type)
        cache.load()
        entry = cache.entries.get(key)
        if isinstance(entry, dict) and "measured_under_load" in entry and key not in cache.load_checked:
            cache.load_checked.add(key)
            if busy_load() is None:
                return None
        return entry


def store(device_type: str, key: str, value: Dict[str, object]) -> None:
    """Keep ``value`` (a JSON-serialisable dict) under ``key``, in memory and in the cache file,
    with ``measured_under_load`` (the load average) added when :func:`busy_load` says the machine
    is busy."""
    load = busy_load()
    value = {**value, "measured_under_load": load} if load is not None else value
    with _lock:
        cache = _cache(device_type)
        cache.load()
        cache.entries[key] = value
        cache.load_checked.add(key)  # measured in this process: not again
        cache.save()


def clear_memory() -> None:
    """Forget the in-memory choices (the next lookup reads the cache file again)."""
    with _lock:
        _caches.clear()
    machine_key.cache_clear()
    isa_summary.cache_clear()


def time_candidates(
    candidates: Dict[Hashable, Callable[[], None]], device: torch.device, rounds: int = 3, prune: float = 1.5
) -> Dict[Hashable, float]:
    """The fastest of ``rounds`` timed calls of each candidate, after one untimed call each
    (:func:`epsanet._utils.timing.time_interleaved`).

    Rounds are interleaved, so a burst of load hits all candidates alike, and the minimum is
    kept: on a shared machine a call is often preempted (tens of ms), never sped up. After the
    first round, candidates slower than ``prune`` times the best stop (reported with their best time).
    """
    return time_interleaved(candidates, rounds, warmup=1, device=device, statistic=min, prune=prune)


def log_times(label: str, times: Dict[Hashable, float]) -> None:
    """Log (at INFO, logger ``epsanet.layers._autotune``) what each candidate took, fastest first."""
    if logger.isEnabledFor(logging.INFO):
        ranked = sorted(times.items(), key=lambda item: item[1])
        logger.info("%s: %s", label, ", ".join(f"{key} {seconds * 1e3:.2f} ms" for key, seconds in ranked))
