"""`autotuner bench suite`: the rule proposer over a folder of tasks, scored like KernelBench.

Per task: translated or not, correct or not, the best kernel's speedup against eager and
against torch.compile, % of roofline. Overall: fast_p (the share of tasks with a correct
kernel faster than p x the baseline) at p = 0, 1, 1.5, 2 against both baselines, geomean
speedups over tasks with a correct kernel, and candidates per GPU-hour.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from autotuner.speedup import geomean
from evolution.loop import TaskOutcome

FAST_P = (0.0, 1.0, 1.5, 2.0)


@dataclass
class SuiteRow:
    task: str
    family: str
    translated: bool
    correct: bool
    candidates: int
    speedup_eager: float | None
    speedup_compile: float | None
    roofline: float | None
    best_ms: float | None
    eager_ms: float | None
    compile_ms: float | None
    why: str = ""
    evaluated: int = 0  # candidates this run evaluated (``candidates`` also counts those read back)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per search phase (TaskOutcome.seconds)


@dataclass
class SuiteReport:
    rows: list[SuiteRow]
    wall_s: float
    gpu: str
    n_gpus: int = 1  # GPUs the run evaluated on: the rate is per GPU-hour
    fast_p: dict[str, dict[float, float]] = field(default_factory=dict)
    geomean_eager: float | None = None
    geomean_compile: float | None = None

    @property
    def candidates(self) -> int:
        return sum(r.candidates for r in self.rows)

    @property
    def evaluated(self) -> int:
        return sum(r.evaluated for r in self.rows)

    def phase_seconds(self) -> dict[str, float]:
        """Wall seconds per search phase, summed over the tasks (what the rate is made of)."""
        total: dict[str, float] = {}
        for row in self.rows:
            for phase, secs in row.seconds.items():
                total[phase] = total.get(phase, 0.0) + secs
        return total

    @property
    def per_gpu_hour(self) -> float:
        """Candidates this run evaluated per hour of its wall time and GPU: a resumed run's table
        also holds results read back from the archive, which this run's time did not pay for."""
        return 3600 * self.evaluated / (self.wall_s * max(1, self.n_gpus)) if self.wall_s else 0.0


def _why(outcome: TaskOutcome) -> str:
    if outcome.stop_kind == "not searched":
        return outcome.stop_reason
    if not outcome.translated:
        return "; ".join(outcome.notes[:1]) or "not translated"
    if outcome.best_result is None:
        stages = {k: v for k, v in outcome.verdicts.items() if k != "accepted"}
        return "rejected: " + ", ".join(f"{k} x{v}" for k, v in sorted(stages.items()))
    return ""


def summarize(outcomes: list[TaskOutcome], wall_s: float, gpu: str, n_gpus: int = 1) -> SuiteReport:
    rows = []
    for o in outcomes:
        best = o.best_result
        timed = best.timed if best else None
        rows.append(SuiteRow(
            o.task, o.family, o.translated, best is not None, o.candidates,
            best.speedup_eager if best else None, best.speedup_compile if best else None,
            best.roofline_fraction if best else None,
            timed.candidate.median_ms if timed and timed.candidate else None,
            timed.eager.median_ms if timed and timed.eager else None,
            timed.compiled.median_ms if timed and timed.compiled else None,
            _why(o), o.evaluated, {k: round(v, 3) for k, v in o.seconds.items()}))
    report = SuiteReport(rows, wall_s, gpu, n_gpus)
    n = max(1, len(rows))
    for name, attr in (("eager", "speedup_eager"), ("compile", "speedup_compile")):
        report.fast_p[name] = {
            p: sum(1 for r in rows if r.correct and (p == 0 or (getattr(r, attr) or 0) > p)) / n for p in FAST_P}
    report.geomean_eager = geomean([r.speedup_eager for r in rows if r.correct and r.speedup_eager])
    report.geomean_compile = geomean([r.speedup_compile for r in rows if r.correct and r.speedup_compile])
    return report


def run_suite(archive: Any, config: Any, tasks: list[Any], callbacks: Any = None) -> SuiteReport:
    from autotuner.app.tuning_run import run_tuning

    started = time.perf_counter()
    outcome = run_tuning(archive, config, tasks, callbacks=callbacks)
    wall = time.perf_counter() - started
    gpus = {o.best_result.provenance.gpu_name for o in outcome.outcomes
            if o.best_result and o.best_result.provenance}
    n_gpus = config.cluster.workers if config.cluster.enabled else len(config.gpus)
    return summarize(outcome.outcomes, wall, ", ".join(sorted(g for g in gpus if g)) or "unknown", n_gpus)
