"""The Ray actor of one GPU: a thin shell around the single-host pool's own worker object.

``WorkerActor`` holds an :class:`~evolution.workers.EvalWorker`, built on the driver and
pickled into the actor, and forwards ``evaluate`` to it unchanged; the only thing it adds is
which Ray node it runs on. It is a plain class (``ray.remote`` is applied by the pool), so it
imports and runs without Ray: tests and the GPU machine, where the Ray wheel cannot be
installed, drive the very same code through the single-host pool.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from autotuner.evaluator.verdict import EvalResult
from evolution.workers import EvalJob, EvalWorker, WorkerInfo


def _node_id() -> str:
    """The Ray node this runs on; "" outside Ray (asking Ray then would start a local instance)."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return ""
    return str(ray.get_runtime_context().get_node_id() or "")


class WorkerActor:
    """One GPU's evaluation worker as a Ray actor (``num_gpus=1``: Ray pins it to its GPU)."""

    def __init__(self, worker: EvalWorker) -> None:
        self.worker = worker

    def describe(self) -> WorkerInfo:
        return replace(self.worker.describe(), node=_node_id())

    def evaluate(self, job: EvalJob) -> list[EvalResult]:
        return self.worker.evaluate(job)
