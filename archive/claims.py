"""Work shared between drivers: claims on (candidate, setting) and the novelty filter's state.

A driver about to evaluate a candidate at some settings first *claims* each one. The claim is
one row under a unique key (scope, task, source, parameters), so on SQLite (one writer at a
time, ``BEGIN IMMEDIATE``) and on PostgreSQL (``INSERT ... ON CONFLICT DO NOTHING``, then a
compare-and-set ``UPDATE`` that re-checks its condition on the committed row) exactly one
driver holds it. The holder renews ``heartbeat_at`` while it works; a claim not renewed within
the lease belongs to a driver presumed dead and is taken over by the next one who asks. The
evaluation's row and the claim's ``done`` mark are written in one transaction
(``Archive.record(..., claim_id=...)``), so a result is never recorded without its claim being
closed, nor a claim closed without its result.

Times come from the database server where there is one (PostgreSQL's ``now()``), so drivers
on machines whose clocks disagree still agree on whose lease ran out.

Each function works inside the caller's transaction; callers outside the archive reach them
through ``Archive``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from archive.convert import params_hash
from archive.history import HistoryItem, evaluation_items
from archive.models import Admission, Evaluation, WorkClaim, utcnow
from archive.store import _insert_ignore

log = logging.getLogger(__name__)

MINE, DONE, HELD = "mine", "done", "held"


@dataclass(frozen=True)
class ClaimState:
    """What a claim attempt found for one setting.

    ``mine``: the caller holds it now and must evaluate it (then record it with ``claim_id``,
    or release it). ``done``: it was evaluated; ``evaluation_id`` / ``kernel_id`` say where.
    ``held``: another driver (``owner``) is evaluating it; ``silent_s`` is how long since its
    last heartbeat.
    """

    params: dict[str, Any]
    state: str
    claim_id: int
    owner: str = ""
    evaluation_id: int | None = None
    kernel_id: int | None = None
    attempts: int = 1
    silent_s: float = 0.0


@dataclass(frozen=True)
class AdmittedSource:
    """One source the novelty filter admitted for a task (the filter's shared state)."""

    id: int
    source_hash: str
    source: str
    run_id: int | None = field(default=None, compare=False)


def _now(session: Session) -> datetime:
    """The database server's clock where there is a server; this machine's for SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return session.scalar(select(func.now()))
    return utcnow()


def _aware(value: datetime) -> datetime:
    """``value`` with its zone (SQLite hands times back without one; they are UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def claim(session: Session, scope: str, task_hash: str, source_hash: str, settings: Sequence[dict[str, Any]],
          owner: str, run_id: int | None, lease_s: float) -> list[ClaimState]:
    """Claim each setting of one candidate for ``owner``; one state per setting, in order.

    A setting ``owner`` already holds comes back ``held`` (it is being evaluated; wait for it),
    never ``mine`` twice: one driver's threads do not evaluate it twice either.

    The rows are taken in one order (by params hash) whatever the caller's order: two drivers
    claiming overlapping settings in one transaction each then wait on the unique index in the
    same order and cannot deadlock (PostgreSQL aborted one of two such transactions, "deadlock
    detected", in CI on 2026-12-02, and a driver died of it).
    """
    now = _now(session)
    cutoff = now - timedelta(seconds=lease_s)
    hashes = [params_hash(params) for params in settings]
    states: list[ClaimState | None] = [None] * len(settings)
    for i in sorted(range(len(settings)), key=hashes.__getitem__):
        params = settings[i]
        key = {"scope": scope, "task_hash": task_hash, "source_hash": source_hash, "params_hash": hashes[i]}
        where = [getattr(WorkClaim, k) == v for k, v in key.items()]
        taken = _insert_ignore(session, WorkClaim, {**key, "status": "running", "owner": owner, "run_id": run_id,
                                                    "attempts": 1, "claimed_at": now, "heartbeat_at": now}, list(key))
        if not taken:  # someone has it: take it over only if its holder fell silent for a whole lease
            taken = bool(session.execute(
                update(WorkClaim)
                .where(*where, WorkClaim.status == "running", WorkClaim.heartbeat_at < cutoff)
                .values(attempts=WorkClaim.attempts + 1, owner=owner, run_id=run_id, heartbeat_at=now, claimed_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount)
        found, kernel_id = session.execute(select(WorkClaim, Evaluation.kernel_id)
                                           .outerjoin(Evaluation, Evaluation.id == WorkClaim.evaluation_id)
                                           .where(*where)).one()
        if found.status == "done":
            states[i] = ClaimState(dict(params), DONE, found.id, found.owner, found.evaluation_id, kernel_id,
                                   found.attempts)
        elif taken:
            if found.attempts > 1:
                log.info("took over claim %s (attempt %d): its driver fell silent", found.id, found.attempts)
            states[i] = ClaimState(dict(params), MINE, found.id, owner, attempts=found.attempts)
        else:  # held by a live driver; by this very owner too, when it is evaluating it right now
            silent = (now - _aware(found.heartbeat_at)).total_seconds()
            states[i] = ClaimState(dict(params), HELD, found.id, found.owner, attempts=found.attempts,
                                   silent_s=max(0.0, silent))
    return [state for state in states if state is not None]


def complete(session: Session, claim_id: int, evaluation_id: int, owner: str) -> None:
    """Mark a claim done with its evaluation (inside the transaction that wrote the evaluation)."""
    previous = session.scalar(select(WorkClaim.owner).where(WorkClaim.id == claim_id))
    if previous is None:
        log.warning("claim %s was released before its result was recorded (was the run resumed elsewhere "
                    "while this driver still ran?); evaluation %s is kept", claim_id, evaluation_id)
        return
    if previous != owner:
        log.warning("claim %s passed to %s while %s evaluated it (a heartbeat stalled for a whole lease); "
                    "evaluation %s is kept", claim_id, previous, owner, evaluation_id)
    session.execute(update(WorkClaim).where(WorkClaim.id == claim_id)
                    .values(status="done", evaluation_id=evaluation_id, owner=owner, heartbeat_at=_now(session))
                    .execution_options(synchronize_session=False))


def renew(session: Session, owner: str) -> int:
    """Refresh the heartbeat of every running claim ``owner`` holds; returns how many."""
    done = session.execute(update(WorkClaim).where(WorkClaim.owner == owner, WorkClaim.status == "running")
                           .values(heartbeat_at=_now(session)).execution_options(synchronize_session=False))
    return done.rowcount or 0


def release(session: Session, owner: str, claim_ids: Sequence[int] | None = None) -> int:
    """Give back running claims of ``owner`` (all of them, or ``claim_ids``) unevaluated."""
    stmt = delete(WorkClaim).where(WorkClaim.owner == owner, WorkClaim.status == "running")
    if claim_ids is not None:
        if not claim_ids:
            return 0
        stmt = stmt.where(WorkClaim.id.in_(list(claim_ids)))
    return session.execute(stmt.execution_options(synchronize_session=False)).rowcount or 0


def release_run(session: Session, run_id: int, keep_owner: str | None = None) -> int:
    """Give back the running claims of run ``run_id`` held by anyone but ``keep_owner``: what its
    killed driver left in flight, freed at once on ``--resume`` instead of after the lease."""
    stmt = delete(WorkClaim).where(WorkClaim.run_id == run_id, WorkClaim.status == "running")
    if keep_owner is not None:
        stmt = stmt.where(WorkClaim.owner != keep_owner)
    return session.execute(stmt.execution_options(synchronize_session=False)).rowcount or 0


def finished(session: Session, scope: str, task_hash: str) -> list[HistoryItem]:
    """Every evaluation done under a claim of ``scope`` for the task, oldest first."""
    ids = select(WorkClaim.evaluation_id).where(WorkClaim.scope == scope, WorkClaim.task_hash == task_hash,
                                               WorkClaim.status == "done")
    stmt = (select(Evaluation).where(Evaluation.id.in_(ids)).order_by(Evaluation.id)
            .options(selectinload(Evaluation.shapes)))
    return evaluation_items(session, list(session.scalars(stmt)))


@dataclass(frozen=True)
class ClaimRow:
    """A claim as stored (for tests, benchmarks and ``archive stats``)."""

    id: int
    scope: str
    task_hash: str
    source_hash: str
    params_hash: str
    status: str
    owner: str
    run_id: int | None
    evaluation_id: int | None
    attempts: int


def claims_of(session: Session, run_id: int | None = None) -> list[ClaimRow]:
    stmt = select(WorkClaim).order_by(WorkClaim.id)
    if run_id is not None:
        stmt = stmt.where(WorkClaim.run_id == run_id)
    return [ClaimRow(c.id, c.scope, c.task_hash, c.source_hash, c.params_hash, c.status, c.owner, c.run_id,
                     c.evaluation_id, c.attempts) for c in session.scalars(stmt)]


def admit(session: Session, task_hash: str, fingerprint: str, source_hash: str, source: str,
          run_id: int | None) -> str:
    """Record that ``source`` was admitted for the task, unless code with its fingerprint was.

    Returns the source hash of the admission that holds the fingerprint: the caller's own
    ``source_hash`` when it is the first (or the same source again), another when a
    differently written copy of the same code came first.
    """
    key = {"task_hash": task_hash, "fingerprint": fingerprint}
    _insert_ignore(session, Admission, {**key, "source_hash": source_hash, "source": source, "run_id": run_id,
                                        "created_at": utcnow()}, list(key))
    return session.scalars(select(Admission.source_hash).filter_by(**key)).one()


def admitted(session: Session, task_hash: str, after_id: int = 0) -> list[AdmittedSource]:
    """Sources admitted for the task with an id above ``after_id`` (a driver's sync point), in order."""
    stmt = (select(Admission.id, Admission.source_hash, Admission.source, Admission.run_id)
            .where(Admission.task_hash == task_hash, Admission.id > after_id).order_by(Admission.id))
    return [AdmittedSource(*row) for row in session.execute(stmt)]
