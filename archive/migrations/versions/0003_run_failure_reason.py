"""Why a run failed: ``runs.error``, so that ``autotuner tune --resume`` can say what to change.

Revision ID: 0003
Revises: 0002
Create Date: 2026-02-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("error", sa.Text, nullable=True))


def downgrade() -> None:
    # A plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): a batch copy of `runs` would trip the
    # foreign keys that kernels, evaluations and LLM calls hold on it.
    op.drop_column("runs", "error")
