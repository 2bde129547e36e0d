"""The timed calls' full output check on a sample the candidate cannot predict (CPU: fake events)."""

from math import comb

import pytest
import torch

from autotuner.evaluator import timing
from autotuner.evaluator.eval_config import EvalConfig
from autotuner.evaluator.timing import checked_sample, time_calls


class _FakeEvent:
    clock = [0.0]

    def __init__(self, enable_timing: bool = True) -> None:
        self.at = 0.0

    def record(self) -> None:
        _FakeEvent.clock[0] += 1.0
        self.at = _FakeEvent.clock[0]

    def elapsed_time(self, end: "_FakeEvent") -> float:
        return end.at - self.at


@pytest.fixture(autouse=True)
def no_device(monkeypatch):
    monkeypatch.setattr(timing, "_Event", _FakeEvent)
    monkeypatch.setattr(timing, "_synchronize", lambda: None)


def _time(fn, checked, check, calls=50, sets=4):
    pool = [[torch.full((8,), float(j))] for j in range(sets)]
    return time_calls(fn, pool, lambda j: None, calls=calls, warmup=2, flush=torch.empty(4), check=check,
                      checked=checked)


def test_the_default_checks_a_quarter_of_the_calls_and_at_least_twelve():
    assert EvalConfig().checked_calls == 13
    assert EvalConfig(timing_calls=20).checked_calls == 12
    assert EvalConfig(timing_calls=8).checked_calls == 8  # fewer calls than the minimum: all
    assert EvalConfig(timed_checks=1.0).checked_calls == 50
    with pytest.raises(ValueError, match="timed_checks"):
        EvalConfig(timed_checks=0.0)


def test_the_sample_has_its_size_and_depends_on_the_secret_seed():
    picks = [checked_sample(50, 13, seed) for seed in range(20)]
    assert all(len(p) == 13 and p <= set(range(50)) for p in picks)
    assert checked_sample(50, 13, 7) == checked_sample(50, 13, 7)
    assert len(set(picks)) == 20  # a fixed pattern (every 4th call, the last round) would repeat
    assert checked_sample(50, 50, 1) == frozenset(range(50)) == checked_sample(50, 80, 1)


def test_only_the_sampled_calls_are_checked_and_the_stats_count_them():
    seen = []
    sample = checked_sample(50, 13, 3)
    run = _time(lambda x: x * 2, sample, lambda j, out: seen.append(j))
    assert len(seen) == 13 and run.stats.checked_calls == 13 and run.stats.n_calls == 50
    every = []
    assert _time(lambda x: x * 2, None, lambda j, out: every.append(j)).stats.checked_calls == 50
    assert len(every) == 50
    assert _time(lambda x: x * 2, sample, None).stats.checked_calls == 0


def test_a_candidate_lazy_on_half_the_calls_is_caught_whatever_the_seed():
    """Moving the median needs wrong work on more than half the calls; a sample of 13 of 50
    misses 26 lazy calls with probability C(24, 13) / C(50, 13) (about 2.5e-5)."""
    assert comb(24, 13) / comb(50, 13) < 1e-4
    lazy = set(checked_sample(50, 26, 12345))  # a pattern the candidate picked, unknown to the harness
    calls = []

    def fn(x):
        calls.append(1)
        i = len(calls) - 3  # two warm-up calls
        return x * 0 if i in lazy else x * 2

    def check(j, out):
        if not torch.equal(out, torch.full((8,), 2.0 * j)):
            raise ValueError("wrong")

    caught = 0
    for seed in range(200):
        calls.clear()
        try:
            _time(fn, checked_sample(50, 13, seed), check)
        except ValueError:
            caught += 1
    assert caught == 200
