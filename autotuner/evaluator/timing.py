"""Time a function the same way for the candidate and both baselines.

Each timed call: the L2 cache is flushed (a buffer several times its size is overwritten),
the device is synchronized, a start event is recorded, the function runs, the device is
synchronized again (so work on any stream the callee made is inside the window), and the end
event is recorded. Calls rotate over a pool of input sets at distinct addresses whose
contents are redrawn between rounds, so caching on pointers or values cannot help; the
caller's ``check`` verifies the output of every call, or of an unpredictable sample of the calls
(``checked_sample``), after its window closes.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any, Callable

import torch

from autotuner.evaluator.verdict import TimingStats

# Bound once at import, before any candidate code exists in the process.
_Event = torch.cuda.Event
_synchronize = torch.cuda.synchronize
_CUDAGraph = torch.cuda.CUDAGraph
_graph = torch.cuda.graph
_Stream = torch.cuda.Stream
_stream = torch.cuda.stream
_current_stream = torch.cuda.current_stream
_fill = torch.Tensor.fill_


class CaptureError(RuntimeError):
    """The function could not be captured in a CUDA graph (``TIMING = "graph"`` needs it)."""


@dataclass
class TimedRun:
    stats: TimingStats
    samples_ms: list[float]


def l2_flush_buffer(l2_bytes: int) -> torch.Tensor:
    return torch.empty(max(4 * l2_bytes, 64 << 20) // 4, dtype=torch.float32, device="cuda")


def checked_sample(calls: int, k: int, seed: int) -> frozenset[int]:
    """Which ``k`` of ``calls`` timed calls get the full output check (all when ``k >= calls``),
    drawn from ``seed``, which the candidate never sees.

    A candidate cannot tell a checked call from an unchecked one before its output is judged, so
    one that skips work on a share ``s`` of the calls survives ``k`` checks with probability about
    ``(1 - s) ** k``: moving the median needs ``s`` above one half, which 13 checks of 50 catch
    with probability 1 - 1e-4. The full check costs a fresh draw of the inputs, a pass over them,
    the reference and a comparison: more than the timed call itself on a memory-bound task.
    """
    return frozenset(range(calls)) if k >= calls else frozenset(random.Random(seed).sample(range(calls), k))


def time_calls(
    fn: Callable[..., Any],
    pool: list[list[Any]],
    refresh: Callable[[int], None],
    *,
    calls: int,
    warmup: int,
    flush: torch.Tensor,
    check: Callable[[int, Any], None] | None = None,
    checked: Collection[int] | None = None,
) -> TimedRun:
    """Per-call device times of ``fn(*pool[i % len(pool)])``.

    ``refresh(j)`` redraws the contents of pool entry ``j`` in place (outside the timed
    window); it runs for every entry before each new round. ``check(j, output)`` runs after
    call ``i``, outside its window, for every ``i`` in ``checked`` (None: every call), and
    raises to reject; the stats count the checked calls.
    """
    size = len(pool)
    for i in range(warmup):
        fn(*pool[i % size])
    _synchronize()
    starts = [_Event(enable_timing=True) for _ in range(calls)]
    ends = [_Event(enable_timing=True) for _ in range(calls)]
    for i in range(calls):
        j = i % size
        if j == 0:
            for k in range(size):
                refresh(k)
        flush.zero_()
        _synchronize()
        starts[i].record()
        out = fn(*pool[j])
        _synchronize()
        ends[i].record()
        if check is not None and (checked is None or i in checked):
            check(j, out)
        del out
    _synchronize()
    samples = [s.elapsed_time(e) for s, e in zip(starts, ends)]
    n_checked = 0 if check is None else calls if checked is None else len({i for i in checked if 0 <= i < calls})
    return TimedRun(replace(TimingStats.from_samples(samples), checked_calls=n_checked), samples)


def capture_graph(fns: list[Callable[..., Any]], sets: list[list[Any]], *, warmup: int) -> tuple[Any, list[Any]]:
    """One CUDA graph of ``fns[j](*sets[j])`` for every j, and the outputs the capture returned.

    The calls first run ``warmup`` times (at least once) on a side stream, so that compiling,
    loading modules and allocating happen before the capture. Any failure of the capture is a
    ``CaptureError``; the caller's current stream is restored either way (``torch.cuda.graph``
    leaves its capture stream current when ending a failed capture raises).
    """
    n = len(fns)
    if n < 1 or len(sets) < n:
        raise ValueError("capture_graph needs a function per input set")
    side = _Stream()
    side.wait_stream(_current_stream())
    with _stream(side):  # compile, load modules, allocate: nothing of that may happen in capture
        for _ in range(max(1, warmup)):
            for j in range(n):
                fns[j](*sets[j])
    _current_stream().wait_stream(side)
    _synchronize()
    graph = _CUDAGraph()
    with _stream(_current_stream()):  # restores the current stream if the capture fails
        try:
            with _graph(graph):
                outs = [fns[j](*sets[j]) for j in range(n)]
        except Exception as exc:  # noqa: BLE001 - the callee's fault: reported as such
            raise CaptureError(f"{type(exc).__name__}: {str(exc)[:300]}") from exc
    return graph, outs


def time_replays(graph: Any, replays: int, *, per: int = 1, flush: torch.Tensor | None = None) -> list[float]:
    """Device time of each of ``replays`` replays of ``graph``, divided by ``per`` (the calls it
    holds); with ``flush``, the L2 is overwritten before each replay, as before each timed call."""
    return [_timed_once(graph.replay, flush) / per for _ in range(max(1, replays))]


def _timed_once(fn: Callable[[], Any], flush: torch.Tensor | None) -> float:
    """Device ms of one ``fn()`` between two events, after an L2 flush when given one."""
    if flush is not None:
        flush.zero_()
        _synchronize()
    start, end = _Event(enable_timing=True), _Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def time_interleaved(graph: Any, call: Callable[[], Any], rounds: int, *, flush: torch.Tensor | None = None,
                     floor: Any = None) -> tuple[list[float], list[float], list[float]]:
    """Device times of ``call()``, of a replay of ``graph`` and of a replay of ``floor`` (when
    given), taken in turns (``rounds`` of each, an L2 flush before every one): whatever else runs
    on the GPU meanwhile (another process's time slices) falls on all sides alike, so their
    fastest figures compare."""
    plain: list[float] = []
    replayed: list[float] = []
    floors: list[float] = []
    for _ in range(max(1, rounds)):
        plain.append(_timed_once(call, flush))
        replayed.append(_timed_once(graph.replay, flush))
        if floor is not None:
            floors.append(_timed_once(floor.replay, flush))
    return plain, replayed, floors


def launch_floor_graph(kernels: int) -> Any:
    """A CUDA graph of ``kernels`` one-element fills: what replaying that many kernels costs
    when they do next to nothing (the graph launch and the gaps between its nodes)."""
    cell = torch.zeros(1, device="cuda")
    graph, _ = capture_graph([lambda: [_fill(cell, 1.0) for _ in range(max(1, kernels))]], [[]], warmup=1)
    graph.floor_cell = cell  # the graph writes it: it lives as long as the graph
    return graph


def time_graph(
    fns: list[Callable[..., Any]],
    sets: list[list[Any]],
    refresh: Callable[[int], None],
    *,
    replays: int,
    warmup: int,
    check: Callable[[int, Any], None] | None = None,
) -> TimedRun:
    """Per-call device times of ``fns[j](*sets[j])`` (j < len(fns)), replayed from one CUDA graph.

    Each sample is one replay of all the calls divided by their number; each ``fns[j]`` holds its
    own weights, so together they stream from DRAM as a model's layers do, with no flush between
    them. ``check(j, output)`` runs on every output after the first replay, and again after
    every set was redrawn in place (``refresh``) and the graph replayed once more: a graph that
    does not compute from its inputs (a result captured once, a skipped launch) fails there.
    """
    n = len(fns)
    if n < 1 or len(sets) < n:
        raise ValueError("time_graph needs a function per input set")
    graph, outs = capture_graph(fns, sets, warmup=warmup)
    graph.replay()
    _synchronize()
    if check is not None:
        for j in range(n):
            check(j, outs[j])
    samples = time_replays(graph, replays, per=n)
    for j in range(n):
        refresh(j)
    graph.replay()
    _synchronize()
    if check is not None:
        for j in range(n):
            check(j, outs[j])
    del outs, graph
    return TimedRun(TimingStats.from_samples(samples, calls_per_sample=n), samples)
