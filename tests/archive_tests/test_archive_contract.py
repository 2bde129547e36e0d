"""The archive's contract (see ``archive.api``), run against every backend."""

from __future__ import annotations

import io
import json
import math

import pytest

import autotuner
from archive import Archive, KernelSpec, LLMCallRecord, head_revision
from archive.testing import GPUS, make_result, make_task
from autotuner.errors import ArchiveError, ArchiveImportError, NotFoundError
from autotuner.evaluator.verdict import Verdict

H100, A100 = GPUS[0], GPUS[1]


def spec(name: str, **kw: object) -> KernelSpec:
    return KernelSpec(source=f"// kernel {name}\n", **kw)  # type: ignore[arg-type]


class TestArchiveContract:
    def test_record_round_trips_the_result(self, archive: Archive) -> None:
        task = make_task()
        result = make_result(task, candidate_ms=0.25)
        ids = archive.record(task, spec("a", params={"BLOCK": 128}), result)
        back = archive.result(ids.evaluation_id)
        assert back.to_json() == {**result.to_json(), "candidate_hash": back.candidate_hash}
        assert back.candidate_hash  # the kernel's source hash

    def test_result_without_provenance_is_from_this_harness(self, archive: Archive) -> None:
        task = make_task()
        result = make_result(task)
        result.provenance = None
        ids = archive.record(task, spec("a"), result)
        assert archive.result(ids.evaluation_id).provenance.harness_version == autotuner.HARNESS_VERSION

    def test_tasks_and_kernels_are_deduplicated(self, archive: Archive) -> None:
        task = make_task()
        a = archive.record(task, spec("a", params={"BLOCK": 128}), make_result(task))
        b = archive.record(task, spec("a", params={"BLOCK": 128}), make_result(task))
        c = archive.record(task, spec("a", params={"BLOCK": 256}), make_result(task))
        assert a.task_id == b.task_id == c.task_id
        assert a.kernel_id == b.kernel_id != c.kernel_id
        assert a.evaluation_id != b.evaluation_id
        assert [r.evaluations for r in archive.tasks()] == [3]

    def test_unknown_kernel_or_parent_is_not_found(self, archive: Archive) -> None:
        task = make_task()
        with pytest.raises(NotFoundError, match="kernel with id 999"):
            archive.record_evaluation(999, make_result(task))
        with pytest.raises(NotFoundError, match="parent kernel with id 42"):
            archive.record(task, spec("child", parents=(42,)), make_result(task))
        assert archive.stats()["kernels"] == 0  # the failed record left nothing behind

    def test_a_batch_is_all_or_nothing(self, archive: Archive) -> None:
        task, other = make_task(), make_task("gelu")
        kernel_id = archive.record(task, spec("a"), make_result(task)).kernel_id
        with pytest.raises(ArchiveError, match="belongs to task"):
            archive.record_evaluations([(kernel_id, make_result(task)), (kernel_id, make_result(other))])
        assert archive.stats()["evaluations"] == 1

    def test_every_shape_row_is_stored(self, archive: Archive) -> None:
        task = make_task()
        ids = archive.record(task, spec("a"), make_result(task, n_shapes=7))
        detail = archive.kernel(ids.kernel_id)
        assert len(detail.evaluations[0].shapes) == 7
        timed = detail.evaluations[0].shapes[0]
        assert timed["candidate"]["p90_ms"] > timed["candidate"]["p10_ms"]  # spread kept

    def test_best_is_the_fastest_never_rejected_kernel_per_gpu_and_policy(self, archive: Archive) -> None:
        task = make_task()
        slow = archive.record(task, spec("slow"), make_result(task, candidate_ms=0.5)).kernel_id
        fast = archive.record(task, spec("fast"), make_result(task, candidate_ms=0.2)).kernel_id
        flaky = archive.record(task, spec("flaky"), make_result(task, candidate_ms=0.1)).kernel_id
        archive.record(task, spec("flaky"), make_result(task, verdict=Verdict.REJECTED))
        archive.record(task, spec("slow"), make_result(task, candidate_ms=0.4, gpu=A100))
        hybrid = make_task(policy="hybrid")
        archive.record(hybrid, spec("h"), make_result(hybrid, candidate_ms=0.05))
        rows = archive.best(task="relu")
        assert [(r.gpu, r.policy, r.kernel_id) for r in rows] == [
            (A100, "strict", slow),
            (H100, "hybrid", rows[1].kernel_id),
            (H100, "strict", fast),
        ]
        assert flaky not in [r.kernel_id for r in rows]
        assert [r.kernel_id for r in archive.best(gpu="h100", policy="strict", top=5)] == [fast, slow]

    def test_stale_results_are_never_presented_as_current(self, archive: Archive, monkeypatch: pytest.MonkeyPatch) -> None:
        task = make_task()
        old = archive.record(task, spec("old"), make_result(task, candidate_ms=0.1)).kernel_id
        before = autotuner.HARNESS_VERSION
        monkeypatch.setattr(autotuner, "HARNESS_VERSION", before + ".next")
        assert archive.best() == []
        assert archive.leaderboard() == []
        listed = archive.kernels("relu")
        assert [(k.kernel_id, k.evaluation_id) for k in listed] == [(old, None)]
        marked = archive.best(include_stale=True)
        assert [(r.kernel_id, r.stale) for r in marked] == [(old, True)]
        assert all(e.stale for e in archive.kernel(old).evaluations)
        assert [(s.kernel_id, s.harness) for s in archive.stale()] == [(old, before)]
        # Re-verified by the new harness: no longer stale, and a winner again.
        archive.record(task, spec("old"), make_result(task, candidate_ms=0.12))
        assert archive.stale() == []
        assert [(r.kernel_id, r.stale, r.candidate_ms) for r in archive.best()] == [(old, False, 0.12)]

    def test_leaderboard_fast_p_and_geomean(self, archive: Archive) -> None:
        fast, slow, failed = make_task("a"), make_task("b"), make_task("c")
        archive.record(fast, spec("a"), make_result(fast, candidate_ms=0.5, eager_ms=1.0, compiled_ms=0.25))
        archive.record(slow, spec("b"), make_result(slow, candidate_ms=2.0, eager_ms=1.0, compiled_ms=1.0))
        archive.record(failed, spec("c"), make_result(failed, verdict=Verdict.REJECTED))
        (row,) = archive.leaderboard()
        assert (row.tasks, row.solved) == (3, 2)
        assert row.fast_p_eager == pytest.approx(1 / 3)  # only "a" beats eager
        assert row.fast_p_compile == 0.0  # a: 0.5x, b: 0.5x against torch.compile
        assert row.geomean_speedup_eager == pytest.approx(math.sqrt(2.0 * 0.5))
        assert archive.leaderboard(p=0.4)[0].fast_p_compile == pytest.approx(2 / 3)

    def test_kernel_filters(self, archive: Archive) -> None:
        task = make_task()
        rules = archive.record(task, spec("r", proposer="rules"), make_result(task, candidate_ms=0.8)).kernel_id
        llm = archive.record(task, spec("l", proposer="llm", model="m"), make_result(task, candidate_ms=0.2, gpu=A100)).kernel_id
        bad = archive.record(task, spec("x", proposer="llm"), make_result(task, verdict=Verdict.REJECTED)).kernel_id

        def ids(**f: object) -> list[int]:
            return [k.kernel_id for k in archive.kernels("relu", **f)]

        assert ids() == [llm, rules, bad]
        assert ids(gpu="a100") == [llm]
        assert ids(proposer="llm") == [llm, bad]
        assert ids(verdict="rejected") == [bad]
        assert ids(min_speedup=2.0) == [llm]
        assert ids(dtype="bfloat16") == []
        assert ids(limit=1) == [llm]
        with pytest.raises(NotFoundError, match="no task 'nope'"):
            archive.kernels("nope")

    def test_lineage_and_diff(self, archive: Archive) -> None:
        task = make_task()
        a = archive.record(task, spec("a", params={"B": 1}), make_result(task)).kernel_id
        b = archive.record(task, spec("b", params={"B": 1}), make_result(task)).kernel_id
        child = archive.record(task, spec("c", params={"B": 2}, operator="crossover", parents=(a, b)), make_result(task)).kernel_id
        grandchild = archive.record(task, spec("d", operator="mutate", parents=(child,)), make_result(task)).kernel_id
        lineage = {r.kernel_id: (r.generation, r.parents) for r in archive.lineage(child)}
        assert lineage == {a: (-1, []), b: (-1, []), child: (0, [a, b]), grandchild: (1, [child])}
        assert archive.kernel(child).parents == [a, b]
        diff = archive.diff(a, child)
        assert diff.params_changed == {"B": [1, 2]}
        assert "-// kernel a" in diff.source_diff and "+// kernel c" in diff.source_diff
        with pytest.raises(NotFoundError):
            archive.lineage(12345)

    def test_runs_llm_calls_and_stats(self, archive: Archive) -> None:
        run = archive.start_run({"model": "m", "budget_usd": 5})
        task = make_task()
        kernel = archive.record(task, spec("a", run_id=run), make_result(task), run_id=run).kernel_id
        archive.record_llm_call(LLMCallRecord(model="m", tokens_in=100, tokens_out=50, cost_usd=0.01, run_id=run, kernel_id=kernel))
        archive.record_llm_call(LLMCallRecord(model="m", error="rate limited", run_id=run))
        archive.finish_run(run, "finished", {"llm_usd": 0.01})
        stats = archive.stats()
        assert (stats["runs"], stats["llm_calls"], stats["llm_tokens_in"]) == (1, 2, 100)
        assert stats["llm_cost_usd"] == pytest.approx(0.01)
        assert stats["schema_revision"] == head_revision()
        with pytest.raises(NotFoundError):
            archive.finish_run(999, "finished", {})

    def test_a_run_reads_back_what_it_did(self, archive: Archive) -> None:
        """What resume reads: the latest unfinished run, its configuration, why it failed, its history."""
        first = archive.start_run({"config": {"search": {"proposer": "rules"}}})
        archive.finish_run(first, "done", {})
        run = archive.start_run({"config": {"search": {"proposer": "llm"}}})
        task = make_task()
        parent = archive.record(task, spec("a", run_id=run), make_result(task), run_id=run)
        child = archive.record(task, spec("b", parents=(parent.kernel_id,), run_id=run),
                               make_result(task, verdict=Verdict.REJECTED), run_id=run)
        archive.finish_run(run, "failed", {}, "LLMUnavailableError: endpoint down")
        assert archive.latest_run() == run and archive.latest_run(status="done") == first
        assert archive.latest_run(status=("running", "interrupted")) is None
        assert archive.run_config(run) == ({"config": {"search": {"proposer": "llm"}}}, "failed")
        assert archive.run_error(run) == "LLMUnavailableError: endpoint down" and archive.run_error(first) is None
        history = archive.run_history(run)
        assert [h.evaluation_id for h in history] == [parent.evaluation_id, child.evaluation_id]
        assert history[1].parents == (parent.kernel_id,) and history[1].task_hash == task.content_hash
        assert history[1].source_hash == history[1].result.candidate_hash
        with pytest.raises(NotFoundError, match="no run with id 999"):
            archive.run_config(999)

    def test_related_examples_and_task_source(self, archive: Archive) -> None:
        relu, gelu, mean = make_task(), make_task("gelu"), make_task("mean", family="reduction")
        archive.record(relu, spec("relu"), make_result(relu))
        archive.record(gelu, spec("gelu-slow"), make_result(gelu, candidate_ms=0.9))
        archive.record(gelu, spec("gelu-fast"), make_result(gelu, candidate_ms=0.3))
        archive.record(mean, spec("mean"), make_result(mean))
        assert archive.related_examples("activation", relu.content_hash) == ["// kernel gelu-fast\n"]
        assert archive.task_source(gelu.content_hash) == gelu.source
        with pytest.raises(NotFoundError):
            archive.task_source("0" * 64)

    def test_export_import_round_trip_adds_nothing_twice(self, archive: Archive, tmp_path) -> None:
        run = archive.start_run({"x": 1})
        task = make_task()
        a = archive.record(task, spec("a"), make_result(task), run_id=run).kernel_id
        archive.record(task, spec("b", parents=(a,)), make_result(task, harness_version="0"))
        archive.record_llm_call(LLMCallRecord(model="m", tokens_in=3, run_id=run, kernel_id=a))
        path = tmp_path / "export.jsonl"
        with open(path, "w") as out:
            archive.export_jsonl(out)
        before = archive.stats()
        counts = archive.import_jsonl(path)  # into itself: everything is already there
        assert counts["evaluation"] == 0 and counts["evaluation_skipped"] == 2
        assert archive.stats() == before
        with Archive.open(f"sqlite:///{tmp_path / 'copy.db'}") as copy:
            copy.import_jsonl(path)
            again = io.StringIO()
            copy.export_jsonl(again)
            assert {k: v for k, v in copy.stats().items() if k not in ("url", "backend")} == {
                k: v for k, v in before.items() if k not in ("url", "backend")
            }
        original = [json.loads(line) for line in path.read_text().splitlines()]
        assert [json.loads(line) for line in again.getvalue().splitlines()] == original

    @pytest.mark.parametrize(
        ("line", "fault"),
        [
            ("{not json", "line 3: not valid JSON"),
            ('{"kind": "spaceship"}', "line 3: unknown kind 'spaceship'"),
            ('{"kind": "kernel", "key": "abc:def:012", "source": ""}', "line 3: kernel of task abc"),
            ('{"kind": "evaluation", "uid": "u", "kernel": "k", "result": {"verdict": "maybe"}}', "line 3:"),
        ],
    )
    def test_corrupt_import_names_the_line_and_keeps_nothing(self, archive: Archive, tmp_path, line: str, fault: str) -> None:
        task = make_task()
        archive.record(task, spec("a"), make_result(task))
        path = tmp_path / "export.jsonl"
        with open(path, "w") as out:
            archive.export_jsonl(out)
        lines = path.read_text().splitlines()
        other = make_task("gelu")
        task_line = json.dumps({"kind": "task", "content_hash": other.content_hash, "name": "gelu", "source": other.source})
        path.write_text("\n".join([lines[0], task_line, line, *lines[1:]]) + "\n")
        before = archive.stats()
        with pytest.raises(ArchiveImportError, match=fault):
            archive.import_jsonl(path)
        assert archive.stats() == before  # not even the valid task line before it

    def test_import_rejects_a_file_that_is_not_an_export(self, archive: Archive, tmp_path) -> None:
        path = tmp_path / "x.jsonl"
        path.write_text('{"kind": "task"}\n')
        with pytest.raises(ArchiveImportError, match="line 1: not an autotuner-archive export"):
            archive.import_jsonl(path)
        path.write_text("")
        with pytest.raises(ArchiveImportError, match="empty"):
            archive.import_jsonl(path)
        with pytest.raises(ArchiveError, match="cannot read"):
            archive.import_jsonl(tmp_path / "missing.jsonl")
