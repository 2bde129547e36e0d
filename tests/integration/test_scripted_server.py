"""The scripted-server scenario of issue 14, end to end: cheats, garbage, 429s, then honest kernels.

A local OpenAI-compatible server (started by the test) answers each task's requests from a
script: cheating kernels first, then a malformed body, text without code, HTTP 429s and an
answer cut off by max_tokens, then an honest kernel, then honest variants for as long as it
is asked. The run (``--proposer llm``, three tasks, a candidate budget) must reach the honest
kernel of every task, accept it and make it the task's best; no cheat is ever accepted or
best; and the run goes on until its budget is spent instead of stopping after a few
generations.

* On CPU the evaluator is the simulated one, so the cheats are ones its (real) static check
  refuses; the honest kernel is a variant the simulated evaluator accepts.
* On a GPU (``-m gpu``) the evaluator is the real one, and the cheats are real CuPy /
  NVRTC kernels that only its run-time checks catch (a PyTorch fallback, a partial output, a
  side stream, a hard-coded size), beside a static one; the honest kernels are the
  hand-written candidates the evaluator accepts (``tests/candidates``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from archive import Archive
from autotuner.app.run_config import load_config
from autotuner.app.tuning_run import run_tuning
from autotuner.evaluator.eval_config import EvalConfig
from autotuner.tasks import Task, load_task
from evolution.simulate import simulated_evaluator
from llm.fake_openai_server import FakeOpenAIServer, Reply
from llm.scripted import ScriptedModel, answer, kind_of, operator_of, truncated, variant

ROOT = Path(__file__).parents[2]
CANDIDATES = ROOT / "tests" / "candidates"
pytestmark = pytest.mark.integration

# task file -> (its honest kernel, verified on a GPU by tests/candidates; the PyTorch op a cheat falls back to;
#               the elementwise expression a cheating kernel computes)
TASKS = {
    "relu": (ROOT / "kernels/tasks/activation/relu.py", CANDIDATES / "relu.py", "torch.relu(x)", "fmaxf(v, 0.0f)"),
    "softmax": (ROOT / "kernels/tasks/softmax/softmax.py", CANDIDATES / "softmax.py", "torch.softmax(x, dim=-1)",
                "expf(v)"),
    "silu": (ROOT / "kernels/tasks/activation/silu.py", CANDIDATES / "silu_cupy.py", "F.silu(x)",
             "v / (1.0f + expf(-v))"),
}

# -- the cheats ------------------------------------------------------------------------------------
_HEAD = '''import cupy
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from autotuner.runtime import compile_module

SOURCE = r\'\'\'
extern "C" __global__ void cheat(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { float v = x[i]; y[i] = EXPR; }
}
\'\'\'
'''

CHEATS = {
    # the answer is PyTorch's: one own kernel runs for show (integrity: PyTorch compute ops in forward)
    "fallback": '''
class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        self.module.launch("cheat", grid=(1,), block=(32,), args=(x, y, min(32, x.numel())))
        return OP
''',
    # half the elements: the rest stays whatever memory held (the evaluator poisons it: NaN)
    "partial": '''
class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        half = x.numel() // 2
        self.module.launch("cheat", grid=((half + 255) // 256,), block=(256,), args=(x, y, half))
        return y
''',
    # the kernel runs on a stream of its own, outside the timed stream (integrity, or wrong values)
    "side-stream": '''
class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.kernel = cupy.RawKernel(SOURCE, "cheat")
        self.side = cupy.cuda.Stream(non_blocking=True)

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        torch.cuda.current_stream().synchronize()
        self.kernel(((n + 255) // 256,), (256,), (np.uint64(x.data_ptr()), np.uint64(y.data_ptr()), np.int64(n)),
                    stream=self.side)
        return y
''',
    # the size of the shape it was shown, hard-coded (wrong, or out of bounds, at every other shape)
    "hardcoded": '''
N = 8192 * 65536


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        self.module.launch("cheat", grid=((N + 255) // 256,), block=(256,), args=(x, y, N))
        return y
''',
    # refused before it runs: it reads the environment (static check)
    "static": '''import os


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)
        self.home = os.environ.get("HOME")

    def forward(self, x):
        y = torch.empty_like(x)
        self.module.launch("cheat", grid=((x.numel() + 255) // 256,), block=(256,), args=(x, y, x.numel()))
        return y
''',
    # refused before it runs: a fallback hidden in try/except, and the harness's timer patched
    "try-except": '''
torch.cuda.synchronize = lambda *args: None


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        try:
            y = torch.empty_like(x)
            self.module.launch("cheat", grid=((x.numel() + 255) // 256,), block=(256,), args=(x, y, x.numel()))
            return y
        except RuntimeError:
            return OP
''',
}
STATIC_CHEATS = ("static", "try-except")  # what the simulated evaluator can catch: it runs no code


def cheat(name: str, task: str, n: int) -> str:
    _, _, op, expr = TASKS[task]
    return variant(_HEAD.replace("EXPR", expr) + CHEATS[name].replace("OP", op), n, f"cheat-{name}")


def honest(task: str, n: int) -> str:
    return variant(TASKS[task][1].read_text(), n, "honest")


# -- the scenario ----------------------------------------------------------------------------------
def script(task: str, cheats: tuple[str, ...], first_honest: int) -> list[Reply]:
    """Cheats, then garbage of every kind, then the honest kernel (429s retried by the client)."""
    replies = [Reply.answer(answer(cheat(name, task, 100 + i), "A very fast kernel.")) for i, name in enumerate(cheats)]
    replies += [
        Reply.malformed(),
        Reply.answer("I would write a kernel here, but let me first explain shared memory..."),
        Reply.status(429, retry_after=0.01),
        truncated(honest(task, 90)),
        Reply.status(429, retry_after=0.01),
        Reply.answer(answer(honest(task, first_honest), "An honest kernel.")),
    ]
    return replies


class HonestVariants:
    """After the script: every further request of a task gets a new honest variant."""

    def __init__(self) -> None:
        self.n: dict[str, int] = {}

    def __call__(self, task: str, op: str, body: dict[str, Any]) -> Reply:
        self.n[task] = self.n.get(task, 200) + 1
        return Reply.answer(answer(honest(task, self.n[task]), f"An honest {op} answer."))


def run_scenario(server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, simulate: bool,
                 cheats: tuple[str, ...], first_honest: dict[str, int], max_candidates: int,
                 eval_overrides: dict[str, Any]) -> tuple[Any, list[Any], dict[str, str | None]]:
    """Run the three tasks against the scripted server; the run's outcome, its evaluations,
    and each task's best kernel's source."""
    monkeypatch.setenv("AUTOTUNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("AUTOTUNER_LLM_API_KEY", "sk-test-not-a-real-key")
    server.responder = ScriptedModel({t: script(t, cheats, first_honest[t]) for t in TASKS}, HonestVariants())
    config = load_config(None, env={}, overrides={
        "search": {"proposer": "llm", "islands": 2, "tune_trials": 2, "patience": 1000},
        "budget": {"max_candidates": max_candidates},
        "llm": {"base_url": server.base_url, "model": "fake-coder", "max_retries": 2, "timeout_s": 30, "cache": False},
        "eval": eval_overrides,
        "report_dir": str(tmp_path / "report"),
    })
    tasks = [load_task(path) for path, *_ in TASKS.values()]
    with Archive.open(f"sqlite:///{tmp_path / 'archive.db'}") as archive:
        outcome = run_tuning(archive, config, tasks, simulate=simulate)
        history = archive.run_history(outcome.run_id)
        best = {o.task: archive.kernel(o.best_kernel_id).source if o.best_kernel_id else None for o in outcome.outcomes}
    return outcome, history, best


def check_scenario(server: FakeOpenAIServer, outcome: Any, history: list[Any], best_sources: dict[str, str | None],
                   max_candidates: int) -> None:
    kinds = [(kind_of(item.source) or "", item) for item in history]
    cheats = [item for kind, item in kinds if kind.startswith("cheat-")]
    honest_ = [item for kind, item in kinds if kind == "honest"]
    assert cheats, "no cheat was evaluated"
    for item in cheats:
        assert not item.result.accepted, f"a cheat was accepted: {kind_of(item.source)}: {item.result.reason}"
    for task_outcome in outcome.outcomes:
        best = best_sources[task_outcome.task]
        assert best is not None, f"{task_outcome.task}: nothing accepted ({task_outcome.stop_reason})"
        assert kind_of(best) == "honest", f"{task_outcome.task}: the best kernel is {kind_of(best)}"
        assert any(i.result.accepted for i in honest_ if i.result.task_name == task_outcome.task)
        assert task_outcome.generations > 3
    # the run used its budget: every candidate it was given, not a fixed few generations
    assert outcome.status == "budget" and len(history) == max_candidates, outcome.stop_reason
    assert [o.stop_kind for o in outcome.outcomes] == ["share", "share", "budget"]
    # the garbage was survived, and the cheats' rejections went back to the model
    fixes = "\n".join(m["content"] for r in server.completions if operator_of(r.body) == "fix" for m in r.body["messages"])
    assert any(item.result.reason[:60] in fixes for item in cheats), "no cheat's rejection went back to the model"
    assert len(server.completions) > 3 * len(TASKS) * 2  # more than the three generations of two islands of old


@pytest.fixture
def server():
    server = FakeOpenAIServer(models=("fake-coder",)).start()
    yield server
    server.stop()


def accepted_by_simulation(task: Task, start: int) -> int:
    """The first honest variant from ``start`` on that the simulated evaluator accepts (its
    verdicts are made up from a hash of the source: one in five sources gets a mismatch)."""
    evaluate = simulated_evaluator()
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(start, start + 50):
            path = Path(tmp) / f"c{n}.py"
            path.write_text(honest(task.name, n))
            if evaluate(task, path, [{}], EvalConfig())[0].accepted:
                return n
    raise AssertionError("no honest variant accepted by the simulation")


def test_scripted_server_run_on_the_simulated_evaluator(server, tmp_path, monkeypatch):
    first = {name: accepted_by_simulation(load_task(path), 1) for name, (path, *_) in TASKS.items()}
    outcome, history, best = run_scenario(server, tmp_path, monkeypatch, simulate=True, cheats=STATIC_CHEATS,
                                          first_honest=first, max_candidates=36, eval_overrides={})
    check_scenario(server, outcome, history, best, 36)
    for item in history:
        if (kind_of(item.source) or "").startswith("cheat-"):
            assert item.result.stage.value == "static_check"


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_scripted_server_run_on_the_gpu(server, tmp_path, monkeypatch):
    """The same scenario with the real evaluator: real cheating kernels, real honest ones."""
    outcome, history, best = run_scenario(
        server, tmp_path, monkeypatch, simulate=False, cheats=("fallback", "partial", "side-stream", "hardcoded", "static"),
        first_honest={name: 1 for name in TASKS}, max_candidates=36, eval_overrides={"compile_baseline": False})
    lines = [f"{item.result.task_name:8} {kind_of(item.source) or '-':18} {item.operator:9} "
             f"{item.result.verdict.value:8} {item.result.stage.value:12} {item.result.speedup_eager or 0:.2f}x  "
             f"{item.result.reason[:100]}" for item in history]
    lines.append(outcome.stop_reason)
    lines += [f"{o.task}: {o.stop_reason}; requests {dict(o.requests)}" for o in outcome.outcomes]
    lines += [f"best {task}: {kind_of(source) or '-'}" for task, source in sorted(best.items())]
    print("\n".join(lines))
    report_dir = os.environ.get("AUTOTUNER_TEST_REPORT_DIR")  # the GPU session script keeps the table
    if report_dir:
        Path(report_dir, "scripted_server.txt").write_text("\n".join(lines) + "\n")
    check_scenario(server, outcome, history, best, 36)
    rejected_at = {kind_of(i.source): i.result.stage.value for i in history if (kind_of(i.source) or "").startswith("cheat-")}
    assert rejected_at["cheat-static"] == "static_check"
    assert rejected_at["cheat-fallback"] == "integrity"
