"""A watch the candidate cannot see: what its forward runs when nothing watches it.

Every watch inside the process is visible to the candidate's Python: the op watch is a
dispatch mode, the kernel trace runs under the profiler, and both can be asked for. A
candidate that runs its own kernel only while watched, and ``torch.relu`` otherwise, passes
the integrity pass while the timed calls time PyTorch. So after the timed calls:

1. one forward of the timed candidate, on one of the timed input sets, is captured into a CUDA
   graph (``timing.capture_graph``) with no dispatch mode and no profiler active: all the
   candidate can see is a stream capture;
2. the graph is replayed under the profiler (``watch.trace_kernels``). No Python of the
   candidate runs at a replay, so it cannot tell that this one is watched. Every kernel of the
   replay must be one the watched, profiled forward of the integrity pass ran (names compared
   as ``verify.kernel_key`` gives them; PyTorch's fills, which a replay launches itself to set
   the generator state, are left out as the integrity pass leaves them out). A kernel only the
   unwatched forward ran rejects the candidate at stage ``integrity``;
3. the replay must compute the forward's result: the input set is redrawn in place before the
   profiled replay, and the output compared with the reference's on a fresh draw;
4. plain calls of the forward (what the timed calls ran) and replays of the graph are timed
   in turns with a graph of as many near-empty kernels (the launch floor), ``REPLAYS`` of each,
   each after an L2 flush as before every timed call, and the fastest plain call must take at
   least ``MIN_TIMED_TO_REPLAY`` of the fastest replay less the fastest floor. In
   turns, and the fastest of each: another process on the GPU (time-sliced contexts) only adds
   time and falls on both sides alike; the timed calls' own figures, taken earlier, could sit
   in someone else's time slices while the replays did not (measured: a red-team run with
   other evaluations on the same GPU accepted a cheat that way). That catches a candidate that
   behaves while captured (it can ask ``torch.cuda.is_current_stream_capturing()``) and takes a
   faster, different path in the timed calls. Not for ``TIMING = "graph"`` tasks, whose timed
   calls are replays already.

Cost, per evaluated setting: one warm-up call and one captured call of the forward, one replay
to upload the graph, one replay under the profiler (its start and stop, tens of milliseconds,
are most of the check: CUPTI was set up by the integrity pass), and ``REPLAYS`` plain calls,
replays and floor replays with an L2 flush before each: well under a second beside the verification and the
timed calls.

Known limits:

* When the forward cannot be captured, the check is skipped, and the skip is recorded (with
  why) in the result's ``warnings``; nothing is rejected for it. Honest code does this: a
  forward that synchronizes or allocates with ``cudaMalloc`` cannot be captured, and kernels
  launched on the legacy default stream (CuPy's default stream, ``<<<grid, block>>>`` with no
  stream in ``load_inline``) run at once during the capture and leave it empty (PyTorch
  captures on a non-blocking stream, so this is no capture error). A replay that launches no
  kernel, or computes a wrong result, skips the timing comparison in the same way.
* So a candidate that can tell it is being captured can also make the capture fail on
  purpose and skip this check; the skip is in ``warnings`` for a person or a report to see.
* A candidate that behaves while captured and takes a faster path in plain calls is caught
  only when the plain path is much faster (by more than 1 / ``MIN_TIMED_TO_REPLAY``).
* Names are compared exactly. For ``hybrid`` tasks a library (cuBLAS, cuDNN) that chose
  another algorithm inside a capture than in the watched call would show as a kernel the
  watched forward never ran.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch

from autotuner.evaluator.timing import CaptureError, capture_graph, launch_floor_graph, time_interleaved
from autotuner.evaluator.verdict import Stage
from autotuner.evaluator.verify import Rejection, allowed_foreign, kernel_key
from autotuner.evaluator.watch import trace_kernels

# Plain calls and replays of the captured forward, timed in turns; the fastest of each compared.
REPLAYS = 10
# The fastest plain call may not be under this fraction of the fastest replay. Per-call timing
# is never faster than a replay of the same kernels: each timed call also pays the host's launch
# work in Python and a device-wide synchronize (~10-12 us on an H200, docs/verification.md),
# while a replay launches the whole graph at once. Both are minima after an L2 flush, so an
# honest forward gives a ratio of about 1 or more; clock and launch jitter move it by a few per
# cent, not by 40 %. Below 0.6, plain calls run something other than the captured forward.
MIN_TIMED_TO_REPLAY = 0.6
# ... and by more than this in absolute terms, after the replay's launch floor (a graph of as
# many near-empty kernels, timed in the same turns) is taken off. A replay pays a graph launch
# that plain calls of a few tiny kernels do not: measured on an H200, an honest two-kernel
# forward on an 8 x 8 input ran plain in 0.0067 ms and replayed in 0.0185 ms (12 us apart), and
# a whole-tensor product's two kernels, with five other evaluations sharing the GPU, 0.0047 ms
# against 0.0359 ms (31 us apart; 2026-12-01, before the floor was measured). Below this gap the
# figures say nothing about which kernels ran. The price: a cheat whose plain path is less than
# 25 us faster than its captured forward's work passes this comparison (for a task of a few
# microseconds that is most of its time); the kernel names of the replay and the outputs are
# still checked. The red team's watched-path cheat is 0.5 ms apart. A comparison that fails is
# timed once more before it rejects, and the fastest figures of both rounds are judged.
MIN_GAP_MS = 0.025

SKIPPED = "unwatched check skipped"


def unexpected_kernels(replayed: Iterable[str], watched: Iterable[str]) -> list[str]:
    """Kernels of the replay that the watched forward never ran (fills left out), each once."""
    seen = {kernel_key(n) for n in watched}
    found: list[str] = []
    for name in replayed:
        key = kernel_key(name)
        if key not in seen and not allowed_foreign(name) and key not in found:
            found.append(key)
    return found


def timing_problem(plain_ms: float | None, replay_ms: float | None, floor_ms: float = 0.0, kernels: int = 0,
                   min_ratio: float = MIN_TIMED_TO_REPLAY, min_gap_ms: float = MIN_GAP_MS) -> str | None:
    """Why plain calls (as the timed calls ran) cannot run the captured forward, or None when they can.

    ``floor_ms`` is what replaying as many near-empty kernels costs, measured in the same turns:
    the graph launch and node gaps, which say nothing about which kernels ran, come off the
    replay's time before it is compared."""
    if plain_ms is None or replay_ms is None or replay_ms <= 0 or plain_ms <= 0:
        return None
    work_ms = replay_ms - max(0.0, floor_ms)
    if work_ms <= 0:
        return None
    ratio = plain_ms / work_ms
    if ratio >= min_ratio or work_ms - plain_ms <= min_gap_ms:
        return None
    floor = (f", of which {floor_ms:.4g} ms is what a replay of {kernels} near-empty kernels costs"
             if floor_ms > 0 else "")
    return (f"the fastest plain call ({plain_ms:.4g} ms) took {ratio:.2f}x the time of the same forward "
            f"replayed from a CUDA graph with nothing watching ({replay_ms:.4g} ms{floor}; at least "
            f"{min_ratio:g}x expected): the forward runs a faster, different path when it is neither "
            "watched nor captured. Run the same kernels in every call")


def check_unwatched(model: Callable[..., Any], inputs: list[Any], refresh: Callable[[], None],
                    output_problem: Callable[[Any], str | None], watched: list[str], compare_time: bool,
                    flush: torch.Tensor | None, *, capture: Callable[..., Any] = capture_graph,
                    trace: Callable[..., Any] = trace_kernels,
                    time: Callable[..., tuple[list[float], list[float], list[float]]] = time_interleaved,
                    launch_floor: Callable[[int], Any] = launch_floor_graph, replays: int = REPLAYS) -> str | None:
    """Capture ``model(*inputs)`` in a CUDA graph, replay it watched, and judge (module docstring).

    ``refresh()`` redraws ``inputs`` in place; ``output_problem(out)`` says what is wrong with the
    forward's output for the current draw (None: right); ``watched`` are the kernel names of the
    integrity pass's profiled forward; ``compare_time`` whether plain calls are timed against
    replays (not for graph-timed tasks). Raises ``Rejection``; returns a note for ``warnings`` when (part of) the check
    was skipped, None when all of it ran and passed.
    """
    if not watched:
        return f"{SKIPPED}: the watched forward's kernel trace was empty"
    with torch.no_grad():
        try:
            graph, outs = capture([model], [inputs], warmup=1)
        except CaptureError as exc:
            return (f"{SKIPPED}: the forward could not be captured in a CUDA graph ({exc}); "
                    "what it runs when not watched was not checked")
        graph.replay()  # uploads the graph; the profiled replay below runs it again on new values
        refresh()
        _, kernel_trace = trace(graph.replay)
        replayed = [k.name for k in kernel_trace.kernels]
        if kernel_trace.current_stream is None:
            return f"{SKIPPED}: the profiler recorded no kernels during the replay"
        extra = unexpected_kernels(replayed, watched)
        if extra:
            raise Rejection(
                Stage.INTEGRITY,
                f"the forward ran different kernels when not watched: {[k[:100] for k in extra[:3]]} "
                f"ran in a CUDA graph captured with nothing watching, but never in the watched forward "
                f"(which ran {[k[:60] for k in dict.fromkeys(map(kernel_key, watched))][:3]}). Run the same kernels whether "
                "or not a dispatch mode or the profiler is active",
            )
        if not [n for n in replayed if not allowed_foreign(n)]:
            return (f"{SKIPPED}: the captured forward launched no kernel on the capturing stream (kernels on "
                    "the legacy default stream, e.g. CuPy's default or <<<grid, block>>> with no stream, run "
                    "at once and are not captured); launch on torch.cuda.current_stream() to be checked")
        problem = output_problem(outs[0])
        if problem:
            return (f"{SKIPPED} in part: the forward's kernels matched the watched ones, but its CUDA graph "
                    f"did not compute the result on replay ({problem[:200]}), so its time was not compared")
        if not compare_time:
            return None
        floor = launch_floor(len(replayed))
        plain, replay_ms, floor_ms = time(graph, lambda: model(*inputs), replays, flush=flush, floor=floor)
        reason = timing_problem(min(plain), min(replay_ms), min(floor_ms, default=0.0), len(replayed))
        if reason:  # once more before rejecting: another process's time slices can fall on one side only
            more = time(graph, lambda: model(*inputs), replays, flush=flush, floor=floor)
            plain, replay_ms, floor_ms = plain + more[0], replay_ms + more[1], floor_ms + more[2]
            reason = timing_problem(min(plain), min(replay_ms), min(floor_ms, default=0.0), len(replayed))
        del outs, graph, floor
    if reason:
        raise Rejection(Stage.INTEGRITY, reason)
    return None
