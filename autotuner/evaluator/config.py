"""How hard the evaluator looks: trials, timing calls, time limits. Frozen; one per run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EvalConfig:
    trials: int = 5  # fresh input sets per shape (contract: at least 5)
    timing_calls: int = 50  # timed calls per function (contract: at least 50)
    warmup_calls: int = 5
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

    def __post_init__(self) -> None:
        if self.trials < 1 or self.timing_calls < 1:
            raise ValueError("trials and timing_calls must be positive")
