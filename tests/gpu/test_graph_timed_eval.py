"""``TIMING = "graph"`` on the GPU: a decode-size task timed from one CUDA graph (copies of the
weights and inputs past the L2), its host launch cost gone from the figure; a candidate whose
graph replays nothing is rejected; the baselines are timed the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotuner.evaluator import EvalConfig, Stage, Verdict, evaluate

pytestmark = pytest.mark.gpu
ROOT = Path(__file__).parents[2]
RELU = ROOT / "examples/relu_candidate.py"
CHEAT = ROOT / "tests/gpu/candidates/relu_capture_replays_nothing.py"
SMALL_RELU = '''
import torch, torch.nn as nn
class Model(nn.Module):
    def forward(self, x):
        return torch.relu(x)
batch_size, dim = 16, 4096
def get_inputs():
    return [torch.randn(batch_size, dim)]
def get_init_inputs():
    return []
SHAPES = [{"name": "odd", "batch_size": 3, "dim": 1001, "hidden": True}]
'''


def _task(tmp_path: Path, timing: str) -> Path:
    path = tmp_path / f"relu_{timing}.py"
    path.write_text(SMALL_RELU + f'TIMING = "{timing}"\n')
    return path


def test_graph_timing_drops_the_host_launch_cost(tmp_path: Path) -> None:
    config = EvalConfig(compile_baseline=False)
    graphed = evaluate(_task(tmp_path, "graph"), RELU, config)
    events = evaluate(_task(tmp_path, "events"), RELU, config)
    assert graphed.verdict is Verdict.ACCEPTED, graphed.reason
    assert events.verdict is Verdict.ACCEPTED, events.reason
    # 256 KB in, 256 KB out: a few microseconds on the device, tens from Python with a sync
    g, e = graphed.timed, events.timed
    assert g.candidate.median_ms < 0.02 and g.eager.median_ms < 0.02, (g.candidate, g.eager)
    assert g.candidate.median_ms < e.candidate.median_ms / 2
    # n_calls counts calls (replays x copies in the graph), as the parent's plausibility check does
    assert g.candidate.n_calls >= config.timing_calls and g.eager.n_calls >= config.timing_calls


def test_graph_timing_with_the_compile_baseline(tmp_path: Path) -> None:
    result = evaluate(_task(tmp_path, "graph"), RELU, EvalConfig())
    assert result.verdict is Verdict.ACCEPTED, result.reason
    assert result.timed.compiled is not None and result.timed.compiled.median_ms < 0.02


def test_a_graph_that_replays_nothing_is_rejected(tmp_path: Path) -> None:
    result = evaluate(_task(tmp_path, "graph"), CHEAT, EvalConfig(compile_baseline=False))
    assert result.verdict is Verdict.REJECTED and result.stage is Stage.TIMING, (result.stage, result.reason)
    assert "output computed during timing was wrong" in result.reason
