"""Several drivers on one archive share the work: none evaluates a candidate and setting twice.

Drivers here are threads with their own ``Archive`` (own connections), ledger (own owner name)
and single-host pool, on SQLite and on PostgreSQL (where optuna's studies are shared too).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from archive import Archive
from archive_backends import db_url  # noqa: F401 - the fixture: SQLite and PostgreSQL
from autotuner.candidate import source_hash
from autotuner.evaluator.eval_config import EvalConfig
from autotuner.tasks import load_task
from evolution.budget import Budget
from evolution.evalpool import EvalPool
from evolution.ledger import WorkLedger
from evolution.loop import SearchConfig, TuneRun
from evolution.novelty import SharedNoveltyFilter
from evolution.proposers.base import Proposal, ProposalBatch
from evolution.simulate import simulated_evaluator
from evolution.studies import Studies
from evolution.tuning import params_key

ROOT = Path(__file__).parents[3]
TASK = ROOT / "kernels/tasks/activation/relu.py"
EXAMPLE = (ROOT / "examples/relu_candidate.py").read_text()
SPACE = {"BLOCK": [64, 128, 256, 512, 1024]}
VARIANTS = [EXAMPLE, EXAMPLE.replace("fmaxf(x[i], 0.0f)", "x[i] > 0.0f ? x[i] : 0.0f"),
            EXAMPLE.replace("fmaxf(x[i], 0.0f)", "fmaxf(0.0f, x[i])"),
            EXAMPLE.replace("if (i < n)", "// same kernel, other comment\n    if (i < n)")]  # a copy


class FixedProposer:
    name = "rules"

    def propose(self, request):  # noqa: ANN001, ANN201
        return ProposalBatch([Proposal(v, "translate", "rules", SPACE, {"BLOCK": 256}) for v in VARIANTS])


def _driver(url: str, workdir: Path, out: dict, name: str, lease_s: float = 30.0, delay_s: float = 0.05) -> None:
    with Archive.open(url) as archive:
        run_id = archive.start_run({"config": {}, "tasks": [str(TASK)]})
        pool = EvalPool(simulated_evaluator(delay_s), EvalConfig(), [0, 1])
        studies = Studies(archive.optuna_storage_url(), seed=0)
        try:
            run = TuneRun(archive, run_id, SearchConfig(tune_trials=5, tune_top=3), {"rules": FixedProposer()}, pool,
                          Budget(), workdir=workdir / name, ledger=WorkLedger(archive, run_id, pool.scope, lease_s=lease_s),
                          studies=studies)
            (out[name],) = run.run([load_task(TASK)])
        finally:
            studies.close()
            pool.close()


def _evaluated(archive: Archive) -> Counter:
    """(source hash, params hash) -> how many evaluations the archive holds of it."""
    return Counter((c.source_hash, c.params_hash) for c in archive.work_claims() if c.status == "done")


def _assert_no_repeats(archive: Archive) -> None:
    claims = archive.work_claims()
    assert [c for c in claims if c.status != "done"] == [], "claims left running"
    assert archive.stats()["evaluations"] == len(claims), "an evaluation without its claim, or twice under one"
    assert all(n == 1 for n in _evaluated(archive).values())


def test_two_drivers_at_once_never_evaluate_the_same_setting_twice(db_url: str, tmp_path: Path) -> None:
    Archive.open(db_url).close()
    outcomes: dict = {}
    threads = [threading.Thread(target=_driver, args=(db_url, tmp_path, outcomes, name)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert set(outcomes) == {"a", "b"}
    with Archive.open(db_url) as archive:
        _assert_no_repeats(archive)
        archive_total = archive.stats()["evaluations"]
        assert archive_total >= 3 + 5  # three seeds, tuned
        best = min(archive.best(), key=lambda r: r.candidate_ms)
    # Each driver's outcome holds what it saw: its own results and those finished by the other.
    assert max(outcomes["a"].best_speedup, outcomes["b"].best_speedup) == pytest.approx(best.speedup_eager)
    assert outcomes["a"].candidates + outcomes["b"].candidates >= archive_total
    assert outcomes["a"].verdicts["duplicate"] == outcomes["b"].verdicts["duplicate"] == 1  # the comment-only copy


def test_a_second_driver_later_takes_the_first_ones_results(db_url: str, tmp_path: Path) -> None:
    outcomes: dict = {}
    _driver(db_url, tmp_path, outcomes, "first")
    with Archive.open(db_url) as archive:
        before = archive.stats()["evaluations"]
    _driver(db_url, tmp_path, outcomes, "restarted")
    with Archive.open(db_url) as archive:
        assert archive.stats()["evaluations"] == before, "the second driver repeated work"
        _assert_no_repeats(archive)
    assert outcomes["restarted"].best_speedup == outcomes["first"].best_speedup
    assert outcomes["restarted"].candidates == outcomes["first"].candidates


def test_a_dead_drivers_claims_are_taken_over_after_the_lease(db_url: str, tmp_path: Path) -> None:
    task = load_task(TASK)
    with Archive.open(db_url) as archive:
        scope = f"{EvalPool(simulated_evaluator(), EvalConfig(), [0]).scope}, {task.policy}"
        for variant in VARIANTS[:3]:  # a driver claimed the seeds, then died without a word
            archive.claim_work(scope, task.content_hash, source_hash(variant), [{"BLOCK": 256}], "dead:1:x", None, 0.5)
    outcomes: dict = {}
    _driver(db_url, tmp_path, outcomes, "live", lease_s=0.5)
    with Archive.open(db_url) as archive:
        _assert_no_repeats(archive)
        claims = archive.work_claims()
        assert len({c.owner for c in claims}) == 1 and claims[0].owner != "dead:1:x"
        assert [c.attempts for c in claims[:3]] == [2, 2, 2]  # the dead driver's three, each taken over once
        assert all(c.attempts == 1 for c in claims[3:])
    assert outcomes["live"].translated and outcomes["live"].best_kernel_id is not None


def test_the_novelty_filters_state_is_the_archives(db_url: str) -> None:
    task_hash = load_task(TASK).content_hash
    with Archive.open(db_url) as archive:
        a = SharedNoveltyFilter(archive, task_hash, run_id=None)
        b = SharedNoveltyFilter(archive, task_hash, run_id=None)
        assert a.admit(VARIANTS[0]) == (True, "")
        ok, why = b.admit(VARIANTS[3])  # a comment-only copy, proposed to the other driver
        assert not ok and "identical" in why
        assert b.admit(VARIANTS[0]) == (True, "")  # the same code again: admitted, its settings are claimed
        ok, _ = SharedNoveltyFilter(archive, task_hash, run_id=None).admit(VARIANTS[3])  # a restarted driver
        assert not ok
        assert [r.source_hash for r in archive.admitted_sources(task_hash)] == [source_hash(VARIANTS[0])]


def test_the_ledger_heartbeat_keeps_claims_and_close_releases_them(db_url: str) -> None:
    task = load_task(TASK)
    with Archive.open(db_url) as archive:
        ledger = WorkLedger(archive, None, "scope", lease_s=0.4).start()
        claimed = ledger.claim(task, "digest", [{"BLOCK": 64}])
        assert len(claimed.mine) == 1
        time.sleep(0.8)  # two leases: alive only through the heartbeat
        other = WorkLedger(archive, None, "scope", lease_s=0.4)
        assert len(other.claim(task, "digest", [{"BLOCK": 64}]).held) == 1
        ledger.close()
        assert len(other.claim(task, "digest", [{"BLOCK": 64}]).mine) == 1
        (held,) = other.claim(task, "digest", [{"BLOCK": 64}]).held  # its own, in flight: never twice
        assert params_key(held.params) == params_key({"BLOCK": 64}) and held.owner == other.owner
