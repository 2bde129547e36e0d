"""Archive backend fixtures shared by tests/archive_tests and tests/migrations: every test taking
``db_url`` or ``archive`` runs on SQLite and on PostgreSQL. PostgreSQL skips with a reason where
``$AUTOTUNER_TEST_POSTGRES_URL`` is unset, except in CI (``$CI`` set), where .ci/run starts a
server and a skip would hide a gap."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from archive import Archive
from archive.testing import BackendUnavailable, backend_url

BACKENDS = ["sqlite", "postgresql"]


def open_backend(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[str]:
    try:
        with backend_url(request.param, tmp_path) as url:
            yield url
    except BackendUnavailable as e:
        if os.environ.get("CI"):
            pytest.fail(str(e))
        pytest.skip(str(e))


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[str]:
    yield from open_backend(request, tmp_path)


@pytest.fixture
def archive(db_url: str) -> Iterator[Archive]:
    with Archive.open(db_url) as a:
        yield a
