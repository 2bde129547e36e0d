"""Optuna search over a candidate's numeric parameters (block size, vector width, ...).

The evaluator is expensive and evaluates several settings of the same source in one child
process, so the study is driven by ask/tell in batches. Settings already measured (in this
run, or before a resume, from the archive) are told to the study first and never evaluated
again. The study may be shared (``evolution.studies``: optuna's RDB storage on the archive's
PostgreSQL): then its trials, other drivers' too, count toward one trial budget.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass
from typing import Any, Callable

import optuna

from autotuner.evaluator.verdict import EvalResult
from evolution.studies import fail_stale_trials, heartbeats, sampler

log = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)

EVALUATED = "autotuner_evaluated"  # user attribute of a trial whose setting was evaluated


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
    study: optuna.Study | None = None,
) -> TuneOutcome:
    """Search ``space`` with TPE: ``trials`` settings besides the start setting, in all.

    ``known`` maps ``params_key(params)`` to results measured earlier (they are told to the
    study, not re-run); ``start`` is enqueued first (the proposer's default setting).
    ``study`` is the study to search in (default: a new one in memory); a shared study's
    settings, measured or in flight by any driver, count toward ``trials``.
    """
    distributions = {k: optuna.distributions.CategoricalDistribution(list(v)) for k, v in space.items()}
    study = study or optuna.create_study(direction="minimize", sampler=sampler(seed))
    fail_stale_trials(study)  # trials a killed driver left running (shared studies only)
    known = {k: v for k, v in (known or {}).items() if _in_space(json.loads(k), space)}
    told = _settings(study, space, (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL))
    for key, result in known.items():
        if key in told:
            continue  # a shared study knows it already (this driver before a restart, or another)
        value = objective(result)
        state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.FAIL
        study.add_trial(optuna.trial.create_trial(params=json.loads(key), distributions=distributions,
                                                  value=value, state=state, user_attrs={EVALUATED: True}))
    start_key = params_key(start) if start else None
    if start and start_key not in known:
        study.enqueue_trial(start, skip_if_exists=True)
    evaluated: list[tuple[dict[str, Any], EvalResult]] = []
    stale_asks = 0
    while stale_asks < 50:
        # ``trials`` counts every setting of this study, those measured before a resume (or by
        # another driver) included, so a resumed run does exactly as much tuning as an
        # uninterrupted one, and two drivers on one study share its budget.
        measured = _settings(study, space) | set(known)
        used = len(measured) - (1 if start_key in measured else 0)
        remaining = min(trials - used, space_size(space) - len(measured))
        if remaining <= 0:
            break
        asked, settings = [], []
        finished = _finished_values(study, space)  # a shared study: other drivers' results too
        while len(settings) < min(batch, remaining) and stale_asks < 50:
            trial = study.ask(distributions)
            params = dict(trial.params)
            key = params_key(params)
            if key in known or key in finished or any(params_key(s) == key for s in settings):
                # TPE re-proposed a measured setting: answer from memory, ask again.
                value = objective(known[key]) if key in known else finished.get(key)
                study.tell(trial, value, state=None if value is not None else optuna.trial.TrialState.FAIL)
                stale_asks += 1
                continue
            asked.append(trial)
            settings.append(params)
        if not settings:
            break
        with heartbeats(study, asked):
            results = evaluate_batch(settings)
        for trial, params, result in zip(asked, settings, results):
            value = objective(result)
            trial.set_user_attr(EVALUATED, True)  # a failure that was measured, not a driver that died
            if value is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, value)
            known[params_key(params)] = result
            evaluated.append((params, result))
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = min(completed, key=lambda t: t.value, default=None)
    return TuneOutcome(evaluated, dict(best.params) if best else None, best.value if best else None)


_COUNTED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING)


def _measured(trial: optuna.trial.FrozenTrial) -> bool:
    """A trial that stands for an evaluation: not one failed because its driver died (optuna's
    heartbeat check fails those; they were never measured and must not use up the budget)."""
    return trial.state != optuna.trial.TrialState.FAIL or bool(trial.user_attrs.get(EVALUATED))


def _finished_values(study: optuna.Study, space: dict[str, list]) -> dict[str, float | None]:
    """The value (None: failed) of every setting the study has measured, by ``params_key``."""
    out: dict[str, float | None] = {}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                      optuna.trial.TrialState.FAIL)):
        if _in_space(t.params, space) and _measured(t) and out.get(params_key(t.params)) is None:
            out[params_key(t.params)] = t.value if t.state == optuna.trial.TrialState.COMPLETE else None
    return out


def _settings(study: optuna.Study, space: dict[str, list],
              states: tuple[optuna.trial.TrialState, ...] = _COUNTED) -> set[str]:
    """The settings (``params_key``) of the study's measured or running trials in ``states`` in ``space``."""
    return {params_key(t.params) for t in study.get_trials(deepcopy=False, states=states)
            if _in_space(t.params, space) and _measured(t)}


def _in_space(params: dict[str, Any], space: dict[str, list]) -> bool:
    return set(params) == set(space) and all(params[k] in space[k] for k in space)


def grid(space: dict[str, list]) -> list[dict[str, Any]]:
    """Every setting of a small space (used when the space is smaller than the budget)."""
    keys = sorted(space)
    return [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]
