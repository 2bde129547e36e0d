"""Where optuna keeps the tuning studies: in the archive's PostgreSQL, shared, or in memory.

On PostgreSQL every driver tuning the same candidate (same scope, task and source) opens the
same study by name, so their trials add up to one search and one trial budget; the TPE
sampler runs with ``constant_liar=True`` so that trials in flight elsewhere count as bad
guesses instead of being proposed again. optuna's tables sit beside the archive's, with their
own ``alembic_version`` (the archive keeps its revision in ``autotuner_alembic_version``; see
``archive.migrate``). Trials send heartbeats (optuna's own mechanism), so the trials a killed
driver left running are failed by the next driver that opens the study.

On SQLite (one machine) studies stay in memory, as before: what was evaluated is in the
archive anyway and is told to the study again when tuning resumes.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import optuna

from autotuner.errors import ArchiveError

log = logging.getLogger(__name__)

# optuna says trial heartbeats are experimental and "supposed to be used with Study.optimize";
# ask/tell with a heartbeat thread of our own (``heartbeats`` below) is what they do here. Only
# these messages are silenced (not with catch_warnings, which is not thread-safe).
for _message in (r"Heartbeat of storage is supposed to be used with Study\.optimize",
                 r".*fail_stale_trials is experimental", r".*heartbeat_interval.*experimental"):
    warnings.filterwarnings("ignore", message=_message)

HEARTBEAT_S = 30  # optuna's heartbeat interval for a running trial
GRACE_S = 180  # a running trial silent this long is failed (its driver is gone)
MAX_NAME = 512  # optuna's studies.study_name column


def sampler(seed: int) -> optuna.samplers.TPESampler:
    """TPE that treats trials in flight (in this driver or another) as the worst value seen."""
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


class Studies:
    """Opens studies by name, from one optuna storage for the whole run (or from memory)."""

    def __init__(self, storage_url: str | None = None, seed: int = 0, *, heartbeat_s: int = HEARTBEAT_S,
                 grace_s: int = GRACE_S) -> None:
        self.seed = seed
        self.storage: optuna.storages.RDBStorage | None = None
        if storage_url is not None:
            self.storage = _rdb_storage(storage_url, heartbeat_s, grace_s)

    @property
    def shared(self) -> bool:
        return self.storage is not None

    def open(self, name: str) -> optuna.Study:
        """The study ``name`` (created on first use); a fresh in-memory one without a storage."""
        if self.storage is None:
            return optuna.create_study(direction="minimize", sampler=sampler(self.seed))
        if len(name) > MAX_NAME:
            raise ValueError(f"study name longer than {MAX_NAME} characters: {name[:80]}...")
        return optuna.create_study(study_name=name, storage=self.storage, load_if_exists=True,
                                   direction="minimize", sampler=sampler(self.seed))

    def close(self) -> None:
        if self.storage is not None:
            self.storage.remove_session()
            self.storage.engine.dispose()


def _rdb_storage(url: str, heartbeat_s: int, grace_s: int) -> optuna.storages.RDBStorage:
    """optuna's RDB storage on ``url``; translated errors. Creating its tables in a new database
    races when two drivers start at once (both run CREATE TABLE): the loser tries once more and
    finds them made."""
    import sqlalchemy.exc

    for attempt in (1, 2):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True},
                                              heartbeat_interval=heartbeat_s, grace_period=grace_s)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            if attempt == 2:
                reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
                raise ArchiveError(f"cannot keep optuna's studies in the archive's database: {reason}") from None
            log.info("optuna's tables are being created by another driver; trying again")
            time.sleep(0.5)
    raise AssertionError("unreachable")


def _heartbeat_interval(study: optuna.Study) -> int | None:
    storage = study._storage  # noqa: SLF001 - optuna exposes heartbeats only on the storage
    return getattr(storage, "get_heartbeat_interval", lambda: None)()


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail the running trials of drivers that stopped sending heartbeats (none in memory)."""
    if _heartbeat_interval(study) is not None:
        optuna.storages.fail_stale_trials(study)


@contextmanager
def heartbeats(study: optuna.Study, trials: list[Any]) -> Iterator[None]:
    """Send optuna heartbeats for ``trials`` while the block runs (their evaluation)."""
    storage = study._storage  # noqa: SLF001
    interval = _heartbeat_interval(study)
    if not interval or not trials:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            try:
                for trial in trials:
                    storage.record_heartbeat(trial._trial_id)  # noqa: SLF001
            except Exception as exc:  # noqa: BLE001 - a missed beat is survivable; the grace period is long
                log.warning("could not send optuna heartbeats: %s", exc)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, daemon=True, name="optuna-heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
