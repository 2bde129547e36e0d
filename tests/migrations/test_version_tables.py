"""The archive's migrations and optuna's share one database without stepping on each other.

optuna's RDB storage (the studies of a cluster run) runs its own Alembic history and keeps its
revision in Alembic's default ``alembic_version`` table; the archive keeps its revision in
``autotuner_alembic_version`` and compares only its own tables. Either may come first.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from archive import Archive, head_revision, resolve_url
from archive.db import Database
from archive.migrate import LEGACY_VERSION_TABLE, VERSION_TABLE, include_name, upgrade
from archive.models import Base
from old_rows import FIXTURE

OPTUNA_TABLES = {"studies", "trials", "trial_params", "version_info"}


def _optuna_study(url: str, name: str = "s") -> optuna.Study:
    storage = optuna.storages.RDBStorage(resolve_url(url))
    study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True)
    study.add_trial(optuna.trial.create_trial(params={"BLOCK": 128}, value=1.0, distributions={
        "BLOCK": optuna.distributions.CategoricalDistribution([128, 256])}))
    storage.engine.dispose()
    return study


def _tables_and_revisions(url: str) -> tuple[set[str], str | None, str | None]:
    engine = create_engine(resolve_url(url))
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        ours = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
        theirs = MigrationContext.configure(conn).get_current_revision()
    engine.dispose()
    return tables, ours, theirs


def _archive_diff(url: str) -> list:
    db = Database(resolve_url(url))
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name})
        diff = compare_metadata(context, Base.metadata)
    db.dispose()
    return diff


def test_optuna_after_the_archive(db_url: str) -> None:
    with Archive.open(db_url):
        pass
    _optuna_study(db_url)
    tables, ours, theirs = _tables_and_revisions(db_url)
    assert OPTUNA_TABLES <= tables and set(Base.metadata.tables) <= tables
    assert ours == head_revision() and theirs is not None and theirs != ours
    assert _archive_diff(db_url) == [], "the archive's comparison must not see optuna's tables"
    with Archive.open(db_url) as archive:  # both open again, each at its own revision
        assert archive.revision() == head_revision()
    assert len(_optuna_study(db_url).trials) == 2


def test_the_archive_after_optuna(db_url: str) -> None:
    _optuna_study(db_url)
    with Archive.open(db_url) as archive:
        assert archive.revision() == head_revision()
        assert archive.stats()["evaluations"] == 0
    tables, ours, theirs = _tables_and_revisions(db_url)
    assert ours == head_revision() and theirs not in (None, head_revision())
    assert len(_optuna_study(db_url).trials) == 2


def test_an_archive_from_before_0004_moves_its_revision_to_its_own_table(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(FIXTURE.read_text())  # revision 0001, in alembic_version
    with Archive.open(str(path), create=False) as archive:
        assert archive.revision() == head_revision()
    tables, ours, _ = _tables_and_revisions(f"sqlite:///{path}")
    assert VERSION_TABLE in tables and LEGACY_VERSION_TABLE not in tables and ours == head_revision()
    _optuna_study(f"sqlite:///{path}")  # and now optuna can have alembic_version to itself
    assert _tables_and_revisions(f"sqlite:///{path}")[1] == head_revision()


def test_a_legacy_table_holding_someone_elses_revision_is_left_alone(db_url: str) -> None:
    db = Database(resolve_url(db_url))
    with db.engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {LEGACY_VERSION_TABLE} (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        conn.execute(text(f"INSERT INTO {LEGACY_VERSION_TABLE} VALUES ('v3.2.0.a')"))
    upgrade(db.engine)
    db.dispose()
    tables, ours, theirs = _tables_and_revisions(db_url)
    assert ours == head_revision() and theirs == "v3.2.0.a"
