#!/usr/bin/env python3
"""Translate tasks with the rule-based proposer and evaluate every variant on the GPU.

Run on a GPU machine from the repository root (``source scripts/gpu_env.sh`` first there):

    python scripts/rules_check.py                          # every suite task, every variant
    python scripts/rules_check.py --tasks softmax,rmsnorm  # tasks whose path contains a substring
    python scripts/rules_check.py --first                  # only each task's first (default) variant
    python scripts/rules_check.py --no-time                # verify only (no candidate timing, no baselines)
    python scripts/rules_check.py --json out.json          # also write every row and raw EvalResult
    python scripts/rules_check.py --keep /tmp/rules-cands  # keep the generated candidate files
    python scripts/rules_check.py path/to/task.py          # other task files or folders

Prints a Markdown table (task | variant | verdict | stage | reason | cand / eager / compile ms |
speedups | % roofline) and a summary against the targets: a correct kernel for >= 80% of the
tasks, faster than eager on >= 60%, geomean speedup vs torch.compile >= 1.0 (each task's best
accepted variant). Each evaluation takes ~5-10 s, more for a task's first baselines.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autotuner.evaluator import EvalConfig, evaluate  # noqa: E402
from autotuner.tasks import discover_tasks, load_task, suite_dir  # noqa: E402
from evolution.proposers.rules import translate  # noqa: E402

REASON_CHARS = 100
COLUMNS = ["task", "variant", "verdict", "stage", "reason", "cand ms", "eager ms", "compile ms",
           "x eager", "x compile", "% roofline"]


def _cell(value: Any, limit: int | None = None) -> str:
    text = " ".join(str(value).split())
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _row(task: str, variant: str, result: Any = None, verdict: str = "", stage: str = "-",
         reason: str = "") -> dict[str, Any]:
    row: dict[str, Any] = {"task": task, "variant": variant, "verdict": verdict, "stage": stage, "reason": reason,
                           "cand_ms": None, "eager_ms": None, "compile_ms": None, "speedup_eager": None,
                           "speedup_compile": None, "roofline": None, "raw": None}
    if result is not None:
        timed = result.timed
        row.update(verdict=result.verdict.value, stage=result.stage.value, reason=result.reason,
                   speedup_eager=result.speedup_eager, speedup_compile=result.speedup_compile,
                   roofline=result.roofline_fraction, raw=result.to_json())
        if timed is not None:
            row["cand_ms"] = timed.candidate.median_ms if timed.candidate else None
            row["eager_ms"] = timed.eager.median_ms if timed.eager else None
            row["compile_ms"] = timed.compiled.median_ms if timed.compiled else None
    return row


def _print_row(row: dict[str, Any]) -> None:
    cells = [row["task"], row["variant"], row["verdict"], row["stage"], _cell(row["reason"], REASON_CHARS),
             _num(row["cand_ms"], ".4f"), _num(row["eager_ms"], ".4f"), _num(row["compile_ms"], ".4f"),
             _num(row["speedup_eager"], ".2f"), _num(row["speedup_compile"], ".2f"),
             _num(None if row["roofline"] is None else 100 * row["roofline"], ".1f")]
    print("| " + " | ".join(_cell(c) for c in cells) + " |", flush=True)


def check(paths: list[Path], args: argparse.Namespace, out_dir: Path) -> list[dict[str, Any]]:
    config = EvalConfig(trials=args.trials, timing_calls=args.calls, timeout_s=args.timeout, gpu=args.gpu,
                        time_candidate=not args.no_time, baselines=not args.no_time and not args.no_baselines)
    rows = []
    for path in paths:
        suite = suite_dir().resolve()
        rel = path.relative_to(suite).as_posix().removesuffix(".py") if path.is_relative_to(suite) else path.stem
        task = load_task(path)
        started = time.perf_counter()
        translation = translate(task)
        if not translation.proposals:
            row = _row(rel, "-", verdict="not translated", reason="; ".join(translation.notes))
            rows.append(row)
            _print_row(row)
            continue
        proposals = translation.proposals[:1] if args.first else translation.proposals
        for proposal in proposals:
            cand = out_dir / f"{task.name}__{proposal.variant.replace('/', '_')}.py"
            cand.write_text(proposal.source)
            try:
                result = evaluate(str(path), str(cand), config=config, params=dict(proposal.default_params))
                row = _row(rel, proposal.variant, result)
            except Exception as exc:  # noqa: BLE001 - one failing row must not end the table
                row = _row(rel, proposal.variant, verdict="error", reason=f"evaluate raised {type(exc).__name__}: {exc}")
            row["params"] = dict(proposal.default_params)
            row["candidate"] = str(cand)
            rows.append(row)
            _print_row(row)
        rows[-1]["translate_s"] = time.perf_counter() - started
    return rows


def summary(rows: list[dict[str, Any]], n_tasks: int) -> list[str]:
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["verdict"] != "accepted":
            continue
        cur = best.get(row["task"])
        if cur is None or (row["cand_ms"] or math.inf) < (cur["cand_ms"] or math.inf):
            best[row["task"]] = row
    translated = {r["task"] for r in rows if r["verdict"] != "not translated"}
    faster = [t for t, r in best.items() if (r["speedup_eager"] or 0) > 1.0]
    vs_compile = [r["speedup_compile"] for r in best.values() if r["speedup_compile"]]
    geomean = math.exp(sum(math.log(x) for x in vs_compile) / len(vs_compile)) if vs_compile else None
    roof = [r["roofline"] for r in best.values() if r["roofline"] is not None]
    lines = [
        f"tasks: {n_tasks}; translated: {len(translated)}; with an accepted variant: {len(best)} "
        f"({100 * len(best) / max(1, n_tasks):.0f}%, target >= 80%)",
        f"faster than eager (best variant): {len(faster)} ({100 * len(faster) / max(1, n_tasks):.0f}%, target >= 60%)",
        f"geomean speedup vs torch.compile over {len(vs_compile)} tasks: "
        f"{_num(geomean, '.3f')} (target >= 1.0)",
        f"best variants at >= 70% of the roofline: {sum(1 for x in roof if x >= 0.7)} of {len(roof)} timed",
    ]
    failed = sorted({r["task"] for r in rows} - set(best))
    if failed:
        lines.append(f"no accepted variant: {', '.join(failed)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="task files or folders (default: the built-in suite)")
    parser.add_argument("--tasks", help="comma-separated substrings; keep tasks whose path contains one")
    parser.add_argument("--first", action="store_true", help="evaluate only each task's first variant")
    parser.add_argument("--no-time", action="store_true", help="verify only: no candidate timing, no baselines")
    parser.add_argument("--no-baselines", action="store_true", help="time the candidate but not eager / torch.compile")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--gpu", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every row (with the raw EvalResult) to this file")
    parser.add_argument("--keep", type=Path, help="folder to keep the generated candidates in")
    args = parser.parse_args(argv)
    roots = args.paths or [suite_dir()]
    paths = [p.resolve() for root in roots for p in discover_tasks(root)]
    if args.tasks:
        keys = [k for k in args.tasks.split(",") if k]
        paths = [p for p in paths if any(k in str(p) for k in keys)]
    import torch

    if not torch.cuda.is_available():
        print("warning: no CUDA GPU is visible; translation runs, every evaluation will be an error row\n")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    with tempfile.TemporaryDirectory(prefix="rules-check-") as tmp:
        out_dir = args.keep or Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        rows = check(paths, args, out_dir)
    print()
    for line in summary(rows, len(paths)):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
