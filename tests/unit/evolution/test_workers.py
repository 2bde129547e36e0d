"""The per-GPU worker: one object whether a thread of the single-host pool or a Ray actor holds it.

These run without Ray: ``WorkerActor`` is a plain class that Ray wraps at run time, so the
actor's code path is exercised here, next to the single-host pool, on any machine.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import autotuner
from autotuner.evaluator.eval_config import EvalConfig
from autotuner.tasks import load_task
from evolution.cluster import WorkerActor
from evolution.evalpool import EvalPool
from evolution.simulate import SIMULATED_GPU, simulated_evaluator
from evolution.workers import EvalJob, EvalWorker, WorkerPool, scope_of

ROOT = Path(__file__).parents[3]
TASK = ROOT / "kernels/tasks/activation/relu.py"
CANDIDATE = ROOT / "examples/relu_candidate.py"
SETTINGS = [{"BLOCK": 128}, {"BLOCK": 256}, {"BLOCK": 1024}]


def _summary(results):  # noqa: ANN001, ANN202
    return [(r.verdict, r.stage, r.task_name, r.task_hash, r.candidate_hash, r.speedup_eager) for r in results]


def test_a_job_carries_the_texts_so_a_worker_elsewhere_needs_no_shared_files(tmp_path: Path) -> None:
    task = load_task(TASK)
    job = EvalJob.of(task, CANDIDATE, SETTINGS)
    here = EvalWorker(simulated_evaluator(), EvalConfig(), workdir=tmp_path / "here").evaluate(job)
    # A remote node: the driver's paths do not exist there.
    remote = EvalJob(**{**job.__dict__, "task_path": "/nowhere/relu.py", "candidate_path": "/nowhere/c.py"})
    worker = EvalWorker(simulated_evaluator(), EvalConfig(), workdir=tmp_path / "node")
    there = worker.evaluate(remote)
    assert _summary(there) == _summary(here)
    assert there[0].task_name == "relu"  # the task is named after its file, rewritten under its own name
    assert (tmp_path / "node" / "tasks").is_dir() and (tmp_path / "node" / "candidates").is_dir()
    assert not (tmp_path / "here").exists(), "with the driver's own files present, nothing is copied"


def test_a_worker_pickles_without_its_loaded_tasks(tmp_path: Path) -> None:
    worker = EvalWorker(simulated_evaluator(0.0), EvalConfig(), gpu=3, workdir=tmp_path)
    job = EvalJob.of(load_task(TASK), CANDIDATE, SETTINGS)
    first = worker.evaluate(job)
    clone = pickle.loads(pickle.dumps(worker))  # what Ray does to hand it to an actor
    assert clone.config.gpu == 3 and clone._tasks == {}
    assert _summary(clone.evaluate(job)) == _summary(first)


def test_the_actor_wraps_the_same_worker_the_single_host_pool_runs(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setitem(sys.modules, "ray", None)  # as on the GPU machine: no Ray at all
    task = load_task(TASK)
    pool = EvalPool(simulated_evaluator(), EvalConfig(), [0, 1])
    try:
        assert isinstance(pool, WorkerPool)
        from_pool = pool.submit(task, CANDIDATE, SETTINGS).result(timeout=60)
        worker = pool._workers[0]
    finally:
        pool.close()
    actor = WorkerActor(pickle.loads(pickle.dumps(worker)))  # as Ray builds it: the pool's own worker object
    assert type(actor.worker) is EvalWorker
    assert _summary(actor.evaluate(EvalJob.of(task, CANDIDATE, SETTINGS))) == _summary(from_pool)
    info = actor.describe()
    assert (info.gpu_name, info.gpu, info.node) == (SIMULATED_GPU, 0, "")  # no Ray: no node


def test_the_scope_names_the_harness_and_the_gpu_kind() -> None:
    pool = EvalPool(simulated_evaluator(), EvalConfig(), [0, 1])
    try:
        assert pool.scope == scope_of([w.describe() for w in pool._workers]) == \
            f"harness {autotuner.HARNESS_VERSION} on simulated"
    finally:
        pool.close()


def test_closing_the_pool_cancels_jobs_no_worker_started() -> None:
    task = load_task(TASK)
    pool = EvalPool(simulated_evaluator(0.3), EvalConfig(), [0])
    futures = [pool.submit(task, CANDIDATE, [s]) for s in SETTINGS]
    futures[0].result(timeout=60)
    pool.close()
    assert futures[-1].cancelled()
