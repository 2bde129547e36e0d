"""The child process: everything that touches the candidate happens here.

Run as ``python -m autotuner.evaluator.worker JOB.json RESULT.json STATUS``. The parent
reads the job's seeds from nowhere else; this process deletes the job file before the
candidate is imported, reports its phase through STATUS (so the parent can give the
baselines and the candidate separate time limits), and writes one EvalResult as JSON.
Trusted work (peaks, baselines) runs before the candidate's code is imported.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autotuner import HARNESS_VERSION
from autotuner.evaluator.eval_config import EvalConfig
from autotuner.evaluator.memory_pressure import environmental_oom
from autotuner.evaluator.verdict import EvalResult, KernelResources, Provenance, Stage, Verdict

log = logging.getLogger("autotuner.evaluator.worker")


_CHANNELS: dict[str, int] = {}  # harness files opened before the sandbox closed the folder


def _status(path: Path, phase: str) -> None:
    fd = _CHANNELS.get(str(path))
    if fd is None:
        path.write_text(f"{phase} {time.time()}\n")
        return
    data = f"{phase} {time.time()}\n".encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _sandbox_rejection() -> EvalResult | None:
    from autotuner.evaluator.isolation import violation_reason

    reason = violation_reason()
    return None if reason is None else EvalResult(Verdict.REJECTED, Stage.ISOLATION, reason)


def classify_exception(exc: BaseException) -> str:
    """A short class for a failure inside the candidate's forward or import."""
    text = f"{type(exc).__name__}: {exc}"
    lowered = text.lower()
    if "out of memory" in lowered or "outofmemory" in lowered:
        return f"out of memory: {text[:300]}"
    if "illegal memory access" in lowered or "illegal_address" in lowered or "illegal address" in lowered:
        return f"illegal memory access: {text[:300]}"
    if "misaligned address" in lowered:
        return f"misaligned address: {text[:300]}"
    if "unspecified launch failure" in lowered or "launch_failed" in lowered:
        return f"unspecified launch failure: {text[:300]}"
    return text[:500]


def _device_error(exc: BaseException) -> bool:
    """CUDA errors surface asynchronously, often in harness code: still the candidate's."""
    text = f"{type(exc).__name__} {exc}".lower()
    return any(word in text for word in ("cuda", "cupy", "accelerator", "out of memory", "nvrtc", "launch"))


def _candidate_frame(exc: BaseException, candidate_path: str) -> str:
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if os.path.abspath(frame.filename) == os.path.abspath(candidate_path):
            return f" (candidate line {frame.lineno})"
    return ""


@dataclass
class Session:
    """What the trusted phase prepared, shared by every parameter set of the candidate."""

    task: Any
    config: EvalConfig
    tolerance: dict[str, float]
    provenance: Provenance
    peaks: Any
    flush: Any
    baselines: dict[str, Any]
    base_seed: int
    margin: Any = None  # the one-pass timed-call check (margin_kernel), built before the candidate
    bytes_moved: int = 0
    flops: int = 0
    warnings: list[str] = field(default_factory=list)
    phases_s: dict[str, float] = field(default_factory=dict)


def _lap(phases: dict[str, float], key: str, since: float) -> float:
    """``phases[key]`` = seconds since ``since``; returns now (the next part's start)."""
    now = time.perf_counter()
    phases[key] = now - since
    return now


def prepare(job: dict[str, Any], status_path: Path, child_phases: dict[str, float] | None = None) -> Session:
    """Peaks, baselines and the roofline figures: all before any candidate code is loaded.

    ``child_phases`` (the child's start, CUDA init, sandbox) go into every result's ``phases_s``.
    """
    import torch

    from autotuner.evaluator import isolation
    from autotuner.evaluator.compare import tolerances_for
    from autotuner.evaluator.inputs import make_inputs, make_reference
    from autotuner.evaluator.margin_kernel import MarginKernel
    from autotuner.evaluator.measure import measure_baselines
    from autotuner.evaluator.roofline import cached_figures, cached_peaks, count_flops, estimate_bytes, figures_key
    from autotuner.evaluator.timing import l2_flush_buffer
    from autotuner.evaluator.verify import derive_seed
    from autotuner.evaluator.watch import set_strict_numerics
    from autotuner.runtime.device import device_facts
    from autotuner.tasks import load_task

    _status(status_path, "setup")
    started = time.perf_counter()
    config = EvalConfig(**job["config"])
    cache_dir = Path(job["cache_dir"])
    base_seed = int(job["seed"])
    set_strict_numerics()
    parts: dict[str, float] = {}  # included in setup
    mark = time.perf_counter()
    facts = device_facts(0)  # NVML, CuPy and NVRTC versions: libraries loaded in every child
    mark = _lap(parts, "setup.device_facts", mark)
    peaks = cached_peaks(cache_dir, facts.driver)
    mark = _lap(parts, "setup.peaks", mark)
    task = load_task(job["task_path"], config.policy)
    _lap(parts, "setup.task", mark)
    tolerance = tolerances_for(task.dtype, task.tolerance)
    provenance = Provenance(
        harness_version=HARNESS_VERSION, gpu_name=facts.gpu_name, capability=facts.capability,
        driver=facts.driver, torch_version=facts.torch_version, torch_cuda=facts.torch_cuda,
        cupy_version=facts.cupy_version, python=facts.python, peak_gbps=peaks.copy_gbps,
        peak_tflops=peaks.fp32_tflops if task.dtype == "float32" else peaks.bf16_tflops,
        seeds=[base_seed], tolerances=tolerance, sandbox=isolation.LAYERS,
    )
    session = Session(task, config, tolerance, provenance, peaks, l2_flush_buffer(facts.l2_bytes), {}, base_seed)
    session.phases_s.update(child_phases or {})
    mark = time.perf_counter()
    session.margin = MarginKernel.build([getattr(torch, task.dtype)])
    _lap(parts, "setup.margin_kernel", mark)
    session.phases_s.update(parts)
    shape = task.default_shape
    figures_started = time.perf_counter()

    def measure_figures() -> tuple[int, int]:
        reference = make_reference(task, shape, derive_seed(base_seed, "roofline"))
        inputs = make_inputs(task, shape, derive_seed(base_seed, "roofline", "inputs"))
        with torch.no_grad():
            out = reference(*inputs)
        fn = getattr(task.module, "bytes_moved", None)
        moved = int(fn(inputs, out)) if callable(fn) else estimate_bytes(inputs, reference, out)
        fn = getattr(task.module, "flops", None)
        flops = int(fn(inputs, out)) if callable(fn) else count_flops(reference, inputs)
        del reference, inputs, out
        torch.cuda.empty_cache()
        return moved, flops

    session.bytes_moved, session.flops = cached_figures(
        cache_dir, figures_key(task.content_hash, shape.to_json()), measure_figures)
    session.phases_s["setup.roofline_figures"] = time.perf_counter() - figures_started  # included in setup
    session.phases_s["setup"] = time.perf_counter() - started
    if config.baselines:
        _status(status_path, "baselines")
        started = time.perf_counter()
        try:
            session.baselines = measure_baselines(task, shape, config, cache_dir, base_seed, session.flush)
        except Exception as exc:  # noqa: BLE001 - a baseline failure is recorded, not fatal
            session.warnings.append(f"baselines failed: {type(exc).__name__}: {str(exc)[:200]}")
        session.phases_s["baselines"] = time.perf_counter() - started
    return session


def _new_result(session: Session) -> EvalResult:
    task = session.task
    return EvalResult(Verdict.ACCEPTED, Stage.DONE, "", task_name=task.name, task_hash=task.content_hash,
                      policy=task.policy, dtype=task.dtype, provenance=session.provenance,
                      warnings=list(session.warnings), phases_s=dict(session.phases_s))


def evaluate_params(session: Session, model_new: type, kernel_names: set[str], params: dict[str, Any],
                    index: int, guard: Any, candidate_path: str) -> EvalResult:
    """Verify and time the candidate with one parameter setting."""
    import torch

    from autotuner.errors import CompileError
    from autotuner.evaluator.inputs import make_candidate, make_reference
    from autotuner.evaluator.measure import InputPool, stats_from, time_model, timed_output_check
    from autotuner.evaluator.roofline import floor_ms
    from autotuner.evaluator.verify import Rejection, VerifyContext, derive_seed, verify_shape
    from autotuner.runtime import usage

    task, config = session.task, session.config
    seed = derive_seed(session.base_seed, "params", index)
    result = _new_result(session)
    timed_shape = task.default_shape
    ctx = VerifyContext(task=task, model_new=model_new, params=params, kernel_names=kernel_names,
                        tolerance=session.tolerance, base_seed=seed, trials=config.trials, guard=guard,
                        warnings=result.warnings, guard_bytes=config.guard_bytes, margin=session.margin)
    from autotuner.evaluator import guard as guard_bytes

    from autotuner.runtime.compile import COSTS as compile_costs

    guards_before = guard_bytes.SPENT_S[0]
    compiles_before = compile_costs["compile"]
    usage.reset()  # the resource report covers this setting's kernels only
    started = time.perf_counter()
    try:
        # Hidden shapes and small ones first: cheap, and where hard-coding shows.
        for shape in sorted(task.shapes, key=lambda s: (s is timed_shape, not s.hidden)):
            shape_started = time.perf_counter()
            result.shapes.append(verify_shape(ctx, shape, profile=shape is timed_shape))
            result.phases_s[f"verify.shape:{shape.name}"] = time.perf_counter() - shape_started  # in verify
        result.phases_s["verify"] = time.perf_counter() - started
        result.phases_s["guard_bytes"] = guard_bytes.SPENT_S[0] - guards_before  # included in verify
        # every compile inside verify, in builds and in forwards (0 where compile-ahead built them all)
        result.phases_s["verify.compile_all"] = compile_costs["compile"] - compiles_before
        result.phases_s.update({f"verify.{k}": v for k, v in ctx.clock.items()})  # included in verify
        started = time.perf_counter()
        result.max_abs_err = max((s.max_abs_err or 0.0) for s in result.shapes)
        result.kernels_seen = ctx.kernels_seen
        timed = next(s for s in result.shapes if s.shape == timed_shape.name)
        timed.eager = stats_from(session.baselines.get("eager"))
        timed.compiled = stats_from(session.baselines.get("compiled"))
        timed.bytes_moved, timed.flops = session.bytes_moved, session.flops
        timed.roofline_ms = floor_ms(session.bytes_moved, session.flops, session.peaks, task.dtype)
        if config.time_candidate:
            weight_seed = derive_seed(seed, "timing", "weights")
            reference = make_reference(task, timed_shape, weight_seed)
            pool = InputPool(task, timed_shape, seed, config, "candidate")
            result.phases_s["time_and_check.pool"] = time.perf_counter() - started  # included in time_and_check
            clock: dict[str, float] = {}
            if task.timing == "graph":
                run, candidate = _time_in_graph(session, model_new, params, reference, pool, weight_seed, clock)
            else:
                candidate, _ = make_candidate(task, timed_shape, weight_seed, model_new, params, reference)
                run = time_model(candidate, pool, config, session.flush,
                                 check=timed_output_check(reference, pool, session.tolerance, clock, session.margin),
                                 check_seed=derive_seed(seed, "timing", "checked"))
            result.phases_s["time_and_check"] = time.perf_counter() - started
            result.phases_s["time_and_check.refresh"] = pool.refresh_s  # included in time_and_check
            result.phases_s.update({f"time_and_check.{k}": v for k, v in clock.items()})
            started = time.perf_counter()
            # Tampering first: the unwatched check times and traces with the harness's functions.
            _no_tampering(guard, "timed")
            note = _check_unwatched(session, ctx.kernels_seen, candidate, reference, pool,
                                    compare_time=task.timing != "graph")
            if note:
                result.warnings.append(note)
            _no_tampering(guard, "captured with nothing watching")
            result.phases_s["unwatched_check"] = time.perf_counter() - started
            del pool, candidate
            timed.candidate = run.stats
            _apply_roofline(result, timed, session)
        result.reason = _accept_reason(result)
    except Rejection as rejection:
        result.verdict, result.stage, result.reason = Verdict.REJECTED, rejection.stage, rejection.reason
    except CompileError as exc:
        result.verdict, result.stage, result.reason = Verdict.REJECTED, Stage.COMPILE, str(exc)
    except Exception as exc:  # noqa: BLE001 - the candidate's forward failed; classify it
        frame = _candidate_frame(exc, candidate_path)
        pressure = environmental_oom(exc)
        if pressure:  # a request that fit the GPU, but not what other processes left of it
            result.verdict, result.stage, result.reason = Verdict.ERROR, Stage.LAUNCH, pressure
        elif not frame and not _device_error(exc):
            # Raised in harness code with no candidate frame and no device error: our bug, not
            # the candidate's; reported as a harness error so it never counts against a kernel.
            traceback.print_exc()
            result.verdict, result.stage = Verdict.ERROR, Stage.LAUNCH
            result.reason = f"harness error while evaluating: {type(exc).__name__}: {str(exc)[:300]}"
        else:
            result.verdict, result.stage = Verdict.REJECTED, Stage.LAUNCH
            result.reason = f"forward failed{frame}: {classify_exception(exc)}"
    started = time.perf_counter()
    result.resources = [] if context_broken(result) else resource_report()
    sandboxed = _sandbox_rejection()
    if sandboxed is not None and result.verdict is not Verdict.ERROR:
        prior = f" (then: {result.stage.value}: {result.reason[:200]})" if not result.accepted else ""
        result.verdict, result.stage, result.reason = Verdict.REJECTED, Stage.ISOLATION, sandboxed.reason + prior
    if not context_broken(result):
        torch.cuda.empty_cache()
    result.phases_s["finish"] = time.perf_counter() - started
    return result


def _time_in_graph(session: Session, model_new: type, params: dict[str, Any], reference: Any, pool: Any,
                   weight_seed: int, clock: dict[str, float] | None = None) -> tuple[Any, Any]:
    """``TIMING = "graph"``: copies of the candidate, each with its own reference's weights,
    replayed from one CUDA graph; every output checked against its own reference. Returns the
    timing and the first copy (whose weights are ``reference``'s)."""
    from autotuner.evaluator.inputs import make_candidate, make_reference
    from autotuner.evaluator.measure import graph_copies, l2_bytes, model_bytes, time_graph_models, timed_output_check
    from autotuner.evaluator.timing import CaptureError
    from autotuner.evaluator.verify import Rejection, derive_seed

    task, shape = session.task, session.task.default_shape
    n = graph_copies(pool, model_bytes(reference), l2_bytes())
    seeds = [weight_seed] + [derive_seed(weight_seed, "copy", i) for i in range(1, n)]
    references = [reference] + [make_reference(task, shape, s) for s in seeds[1:]]
    candidates = [make_candidate(task, shape, s, model_new, params, r)[0] for s, r in zip(seeds, references)]
    checks = [timed_output_check(r, pool, session.tolerance, clock, session.margin) for r in references]
    try:
        run = time_graph_models(candidates, pool, session.config, check=lambda j, out: checks[j](j, out))
        return run, candidates[0]
    except CaptureError as exc:
        raise Rejection(Stage.TIMING, f'this task is timed from a CUDA graph (TIMING = "graph"), and the forward '
                                      f'could not be captured: {exc}. Launch on the current stream, with no host '
                                      "synchronization and no allocation of pinned memory in forward") from exc


def _no_tampering(guard: Any, when: str) -> None:
    from autotuner.evaluator.verify import Rejection

    if guard.changes():
        raise Rejection(Stage.INTEGRITY, f"the candidate tampered with the harness while {when}: {guard.changes()[:3]}")


def _check_unwatched(session: Session, watched: list[str], model: Any, reference: Any, pool: Any,
                     compare_time: bool) -> str | None:
    """What the forward runs with nothing watching, seen through a replayed CUDA graph
    (``evaluator/unwatched.py``); on the timed shape's first input set, after the timed calls."""
    from autotuner.evaluator.compare import compare_outputs
    from autotuner.evaluator.unwatched import check_unwatched

    def output_problem(out: Any) -> str | None:
        comparison = compare_outputs(out, reference(*pool.pristine(0)), session.tolerance)
        return None if comparison.ok else comparison.reason

    return check_unwatched(model, pool.sets[0], lambda: pool.refresh(0), output_problem, watched, compare_time,
                           session.flush)


def resource_report() -> list[KernelResources]:
    """Registers, spills and shared memory of every kernel the setting launched through the runtime.

    Read from the driver after the candidate ran (see ``autotuner.runtime.usage``); a report
    for the model, never part of the verdict. Nothing when no kernel ran through the runtime
    (CuPy or ``load_inline`` candidates) or the driver cannot say.
    """
    from dataclasses import fields

    from autotuner.runtime import usage

    numbers = [f.name for f in fields(KernelResources) if f.name != "name"]
    try:  # the candidate shared this process: take only well-formed entries, as plain ints
        return [KernelResources(str(entry["name"])[:200], **{k: int(entry.get(k, 0)) for k in numbers})
                for entry in usage.launched_kernels()[:64]]
    except Exception:  # noqa: BLE001 - unreadable or tampered with: no report, never a failure
        return []


_STICKY = ("illegal memory access", "misaligned address", "unspecified launch failure", "illegal instruction",
           "hardware stack error", "device-side assert")


def context_broken(result: EvalResult) -> bool:
    """After these errors the CUDA context is unusable: nothing more can run in this process."""
    return result.stage is Stage.LAUNCH and any(s in result.reason.lower() for s in _STICKY)


def _apply_roofline(result: EvalResult, timed: Any, session: Session) -> None:
    from autotuner.evaluator.verify import Rejection

    median = timed.candidate.median_ms
    if median < session.config.roofline_slack * timed.roofline_ms:
        raise Rejection(
            Stage.ROOFLINE,
            f"median {median:.4g} ms is faster than the hardware allows: {timed.bytes_moved / 1e6:.1f} MB "
            f"and {timed.flops / 1e9:.2f} GFLOP need at least {timed.roofline_ms:.4g} ms at the measured "
            f"peaks ({session.peaks.copy_gbps:.0f} GB/s); a measurement fault or a cheat",
        )
    result.roofline_fraction = timed.roofline_ms / median
    if timed.eager:
        result.speedup_eager = timed.eager.median_ms / median
    if timed.compiled:
        result.speedup_compile = timed.compiled.median_ms / median


def run_job(job: dict[str, Any], status_path: Path, emit: Any, child_phases: dict[str, float] | None = None) -> None:
    """Evaluate the candidate once per parameter set, emitting each result as it is done."""
    from autotuner.errors import CompileError
    from autotuner.evaluator import isolation
    from autotuner.candidate import declared_kernel_names, import_candidate
    from autotuner.evaluator.ahead import AHEAD_PHASE
    from autotuner.evaluator.watch import HarnessGuard

    session = prepare(job, status_path, child_phases)
    candidate_path = job["candidate_path"]
    param_sets = list(job.get("param_sets") or [{}])
    first = int(job.get("first_index", 0))
    # ---- from here on, untrusted code is in the process --------------------------------
    _status(status_path, f"candidate:{first}")
    guard = HarnessGuard()
    started = time.perf_counter()
    isolation.arm()
    try:
        module = import_candidate(Path(candidate_path))
        model_new = getattr(module, "ModelNew")
        if guard.changes():
            raise RuntimeError(f"importing the candidate tampered with the harness: {guard.changes()[:3]}")
    except Exception as exc:  # noqa: BLE001 - any failure to import is the candidate's
        reason = str(exc) if isinstance(exc, CompileError) else classify_exception(exc)
        stage = Stage.INTEGRITY if "tampered" in reason else Stage.COMPILE
        reason = f"import failed{_candidate_frame(exc, candidate_path)}: {reason}"
        if isolation.violation_reason():
            stage, reason = Stage.ISOLATION, f"{isolation.violation_reason()} ({reason})"
        for _ in param_sets:
            result = _new_result(session)
            result.verdict, result.stage, result.reason = Verdict.REJECTED, stage, reason
            emit(result)
        return
    if isolation.violation_reason():
        for _ in param_sets:
            result = _new_result(session)
            result.verdict, result.stage, result.reason = Verdict.REJECTED, Stage.ISOLATION, isolation.violation_reason()
            emit(result)
        return
    import_ms = (time.perf_counter() - started) * 1e3
    candidate_text = Path(candidate_path).read_text()
    kernel_names = declared_kernel_names(candidate_text)
    ahead_parts: dict[str, float] = {}
    ahead_s = _compile_ahead(session, Path(candidate_path), candidate_text, param_sets, ahead_parts,
                             lambda i: _status(status_path, f"candidate:{first + i}{AHEAD_PHASE}")) \
        if session.config.compile_ahead else None
    for offset, params in enumerate(param_sets):
        _status(status_path, f"candidate:{first + offset}")
        started = time.perf_counter()
        result = evaluate_params(session, model_new, kernel_names, dict(params), first + offset, guard, candidate_path)
        result.compile_ms = import_ms
        result.phases_s["import"] = import_ms / 1e3
        if ahead_s is not None and offset == 0:
            result.phases_s["compile_ahead"] = ahead_s
            result.phases_s.update(ahead_parts)  # included in compile_ahead
        result.wall_s = time.perf_counter() - started
        emit(result)
        if context_broken(result):
            return  # the parent starts a fresh child for the remaining settings


def _compile_ahead(session: Session, candidate_path: Path, candidate_text: str, param_sets: list[dict[str, Any]],
                   parts: dict[str, float], on_setting: Any) -> float | None:
    """The batch's modules compiled side by side before the first setting is built, declared or
    recorded from dry runs (``evaluator/ahead.py``: setting i's dry runs under its own status);
    seconds taken, or None."""
    from autotuner.evaluator.ahead import compile_ahead_of_verify
    from autotuner.evaluator.verify import derive_seed

    return compile_ahead_of_verify(session.task, candidate_path, candidate_text, param_sets,
                                   derive_seed(session.base_seed, "compile ahead"), parts, on_setting)


def _accept_reason(result: EvalResult) -> str:
    n_shapes = len(result.shapes)
    hidden = sum(s.hidden for s in result.shapes)
    trials = sum(s.trials for s in result.shapes)
    return (f"correct on {n_shapes} shapes ({hidden} hidden), {trials} fresh input sets; "
            f"own kernels on the current stream; no disallowed PyTorch ops")


def open_gpu() -> None:
    """Initialize CUDA before the sandbox shuts the process in.

    At init the driver opens its device files, reads /proc and /sys and looks for an MPS
    daemon's pipe under /tmp; a process already shut in by Landlock, rlimits and a network
    namespace failed that on an H200 (torch.cuda.is_available() False). No candidate code has
    run yet, and what the sandbox guards (files, network, secrets) is closed right after.
    Without a GPU this does nothing, and the job reports that as before.
    """
    import torch

    if torch.cuda.is_available():
        torch.cuda.init()
        torch.cuda.current_device()  # the primary context


def child_entry(job_path: str, result_path: str, status_path: str, log_path: str, visible: str,
                env: dict[str, str] | None = None) -> None:
    """Entry of a child forked from the fork server: own session, own log, one GPU."""
    os.setsid()  # the parent kills this whole process group on timeout
    if env is not None:  # the allow-listed environment (the server was started with it too)
        os.environ.clear()
        os.environ.update(env)
    os.environ["CUDA_VISIBLE_DEVICES"] = visible  # before anything initializes CUDA
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.chdir(os.environ.get("HOME") if env is not None else os.path.dirname(job_path))
    main(["worker", job_path, result_path, status_path])


def main(argv: list[str]) -> int:
    entered = time.time()
    job_path, result_path, status_path = (Path(a) for a in argv[1:4])
    job = json.loads(job_path.read_text())
    job_path.unlink()  # the seeds leave the file system before any candidate code runs
    # From the parent's spawn to here: the fork (or interpreter start) and the preloaded imports.
    phases = {"child_start": max(0.0, entered - float(job.get("spawned_at", entered)))}
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The harness's own files are opened now: the sandbox below closes their folder.
    result_fd = os.open(result_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    _CHANNELS[str(status_path)] = os.open(status_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    started = time.perf_counter()
    open_gpu()  # here, not lazily in the setup, so the CUDA context's cost is a phase of its own
    phases["cuda_init"] = time.perf_counter() - started
    if job.get("sandbox"):
        from autotuner.evaluator.isolation import SandboxSpec, enter

        started = time.perf_counter()
        layers = enter(SandboxSpec(**job["sandbox"]))
        phases["sandbox"] = time.perf_counter() - started
        print("sandbox: " + "; ".join(layers), flush=True)

    def emit(result: EvalResult) -> None:  # one line per parameter set, as each finishes
        os.write(result_fd, (json.dumps(result.to_json()) + "\n").encode())

    try:
        run_job(job, status_path, emit, phases)
    except Exception as exc:  # noqa: BLE001 - harness failure: reported as such
        traceback.print_exc()
        emit(EvalResult(Verdict.ERROR, Stage.DONE, f"harness error: {type(exc).__name__}: {exc}", phases_s=phases))
    _status(status_path, "done")
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: a candidate's broken CUDA context can hang or crash it.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
