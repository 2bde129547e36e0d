"""Evaluation workers: the job that travels, the per-GPU worker that runs it, the pool interface.

    job.py     EvalJob: task and candidate as text, the settings (what crosses to a worker)
    worker.py  EvalWorker: one GPU's evaluator (the same object in a thread or a Ray actor)
    base.py    WorkerPool: the contract of the single-host pool and the Ray pool
"""

from evolution.workers.base import WorkerPool, scope_of
from evolution.workers.job import EvalJob
from evolution.workers.worker import EvalWorker, Evaluator, WorkerInfo

__all__ = ["EvalJob", "EvalWorker", "Evaluator", "WorkerInfo", "WorkerPool", "scope_of"]
