"""Optuna search over a candidate's numeric parameters (block size, vector width, ...).

The evaluator is expensive and evaluates several settings of the same source in one child
process, so the study is driven by ask/tell in batches. Settings already measured (in this
run, or before a resume, from the archive) are told to the study first and never evaluated
again.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass
from typing import Any, Callable

import optuna

from autotuner.evaluator.verdict import EvalResult

log = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)


def params_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def objective(result: EvalResult) -> float | None:
    """Median time in ms of an accepted result; None for a failure (pruned from the model)."""
    timed = result.timed
    if result.accepted and timed is not None and timed.candidate is not None:
        return timed.candidate.median_ms
    return None


@dataclass
class TuneOutcome:
    evaluated: list[tuple[dict[str, Any], EvalResult]]
    best_params: dict[str, Any] | None
    best_ms: float | None


def space_size(space: dict[str, list]) -> int:
    size = 1
    for choices in space.values():
        size *= max(1, len(choices))
    return size


def tune(
    space: dict[str, list],
    evaluate_batch: Callable[[list[dict[str, Any]]], list[EvalResult]],
    *,
    trials: int,
    batch: int = 4,
    seed: int = 0,
    start: dict[str, Any] | None = None,
    known: dict[str, EvalResult] | None = None,
) -> TuneOutcome:
    """Search ``space`` with TPE: ``trials`` settings besides the start setting, in all.

    ``known`` maps ``params_key(params)`` to results measured earlier (they are told to the
    study, not re-run); ``start`` is enqueued first (the proposer's default setting).
    """
    distributions = {k: optuna.distributions.CategoricalDistribution(list(v)) for k, v in space.items()}
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    known = dict(known or {})
    for key, result in known.items():
        params = json.loads(key)
        if not _in_space(params, space):
            continue
        value = objective(result)
        state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.FAIL
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                  value=value, state=state))
    if start and params_key(start) not in known:
        study.enqueue_trial(start)
    evaluated: list[tuple[dict[str, Any], EvalResult]] = []
    # ``trials`` counts every setting of this study, those measured before a resume included,
    # so a resumed run does exactly as much tuning as an uninterrupted one.
    in_space = sum(1 for key in known if _in_space(json.loads(key), space))
    remaining = min(trials - in_space + (1 if start and params_key(start) in known else 0),
                    space_size(space) - in_space)
    stale_asks = 0
    while remaining > 0 and stale_asks < 50:
        asked, settings = [], []
        while len(settings) < min(batch, remaining) and stale_asks < 50:
            trial = study.ask(distributions)
            params = dict(trial.params)
            key = params_key(params)
            if key in known or any(params_key(s) == key for s in settings):
                # TPE re-proposed a measured setting: answer from memory, ask again.
                value = objective(known[key]) if key in known else None
                study.tell(trial, value, state=None if value is not None else optuna.trial.TrialState.FAIL)
                stale_asks += 1
                continue
            asked.append(trial)
            settings.append(params)
        if not settings:
            break
        results = evaluate_batch(settings)
        for trial, params, result in zip(asked, settings, results):
            value = objective(result)
            if value is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, value)
            known[params_key(params)] = result
            evaluated.append((params, result))
        remaining -= len(settings)
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = min(completed, key=lambda t: t.value, default=None)
    return TuneOutcome(evaluated, dict(best.params) if best else None, best.value if best else None)


def _in_space(params: dict[str, Any], space: dict[str, list]) -> bool:
    return set(params) == set(space) and all(params[k] in space[k] for k in space)


def grid(space: dict[str, list]) -> list[dict[str, Any]]:
    """Every setting of a small space (used when the space is smaller than the budget)."""
    keys = sorted(space)
    return [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]
