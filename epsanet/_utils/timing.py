"""Interleaved timing of several calls: the one timing loop of the PSA autotuner
(:func:`epsanet.layers._autotune.time_candidates`), ``epsanet bench``
(:func:`epsanet.tools.benchmark.run_benchmark`) and ``benchmarks/branch_convs.py``."""
import statistics
import time
from typing import Callable, Dict, Hashable, List, Mapping, Optional, Sequence, TypeVar

import torch

from .errors import InvalidArgumentError

__all__ = ["time_interleaved", "synchronize"]

Key = TypeVar("Key", bound=Hashable)


def synchronize(device: torch.device) -> None:
    """Wait until the work queued on ``device`` is done (CUDA runs asynchronously; CPU work is done on return)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(
    calls: Mapping[Key, Callable[[], object]],
    rounds: int,
    *,
    warmup: int = 1,
    device: Optional[torch.device] = None,
    statistic: Callable[[Sequence[float]], float] = statistics.median,
    prune: Optional[float] = None,
    on_round: Optional[Callable[[int], None]] = None,
    timer: Callable[[], float] = time.perf_counter,
    settle: float = 0.0,
) -> Dict[Key, float]:
    """Seconds per call of each of ``calls``: the ``statistic`` (default: the median) of its timed calls.

    Each call first runs ``warmup`` times untimed (one call after another). Then, ``rounds``
    times, every call runs once, timed, in round-robin order whose first call moves by one every
    round: a burst of load, or what the previous call left in the caches, hits all of them alike.
    With ``device``, the work queued on it is waited for before and after each timed call.

    Args:
        prune: after the first round, calls slower than ``prune`` times the fastest are not timed
            again (their statistic is that of their one time).
        on_round: called with the number of rounds done after each round (progress).
        timer: the clock, in seconds (as ``timeit``'s).
        settle: seconds slept, untimed, before each timed call: the worker threads the previous
            call's library left spinning (OpenMP, TBB, ONNX Runtime's pool) go idle instead of
            taking the cores from the next call when calls of several libraries alternate.
    """
    if rounds < 1 or warmup < 0:
        raise InvalidArgumentError(f"rounds must be at least 1 and warmup at least 0, got {rounds} and {warmup}")
    for run in calls.values():
        for _ in range(warmup):
            run()
    times: Dict[Key, List[float]] = {key: [] for key in calls}
    timed = list(calls)
    for round_index in range(rounds):
        shift = round_index % len(timed) if timed else 0
        for key in timed[shift:] + timed[:shift]:
            if settle:
                time.sleep(settle)
            if device is not None:
                synchronize(device)
            start = timer()
            calls[key]()
            if device is not None:
                synchronize(device)
            times[key].append(timer() - start)
        if prune is not None and round_index == 0 and timed:
            fastest = min(times[key][0] for key in timed)
            timed = [key for key in timed if times[key][0] <= prune * fastest]
        if on_round is not None:
            on_round(round_index + 1)
    return {key: statistic(samples) for key, samples in times.items()}
