#!/usr/bin/env python3
"""Quick GPU sweep of the rule proposer's kernels: every variant, a grid of tunables, timed
beside eager and torch.compile with the evaluator's own timer (fresh inputs, L2 flushed).

A development tool for finding where a kernel family stands against the roofline before and
after a change (seconds per task, not the evaluator's minutes): it checks each output once
against the reference but none of the evaluator's other defences, so its figures are for
engineering, not for the archive. Reported numbers come from ``autotuner bench suite``.

    python scripts/rules_sweep.py relu softmax --grid WAVES=2,8 ITEMS=1,2,4 --json out.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from autotuner.candidate import import_candidate  # noqa: E402
from autotuner.evaluator.compare import compare_outputs, tolerances_for  # noqa: E402
from autotuner.evaluator.eval_config import EvalConfig  # noqa: E402
from autotuner.evaluator.inputs import make_candidate, make_inputs, make_reference  # noqa: E402
from autotuner.evaluator.measure import InputPool, measure_baselines, time_model  # noqa: E402
from autotuner.evaluator.roofline import cached_peaks, estimate_bytes  # noqa: E402
from autotuner.evaluator.timing import l2_flush_buffer  # noqa: E402
from autotuner.tasks import discover_tasks, load_task, suite_dir  # noqa: E402
from evolution.proposers.rules import translate  # noqa: E402


def _tasks(selectors: list[str]) -> list[Path]:
    out = []
    for sel in selectors:
        p = Path(sel)
        if p.exists():
            out += [p] if p.is_file() else discover_tasks(p)
        else:
            out += [t for t in discover_tasks(suite_dir()) if sel in str(t)]
    return out


def _grid(specs: list[str], space: dict[str, list], params: dict[str, Any]) -> list[dict[str, int]]:
    """Settings over the KEY=v1,v2 specs a candidate takes (its searched space or any of its
    default parameters, e.g. a knob the search leaves fixed)."""
    axes = []
    for spec in specs:
        key, _, values = spec.partition("=")
        if key in space or key in params or key in ("WAVES", "ITEMS", "BLOCK", "VEC"):
            axes.append([(key, int(v)) for v in values.split(",")])
    return [dict(c) for c in itertools.product(*axes)] if axes else [{}]


def _bytes(task: Any, inputs: list[Any], model: Any, out: Any) -> int:
    fn = getattr(task.module, "bytes_moved", None)
    return int(fn(inputs, out)) if fn else estimate_bytes(inputs, model, out)


def device_ms(fn: Any, inputs: list[Any], flush: torch.Tensor, calls: int = 5) -> float:
    """Device time (ms) of the kernels one call of ``fn`` launches (torch.profiler, L2 flushed
    before each call, the flush's fill kernels left out): the timer's figure minus this is what
    the host adds (Python, allocation, the launch) while the GPU waits."""
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            flush.zero_()
            fn(*inputs)
        torch.cuda.synchronize()
    us = sum(e.self_device_time_total for e in prof.key_averages() if "FillFunctor" not in e.key)
    return us / calls / 1e3


def sweep_task(path: Path, grid: list[str], config: EvalConfig, flush: torch.Tensor, copy_gbps: float,
               cache: Path, max_variants: int | None, first_only: bool, variant: str | None = None,
               cap: int = 0, check_shapes: bool = False, device_time: bool = False) -> list[dict[str, Any]]:
    task = load_task(path)
    shape = task.default_shape
    tr = translate(task, max_variants=max_variants)
    rows: list[dict[str, Any]] = []
    if not tr.proposals:
        return [{"task": task.name, "variant": "-", "error": "; ".join(tr.notes)[:200]}]
    reference = make_reference(task, shape, 1)
    inputs = make_inputs(task, shape, 2)
    with torch.no_grad():
        ref_out = reference(*inputs)
    nbytes = _bytes(task, inputs, reference, ref_out)
    if config.baselines:
        base = measure_baselines(task, shape, config, cache, 3, flush)
        eager_ms, compile_ms = base["eager"]["median_ms"], base.get("compiled", {}).get("median_ms")
    else:
        eager_ms = compile_ms = None
    floor_ms = nbytes / (copy_gbps * 1e9) * 1e3
    eager_dev_ms = device_ms(reference, inputs, flush) if device_time else None
    workdir = Path(tempfile.mkdtemp(prefix="sweep-"))
    proposals = tr.proposals[:1] if first_only else tr.proposals
    for k, prop in enumerate(proposals):
        if prop.proposer != "rules" or (variant and prop.variant != variant):
            continue
        file = workdir / f"{task.name}_{k}.py"
        file.write_text(prop.source)
        mod = import_candidate(file)
        for override in _grid(grid, prop.params_space or {}, prop.default_params or {}):
            params = {**(prop.default_params or {}), **override}
            row: dict[str, Any] = {"task": task.name, "variant": prop.variant, "params": params,
                                   "eager_ms": eager_ms, "compile_ms": compile_ms, "floor_ms": floor_ms}
            try:
                model, _ = make_candidate(task, shape, 1, mod.ModelNew, params, reference)
                if cap:
                    model.rules_cap = cap
                    row["cap"] = cap
                with torch.no_grad():
                    out = model(*inputs)
                torch.cuda.synchronize()
                cmp = compare_outputs(out, ref_out, tolerances_for(task.dtype, task.tolerance))
                row["correct"] = cmp.ok
                if not cmp.ok:
                    row["error"] = cmp.reason[:160]
                if check_shapes:
                    bad = _check_shapes(task, mod.ModelNew, params, cap)
                    row["shapes_ok"] = not bad
                    if bad:
                        row["correct"] = False
                        row["error"] = (row.get("error", "") + " " + bad)[:160]
                pool = InputPool(task, shape, 4, config, "sweep")
                stats = time_model(model, pool, config, flush).stats
                row["ms"] = stats.median_ms
                row["pct_copy"] = 100 * floor_ms / stats.median_ms
                row["x_eager"] = eager_ms / stats.median_ms if eager_ms else None
                row["x_compile"] = compile_ms / stats.median_ms if compile_ms else None
                if device_time:
                    row["dev_ms"], row["eager_dev_ms"] = device_ms(model, inputs, flush), eager_dev_ms
                    row["dev_pct_copy"] = 100 * floor_ms / row["dev_ms"] if row["dev_ms"] else None
                del pool, model
            except Exception as exc:  # noqa: BLE001 - a sweep reports and goes on
                row["error"] = f"{type(exc).__name__}: {exc}"[:200]
            rows.append(row)
            print(_line(row), flush=True)
    return rows


def _check_shapes(task: Any, model_new: Any, params: dict[str, Any], cap: int) -> str:
    """Every shape of the task (hidden ones too), each input law, fresh inputs, outputs
    poisoned by ``torch.empty``'s leftovers: the first mismatch, or ''."""
    tol = tolerances_for(task.dtype, task.tolerance)
    for shape in task.shapes:
        for k, law in enumerate(["task"] + list(task.distributions)):
            reference = make_reference(task, shape, 10 + k)
            model, _ = make_candidate(task, shape, 10 + k, model_new, params, reference)
            if cap:
                model.rules_cap = cap
            inputs = make_inputs(task, shape, 20 + k, law)
            with torch.no_grad():
                out = model(*[x.clone() if isinstance(x, torch.Tensor) else x for x in inputs])
                ref = reference(*inputs)
            torch.cuda.synchronize()
            cmp = compare_outputs(out, ref, tol)
            if not cmp.ok:
                return f"shape {shape.name} ({law}): {cmp.reason}"
    return ""


def _line(row: dict[str, Any]) -> str:
    def f(key: str, fmt: str) -> str:
        v = row.get(key)
        return "-" if v is None else format(v, fmt)
    params = ",".join(f"{k}={v}" for k, v in sorted((row.get("params") or {}).items()))
    params += f",cap={row['cap']}" if row.get("cap") else ""
    return (f"| {row['task']} | {row['variant']} | {params} | {row.get('correct', '-')} | {f('ms', '.4f')} | "
            f"{f('eager_ms', '.4f')} | {f('compile_ms', '.4f')} | {f('x_eager', '.2f')} | {f('x_compile', '.2f')} | "
            f"{f('pct_copy', '.1f')} | {row.get('error', '')[:80]} |"
            + (f" device {f('dev_ms', '.4f')} ms ({f('dev_pct_copy', '.1f')}% copy), eager's {f('eager_dev_ms', '.4f')} |"
               if "dev_ms" in row else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tasks", nargs="+", help="task files, folders or substrings of suite task paths")
    ap.add_argument("--grid", nargs="*", default=[], help="KEY=v1,v2 tunable values to sweep")
    ap.add_argument("--calls", type=int, default=20, help="timed calls per setting")
    ap.add_argument("--variants", type=int, default=None, help="structural variants per task")
    ap.add_argument("--first", action="store_true", help="only each task's first variant")
    ap.add_argument("--variant", help="only this variant (e.g. row/block)")
    ap.add_argument("--caps", default="0", help="comma-separated grid caps to force (0: the candidate's own)")
    ap.add_argument("--null", action="store_true", help="also time an empty forward (the timer's own overhead)")
    ap.add_argument("--no-baselines", action="store_true", help="skip eager and torch.compile (for ncu)")
    ap.add_argument("--device-time", action="store_true",
                    help="also each kernel's device time per call (torch.profiler), ours and eager's: "
                         "what the timer's figure holds beyond the GPU's work is the host's")
    ap.add_argument("--json", help="write every row to this file")
    ap.add_argument("--check-shapes", action="store_true",
                    help="also check every shape of the task (hidden ones too) under each input law")
    args = ap.parse_args()
    cache = Path(tempfile.gettempdir()) / "autotuner-sweep-cache"
    config = replace(EvalConfig(), timing_calls=args.calls, warmup_calls=3, pool_bytes=4 << 30,
                     baselines=not args.no_baselines)
    peaks = cached_peaks(cache, "sweep")
    props = torch.cuda.get_device_properties(0)
    flush = l2_flush_buffer(int(getattr(props, "L2_cache_size", 50 << 20)))
    print(f"# {peaks.gpu_name}: copy {peaks.copy_gbps:.0f} GB/s")
    print("| task | variant | params | ok | ms | eager | compile | x eager | x compile | % copy | error |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    started = time.perf_counter()
    for path in _tasks(args.tasks):
        for cap in (int(c) for c in args.caps.split(",")):
            rows += sweep_task(path, args.grid, config, flush, peaks.copy_gbps, cache, args.variants, args.first,
                               args.variant, cap, args.check_shapes, args.device_time)
        if args.null:
            task = load_task(path)
            pool = InputPool(task, task.default_shape, 5, config, "null")
            stats = time_model(lambda *xs: xs[0], pool, config, flush).stats
            print(f"# {task.name}: an empty forward times at {stats.median_ms * 1e3:.1f} us", flush=True)
        torch.cuda.empty_cache()
    print(f"# {len(rows)} settings in {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"gpu": peaks.gpu_name, "copy_gbps": peaks.copy_gbps, "rows": rows},
                                              indent=1, default=str))


if __name__ == "__main__":
    main()
