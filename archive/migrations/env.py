"""Alembic environment for the archive.

The project runs migrations in code (``archive.migrate.upgrade``), handing this script an
open connection inside a transaction that already holds the migration lock; this script never
configures logging (the library must not). Run by hand, it reads the URL the usual way:
``alembic -x url=sqlite:///path/archive.db upgrade head`` with ``script_location`` pointing here.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from archive.migrate import VERSION_TABLE, include_name
from archive.models import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,  # not "alembic_version": optuna's RDB storage uses that name
        include_name=include_name,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTER goes through copies
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from archive.db import make_engine, resolve_url

    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    engine = make_engine(resolve_url(url))
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():  # pragma: no cover - SQL scripts are not part of the workflow
    raise SystemExit("offline (--sql) migrations are not supported for the archive")
run_migrations_online()
