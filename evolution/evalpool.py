"""The single-host pool: one evaluation worker per GPU of this machine, each in a thread.

Candidates queue up and each GPU takes the next one. The threads only wait on child processes
(the evaluator's sandbox), so threads are enough. Each thread owns an
:class:`~evolution.workers.EvalWorker` pinned to its GPU: the same object a cluster run puts
inside a Ray actor (``evolution.cluster``), so this pool runs the actor's code path on a
machine without Ray.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from autotuner.evaluator.eval_config import EvalConfig
from autotuner.evaluator.verdict import EvalResult
from autotuner.tasks import Task
from evolution.workers import EvalJob, EvalWorker, Evaluator, scope_of

__all__ = ["EvalPool", "Evaluator", "real_evaluator"]


def real_evaluator(task: Task, candidate: Path, params: list[dict[str, Any]], config: EvalConfig) -> list[EvalResult]:
    from autotuner.evaluator.sandbox import evaluate_many

    return evaluate_many(task, candidate, params, config)


class EvalPool:
    """A :class:`~evolution.workers.WorkerPool` over this machine's GPUs ``gpus``."""

    def __init__(self, evaluator: Evaluator, config: EvalConfig, gpus: list[int]) -> None:
        if evaluator is real_evaluator:  # the children's fork server preloads while the search proposes
            from autotuner.evaluator.sandbox import prestart

            prestart(config)
        self.evaluator = evaluator
        self.config = config
        self._workers = [EvalWorker(evaluator, config, gpu) for gpu in (gpus or [0])]
        self._jobs: queue.Queue = queue.Queue()
        self._scope: str | None = None
        self.settings_per_gpu: dict[Any, int] = {w.gpu: 0 for w in self._workers}  # what each worker did
        self._threads = [threading.Thread(target=self._work, args=(w,), daemon=True, name=f"eval-gpu{w.gpu}")
                         for w in self._workers]
        for thread in self._threads:
            thread.start()

    @property
    def workers(self) -> int:
        return len(self._threads)

    @property
    def scope(self) -> str:
        if self._scope is None:
            self._scope = scope_of([w.describe() for w in self._workers])
        return self._scope

    def _work(self, worker: EvalWorker) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            future, job = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(worker.evaluate(job))
                self.settings_per_gpu[worker.gpu] += len(job.settings)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                future.set_exception(exc)

    def submit(self, task: Task, candidate: Path, params: list[dict[str, Any]]) -> Future:
        future: Future = Future()
        self._jobs.put((future, EvalJob.of(task, candidate, params)))
        return future

    def close(self) -> None:
        while True:  # jobs no worker started are cancelled, not run after the pool is gone
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
