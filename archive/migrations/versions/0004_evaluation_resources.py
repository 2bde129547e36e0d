"""The resource report of an evaluation: registers, spills and shared memory per kernel.

Revision ID: 0004
Revises: 0003
Create Date: 2026-03-02

``evaluations.resources`` holds ``EvalResult.resources`` (one JSON object per kernel the
candidate launched through the runtime), so feedback read back from the archive (a resumed
run, another machine's import) shows the model what the first evaluation showed it. Older
rows keep NULL: their harness made no report.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("evaluations", sa.Column("resources", sa.JSON, nullable=True))


def downgrade() -> None:
    # A plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), as in 0003: a batch copy of
    # `evaluations` would trip the foreign keys shape_results hold on it.
    op.drop_column("evaluations", "resources")
