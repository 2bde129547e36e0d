"""The winner gate: compute-sanitizer memcheck, racecheck and initcheck on a small shape.

Guard bytes see writes next to a buffer and reads that reach the output; they cannot see a
read whose value is dropped, a shared-memory race that happens to give the right answer, or
a read of uninitialised shared memory. compute-sanitizer can, at 10-100x the run time, so it
runs once per winner (before ``deploy`` or ``export`` uses a kernel), not per candidate.

The candidate runs in a child (allow-listed environment, own folder, audit hook, limits) with
PyTorch's caching allocator off (``PYTORCH_NO_CUDA_MEMORY_CACHING=1``): every tensor is then
its own ``cudaMalloc`` of its exact size, so memcheck's bounds are the tensor's bounds, not a
2 MiB segment's. Run as ``python -m autotuner.evaluator.sanitize JOB.json`` (the child).
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)
TOOLS = ("memcheck", "racecheck", "initcheck")
ERROR_EXIT = 86  # compute-sanitizer's exit code when it found errors (--error-exitcode)
_SUMMARY = re.compile(r"(ERROR SUMMARY: \d+ errors?|RACECHECK SUMMARY: \d+ hazards? displayed \(\d+ errors?, \d+ warnings?\))")
_COUNT = re.compile(r"ERROR SUMMARY: (\d+)|\((\d+) errors?,")


def find_compute_sanitizer() -> str | None:
    """``$AUTOTUNER_COMPUTE_SANITIZER``, else PATH, else the CUDA toolkit folders."""
    explicit = os.environ.get("AUTOTUNER_COMPUTE_SANITIZER")
    if explicit and os.access(explicit, os.X_OK):
        return explicit
    found = shutil.which("compute-sanitizer")
    if found:
        return found
    bases = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda",
             *sorted(glob.glob("/usr/local/cuda-*"), reverse=True), "/opt/cuda"]
    nvcc = shutil.which("nvcc")
    if nvcc:
        bases.insert(0, str(Path(nvcc).resolve().parents[1]))
    for base in filter(None, bases):
        for rel in ("bin/compute-sanitizer", "compute-sanitizer/compute-sanitizer"):
            path = Path(base) / rel
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
    return None


@dataclass
class ToolRun:
    tool: str
    passed: bool
    seconds: float
    summary: str
    returncode: int | None
    excerpt: str = ""  # the first reported problem, for the reason


@dataclass
class SanitizerReport:
    passed: bool
    reason: str
    shape: str = ""
    seconds: float = 0.0
    runs: list[ToolRun] = field(default_factory=list)
    sanitizer: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _excerpt(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip().startswith("=========")]
    interesting = [ln.strip("= ").strip() for ln in lines if ln.strip("= ").strip()
                   and not ln.strip("= ").startswith(("COMPUTE-SANITIZER", "ERROR SUMMARY", "RACECHECK SUMMARY"))]
    return " | ".join(interesting[:3])[:400]


def _errors(summary: str) -> int:
    found = _COUNT.search(summary)
    return int(next(g for g in found.groups() if g is not None)) if found else -1


# Started through this on Linux, compute-sanitizer gets SIGKILL when the thread that started it
# ends: a gate whose process is killed (a timeout, SIGKILL) leaves no tool running on the GPU.
# Measured before (H200, 2026-12-01): a run cut by `timeout` left its tools running, and the
# evaluator bench after it ran a third slower. argv: parent pid, then the command.
_DIE_WITH_PARENT = ("import ctypes, os, signal, sys; ctypes.CDLL(None).prctl(1, signal.SIGKILL); "
                    "os.getppid() == int(sys.argv[1]) or sys.exit(137); os.execvp(sys.argv[2], sys.argv[2:])")


def dies_with_parent(command: list[str]) -> list[str]:
    """``command`` wrapped so that it is killed with the process starting it (PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return command
    return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *command]


def _die_with_parent() -> None:
    """The sanitize child under a killed compute-sanitizer ends too."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL


def run_tool(sanitizer: str, tool: str, job_path: Path, env: dict[str, str], cwd: Path, timeout_s: float) -> ToolRun:
    """One compute-sanitizer tool over the sanitize child; passes only on a clean summary."""
    command = [sanitizer, "--tool", tool, "--error-exitcode", str(ERROR_EXIT), "--target-processes",
               "application-only", "--print-limit", "20", sys.executable, "-m", "autotuner.evaluator.sanitize",
               str(job_path)]
    started = time.perf_counter()
    try:
        proc = subprocess.run(dies_with_parent(command), env=env, cwd=cwd, capture_output=True, text=True,
                              timeout=timeout_s, start_new_session=True)
    except subprocess.TimeoutExpired:
        return ToolRun(tool, False, time.perf_counter() - started, f"timed out after {timeout_s:g} s", None)
    seconds = time.perf_counter() - started
    output = proc.stdout + "\n" + proc.stderr
    summaries = _SUMMARY.findall(output)
    summary = summaries[-1] if summaries else "no summary"
    ran = "SANITIZE-CHILD-OK" in output
    passed = proc.returncode == 0 and ran and _errors(summary) == 0
    excerpt = "" if passed else (_excerpt(output) or output.strip().splitlines()[-1:][0][:300] if output.strip() else "")
    return ToolRun(tool, passed, seconds, summary, proc.returncode, excerpt)


def sanitize(task_path: str | Path, candidate_path: str | Path, params: dict[str, Any] | None = None,
             policy: str | None = None, tools: tuple[str, ...] = TOOLS, timeout_s: float = 600.0) -> SanitizerReport:
    """Run each tool on the candidate at the task's smallest shape; passed only if all are clean."""
    from autotuner.evaluator.isolation import child_environment
    from autotuner.runtime.compile import cache_root

    sanitizer = find_compute_sanitizer()
    if sanitizer is None:
        return SanitizerReport(False, "compute-sanitizer not found (PATH, $CUDA_HOME/bin, /usr/local/cuda*/bin, or "
                                      "set AUTOTUNER_COMPUTE_SANITIZER): a kernel cannot become a winner unchecked")
    started = time.perf_counter()
    report = SanitizerReport(True, "", sanitizer=sanitizer)
    with tempfile.TemporaryDirectory(prefix="autotuner-sanitize-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        job_path = Path(tmp) / "job.json"
        job_path.write_text(json.dumps({"task_path": str(Path(task_path).resolve()), "policy": policy,
                                        "candidate_path": str(Path(candidate_path).resolve()),
                                        "params": params or {}, "workdir": str(work), "cache_dir": str(cache_root())}))
        env = child_environment(dict(os.environ), work, cache_root(), {"PYTORCH_NO_CUDA_MEMORY_CACHING": "1"})
        # The tools side by side: each is its own process over its own copy of the child, and
        # each costs 10-100x the forward; one after another, a winner's gate took their sum.
        with ThreadPoolExecutor(max_workers=max(1, len(tools))) as pool:
            runs = list(pool.map(lambda tool: run_tool(sanitizer, tool, job_path, env, work, timeout_s), tools))
        for run in runs:
            report.runs.append(run)
            log.info("compute-sanitizer %s: %s in %.1f s", run.tool, run.summary, run.seconds)
        shape_file = work / "shape.txt"
        report.shape = shape_file.read_text().strip() if shape_file.is_file() else ""
    report.seconds = time.perf_counter() - started
    failed = [r for r in report.runs if not r.passed]
    report.passed = not failed
    if failed:
        r = failed[0]
        report.reason = (f"compute-sanitizer {r.tool} failed on shape {report.shape or '?'}: {r.summary} "
                         f"(exit {r.returncode}){': ' + r.excerpt if r.excerpt else ''}")
    else:
        report.reason = (f"compute-sanitizer {', '.join(tools)} clean on shape {report.shape} "
                         f"({report.seconds:.1f} s)")
    return report


def winner_gate(result: Any, task_path: str | Path, candidate_path: str | Path, params: dict[str, Any] | None = None,
                policy: str | None = None) -> Any:
    """An accepted EvalResult stays accepted only if compute-sanitizer passes; else rejected at ``memory``.

    The sanitizer's verdict goes into the result (reason, ``phases_s["sanitizer"]``), so the
    archive row recorded for a re-verification carries it.
    """
    from autotuner.evaluator.verdict import Stage, Verdict

    if not result.accepted:
        return result
    report = sanitize(task_path, candidate_path, params, policy=policy or result.policy)
    result.phases_s["sanitizer"] = report.seconds
    if report.passed:
        result.reason = f"{result.reason}; {report.reason}"
    else:
        result.verdict, result.stage, result.reason = Verdict.REJECTED, Stage.MEMORY, report.reason
    return result


def _smallest_shape(task: Any) -> Any:
    from autotuner.evaluator.inputs import make_inputs

    def size(shape: Any) -> int:
        return sum(v.numel() for v in make_inputs(task, shape, 0, device="meta") if hasattr(v, "numel"))

    return min(task.shapes, key=size)


@contextmanager
def filled_empties() -> Iterator[None]:
    """``torch.empty`` filled (NaN for floats) while models are built, raw again for the forwards.

    Building a model is not what the gate checks, yet it reads memory no kernel wrote: a
    ``ModelNew`` that declares ``nn.Parameter(torch.empty(n, k))`` (its weights come from the
    reference's state dict afterwards) is cast to the task's dtype by a copy kernel that reads
    every uninitialised element. Measured on an H200 (2026-12-01): initcheck reported 341,971
    such reads for the decode down-projection seed, rejected it and took 123 s to do so. The
    forwards still run with raw allocations, so a kernel that reads memory before anything
    wrote it is still reported."""
    import torch

    was_deterministic = torch.are_deterministic_algorithms_enabled()
    was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    was_filling = torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=True)  # filling needs the deterministic flag on
    torch.utils.deterministic.fill_uninitialized_memory = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # warn_only's notes about nondeterministic ops
            yield
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = was_filling
        torch.use_deterministic_algorithms(was_deterministic, warn_only=was_warn_only)


def _child(job_path: str) -> int:
    """Inside compute-sanitizer: two forwards of the candidate on fresh inputs, then exit normally."""
    _die_with_parent()
    job = json.loads(Path(job_path).read_text())
    from autotuner.evaluator import isolation
    from autotuner.evaluator.worker import open_gpu

    open_gpu()
    isolation.enter(isolation.SandboxSpec(workdir=job["workdir"], cache_dir=job["cache_dir"], network=False,
                                          files=False, limits={"cpu_s": 3600}))
    import torch

    from autotuner.candidate import import_candidate
    from autotuner.evaluator.inputs import make_candidate, make_inputs, make_reference
    from autotuner.tasks import load_task

    task = load_task(job["task_path"], job.get("policy"))
    shape = _smallest_shape(task)
    Path("shape.txt").write_text(shape.name)
    with filled_empties():
        reference = make_reference(task, shape, 1)
    isolation.arm()
    model_new = import_candidate(Path(job["candidate_path"])).ModelNew
    with filled_empties():
        candidate, _ = make_candidate(task, shape, 1, model_new, job["params"], reference)
    with torch.no_grad():
        for seed in (2, 3):
            candidate(*make_inputs(task, shape, seed))
    torch.cuda.synchronize()
    if isolation.violations():
        print(f"sandbox: {isolation.violation_reason()}", flush=True)
        return 3
    print("SANITIZE-CHILD-OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
