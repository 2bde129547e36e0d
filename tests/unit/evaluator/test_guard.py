"""Guard bytes: placed around inputs, parameters and every allocation of a forward; a write
past the end or before the start is named. On CPU tensors here (the evaluator guards CUDA)."""

from __future__ import annotations

import pytest
import torch

from autotuner.evaluator.guard import CANARY, GuardSet, guard_inputs, guard_module
from autotuner.evaluator.watch import OpWatch


def _guards(n: int = 256) -> GuardSet:
    return GuardSet(n, devices=("cpu",))


def _past_end(t: torch.Tensor, k: int = 1) -> torch.Tensor:
    """The k elements right after ``t``'s last one (what an off-by-one kernel writes)."""
    return t.as_strided((k,), (1,), t.storage_offset() + t.numel())


def test_guarded_copy_is_equal_and_clean():
    guards = _guards()
    x = torch.randn(3, 5)
    (g,) = guard_inputs(guards, [x])
    assert torch.equal(g, x) and g.stride() == x.stride()
    assert (g.data_ptr() - g.untyped_storage().data_ptr()) % 256 == 0, "vector loads stay aligned"
    assert guards.check() is None


def test_write_past_the_end_is_named():
    guards = _guards()
    (g,) = guard_inputs(guards, [torch.zeros(10)])
    _past_end(g).fill_(1.0)
    reason = guards.check()
    assert reason and "after its end" in reason and "input 0" in reason


def test_write_before_the_start_is_named():
    guards = _guards()
    (g,) = guard_inputs(guards, [torch.zeros(10)])
    g.as_strided((1,), (1,), g.storage_offset() - 1).fill_(2.0)
    reason = guards.check()
    assert reason and "before its start" in reason


def test_guards_read_as_nan():
    """A read past the end that reaches the output makes it NaN, which never passes."""
    (g,) = guard_inputs(_guards(), [torch.zeros(4)])
    assert torch.isnan(_past_end(g)).all()
    assert CANARY == 0xFF


@pytest.mark.parametrize("alloc", [torch.empty_like, torch.zeros_like, lambda x: torch.full_like(x, 3.0)])
def test_allocations_in_the_forward_are_guarded(alloc):
    guards = _guards()
    x = torch.randn(7)
    with OpWatch("strict", guards=guards):
        y = alloc(x)
        _past_end(y).fill_(0.5)  # the slack a caching allocator would have hidden
    reason = guards.check()
    assert reason and "after its end" in reason and "tensor from" in reason


def test_zeros_keep_their_values_and_empty_is_poisoned():
    guards = _guards()
    with OpWatch("strict", guards=guards):
        z = torch.zeros(5)
        e = torch.empty(5)
    assert torch.equal(z, torch.zeros(5)) and torch.isnan(e).all()
    assert guards.check() is None


def test_module_parameters_are_guarded():
    guards = _guards()
    model = torch.nn.Linear(4, 3)
    before = model.weight.detach().clone()
    guard_module(guards, model)
    assert torch.equal(model.weight, before)
    with torch.no_grad():
        _past_end(model.bias).fill_(9.0)
    assert "parameter bias" in guards.check()


def test_guards_off_changes_nothing():
    guards = GuardSet(0, devices=("cpu",))
    x = torch.randn(3)
    assert guard_inputs(guards, [x])[0] is x and guards.check() is None
