"""Timing of the candidate and of the eager and torch.compile baselines, on one shape.

The three are timed by the same function over the same kind of input pool: each call alone
between events (``TIMING = "events"``, the default), or all replayed from one CUDA graph, each
on its own copy of the weights (``TIMING = "graph"``: decode-size ops, where launching from
Python costs more than the kernel). Baselines are cached on disk per task content, shape, GPU,
torch version and harness version, so only the first candidate of a task pays for
``torch.compile``.
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
from autotuner.evaluator.compare import Comparison, compare_outputs, passes_with_margin
from autotuner.evaluator.eval_config import EvalConfig
from autotuner.evaluator.inputs import make_inputs, make_reference
from autotuner.evaluator.timing import TimedRun, _synchronize, checked_sample, time_calls, time_graph
from autotuner.evaluator.verdict import Stage, TimingStats
from autotuner.evaluator.verify import Rejection, derive_seed
from autotuner.tasks import Shape, Task

log = logging.getLogger(__name__)


def _set_bytes(inputs: list[Any]) -> int:
    return sum(v.numel() * v.element_size() for v in inputs if isinstance(v, torch.Tensor))


class InputPool:
    """Input sets at distinct addresses for timing; every set can be redrawn from its seed.

    ``refresh(j)`` redraws set ``j`` in place (same addresses, new values); ``pristine(j)``
    draws the values set ``j`` should hold again, in fresh memory, so a check never trusts
    memory the candidate was handed.
    """

    def __init__(self, task: Task, shape: Shape, base_seed: int, config: EvalConfig, tag: str) -> None:
        self.task, self.shape = task, shape
        self._seed = lambda *labels: derive_seed(base_seed, tag, *labels)
        first = make_inputs(task, shape, self._seed("pool", 0))
        per_set = max(1, _set_bytes(first))
        size = int(max(2, min(config.timing_calls, config.pool_bytes // per_set)))
        self.seeds = [self._seed("pool", j) for j in range(size)]
        self.sets = [first] + [make_inputs(task, shape, self.seeds[j]) for j in range(1, size)]
        self._draws = 0
        self.set_bytes = per_set
        self.refresh_s = 0.0  # host seconds spent redrawing sets (a phase of the evaluation)

    def refresh(self, j: int) -> None:
        started = time.perf_counter()
        self._draws += 1
        self.seeds[j] = self._seed("refresh", self._draws)
        for dst, src in zip(self.sets[j], make_inputs(self.task, self.shape, self.seeds[j])):
            if isinstance(dst, torch.Tensor):
                dst.copy_(src)
        self.refresh_s += time.perf_counter() - started

    def pristine(self, j: int) -> list[Any]:
        return make_inputs(self.task, self.shape, self.seeds[j])


def time_model(model: Callable[..., Any], pool: InputPool, config: EvalConfig, flush: torch.Tensor,
               check: Callable[[int, Any], None] | None = None, check_seed: int | None = None) -> TimedRun:
    """``check`` runs on ``config.checked_calls`` of the calls, drawn from ``check_seed`` (a seed
    the candidate does not know); with no seed, on every call."""
    checked = None if check_seed is None else checked_sample(config.timing_calls, config.checked_calls, check_seed)
    with torch.no_grad():
        return time_calls(model, pool.sets, pool.refresh, calls=config.timing_calls, warmup=config.warmup_calls,
                          flush=flush, check=check, checked=checked)


def model_bytes(model: torch.nn.Module) -> int:
    """Bytes of a model's parameters and buffers: what one call streams besides its inputs."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def graph_copies(pool: InputPool, weight_bytes: int, l2_bytes: int) -> int:
    """How many (weights, input set) copies one timing graph replays: together at least three
    times the L2, so every call streams from DRAM as a model's layers do; at least 2, at most
    the pool's sets."""
    per_call = max(1, weight_bytes + pool.set_bytes)
    return int(max(2, min(len(pool.sets), -(-3 * l2_bytes // per_call))))


def l2_bytes() -> int:
    return int(getattr(torch.cuda.get_device_properties(torch.cuda.current_device()), "L2_cache_size", 50 << 20))


def time_graph_models(fns: list[Callable[..., Any]], pool: InputPool, config: EvalConfig,
                      check: Callable[[int, Any], None] | None = None) -> TimedRun:
    """``TIMING = "graph"``: ``fns[j]`` on ``pool.sets[j]``, replayed from one CUDA graph; about
    ``config.timing_calls`` calls in all (at least 5 replays)."""
    n = len(fns)
    with torch.no_grad():
        return time_graph(fns, pool.sets[:n], pool.refresh, replays=max(5, -(-config.timing_calls // n)),
                          warmup=config.warmup_calls, check=check)


def compiled_baseline(reference: torch.nn.Module, copies: list[torch.nn.Module] | None = None,
                      graph: bool = False) -> list[Callable[..., Any]]:
    """The torch.compile baseline as it is timed: the module compiled (event timing), or one
    compiled functional call per copy (``TIMING = "graph"``). One place, because
    ``baseline_warm`` compiles the same thing ahead of time and only an identical compile hits
    Inductor's cache."""
    if graph:
        return functional_copies(reference, copies or [reference], torch.compile)
    return [torch.compile(reference)]


def functional_copies(reference: torch.nn.Module, copies: list[torch.nn.Module],
                      wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> list[Callable[..., Any]]:
    """One ``wrap``-ped function of (weights, inputs) for every copy: ``torch.compile`` compiles it
    once, the weights being inputs (a compiled module per copy could recompile past Dynamo's
    cache limit and fall back to eager)."""
    from functools import partial

    fn = wrap(lambda state, *args: torch.func.functional_call(reference, state, args))
    return [partial(fn, {**dict(c.named_parameters()), **dict(c.named_buffers())}) for c in copies]


def _tick(clock: dict[str, float] | None, key: str, since: float) -> float:
    """Add the seconds since ``since`` to ``clock[key]`` (after a device sync, so GPU work
    lands in the phase that queued it); returns now. No clock: nothing, no sync."""
    if clock is None:
        return since
    _synchronize()  # bound at import: a candidate's patch cannot run inside the check
    now = time.perf_counter()
    clock[key] = clock.get(key, 0.0) + now - since
    return now


def timed_output_check(reference: torch.nn.Module, pool: InputPool, tolerance: dict[str, float],
                       clock: dict[str, float] | None = None, margin: Any = None) -> Callable[[int, Any], None]:
    """A check run after every timed call, outside the timed window.

    The inputs the candidate was handed must still hold their values, and its output must
    match the reference computed on a fresh draw of the same inputs: so caching results,
    skipping work on some calls, or writing into the inputs all fail here. ``clock`` collects
    the seconds of each part (``check_draw``, ``check_inputs``, ``check_reference``,
    ``check_compare``) across calls. ``margin``: the one-pass check kernel
    (``margin_kernel.MarginKernel``, built before the candidate was imported), or None.
    """
    from autotuner.evaluator.inputs import inputs_unchanged

    def check(j: int, out: Any) -> None:
        started = time.perf_counter()
        fresh = pool.pristine(j)
        started = _tick(clock, "check_draw", started)
        changed = inputs_unchanged(fresh, pool.sets[j])
        started = _tick(clock, "check_inputs", started)
        if changed:
            raise Rejection(Stage.TIMING, f"the candidate wrote into its input(s) {changed} during timing")
        expected = reference(*fresh)
        started = _tick(clock, "check_reference", started)
        # A verdict, no figures: the margin test passes most honest outputs in fewer passes over
        # memory; anything it cannot show passing is judged by the full comparison.
        comparison = Comparison(True) if passes_with_margin(out, expected, tolerance, margin) else \
            compare_outputs(out, expected, tolerance)
        _tick(clock, "check_compare", started)
        if not comparison.ok:
            raise Rejection(
                Stage.TIMING,
                f"an output computed during timing was wrong (input set {j}): {comparison.reason}. "
                "Every timed call must compute its result (no caching across calls, no skipped work)",
            )

    return check


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
    pool = InputPool(task, shape, base_seed, config, "baseline")
    reference = make_reference(task, shape, derive_seed(base_seed, "baseline", "weights"))
    if task.timing == "graph":
        result = _graph_baselines(task, shape, config, base_seed, pool, reference)
    else:
        result = _event_baselines(config, pool, reference, flush)
    del pool
    torch.cuda.empty_cache()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(path)
    return result


def _graph_baselines(task: Task, shape: Shape, config: EvalConfig, base_seed: int, pool: InputPool,
                     reference: torch.nn.Module) -> dict[str, Any]:
    n = graph_copies(pool, model_bytes(reference), l2_bytes())
    copies = [reference] + [make_reference(task, shape, derive_seed(base_seed, "baseline", "weights", i))
                            for i in range(1, n)]
    result: dict[str, Any] = {"eager": asdict(time_graph_models(copies, pool, config).stats), "timing": "graph"}
    if config.compile_baseline:
        started = time.perf_counter()
        fns = compiled_baseline(reference, copies, graph=True)
        with torch.no_grad():
            fns[0](*pool.sets[0])
        torch.cuda.synchronize()
        result["compile_s"] = time.perf_counter() - started
        result["compiled"] = asdict(time_graph_models(fns, pool, config).stats)
    return result


def _event_baselines(config: EvalConfig, pool: InputPool, reference: torch.nn.Module,
                     flush: torch.Tensor) -> dict[str, Any]:
    result: dict[str, Any] = {"eager": asdict(time_model(reference, pool, config, flush).stats)}
    if config.compile_baseline:
        compiled = compiled_baseline(reference)[0]
        started = time.perf_counter()
        with torch.no_grad():
            compiled(*pool.sets[0])
        torch.cuda.synchronize()
        result["compile_s"] = time.perf_counter() - started
        result["compiled"] = asdict(time_model(compiled, pool, config, flush).stats)
    return result


def stats_from(data: dict[str, Any] | None) -> TimingStats | None:
    return TimingStats(**data) if data else None
