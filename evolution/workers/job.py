"""One unit of evaluation work, as it travels from the driver to a worker.

A job carries the texts of the task file and of the candidate, not just their paths: a worker
on another machine (a Ray actor) sees neither the driver's files nor its loaded modules, and a
``Task`` holds an imported module that cannot be pickled. The paths go along as hints, used
where the same file (same hash) is there, as on the single-host pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotuner.candidate import source_hash
from autotuner.tasks import Task


@dataclass(frozen=True)
class EvalJob:
    """Evaluate one candidate at ``settings`` (one result per setting, in order) against one task."""

    task_name: str  # the task file's stem: results are named after it
    task_source: str
    task_hash: str  # autotuner.tasks.content_hash(task_source)
    policy: str  # the task's policy as the driver loaded it
    candidate_source: str
    settings: tuple[dict[str, Any], ...]
    task_path: str = ""  # where the driver loaded the task from (used if the same file is there)
    candidate_path: str = ""  # where the driver wrote the candidate (idem)

    @classmethod
    def of(cls, task: Task, candidate: Path, settings: list[dict[str, Any]]) -> EvalJob:
        """The job for ``task`` and the candidate file the run wrote (read here, once)."""
        return cls(task_name=task.name, task_source=task.source, task_hash=task.content_hash, policy=task.policy,
                   candidate_source=Path(candidate).read_text(encoding="utf-8"),
                   settings=tuple(dict(p) for p in settings), task_path=str(task.path),
                   candidate_path=str(candidate))

    @property
    def candidate_hash(self) -> str:
        return source_hash(self.candidate_source)

    def describe(self) -> str:
        """A short name for messages: ``task candidate[:12] (N settings)``."""
        return f"{self.task_name} {self.candidate_hash[:12]} ({len(self.settings)} settings)"
