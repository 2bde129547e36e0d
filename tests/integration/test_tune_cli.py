"""`autotuner tune` on bad input and without a GPU: one clear line, non-zero exit, no run left running."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from autotuner.cli.main import main

ROOT = Path(__file__).parents[2]
RELU = ROOT / "kernels/tasks/activation/relu.py"
pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOTUNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("AUTOTUNER_DB_URL", raising=False)
    for name in ("OPENAI_API_KEY", "AUTOTUNER_LLM_API_KEY", "AUTOTUNER_LLM_MODEL", "AUTOTUNER_LLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def _runs(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, status, error FROM runs ORDER BY id").fetchall()


def test_without_a_gpu_tune_says_so_in_one_line_and_touches_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("autotuner.runtime.device.cuda_available", lambda: False)
    db = tmp_path / "archive.db"
    code = main(["tune", str(RELU), "--db", str(db)])
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 1 and captured.out == ""
    assert len(lines) == 1 and "no CUDA GPU is visible" in lines[0] and "--evaluator simulate" in lines[0]
    assert not db.exists(), "no archive (and so no run) is made for a run that cannot start"


def test_a_simulated_run_says_so_in_its_report_and_its_summary(tmp_path, capsys):
    db = tmp_path / "archive.db"
    # One candidate: the budget ends the run whatever the made-up verdict (a hash of the generated
    # source: with two, a rejected first kernel left nothing to tune and the run ended "done").
    code = main(["tune", str(RELU), "--evaluator", "simulate", "--max-candidates", "1", "--no-progress",
                 "--db", str(db), "--report", str(tmp_path / "report")])
    out = capsys.readouterr().out
    assert code == 0 and "SIMULATED" in out
    assert "SIMULATED" in (tmp_path / "report" / "report.md").read_text().splitlines()[0]
    assert [r[1] for r in _runs(db)] == ["budget"]


def test_a_run_that_fails_to_start_is_marked_failed_with_the_reason_and_resume_says_it(tmp_path, capsys):
    db = tmp_path / "archive.db"
    code = main(["tune", str(RELU), "--evaluator", "simulate", "--proposer", "llm", "--db", str(db)])
    assert code == 1 and "no LLM model configured" in capsys.readouterr().err
    ((run_id, status, error),) = _runs(db)
    assert status == "failed" and "AUTOTUNER_LLM_MODEL" in error

    code = main(["tune", "--resume", "--evaluator", "simulate", "--db", str(db)])
    err = capsys.readouterr().err
    assert code == 1 and f"run {run_id} failed: ConfigError: no LLM model configured" in err
    assert "fix the cause" in err
    assert [r[1] for r in _runs(db)] == ["failed"]


def test_a_run_whose_loop_raises_is_marked_failed(tmp_path, monkeypatch, capsys):
    from autotuner.errors import EvaluationError

    def boom(*args, **kwargs):  # noqa: ANN002, ANN003
        raise EvaluationError("the evaluation pool broke")

    monkeypatch.setattr("evolution.loop.TuneRun.run", boom)
    db = tmp_path / "archive.db"
    assert main(["tune", str(RELU), "--evaluator", "simulate", "--no-progress", "--db", str(db)]) == 1
    assert "the evaluation pool broke" in capsys.readouterr().err
    assert _runs(db) == [(1, "failed", "EvaluationError: the evaluation pool broke")]


def test_an_interrupted_run_is_marked_interrupted_and_resumable(tmp_path, monkeypatch, capsys):
    def interrupt(*args, **kwargs):  # noqa: ANN002, ANN003
        raise KeyboardInterrupt

    monkeypatch.setattr("evolution.loop.TuneRun.run", interrupt)
    db = tmp_path / "archive.db"
    assert main(["tune", str(RELU), "--evaluator", "simulate", "--no-progress", "--db", str(db)]) == 130
    assert [r[1] for r in _runs(db)] == ["interrupted"]


def test_a_folder_without_tasks_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["tune", str(tmp_path / "empty"), "--evaluator", "simulate", "--db", str(tmp_path / "a.db")])
    err = capsys.readouterr().err
    assert code == 1 and "holds no task files" in err and "empty" in err
    assert not (tmp_path / "a.db").exists()


def test_broken_task_files_are_each_named_and_nothing_runs(tmp_path, capsys):
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "good.py").write_text(RELU.read_text())
    (folder / "syntax.py").write_text("class Model(:\n")
    (folder / "nomodel.py").write_text("x = 1\n")
    code = main(["tune", str(folder), "--evaluator", "simulate", "--db", str(tmp_path / "a.db")])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "syntax.py" in err and "nomodel.py" in err and "good.py" not in err
    assert "2 of 3 task files" in err and "nothing was run" in err
    assert not (tmp_path / "a.db").exists()


def test_cluster_without_ray_says_how_to_install_it_and_touches_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if the ray extra were not installed
    db = tmp_path / "archive.db"
    code = main(["tune", str(RELU), "--evaluator", "simulate", "--cluster", "auto", "--db", str(db)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(lines) == 1
    assert "not installed" in lines[0] and "pip install -e '.[ray]'" in lines[0] and "--gpus" in lines[0]
    assert not db.exists()


def test_cluster_on_a_sqlite_archive_is_refused_before_it_is_created(tmp_path, capsys):
    pytest.importorskip("ray", reason="with Ray missing, --cluster stops earlier (the test above)")
    db = tmp_path / "archive.db"
    code = main(["tune", str(RELU), "--evaluator", "simulate", "--cluster", "ray://head:10001", "--db", str(db)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(lines) == 1
    assert "keeps its archive on PostgreSQL" in lines[0] and "--db postgresql://" in lines[0]
    assert not db.exists(), "no archive (and so no run) is made for a run that cannot start"


def test_a_bad_cluster_address_is_one_line_naming_the_forms(tmp_path, capsys):
    code = main(["tune", str(RELU), "--evaluator", "simulate", "--cluster", "head node", "--db", str(tmp_path / "a.db")])
    err = capsys.readouterr().err
    assert code == 1 and "cluster.address" in err and "ray://HOST:PORT" in err
