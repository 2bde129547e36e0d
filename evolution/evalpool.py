"""One evaluation worker per GPU: candidates queue up and each GPU takes the next one.

The worker threads only wait on child processes (the evaluator's sandbox), so threads are
enough; each call is pinned to its worker's GPU through ``EvalConfig.gpu``.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from autotuner.evaluator.eval_config import EvalConfig
from autotuner.evaluator.verdict import EvalResult
from autotuner.tasks import Task

# (the loaded task, candidate file, parameter settings, config) -> one result per setting
Evaluator = Callable[[Task, Path, list[dict[str, Any]], EvalConfig], list[EvalResult]]


def real_evaluator(task: Task, candidate: Path, params: list[dict[str, Any]], config: EvalConfig) -> list[EvalResult]:
    from autotuner.evaluator.sandbox import evaluate_many

    return evaluate_many(task, candidate, params, config)


class EvalPool:
    def __init__(self, evaluator: Evaluator, config: EvalConfig, gpus: list[int]) -> None:
        self.evaluator = evaluator
        self.config = config
        self._jobs: queue.Queue = queue.Queue()
        self.settings_per_gpu: dict[int, int] = {gpu: 0 for gpu in (gpus or [0])}  # what each worker did
        self._threads = [threading.Thread(target=self._work, args=(gpu,), daemon=True, name=f"eval-gpu{gpu}")
                         for gpu in (gpus or [0])]
        for thread in self._threads:
            thread.start()

    @property
    def workers(self) -> int:
        return len(self._threads)

    def _work(self, gpu: int) -> None:
        config = replace(self.config, gpu=gpu)
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, task, candidate, params = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self.evaluator(task, candidate, params, config))
                self.settings_per_gpu[gpu] += len(params)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                future.set_exception(exc)

    def submit(self, task: Task, candidate: Path, params: list[dict[str, Any]]) -> Future:
        future: Future = Future()
        self._jobs.put((future, task, candidate, params))
        return future

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=5)
