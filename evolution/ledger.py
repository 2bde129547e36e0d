"""Shared work, seen from one driver: what was evaluated, what is being evaluated, by whom.

Before a driver evaluates a candidate at some settings it claims them in the archive
(``Archive.claim_work``): each setting comes back *mine* (evaluate it, then record it with its
claim), *done* (another driver, or this run before a restart, evaluated it: take its result from
the archive) or *held* (a live driver is evaluating it: wait, then take its result). A
heartbeat thread keeps this driver's claims alive; a driver that stops renewing for a whole
lease is presumed dead and its claims are taken over by whoever asks next, and ``--resume``
frees its own run's claims at once. So two drivers on one archive, or a restarted driver,
never evaluate the same candidate at the same setting in the same scope twice.

The scope is what makes two evaluations the same work: the pool's harness version and GPU
kind, and the task's policy. The same candidate on another GPU kind is new work.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from autotuner.errors import ArchiveError
from autotuner.evaluator.verdict import EvalResult
from autotuner.tasks import Task
from evolution.novelty import SharedNoveltyFilter

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 120.0


@dataclass
class Claimed:
    """The outcome of claiming one candidate's settings (each setting in exactly one list)."""

    mine: list[Any] = field(default_factory=list)  # ClaimState: evaluate, then record with it
    done: list[tuple[Any, EvalResult]] = field(default_factory=list)  # (ClaimState, its stored result)
    held: list[Any] = field(default_factory=list)  # ClaimState: being evaluated by a live driver


def new_owner() -> str:
    """This driver's name in the claims: host, process and a token (a restart is a new owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class WorkLedger:
    """One driver's claims in the archive, kept alive by a heartbeat thread.

    Thread-safe: the loop's threads claim and release through one ledger. ``start`` begins the
    heartbeat; ``close`` stops it and gives back every claim still running (work this driver
    will not finish), so another driver need not wait out the lease.
    """

    def __init__(self, archive: Any, run_id: int | None, scope: str, *, lease_s: float = DEFAULT_LEASE_S,
                 poll_s: float = 0.25, owner: str | None = None) -> None:
        if lease_s <= 0:
            raise ValueError(f"lease_s must be positive, got {lease_s}")
        self.archive = archive
        self.run_id = run_id
        self.scope = scope
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.owner = owner or new_owner()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._novelty: dict[str, SharedNoveltyFilter] = {}
        self._lock = threading.Lock()

    # -- lifetime ----------------------------------------------------------------------------
    def start(self) -> WorkLedger:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, daemon=True, name="ledger-heartbeat")
            self._thread.start()
        return self

    def _beat(self) -> None:
        interval = max(0.05, self.lease_s / 4)  # three beats may be lost before the lease runs out
        while not self._stop.wait(interval):
            try:
                self.archive.renew_claims(self.owner)
            except ArchiveError as exc:  # the database is away: keep trying; others take over after the lease
                log.warning("could not renew this driver's claims (retrying in %.0f s): %s", interval, exc)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            released = self.archive.release_claims(self.owner)
        except ArchiveError as exc:
            log.warning("could not release this driver's claims (they lapse after %.0f s): %s", self.lease_s, exc)
            return
        if released:
            log.info("released %d claims this driver did not finish", released)

    # -- claims ------------------------------------------------------------------------------
    def task_scope(self, task: Task) -> str:
        return f"{self.scope}, {task.policy}"

    def claim(self, task: Task, digest: str, settings: list[dict[str, Any]]) -> Claimed:
        """Claim the settings of candidate ``digest`` for ``task``; results of done ones are loaded."""
        out = Claimed()
        if not settings:
            return out
        states = self.archive.claim_work(self.task_scope(task), task.content_hash, digest, settings, self.owner,
                                         self.run_id, self.lease_s)
        for state in states:
            if state.state == "mine":
                out.mine.append(state)
            elif state.state == "done":
                out.done.append((state, self.archive.result(state.evaluation_id)))
            else:
                out.held.append(state)
        return out

    def release(self, states: list[Any]) -> None:
        """Give back claims this driver will not evaluate (budget spent, an error)."""
        ids = [s.claim_id for s in states]
        if ids:
            self.archive.release_claims(self.owner, ids)

    def wait(self, held: list[Any], waited_s: float) -> float:
        """Sleep a little while other drivers finish ``held``; returns the new total waited."""
        if waited_s == 0.0 or int(waited_s // 60) != int((waited_s + self.poll_s) // 60):  # then once a minute
            owners = sorted({s.owner for s in held})
            log.info("waiting for %d settings being evaluated by %s", len(held), ", ".join(owners))
        time.sleep(self.poll_s)
        return waited_s + self.poll_s

    def finished(self, task: Task) -> list[Any]:
        """Every evaluation of ``task`` done in this scope, by any driver (``archive.HistoryItem``)."""
        return self.archive.finished_work(self.task_scope(task), task.content_hash)

    def release_run(self, run_id: int) -> int:
        """Free the claims a killed driver of run ``run_id`` left running (``--resume``)."""
        return self.archive.release_run_claims(run_id, keep_owner=self.owner)

    # -- novelty -----------------------------------------------------------------------------
    def novelty(self, task: Task) -> SharedNoveltyFilter:
        """The task's novelty filter, its state shared through the archive."""
        with self._lock:
            found = self._novelty.get(task.content_hash)
            if found is None:
                found = self._novelty[task.content_hash] = SharedNoveltyFilter(self.archive, task.content_hash,
                                                                               self.run_id)
            return found
