"""Backends for the archive tests (the folder is not called tests/archive: with `tests/` on
sys.path, as pytest puts it for tests/conftest.py, that name would shadow the `archive`
package). The fixtures live in tests/archive_backends.py, shared with tests/migrations."""

from archive_backends import BACKENDS, archive, db_url, open_backend  # noqa: F401 - fixtures
