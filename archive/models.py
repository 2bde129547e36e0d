"""The archive's schema: SQLAlchemy 2 typed models, one class per table.

These classes describe the schema at the newest migration (``archive/migrations/versions``);
a test compares them with a migrated database, so a change here without a migration fails.
Raw measurements are stored unrounded, in the units their names say (``_ms``, ``_s``,
``_usd``). Whether an evaluation is stale is not stored: it is derived at query time by
comparing ``harness_version`` with :data:`autotuner.HARNESS_VERSION`, so it can never drift.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Named constraints, so that Alembic's batch mode (SQLite ALTER) can find them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back timezone-aware on every backend (SQLite
    drops the zone; PostgreSQL keeps it), so times compare and export the same way."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime}


class Task(Base):
    """A task file, identified by the SHA-256 of its text (renames do not split it)."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    family: Mapped[str] = mapped_column(String(64), default="misc")
    dtype: Mapped[str] = mapped_column(String(16), default="float32")
    policy: Mapped[str] = mapped_column(String(16), default="strict")
    shapes: Mapped[list[Any]] = mapped_column(default=list)  # [Shape.to_json(), ...]
    source: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(String(1024), default="")  # where it was last loaded from
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    kernels: Mapped[list[Kernel]] = relationship(back_populates="task")


TASKS_STOPPED = "tasks_stopped"  # runs.budgets_spent key: task content hash -> why its search stopped


class Run(Base):
    """One evolution run: its configuration, lifetime and what it spent."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)  # stable across export / import
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()
    budgets_spent: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"llm_usd": .., TASKS_STOPPED: {..}}
    error: Mapped[str | None] = mapped_column(Text)  # why it failed (revision 0003)


class KernelParent(Base):
    """Lineage edge: ``kernel_id`` was made from ``parent_id`` (crossover has two)."""

    __tablename__ = "kernel_parents"

    kernel_id: Mapped[int] = mapped_column(ForeignKey("kernels.id", ondelete="CASCADE"), primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("kernels.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Kernel(Base):
    """A candidate's source with one setting of its tunable parameters.

    Deduplicated on (task, source hash, parameters hash): proposing the same code twice
    returns the existing row, so its evaluations accumulate in one place.
    """

    __tablename__ = "kernels"
    __table_args__ = (UniqueConstraint("task_id", "source_hash", "params_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    source: Mapped[str] = mapped_column(Text)
    source_hash: Mapped[str] = mapped_column(String(64), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    params_hash: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(32), default="cuda")
    operator: Mapped[str | None] = mapped_column(String(32))  # translate | mutate | crossover | fix | ...
    proposer: Mapped[str | None] = mapped_column(String(64))  # rules | llm | manual | ...
    model: Mapped[str | None] = mapped_column(String(128))  # the LLM, when one proposed it
    prompt: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    task: Mapped[Task] = relationship(back_populates="kernels")
    evaluations: Mapped[list[Evaluation]] = relationship(back_populates="kernel", order_by="Evaluation.id")


class Evaluation(Base):
    """One verdict on one kernel, with the provenance the verification contract requires.

    ``task_id`` repeats the kernel's task so that ranking queries need no join. The timed
    shape's medians are copied out of ``shape_results`` for the same reason. ``n_shapes``
    lets a reader check that the evaluation was written whole.
    """

    __tablename__ = "evaluations"
    __table_args__ = (
        # best / leaderboard: current, accepted, per task, GPU and policy, fastest first.
        Index("ix_evaluations_ranking", "harness_version", "verdict", "task_id", "gpu_name", "policy",
              "candidate_median_ms", "kernel_id"),
        # "was this kernel rejected / re-verified on this GPU by this harness?" (index only)
        Index("ix_evaluations_kernel_gpu", "kernel_id", "gpu_name", "harness_version", "verdict"),
        # leaderboard denominators: tasks attempted per GPU and policy.
        Index("ix_evaluations_scope", "harness_version", "gpu_name", "policy", "task_id"),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    kernel_id: Mapped[int] = mapped_column(ForeignKey("kernels.id"))  # indexed by kernel_gpu
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    verdict: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    policy: Mapped[str] = mapped_column(String(16), default="strict")
    dtype: Mapped[str] = mapped_column(String(16), default="float32")

    harness_version: Mapped[str] = mapped_column(String(32))
    gpu_name: Mapped[str] = mapped_column(String(128), default="")
    capability: Mapped[str] = mapped_column(String(16), default="")
    driver: Mapped[str] = mapped_column(String(64), default="")
    torch_version: Mapped[str] = mapped_column(String(64), default="")
    torch_cuda: Mapped[str] = mapped_column(String(32), default="")
    cupy_version: Mapped[str] = mapped_column(String(32), default="")
    python_version: Mapped[str] = mapped_column(String(32), default="")
    peak_gbps: Mapped[float | None] = mapped_column(Float)
    peak_tflops: Mapped[float | None] = mapped_column(Float)
    seeds: Mapped[list[Any]] = mapped_column(default=list)
    tolerances: Mapped[dict[str, Any]] = mapped_column(default=dict)

    max_abs_err: Mapped[float | None] = mapped_column(Float)
    speedup_eager: Mapped[float | None] = mapped_column(Float)
    speedup_compile: Mapped[float | None] = mapped_column(Float)
    roofline_fraction: Mapped[float | None] = mapped_column(Float)
    compile_ms: Mapped[float | None] = mapped_column(Float)  # NVRTC compile time, not a kernel time
    wall_s: Mapped[float | None] = mapped_column(Float)
    timed_shape: Mapped[str | None] = mapped_column(String(64))
    candidate_median_ms: Mapped[float | None] = mapped_column(Float)
    eager_median_ms: Mapped[float | None] = mapped_column(Float)
    compiled_median_ms: Mapped[float | None] = mapped_column(Float)
    n_shapes: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    kernels_seen: Mapped[list[Any]] = mapped_column(default=list)
    resources: Mapped[list[Any] | None] = mapped_column(JSON)  # KernelResources per kernel (revision 0004)

    kernel: Mapped[Kernel] = relationship(back_populates="evaluations")
    shapes: Mapped[list[ShapeRow]] = relationship(
        back_populates="evaluation", order_by="ShapeRow.position", cascade="all, delete-orphan"
    )


class ShapeRow(Base):
    """Verification and timing of one evaluation at one shape.

    ``candidate`` / ``eager`` / ``compiled`` hold the full :class:`TimingStats` (median,
    mean, std, min, max, p10, p90, n_calls); their medians are also columns for sorting.
    """

    __tablename__ = "shape_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    shape: Mapped[str] = mapped_column(String(64))
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    trials: Mapped[int] = mapped_column(Integer, default=0)
    passed: Mapped[bool] = mapped_column(Boolean, default=False)
    max_abs_err: Mapped[float | None] = mapped_column(Float)
    max_rel_l2: Mapped[float | None] = mapped_column(Float)
    candidate: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    eager: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    compiled: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    candidate_median_ms: Mapped[float | None] = mapped_column(Float)
    eager_median_ms: Mapped[float | None] = mapped_column(Float)
    compiled_median_ms: Mapped[float | None] = mapped_column(Float)
    bytes_moved: Mapped[int | None] = mapped_column(BigInteger)
    flops: Mapped[int | None] = mapped_column(BigInteger)
    roofline_ms: Mapped[float | None] = mapped_column(Float)

    evaluation: Mapped[Evaluation] = relationship(back_populates="shapes")


class LLMCall(Base):
    """One request to a language model: what it cost and whether it failed (revision 0002)."""

    __tablename__ = "llm_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    kernel_id: Mapped[int | None] = mapped_column(ForeignKey("kernels.id"), index=True)  # what it produced
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    model: Mapped[str] = mapped_column(String(128))
    operator: Mapped[str | None] = mapped_column(String(32))
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    latency_s: Mapped[float | None] = mapped_column(Float)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)


class WorkClaim(Base):
    """Who evaluates one candidate at one setting in one scope, and whether it is done (revision 0004).

    The unique key makes a claim atomic on every backend: of several drivers inserting the same
    key, exactly one row exists and exactly one owner holds it. ``scope`` says what makes two
    evaluations the same work (harness version, GPU kind, policy): the same candidate on another
    GPU is new work. A ``running`` claim whose ``heartbeat_at`` is older than the lease belongs to
    a driver presumed dead, and may be taken over; a ``done`` claim points at its evaluation,
    written in the same transaction.
    """

    __tablename__ = "work_claims"
    __table_args__ = (
        UniqueConstraint("scope", "task_hash", "source_hash", "params_hash"),
        Index("ix_work_claims_owner_status", "owner", "status"),  # renew / release one driver's claims
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(255))
    task_hash: Mapped[str] = mapped_column(String(64))
    source_hash: Mapped[str] = mapped_column(String(64))
    params_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | done
    owner: Mapped[str] = mapped_column(String(128))  # the driver holding it (host:pid:token)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    evaluation_id: Mapped[int | None] = mapped_column(ForeignKey("evaluations.id"))
    attempts: Mapped[int] = mapped_column(Integer, default=1)  # times claimed: >1 after a driver was lost
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


class Admission(Base):
    """A candidate source the novelty filter let through for a task (revision 0004).

    The novelty filter's state lives here so that every driver, and a restarted one, refuses
    the same near-duplicates; ``fingerprint`` (the source without comments and spacing) is
    unique per task, so of two drivers admitting the same code only one row wins.
    """

    __tablename__ = "admissions"
    __table_args__ = (UniqueConstraint("task_hash", "fingerprint"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_hash: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    source_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
