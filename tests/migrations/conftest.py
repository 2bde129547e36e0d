"""Backends for the migration tests; the fixtures live in tests/archive_backends.py."""

from archive_backends import BACKENDS, archive, db_url, open_backend  # noqa: F401 - fixtures
