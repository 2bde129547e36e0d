"""``autotuner archive ...`` and ``autotuner bench archive`` through the real entry point."""

from __future__ import annotations

import csv
import io
import json

import pytest

from archive import Archive, KernelSpec, head_revision
from archive.testing import GPUS, make_result, make_task
from autotuner.cli.main import main
from autotuner.evaluator.verdict import Verdict

pytestmark = pytest.mark.integration


@pytest.fixture
def filled(db_url: str) -> dict[str, int]:
    task = make_task()
    with Archive.open(db_url) as a:
        parent = a.record(task, KernelSpec("// a\n", {"BLOCK": 128}, proposer="rules"), make_result(task, candidate_ms=0.5))
        child = a.record(task, KernelSpec("// b\n", {"BLOCK": 256}, proposer="llm", operator="mutate",
                                          parents=(parent.kernel_id,)), make_result(task, candidate_ms=0.25))  # fmt: skip
        a.record(task, KernelSpec("// c\n"), make_result(task, verdict=Verdict.REJECTED, gpu=GPUS[1]))
        a.record(task, KernelSpec("// d\n"), make_result(task, candidate_ms=0.1, harness_version="0"))
    return {"parent": parent.kernel_id, "child": child.kernel_id}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_action_prints_a_table(capsys, db_url, filled) -> None:
    child, parent = str(filled["child"]), str(filled["parent"])
    for argv in (["tasks"], ["kernels", "relu"], ["show", child], ["best"], ["leaderboard"], ["lineage", child],
                 ["diff", parent, child], ["stats"], ["stale"]):  # fmt: skip
        code, out, err = run(capsys, "archive", *argv, "--db", db_url)
        assert code == 0, (argv, err)
        assert out.strip() and not err, argv
    code, out, _ = run(capsys, "archive", "best", "--db", db_url)
    header, _, first = out.splitlines()[:3]
    assert header.split()[:3] == ["task", "gpu", "policy"] and child in first.split()


def test_json_and_csv(capsys, db_url, filled) -> None:
    code, out, _ = run(capsys, "archive", "best", "--db", db_url, "--json")
    assert [r["kernel_id"] for r in json.loads(out)] == [filled["child"]]
    code, out, _ = run(capsys, "archive", "kernels", "relu", "--db", db_url, "--csv", "--include-stale")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["stale"] for r in rows} == {"True", "False"}
    code, out, _ = run(capsys, "archive", "show", str(filled["child"]), "--db", db_url, "--json")
    shown = json.loads(out)
    assert shown["parents"] == [filled["parent"]] and shown["evaluations"][0]["shapes"]
    code, out, _ = run(capsys, "archive", "stats", "--db", db_url, "--json")
    assert json.loads(out)["evaluations"] == 4


def test_stale_is_hidden_unless_asked(capsys, db_url, filled) -> None:
    _, out, _ = run(capsys, "archive", "best", "--db", db_url, "--json")
    assert all(not r["stale"] for r in json.loads(out))
    _, out, _ = run(capsys, "archive", "best", "--db", db_url, "--json", "--include-stale")
    assert [r["stale"] for r in json.loads(out)] == [True]  # on H100 the stale one is faster
    _, out, _ = run(capsys, "archive", "best", "--db", db_url, "--json", "--include-stale", "--top", "2")
    assert [r["stale"] for r in json.loads(out)] == [True, False]
    _, out, _ = run(capsys, "archive", "stale", "--db", db_url, "--json")
    assert len(json.loads(out)) == 1


def test_export_then_import_into_another_archive(capsys, db_url, filled, tmp_path) -> None:
    path = tmp_path / "a.jsonl"
    code, out, _ = run(capsys, "archive", "export", str(path), "--db", db_url)
    assert code == 0 and "4 evaluation" in out
    copy = f"sqlite:///{tmp_path / 'copy.db'}"
    code, out, _ = run(capsys, "archive", "import", str(path), "--db", copy)
    assert code == 0 and "4 evaluation" in out
    code, out, _ = run(capsys, "archive", "import", str(path), "--db", copy)
    assert "4 evaluations already present" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "999"], "error: no kernel with id 999 in the archive"),
        (["kernels", "nope"], "error: no task 'nope' in the archive"),
        (["lineage", "999"], "error: no kernel with id 999"),
    ],
)
def test_unknown_ids_are_one_line_errors(capsys, db_url, filled, argv, message) -> None:
    code, out, err = run(capsys, "archive", *argv, "--db", db_url)
    assert code == 1 and not out
    assert err.startswith(message) and err.count("\n") == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u:hunter2@127.0.0.1:1/x", "cannot use the archive at postgresql+psycopg://u:***@127.0.0.1:1/x"),
        ("mysql://u@h/x", "unsupported archive backend 'mysql'"),
    ],
)
def test_unreachable_database_is_one_clear_error(capsys, url, message) -> None:
    code, out, err = run(capsys, "archive", "tasks", "--db", url)
    assert code == 1 and not out
    assert message in err and err.count("\n") == 1
    assert "hunter2" not in err


def test_missing_or_foreign_sqlite_file(capsys, tmp_path) -> None:
    code, _, err = run(capsys, "archive", "tasks", "--db", str(tmp_path / "none.db"))
    assert code == 1 and "no archive at" in err and "autotuner archive init" in err
    assert not (tmp_path / "none.db").exists()  # browsing never creates one
    junk = tmp_path / "junk.db"
    junk.write_text("this is not a database\n" * 100)
    code, _, err = run(capsys, "archive", "tasks", "--db", str(junk))
    assert code == 1 and "file is not a database" in err and err.count("\n") == 1


def test_corrupt_import_names_the_line(capsys, tmp_path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"kind": "header", "format": "autotuner-archive", "version": 1}\n\n{"kind": "task", oops\n')
    code, _, err = run(capsys, "archive", "import", str(path), "--db", str(tmp_path / "a.db"))
    assert code == 1
    assert f"{path} line 3: not valid JSON" in err and "nothing was imported" in err


def test_init_creates_and_reports_the_revision(capsys, tmp_path) -> None:
    code, out, _ = run(capsys, "archive", "init", "--db", str(tmp_path / "new.db"))
    assert code == 0 and f"schema revision {head_revision()}" in out


def test_bench_archive_runs_small(capsys, db_url) -> None:
    backend = "sqlite" if db_url.startswith("sqlite") else db_url
    code, out, err = run(capsys, "bench", "archive", "--db", backend, "--evaluations", "400", "--tasks", "10",
                         "--single", "10", "--repeats", "1", "--json")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["evaluations"] == 400 and report["insert_per_s"] > 0 and report["single_tx_per_s"] > 0
    assert set(report["latency_ms"]) == set(report["latency_ms_without_indexes"])
    assert all(ms > 0 for ms in report["latency_ms"].values())
