"""Schema changes are migrations, and an old archive upgrades without losing a row."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from archive import Archive, KernelSpec, LLMCallRecord, head_revision
from archive.db import Database
from archive.migrate import current_revision, downgrade, include_name, upgrade
from archive.models import Base
from archive.testing import make_result, make_task
from autotuner.errors import ArchiveError
from old_rows import FIXTURE, TABLES, insert_old_rows, read_table, rows


def test_head_is_0005() -> None:
    assert head_revision() == "0005"


def test_models_match_the_migrated_schema(db_url: str) -> None:
    db = Database(db_url)
    upgrade(db.engine)
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name})
        diff = compare_metadata(context, Base.metadata)
    db.dispose()
    assert diff == [], "archive/models.py and the migrations disagree; add a migration"


def _snapshot(engine) -> dict[str, list[dict]]:  # noqa: ANN001
    old_columns = {name: list(rows()[name][0]) for name in TABLES}
    return {name: read_table(engine, name, old_columns[name]) for name in TABLES}


def test_upgrade_from_0001_keeps_every_row(db_url: str) -> None:
    db = Database(db_url)
    upgrade(db.engine, "0001")
    insert_old_rows(db.engine)
    before = _snapshot(db.engine)
    assert sum(len(v) for v in before.values()) == 16
    upgrade(db.engine)
    assert current_revision(db.engine) == "0005"
    assert _snapshot(db.engine) == before
    db.dispose()
    with Archive.open(db_url) as archive:  # and the upgraded archive works as a new one
        # the old rows' harness (1) is older than this one: their winner is listed, marked stale
        assert [(r.kernel_id, r.candidate_ms, r.stale) for r in archive.best(include_stale=True)] == [(2, 0.25, True)]
        assert [r.generation for r in archive.lineage(2)] == [-1, 0, 1]
        assert archive.result(1).shapes[0].candidate.median_ms == 0.5
        assert archive.result(1).resources == []  # older harnesses made no resource report (0004: NULL)
        task = make_task()
        archive.record(task, KernelSpec("// new\n"), make_result(task))
        archive.record_llm_call(LLMCallRecord(model="m", tokens_in=1))
        assert archive.stats()["evaluations"] == 4 and archive.stats()["llm_calls"] == 1


def test_downgrade_then_upgrade_again(db_url: str) -> None:
    db = Database(db_url)
    upgrade(db.engine, "0001")
    insert_old_rows(db.engine)
    before = _snapshot(db.engine)
    upgrade(db.engine)
    downgrade(db.engine, "0001")
    assert current_revision(db.engine) == "0001"
    upgrade(db.engine)
    assert _snapshot(db.engine) == before
    db.dispose()


def test_a_stored_0001_sqlite_archive_upgrades(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(FIXTURE.read_text())
    with Archive.open(str(path), create=False) as archive:
        assert archive.revision() == "0005"
        assert archive.stats()["evaluations"] == 3
        assert archive.kernel(3).evaluations[0].verdict == "rejected"
        assert [(r.kernel_id, r.stale) for r in archive.best(include_stale=True)] == [(2, True)]  # harness 1 rows


def test_a_database_from_a_newer_autotuner_is_refused(db_url: str) -> None:
    with Archive.open(db_url) as archive, archive.db.engine.begin() as conn:
        conn.execute(text("UPDATE autotuner_alembic_version SET version_num = '9999'"))
    with pytest.raises(ArchiveError, match="newer autotuner"):
        Archive.open(db_url)
