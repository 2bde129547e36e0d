"""Where the archive lives and how to talk to it: URL resolution, engines, transactions.

The URL comes from the ``--db`` option, else ``AUTOTUNER_DB_URL``, else the default SQLite
file ``~/.local/share/autotuner/archive.db``. A bare path means a SQLite file; a
``postgresql://`` URL uses the psycopg 3 driver.

SQLite is opened in WAL mode with a busy timeout and foreign keys on, and write transactions
start with ``BEGIN IMMEDIATE``: several writer processes then queue for the write lock
instead of failing half-way with "database is locked" when a read upgrades to a write.
SQLAlchemy's connection errors are translated here into :class:`ArchiveUnreachableError`,
with the password left out of every message.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock (one process opens a new archive at a time)
    fcntl = None  # type: ignore[assignment]

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from autotuner.errors import ArchiveError, ArchiveUnreachableError

log = logging.getLogger(__name__)

ENV_VAR = "AUTOTUNER_DB_URL"
DEFAULT_PATH = Path("~/.local/share/autotuner/archive.db")
SQLITE_BUSY_TIMEOUT_S = 60.0
PG_CONNECT_TIMEOUT_S = 10


def default_url() -> str:
    return f"sqlite:///{DEFAULT_PATH.expanduser()}"


def resolve_url(url: str | None = None) -> str:
    """The archive URL: ``url`` if given, else ``$AUTOTUNER_DB_URL``, else the default file."""
    chosen = url or os.environ.get(ENV_VAR) or default_url()
    if "://" not in chosen:  # a plain path: a SQLite file
        return f"sqlite:///{Path(chosen).expanduser().resolve()}"
    if chosen.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + chosen.split("://", 1)[1]
    return chosen


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except exc.ArgumentError:
        raise ArchiveUnreachableError(
            f"not a database URL: {url!r}; expected sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
        ) from None


def redact(url: str | URL) -> str:
    """The URL with its password replaced by ``***``: safe for messages and logs."""
    parsed = url if isinstance(url, URL) else _parse(url)
    return parsed.render_as_string(hide_password=True)


def sqlite_path(url: str | URL) -> Path | None:
    """The file behind a SQLite URL; None for other backends and in-memory databases."""
    parsed = url if isinstance(url, URL) else _parse(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event issues BEGIN itself
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")  # first: the rest may wait
    if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        # Switching to WAL takes an exclusive lock that the busy handler does not always wait for;
        # Archive.open makes the first switch under first_open_lock, after which WAL is a file property.
        cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = FULL")  # a commit survives power loss, not only a kill
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "")
    conn.exec_driver_sql(f"BEGIN {mode}".strip())


def check_sqlite_target(url: str | URL) -> Path | None:
    """The SQLite file behind ``url``, refused where it could only lose data.

    An in-memory database (``sqlite://``) vanishes when the command ends; a path in a folder
    that does not exist is most likely a typo, so it is refused rather than created. Only the
    default archive's folder (``~/.local/share/autotuner``) is created on first use.
    """
    parsed = url if isinstance(url, URL) else _parse(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    path = sqlite_path(parsed)
    if path is None:
        raise ArchiveUnreachableError(
            f"{redact(parsed)} is an in-memory database: everything recorded would be lost when the command "
            "ends. Give a file path (--db PATH) or a PostgreSQL URL"
        )
    if not path.parent.is_dir():
        if path.resolve() != DEFAULT_PATH.expanduser().resolve():
            raise ArchiveUnreachableError(
                f"the folder {path.parent} of the archive {path} does not exist (not created, in case of a typo): "
                "create it first, or point --db / $AUTOTUNER_DB_URL elsewhere"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ArchiveUnreachableError(f"cannot create the archive folder {path.parent}: {e.strerror}") from None
    return path


@contextmanager
def first_open_lock(path: Path | None) -> Iterator[None]:
    """Serialise opening (WAL switch, schema creation) of the SQLite file ``path`` across processes.

    Two processes creating a new archive at once would otherwise race: one fails with "database
    is locked" at the WAL switch, or with "table already exists". The lock is an advisory
    ``flock`` on the archive's folder (no extra file); other backends need none.
    """
    if path is None or fcntl is None:
        yield
        return
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the pragmas and timeouts the archive relies on."""
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        check_sqlite_target(parsed)
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        return create_engine(
            parsed, pool_pre_ping=True, connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S}
        )
    raise ArchiveUnreachableError(f"unsupported archive backend {backend!r} in {redact(parsed)}; use SQLite or PostgreSQL")


def writer(engine: Engine) -> Engine:
    """The same engine, whose transactions take the write lock at once on SQLite."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(sqlite_begin="IMMEDIATE")
    return engine


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def translate(error: exc.SQLAlchemyError, url: str | URL) -> ArchiveError:
    """Turn a SQLAlchemy error into the project's own, naming the database without secrets."""
    where = redact(url)
    reason = _first_line(error)
    password = (url if isinstance(url, URL) else _parse(url)).password
    if password:
        reason = reason.replace(str(password), "***")
    if isinstance(error, (exc.OperationalError, exc.InterfaceError)) or (
        isinstance(error, exc.DatabaseError) and "not a database" in reason
    ):
        parsed = url if isinstance(url, URL) else _parse(url)
        hint = (
            f"Check the path (--db or ${ENV_VAR}) and that the file is an archive, not some other file"
            if parsed.get_backend_name() == "sqlite"
            else f"Check that the server is running and the URL is right (--db or ${ENV_VAR})"
        )
        return ArchiveUnreachableError(f"cannot use the archive at {where}: {reason}. {hint}.")
    return ArchiveError(f"archive at {where}: {reason}")


T = TypeVar("T")
# SQLSTATEs of a transaction the server aborted to resolve a conflict with another one: run it
# again (serialization failure, deadlock detected)
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})


def conflict_abort(error: exc.SQLAlchemyError) -> bool:
    """Whether the server aborted the transaction to break a deadlock or serialization conflict."""
    return getattr(getattr(error, "orig", None), "sqlstate", None) in _RETRY_SQLSTATES


class Database:
    """An engine plus session factories; every session scope translates database errors.

    Thread-safe as SQLAlchemy engines are; sessions are not shared between threads. Safe to
    use from several processes at once (each opens its own ``Database``).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._write = sessionmaker(writer(self.engine), expire_on_commit=False)
        self._read = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back whole if it raises."""
        try:
            with self._write() as session, session.begin():
                yield session
        except exc.SQLAlchemyError as e:
            raise translate(e, self.url) from e

    def write_retrying(self, work: Callable[[Session], T], attempts: int = 5) -> T:
        """``work(session)`` in one write transaction, run again whole (after a short random
        pause) when the server aborted it to break a deadlock or a serialization conflict with
        another driver's, as PostgreSQL asks of its clients; ``work`` must touch nothing outside
        the session. Other errors, and the last abort, are raised as ``write`` raises them."""
        for attempt in range(1, attempts + 1):
            try:
                with self._write() as session, session.begin():
                    return work(session)
            except exc.SQLAlchemyError as e:
                if attempt < attempts and conflict_abort(e):
                    log.info("archive transaction aborted by the server (%s); attempt %d of %d",
                             _first_line(e), attempt + 1, attempts)
                    time.sleep(random.uniform(0.01, 0.05) * attempt)
                    continue
                raise translate(e, self.url) from e
        raise AssertionError("unreachable")  # the loop returns or raises

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (rolled back at the end)."""
        try:
            with self._read() as session:
                yield session
        except exc.SQLAlchemyError as e:
            raise translate(e, self.url) from e

    def dispose(self) -> None:
        self.engine.dispose()
