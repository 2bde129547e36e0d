"""The evaluator: every candidate is untrusted code (see docs/verification.md).

``evaluate(task, candidate)`` statically checks the candidate, then compiles, verifies and
times it in a killable child process pinned to one GPU, and returns an ``EvalResult``.
"""

from autotuner.evaluator.eval_config import EvalConfig
from autotuner.evaluator.verdict import EvalResult, KernelResources, ShapeResult, Stage, TimingStats, Verdict

__all__ = ["EvalConfig", "EvalResult", "KernelResources", "ShapeResult", "Stage", "TimingStats", "Verdict", "evaluate", "evaluate_many"]


def evaluate(task, candidate_path, config=None, params=None):  # noqa: ANN001 - re-exported
    from autotuner.evaluator.sandbox import evaluate as _evaluate

    return _evaluate(task, candidate_path, config=config, params=params)


def evaluate_many(task, candidate_path, param_sets, config=None):  # noqa: ANN001 - re-exported
    from autotuner.evaluator.sandbox import evaluate_many as _evaluate_many

    return _evaluate_many(task, candidate_path, param_sets, config=config)
