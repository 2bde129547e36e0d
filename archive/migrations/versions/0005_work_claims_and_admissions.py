"""Shared work between drivers: ``work_claims`` (who evaluates what) and ``admissions`` (the
novelty filter's state).

Revision ID: 0005
Revises: 0004
Create Date: 2026-03-02

Before this revision what a run had evaluated, and what its novelty filter had seen, lived in
the driver's memory: two drivers on one archive repeated each other's work. A claim row per
(scope, task, source, setting) with a unique key makes "I evaluate this" atomic on SQLite and
PostgreSQL alike. Evaluations recorded before it have no claim: they are not work in flight.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "work_claims",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("scope", sa.String(255), nullable=False),
        sa.Column("task_hash", sa.String(64), nullable=False),
        sa.Column("source_hash", sa.String(64), nullable=False),
        sa.Column("params_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("evaluation_id", sa.Integer, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_work_claims"),
        sa.UniqueConstraint("scope", "task_hash", "source_hash", "params_hash",
                            name="uq_work_claims_scope_task_hash_source_hash_params_hash"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_work_claims_run_id_runs"),
        sa.ForeignKeyConstraint(["evaluation_id"], ["evaluations.id"], name="fk_work_claims_evaluation_id_evaluations"),
    )
    op.create_index("ix_work_claims_owner_status", "work_claims", ["owner", "status"])
    op.create_index("ix_work_claims_run_id", "work_claims", ["run_id"])
    op.create_table(
        "admissions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("task_hash", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("source_hash", sa.String(64), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_admissions"),
        sa.UniqueConstraint("task_hash", "fingerprint", name="uq_admissions_task_hash_fingerprint"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_admissions_run_id_runs"),
    )
    op.create_index("ix_admissions_run_id", "admissions", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_admissions_run_id", table_name="admissions")
    op.drop_table("admissions")
    op.drop_index("ix_work_claims_run_id", table_name="work_claims")
    op.drop_index("ix_work_claims_owner_status", table_name="work_claims")
    op.drop_table("work_claims")
