"""The per-GPU evaluation worker: one object, whatever carries it.

``EvalWorker`` is what a GPU does for the search: take an :class:`EvalJob`, evaluate the
candidate at its settings with the sandboxed evaluator pinned to that GPU, hand back one
``EvalResult`` per setting. The single-host pool runs one in a thread per GPU
(``evolution.evalpool``); a cluster run ships the very same object, pickled, into a Ray actor
per GPU (``evolution.cluster.actor``). Keeping the work in one class is what lets the GPU
machine, where Ray is not installed, run the actor's code path through the single-host pool.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from autotuner import HARNESS_VERSION
from autotuner.evaluator.eval_config import EvalConfig
from autotuner.evaluator.verdict import EvalResult
from autotuner.tasks import Task, content_hash, load_task
from evolution.workers.job import EvalJob

# (the loaded task, candidate file, parameter settings, config) -> one result per setting
Evaluator = Callable[[Task, Path, list[dict[str, Any]], EvalConfig], list[EvalResult]]


@dataclass(frozen=True)
class WorkerInfo:
    """Who a worker is: what its results will say they ran on, and where it runs."""

    gpu_name: str  # what the scope of shared work is keyed on (see evolution.ledger)
    harness_version: str
    host: str
    gpu: int  # the device index inside the worker's own view (CUDA_VISIBLE_DEVICES)
    node: str = ""  # the Ray node id, on a cluster

    @property
    def label(self) -> str:
        return f"{self.host}:gpu{self.gpu}" + (f"@{self.node[:8]}" if self.node else "")


def _cuda_device_name(index: int) -> str:
    import torch

    if not torch.cuda.is_available():
        return "no-gpu"
    return str(torch.cuda.get_device_name(index))  # reads properties; makes no context on the device


def _write_once(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` unless it is there (content-addressed names): atomically, since
    several workers of one process (or one host) may write the same file at once."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return path


class EvalWorker:
    """Evaluates jobs on one GPU. Not thread-safe: one caller at a time (its thread, or its actor)."""

    def __init__(self, evaluator: Evaluator, config: EvalConfig, gpu: int = 0, workdir: Path | None = None) -> None:
        self.evaluator = evaluator
        self.config = replace(config, gpu=gpu)
        self.gpu = gpu
        self._workdir = workdir  # resolved where the worker runs (a remote node has its own disk)
        self._tasks: dict[str, Task] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_tasks"] = {}  # loaded modules stay behind; the worker reloads from the job's text
        return state

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            from autotuner.runtime.compile import cache_root

            self._workdir = cache_root() / "workers" / f"{socket.gethostname()}-{os.getpid()}"
        return self._workdir

    def describe(self) -> WorkerInfo:
        """What this worker evaluates on; the simulated evaluator names its own made-up GPU."""
        name = getattr(self.evaluator, "device_name", None)
        gpu_name = name(self.gpu) if callable(name) else _cuda_device_name(self.gpu)
        return WorkerInfo(gpu_name=gpu_name, harness_version=HARNESS_VERSION, host=socket.gethostname(), gpu=self.gpu)

    def evaluate(self, job: EvalJob) -> list[EvalResult]:
        """One result per setting of ``job``, in order (the evaluator's own contract)."""
        task = self._task(job)
        candidate = self._candidate(job)
        return self.evaluator(task, candidate, [dict(p) for p in job.settings], self.config)

    def _task(self, job: EvalJob) -> Task:
        task = self._tasks.get(job.task_hash)
        if task is None:
            path = Path(job.task_path) if job.task_path else None
            if path is None or not path.is_file() or content_hash(path.read_text(encoding="utf-8")) != job.task_hash:
                # Not on this machine (or changed since): the job's own text, under the task's name,
                # since a task is named after its file.
                path = _write_once(self.workdir / "tasks" / job.task_hash[:16] / f"{job.task_name}.py", job.task_source)
            task = self._tasks[job.task_hash] = load_task(path, job.policy)
        return task

    def _candidate(self, job: EvalJob) -> Path:
        digest = job.candidate_hash
        given = Path(job.candidate_path) if job.candidate_path else None
        if given is not None and given.is_file() and given.read_text(encoding="utf-8") == job.candidate_source:
            return given
        return _write_once(self.workdir / "candidates" / f"candidate_{digest[:16]}.py", job.candidate_source)
