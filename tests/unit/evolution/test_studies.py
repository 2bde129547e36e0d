"""optuna studies in RDB storage: one search and one trial budget for every driver tuning a candidate.

Run on the archive's own database (SQLite file and PostgreSQL; a cluster run uses PostgreSQL,
``Archive.optuna_storage_url``), beside the archive's tables.
"""

from __future__ import annotations

import threading
import time

import optuna

from archive import Archive, resolve_url
from archive_backends import db_url  # noqa: F401 - the fixture: SQLite and PostgreSQL
from archive.testing import make_result, make_task
from evolution.studies import Studies, heartbeats
from evolution.tuning import params_key, tune

SPACE = {"BLOCK": [32, 64, 128, 256, 512, 1024], "VEC": [1, 2, 4]}


def _storage_url(db_url: str) -> str:
    with Archive.open(db_url) as archive:  # the archive first: optuna's tables go beside its own
        return archive.optuna_storage_url() or resolve_url(db_url)


def _evaluator(seen: list, delay_s: float = 0.0):  # noqa: ANN202
    task = make_task()
    lock = threading.Lock()

    def evaluate(settings):  # noqa: ANN001, ANN202
        time.sleep(delay_s)
        with lock:
            seen.extend(params_key(s) for s in settings)
        return [make_result(task, candidate_ms=0.1 + s["BLOCK"] / 1000 + s["VEC"] / 10) for s in settings]

    return evaluate


def test_a_second_driver_continues_the_same_study_within_its_budget(db_url: str) -> None:
    url = _storage_url(db_url)
    first, second = Studies(url, seed=0), Studies(url, seed=1)
    seen: list = []
    try:
        tune(SPACE, _evaluator(seen), trials=6, batch=3, start={"BLOCK": 256, "VEC": 1},
             study=first.open("scope/task/source"))
        assert len(seen) == 7  # the start setting and six trials
        again = tune(SPACE, _evaluator(seen), trials=6, batch=3, start={"BLOCK": 256, "VEC": 1},
                     study=second.open("scope/task/source"))
        assert again.evaluated == [] and len(seen) == 7, "the budget is the study's, whoever tunes it"
        more = tune(SPACE, _evaluator(seen), trials=9, batch=3, start={"BLOCK": 256, "VEC": 1},
                    study=second.open("scope/task/source"))
        assert len(more.evaluated) == 3 and len(set(seen)) == 10
        assert more.best_ms == min(t.value for t in second.open("scope/task/source").trials if t.value is not None)
        assert first.shared and not Studies(None).shared
    finally:
        first.close()
        second.close()


def test_drivers_tuning_at_once_share_one_budget(db_url: str) -> None:
    url = _storage_url(db_url)
    seen: list = []
    studies = [Studies(url, seed=i) for i in range(2)]
    study_names = "scope/task/concurrent"
    studies[0].open(study_names)  # created once; the race here is on the trials, not the study row

    def driver(i: int) -> None:
        tune(SPACE, _evaluator(seen, delay_s=0.2), trials=8, batch=2, study=studies[i].open(study_names))

    threads = [threading.Thread(target=driver, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for s in studies:
        s.close()
    # Each driver re-counts the study's trials before every batch: at most one batch over.
    assert 8 <= len(set(seen)) <= 8 + 2


def test_trials_a_killed_driver_left_running_are_failed_by_the_next(db_url: str) -> None:
    url = _storage_url(db_url)
    dead = Studies(url, seed=0, heartbeat_s=1, grace_s=1)
    distributions = {k: optuna.distributions.CategoricalDistribution(v) for k, v in SPACE.items()}
    study = dead.open("scope/task/stale")
    orphan = study.ask(distributions)
    with heartbeats(study, [orphan]):
        time.sleep(0.1)  # one heartbeat sent; then the driver "dies" without telling
    time.sleep(2.5)
    live = Studies(url, seed=0, heartbeat_s=1, grace_s=1)
    seen: list = []
    tune(SPACE, _evaluator(seen), trials=4, batch=2, study=live.open("scope/task/stale"))
    states = [t.state for t in live.open("scope/task/stale").trials]
    assert states[0] == optuna.trial.TrialState.FAIL and len(seen) == 4
    dead.close()
    live.close()


def test_without_a_storage_studies_stay_in_memory() -> None:
    studies = Studies(None, seed=0)
    a, b = studies.open("x"), studies.open("x")
    a.enqueue_trial({"BLOCK": 32})
    assert len(a.trials) == 1 and len(b.trials) == 0
