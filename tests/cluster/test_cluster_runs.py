"""Whole tuning runs on the local Ray cluster with the archive on PostgreSQL.

* a worker node lost mid-run: its jobs run again elsewhere; the archive's rows are counted
  before and after (nothing lost, nothing twice) and against an uninterrupted run;
* two drivers (``autotuner tune --cluster``, one through Ray Client) on one archive at once;
* a driver killed mid-run, then ``--resume``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from archive import Archive
from archive.testing import backend_url
from autotuner.evaluator.eval_config import EvalConfig
from autotuner.tasks import load_task
from evolution.budget import Budget
from evolution.cluster import ClusterConfig, RayPool
from evolution.evalpool import EvalPool
from evolution.ledger import WorkLedger
from evolution.loop import SearchConfig, TuneRun
from evolution.proposers.base import Proposal, ProposalBatch
from evolution.simulate import simulated_evaluator
from evolution.studies import Studies
from evolution.workers import EvalWorker

ROOT = Path(__file__).parents[2]
TASK = ROOT / "kernels/tasks/activation/relu.py"
EXAMPLE = (ROOT / "examples/relu_candidate.py").read_text()
SPACE = {"BLOCK": [32, 64, 128, 256, 512, 1024], "VEC": [1, 2, 4]}
VARIANTS = [EXAMPLE, EXAMPLE.replace("fmaxf(x[i], 0.0f)", "x[i] > 0.0f ? x[i] : 0.0f"),
            EXAMPLE.replace("fmaxf(x[i], 0.0f)", "fmaxf(0.0f, x[i])"),
            EXAMPLE.replace("fmaxf(x[i], 0.0f)", "max(x[i], 0.0f)")]
SEARCH = SearchConfig(tune_trials=8, tune_top=3, tune_batch=2)
CLI_TASKS = [ROOT / "kernels/tasks/softmax/softmax.py", ROOT / "kernels/tasks/activation/gelu.py"]


class FixedProposer:
    name = "rules"

    def propose(self, request):  # noqa: ANN001, ANN201
        return ProposalBatch([Proposal(v, "translate", "rules", SPACE, {"BLOCK": 256, "VEC": 1}) for v in VARIANTS])


def _run(url: str, pool, workdir: Path) -> list:  # noqa: ANN001
    with Archive.open(url) as archive:
        run_id = archive.start_run({"config": {}, "tasks": [str(TASK)]})
        studies = Studies(archive.optuna_storage_url(), seed=0)
        try:
            run = TuneRun(archive, run_id, SEARCH, {"rules": FixedProposer()}, pool, Budget(), workdir=workdir,
                          ledger=WorkLedger(archive, run_id, pool.scope, lease_s=30), studies=studies)
            return run.run([load_task(TASK)])
        finally:
            studies.close()


def _rows(url: str, settled: bool = True) -> tuple[list[int], Counter, Counter]:
    """(evaluation ids, (source, params) -> evaluations, claim status -> count); ``settled``: no
    run is writing, so every evaluation must have its claim."""
    with Archive.open(url) as archive:
        claims = archive.work_claims()
        ids = sorted(c.evaluation_id for c in claims if c.evaluation_id is not None)
        if settled:
            assert archive.stats()["evaluations"] == len(ids), "an evaluation recorded without its claim"
        return (ids, Counter((c.source_hash, c.params_hash) for c in claims if c.status == "done"),
                Counter(c.status for c in claims))


def test_a_node_lost_mid_run_loses_nothing_and_repeats_nothing(ray_cluster, postgres_url: str,  # noqa: ANN001
                                                                 tmp_path: Path) -> None:
    pool = RayPool(EvalWorker(simulated_evaluator(0.4), EvalConfig()),
                   ClusterConfig(address=ray_cluster.address, resource="fake_gpu"))
    outcome: list = []
    runner = threading.Thread(target=lambda: outcome.extend(_run(postgres_url, pool, tmp_path / "w")))
    try:
        runner.start()
        deadline = time.monotonic() + 120
        while not (len(_rows(postgres_url, settled=False)[0]) >= 5 and len(pool.in_flight()) >= 2):
            assert time.monotonic() < deadline and runner.is_alive(), "the run did not get going"
            time.sleep(0.05)
        in_flight = pool.in_flight()
        victim = in_flight[0][0].node
        before, _, _ = _rows(postgres_url, settled=False)
        ray_cluster.kill(victim)
        runner.join(timeout=300)
        assert not runner.is_alive() and outcome, "the run did not finish after losing a node"
    finally:
        pool.close()
        ray_cluster.add_worker_node()
    after, per_setting, statuses = _rows(postgres_url)
    assert after[: len(before)] == before, "evaluations recorded before the loss changed or vanished"
    assert set(per_setting.values()) == {1}, "a setting was evaluated twice"
    assert statuses == Counter({"done": len(after)}), "claims left running"
    assert pool.requeued >= 1, "no job was in flight on the lost node: the test proved nothing"
    # As much work as an uninterrupted run (single-host pool, fresh archive): nothing dropped.
    with backend_url("postgresql", tmp_path) as fresh_url:
        local = EvalPool(simulated_evaluator(), EvalConfig(), [0, 1, 2, 3])
        try:
            _run(fresh_url, local, tmp_path / "fresh")
        finally:
            local.close()
        uninterrupted, _, _ = _rows(fresh_url)
    assert len(after) == len(uninterrupted)
    print(f"\nnode-kill counts: {len(before)} evaluations before the node was lost, {len(in_flight)} jobs in flight "
          f"({sum(1 for i, _ in in_flight if i.node == victim)} on the lost node, {pool.requeued} re-queued), "
          f"{len(after)} after; {len(per_setting)} distinct settings, claims {dict(statuses)}; "
          f"uninterrupted run: {len(uninterrupted)}")


def _tune(url: str, tmp: Path, name: str, *extra: str, delay: float = 0.2) -> subprocess.Popen:
    config = tmp / "cluster.toml"
    config.write_text('[cluster]\nresource = "fake_gpu"\nworkers = 2\nlease_s = 5\n')
    env = dict(os.environ, AUTOTUNER_CACHE_DIR=str(tmp / "cache"), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "autotuner.cli.main", "tune", "--evaluator", "simulate", "--simulate-delay", str(delay),
           "--db", url, "--config", str(config), "--tune-trials", "4", "--no-progress",
           "--report", str(tmp / f"report-{name}"), *extra]
    return subprocess.Popen(cmd, env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, text=True)


def _claimed(url: str) -> bool:
    try:
        return bool(_rows(url, settled=False)[2])
    except Exception:  # noqa: BLE001 - the schema is being created right now
        return False


def test_two_drivers_on_one_archive_share_the_work(ray_cluster, postgres_url: str, tmp_path: Path) -> None:  # noqa: ANN001
    Archive.open(postgres_url).close()
    # The same two tasks in opposite orders: each driver starts alone on one, then meets the
    # other's work on the second (taking its results, waiting for what it has in flight). The
    # Ray Client driver starts first and evaluates slowly, and the other starts once it has
    # claimed work, so the two overlap however long either takes to start (on a loaded CI
    # machine a driver started second once found all the work done: nothing was shared). At 1.5 s
    # a setting over 2 workers the first finished its 13 settings in about 10 s, before the second
    # had started (CI, 2026-12-02: [13, 0]); at 4 s it takes about 26 s.
    slow = _tune(postgres_url, tmp_path, "b", "--cluster", ray_cluster.client_address,
                 *map(str, CLI_TASKS[::-1]), delay=4.0)
    deadline = time.monotonic() + 120
    while not _claimed(postgres_url):
        assert time.monotonic() < deadline and slow.poll() is None, "the first driver did not get going"
        time.sleep(0.1)
    drivers = [slow, _tune(postgres_url, tmp_path, "a", "--cluster", ray_cluster.address, *map(str, CLI_TASKS))]
    outputs = [d.communicate(timeout=400)[0] for d in drivers]
    assert [d.returncode for d in drivers] == [0, 0], outputs
    _, per_setting, statuses = _rows(postgres_url)
    assert set(per_setting.values()) == {1}, "the two drivers evaluated a setting twice"
    assert set(statuses) == {"done"}
    with Archive.open(postgres_url) as archive:
        by_driver = [archive.run(i).run.evaluations for i in (1, 2)]
        assert [archive.run(i).run.status for i in (1, 2)] == ["done", "done"]
    assert sum(by_driver) == len(per_setting) and min(by_driver) > 0
    print(f"\ntwo drivers: {len(per_setting)} settings evaluated once each; by driver: {by_driver}")


def test_a_killed_driver_resumes_without_loss_or_repeats(ray_cluster, postgres_url: str, tmp_path: Path) -> None:  # noqa: ANN001
    proc = _tune(postgres_url, tmp_path, "killed", "--cluster", ray_cluster.address, *map(str, CLI_TASKS))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if len(_rows(postgres_url, settled=False)[0]) >= 6:
                break
        except Exception:  # noqa: BLE001 - the schema is being created right now
            pass
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before, _, running = _rows(postgres_url, settled=False)  # the killed driver may have left claims running
    assert len(before) >= 6, proc.stdout.read()
    resumed = _tune(postgres_url, tmp_path, "resumed", "--cluster", ray_cluster.address, "--resume")
    out, _ = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, out
    assert "resuming run 1" in out
    after, per_setting, statuses = _rows(postgres_url)
    assert after[: len(before)] == before, "evaluations committed before the kill changed or vanished"
    assert set(per_setting.values()) == {1}, "the resumed run evaluated a setting twice"
    assert set(statuses) == {"done"}
    with Archive.open(postgres_url) as archive:
        assert archive.run(1).run.status == "done"
    print(f"\ndriver kill: {len(before)} evaluations before (claims then: {dict(running)}), {len(after)} after resume")
