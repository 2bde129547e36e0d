"""Fixtures for the browser tests: a demo archive on each backend, served on a free port.
Skipped with a reason where the web extra is not installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("starlette", reason="the archive browser needs the web extra: pip install -e '.[web]'")

from archive import Archive  # noqa: E402
from archive_backends import BACKENDS, open_backend  # noqa: E402
from web_support import Demo, fill, running_server  # noqa: E402


@pytest.fixture(scope="module", params=BACKENDS)
def demo_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from open_backend(request, tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def demo_archive(demo_url: str) -> Iterator[tuple[Archive, Demo]]:
    with Archive.open(demo_url) as archive:
        yield archive, fill(archive)


@pytest.fixture(scope="module")
def served(demo_archive: tuple[Archive, Demo]) -> Iterator[tuple[str, Archive, Demo]]:
    archive, demo = demo_archive
    with running_server(archive) as base:
        yield base, archive, demo
