"""Rows as revision 0001 stored them, written through reflected tables (not today's models,
which describe the newest schema), so the upgrade tests see what an old archive held.

Run as a script to regenerate ``fixtures/archive_0001.sql`` (a SQLite dump at 0001).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, select, text

TABLES = ("tasks", "runs", "kernels", "kernel_parents", "evaluations", "shape_results")
WHEN = datetime(2025, 11, 1, 12, 0, tzinfo=timezone.utc)
FIXTURE = Path(__file__).with_name("fixtures") / "archive_0001.sql"


def _timing(median_ms: float) -> dict[str, Any]:
    return {"median_ms": median_ms, "mean_ms": median_ms, "std_ms": 0.01, "min_ms": median_ms * 0.9,
            "max_ms": median_ms * 1.2, "p10_ms": median_ms * 0.95, "p90_ms": median_ms * 1.05, "n_calls": 50}  # fmt: skip


def _evaluation(i: int, kernel_id: int, verdict: str, candidate_ms: float | None) -> dict[str, Any]:
    return {
        "id": i, "uid": f"{i:032x}", "kernel_id": kernel_id, "task_id": 1, "run_id": 1, "created_at": WHEN,
        "verdict": verdict, "stage": "done" if verdict == "accepted" else "correctness",
        "reason": "passed every stage" if verdict == "accepted" else "wrong values at shape1",
        "policy": "strict", "dtype": "float32", "harness_version": "1", "gpu_name": "NVIDIA H100 80GB HBM3",
        "capability": "9.0", "driver": "560.35.03", "torch_version": "2.13.0", "torch_cuda": "12.8",
        "cupy_version": "13.6.0", "python_version": "3.11.7", "peak_gbps": 3350.0, "peak_tflops": 60.0,
        "seeds": [1, 2, 3, 4, 5], "tolerances": {"rtol": 1e-5, "atol": 1e-5},
        "max_abs_err": 1e-7, "speedup_eager": 1.0 / candidate_ms if candidate_ms else None,
        "speedup_compile": 0.8 / candidate_ms if candidate_ms else None, "roofline_fraction": 0.5,
        "compile_ms": 21.5, "wall_s": 3.2, "timed_shape": "default" if candidate_ms else None,
        "candidate_median_ms": candidate_ms, "eager_median_ms": 1.0 if candidate_ms else None,
        "compiled_median_ms": 0.8 if candidate_ms else None, "n_shapes": 2, "warnings": [], "kernels_seen": ["relu"],
    }  # fmt: skip


def _shape(i: int, evaluation_id: int, position: int, candidate_ms: float | None) -> dict[str, Any]:
    timed = position == 0 and candidate_ms is not None
    return {
        "id": i, "evaluation_id": evaluation_id, "position": position, "shape": ["default", "shape1"][position],
        "hidden": position == 1, "trials": 5, "passed": candidate_ms is not None, "max_abs_err": 1e-7,
        "max_rel_l2": 1e-8, "candidate": _timing(candidate_ms) if timed else None,
        "eager": _timing(1.0) if timed else None, "compiled": _timing(0.8) if timed else None,
        "candidate_median_ms": candidate_ms if timed else None, "eager_median_ms": 1.0 if timed else None,
        "compiled_median_ms": 0.8 if timed else None, "bytes_moved": 1 << 33, "flops": 1 << 20,
        "roofline_ms": 0.1 if timed else None,
    }  # fmt: skip


def rows() -> dict[str, list[dict[str, Any]]]:
    source = "import torch\nclass Model(torch.nn.Module):\n    def forward(self, x):\n        return torch.relu(x)\n"
    kernel = {"task_id": 1, "params_hash": "p" * 64, "language": "cuda", "model": None, "prompt": None,
              "run_id": 1, "created_at": WHEN}  # fmt: skip
    evals = [_evaluation(1, 1, "accepted", 0.5), _evaluation(2, 2, "accepted", 0.25), _evaluation(3, 3, "rejected", None)]
    return {
        "tasks": [{"id": 1, "content_hash": "c" * 64, "name": "relu", "family": "activation", "dtype": "float32",
                   "policy": "strict", "shapes": [{"name": "default", "overrides": {}, "hidden": False}],
                   "source": source, "path": "/suite/relu.py", "created_at": WHEN}],
        "runs": [{"id": 1, "uid": "r" * 32, "config": {"model": "m"}, "status": "finished", "started_at": WHEN,
                  "ended_at": WHEN, "budgets_spent": {"llm_usd": 0.5}}],
        "kernels": [{**kernel, "id": k, "source": f"// kernel {k}\n", "source_hash": f"{k}" * 64, "params": {"B": k},
                     "operator": op, "proposer": proposer}
                    for k, op, proposer in [(1, "translate", "rules"), (2, "mutate", "llm"), (3, "fix", "llm")]],
        "kernel_parents": [{"kernel_id": 2, "parent_id": 1, "position": 0}, {"kernel_id": 3, "parent_id": 2, "position": 0}],
        "evaluations": evals,
        "shape_results": [_shape(2 * e["id"] + p, e["id"], p, e["candidate_median_ms"]) for e in evals for p in (0, 1)],
    }  # fmt: skip


def insert_old_rows(engine: Engine) -> None:
    meta = MetaData()
    meta.reflect(engine, only=TABLES)
    with engine.begin() as conn:
        for name in TABLES:
            conn.execute(meta.tables[name].insert(), rows()[name])
            if engine.dialect.name == "postgresql" and "id" in meta.tables[name].c:
                # explicit ids do not move the sequence, as the old code's inserts would have
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"))


def read_table(engine: Engine, name: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """Every row of ``name`` (ordered, JSON re-serialised) for comparing before and after."""
    meta = MetaData()
    meta.reflect(engine, only=[name])
    table = meta.tables[name]
    cols = [table.c[c] for c in (columns or table.c.keys())]
    with engine.connect() as conn:
        out = []
        for row in conn.execute(select(*cols).order_by(*table.primary_key.columns)):
            out.append({k: _plain(v) for k, v in row._mapping.items()})
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat()
    return value


def write_fixture() -> None:  # pragma: no cover - run by hand when the fixture must be remade
    import tempfile

    from archive.migrate import upgrade
    from sqlalchemy import create_engine

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.db"
        engine = create_engine(f"sqlite:///{path}")
        upgrade(engine, "0001")
        insert_old_rows(engine)
        engine.dispose()
        FIXTURE.parent.mkdir(exist_ok=True)
        with sqlite3.connect(path) as conn:
            FIXTURE.write_text("\n".join(conn.iterdump()) + "\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(write_fixture())
