"""How hard the evaluator looks: trials, timing calls, time limits. Frozen; one per run."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class EvalConfig:
    trials: int = 5  # fresh input sets per shape (contract: at least 5)
    timing_calls: int = 50  # timed calls per function (contract: at least 50)
    warmup_calls: int = 5
    # Timed calls whose output gets the full check (fresh draw of the inputs, inputs unchanged,
    # reference, comparison): an unpredictable sample of this share, at least timed_checks_min
    # of them (timing.checked_sample). 1.0 checks every call, as before 2026-12-03; the sample
    # took time_and_check from 0.54 to 0.30 s a candidate (five suite tasks, H200, 2026-12-03).
    timed_checks: float = 0.25
    timed_checks_min: int = 12
    timeout_s: float = 300.0  # hard limit for one candidate's child process tree
    baseline_timeout_s: float = 900.0  # eager + torch.compile baselines (first time per task)
    gpu: int = 0  # which visible GPU the child is pinned to
    static_check: bool = True  # off only in tests proving the run-time checks stand alone
    time_candidate: bool = True
    baselines: bool = True  # time eager and torch.compile (cached per task, shape and GPU)
    compile_baseline: bool = True
    roofline_slack: float = 0.75  # reject times under slack x the hardware floor
    pool_bytes: int = 8 << 30  # device memory for the rotating pool of timing inputs
    fork_server: bool = True  # fork children from a process with torch preloaded (faster start)
    compile_ahead: bool = True  # a batch's modules, declared or recorded from dry runs, compiled side by side first
    # Isolation of the candidate's process (evaluator/isolation.py): allow-listed environment,
    # own folder, no network, file rules, and these limits.
    isolation: bool = True
    host_memory_gb: float = 64.0  # RLIMIT_DATA (private writable memory; RLIMIT_AS would break CUDA)
    file_size_mb: int = 4096  # RLIMIT_FSIZE: largest file the child may write (a load_inline .so is ~10 MB)
    processes: int = 256  # RLIMIT_NPROC headroom over the user's current tasks (does not bind root)
    cpu_s: float | None = None  # RLIMIT_CPU; None: 2 x (timeout_s + baseline_timeout_s)
    policy: str | None = None  # policy for task files that declare no POLICY (None: "strict")
    guard_bytes: int = 4096  # canary bytes before and after every buffer the candidate gets or makes; 0: off

    def __post_init__(self) -> None:
        if self.trials < 1 or self.timing_calls < 1:
            raise ValueError("trials and timing_calls must be positive")
        if not 0.0 < self.timed_checks <= 1.0 or self.timed_checks_min < 1:
            raise ValueError("timed_checks must be in (0, 1] and timed_checks_min at least 1")
        if self.policy not in (None, "strict", "hybrid"):
            raise ValueError(f"policy must be 'strict' or 'hybrid', got {self.policy!r}")
        if self.guard_bytes < 0 or self.guard_bytes % 256:
            raise ValueError("guard_bytes must be a non-negative multiple of 256 (keeps buffers aligned)")

    @property
    def checked_calls(self) -> int:
        """How many of the candidate's timed calls get the full output check."""
        return min(self.timing_calls, max(self.timed_checks_min, math.ceil(self.timed_checks * self.timing_calls)))

    @property
    def cpu_limit_s(self) -> int:
        return int(self.cpu_s if self.cpu_s is not None else 2 * (self.timeout_s + self.baseline_timeout_s))
