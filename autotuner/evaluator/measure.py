"""Timing of the candidate and of the eager and torch.compile baselines, on one shape.

The three are timed by the same function over the same kind of input pool. Baselines are
cached on disk per task content, shape, GPU, torch version and harness version, so only the
first candidate of a task pays for ``torch.compile``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch

from autotuner import HARNESS_VERSION
from autotuner.evaluator.compare import compare_outputs
from autotuner.evaluator.config import EvalConfig
from autotuner.evaluator.inputs import make_inputs, make_reference
from autotuner.evaluator.timing import TimedRun, l2_flush_buffer, time_calls
from autotuner.evaluator.verdict import Stage, TimingStats
from autotuner.evaluator.verify import Rejection, derive_seed
from autotuner.tasks import Shape, Task

log = logging.getLogger(__name__)


def _set_bytes(inputs: list[Any]) -> int:
    return sum(v.numel() * v.element_size() for v in inputs if isinstance(v, torch.Tensor))


def build_pool(task: Task, shape: Shape, base_seed: int, config: EvalConfig, tag: str
               ) -> tuple[list[list[Any]], Callable[[int], None]]:
    """Input sets at distinct addresses, and a function that redraws one set in place."""
    first = make_inputs(task, shape, derive_seed(base_seed, tag, "pool", 0))
    per_set = max(1, _set_bytes(first))
    size = int(max(2, min(config.timing_calls, config.pool_bytes // per_set)))
    pool = [first] + [make_inputs(task, shape, derive_seed(base_seed, tag, "pool", j)) for j in range(1, size)]
    draws = [0]

    def refresh(j: int) -> None:
        draws[0] += 1
        fresh = make_inputs(task, shape, derive_seed(base_seed, tag, "refresh", draws[0]))
        for dst, src in zip(pool[j], fresh):
            if isinstance(dst, torch.Tensor):
                dst.copy_(src)

    return pool, refresh


def time_model(model: Callable[..., Any], pool: list[list[Any]], refresh: Callable[[int], None],
               config: EvalConfig, flush: torch.Tensor, keep_outputs: bool = False) -> TimedRun:
    with torch.no_grad():
        return time_calls(model, pool, refresh, calls=config.timing_calls, warmup=config.warmup_calls,
                          flush=flush, keep_outputs=keep_outputs)


def verify_timed_outputs(reference: torch.nn.Module, pool: list[list[Any]], run: TimedRun,
                         tolerance: dict[str, float]) -> None:
    """The outputs computed while timed must be right too (catches output caching)."""
    with torch.no_grad():
        for j, out in run.last_outputs:
            comparison = compare_outputs(out, reference(*pool[j]), tolerance)
            if not comparison.ok:
                raise Rejection(
                    Stage.TIMING,
                    f"an output computed during timing was wrong (input set {j}): {comparison.reason}. "
                    "Results must not be cached across calls",
                )


def baseline_key(task: Task, shape: Shape, gpu_name: str, config: EvalConfig) -> str:
    text = json.dumps([task.content_hash, shape.to_json(), gpu_name, torch.__version__, HARNESS_VERSION,
                       config.timing_calls, config.warmup_calls, config.compile_baseline], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def measure_baselines(task: Task, shape: Shape, config: EvalConfig, cache_dir: Path, base_seed: int,
                      flush: torch.Tensor) -> dict[str, Any]:
    """Eager and torch.compile timings of the reference, from the cache or measured now."""
    gpu_name = torch.cuda.get_device_name()
    path = cache_dir / "baselines" / f"{baseline_key(task, shape, gpu_name, config)}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except ValueError:
            log.warning("baseline cache %s unreadable; measuring again", path)
    pool, refresh = build_pool(task, shape, base_seed, config, "baseline")
    reference = make_reference(task, shape, derive_seed(base_seed, "baseline", "weights"))
    result: dict[str, Any] = {"eager": asdict(time_model(reference, pool, refresh, config, flush).stats)}
    if config.compile_baseline:
        compiled = torch.compile(reference)
        started = time.perf_counter()
        with torch.no_grad():
            compiled(*pool[0])
        torch.cuda.synchronize()
        result["compile_s"] = time.perf_counter() - started
        result["compiled"] = asdict(time_model(compiled, pool, refresh, config, flush).stats)
    del pool
    torch.cuda.empty_cache()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(path)
    return result


def stats_from(data: dict[str, Any] | None) -> TimingStats | None:
    return TimingStats(**data) if data else None
