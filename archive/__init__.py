"""The archive: every task, kernel, evaluation, run and LLM call, with provenance.

SQLAlchemy 2 models (``models``), engine and transactions (``db``), Alembic migrations run
in code (``migrate``, ``migrations/``), the write side (``store``), the read side
(``queries``, ``ranking``), JSON-lines export / import (``transfer``) and ``Archive``, the
facade that ties them together. SQLite by default, PostgreSQL by URL; see ``db`` for where
the URL comes from.

    from archive import Archive, KernelSpec
    with Archive.open() as archive:
        ids = archive.record(task, KernelSpec(source, params={"BLOCK": 256}, proposer="rules"), result)
        winners = archive.best(task="relu", gpu="H100")
"""

from archive.api import Archive, Recorded
from archive.claims import DONE, HELD, MINE, AdmittedSource, ClaimRow, ClaimState
from archive.db import ENV_VAR, default_url, redact, resolve_url
from archive.history import HistoryItem
from archive.lineage import LineageNode, lineage_tree
from archive.migrate import head_revision
from archive.rows import BestRow, EvaluationRow, KernelDetail, KernelDiff, KernelRow, LeaderRow, LineageRow, StaleRow, TaskRow
from archive.rows import LeaderboardPage, ModelSpend, ReasonCount, RunDetail, RunPoint, RunRow, TaskDetail, TaskEvaluation
from archive.store import KernelSpec, LLMCallRecord, TaskLike, TaskRecord
from archive.transfer import UNCHECKED

__all__ = [
    "AdmittedSource",
    "Archive",
    "ClaimRow",
    "ClaimState",
    "DONE",
    "HELD",
    "MINE",
    "BestRow",
    "ENV_VAR",
    "EvaluationRow",
    "HistoryItem",
    "KernelDetail",
    "KernelDiff",
    "KernelRow",
    "KernelSpec",
    "LLMCallRecord",
    "LeaderRow",
    "LineageNode",
    "LineageRow",
    "Recorded",
    "StaleRow",
    "TaskLike",
    "TaskRecord",
    "TaskRow",
    "UNCHECKED",
    "default_url",
    "head_revision",
    "lineage_tree",
    "redact",
    "resolve_url",
    # the browser's rows
    "LeaderboardPage",
    "ModelSpend",
    "ReasonCount",
    "RunDetail",
    "RunPoint",
    "RunRow",
    "TaskDetail",
    "TaskEvaluation",
]
