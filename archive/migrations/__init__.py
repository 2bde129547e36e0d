"""Alembic migrations of the archive schema (``versions/``), run in code by ``archive.migrate``."""
