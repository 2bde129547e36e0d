"""A simulated evaluator: deterministic results without a GPU, for testing the search.

Like Kernel Tuner's simulation mode, it lets the search logic (seeding, optuna, islands,
budgets, resume) run on any machine. The static check is the real one; everything after it is
made up from a hash of the source and parameters, so the same candidate always gets the same
result. Never use its numbers for anything but testing the search.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from autotuner import HARNESS_VERSION
from autotuner.candidate import declared_kernel_names, source_hash
from autotuner.evaluator.eval_config import EvalConfig
from autotuner.evaluator.static_check import check_source, summarize
from autotuner.evaluator.verdict import EvalResult, KernelResources, Provenance, ShapeResult, Stage, TimingStats, Verdict
from autotuner.tasks import Task

SIMULATED_GPU = "simulated"


def _unit(*parts: Any) -> float:
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


def _stats(ms: float, n: int) -> TimingStats:
    return TimingStats(ms, ms, 0.01 * ms, 0.97 * ms, 1.05 * ms, 0.98 * ms, 1.03 * ms, n)


def _mismatch(task: Task, digest: str) -> str:
    """A made-up correctness rejection worded as the real one (verify + compare): the shape,
    the trial's input law, how many elements, where the worst one is and by how much."""
    shape = task.shapes[int(_unit(digest, "shape") * len(task.shapes))]
    law = ("task", "signed", "wide")[int(_unit(digest, "law") * 3)]
    index, got = int(_unit(digest, "index") * 4096), _unit(digest, "got")
    return (f"shape {shape.name}{' (hidden)' if shape.hidden else ''}, trial 1 ({law} inputs): output: "
            f"{1 + index // 7} of 4096 elements outside tolerance (worst at flat index {index}: got {got:.6g}, "
            f"expected {got + 0.5:.6g}; max abs err 0.5, rel L2 err 0.0123) [simulated mismatch]")


def _resources(source: str, digest: str, params: dict[str, Any]) -> list[KernelResources]:
    """Made-up resource reports, one per declared kernel, shaped as the real worker's."""
    block = params.get("BLOCK", 256)
    block = block if isinstance(block, int) and not isinstance(block, bool) else 256
    return [KernelResources(name, registers=16 + int(_unit(digest, name, "regs") * 96),
                            local_bytes=0 if _unit(digest, name, "spill") < 0.8 else 32,
                            shared_static_bytes=128 if "__shared__" in source else 0,
                            max_threads_per_block=1024, block_threads=block)
            for name in sorted(declared_kernel_names(source))]


class SimulatedEvaluator:
    """An ``Evaluator`` (see evolution.workers) that sleeps ``delay_s`` per setting.

    A class rather than a closure so that it pickles plainly into a Ray actor, and so that a
    worker can ask which GPU it pretends to be (``device_name``: the scope of shared work).
    """

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    def device_name(self, gpu: int) -> str:
        return SIMULATED_GPU

    def __call__(self, task: Task, candidate: Path, settings: list[dict[str, Any]],
                 config: EvalConfig) -> list[EvalResult]:
        source = Path(candidate).read_text()
        digest = source_hash(source)
        return [self._one(task, source, digest, params, config) for params in settings]

    def _one(self, task: Task, source: str, digest: str, params: dict[str, Any], config: EvalConfig) -> EvalResult:
        time.sleep(self.delay_s)
        base = dict(task_name=task.name, task_hash=task.content_hash, candidate_hash=digest, policy=task.policy,
                    dtype=task.dtype, provenance=Provenance(HARNESS_VERSION, gpu_name=SIMULATED_GPU))
        violations = check_source(source) if config.static_check else []
        if violations:
            return EvalResult(Verdict.REJECTED, Stage.STATIC, summarize(violations), **base)
        if _unit(digest, "correct") < 0.2:
            return EvalResult(Verdict.REJECTED, Stage.CORRECTNESS, _mismatch(task, digest), **base)
        # A smooth surface over the parameters with a per-source optimum.
        penalty = sum((math.log2(max(1, float(v))) - 4 * _unit(digest, k)) ** 2 * 0.05
                      for k, v in sorted(params.items()) if isinstance(v, (int, float)))
        ms = 1.0 * (0.6 + 0.8 * _unit(digest, "speed")) * (1 + penalty)
        eager, compiled = _stats(1.0, config.timing_calls), _stats(0.9, config.timing_calls)
        shapes = [ShapeResult(s.name, s.hidden, config.trials, 0.0, 0.0, True) for s in task.shapes]
        candidate = replace(_stats(ms, config.timing_calls), checked_calls=config.checked_calls)  # as the worker's
        shapes[0].candidate, shapes[0].eager, shapes[0].compiled = candidate, eager, compiled
        shapes[0].roofline_ms = 0.5
        return EvalResult(Verdict.ACCEPTED, Stage.DONE, "simulated", shapes=shapes, max_abs_err=0.0,
                          speedup_eager=1.0 / ms, speedup_compile=0.9 / ms, roofline_fraction=0.5 / ms,
                          resources=_resources(source, digest, params), **base)


def simulated_evaluator(delay_s: float = 0.0) -> SimulatedEvaluator:
    """The simulated ``Evaluator``, sleeping ``delay_s`` per setting (to stand in for GPU time)."""
    return SimulatedEvaluator(delay_s)
