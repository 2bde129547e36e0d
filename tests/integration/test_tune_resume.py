"""`autotuner tune` killed with SIGKILL mid-run resumes with --resume: loses nothing, repeats nothing.

Runs the real CLI in a subprocess with the simulated evaluator (no GPU needed) and a real
SQLite archive; the kill is a real SIGKILL of the whole process group. Once with the rule
proposer, once with the LLM proposer against a local OpenAI-compatible server the test runs.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm.fake_openai_server import FakeOpenAIServer, Reply
from llm.scripted import ScriptedModel, answer, variant

ROOT = Path(__file__).parents[2]
EXAMPLE = (ROOT / "examples/relu_candidate.py").read_text()
TASKS = [ROOT / "kernels/tasks/activation/relu.py", ROOT / "kernels/tasks/softmax/softmax.py"]
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _tune(db: Path, tmp: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    env = dict(os.environ, AUTOTUNER_CACHE_DIR=str(tmp / "cache"), PYTHONUNBUFFERED="1", **(env or {}))
    cmd = [sys.executable, "-m", "autotuner.cli.main", "tune", "--evaluator", "simulate", "--simulate-delay", "0.15",
           "--db", f"sqlite:///{db}", "--tune-trials", "6", "--no-progress", "--report", str(tmp / "report"), *extra]
    return subprocess.Popen(cmd, env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, text=True)


def _evaluations(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT e.id, k.source_hash, k.params_hash, e.verdict FROM evaluations e JOIN kernels k ON k.id = e.kernel_id "
            "ORDER BY e.id").fetchall()


def _kill_after(proc: subprocess.Popen, db: Path, evaluations: int) -> None:
    """SIGKILL the run's whole process group once ``evaluations`` are in the archive."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if db.exists() and len(_evaluations(db)) >= evaluations:
                break
        except sqlite3.OperationalError:
            pass  # the archive's tables are being created (or locked) right now

        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_killed_run_resumes_without_loss_or_repeats(tmp_path):
    db = tmp_path / "archive.db"
    proc = _tune(db, tmp_path, *map(str, TASKS))
    _kill_after(proc, db, 6)
    before = _evaluations(db)
    assert len(before) >= 6, proc.stdout.read()

    resumed = _tune(db, tmp_path, "--resume")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert "resuming run 1" in out
    after = _evaluations(db)
    assert after[: len(before)] == before, "evaluations committed before the kill changed or vanished"
    keys = [(source, params) for _, source, params, _ in after]
    assert len(keys) == len(set(keys)), "the resumed run evaluated a setting twice"

    fresh_db = tmp_path / "fresh.db"
    fresh = _tune(fresh_db, tmp_path, *map(str, TASKS))
    out, _ = fresh.communicate(timeout=300)
    assert fresh.returncode == 0, out
    uninterrupted = _evaluations(fresh_db)
    assert len(after) == len(uninterrupted), "killed + resumed did not do as much work as an uninterrupted run"
    # Seeding is deterministic, so the rule proposer's variants are the same set; only optuna's
    # later suggestions may differ after a resume (its sampler state is not stored).
    seeds = {s for _, s, _, _ in uninterrupted}
    assert {s for _, s, _, _ in after} == seeds
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM runs WHERE id = 1").fetchone()[0] == "done"


def test_killed_llm_run_resumes_without_loss_or_repeats(tmp_path):
    """The same with ``--proposer llm``: the model's kernels, the fixes and optimizations of
    them, optuna's settings and the LLM calls survive the kill; the resumed run honours the
    whole run's candidate budget (what the killed session spent counts) and repeats nothing."""
    server = FakeOpenAIServer(models=("fake-coder",)).start()
    counter = iter(range(1, 1_000_000))
    server.responder = ScriptedModel({}, lambda task, op, body: Reply.answer(answer(variant(EXAMPLE, next(counter)))))
    (tmp_path / "autotuner.toml").write_text(f'[llm]\nbase_url = "{server.base_url}"\nmax_retries = 1\n')
    env = {"AUTOTUNER_LLM_API_KEY": "sk-test-not-a-real-key", "AUTOTUNER_LLM_MODEL": "fake-coder"}
    flags = ("--proposer", "llm", "--max-candidates", "24", "--patience", "1000", "--tune-trials", "2")
    try:
        db = tmp_path / "archive.db"
        proc = _tune(db, tmp_path, *map(str, TASKS), *flags, env=env)
        _kill_after(proc, db, 6)
        before = _evaluations(db)
        assert 6 <= len(before) < 24, proc.stdout.read()
        with sqlite3.connect(db) as conn:
            calls_before = conn.execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0]
        assert calls_before > 0

        resumed = _tune(db, tmp_path, "--resume", env=env)
        out, _ = resumed.communicate(timeout=300)
        assert resumed.returncode == 0, out
        assert "resuming run 1" in out and "stopped: the run's budget is spent: max_candidates reached" in out
        after = _evaluations(db)
        assert after[: len(before)] == before, "evaluations committed before the kill changed or vanished"
        keys = [(source, params) for _, source, params, _ in after]
        assert len(keys) == len(set(keys)), "the resumed run evaluated a setting twice"
        assert len(after) == 24, "the budget is the run's: killed + resumed evaluate as many as one run"
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT status FROM runs WHERE id = 1").fetchone()[0] == "budget"
            proposers = {p for (p,) in conn.execute("SELECT DISTINCT proposer FROM kernels")}
            ops = {o for (o,) in conn.execute("SELECT DISTINCT operator FROM kernels")}
            assert conn.execute("SELECT COUNT(*) FROM llm_calls").fetchone()[0] > calls_before
            edges = conn.execute("SELECT COUNT(*) FROM kernel_parents").fetchone()[0]
        assert proposers == {"llm:fake-coder"} and {"translate", "tune"} <= ops and edges > 0

        fresh_db = tmp_path / "fresh.db"
        fresh = _tune(fresh_db, tmp_path, *map(str, TASKS), *flags, env=env)
        out, _ = fresh.communicate(timeout=300)
        assert fresh.returncode == 0, out
        assert len(_evaluations(fresh_db)) == len(after)
    finally:
        server.stop()
