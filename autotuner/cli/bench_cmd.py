"""``autotuner bench ...``: measure parts of the tool. Targets: ``suite``, ``archive``, ``evaluator``.

``autotuner bench archive [--db sqlite|URL] [--evaluations 100000]`` fills a throwaway
database (never your archive) and reports the insert rate and best / leaderboard latency.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from archive.bench import run_bench
from autotuner.cli.eval_cmd import add_trust_options, trust_overrides
from autotuner.cli.render import table, to_json
from autotuner.app.warm import WARM_HELP, warm_before_run
from autotuner.cli.common import CONFIG_HELP, DB_HELP, plain, print_json, progress
from autotuner.speedup import format_percent, format_speedup


def _page_cases() -> Any:
    """The browser's pages as extra timed cases, when the web extra is installed."""
    from autotuner.web import WebExtraMissingError

    try:
        from autotuner.web.bench import page_cases
    except WebExtraMissingError:
        return None
    return page_cases


def cmd_archive(args: argparse.Namespace) -> int:
    report = run_bench(
        url=args.db, evaluations=args.evaluations, tasks=args.tasks, batch=args.batch, single=args.single,
        repeats=args.repeats, progress=None if args.json else progress, extra=_page_cases(),
    )  # fmt: skip
    if args.json:
        print(to_json(asdict(report)))
        return 0
    print(f"archive benchmark on {report.backend} ({report.url})")
    print(f"  {report.evaluations:,} evaluations x {report.shapes_per_evaluation} shapes, {report.tasks} tasks, "
          f"{report.kernels:,} kernels, {report.gpus} GPUs")  # fmt: skip
    print(f"  insert, {report.batch} per transaction: {report.insert_per_s:,.0f} evaluations/s ({report.insert_s:.1f} s)")
    print(f"  insert, 1 per transaction (task + kernel + evaluation, {report.single_tx_evaluations} samples): "
          f"{report.single_tx_per_s:,.0f} evaluations/s")  # fmt: skip
    rows = [{"query": q, "with_indexes_ms": ms, "without_indexes_ms": report.latency_ms_without_indexes.get(q)}
            for q, ms in report.latency_ms.items()]  # fmt: skip
    print(f"  latency, median of {report.repeats}:")
    print("\n".join("    " + line for line in table(rows).splitlines()))
    return 0


def breakdown_lines(rows: list[Any], per_hour: float) -> list[str]:
    """The per-phase table of ``bench evaluator``: median seconds and share of the median wall,
    parts indented under their phase, then candidates per GPU-hour."""
    if not rows:
        return []
    width = max(len(r.phase) for r in rows) + 2
    lines = ["  where a candidate's time goes (median over the single runs; indented: part of the line above):"]
    for r in rows:
        name = ("    " + r.phase.split(".", 1)[-1]) if r.part_of else r.phase
        lines.append(f"    {name:<{width + 2}} {r.median_s:8.3f} s  {100 * r.share:5.1f}%")
    lines.append(f"  -> {per_hour:,.0f} candidates per GPU-hour (target 3,000: 1.2 s each)")
    return lines


def cmd_evaluator(args: argparse.Namespace) -> int:
    from pathlib import Path

    from autotuner.evaluator.throughput import measure_throughput
    from autotuner.runtime.device import device_facts

    import json

    from autotuner.evaluator import EvalConfig

    settings = [json.loads(s) for s in args.setting] if args.setting else None
    t = measure_throughput(Path(args.task), Path(args.candidate), repeats=args.repeats, settings=settings,
                           config=EvalConfig(**trust_overrides(args)), distinct=args.distinct)
    gpu = device_facts(0).gpu_name
    if args.json:
        print_json({"gpu": gpu, "task": args.task, "candidate": args.candidate, **asdict(t),
                    "per_hour_single": t.per_hour_single, "phases": [asdict(r) for r in t.breakdown]})
        return 0
    print(f"evaluator throughput on {gpu}: {args.task} with {args.candidate}")
    print(f"  one candidate per child (fork server, baselines cached): p50 {t.single_p50_s:.2f} s, "
          f"min {min(t.single_wall_s):.2f} s, max {max(t.single_wall_s):.2f} s over {len(t.single_wall_s)} "
          f"-> {t.per_hour_single:,.0f} candidates per GPU-hour")
    print(f"  {t.batch_settings} settings sharing a child: {t.batch_wall_s:.2f} s "
          f"-> {t.per_hour_batched:,.0f} settings per GPU-hour")
    if t.distinct_settings:
        n = t.distinct_settings
        print(f"  {n} distinct settings sharing a child, each compiled as it is built: {t.distinct_one_by_one_s:.2f} s "
              f"-> {3600 * n / t.distinct_one_by_one_s:,.0f} settings per GPU-hour")
        print(f"  {n} other distinct settings, compiled side by side first: {t.distinct_ahead_s:.2f} s "
              f"-> {3600 * n / t.distinct_ahead_s:,.0f} settings per GPU-hour")
    print(f"  one candidate in a fresh interpreter (no fork server): {t.fresh_interpreter_wall_s:.2f} s")
    print(f"  verdicts: {', '.join(sorted(set(t.verdicts)))}")
    for line in breakdown_lines(t.breakdown, t.per_hour_single):
        print(line)
    return 0


def suite_config(args: argparse.Namespace) -> Any:
    """The run configuration of ``bench suite``: the rule proposer, the config file, then flags.
    Tuning (optuna) is on unless ``--tune-trials 0``: the suite measures what a user gets."""
    from dataclasses import replace

    from autotuner.app.run_config import load_config

    search: dict[str, Any] = {"proposer": "rules", "max_variants": args.variants}
    if args.tune_trials is not None:  # else the config's [search] tune_trials
        search["tune_trials"] = args.tune_trials
    overrides: dict[str, Any] = {"search": search}
    budget: dict[str, float] = {}
    if args.max_minutes is not None:  # tasks not reached say so in the table; a rerun on the archive resumes
        budget["max_minutes"] = args.max_minutes
    if args.start_within is not None:
        budget["start_within_minutes"] = args.start_within
    if budget:
        overrides["budget"] = budget
    if args.report:
        overrides["report_dir"] = args.report
    if trust_overrides(args):
        overrides["eval"] = trust_overrides(args)
    config = load_config(args.config, overrides=overrides)
    return replace(config, db_url=args.db) if args.db else config


def cmd_suite(args: argparse.Namespace) -> int:
    import json
    import sys
    import time
    from dataclasses import replace
    from pathlib import Path

    from archive import Archive
    from autotuner.tasks import discover_tasks, load_task, suite_dir
    from autotuner.app.suitebench import FAST_P, run_suite

    paths = [p for root in (args.paths or [str(suite_dir())]) for p in discover_tasks(root)]
    if args.only:
        paths = [p for p in paths if any(s in str(p) for s in args.only.split(","))]
    config = suite_config(args)
    tasks = [load_task(p, config.eval.policy) for p in paths]
    started = time.monotonic()
    warm_before_run(config, tasks, args.warm_jobs, lambda line: print(line, file=sys.stderr))
    warm_min = (time.monotonic() - started) / 60  # the budget covers the whole command, the warm-up too
    if args.max_minutes is not None:
        config = replace(config, budget=replace(config.budget, max_minutes=max(args.max_minutes - warm_min, 0.05)))
    if args.start_within is not None:
        config = replace(config, budget=replace(config.budget,
                                                start_within_minutes=max(args.start_within - warm_min, 0.01)))
    with Archive.open(config.db_url) as archive:
        report = run_suite(archive, config, tasks)
    data = {"rows": [r.__dict__ for r in report.rows], "wall_s": report.wall_s, "gpu": report.gpu,
            "fast_p": report.fast_p, "geomean_eager": report.geomean_eager,
            "geomean_compile": report.geomean_compile, "candidates": report.candidates, "evaluated": report.evaluated,
            "per_gpu_hour": report.per_gpu_hour, "n_gpus": report.n_gpus, "phase_seconds": report.phase_seconds()}  # fmt: skip
    if args.out:
        Path(args.out).write_text(json.dumps(data, indent=2, default=str))
    if args.json:
        print_json(data)
        return 0
    rows = [{"task": r.task, "translated": "yes" if r.translated else "no", "correct": "yes" if r.correct else "NO",
             "cands": r.candidates, "best ms": f"{r.best_ms:.3f}" if r.best_ms else "-",
             "vs eager": format_speedup(r.speedup_eager), "vs compile": format_speedup(r.speedup_compile),
             "roofline": format_percent(r.roofline or None), "why not": r.why[:60]} for r in report.rows]
    print(f"suite benchmark on {report.gpu}: {len(report.rows)} tasks, rule proposer, "
          f"{args.variants} variants each, {config.search.tune_trials} tuning trials")
    print(table(rows))
    for base in ("eager", "compile"):
        print(f"fast_p vs {base:<8}" + "  ".join(f"p={p:g}: {100 * report.fast_p[base][p]:.0f}%" for p in FAST_P))
    print(f"geomean speedup (tasks with a correct kernel): {format_speedup(report.geomean_eager)} vs eager, "
          f"{format_speedup(report.geomean_compile)} vs torch.compile")
    phases = report.phase_seconds()
    if phases:
        search = {k: v for k, v in phases.items() if "." not in k}
        evaluator = {k.split(".", 1)[1]: v for k, v in phases.items() if k.startswith("evaluator.") and k.count(".") == 1}
        parts = {k.split(".", 1)[1]: v for k, v in phases.items() if k.startswith("evaluator.") and k.count(".") > 1}
        print("where the time went: " + ", ".join(f"{name} {secs:.0f} s" for name, secs in search.items())
              + f", {max(0.0, report.wall_s - sum(search.values())):.0f} s between tasks (propose: the rules' "
              "translation on the CPU; variants: each task's structural variants, its baselines included)")
        parent = {k.split(".", 1)[1]: v for k, v in phases.items() if k.startswith("parent.")}
        if parent:  # evaluate: each batch's wall as the search waited for it; the children's phases are inside it
            print("  in the search's threads: " + ", ".join(
                f"{name} {secs:.0f} s" for name, secs in sorted(parent.items(), key=lambda kv: -kv[1]))
                + " (evaluate: each batch's wall, the children's phases below inside it; record / claim: the archive)")
        if evaluator:
            print("  inside the evaluator's children: " + ", ".join(
                f"{name} {secs:.0f} s" for name, secs in sorted(evaluator.items(), key=lambda kv: -kv[1])))
        for top in sorted({k.split(".", 1)[0] for k in parts}, key=lambda t: -evaluator.get(t, 0.0)):
            mine = sorted(((k.split(".", 1)[1], v) for k, v in parts.items() if k.startswith(top + ".")), key=lambda kv: -kv[1])
            print(f"    {top}'s parts (inside it): " + ", ".join(f"{name} {secs:.1f} s" for name, secs in mine[:10]))
    resumed = report.candidates - report.evaluated
    on = f" on {report.n_gpus} GPUs" if report.n_gpus > 1 else ""
    print(f"{report.evaluated} candidates evaluated in {report.wall_s / 60:.1f} min{on} -> {report.per_gpu_hour:,.0f} "
          "candidates per GPU-hour (baselines and torch.compile included)"
          + (f"; {resumed} more read back from the archive" if resumed else ""))
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench", help="benchmark the tool: the task suite, the archive, the evaluator", description=plain(__doc__))
    sub = parser.add_subparsers(dest="bench_target", metavar="TARGET", required=True)
    p = sub.add_parser("suite", help="rule proposer over the built-in suite (or task folders): fast_p, geomean")
    p.add_argument("paths", nargs="*", help="task files or folders (default: the built-in suite)")
    p.add_argument("--only", help="comma-separated substrings of task paths to keep")
    p.add_argument("--variants", type=int, default=8, help="structural variants per task")
    p.add_argument("--tune-trials", type=int,
                   help="optuna settings per tuned variant (default: the config's search.tune_trials, 8; 0 turns "
                        "tuning off)")
    p.add_argument("--max-minutes", type=float, metavar="M",
                   help="wall-time budget of the whole command (the baselines' warm-up included): each task "
                        "searches with a fair share of what is left, tasks the budget does not reach are listed "
                        "as not searched, and a rerun on the same archive carries on from what is already earned")
    p.add_argument("--start-within", type=float, metavar="M",
                   help="start no task's search after M minutes of the command (the warm-up included): the task "
                        "searching then finishes whole, the table lists the rest as not searched, and a rerun on "
                        "the same archive carries on (for a machine lent by the minute; no task's search is cut)")
    p.add_argument("--db", metavar="URL", help=DB_HELP)
    p.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    p.add_argument("--report", help="folder for report.md and progress.png")
    p.add_argument("--warm-jobs", type=int, metavar="N", help=WARM_HELP)
    p.add_argument("--json", action="store_true", help="print the results as JSON to stdout instead of a table")
    p.add_argument("--out", metavar="PATH", help="also write the results as JSON to PATH")
    add_trust_options(p)
    p.set_defaults(func=cmd_suite)
    p = sub.add_parser("archive", help="archive insert rate and query latency on a throwaway database")
    p.add_argument("--db", default="sqlite", metavar="URL",
                   help="'sqlite' (a temporary file, default), a SQLite path that does not exist yet, "
                        "or a PostgreSQL URL (a fresh schema is made there and dropped)")  # fmt: skip
    p.add_argument("--evaluations", type=int, default=100_000, help="evaluations inserted (default 100000)")
    p.add_argument("--tasks", type=int, default=200, help="tasks they are spread over (default 200)")
    p.add_argument("--batch", type=int, default=500, help="evaluations per transaction in the bulk insert")
    p.add_argument("--single", type=int, default=300, help="evaluations written one transaction each")
    p.add_argument("--repeats", type=int, default=7, help="timed repeats of each query (median)")
    p.add_argument("--json", action="store_true", help="print the report as JSON to stdout")
    p.set_defaults(func=cmd_archive)
    p = sub.add_parser("evaluator", help="candidates per GPU-hour: wall time to evaluate one candidate end to end")
    p.add_argument("task", help="task file")
    p.add_argument("candidate", help="candidate file defining ModelNew")
    p.add_argument("--repeats", type=int, default=5, help="candidates evaluated one per child")
    p.add_argument("--json", action="store_true", help="print the measurements as JSON to stdout")
    p.add_argument("--setting", action="append", help="a JSON parameter setting for the batched figure (repeatable)")
    p.add_argument("--distinct", type=int, default=8,
                   help="distinct settings from the candidate's PARAMS per compile-ahead batch (two batches, "
                        "compiled one by one and side by side; 0: skip)")
    add_trust_options(p)
    p.set_defaults(func=cmd_evaluator)
