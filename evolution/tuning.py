"""Optuna search over a candidate's numeric parameters (block size, vector width, ...).

A tuning budget is small (8 settings per candidate by default) against spaces of hundreds of
settings, and TPE samples at random until it has 10 results: left to itself, the whole budget
was a random draw, and a draw of 8 in 288 rarely lands next to a default that is already good.
So the search climbs first: from the start setting (the proposer's best guess) it measures the
settings one step away along each parameter (the space's first keys first: proposers list the
parameters that matter most first), moves to the best, and climbs again, continuing a move that
paid in the same direction; once no step from the best is left unmeasured, TPE takes over with
every measured setting as its model's data. The steps reach optuna as enqueued trials, so a
shared study (another driver) sees and shares them like any other trial.

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
    climb: bool = True,
) -> TuneOutcome:
    """Search ``space``, climbing from ``start`` and then with TPE: ``trials`` settings besides
    the start setting, in all.

    ``known`` maps ``params_key(params)`` to results measured earlier (they are told to the
    study, not re-run); ``start`` is enqueued first (the proposer's default setting).
    ``study`` is the study to search in (default: a new one in memory); a shared study's
    settings, measured or in flight by any driver, count toward ``trials``. ``climb``: measure
    the steps around the best setting before TPE's own choices (the module docstring says why).
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
    climber = _Climber(space, start, batch) if climb else None
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
        if climber is not None:
            climber.enqueue(study, finished, measured, min(batch, remaining))
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


class _Climber:
    """Hill climbing over the space's choice lists, in rounds of ``batch`` settings. A round
    measures, in order: the combination of every step of the last round that improved on its
    center (when two or more parameters improved: a kernel's parameters mostly act apart),
    then the unmeasured one-step neighbours of the best setting measured so far (the start's
    in the first round, which also measures the start), the direction of the move that reached
    it first. The climb is replayed from the measured results each time, so a resumed run, or a
    second driver on a shared study, continues the very same climb."""

    def __init__(self, space: dict[str, list], start: dict[str, Any] | None, batch: int) -> None:
        self.space = space
        # the start may carry defines the space does not search (they stay fixed)
        projected = {k: start[k] for k in space if k in start} if start else {}
        self.start = projected if _in_space(projected, space) else None
        self.batch = max(1, batch)

    def next_round(self, finished: dict[str, float | None]) -> list[dict[str, Any]]:
        """The settings of the climb's first round that is not fully measured ([] once the
        climb is over: a round with nothing left to try)."""
        if self.start is None:
            return []
        center, first, combined = self.start, None, None
        seen = {params_key(self.start)}
        room = self.batch - 1  # the start takes a place in the first round
        round_ = [self.start]
        while True:
            steps = ([combined] if combined else []) + neighbours(center, self.space, first)
            for step in steps:
                if room <= 0:
                    break
                if params_key(step) not in seen:
                    seen.add(params_key(step))
                    round_.append(step)
                    room -= 1
            if not round_:
                return []
            if any(params_key(s) not in finished for s in round_):
                return [s for s in round_ if params_key(s) not in finished]
            visited = [s for s in map(json.loads, seen) if finished.get(params_key(s)) is not None]
            if not visited:
                return []
            best = min(visited, key=lambda s: (finished[params_key(s)], params_key(s)))
            combined = _combined(center, finished, self.space)
            combined = combined if combined is not None and params_key(combined) not in seen else None
            if best != center:
                first = _move(center, best, self.space)
            center, room, round_ = best, self.batch, []

    def enqueue(self, study: optuna.Study, finished: dict[str, float | None], measured: set[str], room: int) -> None:
        waiting = _waiting(study, self.space)
        room -= len(waiting)
        for step in self.next_round(finished):
            if room <= 0:
                return
            key = params_key(step)
            if key in measured or key in waiting:
                continue  # in flight (another driver) or enqueued already
            study.enqueue_trial(step, skip_if_exists=True)
            waiting.add(key)
            room -= 1


def _combined(center: dict[str, Any], finished: dict[str, float | None],
              space: dict[str, list]) -> dict[str, Any] | None:
    """``center`` with the best improving one-step move of every parameter that had one, when
    at least two parameters did; else None."""
    base = finished.get(params_key(center))
    if base is None:
        return None
    gains: dict[str, tuple[float, Any]] = {}
    for step in neighbours(center, space):
        value = finished.get(params_key(step))
        key = next(k for k in space if step[k] != center[k])
        if value is not None and value < base and value < gains.get(key, (base, None))[0]:
            gains[key] = (value, step[key])
    if len(gains) < 2:
        return None
    return {**center, **{k: v for k, (_, v) in gains.items()}}


def neighbours(center: dict[str, Any], space: dict[str, list],
               first: tuple[str, int] | None = None) -> list[dict[str, Any]]:
    """The settings one choice away from ``center`` along one parameter, in the space's key
    order (up, then down), ``first`` (a key and a direction, +1 or -1) ahead of the rest."""
    moves = [(key, d) for key in space for d in (1, -1)]
    if first in moves:
        moves.remove(first)
        moves.insert(0, first)
    out = []
    for key, d in moves:
        choices = list(space[key])
        if center.get(key) not in choices:
            continue
        i = choices.index(center[key]) + d
        if 0 <= i < len(choices):
            out.append({**center, key: choices[i]})
    return out


def _move(a: dict[str, Any], b: dict[str, Any], space: dict[str, list]) -> tuple[str, int] | None:
    """The (key, direction) of a one-parameter move from ``a`` to ``b``; None for any other change."""
    changed = [k for k in space if a.get(k) != b.get(k)]
    if len(changed) != 1 or a.get(changed[0]) not in space[changed[0]] or b.get(changed[0]) not in space[changed[0]]:
        return None
    key = changed[0]
    return key, 1 if space[key].index(b[key]) > space[key].index(a[key]) else -1


def _waiting(study: optuna.Study, space: dict[str, list]) -> set[str]:
    """Settings enqueued and not yet asked for (optuna keeps them as the trial's fixed params)."""
    out = set()
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
        fixed = t.system_attrs.get("fixed_params") or t.params
        if _in_space(fixed, space):
            out.add(params_key(fixed))
    return out


def grid(space: dict[str, list]) -> list[dict[str, Any]]:
    """Every setting of a small space (used when the space is smaller than the budget)."""
    keys = sorted(space)
    return [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]
