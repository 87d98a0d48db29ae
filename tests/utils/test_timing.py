"""One timing loop for the autotuner and the benchmarks: warm-up, rotating round-robin rounds, a
statistic per call. Timed on a simulated clock, so that the expectations are exact."""
import pytest

from epsanet._utils.timing import time_interleaved


class SimulatedCalls:
    """Calls that each advance a shared clock by their next cost, recording the order they ran in."""

    def __init__(self, costs):
        self.now = 0.0
        self.order = []
        self.costs = {key: iter(values) for key, values in costs.items()}

    def clock(self):
        return self.now

    def calls(self):
        def make(key):
            def run():
                self.order.append(key)
                self.now += next(self.costs[key])
            return run
        return {key: make(key) for key in self.costs}


def test_calls_warm_up_in_turn_then_rounds_rotate_their_first_call():
    sim = SimulatedCalls({"a": [0, 0, 1, 1, 1], "b": [0, 0, 1, 1, 1], "c": [0, 0, 1, 1, 1]})
    time_interleaved(sim.calls(), 3, warmup=2, timer=sim.clock)
    assert sim.order == ["a", "a", "b", "b", "c", "c", "a", "b", "c", "b", "c", "a", "c", "a", "b"]


def test_each_call_gets_the_median_of_its_rounds_by_default_and_any_statistic_on_request():
    costs = {"a": [9, 3, 1, 2], "b": [9, 8, 4, 6]}  # the first cost is the untimed warm-up call
    sim = SimulatedCalls(costs)
    assert time_interleaved(sim.calls(), 3, timer=sim.clock) == {"a": 2, "b": 6}
    sim = SimulatedCalls(costs)
    assert time_interleaved(sim.calls(), 3, timer=sim.clock, statistic=min) == {"a": 1, "b": 4}


def test_calls_slower_than_prune_times_the_fastest_stop_after_the_first_round():
    sim = SimulatedCalls({"fast": [0, 2, 2, 1], "close": [0, 3, 1, 1], "slow": [0, 4]})
    times = time_interleaved(sim.calls(), 3, timer=sim.clock, statistic=min, prune=1.5)
    assert times == {"fast": 1, "close": 1, "slow": 4}
    assert sim.order.count("slow") == 2  # the warm-up and the first round


def test_progress_is_reported_after_every_round():
    done = []
    sim = SimulatedCalls({"a": [0, 1, 1, 1]})
    time_interleaved(sim.calls(), 3, timer=sim.clock, on_round=done.append)
    assert done == [1, 2, 3]


def test_no_calls_time_nothing():
    assert time_interleaved({}, 3) == {}


@pytest.mark.parametrize("rounds, warmup", [(0, 1), (1, -1)])
def test_rounds_and_warmup_are_checked(rounds, warmup):
    with pytest.raises(ValueError, match="rounds must be at least 1 and warmup at least 0"):
        time_interleaved({}, rounds, warmup=warmup)
