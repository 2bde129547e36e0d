"""What a run found for one task: counts, the best kernel, the progress curve, why it stopped."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from autotuner.evaluator.verdict import EvalResult

# How a task's search can end (the first word of ``TaskOutcome.stop_reason``):
STOP_KINDS = {
    "budget": "the run's budget (candidates, tokens, cost or minutes) is spent",
    "share": "the task's fair share of the run's budget is spent",
    "converged": "no improvement for `patience` generations",
    "exhausted": "nothing left to try (the rule proposer's variants evaluated and tuned)",
    "generations": "the optional cap on generations per task (search.generations) is reached",
    "not searched": "the run's budget was spent before the task's turn",
}


@dataclass
class TaskOutcome:
    """What the run found for one task (printed as the final table, written to the report)."""

    task: str
    family: str
    translated: bool = False
    notes: list[str] = field(default_factory=list)
    candidates: int = 0  # every result counted, read back from the archive or evaluated now
    evaluated: int = 0  # evaluated by this run (this process), not read back: what its wall time paid for
    verdicts: Counter = field(default_factory=Counter)
    best_kernel_id: int | None = None
    best_result: EvalResult | None = None
    curve: list[tuple[int, float]] = field(default_factory=list)  # (candidates so far, best speedup)
    stop_reason: str = ""  # "<kind>: <detail>", kind one of STOP_KINDS
    generations: int = 0  # LLM generations run (this session)
    requests: Counter = field(default_factory=Counter)  # LLM requests sent, by operator
    # wall seconds this session spent per phase: "propose" (the rules' translation), "variants"
    # (evaluating the structural variants: the first one also measures the baselines), "tune",
    # "evolve" (the LLM loop), and inside them "evaluator.<phase>" (the evaluator's own
    # phases_s: child start, setup, baselines, verify, timing...); where a task's time goes
    seconds: Counter = field(default_factory=Counter)

    @property
    def best_speedup(self) -> float | None:
        return self.best_result.speedup_eager if self.best_result else None

    @property
    def stop_kind(self) -> str:
        return self.stop_reason.split(":", 1)[0] if self.stop_reason else ""
