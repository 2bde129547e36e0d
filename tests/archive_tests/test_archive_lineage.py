"""Lineage of a whole task, the tree it is drawn as, and ``autotuner archive lineage``; a run's
finished tasks; the resource report kept with an evaluation. On SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from archive import Archive, KernelSpec, lineage_tree
from archive.testing import make_result, make_task
from autotuner.cli.main import main
from autotuner.evaluator.verdict import KernelResources, Verdict


@pytest.fixture
def family(db_url: str) -> dict[str, int]:
    """translate -> two tuned settings; translate -> optimize; the two crossed; a fix of a failure."""
    task = make_task()
    with Archive.open(db_url) as a:
        def add(source: str, parents: tuple[int, ...] = (), operator: str = "translate", ms: float = 0.5,
                verdict: Verdict = Verdict.ACCEPTED, params: dict | None = None) -> int:  # noqa: ANN001
            spec = KernelSpec(source, params or {}, operator=operator, proposer="rules" if operator in
                              ("translate", "tune") else "llm:m", parents=parents)
            return a.record(task, spec, make_result(task, verdict=verdict, candidate_ms=ms)).kernel_id

        ids = {"root": add("// r\n", params={"BLOCK": 256})}
        ids["tune_a"] = add("// r\n", (ids["root"],), "tune", 0.4, params={"BLOCK": 128})
        ids["tune_b"] = add("// r\n", (ids["root"],), "tune", 0.45, params={"BLOCK": 512})
        ids["opt"] = add("// o\n", (ids["root"],), "optimize", 0.3)
        ids["cross"] = add("// x\n", (ids["opt"], ids["tune_a"]), "crossover", 0.2)
        ids["bad"] = add("// bad\n", operator="translate", verdict=Verdict.REJECTED)
        ids["fixed"] = add("// fixed\n", (ids["bad"],), "fix", 0.35)
        a.record(make_task("other"), KernelSpec("// elsewhere\n"), make_result(make_task("other")))
    return ids


def test_task_lineage_lists_every_kernel_with_its_parents_and_generation(db_url, family):
    with Archive.open(db_url) as a:
        rows = {r.kernel_id: r for r in a.task_lineage("relu")}
    assert set(rows) == set(family.values())
    assert rows[family["cross"]].parents == [family["opt"], family["tune_a"]]
    generation = {name: rows[k].generation for name, k in family.items()}
    assert generation == {"root": 0, "tune_a": 1, "tune_b": 1, "opt": 1, "cross": 2, "bad": 0, "fixed": 1}
    assert rows[family["cross"]].best_speedup_eager == pytest.approx(1.0 / 0.2)
    assert rows[family["bad"]].best_speedup_eager is None


def test_the_tree_shows_every_edge_once_expanded(db_url, family):
    with Archive.open(db_url) as a:
        roots = lineage_tree(a.task_lineage("relu"), family["opt"])
    assert [r.kernel_id for r in roots] == [family["root"], family["bad"]]
    root = roots[0]
    assert [c.kernel_id for c in root.children] == [family["tune_a"], family["tune_b"], family["opt"]]
    crosses = [c for child in root.children for c in child.children if c.kernel_id == family["cross"]]
    assert len(crosses) == 2 and sum(c.repeat for c in crosses) == 1  # under both parents, expanded once
    assert root.children[2].current and roots[1].children[0].operator == "fix"


def test_the_lineage_command_prints_the_tree_and_json(db_url, family, capsys):
    assert main(["archive", "lineage", "--task", "relu", "--db", db_url]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(f"#{family['root']} translate by rules")
    assert any(line.startswith("├── ") and f"#{family['tune_a']} tune by rules" in line for line in lines)
    assert any(f"#{family['cross']} crossover by llm:m" in line and "parents" in line for line in lines)
    assert "(shown above)" in out and f"#{family['fixed']} fix by llm:m" in out

    assert main(["archive", "lineage", str(family["opt"]), "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "<- this kernel" in out and f"#{family['fixed']}" not in out  # another family of the task

    assert main(["archive", "lineage", str(family["cross"]), "--db", db_url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kernel_id"] == family["cross"] and data["tree"][0]["kernel_id"] == family["root"]
    flat = []
    stack = list(data["tree"])
    while stack:
        node = stack.pop()
        flat.append(node["kernel_id"])
        stack.extend(node["children"])
    assert family["cross"] in flat and family["tune_b"] not in flat  # ancestors and descendants only

    with pytest.raises(SystemExit) as usage:  # a kernel or --task is required
        main(["archive", "lineage", "--db", db_url])
    assert usage.value.code == 2 and "kernel_id --task is required" in capsys.readouterr().err


def test_a_run_remembers_which_tasks_it_is_done_with(archive):
    run_id = archive.start_run({"config": {}})
    archive.mark_task_stopped(run_id, "aaa", "converged: no improvement")
    archive.mark_task_stopped(run_id, "bbb", "share: its share is used")
    archive.finish_run(run_id, "done", {"candidates": 3})
    assert archive.run_tasks_stopped(run_id) == {"aaa": "converged: no improvement", "bbb": "share: its share is used"}
    assert archive.run(run_id).budgets_spent["candidates"] == 3


def test_the_resource_report_is_kept(archive):
    task = make_task()
    result = make_result(task)
    result.resources = [KernelResources("relu", registers=32, local_bytes=8, shared_static_bytes=0,
                                        shared_dynamic_bytes=4096, max_threads_per_block=1024, block_threads=256)]
    recorded = archive.record(task, KernelSpec("// with report\n"), result)
    assert archive.result(recorded.evaluation_id).resources == result.resources
    plain = archive.record(task, KernelSpec("// without\n"), make_result(task))
    assert archive.result(plain.evaluation_id).resources == []
