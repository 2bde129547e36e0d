"""How many candidates an hour one GPU can judge: the evaluator's own speed, measured.

Three figures: a candidate evaluated alone in its own child (with baselines cached, the
usual case in a run), several parameter settings of one candidate sharing a child (how
optuna tuning runs), and the same through a fresh interpreter instead of the fork server.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

from autotuner.evaluator.eval_config import EvalConfig
from autotuner.evaluator.sandbox import evaluate, evaluate_many


@dataclass
class Throughput:
    single_wall_s: list[float]
    batch_wall_s: float
    batch_settings: int
    fresh_interpreter_wall_s: float
    verdicts: list[str]

    @property
    def single_p50_s(self) -> float:
        return statistics.median(self.single_wall_s)

    @property
    def per_hour_single(self) -> float:
        return 3600 / self.single_p50_s

    @property
    def per_hour_batched(self) -> float:
        return 3600 * self.batch_settings / self.batch_wall_s


def measure_throughput(task: Path, candidate: Path, repeats: int = 5, settings: list[dict] | None = None,
                       config: EvalConfig | None = None) -> Throughput:
    config = config or EvalConfig()
    evaluate(task, candidate, config)  # fills the peak and baseline caches, as after a run's first candidate
    singles, verdicts = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        result = evaluate(task, candidate, config)
        singles.append(time.perf_counter() - started)
        verdicts.append(result.verdict.value)
    settings = settings or [{}] * 8
    started = time.perf_counter()
    batch = evaluate_many(task, candidate, settings, config)
    batch_wall = time.perf_counter() - started
    verdicts += [r.verdict.value for r in batch]
    started = time.perf_counter()
    verdicts.append(evaluate(task, candidate, replace(config, fork_server=False)).verdict.value)
    fresh = time.perf_counter() - started
    return Throughput(singles, batch_wall, len(settings), fresh, verdicts)
