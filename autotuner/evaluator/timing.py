"""Time a function the same way for the candidate and both baselines.

Each timed call: the L2 cache is flushed (a buffer several times its size is overwritten),
the device is synchronized, a start event is recorded, the function runs, the device is
synchronized again (so work on any stream the callee made is inside the window), and the end
event is recorded. Calls rotate over a pool of input sets at distinct addresses whose
contents are redrawn between rounds, so caching on pointers or values cannot help; the
caller's ``check`` verifies every call's output after its window closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from autotuner.evaluator.verdict import TimingStats

# Bound once at import, before any candidate code exists in the process.
_Event = torch.cuda.Event
_synchronize = torch.cuda.synchronize


@dataclass
class TimedRun:
    stats: TimingStats
    samples_ms: list[float]


def l2_flush_buffer(l2_bytes: int) -> torch.Tensor:
    return torch.empty(max(4 * l2_bytes, 64 << 20) // 4, dtype=torch.float32, device="cuda")


def time_calls(
    fn: Callable[..., Any],
    pool: list[list[Any]],
    refresh: Callable[[int], None],
    *,
    calls: int,
    warmup: int,
    flush: torch.Tensor,
    check: Callable[[int, Any], None] | None = None,
) -> TimedRun:
    """Per-call device times of ``fn(*pool[i % len(pool)])``.

    ``refresh(j)`` redraws the contents of pool entry ``j`` in place (outside the timed
    window); it runs for every entry before each new round. ``check(j, output)`` runs after
    every call, outside its window, and raises to reject.
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
        if check is not None:
            check(j, out)
        del out
    _synchronize()
    samples = [s.elapsed_time(e) for s, e in zip(starts, ends)]
    return TimedRun(TimingStats.from_samples(samples), samples)
