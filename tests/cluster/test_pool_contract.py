"""The WorkerPool contract, run on both pools: this machine's threads and a Ray actor per GPU.

The Ray pool runs on the shared local cluster (``conftest.py``: two nodes, two ``fake_gpu``
each); both pools run the same ``EvalWorker`` with the simulated evaluator.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import autotuner
from autotuner.errors import EvaluationError
from autotuner.evaluator.eval_config import EvalConfig
from autotuner.tasks import load_task
from evolution.cluster import ClusterConfig
from evolution.evalpool import EvalPool
from evolution.simulate import SimulatedEvaluator
from evolution.workers import EvalWorker, WorkerPool

ROOT = Path(__file__).parents[2]
TASK = ROOT / "kernels/tasks/activation/relu.py"
CANDIDATE = ROOT / "examples/relu_candidate.py"
BROKEN = "# make the evaluator itself fail"


class FailingOnMarker(SimulatedEvaluator):
    """The simulated evaluator, except that a candidate holding ``BROKEN`` breaks the harness."""

    def __call__(self, task, candidate, settings, config):  # noqa: ANN001, ANN204
        if BROKEN in Path(candidate).read_text():
            raise EvaluationError("the harness broke (on purpose, in a test)")
        return super().__call__(task, candidate, settings, config)


def make_pool(kind: str, request: pytest.FixtureRequest, delay_s: float = 0.05) -> WorkerPool:
    evaluator = FailingOnMarker(delay_s)
    if kind == "local":
        return EvalPool(evaluator, EvalConfig(), [0, 1, 2, 3])
    cluster = request.getfixturevalue("ray_cluster")
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test's evaluator class travels by value
    from evolution.cluster import RayPool

    return RayPool(EvalWorker(evaluator, EvalConfig()), ClusterConfig(address=cluster.address, resource="fake_gpu"))


@pytest.fixture(params=["local", "ray"])
def pool(request: pytest.FixtureRequest) -> Iterator[WorkerPool]:
    built = make_pool(request.param, request)
    yield built
    built.close()


def test_results_come_back_one_per_setting_in_order(pool: WorkerPool) -> None:
    assert isinstance(pool, WorkerPool) and pool.workers == 4
    settings = [{"BLOCK": b} for b in (1024, 64, 256)]
    results = pool.submit(load_task(TASK), CANDIDATE, settings).result(timeout=120)
    assert len(results) == 3 and all(r.task_name == "relu" for r in results)
    speeds = [r.speedup_eager for r in results]
    alone = [pool.submit(load_task(TASK), CANDIDATE, [s]).result(timeout=120)[0].speedup_eager for s in settings]
    assert speeds == alone  # deterministic per setting, whichever worker ran it


def test_many_threads_submit_at_once_and_every_worker_gets_work(pool: WorkerPool) -> None:
    task = load_task(TASK)
    out: list[Any] = []
    lock = threading.Lock()

    def submit(block: int) -> None:
        result = pool.submit(task, CANDIDATE, [{"BLOCK": block}]).result(timeout=120)
        with lock:
            out.append(result[0])

    threads = [threading.Thread(target=submit, args=(b,)) for b in range(16, 16 + 12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert len(out) == 12
    assert sum(pool.settings_per_gpu.values()) == 12
    assert len(pool.settings_per_gpu) == pool.workers, "a worker was started beyond the pool's size"
    assert len([n for n in pool.settings_per_gpu.values() if n]) >= 2, pool.settings_per_gpu


def test_the_evaluators_own_error_reaches_the_caller(pool: WorkerPool, tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text(CANDIDATE.read_text() + f"\n{BROKEN}\n")
    with pytest.raises(EvaluationError, match="on purpose"):
        pool.submit(load_task(TASK), broken, [{}]).result(timeout=120)
    assert pool.submit(load_task(TASK), CANDIDATE, [{}]).result(timeout=120)  # the worker is still there


def test_both_pools_name_the_same_scope(pool: WorkerPool) -> None:
    assert pool.scope == f"harness {autotuner.HARNESS_VERSION} on simulated"
