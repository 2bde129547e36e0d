"""Bring any archive database to the newest schema with Alembic, in code.

``upgrade(engine)`` is called each time an archive is opened. It costs one small query when
the database is already current. Otherwise the upgrade runs in one transaction that first
takes a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so that several
processes opening a new archive at once create it exactly once.

The archive's revision lives in its own table, ``autotuner_alembic_version``, not in Alembic's
default ``alembic_version``: optuna's RDB storage (the studies of a cluster run, kept in the
archive's database) runs its own Alembic migrations and hard-codes that default name, so the
two histories would overwrite each other's revision. Archives made before this change have
their ``alembic_version`` renamed on open, when the revision it holds is one of ours.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, inspect

from archive.db import writer
from archive.models import Base
from autotuner.errors import ArchiveError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "autotuner_alembic_version"  # the archive's revision (optuna keeps "alembic_version")
LEGACY_VERSION_TABLE = "alembic_version"  # where archives before revision 0004 kept it
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


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic's filter: only the archive's own tables. The database may also hold optuna's
    (``studies``, ``trials``, ..., and its own ``alembic_version``), which optuna migrates;
    comparing the archive's models with the database must not see them as tables to drop."""
    return type_ != "table" or name in Base.metadata.tables


@functools.lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    return frozenset(r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions())


def _context(conn: Connection, table: str = VERSION_TABLE) -> MigrationContext:
    return MigrationContext.configure(conn, opts={"version_table": table})


def _legacy_revision(conn: Connection) -> str | None:
    """The archive revision an archive from before 0004 keeps in ``alembic_version`` (None if
    that table is missing, empty, or holds another project's revision, such as optuna's)."""
    if not inspect(conn).has_table(LEGACY_VERSION_TABLE):
        return None
    revision = _context(conn, LEGACY_VERSION_TABLE).get_current_revision()
    return revision if revision in known_revisions() else None


def _revision(conn: Connection) -> str | None:
    return _context(conn).get_current_revision() or _legacy_revision(conn)


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision; None for an empty database."""
    with engine.connect() as conn:
        return _revision(conn)


def _adopt_legacy_version_table(conn: Connection) -> None:
    """Move an old archive's revision out of ``alembic_version`` into the archive's own table."""
    if _context(conn).get_current_revision() is not None or _legacy_revision(conn) is None:
        return
    log.info("archive schema: moving the revision from %s to %s", LEGACY_VERSION_TABLE, VERSION_TABLE)
    conn.exec_driver_sql(f"ALTER TABLE {LEGACY_VERSION_TABLE} RENAME TO {VERSION_TABLE}")


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
            _adopt_legacy_version_table(conn)
            before = _context(conn).get_current_revision()
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
        _adopt_legacy_version_table(conn)
        command.downgrade(alembic_config(conn), revision)
