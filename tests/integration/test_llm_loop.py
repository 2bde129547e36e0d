"""The LLM loop end to end against a local OpenAI-compatible server that the test starts.

The server returns scripted answers: good kernels, wrong ones, cheating ones, malformed text,
slow answers and 429s. On CPU the evaluator is the simulated one (the search plumbing:
calls, archive rows, budgets); on a GPU it is the real evaluator, and the cheating and wrong
kernels must never win.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from archive import Archive
from autotuner.app.run_config import load_config
from autotuner.tasks import load_task
from autotuner.app.tuning_run import run_tuning
from llm.fake_openai_server import FakeOpenAIServer, Reply, response_text

ROOT = Path(__file__).parents[2]
RELU = ROOT / "kernels/tasks/activation/relu.py"
pytestmark = pytest.mark.integration


@pytest.fixture
def server():
    server = FakeOpenAIServer(models=("fake-coder",)).start()
    yield server
    server.stop()


def _script(server: FakeOpenAIServer) -> None:
    server.script(
        Reply.status(429),  # rate limited first: the SDK retries
        Reply.answer(response_text("good_relu")),
        Reply.answer(response_text("wrong_sigmoid")),
        Reply.answer(response_text("cheating_torch_relu")),
        Reply.malformed(),
        Reply.answer(response_text("no_code")),
        Reply.answer(response_text("two_blocks")),
    )
    server.responder = lambda body: Reply.answer(response_text("revised"))


def _run(server, tmp_path, monkeypatch, simulate: bool):
    monkeypatch.setenv("AUTOTUNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AUTOTUNER_LLM_API_KEY", "sk-test-not-a-real-key")
    config = load_config(None, env={}, overrides={
        "search": {"proposer": "llm", "generations": 3, "islands": 2, "tune_trials": 2},
        "budget": {"max_candidates": 12},
        "llm": {"base_url": server.base_url, "model": "fake-coder", "max_retries": 2, "timeout_s": 20},
        "eval": {"baselines": not simulate, "compile_baseline": False},
        "report_dir": str(tmp_path / "report"),
    })
    archive = Archive.open(f"sqlite:///{tmp_path / 'archive.db'}")
    outcome = run_tuning(archive, config, [load_task(RELU)], simulate=simulate)
    return archive, outcome


def test_llm_loop_records_every_call_and_proposal(server, tmp_path, monkeypatch):
    _script(server)
    archive, outcome = _run(server, tmp_path, monkeypatch, simulate=True)
    try:
        history = archive.run_history(outcome.run_id)
        assert history, "no evaluation was recorded"
        assert all(item.proposer == "llm:fake-coder" for item in history)
        stats = archive.stats()
        assert stats["llm_calls"] >= 6  # every call is a row, failed ones included
        assert outcome.outcomes[0].candidates == len(history) <= 12
        assert any(r.headers.get("authorization", "").endswith("sk-test-not-a-real-key") for r in server.completions)
        assert (tmp_path / "report" / "report.md").is_file() and (tmp_path / "report" / "progress.png").is_file()
    finally:
        archive.close()


@pytest.mark.gpu
def test_cheating_and_wrong_kernels_never_win_on_the_gpu(server, tmp_path, monkeypatch):
    _script(server)
    archive, outcome = _run(server, tmp_path, monkeypatch, simulate=False)
    try:
        history = archive.run_history(outcome.run_id)
        by_source = {item.source: item.result for item in history}
        cheating = [r for s, r in by_source.items() if "torch.relu(" in s]
        wrong = [r for s, r in by_source.items() if "expf(-" in s or "sigmoid" in s.lower()]
        assert cheating and all(r.stage.value == "integrity" for r in cheating)
        assert wrong and all(not r.accepted for r in wrong)
        best = outcome.outcomes[0].best_result
        assert best is not None and best.accepted
        assert "torch.relu(" not in archive.kernel(outcome.outcomes[0].best_kernel_id).source
    finally:
        archive.close()
