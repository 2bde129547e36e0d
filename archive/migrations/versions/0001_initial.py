"""Initial schema: tasks, runs, kernels with lineage, evaluations with per-shape rows.

Revision ID: 0001
Revises:
Create Date: 2025-11-21

Written by hand and never edited after release: databases in the field were created by it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _now() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("family", sa.String(64), nullable=False),
        sa.Column("dtype", sa.String(16), nullable=False),
        sa.Column("policy", sa.String(16), nullable=False),
        sa.Column("shapes", sa.JSON, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        _now(),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
        sa.UniqueConstraint("content_hash", name="uq_tasks_content_hash"),
    )
    op.create_index("ix_tasks_name", "tasks", ["name"])

    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", sa.String(32), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("budgets_spent", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.UniqueConstraint("uid", name="uq_runs_uid"),
    )

    op.create_table(
        "kernels",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("task_id", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("source_hash", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("params_hash", sa.String(64), nullable=False),
        sa.Column("language", sa.String(32), nullable=False),
        sa.Column("operator", sa.String(32), nullable=True),
        sa.Column("proposer", sa.String(64), nullable=True),
        sa.Column("model", sa.String(128), nullable=True),
        sa.Column("prompt", sa.Text, nullable=True),
        sa.Column("run_id", sa.Integer, nullable=True),
        _now(),
        sa.PrimaryKeyConstraint("id", name="pk_kernels"),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name="fk_kernels_task_id_tasks"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_kernels_run_id_runs"),
        sa.UniqueConstraint("task_id", "source_hash", "params_hash", name="uq_kernels_task_id_source_hash_params_hash"),
    )
    op.create_index("ix_kernels_task_id", "kernels", ["task_id"])
    op.create_index("ix_kernels_source_hash", "kernels", ["source_hash"])
    op.create_index("ix_kernels_run_id", "kernels", ["run_id"])

    op.create_table(
        "kernel_parents",
        sa.Column("kernel_id", sa.Integer, nullable=False),
        sa.Column("parent_id", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("kernel_id", "parent_id", name="pk_kernel_parents"),
        sa.ForeignKeyConstraint(
            ["kernel_id"], ["kernels.id"], name="fk_kernel_parents_kernel_id_kernels", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["parent_id"], ["kernels.id"], name="fk_kernel_parents_parent_id_kernels"),
    )
    op.create_index("ix_kernel_parents_parent_id", "kernel_parents", ["parent_id"])

    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", sa.String(32), nullable=False),
        sa.Column("kernel_id", sa.Integer, nullable=False),
        sa.Column("task_id", sa.Integer, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
        _now(),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("policy", sa.String(16), nullable=False),
        sa.Column("dtype", sa.String(16), nullable=False),
        sa.Column("harness_version", sa.String(32), nullable=False),
        sa.Column("gpu_name", sa.String(128), nullable=False),
        sa.Column("capability", sa.String(16), nullable=False),
        sa.Column("driver", sa.String(64), nullable=False),
        sa.Column("torch_version", sa.String(64), nullable=False),
        sa.Column("torch_cuda", sa.String(32), nullable=False),
        sa.Column("cupy_version", sa.String(32), nullable=False),
        sa.Column("python_version", sa.String(32), nullable=False),
        sa.Column("peak_gbps", sa.Float, nullable=True),
        sa.Column("peak_tflops", sa.Float, nullable=True),
        sa.Column("seeds", sa.JSON, nullable=False),
        sa.Column("tolerances", sa.JSON, nullable=False),
        sa.Column("max_abs_err", sa.Float, nullable=True),
        sa.Column("speedup_eager", sa.Float, nullable=True),
        sa.Column("speedup_compile", sa.Float, nullable=True),
        sa.Column("roofline_fraction", sa.Float, nullable=True),
        sa.Column("compile_ms", sa.Float, nullable=True),
        sa.Column("wall_s", sa.Float, nullable=True),
        sa.Column("timed_shape", sa.String(64), nullable=True),
        sa.Column("candidate_median_ms", sa.Float, nullable=True),
        sa.Column("eager_median_ms", sa.Float, nullable=True),
        sa.Column("compiled_median_ms", sa.Float, nullable=True),
        sa.Column("n_shapes", sa.Integer, nullable=False),
        sa.Column("warnings", sa.JSON, nullable=False),
        sa.Column("kernels_seen", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_evaluations"),
        sa.UniqueConstraint("uid", name="uq_evaluations_uid"),
        sa.ForeignKeyConstraint(["kernel_id"], ["kernels.id"], name="fk_evaluations_kernel_id_kernels"),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name="fk_evaluations_task_id_tasks"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_evaluations_run_id_runs"),
    )
    op.create_index("ix_evaluations_kernel_id", "evaluations", ["kernel_id"])
    op.create_index("ix_evaluations_task_id", "evaluations", ["task_id"])
    op.create_index("ix_evaluations_run_id", "evaluations", ["run_id"])

    op.create_table(
        "shape_results",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("evaluation_id", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("shape", sa.String(64), nullable=False),
        sa.Column("hidden", sa.Boolean, nullable=False),
        sa.Column("trials", sa.Integer, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("max_abs_err", sa.Float, nullable=True),
        sa.Column("max_rel_l2", sa.Float, nullable=True),
        sa.Column("candidate", sa.JSON, nullable=True),
        sa.Column("eager", sa.JSON, nullable=True),
        sa.Column("compiled", sa.JSON, nullable=True),
        sa.Column("candidate_median_ms", sa.Float, nullable=True),
        sa.Column("eager_median_ms", sa.Float, nullable=True),
        sa.Column("compiled_median_ms", sa.Float, nullable=True),
        sa.Column("bytes_moved", sa.BigInteger, nullable=True),
        sa.Column("flops", sa.BigInteger, nullable=True),
        sa.Column("roofline_ms", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_shape_results"),
        sa.ForeignKeyConstraint(
            ["evaluation_id"], ["evaluations.id"], name="fk_shape_results_evaluation_id_evaluations", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_shape_results_evaluation_id", "shape_results", ["evaluation_id"])


def downgrade() -> None:
    for table in ("shape_results", "evaluations", "kernel_parents", "kernels", "runs", "tasks"):
        op.drop_table(table)
