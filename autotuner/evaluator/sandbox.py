"""The parent side: check the candidate's source, run it in a killable child, check the report.

The parent never initializes CUDA, so a candidate that wrecks its GPU context (an illegal
address, a hang) takes only its own child with it; the next candidate starts clean.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from autotuner import HARNESS_VERSION
from autotuner.errors import CandidateLoadError
from autotuner.candidate import source_hash
from autotuner.evaluator.ahead import AHEAD_PHASE
from autotuner.evaluator.eval_config import EvalConfig
from autotuner.evaluator.isolation import SandboxSpec, child_environment
from autotuner.evaluator.static_check import check_source, summarize
from autotuner.evaluator.verdict import EvalResult, Provenance, Stage, Verdict
from autotuner.runtime.compile import cache_root
from autotuner.runtime.device import require_gpu
from autotuner.tasks import Task, load_task

log = logging.getLogger(__name__)
_POLL_S = 0.01  # the child's exit is seen this late at most (a status file read per poll: cheap)


def _phase(status: Path) -> tuple[str, float]:
    try:
        phase, stamp = status.read_text().split()
        return phase, float(stamp)
    except (OSError, ValueError):
        return "starting", time.time()


def _log_tail(path: Path, limit: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-limit:].strip()
    except OSError:
        return ""


WORKER_COMMAND = (sys.executable, "-m", "autotuner.evaluator.worker")
# Imported once in the fork server instead of in every child (pure Python over torch: none
# initializes CUDA at import; the worker imports the same modules lazily anyway).
_PRELOAD = ["torch", "numpy", "autotuner.evaluator.worker", "autotuner.evaluator.measure",
            "autotuner.evaluator.verify", "autotuner.evaluator.unwatched", "autotuner.evaluator.roofline",
            "autotuner.evaluator.isolation", "autotuner.candidate", "autotuner.runtime", "torch.profiler",
            "torch.utils.flop_counter", "torch._dynamo"]
# torch._dynamo: entering any TorchDispatchMode (the op watch, the flop counter) imports it on
# first use (torch/_compile.py), about 1.4 s on a 2-core CPU, more with Triton installed; every
# child paid it. With the roofline figures cached, bench evaluator on an H200 showed ~6 s a
# child at the first shape's first watched run, where the flop counter had shown it before.
# More modules for the server, comma-separated (e.g. "cupy"), to measure what a child's own
# imports cost. CuPy is safe to preload (on an H200, 2026-12-01, forked children used the GPU
# and the candidate was accepted), but not preloaded by default: it took device_facts from
# 0.124 to 0.004 s a child and left the whole candidate where it was (p50 1.41 vs 1.40 s,
# bench evaluator on softmax, 5 repeats each): the import moved into later phases.
PRELOAD_ENV = "AUTOTUNER_FORKSERVER_PRELOAD"
_forkserver: Any = None
_forkserver_lock = threading.Lock()


def preload_modules(environ: dict[str, str]) -> list[str]:
    """What the fork server imports: ``_PRELOAD`` and any modules ``PRELOAD_ENV`` names."""
    extra = [m.strip() for m in environ.get(PRELOAD_ENV, "").split(",") if m.strip()]
    return _PRELOAD + [m for m in extra if m not in _PRELOAD]


class _Child:
    """A running worker: a fresh interpreter (``command``) or a fork of the preloaded server."""

    def __init__(self, popen: subprocess.Popen | None = None, process: Any = None) -> None:
        self.popen, self.process = popen, process

    @property
    def pid(self) -> int:
        return self.popen.pid if self.popen else self.process.pid

    def poll(self) -> int | None:
        if self.popen:
            return self.popen.poll()
        return None if self.process.is_alive() else self.process.exitcode

    def kill_tree(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)  # the child leads its own session
        except (ProcessLookupError, PermissionError):
            pass
        if self.popen:
            self.popen.kill() if self.popen.poll() is None else None
            self.popen.wait()
        else:
            if self.process.is_alive():
                self.process.kill()
            self.process.join()

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode if self.popen else self.process.exitcode


def _forkserver_context() -> Any:
    """A process with torch already imported, forking one child per candidate.

    Saves the interpreter start and the torch import (seconds) on every candidate; CUDA is
    never initialized in the server, so each child still gets its own clean GPU context. The
    server is started with the candidates' allow-listed environment: no secret of this process
    is ever in its memory, so none is in the memory of a child forked from it.
    """
    global _forkserver
    with _forkserver_lock:
        if _forkserver is None:
            import multiprocessing
            from multiprocessing import forkserver

            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(preload_modules(dict(os.environ)))
            clean = child_environment(dict(os.environ), Path(tempfile.gettempdir()), cache_root())
            saved = dict(os.environ)
            os.environ.clear()  # the server inherits the C environment at its start
            os.environ.update(clean)
            try:
                forkserver.ensure_running()
            finally:
                os.environ.clear()
                os.environ.update(saved)
            _forkserver = ctx
    return _forkserver


def prestart(config: EvalConfig) -> None:
    """Start the fork server now, so that its preload (torch and torch._dynamo: about 6 s on the
    H200 host, 2026-12-03, all of it the first candidate's ``child_start``) runs while the search
    proposes. ``ensure_running`` only spawns the server; the import goes on in that process.
    Call it before any thread reads the environment: the server is spawned from a cleaned one."""
    from autotuner.runtime.device import cuda_available

    if config.fork_server and cuda_available():  # without a GPU every evaluation stops before a child
        _forkserver_context()


def _spawn(paths: list[Path], visible: str, workdir: Path, command: tuple[str, ...] | None) -> _Child:
    job_path, result_path, status_path, log_path = paths
    work = workdir / "work"  # the candidate's own folder; the harness's files stay one level up
    work.mkdir(exist_ok=True)
    env = child_environment(dict(os.environ), work, cache_root(), {"CUDA_VISIBLE_DEVICES": visible})
    if command is None:
        from autotuner.evaluator import worker

        ctx = _forkserver_context()
        process = ctx.Process(target=worker.child_entry, daemon=False,
                              args=(str(job_path), str(result_path), str(status_path), str(log_path), visible, env))
        process.start()
        return _Child(process=process)
    with open(log_path, "wb") as log_file:
        popen = subprocess.Popen([*command, str(job_path), str(result_path), str(status_path)],
                                 stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=work)
    return _Child(popen=popen)


def sandbox_spec(config: EvalConfig, workdir: Path, *paths: Path) -> dict[str, Any]:
    """What the child shuts itself into: its folder, the cache, readable folders, limits."""
    repo = Path(__file__).resolve().parents[2]
    return SandboxSpec(
        workdir=str(workdir / "work"), cache_dir=str(cache_root()),
        read_roots=[str(repo)] + [str(Path(p).resolve().parent) for p in paths],
        limits={"cpu_s": config.cpu_limit_s, "host_memory_bytes": int(config.host_memory_gb * 2**30),
                "file_bytes": int(config.file_size_mb) << 20, "processes": config.processes},
    ).to_json()


def _visible_device(config: EvalConfig) -> str:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:  # pin to the config's GPU among those the parent may use
        return visible.split(",")[config.gpu]
    return str(config.gpu)


def _run_child(job: dict[str, Any], config: EvalConfig, workdir: Path,
               command: tuple[str, ...] | None = WORKER_COMMAND) -> tuple[list[dict], str, int | None, str]:
    """Run the worker and supervise it; returns (results so far, final phase, return code, log tail).

    Results come back as JSON lines, one per parameter set, so those finished before a crash
    or a hang are kept.

    ``command=None`` forks the child from the preloaded fork server instead of starting a
    fresh interpreter.
    """
    paths = [workdir / n for n in ("job.json", "result.json", "status", "log")]
    job_path, result_path, status_path, log_path = paths
    job_path.write_text(json.dumps({**job, "spawned_at": time.time()}))  # the child's start is a phase
    child = _spawn(paths, _visible_device(config), workdir, command)
    started = time.time()
    timed_out = ""
    while child.poll() is None:
        time.sleep(_POLL_S)
        phase, since = _phase(status_path)
        now = time.time()
        if phase.startswith("candidate") and now - since > config.timeout_s:
            timed_out = f"the candidate ran past its {config.timeout_s:g} s limit"
        elif not phase.startswith("candidate") and phase != "done" and now - started > config.baseline_timeout_s + config.timeout_s:
            timed_out = f"setup and baselines ran past {config.baseline_timeout_s + config.timeout_s:g} s"
        if timed_out:
            break
    child.kill_tree()  # on timeout; otherwise reaps any grandchildren the candidate left behind
    phase, _ = _phase(status_path)
    results = []
    if result_path.is_file():
        for line in result_path.read_text().splitlines():
            try:
                results.append(json.loads(line))
            except ValueError:
                break  # a line cut short by the kill
    return results, (timed_out + f" [{phase}]") if timed_out else phase, child.returncode, _log_tail(log_path)


def _crash_reason(returncode: int | None, tail: str) -> str:
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        what = f"the child process died of {name}"
    else:
        what = f"the child process exited with code {returncode} without a result"
    last = tail.splitlines()[-1] if tail else ""
    lowered = tail.lower()
    if "illegal memory access" in lowered:
        what += " (illegal memory access)"
    elif "out of memory" in lowered:
        what += " (out of memory)"
    return f"{what}{': ' + last[:200] if last else ''}"


def _implausible(result: EvalResult, config: EvalConfig, n_shapes: int, timing_mode: str = "events") -> str | None:
    """What the child reported, checked by the parent: it must add up."""
    if not result.accepted:
        return None
    if len(result.shapes) != n_shapes:
        return f"reported {len(result.shapes)} shapes, the task has {n_shapes}"
    for s in result.shapes:
        if s.trials < config.trials or not s.passed:
            return f"shape {s.shape} reported {s.trials} trials, {config.trials} required"
    timed = result.timed
    if config.time_candidate:
        if timed is None or timed.candidate is None:
            return "no candidate timing reported"
        st = timed.candidate
        values = [st.median_ms, st.min_ms, st.max_ms, st.mean_ms]
        if st.n_calls < config.timing_calls or not all(math.isfinite(v) and v > 0 for v in values):
            return f"timing implausible: {asdict(st)}"
        if not st.min_ms <= st.median_ms <= st.max_ms:
            return "timing statistics are inconsistent"
        if timing_mode == "events" and (st.checked_calls or 0) < config.checked_calls:
            return f"only {st.checked_calls} timed outputs checked, {config.checked_calls} required"
        if timed.eager and result.speedup_eager is not None:
            if abs(timed.eager.median_ms / st.median_ms - result.speedup_eager) > 1e-6 * result.speedup_eager:
                return "speedup does not match the reported times"
    return None


def _failure(phase: str, returncode: int | None, tail: str, base: dict[str, Any]) -> EvalResult:
    """The result for the parameter set a child was on when it died or was killed."""
    if phase.startswith("the candidate ran past"):
        return EvalResult(Verdict.REJECTED, Stage.TIMEOUT,
                          f"{phase.split(' [')[0]}; its process tree was killed (a hang or a very slow kernel)", **base)
    if phase.startswith("setup and"):
        return EvalResult(Verdict.ERROR, Stage.TIMEOUT, phase, **base)
    if phase.startswith("candidate") or phase == "done":
        return EvalResult(Verdict.REJECTED, Stage.CRASH, _crash_reason(returncode, tail), **base)
    return EvalResult(Verdict.ERROR, Stage.CRASH, f"harness failed during {phase}: {_crash_reason(returncode, tail)}", **base)


def evaluate_many(task: Task | str | Path, candidate_path: str | Path, param_sets: list[dict[str, Any]],
                  config: EvalConfig | None = None) -> list[EvalResult]:
    """Evaluate one candidate at several parameter settings; one EvalResult each, in order.

    The settings share one child (one process start, one CUDA context, one import) because
    they run the same code; a crash or hang on one setting fails that setting only, and the
    rest continue in a fresh child. ``task`` is a loaded ``Task`` (a run loads each task once
    and passes it on) or its file, loaded here with ``config.policy``; the child loads the
    file once more in its own process.
    """
    config = config or EvalConfig()
    if not isinstance(task, Task):
        task = load_task(task, config.policy)
    candidate_path = Path(candidate_path).resolve()
    try:
        source = candidate_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CandidateLoadError(str(candidate_path), f"cannot be read: {exc}") from None
    param_sets = [dict(p) for p in param_sets] or [{}]
    base = dict(task_name=task.name, task_hash=task.content_hash, candidate_hash=source_hash(source),
                policy=task.policy, dtype=task.dtype)
    if config.static_check:
        violations = check_source(source)
        if violations:
            return [EvalResult(Verdict.REJECTED, Stage.STATIC, summarize(violations), wall_s=0.0,
                               provenance=Provenance(harness_version=HARNESS_VERSION), **base) for _ in param_sets]
    require_gpu()  # static rejections need no GPU; everything after does
    seed = secrets.randbits(62)
    results: list[EvalResult] = []
    command = None if config.fork_server else WORKER_COMMAND
    run_config = config  # compile-ahead goes off for the rest if a child dies in its dry runs (below)
    while len(results) < len(param_sets):
        first = len(results)
        job = {"task_path": str(task.path), "candidate_path": str(candidate_path), "param_sets": param_sets[first:],
               "first_index": first, "config": asdict(run_config), "cache_dir": str(cache_root()), "seed": seed}
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="autotuner-eval-") as tmp:
            if config.isolation:
                job["sandbox"] = sandbox_spec(config, Path(tmp), task.path, candidate_path)
            lines, phase, returncode, tail = _run_child(job, config, Path(tmp), command=command)
        for data in lines:
            result = EvalResult.from_json(data)
            problem = _implausible(result, config, len(task.shapes), task.timing)
            if problem:
                result.verdict, result.stage = Verdict.ERROR, Stage.DONE
                result.reason = f"the child's report does not add up: {problem}"
            result.candidate_hash = base["candidate_hash"]
            results.append(result)
        if len(results) < len(param_sets) and phase == "done" and lines:
            continue  # the child stopped early on purpose (its CUDA context broke): go on in a new one
        if len(results) < len(param_sets) and AHEAD_PHASE in phase and run_config.compile_ahead:
            # It hung or died in the dry runs of compile-ahead (evaluator/ahead.py), which run every
            # setting before the first is verified: no setting can be blamed yet. Again without them.
            run_config = replace(run_config, compile_ahead=False)
            continue
        if len(results) < len(param_sets):
            failed = _failure(phase, returncode, tail, base)
            failed.provenance = Provenance(harness_version=HARNESS_VERSION, seeds=[seed])
            failed.wall_s = time.perf_counter() - started
            if failed.verdict is Verdict.ERROR:  # the harness itself is broken: stop here
                results.extend(failed for _ in range(len(param_sets) - len(results)))
            else:
                results.append(failed)
    return results


def evaluate(task: Task | str | Path, candidate_path: str | Path, config: EvalConfig | None = None,
             params: dict[str, Any] | None = None) -> EvalResult:
    """Evaluate one candidate against one task (a ``Task`` or its file); every outcome is an EvalResult."""
    started = time.perf_counter()
    result = evaluate_many(task, candidate_path, [params or {}], config)[0]
    result.wall_s = time.perf_counter() - started
    return result
