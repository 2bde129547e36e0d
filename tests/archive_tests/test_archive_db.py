"""Where the archive lives and how SQLite is set up (archive.db)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from archive import Archive, default_url, head_revision, redact, resolve_url
from archive.db import ENV_VAR, Database, sqlite_path
from autotuner.errors import ArchiveError, ArchiveUnreachableError


def test_url_precedence_option_then_environment_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert resolve_url(None) == default_url()
    assert default_url() == f"sqlite:///{Path('~/.local/share/autotuner/archive.db').expanduser()}"
    monkeypatch.setenv(ENV_VAR, "postgresql://u@h/db")
    assert resolve_url(None) == "postgresql+psycopg://u@h/db"
    assert resolve_url("sqlite:////x/a.db") == "sqlite:////x/a.db"


def test_a_plain_path_is_a_sqlite_file(tmp_path: Path) -> None:
    url = resolve_url(str(tmp_path / "a.db"))
    assert url == f"sqlite:///{tmp_path / 'a.db'}"
    assert sqlite_path(url) == tmp_path / "a.db"


def test_redact_hides_the_password() -> None:
    assert redact("postgresql+psycopg://u:s3cret@h:5432/db") == "postgresql+psycopg://u:***@h:5432/db"


def test_sqlite_pragmas(tmp_path: Path) -> None:
    db = Database(resolve_url(str(tmp_path / "a.db")))
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 10_000
    db.dispose()


def test_only_the_default_archive_folder_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("archive.db.DEFAULT_PATH", tmp_path / "deep" / "er" / "a.db")
    with Archive.open(str(tmp_path / "deep" / "er" / "a.db")) as archive:
        assert archive.revision() == head_revision()
    with pytest.raises(ArchiveUnreachableError, match="does not exist"):  # any other missing folder: a typo?
        Archive.open(str(tmp_path / "other" / "a.db"))


def test_uncreatable_default_folder_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr("archive.db.DEFAULT_PATH", blocker / "a.db")
    with pytest.raises(ArchiveUnreachableError, match="cannot create the archive folder"):
        Archive.open(str(blocker / "a.db"))


def test_foreign_keys_are_enforced(archive: Archive) -> None:
    from archive.models import Kernel

    with pytest.raises(ArchiveError, match="(?i)foreign key"):  # translated, on both backends
        with archive.db.write() as s:
            s.add(Kernel(task_id=999, source="", source_hash="x", params={}, params_hash="y"))
