"""The cluster pool: one Ray actor per GPU of a Ray cluster, each holding an ``EvalWorker``.

The driver (proposers, the search loop, the archive) stays in this process; jobs go to idle
actors through one dispatcher thread, which waits on Ray for whichever finishes first. When
an actor dies (its node was lost, or its process killed), its job goes back to the front of
the queue and runs on another worker: the job's claims stay with this driver, and nothing of
it was recorded, so nothing is lost or duplicated. New actors are started as the cluster's
resource frees up (a replaced node); with no worker left for ``worker_wait_s`` the waiting
jobs fail with ``WorkerLostError`` and the run stops, to be continued with ``--resume``.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autotuner.errors import ClusterError, WorkerLostError
from autotuner.tasks import Task
from evolution.cluster.actor import WorkerActor
from evolution.cluster.cluster_config import ClusterConfig
from evolution.cluster.connect import connect, import_ray, worker_count
from evolution.workers import EvalJob, EvalWorker, WorkerInfo, scope_of

log = logging.getLogger(__name__)

SETTLE_S = 5.0  # at start, once one worker is up, how long to wait for the rest before going on
MAINTAIN_S = 1.0  # how often to look for lost workers' replacements and for a pool left empty
POLL_S = 0.05  # the dispatcher's longest wait on Ray before it looks at new jobs again


@dataclass
class _Slot:
    index: int
    actor: Any
    info: WorkerInfo | None = None

    @property
    def label(self) -> str:
        return f"w{self.index} {self.info.label}" if self.info else f"w{self.index}"


@dataclass
class _Job:
    future: Future
    job: EvalJob
    attempts: int = 0
    lost_on: list[str] = field(default_factory=list)


class RayPool:
    """A :class:`~evolution.workers.WorkerPool` over a Ray cluster's GPUs."""

    def __init__(self, worker: EvalWorker, cluster: ClusterConfig) -> None:
        if not cluster.enabled:
            raise ClusterError("RayPool needs [cluster] address (or --cluster ADDRESS)")
        self.cluster = cluster
        self._ray = import_ray()
        self._owns_connection = connect(self._ray, str(cluster.address))
        self._template = worker
        self._actor_class = self._ray.remote(WorkerActor)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pending: collections.deque[_Job] = collections.deque()
        self._running: dict[Any, tuple[_Slot, _Job]] = {}
        self._starting: dict[Any, _Slot] = {}
        self._idle: list[_Slot] = []
        self._next_index = 0
        self._empty_since: float | None = None
        self.requeued = 0  # jobs put back after their worker died (for tests and the report)
        self.lost_workers: list[str] = []
        self.settings_per_gpu: dict[Any, int] = {}
        try:
            self._target = worker_count(self._ray, cluster)
            for _ in range(self._target):
                self._spawn()
            self._scope = self._await_first_workers()
        except BaseException:
            self._shutdown_actors()
            raise
        self._thread = threading.Thread(target=self._dispatch, daemon=True, name="ray-dispatch")
        self._thread.start()

    # -- WorkerPool ----------------------------------------------------------------------------
    @property
    def workers(self) -> int:
        return self._target

    @property
    def scope(self) -> str:
        return self._scope

    @property
    def live_workers(self) -> list[WorkerInfo]:
        with self._lock:
            slots = list(self._idle) + [slot for slot, _ in self._running.values()]
        return [s.info for s in slots if s.info is not None]

    def in_flight(self) -> list[tuple[WorkerInfo, str]]:
        """The jobs running now: (the worker running it, what the job is)."""
        with self._lock:
            return [(slot.info, job.job.describe()) for slot, job in self._running.values() if slot.info is not None]

    def submit(self, task: Task, candidate: Path, settings: list[dict[str, Any]]) -> Future:
        future: Future = Future()
        job = _Job(future, EvalJob.of(task, candidate, settings))
        with self._lock:
            if self._stop.is_set():
                raise ClusterError("the Ray pool is closed")
            self._pending.append(job)
        self._assign()  # to an idle worker at once, not when the dispatcher next wakes
        self._wake.set()
        return future

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)
        with self._lock:
            waiting = [j for j in self._pending] + [j for _, j in self._running.values()]
            self._pending.clear()
            self._running.clear()
        for job in waiting:
            if not job.future.cancel() and not job.future.done():
                job.future.set_exception(WorkerLostError(f"{job.job.describe()}: the pool closed before it finished"))
        self._shutdown_actors()
        if self._owns_connection:
            self._ray.shutdown()

    # -- actors ----------------------------------------------------------------------------
    def _options(self) -> dict[str, Any]:
        base: dict[str, Any] = {"num_cpus": 0, "max_restarts": 0, "max_task_retries": 0}
        if self.cluster.resource == "GPU":
            return {**base, "num_gpus": 1}  # Ray sets CUDA_VISIBLE_DEVICES: the worker's GPU 0 is its own
        return {**base, "resources": {self.cluster.resource: 1}}

    def _spawn(self) -> None:
        slot = _Slot(self._next_index, self._actor_class.options(**self._options()).remote(self._template))
        self._next_index += 1
        self._starting[slot.actor.describe.remote()] = slot

    def _await_first_workers(self) -> str:
        deadline = time.monotonic() + self.cluster.start_timeout_s
        settle: float | None = None
        infos: list[WorkerInfo] = []
        while self._starting:
            now = time.monotonic()
            limit = min(deadline, settle) if settle is not None else deadline
            if now >= limit:
                break
            ready, _ = self._ray.wait(list(self._starting), num_returns=1, timeout=limit - now)
            for ref in ready:
                slot = self._starting.pop(ref)
                info = self._started(slot, ref, expected=None if not infos else scope_of(infos))
                if info is not None:
                    infos.append(info)
                    settle = settle or time.monotonic() + SETTLE_S
        if not infos:
            raise ClusterError(
                f"no evaluation worker started on the Ray cluster at {self.cluster.address} within "
                f"{self.cluster.start_timeout_s:.0f} s (each needs one {self.cluster.resource!r}; are they all taken "
                "by other jobs?). Raise [cluster] start_timeout_s, or free the cluster"
            )
        log.info("%d evaluation workers up on the Ray cluster (%d still starting): %s", len(infos),
                 len(self._starting), scope_of(infos))
        return scope_of(infos)

    def _started(self, slot: _Slot, ref: Any, expected: str | None) -> WorkerInfo | None:
        """Take a worker whose ``describe`` came back into service, or drop it."""
        try:
            info = self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:
            log.warning("evaluation worker w%d did not start: %s", slot.index, _first_line(exc))
            self._kill(slot)
            return None
        if expected is not None and scope_of([info]) != expected:
            log.warning("evaluation worker on %s runs %s, not %s like the others; not used (install the same "
                        "autotuner on every node)", info.label, scope_of([info]), expected)
            self._kill(slot)
            return None
        slot.info = info
        self.settings_per_gpu.setdefault(slot.label, 0)
        self._idle.append(slot)
        return info

    def _kill(self, slot: _Slot) -> None:
        try:
            self._ray.kill(slot.actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone with its node
            pass

    def _shutdown_actors(self) -> None:
        with self._lock:
            slots = list(self._idle) + [s for s, _ in self._running.values()] + list(self._starting.values())
            self._idle.clear()
            self._starting.clear()
        for slot in slots:
            self._kill(slot)

    # -- dispatch --------------------------------------------------------------------------
    def _dispatch(self) -> None:
        last_maintain = 0.0
        while not self._stop.is_set():
            try:
                self._assign()
                refs = list(self._running) + list(self._starting)
                if refs:  # a short wait: jobs started by ``submit`` join the next one
                    ready, _ = self._ray.wait(refs, num_returns=1, timeout=POLL_S)
                    if ready:
                        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
                    for ref in ready:
                        self._finished(ref)
                else:
                    self._wake.wait(POLL_S)
                    self._wake.clear()
                if time.monotonic() - last_maintain >= MAINTAIN_S:
                    self._maintain()
                    last_maintain = time.monotonic()
            except Exception:  # noqa: BLE001 - the dispatcher must outlive any one surprise
                log.exception("Ray pool dispatcher error; carrying on")
                time.sleep(0.5)

    def _assign(self) -> None:
        with self._lock:
            while self._pending and self._idle:
                job = self._pending.popleft()
                if job.attempts == 0 and not job.future.set_running_or_notify_cancel():
                    continue  # cancelled while it waited (a requeued job is running already)
                slot = self._idle.pop(0)
                job.attempts += 1
                self._running[slot.actor.evaluate.remote(job.job)] = (slot, job)

    def _finished(self, ref: Any) -> None:
        if ref in self._starting:
            slot = self._starting.pop(ref)
            with self._lock:
                self._started(slot, ref, expected=self._scope)
            return
        with self._lock:
            slot, job = self._running.pop(ref)
        ray = self._ray
        try:
            results = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # the evaluation itself raised: the caller's error
            cause = exc.as_instanceof_cause() if hasattr(exc, "as_instanceof_cause") else exc
            job.future.set_exception(cause)
            with self._lock:
                self._idle.append(slot)
            return
        except ray.exceptions.RayError as exc:  # the worker died (its node was lost): run the job elsewhere
            self._lost(slot, job, exc)
            return
        job.future.set_result(results)
        with self._lock:
            self.settings_per_gpu[slot.label] = self.settings_per_gpu.get(slot.label, 0) + len(job.job.settings)
            self._idle.append(slot)

    def _lost(self, slot: _Slot, job: _Job, exc: BaseException) -> None:
        self._kill(slot)
        self.lost_workers.append(slot.label)
        job.lost_on.append(slot.label)
        if job.attempts >= self.cluster.max_attempts:
            log.error("%s lost with its worker %d times; giving up on it", job.job.describe(), job.attempts)
            job.future.set_exception(WorkerLostError(
                f"{job.job.describe()} was lost with its worker {job.attempts} times ({', '.join(job.lost_on)}); "
                f"its claims are released: `autotuner tune --resume` tries again ([cluster] max_attempts)"))
            return
        log.warning("evaluation worker %s was lost (%s); %s goes to another worker", slot.label, _first_line(exc),
                    job.job.describe())
        with self._lock:
            self.requeued += 1
            self._pending.appendleft(job)

    def _maintain(self) -> None:
        """Start replacements as the cluster's resource frees up; fail jobs nobody can take."""
        with self._lock:  # a slot is in neither list while ``submit`` hands it a job
            live = len(self._idle) + len(self._running) + len(self._starting)
        if live < self._target:
            free = int(self._ray.available_resources().get(self.cluster.resource, 0))
            for _ in range(min(free, self._target - live)):
                log.info("starting a replacement evaluation worker")
                self._spawn()
        with self._lock:
            alive = len(self._idle) + len(self._running) + len(self._starting) > 0
        if alive or not self._pending:
            self._empty_since = None
            return
        self._empty_since = self._empty_since or time.monotonic()
        if time.monotonic() - self._empty_since < self.cluster.worker_wait_s:
            return
        with self._lock:
            stranded = list(self._pending)
            self._pending.clear()
        for job in stranded:
            job.future.set_exception(WorkerLostError(
                f"no evaluation worker left on the Ray cluster at {self.cluster.address} for "
                f"{self.cluster.worker_wait_s:.0f} s (workers lost: {', '.join(self.lost_workers) or 'none'}); "
                "the run stops here: `autotuner tune --resume` continues it once the cluster has GPUs again"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
