"""The timed calls' output check, on the CPU: its clock adds up its parts and judges as before."""

from types import SimpleNamespace

import pytest
import torch

from autotuner.evaluator import measure
from autotuner.evaluator.compare import tolerances_for
from autotuner.evaluator.verify import Rejection

PARTS = {"check_draw", "check_inputs", "check_reference", "check_compare"}


def _pool(value: torch.Tensor) -> SimpleNamespace:
    """A pool of one input set whose pristine draw is ``value`` (fresh memory each time)."""
    return SimpleNamespace(sets=[[value.clone()]], pristine=lambda j: [value.clone()])


@pytest.fixture(autouse=True)
def no_device(monkeypatch):
    syncs = []
    monkeypatch.setattr(measure, "_synchronize", lambda: syncs.append(1))
    return syncs


def test_clock_collects_every_part_across_calls(no_device):
    x = torch.randn(64, 32)
    clock: dict[str, float] = {}
    check = measure.timed_output_check(torch.nn.ReLU(), _pool(x), tolerances_for("float32"), clock)
    check(0, torch.relu(x))
    first = dict(clock)
    check(0, torch.relu(x))
    assert set(clock) == PARTS and all(clock[k] >= first[k] >= 0 for k in PARTS)
    assert len(no_device) == 8  # a device sync closes each part


def test_without_a_clock_nothing_is_synchronized(no_device):
    x = torch.randn(16)
    measure.timed_output_check(torch.nn.ReLU(), _pool(x), tolerances_for("float32"))(0, torch.relu(x))
    assert no_device == []


def test_clocked_check_still_rejects_wrong_outputs_and_written_inputs():
    x = torch.randn(16)
    clock: dict[str, float] = {}
    check = measure.timed_output_check(torch.nn.ReLU(), _pool(x), tolerances_for("float32"), clock)
    with pytest.raises(Rejection, match="output computed during timing was wrong"):
        check(0, torch.zeros(16) + 5)
    pool = _pool(x)
    pool.sets[0][0].add_(1.0)  # the candidate wrote into its input
    with pytest.raises(Rejection, match="wrote into its input"):
        measure.timed_output_check(torch.nn.ReLU(), pool, tolerances_for("float32"), clock)(0, torch.relu(x))
