"""``autotuner archive ...``: browse, export and import the archive; ``serve`` it to a web browser.

Every listing prints a table, or ``--json`` / ``--csv`` for programs. Results of an older
harness are left out unless ``--include-stale`` (they are then marked). The database is
``--db URL`` > ``$AUTOTUNER_DB_URL`` > ``~/.local/share/autotuner/archive.db``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from archive import Archive
from autotuner.cli.render import as_dict, key_values, render, table, to_csv, to_json
from autotuner.cli.common import add_archive_options, archive_url, plain
from autotuner.errors import ArchiveError

KERNEL_COLUMNS = ["kernel_id", "proposer", "operator", "params", "evaluations", "verdict", "stage", "gpu",
                  "candidate_ms", "speedup_eager", "speedup_compile"]  # fmt: skip
BEST_COLUMNS = ["task", "gpu", "policy", "kernel_id", "candidate_ms", "eager_ms", "compiled_ms",
                "speedup_eager", "speedup_compile", "roofline_fraction"]  # fmt: skip
EVAL_COLUMNS = ["id", "created_at", "verdict", "stage", "gpu", "harness", "candidate_ms", "eager_ms",
                "compiled_ms", "speedup_eager", "speedup_compile", "max_abs_err", "reason"]  # fmt: skip


def _fmt(args: argparse.Namespace) -> str:
    return "json" if args.json else "csv" if args.csv else "table"


def _open(args: argparse.Namespace, create: bool = False) -> Archive:
    return Archive.open(archive_url(args), create=create)


def _columns(base: list[str], args: argparse.Namespace) -> list[str]:
    return base + ["stale"] if getattr(args, "include_stale", False) else base


def _emit(rows: list[Any], args: argparse.Namespace, columns: list[str] | None = None) -> int:
    print(render(rows, _fmt(args), columns))
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    with _open(args, create=True) as archive:
        if _fmt(args) == "json":
            print(to_json({"archive": archive.url, "schema_revision": archive.revision()}))
        else:
            print(f"archive at {archive.url}: schema revision {archive.revision()} (newest)")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    with _open(args) as archive:
        return _emit(archive.tasks(include_stale=args.include_stale), args)


def cmd_kernels(args: argparse.Namespace) -> int:
    with _open(args) as archive:
        rows = archive.kernels(
            args.task, gpu=args.gpu_name, dtype=args.dtype, verdict=args.verdict, min_speedup=args.min_speedup,
            proposer=args.proposer, include_stale=args.include_stale, limit=args.limit,
        )  # fmt: skip
    return _emit(rows, args, _columns(KERNEL_COLUMNS, args))


def cmd_show(args: argparse.Namespace) -> int:
    with _open(args) as archive:
        detail = archive.kernel(args.kernel_id)
    fmt = _fmt(args)
    if fmt == "json":
        print(to_json(detail))
    elif fmt == "csv":
        rows = [{"kernel_id": detail.id, **as_dict(e)} for e in detail.evaluations]
        print(to_csv(rows, ["kernel_id", *EVAL_COLUMNS, "stale"]))
    else:
        print(_show_text(detail))
    return 0


def _show_text(d: Any) -> str:
    head = {
        "kernel": f"{d.id} (task {d.task} {d.task_hash[:12]}, {d.language})",
        "made by": f"{d.proposer or '-'} / {d.operator or '-'}" + (f" / {d.model}" if d.model else ""),
        "params": json.dumps(d.params, sort_keys=True),
        "parents": ", ".join(map(str, d.parents)) or "-",
        "children": ", ".join(map(str, d.children)) or "-",
        "run": d.run_id,
        "created": d.created_at,
        "source hash": d.source_hash,
        "prompt": f"{len(d.prompt)} characters (--json shows it)" if d.prompt else None,
    }
    parts = [key_values({k: v for k, v in head.items() if v is not None})]
    parts += ["", f"evaluations ({len(d.evaluations)}; stale ones marked):",
              table(d.evaluations, [*EVAL_COLUMNS[:6], "stale", *EVAL_COLUMNS[6:]])]  # fmt: skip
    for ev in d.evaluations:
        shapes = [
            {"shape": s["shape"], "hidden": s["hidden"], "passed": s["passed"], "trials": s["trials"],
             "max_abs_err": s["max_abs_err"], "max_rel_l2": s["max_rel_l2"],
             **{f"{k}_ms": (s[k] or {}).get("median_ms") for k in ("candidate", "eager", "compiled")},
             "spread_p10_p90": _spread(s["candidate"]), "roofline_ms": s["roofline_ms"]}
            for s in ev.shapes
        ]  # fmt: skip
        parts += ["", f"shapes of evaluation {ev.id}:", table(shapes)]
    parts += ["", "source:", d.source.rstrip()]
    return "\n".join(parts)


def _spread(stats: dict[str, Any] | None) -> str | None:
    return f"{stats['p10_ms']:.4g}..{stats['p90_ms']:.4g}" if stats else None


def cmd_best(args: argparse.Namespace) -> int:
    with _open(args) as archive:
        rows = archive.best(task=args.task, gpu=args.gpu_name, policy=args.policy, include_stale=args.include_stale, top=args.top)
    return _emit(rows, args, _columns(BEST_COLUMNS, args))


def cmd_leaderboard(args: argparse.Namespace) -> int:
    with _open(args) as archive:
        rows = archive.leaderboard(gpu=args.gpu_name, policy=args.policy, p=args.p, include_stale=args.include_stale)
    return _emit(rows, args)


def cmd_lineage(args: argparse.Namespace) -> int:
    """A kernel's ancestors and descendants, or a whole task's kernels, as a tree."""
    from archive import lineage_tree
    from autotuner.cli.lineage_view import render_tree, tree_json

    with _open(args) as archive:
        rows = archive.task_lineage(args.task) if args.task else archive.lineage(args.kernel_id)
    fmt = _fmt(args)
    if fmt == "csv":
        return _emit(rows, args)
    roots = lineage_tree(rows, args.kernel_id)
    if fmt == "json":
        print(to_json({"kernel_id": args.kernel_id, "task": args.task, "kernels": len(rows), "tree": tree_json(roots)}))
    else:
        print(render_tree(roots))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    with _open(args) as archive:
        diff = archive.diff(args.a, args.b)
    fmt = _fmt(args)
    if fmt == "json":
        print(to_json(diff))
        return 0
    if fmt == "csv":
        print(to_csv([{"param": k, "a": v[0], "b": v[1]} for k, v in diff.params_changed.items()], ["param", "a", "b"]))
        return 0
    lines = [f"kernel {diff.a} vs kernel {diff.b}" + ("" if diff.same_task else " (different tasks)"),
             f"best speedup vs eager: {_num(diff.speedup_eager[0])} -> {_num(diff.speedup_eager[1])}"]  # fmt: skip
    lines += [f"param {k}: {a} -> {b}" for k, (a, b) in diff.params_changed.items()] or ["params: same"]
    lines += diff.source_diff or ["source: same"]
    print("\n".join(lines))
    return 0


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def cmd_stats(args: argparse.Namespace) -> int:
    with _open(args) as archive:
        data = archive.stats()
    fmt = _fmt(args)
    if fmt == "json":
        print(to_json(data))
    elif fmt == "csv":
        flat = [{"key": f"{k}.{k2}" if isinstance(v, dict) else k, "value": v2 if isinstance(v, dict) else v}
                for k, v in data.items() for k2, v2 in (v.items() if isinstance(v, dict) else [(None, v)])]  # fmt: skip
        print(to_csv(flat, ["key", "value"]))
    else:
        print(key_values(data))
    return 0


def cmd_stale(args: argparse.Namespace) -> int:
    with _open(args) as archive:
        return _emit(archive.stale(gpu=args.gpu_name, limit=args.limit), args)


def cmd_export(args: argparse.Namespace) -> int:
    with _open(args) as archive:
        if args.file in (None, "-"):
            counts = archive.export_jsonl(sys.stdout)
            return 0
        try:
            with open(args.file, "w", encoding="utf-8") as out:
                counts = archive.export_jsonl(out)
        except OSError as e:
            raise ArchiveError(f"cannot write {args.file}: {e.strerror}") from None
    if _fmt(args) == "json":
        print(to_json({"file": args.file, "counts": {k: n for k, n in counts.items() if k != "header"}}))
    else:
        print(f"exported to {args.file}: " + ", ".join(f"{n} {k}" for k, n in counts.items() if k != "header"))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import; a version-1 export (no trailer) is imported but cannot be checked whole: warn, exit 1."""
    from archive import UNCHECKED

    with _open(args, create=True) as archive:
        counts = archive.import_jsonl(args.file)
    unchecked = bool(counts.pop(UNCHECKED, 0))
    skipped = counts.pop("evaluation_skipped", 0)
    warning = (f"{args.file} is a version-1 export, which has no trailer: it was imported, but whether it was "
               "complete cannot be checked; export it again with this version to be sure") if unchecked else None
    if _fmt(args) == "json":
        print(to_json({"file": args.file, "archive": archive.url, "imported": dict(counts),
                       "evaluations_already_present": skipped, "warning": warning}))
    else:
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing new"
        print(f"imported {args.file} into {archive.url}: {summary}"
              + (f"; {skipped} evaluations already present" if skipped else ""))
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
        return 1
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the read-only browser until Ctrl-C (needs the web extra)."""
    from autotuner.web import serve

    with _open(args) as archive:
        def ready(url: str) -> None:
            print(f"serving the archive at {archive.url} read-only on {url} (Ctrl-C to stop)", flush=True)

        serve(archive, host=args.host, port=args.port, log_level="info" if args.verbose else "warning", on_ready=ready)
    return 0


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_archive_options(common)
    out = common.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON to stdout")
    out.add_argument("--csv", action="store_true", help="print CSV to stdout")
    return common


def _gpu_name(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gpu-name", metavar="NAME", help="only results on GPUs whose name holds NAME (case-insensitive, e.g. h100)")


def _stale_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--include-stale", action="store_true", help="also show results of older harness versions (marked)")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("archive", help="browse, export and import the archive of results",
                                   description=plain(__doc__))  # fmt: skip
    sub = parser.add_subparsers(dest="archive_command", metavar="ACTION", required=True)
    common = _common()

    def add(name: str, func: Any, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    add("init", cmd_init, "create the archive, or upgrade its schema to the newest revision")
    _stale_flag(add("tasks", cmd_tasks, "list tasks with kernel and evaluation counts"))
    p = add("kernels", cmd_kernels, "list kernels of a task (id, name or hash prefix), best evaluation each")
    p.add_argument("task", help="task id, name or content-hash prefix")
    _gpu_name(p)
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="only tasks of this dtype")
    p.add_argument("--verdict", choices=["accepted", "rejected", "error"], help="only kernels with this verdict")
    p.add_argument("--min-speedup", type=float, metavar="X", help="speedup against PyTorch eager of at least X")
    p.add_argument("--proposer", help="only kernels made by this proposer (e.g. rules, llm)")
    p.add_argument("--limit", type=int, help="at most this many rows")
    _stale_flag(p)
    add("show", cmd_show, "one kernel: source, parameters, lineage edges, every evaluation").add_argument("kernel_id", type=int, help="kernel id")
    p = add("best", cmd_best, "fastest verified kernel per task, GPU and policy")
    p.add_argument("--task", help="only this task (id, name or hash prefix)")
    _gpu_name(p)
    p.add_argument("--policy", choices=["strict", "hybrid"], help="only tasks under this policy")
    p.add_argument("--top", type=int, default=1, help="how many per task and GPU (default 1)")
    _stale_flag(p)
    p = add("leaderboard", cmd_leaderboard, "fast_p against eager and torch.compile, and geomean speedup, per GPU")
    _gpu_name(p)
    p.add_argument("--policy", choices=["strict", "hybrid"], help="only tasks under this policy")
    p.add_argument("--p", type=float, default=1.0, help="speedup threshold of fast_p (default 1.0)")
    _stale_flag(p)
    p = add("lineage", cmd_lineage, "the lineage tree: a kernel's ancestors and descendants, or every kernel of a task "
            "(--task); --json nests each kernel's children, --csv lists the edges")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("kernel_id", type=int, nargs="?", help="kernel id")
    which.add_argument("--task", help="every kernel of this task (id, name or hash prefix) instead of one kernel's family")
    p = add("diff", cmd_diff, "source and parameter differences of two kernels")
    p.add_argument("a", type=int, help="first kernel id")
    p.add_argument("b", type=int, help="second kernel id")
    add("stats", cmd_stats, "counts, verdicts, GPUs, LLM spend")
    p = add("stale", cmd_stale, "kernels accepted by an older harness and not re-verified since")
    _gpu_name(p)
    p.add_argument("--limit", type=int, help="at most this many rows")
    add("export", cmd_export, "write the whole archive as JSON lines").add_argument("file", nargs="?", help="file to write (default: stdout)")
    add("import", cmd_import, "merge a JSON-lines export into the archive (one transaction)").add_argument("file", help="a file written by archive export")
    serve_options = argparse.ArgumentParser(add_help=False)
    add_archive_options(serve_options)
    help_ = "browse the archive in a web browser: read-only pages and their JSON under /api (needs the web extra)"
    p = sub.add_parser("serve", parents=[serve_options], help=help_, description=help_)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 shows the archive to the network)")
    p.add_argument("--port", type=int, default=8787, help="port to listen on (default 8787; 0: any free port)")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.set_defaults(func=cmd_serve)
