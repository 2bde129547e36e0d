"""``autotuner tune TASK...``: the main job. Verified, profiled kernels, kept in the archive."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from autotuner.app.warm import WARM_HELP, warm_before_run
from autotuner.cli.eval_cmd import add_trust_options, trust_overrides
from autotuner.cli.common import DB_HELP
from autotuner.errors import ConfigError
from autotuner.speedup import format_speedup


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="search for fast, verified kernels for task files (the main job)")
    p.add_argument("tasks", nargs="*", help="task files or folders (default: the built-in suite); if any file "
                   "cannot be loaded, each is named and nothing is run")
    p.add_argument("--proposer", choices=["rules", "llm", "mixed"], help="who proposes candidates (default: rules)")
    p.add_argument("--config", help="TOML config file (default: ./autotuner.toml if present)")
    p.add_argument("--db", metavar="URL", help=DB_HELP)
    p.add_argument("--resume", nargs="?", const=0, type=int, metavar="RUN_ID",
                   help="continue a killed or stopped run (default: the latest unfinished one)")
    p.add_argument("--max-candidates", type=int, help="stop after this many evaluations")
    p.add_argument("--max-minutes", type=float, help="stop after this much wall time")
    p.add_argument("--max-tokens", type=int, help="LLM token cap")
    p.add_argument("--max-cost", type=float, help="LLM cost cap in USD")
    p.add_argument("--tune-trials", type=int, help="optuna evaluations per structurally new candidate")
    p.add_argument("--patience", type=int, metavar="N",
                   help="a task's LLM search has converged after N generations in a row without a 1%% improvement "
                        "(default 5); runs otherwise end when their budget is spent")
    p.add_argument("--generations", type=int, help="optional cap on LLM generations per task (default: none)")
    p.add_argument("--islands", type=int, help="islands in the LLM population")
    p.add_argument("--gpus", metavar="INDICES", help="GPU device indices to use, one evaluation worker each (e.g. 0,1)")
    p.add_argument("--cluster", metavar="ADDRESS", help="evaluate on a Ray cluster, one worker per GPU: auto, "
                   "ray://HOST:10001 or HOST:6379 (needs the ray extra and a PostgreSQL archive)")
    p.add_argument("--report", help="folder for report.md and progress.png (default: ./autotuner-runs/run-N)")
    p.add_argument("--evaluator", choices=["gpu", "simulate"], default="gpu",
                   help="'simulate' makes up results without a GPU, to try the search logic (never for real numbers)")
    p.add_argument("--simulate-delay", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--warm-jobs", type=int, metavar="N", help=WARM_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_trust_options(p)
    p.add_argument("--json", action="store_true", help="print the outcome as JSON (no progress bar)")
    p.set_defaults(func=run)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    search = {k: v for k, v in (("proposer", args.proposer), ("tune_trials", args.tune_trials),
                                ("patience", args.patience), ("generations", args.generations),
                                ("islands", args.islands)) if v is not None}
    budget = {k: v for k, v in (("max_candidates", args.max_candidates), ("max_minutes", args.max_minutes),
                                ("max_tokens", args.max_tokens), ("max_cost_usd", args.max_cost)) if v is not None}
    out: dict[str, Any] = {}
    if search:
        out["search"] = search
    if budget:
        out["budget"] = budget
    if args.db:
        out["db_url"] = args.db
    if args.gpus:
        out["gpus"] = args.gpus
    if args.cluster:
        out["cluster"] = {"address": args.cluster}
    if args.report:
        out["report_dir"] = args.report
    if trust_overrides(args):
        out["eval"] = trust_overrides(args)
    return out


NO_GPU = ("no CUDA GPU is visible, and tuning compiles, verifies and times kernels on one; "
          "to try the search anyway: autotuner tune --evaluator simulate ... (its results are made up)")
RESUMABLE = ("running", "interrupted", "failed")


def _tasks(roots: list[str], policy: str | None = None) -> list[Any]:
    """Every task under ``roots``, loaded; refuses all of them if any file is broken (naming each)."""
    from autotuner.tasks import discover_tasks, load_task
    from autotuner.errors import TaskLoadError

    paths = [p for root in roots for p in discover_tasks(root)]
    if not paths:
        raise TaskLoadError(", ".join(roots), "holds no task files (*.py defining class Model, get_inputs, "
                                              "get_init_inputs); nothing to tune")
    tasks, faults = [], []
    for path in paths:
        try:
            tasks.append(load_task(path, policy))
        except TaskLoadError as exc:
            faults.append(str(exc))
    if faults:
        raise TaskLoadError(f"{len(faults)} of {len(paths)} task files",
                            "cannot be loaded, so nothing was run: " + "; ".join(faults)
                            + ". Fix them, or name only the good files")
    return tasks


def _resume_target(archive: Any, requested: int) -> tuple[int, dict[str, Any], str]:
    run_id = requested or archive.latest_run(status=RESUMABLE)
    if not run_id:
        raise ConfigError("no unfinished run to resume in the archive; start one without --resume")
    stored, status = archive.run_config(run_id)
    if status == "failed":
        print(f"run {run_id} failed: {archive.run_error(run_id) or 'reason not recorded'}. It resumes with the "
              "configuration stored with it plus these flags: fix the cause first (the environment: API key, "
              "endpoint, GPU; or a flag), or start a new run to change its configuration file", file=sys.stderr)
    return run_id, stored, status


def run(args: argparse.Namespace) -> int:
    from archive import Archive
    from autotuner.app.run_config import load_config, merge, RunConfig
    from autotuner.errors import NoGPUError
    from autotuner.runtime.device import cuda_available
    from autotuner.tasks import load_task, suite_dir
    from autotuner.app.tuning_run import check_cluster_archive, run_tuning

    config = load_config(args.config, overrides=_overrides(args))
    if config.cluster.enabled:
        from evolution.cluster.connect import import_ray

        import_ray()  # says how to install Ray before anything else happens
        check_cluster_archive(config)  # and refuses a SQLite archive before creating one
    elif args.evaluator == "gpu" and not cuda_available():  # a cluster's GPUs are on its nodes
        raise NoGPUError(NO_GPU)  # before the archive is touched: no run is started, none is left running
    tasks = None if args.resume is not None else _tasks(args.tasks or [str(suite_dir())], config.eval.policy)
    archive = Archive.open(config.db_url)
    try:
        history = []
        if args.resume is not None:
            run_id, stored, status = _resume_target(archive, args.resume)
            config = merge(RunConfig(), stored.get("config", {}), f"run {run_id}")
            config = merge(config, _overrides(args), "command line")
            tasks = [load_task(p, config.eval.policy) for p in stored.get("tasks", [])]
            history = archive.run_history(run_id)
            print(f"resuming run {run_id} ({status}): {len(history)} evaluations already in the archive", file=sys.stderr)
        else:
            run_id = None
        if args.evaluator == "gpu":
            warm_before_run(config, tasks, args.warm_jobs, lambda line: print(line, file=sys.stderr))
        bar = _Progress(enabled=not (args.no_progress or args.json), total=config.budget.max_candidates)
        try:
            outcome = run_tuning(archive, config, tasks, run_id=run_id, history=history,
                                 simulate=args.evaluator == "simulate", simulate_delay=args.simulate_delay,
                                 callbacks=bar.callbacks())
        finally:
            bar.close()
    finally:
        archive.close()
    if args.json:
        print(json.dumps(_as_json(outcome, simulated=args.evaluator == "simulate"), indent=2))
    else:
        _print_table(outcome, simulated=args.evaluator == "simulate")
    return 0


def _as_json(outcome: Any, simulated: bool) -> dict[str, Any]:
    from autotuner.app.report import HEADER, table_rows

    return {"run_id": outcome.run_id, "status": outcome.status, "stop_reason": outcome.stop_reason,
            "simulated": simulated,
            "tasks": [{"task": o.task, "family": o.family, "candidates": o.candidates,
                       "verdicts": dict(o.verdicts), "best_kernel_id": o.best_kernel_id,
                       "stop_reason": o.stop_reason, "generations": o.generations, "requests": dict(o.requests),
                       "best_speedup_eager": o.best_result.speedup_eager if o.best_result else None,
                       "best_speedup_compile": o.best_result.speedup_compile if o.best_result else None,
                       "table": dict(zip(HEADER, row))}
                      for o, row in zip(outcome.outcomes, table_rows(outcome.outcomes))],
            "spent": outcome.spent, "report": str(outcome.report), "plot": str(outcome.plot)}  # fmt: skip


class _Progress:
    """tqdm bar: candidates evaluated, verdict counts, best speedup so far."""

    def __init__(self, enabled: bool, total: int | None) -> None:
        from collections import Counter

        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="cand", disable=not enabled, dynamic_ncols=True, file=sys.stderr, delay=1.0)
        self.verdicts: Counter = Counter()
        self.best: float | None = None

    def callbacks(self) -> Any:
        from evolution.loop import Callbacks

        def on_result(outcome: Any, result: Any) -> None:
            self.verdicts["ok" if result.accepted else result.stage.value] += 1
            if result.accepted and result.speedup_eager is not None:
                self.best = max(self.best or 0.0, result.speedup_eager)
            self.bar.set_postfix_str(
                f"{outcome.task} | " + " ".join(f"{k}={v}" for k, v in sorted(self.verdicts.items()))
                + (f" | best {format_speedup(self.best)}" if self.best else ""), refresh=False)
            self.bar.update(1)

        return Callbacks(on_result=on_result, on_note=lambda text: self.bar.write(f"note: {text}", file=sys.stderr))

    def close(self) -> None:
        self.bar.close()


def _print_table(outcome: Any, simulated: bool = False) -> None:
    from autotuner.cli.render import table
    from autotuner.app.report import HEADER, stop_lines, table_rows
    from autotuner.speedup import geomean

    print(table([dict(zip(HEADER, row)) for row in table_rows(outcome.outcomes)], HEADER))
    speedups = [o.best_result.speedup_eager for o in outcome.outcomes if o.best_result and o.best_result.speedup_eager]
    g = geomean(speedups)
    print(f"run {outcome.run_id} {outcome.status}" + (" (SIMULATED: made-up results)" if simulated else "")
          + f": {sum(o.candidates for o in outcome.outcomes)} candidates"
          + (f", geomean {format_speedup(g)} vs eager over {len(speedups)} tasks" if g else ""))
    print(f"stopped: {outcome.stop_reason}")
    for line in stop_lines(outcome.outcomes):
        print(f"  {line}")
    per_gpu = outcome.spent.get("settings_per_gpu", {})
    if len(per_gpu) > 1:
        print("evaluations per worker: " + ", ".join(f"GPU {k}: {v}" if str(k).isdigit() else f"{k}: {v}"
                                                     for k, v in per_gpu.items()))
    print(f"report: {outcome.report}  plot: {outcome.plot}")
