"""Compile many tasks' torch.compile baselines at once, before any of them is timed.

The first candidate of a task pays for its torch.compile baseline: Dynamo, Inductor and Triton
on one CPU core, tens of seconds, while the GPU idles; over a suite of tasks that is most of a
run's first half hour. Compiling is CPU work and each task's is independent, so worker
processes compile several tasks at once, each through ``measure.compiled_baseline`` as
``measure_baselines`` does (the same module, input shapes and strict numerics, with the
evaluator child's cache folders), and leave the results in Inductor's and Triton's on-disk
caches. The evaluator's own compile then finds them there; it still times eager and compiled
calls itself, one at a time, so nothing measured comes from these processes (they share the GPU).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from autotuner.evaluator.eval_config import EvalConfig


@dataclass(frozen=True)
class Warmed:
    """One task's compile in a worker: seconds it took, or why it failed; ``cached``: its
    baselines were measured before (nothing compiled)."""

    task: str
    seconds: float
    error: str | None = None
    cached: bool = False


def default_jobs() -> int:
    """Half the CPU cores, at most 8: compiling is CPU-bound, and each process holds a CUDA context."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def warm_one(task_path: str, cache_dir: str, config: EvalConfig) -> Warmed:
    """Compile one task's baseline in this (worker) process, as the evaluator's child would,
    unless the evaluator has its baselines for this GPU and ``config`` already."""
    from autotuner.evaluator.isolation import cache_dirs

    os.environ.update(cache_dirs(Path(cache_dir)))  # before Inductor and Triton look them up
    started = time.perf_counter()
    name = Path(task_path).stem
    try:
        import torch

        from autotuner.evaluator.inputs import make_inputs, make_reference
        from autotuner.evaluator.measure import baseline_key, compiled_baseline
        from autotuner.evaluator.watch import set_strict_numerics
        from autotuner.runtime.device import require_gpu
        from autotuner.tasks import load_task

        require_gpu()
        set_strict_numerics()
        task = load_task(task_path, config.policy)
        name = task.name
        shape = task.default_shape
        key = baseline_key(task, shape, torch.cuda.get_device_name(), config)
        if (Path(cache_dir) / "baselines" / f"{key}.json").is_file():
            return Warmed(name, time.perf_counter() - started, cached=True)
        reference = make_reference(task, shape, seed=1)
        inputs = make_inputs(task, shape, seed=2)
        compiled = compiled_baseline(reference, graph=task.timing == "graph")[0]
        with torch.no_grad():
            compiled(*inputs)
        torch.cuda.synchronize()
        del reference, inputs, compiled
        torch._dynamo.reset()
        torch.cuda.empty_cache()
        return Warmed(name, time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - a task that fails here is measured (or fails) in the evaluator
        return Warmed(name, time.perf_counter() - started, f"{type(exc).__name__}: {str(exc)[:300]}")


def warm_baselines(task_paths: Sequence[str | Path], cache_dir: str | Path, jobs: int, config: EvalConfig,
                   done: Callable[[Warmed], None] | None = None) -> list[Warmed]:
    """Compile every task's baseline in ``jobs`` spawned processes; returns each task's outcome
    (``done`` is called as each finishes). Never raises for a task: a failure is its ``error``."""
    paths = [str(p) for p in task_paths]
    if not paths or jobs < 1:
        return []
    results: list[Warmed] = []
    with ProcessPoolExecutor(max_workers=min(jobs, len(paths)), mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(warm_one, path, str(cache_dir), config): path for path in paths}
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - a worker that died (out of memory, a crash)
                reason = f"worker failed: {type(exc).__name__}: {str(exc)[:200]}"
                result = Warmed(Path(futures[future]).stem, 0.0, reason)
            results.append(result)
            if done is not None:
                done(result)
    return results
