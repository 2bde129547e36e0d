"""A small archive for the browser tests, filled through the ``Archive`` API only, a server on
a free loopback port (uvicorn in a thread), and the fixtures over them (test modules import
them: a ``conftest.py`` here would take the module name ``conftest`` from tests/unit/rules').

What it holds, so that every page has something to show: four tasks (strict and hybrid,
float32 and bfloat16), kernels with lineage (a chain and a crossover of two parents),
evaluations on two GPUs (accepted, rejected with reasons, one by an older harness: stale),
one run with LLM calls, and a hostile kernel whose source, reason and model hold HTML.
"""

from __future__ import annotations

import dataclasses
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from archive import Archive, KernelSpec, LLMCallRecord
from archive_backends import BACKENDS, open_backend
from archive.testing import GPUS, make_result, make_task
from autotuner.evaluator.verdict import Stage, Verdict

H100, L4 = GPUS[0], GPUS[2]
SCRIPT = "<script>window.__pwned = 1; document.title = 'pwned'</script>"
HOSTILE_REASON = f"output mismatch {SCRIPT} at shape1"
HOSTILE_MODEL = "<img src=x onerror=\"window.__pwned=2\">"


def candidate(name: str, body: str, block: int = 256) -> str:
    """A candidate module in the project's format (Python launching CUDA from a string)."""
    return f'''import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r"""
extern "C" __global__ void {name}(const float* __restrict__ x, float* __restrict__ y, long long n) {{
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = {body};
}}
"""
PARAMS = {{"BLOCK": [128, 256, 512]}}


class ModelNew(nn.Module):
    def __init__(self, BLOCK: int = {block}):
        super().__init__()
        self.block = BLOCK
        self.module = compile_module(SOURCE, defines={{"BLOCK": BLOCK}})

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        self.module.launch("{name}", grid=((n + self.block - 1) // self.block,), block=(self.block,), args=(x, y, n))
        return y
'''


@dataclass(frozen=True)
class Demo:
    tasks: dict[str, int]
    kernels: dict[str, int]
    run_id: int
    hostile_kernel: int
    stale_kernel: int


def fill(archive: Archive) -> Demo:
    """Fill ``archive`` (empty) with the demo data; returns the ids the tests look for."""
    rng = random.Random(7)
    tasks = {"relu": make_task("relu", "activation"), "softmax": make_task("softmax", "softmax"),
             "rmsnorm_bf16": make_task("rmsnorm_bf16", "normalization", dtype="bfloat16"),
             "gemm_relu": make_task("gemm_relu", "gemm", policy="hybrid")}  # fmt: skip
    run_id = archive.start_run({"search": {"proposer": "mixed", "tune_trials": 8}, "gpus": [0, 1]})
    kernels: dict[str, int] = {}

    def record(key, task, spec, gpu=H100, eager=1.0, ms=0.5, compiled=0.8, verdict=Verdict.ACCEPTED,
               reason=None, harness=None, run=run_id):  # noqa: ANN001, ANN202
        result = make_result(task, verdict=verdict, candidate_ms=ms, eager_ms=eager, compiled_ms=compiled, gpu=gpu,
                             harness_version=harness, rng=rng)  # fmt: skip
        if reason is not None:
            result = dataclasses.replace(result, reason=reason, stage=Stage.CORRECTNESS)
        rec = archive.record(task, dataclasses.replace(spec, run_id=run), result, run_id=run)
        kernels.setdefault(key, rec.kernel_id)
        return rec

    shape = {"relu": (1.0, 0.7), "softmax": (1.12, 0.55), "rmsnorm_bf16": (0.9, 0.8), "gemm_relu": (1.3, 0.9)}
    for name, base_ms in (("relu", 1.0), ("softmax", 2.0), ("rmsnorm_bf16", 0.6), ("gemm_relu", 3.0)):
        slow, comp = shape[name]  # how fast the search improves on this task; torch.compile's share of eager
        task = tasks[name]
        root = record(f"{name}/translate", task, KernelSpec(candidate(name, "fmaxf(x[i], 0.0f)"), {"BLOCK": 256},
                                                            operator="translate", proposer="rules"),
                      eager=base_ms, ms=base_ms * 0.9 * slow, compiled=base_ms * comp)  # fmt: skip
        record(f"{name}/translate", task, KernelSpec(candidate(name, "fmaxf(x[i], 0.0f)"), {"BLOCK": 256},
                                                     operator="translate", proposer="rules"),
               gpu=L4, eager=base_ms * 3, ms=base_ms * 2.5, compiled=base_ms * 2.4)  # fmt: skip
        parent = root.kernel_id
        for step in range(1, 5):
            spec = KernelSpec(candidate(name, f"fmaxf(x[i], 0.0f) /* v{step} */", 128 << (step % 3)),
                              {"BLOCK": 128 << (step % 3)}, operator="optimize", proposer="llm", model="gpt-4o",
                              parents=(parent,))  # fmt: skip
            rejected = step == 2
            rec = record(f"{name}/opt{step}", task, spec, eager=base_ms, ms=base_ms * (0.9 - 0.12 * step) * slow,
                         compiled=base_ms * comp, verdict=Verdict.REJECTED if rejected else Verdict.ACCEPTED,
                         reason="max abs error 3.1e-2 exceeds atol 1e-5 at shape1" if rejected else None)  # fmt: skip
            archive.record_llm_call(LLMCallRecord("gpt-4o", tokens_in=1800 + step, tokens_out=900, latency_s=4.2,
                                                  cost_usd=0.0135, operator="optimize", run_id=run_id,
                                                  kernel_id=rec.kernel_id))  # fmt: skip
            if not rejected:
                parent = rec.kernel_id
    # A crossover of two relu kernels; a stale result; a hostile kernel.
    relu = tasks["relu"]
    cross = record("relu/crossover", relu, KernelSpec(candidate("relu", "x[i] > 0.0f ? x[i] : 0.0f", 512), {"BLOCK": 512},
                                                      operator="crossover", proposer="llm", model="gpt-4o-mini",
                                                      parents=(kernels["relu/opt3"], kernels["relu/opt4"])),
                   ms=0.4, compiled=0.7)  # fmt: skip
    archive.record_llm_call(LLMCallRecord("gpt-4o-mini", tokens_in=2500, tokens_out=1100, latency_s=2.0, cost_usd=0.001,
                                          operator="crossover", run_id=run_id, kernel_id=cross.kernel_id))  # fmt: skip
    archive.record_llm_call(LLMCallRecord("gpt-4o-mini", tokens_in=2400, error="timeout after 300 s", operator="fix",
                                          run_id=run_id))  # fmt: skip
    stale = record("softmax/stale", tasks["softmax"], KernelSpec(candidate("softmax", "expf(x[i])"), {"BLOCK": 64},
                                                                  operator="translate", proposer="rules"),
                   eager=2.0, ms=0.05, compiled=1.4, harness="0", run=None)  # fmt: skip
    hostile = record("relu/hostile", relu, KernelSpec(candidate("relu", "x[i]") + f"\n# {SCRIPT}\n", {"BLOCK": 1024},
                                                      operator="fix", proposer="llm", model=HOSTILE_MODEL,
                                                      parents=(kernels["relu/opt1"],)),
                     verdict=Verdict.REJECTED, reason=HOSTILE_REASON)  # fmt: skip
    archive.finish_run(run_id, "done", {"llm_usd": 0.06, "candidates": 20})
    ids = {name: archive.task_detail(name).id for name in tasks}
    return Demo(ids, kernels, run_id, hostile.kernel_id, stale.kernel_id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(archive: Archive) -> Iterator[str]:
    """The browser app served by uvicorn in a thread on a free loopback port; yields its base URL."""
    from autotuner.web.server import bind, make_server, url_of

    sock = bind("127.0.0.1", 0)
    server = make_server(archive, "127.0.0.1", sock.getsockname()[1])
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web server did not start")
        time.sleep(0.02)
    try:
        yield url_of(sock).rstrip("/")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module", params=BACKENDS)
def demo_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from open_backend(request, tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def demo_archive(demo_url: str) -> Iterator[tuple[Archive, Demo]]:
    with Archive.open(demo_url) as archive:
        yield archive, fill(archive)


@pytest.fixture(scope="module")
def served(demo_archive: tuple[Archive, Demo]) -> Iterator[tuple[str, Archive, Demo]]:
    archive, demo = demo_archive
    with running_server(archive) as base:
        yield base, archive, demo
