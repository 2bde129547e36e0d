#!/usr/bin/env python3
"""Where the evaluator's timed window goes, per call (issue 12: kernels at the copy rate on the
device, 8-25% slower in the timer's figure).

For each task given: the rules' first candidate, the eager reference and an empty forward are
timed with the evaluator's own ``time_calls``, the forward's host time alone, and the timed
calls again under torch.profiler (CPU and CUDA activities), whose trace splits each call into:
the host before the first kernel starts (the window opens at the start event, the forward runs
in Python, the launch reaches the GPU), the kernels (first start to last end, and their summed
device time), and the tail (last kernel end to the end event's record, which follows the host's
synchronize). Medians over the calls.

    python scripts/timer_probe.py kernels/tasks/activation/relu.py kernels/tasks/softmax/softmax.py
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from autotuner.candidate import import_candidate  # noqa: E402
from autotuner.evaluator.eval_config import EvalConfig  # noqa: E402
from autotuner.evaluator.inputs import make_candidate, make_reference  # noqa: E402
from autotuner.evaluator.measure import InputPool, time_model  # noqa: E402
from autotuner.evaluator.timing import l2_flush_buffer  # noqa: E402
from autotuner.tasks import load_task  # noqa: E402
from evolution.proposers.rules import translate  # noqa: E402


def split_calls(trace: dict, flush_kernel: str = "FillFunctor") -> list[dict[str, float]]:
    """Per timed call (between two ``cudaEventRecord`` calls that open and close a window):
    host-to-first-kernel, kernel span and busy time, last-kernel-to-end-record, in microseconds."""
    events = trace.get("traceEvents", [])
    records = sorted(float(e["ts"]) for e in events if str(e.get("cat", "")).startswith("cuda_")
                     and str(e.get("name", "")).startswith(("cudaEventRecord", "cuEventRecord")))
    kernels = sorted((float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0))) for e in events
                     if e.get("cat") == "kernel" and flush_kernel not in e.get("name", ""))
    out = []
    for start, end in zip(records[0::2], records[1::2]):
        inside = [k for k in kernels if start <= k[0] <= end]
        if not inside:
            out.append({"window": end - start, "before": end - start, "span": 0.0, "busy": 0.0, "after": 0.0})
            continue
        out.append({"window": end - start, "before": inside[0][0] - start,
                    "span": max(k[1] for k in inside) - inside[0][0], "busy": sum(k[1] - k[0] for k in inside),
                    "after": end - max(k[1] for k in inside)})
    return out


def host_us(fn, pool: InputPool, flush: torch.Tensor, calls: int = 10) -> float:  # noqa: ANN001
    """The forward's own host time (the call returns once its launches are queued), each call
    started on an idle GPU after a flush, as in the timed window."""
    times = []
    with torch.no_grad():
        for i in range(calls):
            flush.zero_()
            torch.cuda.synchronize()
            started = time.perf_counter()
            out = fn(*pool.sets[i % len(pool.sets)])
            times.append((time.perf_counter() - started) * 1e6)
            torch.cuda.synchronize()
            del out
    return statistics.median(times)


def probe(fn, pool: InputPool, config: EvalConfig, flush: torch.Tensor) -> dict[str, float]:  # noqa: ANN001
    from torch.profiler import ProfilerActivity, profile

    timed = time_model(fn, pool, config, flush)  # also the warm-up: modules loaded, allocator primed
    row: dict[str, float] = {"timer_us": timed.stats.median_ms * 1e3, "host_us": host_us(fn, pool, flush)}
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        time_model(fn, pool, config, flush)
    path = Path(tempfile.mkdtemp()) / "trace.json"
    prof.export_chrome_trace(str(path))
    trace = json.loads(path.read_text())
    calls = split_calls(trace)
    if calls:
        row.update({k: statistics.median(c[k] for c in calls) for k in ("window", "before", "span", "busy", "after")})
    else:  # say what the trace held instead, for the next reader of this probe
        kinds = Counter((e.get("cat"), e.get("name")) for e in trace.get("traceEvents", [])
                        if "Record" in str(e.get("name", "")) or "ynchronize" in str(e.get("name", "")))
        print(f"# no timed windows found in the trace; its record / synchronize events: {dict(kinds)}", flush=True)
    row["calls"] = len(calls)
    return row


def main() -> int:
    config = replace(EvalConfig(), timing_calls=10, warmup_calls=2, pool_bytes=4 << 30)
    props = torch.cuda.get_device_properties(0)
    flush = l2_flush_buffer(int(getattr(props, "L2_cache_size", 50 << 20)))
    print(f"# {torch.cuda.get_device_name()}: the evaluator's timed window per call, medians (us); "
          "timer = the timer's own figure (outside the profiler's run)")
    print("| task | what | timer | forward's host time | window | host before 1st kernel | kernels' span | busy | "
          "after last kernel |")
    print("|---|---|---|---|---|---|---|---|---|")
    for arg in sys.argv[1:]:
        task = load_task(Path(arg))
        shape = task.default_shape
        reference = make_reference(task, shape, 1)
        prop = translate(task, max_variants=1).proposals[0]
        file = Path(tempfile.mkdtemp()) / f"{task.name}.py"
        file.write_text(prop.source)
        model, _ = make_candidate(task, shape, 1, import_candidate(file).ModelNew, prop.default_params or {}, reference)
        pool = InputPool(task, shape, 4, config, "probe")
        for what, fn in ((f"rules {prop.variant}", model), ("eager", reference), ("empty forward", lambda *xs: xs[0])):
            r = probe(fn, pool, config, flush)
            cells = " | ".join("-" if k not in r else f"{r[k]:.1f}" for k in ("window", "before", "span", "busy", "after"))
            print(f"| {task.name} | {what} | {r['timer_us']:.1f} | {r['host_us']:.1f} | {cells} |", flush=True)
        del pool, model
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
