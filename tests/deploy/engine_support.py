"""Helpers and fixtures for the engine tests: a throwaway archive, recorded kernels, a fake verifier."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from archive import Archive, KernelSpec
from archive.testing import make_result
from autotuner.deploy.resolve import suite_task
from autotuner.deploy.slots import SLOT_TASKS
from autotuner.evaluator.verdict import Verdict
from autotuner.tasks import load_task

REPO = Path(__file__).resolve().parents[2]
GPU = "NVIDIA H100 80GB HBM3"
# The seed each fused decode slot binds when a test binds the seeds directly (no archive).
FUSED_SEEDS = {"qkv_rope_append": "decode_qkv_rope_append_bf16", "attention_decode": "attention_decode_gqa_bf16",
               "o_residual": "decode_gemv_residual_bf16", "gate_up_silu": "decode_gate_up_silu_bf16",
               "down_residual": "decode_gemv_residual_bf16", "lm_head_argmax": "decode_lm_head_argmax_bf16"}
GEMV_SEEDS = {slot: seed for slot, seed in FUSED_SEEDS.items() if slot != "attention_decode"}
# The attention + O-projection + residual seed: bound, it replaces attention_decode and o_residual.
ATTENTION_O_SEED = {"attention_o_residual": "attention_o_residual_bf16"}


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOTUNER_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def archive(tmp_path: Path):
    with Archive.open(f"sqlite:///{tmp_path / 'archive.db'}") as a:
        yield a


@pytest.fixture
def record(archive: Archive) -> Callable[..., int]:
    """record(slot, source, dtype="bfloat16", gpu=GPU, harness=None, ms=0.5, verdict=ACCEPTED) -> kernel id."""

    def _record(slot: str, source: str, dtype: str = "bfloat16", gpu: str = GPU, harness: str | None = None,
                ms: float = 0.5, verdict: Verdict = Verdict.ACCEPTED, params: dict[str, Any] | None = None) -> int:
        task = load_task(suite_task(SLOT_TASKS[slot][dtype]))
        result = make_result(task, verdict=verdict, candidate_ms=ms, gpu=gpu, harness_version=harness)
        return archive.record(task, KernelSpec(source, params=params or {}, proposer="manual"), result).kernel_id

    return _record


class FakeVerifier:
    """Stands in for the evaluator (which needs a GPU): accepts, or rejects the listed sources."""

    def __init__(self, reject: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[Path, Path, dict[str, Any]]] = []
        self.reject = reject

    def __call__(self, task_path: Path, candidate_path: Path, params: dict[str, Any]):
        self.calls.append((task_path, candidate_path, params))
        task = load_task(task_path)
        bad = candidate_path.read_text() in self.reject
        return make_result(task, verdict=Verdict.REJECTED if bad else Verdict.ACCEPTED, gpu=GPU)


@pytest.fixture
def verifier() -> FakeVerifier:
    return FakeVerifier()


@pytest.fixture(scope="module")
def tuned_archive(tmp_path_factory: pytest.TempPathFactory):
    """Every slot task's rules candidate and seeds (and tests/candidates/silu_mul_bf16.py),
    evaluated on the GPU four at a time and recorded: what the engine's GPU tests resolve."""
    from autotuner.evaluator import EvalConfig, evaluate
    from evolution.proposers.rules import translate
    from evolution.proposers.seeds import seeds_for

    tmp = tmp_path_factory.mktemp("tuned")
    archive = Archive.open(f"sqlite:///{tmp / 'archive.db'}")
    jobs = []  # (task, index, source, path)
    for slot, by_dtype in SLOT_TASKS.items():
        task = load_task(suite_task(by_dtype["bfloat16"]))
        sources = [p.source for p in translate(task, max_variants=1).proposals]
        sources += [p.source for p in seeds_for(task)]  # grouped-query attention: a hand-written seed
        if slot == "silu_mul":
            sources.append((REPO / "tests/candidates/silu_mul_bf16.py").read_text())
        for i, source in enumerate(sources):
            path = tmp / f"{task.name}_{i}.py"
            path.write_text(source)
            jobs.append((task, i, source, path))
    # A dozen evaluations, each in its own child: several at once, as a search runs them (verdicts
    # are what this fixture needs; the slots' timings only rank kernels of the same task).
    started = time.perf_counter()

    def run(job):  # noqa: ANN001, ANN202
        result = evaluate(job[0].path, job[3], config=EvalConfig(baselines=False))
        # Printed as each finishes (pytest -s): a slow fixture shows where its minutes go.
        print(f"{time.perf_counter() - started:6.1f} s  {job[0].name}[{job[1]}]: {result.verdict.value}", flush=True)
        return result

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, jobs))
    notes = []
    for (task, i, source, _), result in zip(jobs, results):
        notes.append(f"{task.name}[{i}]: {result.verdict.value} {result.reason[:200]}")
        if result.verdict.value != "error":
            archive.record(task, KernelSpec(source, proposer="rules" if i == 0 else "manual"), result)
    print("\n".join(notes))
    yield archive
    archive.close()
