"""Fixtures for the engine tests (defined in engine_support, importable by the tests)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_support import _cache_dir, archive, record, tuned_archive, verifier  # noqa: E402,F401
