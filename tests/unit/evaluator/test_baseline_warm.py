"""Compiling the tasks' torch.compile baselines ahead of a run (evaluator/baseline_warm.py,
app/warm.py): failures stay per task, the gates hold, and on a GPU the caches fill."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from autotuner.app.run_config import RunConfig
from autotuner.app.warm import warm_before_run
from autotuner.evaluator import EvalConfig
from autotuner.evaluator.baseline_warm import Warmed, default_jobs, warm_baselines
from autotuner.tasks import load_task, suite_dir

TASKS = [suite_dir() / "activation" / "relu.py", suite_dir() / "activation" / "gelu.py"]


def test_default_jobs_is_bounded() -> None:
    assert 1 <= default_jobs() <= 8


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the outcome without a GPU")
def test_without_a_gpu_every_task_says_why_and_nothing_raises(tmp_path: Path) -> None:
    results = warm_baselines(TASKS, tmp_path, jobs=2, config=EvalConfig())
    assert sorted(r.task for r in results) == ["gelu", "relu"]
    assert all(r.error and "NoGPUError" in r.error for r in results)


def _fake_warm(calls: list) -> object:
    def fake(paths, cache_dir, jobs, config, done=None):  # noqa: ANN001, ANN202
        calls.append((list(paths), jobs))
        return [Warmed("relu", 1.0), Warmed("gelu", 0.1, cached=True), Warmed("tanh", 0.5, "RuntimeError: boom")]
    return fake


def test_warm_before_run_gates_and_says_what_it_did(monkeypatch: pytest.MonkeyPatch) -> None:
    import autotuner.evaluator.baseline_warm as warm
    import autotuner.runtime.device as device

    calls: list = []
    monkeypatch.setattr(warm, "warm_baselines", _fake_warm(calls))
    monkeypatch.setattr(device, "cuda_available", lambda: True)
    tasks = [load_task(p) for p in TASKS]
    lines: list[str] = []
    warm_before_run(RunConfig(), tasks, 3, lines.append)
    assert calls == [([t.path for t in tasks], 3)]
    assert "1 compiled" in lines[0] and "1 already measured" in lines[0] and "2 processes" in lines[0]
    assert "tanh" in lines[1] and "boom" in lines[1]
    for config, given, jobs in [(RunConfig(), tasks[:1], 3),  # one task: nothing to overlap
                                (RunConfig(), tasks, 0),  # turned off
                                (RunConfig(eval=replace(EvalConfig(), compile_baseline=False)), tasks, 3),
                                (RunConfig(eval=replace(EvalConfig(), baselines=False)), tasks, 3)]:
        warm_before_run(config, given, jobs, lines.append)
    assert len(calls) == 1, "a gate let a warm-up through"
    monkeypatch.setattr(device, "cuda_available", lambda: False)
    warm_before_run(RunConfig(), tasks, 3, lines.append)
    assert len(calls) == 1


@pytest.mark.gpu
def test_on_the_gpu_the_compile_caches_fill(tmp_path: Path) -> None:
    results = warm_baselines(TASKS, tmp_path, jobs=2, config=EvalConfig())
    assert [r.error for r in results] == [None, None], results
    assert not any(r.cached for r in results)
    assert any((tmp_path / "inductor").rglob("*")), "nothing in Inductor's cache"
