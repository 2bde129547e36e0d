"""Claims and admissions: the archive's record of shared work, on SQLite and on PostgreSQL.

Of several drivers claiming the same (scope, task, source, setting), exactly one holds it; a
result recorded with its claim closes it in the same transaction; a claim whose driver fell
silent for a whole lease is taken over; the novelty filter's admissions are first-wins.
"""

from __future__ import annotations

import threading
import time

from archive import DONE, HELD, MINE, Archive, KernelSpec
from archive.testing import make_result, make_task

SETTINGS = [{"BLOCK": b} for b in (64, 128, 256)]


def _claim(archive: Archive, owner: str, settings=SETTINGS, scope: str = "s", lease_s: float = 60.0, run_id=None):  # noqa: ANN001, ANN202
    task = make_task()
    return archive.claim_work(scope, task.content_hash, "src-hash", settings, owner, run_id, lease_s)


def test_one_owner_holds_a_claim_the_others_see_it_held(archive: Archive) -> None:
    first = _claim(archive, "a")
    assert [c.state for c in first] == [MINE] * 3
    second = _claim(archive, "b")
    assert [c.state for c in second] == [HELD] * 3
    assert {c.owner for c in second} == {"a"}
    again = _claim(archive, "a")  # a driver's second thread asking for what it already evaluates
    assert [c.state for c in again] == [HELD] * 3, "one owner must not get the same setting twice"


def test_recording_with_the_claim_closes_it_for_everyone(archive: Archive) -> None:
    task = make_task()
    (mine, *_) = _claim(archive, "a")
    recorded = archive.record(task, KernelSpec("src", dict(mine.params)), make_result(task), claim=mine)
    states = _claim(archive, "b")
    assert states[0].state == DONE
    assert (states[0].evaluation_id, states[0].kernel_id) == (recorded.evaluation_id, recorded.kernel_id)
    assert [c.state for c in states[1:]] == [HELD, HELD]
    (item,) = archive.finished_work("s", task.content_hash)
    assert item.evaluation_id == recorded.evaluation_id and item.params == mine.params
    assert archive.finished_work("other scope", task.content_hash) == []


def test_a_silent_drivers_claim_is_taken_over_after_the_lease(archive: Archive) -> None:
    _claim(archive, "dead", lease_s=0.3)
    assert {c.state for c in _claim(archive, "live", lease_s=0.3)} == {HELD}
    time.sleep(0.5)
    taken = _claim(archive, "live", lease_s=0.3)
    assert [c.state for c in taken] == [MINE] * 3
    assert [c.attempts for c in taken] == [2] * 3
    assert {row.owner for row in archive.work_claims()} == {"live"}


def test_heartbeats_keep_a_claim(archive: Archive) -> None:
    _claim(archive, "a", lease_s=0.6)
    for _ in range(4):
        time.sleep(0.2)
        assert archive.renew_claims("a") == 3
    assert {c.state for c in _claim(archive, "b", lease_s=0.6)} == {HELD}


def test_release_gives_claims_back(archive: Archive) -> None:
    mine = _claim(archive, "a")
    assert archive.release_claims("a", [mine[0].claim_id]) == 1
    assert [c.state for c in _claim(archive, "b")] == [MINE, HELD, HELD]
    assert archive.release_claims("a") == 2  # all that is left
    assert archive.release_claims("nobody") == 0


def test_resume_frees_what_a_killed_driver_of_the_run_left_running(archive: Archive) -> None:
    run = archive.start_run({})
    _claim(archive, "killed", run_id=run)
    _claim(archive, "resumed", settings=[{"BLOCK": 1024}], run_id=run)
    assert archive.release_run_claims(run, keep_owner="resumed") == 3
    assert [c.state for c in _claim(archive, "resumed", run_id=run)] == [MINE] * 3
    assert [r.owner for r in archive.work_claims(run)] == ["resumed"] * 4


def test_scopes_are_separate_work(archive: Archive) -> None:
    assert {c.state for c in _claim(archive, "a", scope="harness 1 on A100, strict")} == {MINE}
    assert {c.state for c in _claim(archive, "b", scope="harness 1 on H100, strict")} == {MINE}


def test_concurrent_drivers_never_hold_the_same_setting(db_url: str) -> None:
    """Six drivers (own connections) race for 30 settings: each setting has exactly one holder."""
    settings = [{"BLOCK": b} for b in range(30)]
    won: dict[str, list[int]] = {}
    start = threading.Barrier(6)

    def driver(owner: str) -> None:
        with Archive.open(db_url) as archive:
            start.wait()
            states = _claim(archive, owner, settings=settings)
            won[owner] = [s.params["BLOCK"] for s in states if s.state == MINE]

    Archive.open(db_url).close()  # the schema first: the race is on the claims, not on creating tables
    threads = [threading.Thread(target=driver, args=(f"d{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    taken = sorted(b for blocks in won.values() for b in blocks)
    assert taken == list(range(30)), f"settings held twice or by nobody: {won}"


def test_admissions_first_wins_and_are_read_incrementally(archive: Archive) -> None:
    task = make_task()
    assert archive.admit_source(task.content_hash, "fp1", "hash-a", "a = 1", run_id=None) == "hash-a"
    assert archive.admit_source(task.content_hash, "fp1", "hash-b", "a  =  1  # copy") == "hash-a"
    assert archive.admit_source(task.content_hash, "fp1", "hash-a", "a = 1") == "hash-a"  # itself again
    assert archive.admit_source(task.content_hash, "fp2", "hash-c", "b = 2") == "hash-c"
    rows = archive.admitted_sources(task.content_hash)
    assert [r.source_hash for r in rows] == ["hash-a", "hash-c"]
    assert [r.source_hash for r in archive.admitted_sources(task.content_hash, after_id=rows[0].id)] == ["hash-c"]
    assert archive.admitted_sources(make_task(variant="x").content_hash) == []


def test_drivers_claiming_in_opposite_orders_do_not_deadlock(db_url: str) -> None:
    """Each driver asks for the same settings in its own order (reversed, rotated): the rows are
    taken in one order inside the transaction, so PostgreSQL finds no lock cycle to abort; each
    answer comes back in the order asked."""
    base = [{"BLOCK": b} for b in range(40)]
    orders = [base, base[::-1], base[20:] + base[:20], base[::2] + base[1::2]]
    won: dict[str, list[int]] = {}
    asked: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(orders))

    def driver(owner: str, settings: list[dict]) -> None:
        try:
            with Archive.open(db_url) as archive:
                start.wait()
                states = _claim(archive, owner, settings=settings)
                asked[owner] = [s.params["BLOCK"] for s in states]
                won[owner] = [s.params["BLOCK"] for s in states if s.state == MINE]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    Archive.open(db_url).close()
    threads = [threading.Thread(target=driver, args=(f"d{i}", order)) for i, order in enumerate(orders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert all(asked[f"d{i}"] == [s["BLOCK"] for s in order] for i, order in enumerate(orders))
    assert sorted(b for blocks in won.values() for b in blocks) == list(range(40))


def test_a_transaction_the_server_aborted_for_a_conflict_runs_again(tmp_path) -> None:  # noqa: ANN001
    """write_retrying runs the work again when the server aborted it (deadlock, serialization
    failure: SQLSTATE 40P01 / 40001); any other error, or an abort on the last attempt, is raised
    as an archive error."""
    import pytest
    from sqlalchemy import exc, text

    from archive.db import Database
    from autotuner.errors import ArchiveError

    class Aborted(Exception):
        def __init__(self, sqlstate: str) -> None:
            super().__init__("deadlock detected" if sqlstate == "40P01" else "other")
            self.sqlstate = sqlstate

    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    calls: list[int] = []

    def work(session) -> int:  # noqa: ANN001
        calls.append(1)
        if len(calls) < 3:
            raise exc.OperationalError("INSERT ...", {}, Aborted("40P01"))
        return session.execute(text("select 7")).scalar_one()

    assert db.write_retrying(work) == 7 and len(calls) == 3
    calls.clear()
    with pytest.raises(ArchiveError, match="deadlock detected"):
        db.write_retrying(work, attempts=2)
    assert len(calls) == 2

    def broken(session) -> None:  # noqa: ANN001
        calls.append(1)
        raise exc.OperationalError("INSERT ...", {}, Aborted("23505"))

    calls.clear()
    with pytest.raises(ArchiveError):
        db.write_retrying(broken)
    assert len(calls) == 1
    db.dispose()
