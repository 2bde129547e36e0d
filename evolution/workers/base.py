"""The interface the search loop evaluates through: a pool of per-GPU workers.

Two implementations, one contract (``tests/cluster/test_pool_contract.py`` runs the same
tests on both): ``evolution.evalpool.EvalPool`` (a thread per GPU of this machine) and
``evolution.cluster.RayPool`` (a Ray actor per GPU of a cluster). Both run
:class:`~evolution.workers.worker.EvalWorker` objects; they differ only in how jobs reach them.
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from autotuner import HARNESS_VERSION
from autotuner.tasks import Task
from evolution.workers.worker import WorkerInfo


@runtime_checkable
class WorkerPool(Protocol):
    """Evaluates candidates on a set of GPU workers.

    Contract:

    * ``submit(task, candidate, settings)`` returns at once; its future resolves to one
      ``EvalResult`` per setting, in order, or raises what the evaluation raised. A job whose
      worker dies (a lost node) is run again on another worker; only when no worker can take it
      does its future raise ``WorkerLostError``. A job is never evaluated twice to completion.
    * ``submit`` may be called from many threads at once.
    * ``workers`` is how many jobs can run at once (the loop sizes its own concurrency on it).
    * ``scope`` names what the workers evaluate on (harness version and GPU kind): two
      evaluations of one candidate and setting in the same scope are the same work.
    * ``settings_per_gpu`` counts the settings each worker evaluated (label -> count).
    * ``close()`` stops the workers; jobs not started are cancelled.
    """

    @property
    def workers(self) -> int: ...

    @property
    def scope(self) -> str: ...

    @property
    def settings_per_gpu(self) -> dict[Any, int]: ...

    def submit(self, task: Task, candidate: Path, settings: list[dict[str, Any]]) -> Future: ...

    def close(self) -> None: ...


def scope_of(infos: list[WorkerInfo]) -> str:
    """The scope of a set of workers: ``harness <version> on <GPU name>[+<other GPU name>...]``."""
    harnesses = sorted({i.harness_version for i in infos}) or [HARNESS_VERSION]
    gpus = sorted({i.gpu_name for i in infos}) or ["none"]
    return f"harness {'+'.join(harnesses)} on {'+'.join(gpus)}"
