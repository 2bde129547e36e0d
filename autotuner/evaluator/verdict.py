"""What an evaluation produces: a verdict with its reason, measurements and provenance.

Every attempt ends in a recorded state, ``accepted`` or ``rejected`` at a named stage with a
reason a person can read; ``error`` means the harness itself failed, not the candidate.
These types are plain data (JSON round-trip) so that the child process, the parent, the
archive and the CLI all share one shape.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class Verdict(str, Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ERROR = "error"  # the harness failed; says nothing about the candidate


class Stage(str, Enum):
    """Where a candidate was stopped, in the order the evaluator runs them."""

    STATIC = "static_check"  # source analysis before any of it runs
    COMPILE = "compile"  # import / NVRTC / load_inline failed
    LAUNCH = "launch"  # forward raised, CUDA error, out of memory
    TIMEOUT = "timeout"  # hard timeout; the process tree was killed
    CRASH = "crash"  # the child died (signal, abort, illegal address taking the process)
    INTEGRITY = "integrity"  # PyTorch compute ops, no own kernel, side stream, tampering, other work unwatched
    ISOLATION = "isolation"  # tried to leave the sandbox: files, network, processes
    MEMORY = "memory"  # wrote or read outside its buffers (guard bytes, compute-sanitizer)
    CORRECTNESS = "correctness"  # wrong values, unwritten outputs, race, inputs modified
    TIMING = "timing"  # results computed while timed were wrong (output caching)
    ROOFLINE = "roofline"  # faster than the hardware allows
    DONE = "done"  # passed every stage


@dataclass
class TimingStats:
    """Per-call times of one function at one shape, in milliseconds, unrounded."""

    median_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    p10_ms: float
    p90_ms: float
    n_calls: int
    checked_calls: int | None = None  # calls whose output was checked in full (None: not recorded)

    @classmethod
    def from_samples(cls, samples_ms: list[float], calls_per_sample: int = 1) -> "TimingStats":
        """``calls_per_sample``: calls each sample timed together (a graph replay of several
        copies); ``n_calls`` counts calls, so every timing mode answers the same contract."""
        if not samples_ms:
            raise ValueError("no timing samples")
        ordered = sorted(samples_ms)
        n = len(ordered)
        return cls(
            median_ms=statistics.median(ordered),
            mean_ms=statistics.fmean(ordered),
            std_ms=statistics.pstdev(ordered) if n > 1 else 0.0,
            min_ms=ordered[0],
            max_ms=ordered[-1],
            p10_ms=ordered[int(0.1 * (n - 1))],
            p90_ms=ordered[int(0.9 * (n - 1))],
            n_calls=n * max(1, calls_per_sample),
        )


@dataclass
class ShapeResult:
    """Verification (and, for timed shapes, timing) at one shape."""

    shape: str
    hidden: bool
    trials: int
    max_abs_err: float | None = None
    max_rel_l2: float | None = None
    passed: bool = False
    candidate: TimingStats | None = None
    eager: TimingStats | None = None
    compiled: TimingStats | None = None
    bytes_moved: int | None = None
    flops: int | None = None
    roofline_ms: float | None = None


@dataclass
class KernelResources:
    """What the compiler gave one kernel, and how it was first launched: the resource report.

    Read from the CUDA driver's function attributes of every kernel the candidate launched
    through ``autotuner.runtime`` (NVRTC), so a model optimizing a kernel can see register
    pressure, spills and shared memory, as ``ptxas -v`` would show a person. ``local_bytes``
    is local memory per thread: register spills and local arrays. A report only: the
    candidate ran in the same process, so it is never used for a verdict.
    """

    name: str
    registers: int  # per thread
    local_bytes: int = 0  # local memory per thread (spills, local arrays)
    shared_static_bytes: int = 0  # __shared__ declared in the source, per block
    shared_dynamic_bytes: int = 0  # requested at launch, per block
    const_bytes: int = 0
    max_threads_per_block: int = 0  # the most this kernel can launch with (register limited)
    block_threads: int = 0  # threads per block of the first launch


@dataclass
class Provenance:
    harness_version: str
    gpu_name: str = ""
    capability: str = ""
    driver: str = ""
    torch_version: str = ""
    torch_cuda: str = ""
    cupy_version: str = ""
    python: str = ""
    peak_gbps: float | None = None
    peak_tflops: float | None = None
    seeds: list[int] = field(default_factory=list)
    tolerances: dict[str, float] = field(default_factory=dict)
    sandbox: str = ""  # the isolation layers the candidate ran under


@dataclass
class EvalResult:
    verdict: Verdict
    stage: Stage
    reason: str
    task_name: str = ""
    task_hash: str = ""
    candidate_hash: str = ""
    policy: str = "strict"
    dtype: str = "float32"
    shapes: list[ShapeResult] = field(default_factory=list)
    max_abs_err: float | None = None
    speedup_eager: float | None = None
    speedup_compile: float | None = None
    roofline_fraction: float | None = None
    compile_ms: float | None = None
    wall_s: float | None = None
    warnings: list[str] = field(default_factory=list)
    kernels_seen: list[str] = field(default_factory=list)
    provenance: Provenance | None = None
    phases_s: dict[str, float] = field(default_factory=dict)  # where the evaluation's wall time went
    resources: list[KernelResources] = field(default_factory=list)  # per kernel the candidate launched

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.ACCEPTED

    @property
    def timed(self) -> ShapeResult | None:
        return next((s for s in self.shapes if s.candidate is not None), None)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict.value
        data["stage"] = self.stage.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "EvalResult":
        data = dict(data)
        shapes = []
        for s in data.pop("shapes", []):
            s = dict(s)
            for key in ("candidate", "eager", "compiled"):
                if s.get(key) is not None:
                    s[key] = TimingStats(**s[key])
            shapes.append(ShapeResult(**s))
        prov = data.pop("provenance", None)
        resources = [KernelResources(**r) for r in data.pop("resources", None) or []]
        return cls(
            verdict=Verdict(data.pop("verdict")),
            stage=Stage(data.pop("stage")),
            shapes=shapes,
            provenance=Provenance(**prov) if prov else None,
            resources=resources,
            **data,
        )


def rejected(stage: Stage, reason: str, **extra: Any) -> EvalResult:
    return EvalResult(Verdict.REJECTED, stage, reason, **extra)
