"""Helpers and fixtures for the export tests: an archive holding real candidates with fabricated verdicts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from archive import Archive, KernelSpec
from archive.testing import make_result
from autotuner.evaluator.verdict import Verdict
from autotuner.tasks import load_task

REPO = Path(__file__).resolve().parents[2]
GPU = "NVIDIA H100 80GB HBM3"


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOTUNER_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'archive.db'}"


@pytest.fixture
def archive(db_url: str):
    with Archive.open(db_url) as a:
        yield a


def rules_source(task_rel: str) -> str:
    from evolution.proposers.rules import translate

    return translate(load_task(REPO / "kernels/tasks" / task_rel), max_variants=1).proposals[0].source


@pytest.fixture
def record(archive: Archive) -> Callable[..., int]:
    """record(task_rel, source, params=None, gpu=GPU, harness=None, verdict=ACCEPTED) -> kernel id."""

    def _record(task_rel: str, source: str, params: dict[str, Any] | None = None, gpu: str = GPU,
                harness: str | None = None, verdict: Verdict = Verdict.ACCEPTED, ms: float = 0.5) -> int:
        task = load_task(REPO / "kernels/tasks" / task_rel)
        result = make_result(task, verdict=verdict, gpu=gpu, harness_version=harness, candidate_ms=ms)
        return archive.record(task, KernelSpec(source, params=params or {}, proposer="manual"), result).kernel_id

    return _record


class AcceptingVerifier:
    """Stands in for the evaluator on CPU (it needs a GPU); records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[Path, Path, dict[str, Any]]] = []

    def __call__(self, task_path: Path, candidate_path: Path, params: dict[str, Any]):
        self.calls.append((task_path, candidate_path, params))
        return make_result(load_task(task_path), gpu=GPU)


@pytest.fixture
def four_ops(record) -> dict[str, int]:
    """Real candidates for four tasks: one weight and one output, none, two outputs, both."""
    return {
        "rmsnorm": record("normalization/rmsnorm.py", (REPO / "tests/candidates/rmsnorm.py").read_text(), {"BLOCK": 256}),
        "silu_mul_bf16": record("decode/silu_mul_bf16.py", (REPO / "tests/candidates/silu_mul_bf16.py").read_text()),
        "rope_bf16": record("decode/rope_bf16.py", rules_source("decode/rope_bf16.py")),
        "residual_rmsnorm_bf16": record("decode/residual_rmsnorm_bf16.py", rules_source("decode/residual_rmsnorm_bf16.py")),
    }
