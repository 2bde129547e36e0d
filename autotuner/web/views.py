"""What each page shows: the ``Archive`` calls behind it and the context its template gets.

Pure functions of an archive and the query string, shared by the routes (``app``), the JSON
API and ``autotuner bench archive`` (``bench``), so the timed work is the served work.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from typing import Any
from urllib.parse import urlencode

from archive import Archive, lineage_tree
from autotuner.web import highlight
from autotuner.web.plot import progress_plot

POLICIES = ("strict", "hybrid")
# Leaderboard columns that sort (?sort=KEY&dir=asc|desc): key -> the BestRow field.
SORTS = {
    "task": "task", "kernel": "kernel_id", "candidate_ms": "candidate_ms", "eager_ms": "eager_ms",
    "compiled_ms": "compiled_ms", "speedup_eager": "speedup_eager", "speedup_compile": "speedup_compile",
    "roofline": "roofline_fraction",
}  # fmt: skip
DEFAULT_DIR = {"task": "asc", "kernel": "asc", "candidate_ms": "asc", "eager_ms": "asc", "compiled_ms": "asc"}


def plain(data: Any) -> Any:
    """Rows as JSON-ready values: dataclasses to dicts, NaN and infinities to None."""
    if is_dataclass(data) and not isinstance(data, type):
        data = asdict(data)
    if isinstance(data, dict):
        return {str(k): plain(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [plain(v) for v in data]
    if isinstance(data, float) and not math.isfinite(data):
        return None
    return data


def _flag(q: Mapping[str, str], name: str) -> bool:
    return q.get(name, "") in ("1", "true", "yes", "on")


def _float(q: Mapping[str, str], name: str, default: float) -> float:
    try:
        value = float(q.get(name, default))
    except ValueError:
        return default
    return value if math.isfinite(value) else default


def _filters(q: Mapping[str, str]) -> dict[str, Any]:
    policy = q.get("policy", "")
    return {"gpu": q.get("gpu", "").strip() or None, "policy": policy if policy in POLICIES else None,
            "p": _float(q, "p", 1.0), "include_stale": _flag(q, "include_stale")}  # fmt: skip


def sort_rows(rows: list[Any], key: str, direction: str) -> list[Any]:
    """Rows by ``SORTS[key]``; missing values last whichever the direction."""
    field = SORTS[key]
    present = [r for r in rows if getattr(r, field) is not None]
    missing = [r for r in rows if getattr(r, field) is None]
    present.sort(key=lambda r: (getattr(r, field), r.task, r.evaluation_id), reverse=direction == "desc")
    return present + missing


def leaderboard_data(archive: Archive, q: Mapping[str, str]) -> dict[str, Any]:
    f = _filters(q)
    page = archive.leaderboard_page(gpu=f["gpu"], policy=f["policy"], p=f["p"], include_stale=f["include_stale"])
    return {"filters": f, "leaderboard": page.leaderboard, "best": page.best}


def leaderboard_page(archive: Archive, q: Mapping[str, str]) -> dict[str, Any]:
    data = leaderboard_data(archive, q)
    sort = q.get("sort", "task")
    sort = sort if sort in SORTS else "task"
    direction = q.get("dir", "")
    direction = direction if direction in ("asc", "desc") else DEFAULT_DIR.get(sort, "desc")
    groups: dict[tuple[str, str], list[Any]] = {}
    for row in data["best"]:
        groups.setdefault((row.gpu, row.policy), []).append(row)
    sections = [{"board": b, "rows": sort_rows(groups.get((b.gpu, b.policy), []), sort, direction)}
                for b in data["leaderboard"]]  # fmt: skip
    f = data["filters"]
    base = {"gpu": f["gpu"], "policy": f["policy"], "p": q.get("p"), "include_stale": "1" if f["include_stale"] else None}
    return {"page": "leaderboard", "title": "Leaderboard", "filters": f, "sections": sections, "sort": sort,
            "dir": direction, "base": base, "stale_shown": sum(r.stale for r in data["best"]),
            "api": "/api/leaderboard" + _qs(base)}  # fmt: skip


def _qs(params: Mapping[str, Any]) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return "?" + urlencode(kept) if kept else ""


def tasks_page(archive: Archive, q: Mapping[str, str]) -> dict[str, Any]:
    stale = _flag(q, "include_stale")
    return {"page": "tasks", "title": "Tasks", "tasks": archive.tasks(include_stale=stale), "include_stale": stale,
            "api": "/api/tasks" + _qs({"include_stale": "1" if stale else None})}  # fmt: skip


def task_ref(ref: str) -> int | str:
    """A task in a path: an id, or a name or hash prefix."""
    return int(ref) if ref.isdigit() else ref


def task_page(archive: Archive, ref: str, q: Mapping[str, str]) -> dict[str, Any]:
    stale = _flag(q, "include_stale")
    detail = archive.task_detail(task_ref(ref), include_stale=stale)
    task_id = detail.id
    return {"page": "tasks", "title": f"Task {detail.name}", "task": detail, "include_stale": stale,
            "source_html": highlight.python_html(detail.source),
            "api": f"/api/tasks/{task_id}" + _qs({"include_stale": "1" if stale else None})}  # fmt: skip


def kernel_data(archive: Archive, kernel_id: int) -> dict[str, Any]:
    detail = archive.kernel(kernel_id)
    return {"kernel": detail, "lineage": archive.lineage(kernel_id),
            "diffs": [archive.diff(parent, kernel_id) for parent in detail.parents]}  # fmt: skip


def kernel_page(archive: Archive, kernel_id: int) -> dict[str, Any]:
    data = kernel_data(archive, kernel_id)
    detail = data["kernel"]
    return {
        "page": "tasks", "title": f"Kernel {kernel_id}", **data,
        "source_html": highlight.source_html(detail.source, detail.language),
        "tree": lineage_tree(data["lineage"], kernel_id),
        "diff_html": [(d, highlight.diff_html(d.source_diff) if d.source_diff else "") for d in data["diffs"]],
        "api": f"/api/kernels/{kernel_id}",
    }  # fmt: skip


def runs_page(archive: Archive, q: Mapping[str, str]) -> dict[str, Any]:
    return {"page": "runs", "title": "Runs", "runs": archive.runs(), "api": "/api/runs"}


def run_page(archive: Archive, run_id: int, q: Mapping[str, str]) -> dict[str, Any]:
    detail = archive.run(run_id)
    totals = {"calls": sum(m.calls for m in detail.llm), "errors": sum(m.errors for m in detail.llm),
              "cached": sum(m.cached for m in detail.llm), "tokens_in": sum(m.tokens_in for m in detail.llm),
              "tokens_out": sum(m.tokens_out for m in detail.llm), "cost_usd": sum(m.cost_usd for m in detail.llm)}  # fmt: skip
    return {"page": "runs", "title": f"Run {run_id}", "run": detail, "plot": progress_plot(detail.points),
            "llm_totals": totals, "config_json": json.dumps(detail.config, indent=2, sort_keys=True, default=str),
            "api": f"/api/runs/{run_id}"}  # fmt: skip


# The JSON API: path -> (what it returns, function of archive, path parameters and query).
API: dict[str, tuple[str, Callable[..., Any]]] = {
    "/api/leaderboard": ("fast_p and geomean per GPU and policy, and each task's winner (?gpu=&policy=&p=&include_stale=1)",
                         lambda a, q: leaderboard_data(a, q)),
    "/api/tasks": ("every task with kernel and evaluation counts", lambda a, q: a.tasks(include_stale=_flag(q, "include_stale"))),
    "/api/tasks/{ref}": ("one task (id, name or hash prefix): source, shapes, verdicts, reasons, winners with "
                         "per-shape timings, kernels, latest evaluations",
                         lambda a, q, ref: a.task_detail(task_ref(ref), include_stale=_flag(q, "include_stale"))),
    "/api/kernels/{kernel_id:int}": ("one kernel: source, parameters, evaluations with provenance, lineage, diff to each parent",
                                     lambda a, q, kernel_id: kernel_data(a, kernel_id)),
    "/api/diff/{a:int}/{b:int}": ("source and parameter differences of two kernels", lambda arc, q, a, b: arc.diff(a, b)),
    "/api/runs": ("the newest runs", lambda a, q: a.runs()),
    "/api/runs/{run_id:int}": ("one run: configuration, spend, verdicts, evaluations in order, LLM calls per model",
                               lambda a, q, run_id: a.run(run_id)),
    "/api/stats": ("counts, verdicts, GPUs, LLM spend", lambda a, q: a.stats()),
}  # fmt: skip
