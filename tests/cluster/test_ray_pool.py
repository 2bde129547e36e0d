"""The Ray pool when nodes die: jobs in flight on a lost node run again elsewhere, once.

Each test that kills a node adds a fresh one back, so the shared cluster keeps its shape.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from autotuner.errors import ClusterError, WorkerLostError
from autotuner.evaluator.eval_config import EvalConfig
from autotuner.tasks import load_task
from evolution.cluster import ClusterConfig, RayPool
from evolution.simulate import simulated_evaluator
from evolution.workers import EvalWorker

ROOT = Path(__file__).parents[2]
TASK = ROOT / "kernels/tasks/activation/relu.py"
CANDIDATE = ROOT / "examples/relu_candidate.py"


def _pool(cluster, delay_s: float = 0.0, **options) -> RayPool:  # noqa: ANN001
    config = ClusterConfig(address=cluster.address, resource="fake_gpu", **options)
    return RayPool(EvalWorker(simulated_evaluator(delay_s), EvalConfig()), config)


def _wait_for(predicate, timeout_s: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_one_actor_per_unit_of_the_resource_each_on_its_node(ray_cluster) -> None:  # noqa: ANN001
    pool = _pool(ray_cluster)
    try:
        infos = pool.live_workers
        assert len(infos) == pool.workers == 4
        nodes = {n.node_id for n in ray_cluster.worker_nodes}
        assert {i.node for i in infos} == nodes  # two on each worker node, none on the head
        assert all(i.gpu_name == "simulated" and i.gpu == 0 for i in infos)
    finally:
        pool.close()
    capped = _pool(ray_cluster, workers=1)
    try:
        assert capped.workers == 1
    finally:
        capped.close()


def test_a_lost_nodes_jobs_run_again_on_the_other_workers(ray_cluster) -> None:  # noqa: ANN001
    task = load_task(TASK)
    pool = _pool(ray_cluster, delay_s=1.0)
    try:
        futures = [pool.submit(task, CANDIDATE, [{"BLOCK": b}, {"BLOCK": b * 2}]) for b in (16, 32, 64, 128, 256, 512)]
        _wait_for(lambda: len(pool.in_flight()) == 4)
        victim = pool.in_flight()[0][0].node
        lost = [job for info, job in pool.in_flight() if info.node == victim]
        ray_cluster.kill(victim)
        results = [f.result(timeout=120) for f in futures]
        assert [len(r) for r in results] == [2] * 6 and all(r.verdict.value == "accepted" for rs in results for r in rs)
        assert pool.requeued == len(lost) == 2
        assert len(pool.lost_workers) == 2
        assert sum(pool.settings_per_gpu.values()) == 12, "a job lost with its node was counted, or run twice"
        assert len(pool.live_workers) == 2
    finally:
        pool.close()
        ray_cluster.add_worker_node()


def test_with_every_worker_gone_the_jobs_fail_with_a_reason(ray_cluster) -> None:  # noqa: ANN001
    task = load_task(TASK)
    pool = _pool(ray_cluster, delay_s=2.0, worker_wait_s=1.0, max_attempts=5)
    try:
        futures = [pool.submit(task, CANDIDATE, [{"BLOCK": b}]) for b in (16, 32, 64, 128, 256)]
        _wait_for(lambda: len(pool.in_flight()) == 4)
        for node in list(ray_cluster.worker_nodes):
            ray_cluster.kill(node.node_id)
        for future in futures:
            with pytest.raises(WorkerLostError, match="no evaluation worker left.*--resume"):
                future.result(timeout=120)
    finally:
        pool.close()
        ray_cluster.add_worker_node()
        ray_cluster.add_worker_node()


def test_a_cluster_without_the_resource_is_refused_with_what_to_do(ray_cluster) -> None:  # noqa: ANN001
    config = ClusterConfig(address=ray_cluster.address, resource="tpu_v9")
    with pytest.raises(ClusterError, match="offers no 'tpu_v9' resource.*resource"):
        RayPool(EvalWorker(simulated_evaluator(), EvalConfig()), config)
