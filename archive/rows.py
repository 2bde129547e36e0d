"""What the read API returns: plain frozen dataclasses, one per kind of listing.

They carry raw values (times in ms, unrounded); formatting is the renderer's job. Every row
built from an evaluation says whether that evaluation is ``stale`` (made by an older harness).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TaskRow:
    id: int
    name: str
    family: str
    dtype: str
    policy: str
    hash: str
    kernels: int
    evaluations: int
    accepted: int
    best_speedup_eager: float | None
    stale_evaluations: int


@dataclass(frozen=True)
class KernelRow:
    """A kernel with its best evaluation among those the filters kept (None if it has none)."""

    kernel_id: int
    task: str
    proposer: str | None
    operator: str | None
    params: dict[str, Any]
    evaluations: int
    evaluation_id: int | None
    verdict: str | None
    stage: str | None
    gpu: str | None
    dtype: str | None
    candidate_ms: float | None
    speedup_eager: float | None
    speedup_compile: float | None
    harness: str | None
    stale: bool


@dataclass(frozen=True)
class EvaluationRow:
    id: int
    uid: str
    created_at: str
    verdict: str
    stage: str
    reason: str
    policy: str
    dtype: str
    gpu: str
    capability: str
    driver: str
    torch: str
    cuda: str
    cupy: str
    harness: str
    stale: bool
    max_abs_err: float | None
    candidate_ms: float | None
    eager_ms: float | None
    compiled_ms: float | None
    speedup_eager: float | None
    speedup_compile: float | None
    roofline_fraction: float | None
    run_id: int | None
    shapes: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class KernelDetail:
    id: int
    task: str
    task_hash: str
    language: str
    proposer: str | None
    operator: str | None
    model: str | None
    prompt: str | None
    params: dict[str, Any]
    source_hash: str
    parents: list[int]
    children: list[int]
    run_id: int | None
    created_at: str
    source: str
    evaluations: list[EvaluationRow]


@dataclass(frozen=True)
class BestRow:
    task_id: int
    task: str
    gpu: str
    policy: str
    dtype: str
    kernel_id: int
    evaluation_id: int
    candidate_ms: float
    eager_ms: float | None
    compiled_ms: float | None
    speedup_eager: float | None
    speedup_compile: float | None
    roofline_fraction: float | None
    harness: str
    stale: bool


@dataclass(frozen=True)
class LeaderRow:
    """fast_p (KernelBench's): share of attempted tasks with a correct kernel faster than p x."""

    gpu: str
    policy: str
    tasks: int
    solved: int
    p: float
    fast_p_eager: float
    fast_p_compile: float
    geomean_speedup_eager: float | None
    geomean_speedup_compile: float | None


@dataclass(frozen=True)
class LineageRow:
    """``generation`` is 0 for the kernel asked about, -1 for its parents, +1 for children."""

    kernel_id: int
    generation: int
    parents: list[int]
    operator: str | None
    proposer: str | None
    model: str | None
    best_speedup_eager: float | None


@dataclass(frozen=True)
class KernelDiff:
    a: int
    b: int
    same_task: bool
    params_changed: dict[str, list[Any]]  # name -> [value in a, value in b]
    source_diff: list[str]  # unified diff lines
    speedup_eager: list[float | None]  # best current speedup of a, of b


@dataclass(frozen=True)
class StaleRow:
    """A kernel accepted by an older harness on a GPU and not re-verified there since."""

    kernel_id: int
    task: str
    gpu: str
    harness: str
    evaluations: int
    last_evaluated: str
    best_speedup_eager: float | None


# -- the browser's pages (archive.browse) ------------------------------------------------


@dataclass(frozen=True)
class LeaderboardPage:
    """``leaderboard`` and the ``best`` rows (each task's winner per GPU and policy) behind it."""

    leaderboard: list[LeaderRow]
    best: list[BestRow]


@dataclass(frozen=True)
class TaskEvaluation:
    """An evaluation of one of a task's kernels (no shapes), with the kernel it judged."""

    kernel_id: int
    evaluation: EvaluationRow


@dataclass(frozen=True)
class ReasonCount:
    verdict: str
    stage: str
    reason: str
    count: int


@dataclass(frozen=True)
class TaskDetail:
    """One task version in full: what a task page shows."""

    id: int
    name: str
    family: str
    dtype: str
    policy: str
    content_hash: str
    path: str
    created_at: str
    source: str
    shapes: list[dict[str, Any]]
    versions: list[int]  # ids of every task of this name (this one included)
    verdicts: dict[str, int]  # current harness only
    stale_evaluations: int
    reasons: list[ReasonCount]  # most frequent first, current harness only
    winners: list[BestRow]  # per GPU and policy
    winner_shapes: dict[int, list[dict[str, Any]]]  # evaluation id -> its per-shape rows
    kernels: list[KernelRow]
    recent: list[TaskEvaluation]  # newest first


@dataclass(frozen=True)
class RunRow:
    id: int
    uid: str
    status: str
    started_at: str
    ended_at: str
    proposer: str | None
    evaluations: int
    accepted: int
    llm_calls: int
    llm_cost_usd: float
    error: str | None


@dataclass(frozen=True)
class RunPoint:
    """One evaluation of a run, in the order it was recorded (the progress plot's data)."""

    evaluation_id: int
    kernel_id: int
    task: str
    verdict: str
    stale: bool
    speedup_eager: float | None
    speedup_compile: float | None
    eager_ms: float | None
    compiled_ms: float | None


@dataclass(frozen=True)
class ModelSpend:
    """LLM calls of a run, per model."""

    model: str
    calls: int
    errors: int
    cached: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    mean_latency_s: float | None


@dataclass(frozen=True)
class RunDetail:
    run: RunRow
    config: dict[str, Any]
    budgets_spent: dict[str, Any]
    verdicts: dict[str, int]
    points: list[RunPoint]
    llm: list[ModelSpend]
