"""Fixtures for the export tests (defined in export_support, importable by the tests)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from export_support import _cache_dir, archive, db_url, four_ops, record  # noqa: E402,F401
