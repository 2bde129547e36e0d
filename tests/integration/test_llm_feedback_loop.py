"""Feedback reaches the model, generation after generation, through a real HTTP server.

A local OpenAI-compatible server (the test's own) answers with kernels that the evaluator
rejects, each at another stage (static check, compile, correctness, integrity, timeout), and
then with working ones. The evaluator here is scripted on CPU: it reads the ``// KIND:``
marker of each candidate and answers as the real one would, its reasons written by the real
code (the static checker, the compile-error type, the output comparison, the sandbox's
timeout verdict). The test reads the prompts that arrived at the server: every rejection was
sent back in a ``fix`` request quoting its reason, accepted kernels in ``optimize`` requests
with their times, roofline and resource report, and two accepted parents in ``crossover``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch

from archive import Archive
from archive.testing import make_result
from autotuner.app.run_config import load_config
from autotuner.app import tuning_run
from autotuner.app.tuning_run import run_tuning
from autotuner.candidate import cuda_sources
from autotuner.errors import CompileError
from autotuner.evaluator.compare import compare_outputs, tolerances_for
from autotuner.evaluator.eval_config import EvalConfig
from autotuner.evaluator.sandbox import _failure
from autotuner.evaluator.static_check import check_source, summarize
from autotuner.evaluator.verdict import EvalResult, KernelResources, Provenance, Stage, Verdict
from autotuner.runtime.compile import parse_diagnostics
from autotuner.tasks import Task, load_task
from llm.fake_openai_server import FakeOpenAIServer, Reply
from llm.scripted import ScriptedModel, answer, kind_of, operator_of, parent_kinds, variant

ROOT = Path(__file__).parents[2]
RELU = ROOT / "kernels/tasks/activation/relu.py"
EXAMPLE = (ROOT / "examples/relu_candidate.py").read_text()
pytestmark = pytest.mark.integration

# What a fix of each kind of kernel brings back next (the model "learns" one step at a time).
AFTER_FIX = {"static": "mismatch", "compile": "integrity", "mismatch": "timeout", "integrity": "ok",
             "timeout": "ok", "ok": "ok"}  # fmt: skip
INTEGRITY = ("shape small, trial 1 (task inputs): the forward ran PyTorch compute ops ['aten.relu.default'] that "
             "the task's 'strict' policy does not allow; the work must be done by the candidate's own kernels")


def source_of(kind: str, n: int) -> str:
    source = variant(EXAMPLE, n, kind)
    if kind == "static":
        source = source.replace("import torch\n", "import os\nimport torch\n", 1)
    if kind == "compile":
        source = source.replace("fmaxf(x[i], 0.0f);", "fmaxf(x[i].q, 0.0f);  // BROKEN")
    return source


def mismatch_reason() -> str:
    """A wrong output compared by the evaluator's own comparison, worded as verify words it."""
    ref = torch.linspace(-2, 2, 4096).reshape(64, 64)
    out = ref.clamp(min=0)
    out[37, 5] += 0.25
    comparison = compare_outputs(out, ref.clamp(min=0), tolerances_for("float32"))
    assert not comparison.ok
    return f"shape odd (hidden), trial 2 (signed inputs): {comparison.reason}"


def scripted_result(task: Task, source: str, n: int) -> EvalResult:
    """What the real evaluator says about a kernel of this kind."""
    base = dict(task_name=task.name, task_hash=task.content_hash, policy=task.policy, dtype=task.dtype,
                provenance=Provenance("test", gpu_name="NVIDIA H200"))
    kind = kind_of(source) or "ok"
    violations = check_source(source)
    if violations:
        return EvalResult(Verdict.REJECTED, Stage.STATIC, summarize(violations), **base)
    if kind == "compile":
        cuda = cuda_sources(source)[0]
        line = next(i for i, text in enumerate(cuda.splitlines(), 1) if "BROKEN" in text)
        log = f'kernel.cu({line}): error: expression must have class type but it has type "const float"'
        return EvalResult(Verdict.REJECTED, Stage.COMPILE, str(CompileError("relu", parse_diagnostics(log), log)), **base)
    if kind == "mismatch":
        return EvalResult(Verdict.REJECTED, Stage.CORRECTNESS, mismatch_reason(), **base)
    if kind == "integrity":
        return EvalResult(Verdict.REJECTED, Stage.INTEGRITY, INTEGRITY, **base)
    if kind == "timeout":
        return _failure(f"the candidate ran past its {EvalConfig().timeout_s:g} s limit [candidate:0]", None, "", base)
    result = make_result(task, candidate_ms=1.0 / (1 + 0.1 * n), eager_ms=1.2, compiled_ms=1.0)
    result.provenance = base["provenance"]
    result.resources = [KernelResources("relu", registers=16 + n, local_bytes=0, shared_static_bytes=0,
                                        shared_dynamic_bytes=0, max_threads_per_block=1024, block_threads=256)]
    return result


def scripted_evaluator(task: Task, candidate: Path, settings: list[dict[str, Any]], config: EvalConfig) -> list[EvalResult]:
    source = Path(candidate).read_text()
    n = int(re.search(r"variant_(\d+)_0", source).group(1))
    return [scripted_result(task, source, n) for _ in settings]


class Model:
    """Answers: the first two translations fail (static, compile); a fix moves one step along
    ``AFTER_FIX``; every other request gets a working kernel, each new."""

    def __init__(self) -> None:
        self.n = 0
        self.first = iter(["static", "compile"])

    def __call__(self, task: str, op: str, body: dict[str, Any]) -> Reply:
        if op == "translate":
            kind = next(self.first, "ok")
        elif op == "fix":
            kind = AFTER_FIX[parent_kinds(body)[0]]
        else:
            kind = "ok"
        self.n += 1
        return Reply.answer(answer(source_of(kind, self.n), f"A {kind} kernel."))


@pytest.fixture
def server():
    server = FakeOpenAIServer(models=("fake-coder",)).start()
    yield server
    server.stop()


def test_every_verdict_goes_back_to_the_model(server, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOTUNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AUTOTUNER_LLM_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setattr(tuning_run, "real_evaluator", scripted_evaluator)  # what run_tuning uses off simulate
    model = Model()
    server.responder = ScriptedModel({}, model)
    config = load_config(None, env={}, overrides={
        "search": {"proposer": "llm", "islands": 2, "tune_trials": 0, "patience": 50},
        "budget": {"max_candidates": 20},
        "llm": {"base_url": server.base_url, "model": "fake-coder", "max_retries": 1, "timeout_s": 20},
        "report_dir": str(tmp_path / "report"),
    })
    with Archive.open(f"sqlite:///{tmp_path / 'archive.db'}") as archive:
        outcome = run_tuning(archive, config, [load_task(RELU)])
        history = archive.run_history(outcome.run_id)

    prompts = [(operator_of(r.body), "\n".join(m["content"] for m in r.body["messages"])) for r in server.completions]
    fixes = [text for op, text in prompts if op == "fix"]

    def fixed(*needles: str) -> bool:
        return any(all(n in text for n in needles) for text in fixes)

    static = next(h for h in history if h.result.stage is Stage.STATIC)
    os_line = static.source.splitlines().index("import os") + 1
    assert fixed("stage static_check", static.result.reason, f"module line {os_line}: import os")
    compile_ = next(h for h in history if h.result.stage is Stage.COMPILE)
    assert fixed("stage compile", "expression must have class type", "CUDA line", "fmaxf(x[i].q, 0.0f);")
    assert fixed("stage correctness", "shape odd (hidden), trial 2 (signed inputs)", "outside tolerance",
                 "worst at flat index", "max abs err")
    assert fixed("stage integrity", "PyTorch compute ops ['aten.relu.default']")
    assert fixed("stage timeout", "ran past its 300 s limit")
    assert compile_.result.reason in "\n".join(fixes)

    optimizes = [text for op, text in prompts if op == "optimize"]
    assert optimizes and all(re.search(r"\dx vs eager", t) and "vs torch.compile" in t and "% of the roofline" in t
                             and "registers per thread" in t and "## The kernel to beat" in t for t in optimizes)
    crosses = [text for op, text in prompts if op == "crossover"]
    assert crosses and all(t.count("Verdict: accepted") >= 2 and "## Parent B" in t for t in crosses)

    task_outcome = outcome.outcomes[0]
    assert task_outcome.generations >= 5 and set(task_outcome.requests) >= {"translate", "fix", "optimize", "crossover"}
    assert task_outcome.requests["translate"] == 2  # once per island; then only feedback
    assert outcome.status == "budget" and task_outcome.stop_kind == "budget" and len(history) == 20

    by_id = {h.kernel_id: h for h in history}
    for item in history:  # lineage: every fixed, optimized or crossed kernel names its parents
        expected = {"translate": 0, "fix": 1, "optimize": 1, "crossover": 2}[item.operator]
        assert len(item.parents) == expected, item
        if item.operator == "fix":
            assert not by_id[item.parents[0]].result.accepted
        if item.operator in ("optimize", "crossover"):
            assert all(by_id[p].result.accepted for p in item.parents)
