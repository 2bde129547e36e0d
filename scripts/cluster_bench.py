#!/usr/bin/env python3
"""Simulated candidates per hour with 1, 2 and 4 workers, on the single-host pool and on Ray.

Both pools run the same ``EvalWorker`` with the simulated evaluator, which sleeps
``--delay`` seconds per setting in place of GPU time, so the figures measure the machinery
(dispatch, pickling, the archive, the claims), never a kernel. Three measurements:

* **pool**: ``--jobs`` one-setting jobs submitted at once; candidates per hour against the
  ideal (workers x 3600 / delay);
* **overhead**: jobs with no delay, one at a time; the mean round trip of a job on each pool,
  and Ray's extra cost per candidate;
* **loop**: a whole tuning run (``TuneRun``: claims, the novelty filter, optuna, the archive
  on SQLite in a temporary folder) over ``--variants`` candidates with tuning, both pools.

Without ``--address`` a local Ray cluster is started (two nodes, two ``fake_gpu`` each, as in
``tests/cluster``); with it, an existing cluster and its ``--resource`` are used.

    python scripts/cluster_bench.py --delay 0.25 --jobs 48 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from archive import Archive  # noqa: E402
from autotuner.evaluator.eval_config import EvalConfig  # noqa: E402
from autotuner.tasks import load_task  # noqa: E402
from evolution.budget import Budget  # noqa: E402
from evolution.cluster import ClusterConfig, RayPool  # noqa: E402
from evolution.evalpool import EvalPool  # noqa: E402
from evolution.ledger import WorkLedger  # noqa: E402
from evolution.loop import SearchConfig, TuneRun  # noqa: E402
from evolution.proposers.base import Proposal, ProposalBatch  # noqa: E402
from evolution.simulate import simulated_evaluator  # noqa: E402
from evolution.workers import EvalWorker, WorkerPool  # noqa: E402

TASK = REPO / "kernels/tasks/activation/relu.py"
CANDIDATE = REPO / "examples/relu_candidate.py"
SPACE = {"BLOCK": [32, 64, 128, 256, 512, 1024], "VEC": [1, 2, 4]}


def local_cluster() -> tuple[Any, str, str]:
    """A two-node Ray cluster on this machine with two ``fake_gpu`` each: (cluster, address, resource)."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                            "object_store_memory": 80 * 2**20})
    for _ in range(2):
        cluster.add_node(num_cpus=1, resources={"fake_gpu": 2}, object_store_memory=80 * 2**20)
    cluster.wait_for_nodes()
    return cluster, cluster.address, "fake_gpu"


def make_pool(kind: str, workers: int, delay_s: float, address: str, resource: str) -> WorkerPool:
    evaluator = simulated_evaluator(delay_s)
    if kind == "local":
        return EvalPool(evaluator, EvalConfig(), list(range(workers)))
    return RayPool(EvalWorker(evaluator, EvalConfig()), ClusterConfig(address=address, resource=resource,
                                                                      workers=workers))


def warm(pool: WorkerPool) -> None:
    """One job per worker at once (an idle worker takes each): every worker has imported torch and
    loaded the task before anything is timed (a Ray actor is a fresh process)."""
    task = load_task(TASK)
    for future in [pool.submit(task, CANDIDATE, [{"BLOCK": -1 - i}]) for i in range(pool.workers)]:
        future.result()


def bench_pool(pool: WorkerPool, jobs: int) -> float:
    """Seconds for ``jobs`` one-setting jobs, all submitted at once."""
    task = load_task(TASK)
    warm(pool)
    started = time.perf_counter()
    futures = [pool.submit(task, CANDIDATE, [{"BLOCK": 2 + i}]) for i in range(jobs)]
    for f in futures:
        f.result()
    return time.perf_counter() - started


def bench_round_trip(pool: WorkerPool, jobs: int) -> list[float]:
    """Seconds per job, one job in flight at a time (no simulated delay: the machinery alone)."""
    task = load_task(TASK)
    warm(pool)
    times = []
    for i in range(jobs):
        started = time.perf_counter()
        pool.submit(task, CANDIDATE, [{"BLOCK": 2 + i}]).result()
        times.append(time.perf_counter() - started)
    return times


def _helpers(i: int) -> str:
    """Two device functions unique to variant ``i``: enough new tokens to pass the novelty filter."""
    return (f"__device__ float pad_{i}_a(float v) {{ return v * {i}.0f + {i * 7 + 1}.0f - {i * 3 + 2}.0f; }}\n"
            f"__device__ float pad_{i}_b(float v) {{ return pad_{i}_a(v) * {i + 5}.0f; }}\n")


class Variants:
    """``n`` distinct candidates with a tunable space (the rules proposer's role, made up)."""

    name = "rules"

    def __init__(self, n: int) -> None:
        source = CANDIDATE.read_text()
        self.sources = [source.replace('extern "C"', _helpers(i) + 'extern "C"', 1) for i in range(n)]

    def propose(self, request: Any) -> ProposalBatch:
        return ProposalBatch([Proposal(s, "translate", "rules", SPACE, {"BLOCK": 256, "VEC": 1}) for s in self.sources])


def bench_loop(pool: WorkerPool, variants: int, tmp: Path) -> tuple[int, float]:
    """(candidates evaluated, seconds) for a whole tuning run on a fresh SQLite archive."""
    with Archive.open(f"sqlite:///{tmp / 'archive.db'}") as archive:
        run_id = archive.start_run({"config": {}, "tasks": [str(TASK)]})
        search = SearchConfig(tune_trials=6, tune_top=4, tune_batch=2, max_variants=variants)
        run = TuneRun(archive, run_id, search, {"rules": Variants(variants)}, pool, Budget(), workdir=tmp / "w",
                      ledger=WorkLedger(archive, run_id, pool.scope))
        started = time.perf_counter()
        run.run([load_task(TASK)])
        seconds = time.perf_counter() - started
        return archive.stats()["evaluations"], seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts to measure (default 1,2,4)")
    parser.add_argument("--delay", type=float, default=0.25, help="simulated GPU seconds per setting")
    parser.add_argument("--jobs", type=int, default=48, help="jobs per pool measurement")
    parser.add_argument("--round-trips", type=int, default=100, help="jobs for the overhead measurement")
    parser.add_argument("--variants", type=int, default=12, help="candidates in the loop measurement")
    parser.add_argument("--address", help="an existing Ray cluster (default: start a local one)")
    parser.add_argument("--resource", default="GPU", help="the resource one worker takes (with --address)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    cache = tempfile.TemporaryDirectory(prefix="autotuner-bench-")
    os.environ["AUTOTUNER_CACHE_DIR"] = cache.name  # before the cluster starts: its workers inherit it

    import ray

    cluster = None
    if args.address:
        address, resource = args.address, args.resource
    else:
        cluster, address, resource = local_cluster()
    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    rows: list[dict[str, Any]] = []
    try:
        for workers in counts:
            for kind in ("local", "ray"):
                pool = make_pool(kind, workers, args.delay, address, resource)
                try:
                    seconds = bench_pool(pool, args.jobs)
                finally:
                    pool.close()
                rows.append({"measure": "pool", "pool": kind, "workers": workers, "jobs": args.jobs,
                             "seconds": seconds, "candidates_per_hour": args.jobs / seconds * 3600,
                             "ideal_per_hour": workers * 3600 / args.delay})
                print(f"pool  {kind:5} {workers} workers: {rows[-1]['candidates_per_hour']:8.0f} cand/h "
                      f"(ideal {rows[-1]['ideal_per_hour']:.0f})", flush=True)
        trips = {}
        for kind in ("local", "ray"):
            pool = make_pool(kind, 1, 0.0, address, resource)
            try:
                trips[kind] = bench_round_trip(pool, args.round_trips)
            finally:
                pool.close()
        overhead = {kind: {"mean_ms": statistics.mean(t) * 1e3, "median_ms": statistics.median(t) * 1e3,
                           "p90_ms": sorted(t)[int(0.9 * len(t))] * 1e3} for kind, t in trips.items()}
        extra_ms = overhead["ray"]["mean_ms"] - overhead["local"]["mean_ms"]
        rows.append({"measure": "overhead", **{f"{k}_{m}": v for k, d in overhead.items() for m, v in d.items()},
                     "ray_extra_ms_per_candidate": extra_ms})
        print(f"round trip: local {overhead['local']['mean_ms']:.1f} ms, ray {overhead['ray']['mean_ms']:.1f} ms "
              f"(median {overhead['ray']['median_ms']:.1f}): Ray adds {extra_ms:.1f} ms per candidate", flush=True)
        for workers in counts:
            for kind in ("local", "ray"):
                pool = make_pool(kind, workers, args.delay, address, resource)
                try:
                    warm(pool)
                    with tempfile.TemporaryDirectory() as tmp:
                        evaluated, seconds = bench_loop(pool, args.variants, Path(tmp))
                finally:
                    pool.close()
                rows.append({"measure": "loop", "pool": kind, "workers": workers, "candidates": evaluated,
                             "seconds": seconds, "candidates_per_hour": evaluated / seconds * 3600})
                print(f"loop  {kind:5} {workers} workers: {rows[-1]['candidates_per_hour']:8.0f} cand/h "
                      f"({evaluated} candidates in {seconds:.1f} s)", flush=True)
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        cache.cleanup()
    print()
    print(f"simulated: {args.delay} s per setting; candidates per hour (ideal = workers x {3600 / args.delay:.0f})")
    print("| workers | pool: single-host | pool: Ray | ideal | loop: single-host | loop: Ray |")
    print("| --- | --- | --- | --- | --- | --- |")
    for workers in counts:
        get = {(r["measure"], r["pool"]): r for r in rows if r.get("workers") == workers}
        print(f"| {workers} | {get['pool', 'local']['candidates_per_hour']:.0f} | {get['pool', 'ray']['candidates_per_hour']:.0f} "
              f"| {get['pool', 'local']['ideal_per_hour']:.0f} | {get['loop', 'local']['candidates_per_hour']:.0f} "
              f"| {get['loop', 'ray']['candidates_per_hour']:.0f} |")
    print(f"Ray's overhead per candidate: {extra_ms:.1f} ms (round trip {overhead['ray']['mean_ms']:.1f} ms "
          f"against {overhead['local']['mean_ms']:.1f} ms on the single-host pool)")
    if args.json:
        Path(args.json).write_text(json.dumps({"delay_s": args.delay, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
