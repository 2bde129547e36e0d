"""LLM runs end on their budget or on convergence, never after a fixed number of generations;
mixed mode starts the model from the rule proposer's best and tunes what the model writes.

Through the real CLI, with the simulated evaluator and a local OpenAI-compatible server that
answers every request with a new kernel (or, for convergence, always the same one).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from archive import Archive
from autotuner.cli.main import main
from llm.fake_openai_server import FakeOpenAIServer, Reply
from llm.scripted import ScriptedModel, answer, operator_of, variant

ROOT = Path(__file__).parents[2]
TASKS = [ROOT / "kernels/tasks/activation/relu.py", ROOT / "kernels/tasks/activation/silu.py",
         ROOT / "kernels/tasks/softmax/softmax.py"]
EXAMPLE = (ROOT / "examples/relu_candidate.py").read_text()
pytestmark = pytest.mark.integration


@pytest.fixture
def server():
    server = FakeOpenAIServer(models=("fake-coder",)).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOTUNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AUTOTUNER_LLM_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("AUTOTUNER_LLM_MODEL", "fake-coder")
    monkeypatch.delenv("AUTOTUNER_DB_URL", raising=False)


def new_kernels() -> ScriptedModel:
    counter = iter(range(1, 1_000_000))
    return ScriptedModel({}, lambda task, op, body: Reply.answer(answer(variant(EXAMPLE, next(counter)))))


def tune(server, tmp_path, capsys, *args: str) -> tuple[int, dict]:
    (tmp_path / "autotuner.toml").write_text(f'[llm]\nbase_url = "{server.base_url}"\nmax_retries = 1\ncache = false\n')
    code = main(["tune", *args, "--evaluator", "simulate", "--no-progress", "--json",
                 "--db", str(tmp_path / "archive.db"), "--report", str(tmp_path / "report")])
    out = capsys.readouterr().out
    return code, json.loads(out) if code == 0 else {}


def test_a_minutes_budget_is_used_whole_and_shared_by_the_tasks(server, tmp_path, capsys):
    """The issue: a 4-minute run ended after 48 s, three generations of two islands. Here a
    6-second budget over three tasks: far more generations, each task its share, the report
    saying why each stopped."""
    server.responder = new_kernels()
    started = time.monotonic()
    code, data = tune(server, tmp_path, capsys, *map(str, TASKS), "--proposer", "llm", "--max-minutes", "0.1",
                      "--simulate-delay", "0.02", "--tune-trials", "2", "--patience", "1000")
    elapsed = time.monotonic() - started
    assert code == 0 and data["status"] == "budget"
    assert elapsed >= 6.0 and data["spent"]["wall_s"] >= 6.0
    assert "max_wall_s reached" in data["stop_reason"]
    tasks = data["tasks"]
    assert [t["stop_reason"].split(":")[0] for t in tasks] == ["share", "share", "budget"]
    assert "share of max_wall_s is used" in tasks[0]["stop_reason"] and "1/3 of what was left" in tasks[0]["stop_reason"]
    assert all(t["generations"] > 3 and t["candidates"] > 6 for t in tasks), tasks
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Why it stopped" in report and "max_wall_s reached" in report
    for t in tasks:
        assert f"- {t['task']}: {t['stop_reason']}" in report


def test_a_search_that_stops_improving_has_converged(server, tmp_path, capsys):
    server.responder = ScriptedModel({}, lambda task, op, body: Reply.answer(answer(variant(EXAMPLE, 7))))
    code, data = tune(server, tmp_path, capsys, str(TASKS[0]), "--proposer", "llm", "--max-candidates", "50",
                      "--tune-trials", "0", "--patience", "3")
    assert code == 0 and data["status"] == "done"
    (task,) = data["tasks"]
    assert task["stop_reason"].startswith("converged: no improvement of at least 1% in 3 generations")
    assert task["candidates"] == 1 and task["generations"] == 4  # the first one, then three with nothing new
    assert "every task's search stopped: 1 converged" in data["stop_reason"]
    asked = [operator_of(r.body) for r in server.completions]
    later = "\n".join(r.body["messages"][1]["content"] for r in server.completions[2:])
    assert "identical to an earlier candidate" in later and "## Your previous answer could not be used" in later
    assert asked.count("translate") < len(asked)


def test_mixed_mode_asks_the_model_to_beat_the_rules_and_tunes_its_kernels(server, tmp_path, capsys):
    model = new_kernels()
    server.responder = model
    # softmax: several rule variants, which the simulated evaluator accepts (the first generation's
    # prompts must each show one; relu's single variant gets a made-up rejection)
    code, data = tune(server, tmp_path, capsys, str(TASKS[2]), "--proposer", "mixed", "--max-candidates", "40",
                      "--tune-trials", "3", "--patience", "1000")
    assert code == 0, data
    first = [r.body["messages"][1]["content"] for r in server.completions[:2]]
    for prompt in first:  # the rule proposer's kernels seed the islands: no translate from scratch
        assert operator_of({"messages": [{"role": "user", "content": prompt}]}) in ("optimize", "crossover", "fix")
        assert "written by the rule-based generator" in prompt and "## The kernel to beat" in prompt
    with Archive.open(str(tmp_path / "archive.db")) as archive:
        history = archive.run_history(data["run_id"])
    by_id = {h.kernel_id: h for h in history}
    llm_tuned = [h for h in history if h.operator == "tune" and h.proposer == "llm:fake-coder"]
    assert llm_tuned, "no accepted LLM kernel was tuned"
    for item in llm_tuned:
        (parent,) = item.parents
        assert by_id[parent].proposer == "llm:fake-coder" and by_id[parent].source == item.source
        assert by_id[parent].result.accepted
    assert {h.proposer for h in history} == {"rules", "llm:fake-coder"}
