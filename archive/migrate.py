"""Bring any archive database to the newest schema with Alembic, in code.

``upgrade(engine)`` is called each time an archive is opened. It costs one small query when
the database is already current. Otherwise the upgrade runs in one transaction that first
takes a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so that several
processes opening a new archive at once create it exactly once.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine

from archive.db import writer
from autotuner.errors import ArchiveError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x6175746F74756E  # "autotun": pg_advisory_xact_lock key for schema changes


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config built in code (no alembic.ini), optionally bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.lru_cache(maxsize=1)
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "archive/migrations/versions holds no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision; None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
    # SQLite: the writer engine's BEGIN IMMEDIATE already holds the database's write lock.


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Migrate the database to ``revision`` (default: newest); returns the revision reached."""
    target = head_revision() if revision == "head" else revision
    if current_revision(engine) == target:
        return target
    try:
        with writer(engine).begin() as conn:
            _lock(conn)
            before = MigrationContext.configure(conn).get_current_revision()
            if before != target:
                log.info("archive schema: upgrading %s -> %s", before or "empty", target)
                command.upgrade(alembic_config(conn), target)
    except CommandError as e:
        raise ArchiveError(
            f"cannot migrate the archive: {e}. It may have been written by a newer autotuner; upgrade this one."
        ) from None
    return target


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate down to ``revision`` (tests and emergencies; data in dropped tables is lost)."""
    with writer(engine).begin() as conn:
        _lock(conn)
        command.downgrade(alembic_config(conn), revision)
