"""``TIMING = "graph"`` without a GPU: the task metadata, how many copies a timing graph
replays, and the compiled baseline's copies sharing one function (GPU behaviour:
tests/gpu/test_graph_timed_eval.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from autotuner.errors import TaskLoadError
from autotuner.evaluator.measure import functional_copies, graph_copies, model_bytes
from autotuner.tasks import load_task

TASK = """
import torch, torch.nn as nn
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, 8)
    def forward(self, x):
        return self.lin(x)
def get_inputs():
    return [torch.randn(2, 16)]
def get_init_inputs():
    return []
"""


def test_timing_defaults_to_events_and_reads_graph(tmp_path: Path) -> None:
    plain = tmp_path / "plain.py"
    plain.write_text(TASK)
    assert load_task(plain).timing == "events"
    graphed = tmp_path / "graphed.py"
    graphed.write_text(TASK + 'TIMING = "graph"\n')
    assert load_task(graphed).timing == "graph"


def test_unknown_timing_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(TASK + 'TIMING = "wallclock"\n')
    with pytest.raises(TaskLoadError, match="TIMING = 'wallclock'"):
        load_task(bad)


def test_graph_copies_cover_three_l2s_within_the_pool() -> None:
    pool = SimpleNamespace(sets=[None] * 50, set_bytes=4096)
    l2 = 50 << 20
    assert graph_copies(pool, 8 << 20, l2) == 19          # an 8 MB projection: 19 copies > 150 MB
    assert graph_copies(pool, 525 << 20, l2) == 2         # the LM head: never fewer than 2
    assert graph_copies(pool, 0, l2) == 50                # weightless, tiny inputs: the whole pool
    assert graph_copies(SimpleNamespace(sets=[None] * 3, set_bytes=1), 1, l2) == 3


def test_model_bytes_counts_parameters_and_buffers() -> None:
    m = nn.BatchNorm1d(10)  # 2 parameters and 3 buffers (running mean / var, batch count)
    assert model_bytes(m) == 4 * 10 * 4 + 8


def test_functional_copies_compute_each_copy_with_its_own_weights() -> None:
    torch.manual_seed(0)
    copies = [nn.Linear(16, 8) for _ in range(3)]
    wrapped = []
    fns = functional_copies(copies[0], copies, lambda f: wrapped.append(f) or f)
    assert len(wrapped) == 1  # one function for every copy: compiled once
    x = torch.randn(2, 16)
    for fn, copy in zip(fns, copies):
        assert torch.equal(fn(x), copy(x))
    assert not torch.equal(fns[0](x), fns[1](x))


def test_graph_samples_count_every_call_they_timed() -> None:
    """A graph replay of 3 copies times 3 calls: 17 replays are 51 calls, which the parent's
    plausibility check (at least ``timing_calls``) must accept (it refused them as 17 once)."""
    from autotuner.evaluator.verdict import TimingStats

    stats = TimingStats.from_samples([0.002] * 17, calls_per_sample=3)
    assert stats.n_calls == 51
    assert TimingStats.from_samples([0.002] * 17).n_calls == 17
