"""Helpers for tests and the benchmark: sample tasks and results, throwaway databases.

Like ``optuna.testing``, this ships with the package so that every backend's tests (and
``autotuner bench archive``) build data the same way. It never imports pytest.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from archive.db import resolve_url
from archive.store import TaskRecord
from autotuner.evaluator.verdict import EvalResult, Provenance, ShapeResult, Stage, TimingStats, Verdict
from autotuner.tasks import content_hash

POSTGRES_ENV_VAR = "AUTOTUNER_TEST_POSTGRES_URL"
GPUS = ("NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB", "NVIDIA L4", "NVIDIA GeForce RTX 4090")
CAPABILITY = {"NVIDIA H100 80GB HBM3": "9.0", "NVIDIA A100-SXM4-80GB": "8.0", "NVIDIA L4": "8.9",
              "NVIDIA GeForce RTX 4090": "8.9"}  # fmt: skip


def make_task(name: str = "relu", family: str = "activation", dtype: str = "float32", policy: str = "strict",
              variant: str = "") -> TaskRecord:  # fmt: skip
    """A task record whose source (and so content hash) depends on ``name`` and ``variant``."""
    source = f"import torch\n# task {name}{variant}\nclass Model(torch.nn.Module):\n    def forward(self, x):\n        return torch.relu(x)\n"
    shapes = ({"name": "default", "overrides": {}, "hidden": False},
              {"name": "shape1", "overrides": {"batch_size": 333}, "hidden": True})  # fmt: skip
    return TaskRecord(content_hash(source), name, source, family, dtype, policy, shapes, f"/suite/{name}.py")


def timing(median_ms: float, spread: float = 0.02, n_calls: int = 100) -> TimingStats:
    return TimingStats(
        median_ms=median_ms, mean_ms=median_ms * (1 + spread / 4), std_ms=median_ms * spread,
        min_ms=median_ms * (1 - spread), max_ms=median_ms * (1 + 3 * spread),
        p10_ms=median_ms * (1 - spread / 2), p90_ms=median_ms * (1 + spread), n_calls=n_calls,
    )  # fmt: skip


def make_result(
    task: TaskRecord | None = None,
    verdict: Verdict = Verdict.ACCEPTED,
    candidate_ms: float = 0.5,
    eager_ms: float = 1.0,
    compiled_ms: float = 0.8,
    gpu: str = GPUS[0],
    harness_version: str | None = None,
    n_shapes: int = 3,
    rng: random.Random | None = None,
) -> EvalResult:
    """A complete, realistic ``EvalResult``: ``n_shapes`` verified shapes, the first one timed."""
    import autotuner

    rng = rng or random.Random(0)
    accepted = verdict is Verdict.ACCEPTED
    shapes = []
    for i in range(n_shapes):
        timed = i == 0 and accepted
        shapes.append(ShapeResult(
            shape="default" if i == 0 else f"shape{i}", hidden=i == n_shapes - 1 and i > 0, trials=5,
            max_abs_err=rng.uniform(0, 1e-6), max_rel_l2=rng.uniform(0, 1e-7), passed=accepted,
            candidate=timing(candidate_ms) if timed else None, eager=timing(eager_ms) if timed else None,
            compiled=timing(compiled_ms) if timed else None, bytes_moved=1 << 28, flops=1 << 26,
            roofline_ms=candidate_ms * 0.6 if timed else None,
        ))  # fmt: skip
    stage = Stage.DONE if accepted else (Stage.CORRECTNESS if verdict is Verdict.REJECTED else Stage.LAUNCH)
    return EvalResult(
        verdict=verdict, stage=stage,
        reason="passed every stage" if accepted else "max abs error 3.1e-2 exceeds atol 1e-5 at shape1",
        task_name=task.name if task else "", task_hash=task.content_hash if task else "",
        candidate_hash="", policy=task.policy if task else "strict", dtype=task.dtype if task else "float32",
        shapes=shapes, max_abs_err=max(s.max_abs_err or 0 for s in shapes) if shapes else None,
        speedup_eager=eager_ms / candidate_ms if accepted else None,
        speedup_compile=compiled_ms / candidate_ms if accepted else None,
        roofline_fraction=0.6 if accepted else None, compile_ms=rng.uniform(15, 40), wall_s=rng.uniform(2, 9),
        warnings=[], kernels_seen=["relu"] if accepted else [],
        provenance=Provenance(
            harness_version=harness_version or autotuner.HARNESS_VERSION, gpu_name=gpu,
            capability=CAPABILITY.get(gpu, "9.0"), driver="560.35.03", torch_version="2.13.0",
            torch_cuda="12.8", cupy_version="13.6.0", python="3.11.7", peak_gbps=3350.0,
            peak_tflops=60.0, seeds=[rng.randrange(1 << 31) for _ in range(5)],
            tolerances={"rtol": 1e-5, "atol": 1e-5},
        ),
    )  # fmt: skip


def postgres_admin_url() -> str | None:
    """The PostgreSQL server tests may use (``$AUTOTUNER_TEST_POSTGRES_URL``), if any."""
    url = os.environ.get(POSTGRES_ENV_VAR)
    return resolve_url(url) if url else None


@contextmanager
def postgres_schema(admin_url: str, prefix: str = "t") -> Iterator[str]:
    """A fresh schema on the server; yields a URL whose connections use it; dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = create_engine(resolve_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        url = make_url(resolve_url(admin_url)).update_query_dict({"options": f"-csearch_path={name}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        engine.dispose()


class BackendUnavailable(Exception):
    """The backend asked for cannot be used here (no PostgreSQL server configured)."""


@contextmanager
def backend_url(backend: str, tmp_dir: str | os.PathLike[str]) -> Iterator[str]:
    """A URL of an empty, throwaway database: "sqlite" (a file in ``tmp_dir``) or
    "postgresql" (a fresh schema on ``$AUTOTUNER_TEST_POSTGRES_URL``'s server)."""
    if backend == "sqlite":
        yield f"sqlite:///{os.path.join(os.fspath(tmp_dir), 'archive.db')}"
        return
    admin = postgres_admin_url()
    if admin is None:
        raise BackendUnavailable(f"PostgreSQL tests need ${POSTGRES_ENV_VAR} (a server URL); .ci/run starts one and sets it")
    with postgres_schema(admin) as url:
        yield url
