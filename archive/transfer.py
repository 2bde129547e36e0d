"""Export and import the archive as JSON lines, to move or merge archives between machines.

One JSON object per line, each with a ``kind``: a ``header`` first, then runs, tasks,
kernels (parents before children), evaluations and LLM calls, and last a ``trailer`` with the
count of each kind: a file cut at a line boundary (a full disk, a killed copy) lacks it or
disagrees with it, and is refused. Version-1 files (before the trailer) are imported, but the
counts say so (``UNCHECKED``) and the CLI warns and exits non-zero: their completeness cannot
be checked. Rows are keyed by what
identifies them anywhere (task content hash; kernel = task hash + source hash + params
hash; uids for runs, evaluations and LLM calls), so importing the same file twice, or
merging two machines' archives, adds nothing twice. An import is one transaction: a bad line
raises ``ArchiveImportError`` naming the line, and nothing from the file is kept.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from archive.convert import to_result
from archive.models import Evaluation, Kernel, KernelParent, LLMCall, Run, Task
from archive.models import utcnow
from archive.store import (
    KernelSpec,
    LLMCallRecord,
    TaskRecord,
    add_kernel,
    record_evaluations,
    record_llm_call,
    upsert_task,
)
from autotuner.errors import ArchiveError, ArchiveImportError
from autotuner.evaluator.verdict import EvalResult

FORMAT = "autotuner-archive"
FORMAT_VERSION = 2  # 2: the file ends with a trailer holding the counts (1 had none)
READABLE_VERSIONS = (1, 2)
UNCHECKED = "unchecked_version_1"  # a key import_jsonl sets in its counts for a file it could not check
_BATCH = 1000


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _kernel_key(task_hash: str, kernel: Kernel) -> str:
    return f"{task_hash}:{kernel.source_hash}:{kernel.params_hash}"


def export_lines(session: Session) -> Iterator[dict[str, Any]]:
    """Every row of the archive as JSON-ready dicts, in an order import can replay."""
    yield {"kind": "header", "format": FORMAT, "version": FORMAT_VERSION}
    run_uid: dict[int, str] = {}
    for run in session.scalars(select(Run).order_by(Run.id)):
        run_uid[run.id] = run.uid
        yield {"kind": "run", "uid": run.uid, "config": run.config, "status": run.status,
               "started_at": _iso(run.started_at), "ended_at": _iso(run.ended_at),
               "budgets_spent": run.budgets_spent, "error": run.error}  # fmt: skip
    task_hash: dict[int, str] = {}
    for t in session.scalars(select(Task).order_by(Task.id)):
        task_hash[t.id] = t.content_hash
        yield {"kind": "task", "content_hash": t.content_hash, "name": t.name, "source": t.source,
               "family": t.family, "dtype": t.dtype, "policy": t.policy, "shapes": t.shapes, "path": t.path}  # fmt: skip
    keys: dict[int, str] = {}
    parents: dict[int, list[int]] = {}
    for edge in session.scalars(select(KernelParent).order_by(KernelParent.kernel_id, KernelParent.position)):
        parents.setdefault(edge.kernel_id, []).append(edge.parent_id)
    for k in session.scalars(select(Kernel).order_by(Kernel.id)):
        keys[k.id] = _kernel_key(task_hash[k.task_id], k)
        yield {"kind": "kernel", "key": keys[k.id], "source": k.source, "params": k.params,
               "language": k.language, "operator": k.operator, "proposer": k.proposer, "model": k.model,
               "prompt": k.prompt, "parents": [keys[p] for p in parents.get(k.id, [])],
               "run": run_uid.get(k.run_id) if k.run_id else None}  # fmt: skip
    stmt = select(Evaluation).options(selectinload(Evaluation.shapes)).order_by(Evaluation.id)
    for ev in session.scalars(stmt.execution_options(yield_per=_BATCH)):
        key = keys[ev.kernel_id]
        result = to_result(ev, task_hash=task_hash[ev.task_id])
        yield {"kind": "evaluation", "uid": ev.uid, "kernel": key, "created_at": _iso(ev.created_at),
               "run": run_uid.get(ev.run_id) if ev.run_id else None, "result": result.to_json()}  # fmt: skip
    for call in session.scalars(select(LLMCall).order_by(LLMCall.id)):
        yield {"kind": "llm_call", "uid": call.uid, "run": run_uid.get(call.run_id) if call.run_id else None,
               "kernel": keys.get(call.kernel_id) if call.kernel_id else None, "model": call.model,
               "operator": call.operator, "tokens_in": call.tokens_in, "tokens_out": call.tokens_out,
               "latency_s": call.latency_s, "cost_usd": call.cost_usd, "cached": call.cached, "error": call.error}  # fmt: skip


def export_jsonl(session: Session, out: IO[str]) -> Counter[str]:
    """Write every row, then the trailer with the counts; returns the counts."""
    counts: Counter[str] = Counter()
    for line in export_lines(session):
        out.write(json.dumps(line, separators=(",", ":")) + "\n")
        counts[line["kind"]] += 1
    body = {k: n for k, n in counts.items() if k != "header"}
    out.write(json.dumps({"kind": "trailer", "counts": body}, separators=(",", ":")) + "\n")
    return counts


class _Importer:
    """Replays lines into one session; ids are looked up by key, batches are flushed in order."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.runs: dict[str, int] = {}
        self.kernels: dict[str, int] = {}
        self.pending: list[tuple[int, EvalResult, str, datetime | None, int | None]] = []
        self.seen_uids: set[str] = set()
        self.counts: Counter[str] = Counter()

    def run(self, d: dict[str, Any]) -> None:
        existing = self.session.scalar(select(Run).where(Run.uid == d["uid"]))
        if existing is None:
            existing = Run(uid=d["uid"], config=d.get("config") or {}, status=d.get("status") or "finished",
                           started_at=_when(d.get("started_at")), ended_at=_when(d.get("ended_at")),
                           budgets_spent=d.get("budgets_spent") or {}, error=d.get("error"))  # fmt: skip
            self.session.add(existing)
            self.session.flush()
            self.counts["run"] += 1
        self.runs[d["uid"]] = existing.id

    def task(self, d: dict[str, Any]) -> None:
        record = TaskRecord(d["content_hash"], d["name"], d["source"], d.get("family", "misc"),
                            d.get("dtype", "float32"), d.get("policy", "strict"), tuple(d.get("shapes") or ()),
                            d.get("path", ""))  # fmt: skip
        upsert_task(self.session, record)
        self.counts["task"] += 1

    def kernel(self, d: dict[str, Any]) -> None:
        task_hash = d["key"].split(":")[0]
        task_id = self.session.scalar(select(Task.id).where(Task.content_hash == task_hash))
        if task_id is None:
            raise ValueError(f"kernel of task {task_hash[:12]}, which no earlier line defines")
        spec = KernelSpec(source=d["source"], params=d.get("params") or {}, language=d.get("language", "cuda"),
                          operator=d.get("operator"), proposer=d.get("proposer"), model=d.get("model"),
                          prompt=d.get("prompt"), parents=tuple(self._kernel(p) for p in d.get("parents") or ()),
                          run_id=self._run(d.get("run")))  # fmt: skip
        kernel_id = add_kernel(self.session, task_id, spec)
        if _kernel_key(task_hash, self.session.get(Kernel, kernel_id)) != d["key"]:
            raise ValueError("kernel key does not match its source and params hashes")
        self.kernels[d["key"]] = kernel_id
        self.counts["kernel"] += 1

    def evaluation(self, d: dict[str, Any]) -> None:
        result = EvalResult.from_json(d["result"])
        kernel_id = self._kernel(d["kernel"])
        if result.task_hash and result.task_hash != d["kernel"].split(":")[0]:
            raise ValueError("evaluation's task hash differs from its kernel's task")
        if d["uid"] in self.seen_uids:
            return
        self.seen_uids.add(d["uid"])
        self.pending.append((kernel_id, result, d["uid"], _when(d.get("created_at")), self._run(d.get("run"))))
        if len(self.pending) >= _BATCH:
            self.flush()

    def llm_call(self, d: dict[str, Any]) -> None:
        if self.session.scalar(select(LLMCall.id).where(LLMCall.uid == d["uid"])) is not None:
            return
        call = LLMCallRecord(model=d["model"], tokens_in=d.get("tokens_in", 0), tokens_out=d.get("tokens_out", 0),
                             latency_s=d.get("latency_s"), cost_usd=d.get("cost_usd"), error=d.get("error"),
                             operator=d.get("operator"), cached=bool(d.get("cached", False)),
                             run_id=self._run(d.get("run")),
                             kernel_id=self._kernel(d["kernel"]) if d.get("kernel") else None)  # fmt: skip
        record_llm_call(self.session, call, uid=d["uid"])
        self.counts["llm_call"] += 1

    def flush(self) -> None:
        if not self.pending:
            return
        uids = [p[2] for p in self.pending]
        known = set(self.session.scalars(select(Evaluation.uid).where(Evaluation.uid.in_(uids))))
        fresh = [p for p in self.pending if p[2] not in known]
        by_run: dict[int | None, list[Any]] = {}
        for p in fresh:
            by_run.setdefault(p[4], []).append(p)
        for run_id, group in by_run.items():
            record_evaluations(self.session, [(p[0], p[1]) for p in group], run_id=run_id,
                               uids=[p[2] for p in group], created_at=[p[3] or utcnow() for p in group])  # fmt: skip
        self.counts["evaluation"] += len(fresh)
        self.counts["evaluation_skipped"] += len(self.pending) - len(fresh)
        self.pending.clear()

    def _kernel(self, key: str) -> int:
        if key not in self.kernels:
            raise ValueError(f"refers to kernel {key[:24]}..., which no earlier line defines")
        return self.kernels[key]

    def _run(self, uid: str | None) -> int | None:
        if uid is None:
            return None
        if uid not in self.runs:
            raise ValueError(f"refers to run {uid}, which no earlier line defines")
        return self.runs[uid]


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _parse(line: str) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(data, dict) or "kind" not in data:
        raise ValueError("not a JSON object with a 'kind'")
    return data


def _check_header(data: dict[str, Any]) -> None:
    if data.get("kind") != "header" or data.get("format") != FORMAT:
        raise ValueError(f"not an {FORMAT} export (the first line is not its header)")
    if data.get("version") not in READABLE_VERSIONS:
        raise ValueError(f"export format version {data.get('version')}; this autotuner reads {list(READABLE_VERSIONS)}")


def import_jsonl(session: Session, path: str | Path) -> Counter[str]:
    """Import an export file into ``session`` (the caller's single transaction)."""
    importer = _Importer(session)
    handlers = {"run": importer.run, "task": importer.task, "kernel": importer.kernel,
                "evaluation": importer.evaluation, "llm_call": importer.llm_call}  # fmt: skip
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise ArchiveError(f"cannot read {path}: {e.strerror}") from None
    lineno = 0
    version, trailer, seen = None, None, Counter()
    try:
        with f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                data = _parse(line)
                kind = data["kind"]
                if lineno == 1:
                    _check_header(data)
                    version = data["version"]
                    continue
                if trailer is not None:
                    raise ValueError("a line after the trailer: two exports joined, or a damaged file")
                if kind == "trailer":
                    trailer = data
                    continue
                if kind not in handlers:
                    raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(handlers)}")
                seen[kind] += 1
                handlers[kind](data)
            if version is not None and version >= 2:
                _check_trailer(trailer, seen)
            importer.flush()
    except UnicodeDecodeError:
        raise ArchiveImportError(str(path), lineno + 1, "not UTF-8 text") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        fault = f"missing field {e}" if isinstance(e, KeyError) else str(e)
        raise ArchiveImportError(str(path), lineno, fault) from None
    if lineno == 0:
        raise ArchiveImportError(str(path), 1, "the file is empty")
    if version == 1:
        importer.counts[UNCHECKED] = 1
    return importer.counts


def _check_trailer(trailer: dict[str, Any] | None, seen: Counter[str]) -> None:
    if trailer is None:
        raise ValueError("the file ends without its trailer line: it was cut short (an interrupted export or "
                         "copy); export it again")
    expected = {k: int(n) for k, n in (trailer.get("counts") or {}).items() if n}
    if expected != {k: n for k, n in seen.items() if n}:
        raise ValueError(f"the trailer counts {expected} but the file holds {dict(seen)}: lines are missing or "
                         "extra; export it again")
