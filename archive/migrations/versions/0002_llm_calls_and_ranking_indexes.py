"""LLM call accounting, and the indexes that make best / leaderboard fast.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-21

``ix_evaluations_ranking`` serves "current, accepted, per task, GPU and policy, fastest
first" (covering, so the first winner of each group is one index probe);
``ix_evaluations_kernel_gpu`` replaces the plain kernel_id index and answers "has this kernel
been rejected / re-verified on this GPU by this harness" from the index alone;
``ix_evaluations_scope`` serves the leaderboard's per-GPU task counts.
``autotuner bench archive`` measures best and leaderboard with and without them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

RANKING_INDEXES = {
    "ix_evaluations_ranking": [
        "harness_version", "verdict", "task_id", "gpu_name", "policy", "candidate_median_ms", "kernel_id",
    ],
    "ix_evaluations_kernel_gpu": ["kernel_id", "gpu_name", "harness_version", "verdict"],
    "ix_evaluations_scope": ["harness_version", "gpu_name", "policy", "task_id"],
}


def upgrade() -> None:
    op.create_table(
        "llm_calls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", sa.String(32), nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("kernel_id", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("operator", sa.String(32), nullable=True),
        sa.Column("tokens_in", sa.Integer, nullable=False),
        sa.Column("tokens_out", sa.Integer, nullable=False),
        sa.Column("latency_s", sa.Float, nullable=True),
        sa.Column("cost_usd", sa.Float, nullable=True),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_llm_calls"),
        sa.UniqueConstraint("uid", name="uq_llm_calls_uid"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_llm_calls_run_id_runs"),
        sa.ForeignKeyConstraint(["kernel_id"], ["kernels.id"], name="fk_llm_calls_kernel_id_kernels"),
    )
    op.create_index("ix_llm_calls_run_id", "llm_calls", ["run_id"])
    op.create_index("ix_llm_calls_kernel_id", "llm_calls", ["kernel_id"])
    for name, columns in RANKING_INDEXES.items():
        op.create_index(name, "evaluations", columns)
    op.drop_index("ix_evaluations_kernel_id", table_name="evaluations")  # a prefix of kernel_gpu


def downgrade() -> None:
    op.create_index("ix_evaluations_kernel_id", "evaluations", ["kernel_id"])
    for name in RANKING_INDEXES:
        op.drop_index(name, table_name="evaluations")
    op.drop_table("llm_calls")
