"""The run loop on CPU with the simulated evaluator and a fixed proposer."""

from __future__ import annotations

from pathlib import Path

from archive import Archive
from autotuner.evaluator.eval_config import EvalConfig
from evolution.budget import Budget
from autotuner.tasks import load_task
from evolution.evalpool import EvalPool
from evolution.loop import SearchConfig, TuneRun
from evolution.proposers.base import Proposal, ProposalBatch
from evolution.simulate import simulated_evaluator

ROOT = Path(__file__).parents[3]
TASK = ROOT / "kernels/tasks/activation/relu.py"
EXAMPLE = (ROOT / "examples/relu_candidate.py").read_text()


class FixedProposer:
    """Three structural variants, one of them a comment-only copy of another."""

    name = "rules"

    def propose(self, request):
        variants = [EXAMPLE, EXAMPLE.replace("fmaxf(x[i], 0.0f)", "x[i] > 0.0f ? x[i] : 0.0f"),
                    EXAMPLE.replace("if (i < n)", "// same kernel, other comment\n    if (i < n)")]
        return ProposalBatch([Proposal(v, "translate", "rules", {"BLOCK": [64, 128, 256, 512, 1024]},
                                       {"BLOCK": 256}) for v in variants], notes=["nothing left in PyTorch"])


def _run(archive, search, budget, history=(), run_id=None):
    run_id = run_id or archive.start_run({"config": {}, "tasks": [str(TASK)]})
    pool = EvalPool(simulated_evaluator(), EvalConfig(), [0, 1])
    run = TuneRun(archive, run_id, search, {"rules": FixedProposer()}, pool, budget, workdir=Path(archive.url.split("///")[1]).parent / "w")
    run.history = list(history)
    try:
        return run_id, run.run([load_task(TASK)])
    finally:
        pool.close()


def test_seeds_dedupe_tune_and_record_everything(tmp_path):
    archive = Archive.open(f"sqlite:///{tmp_path / 'a.db'}")
    run_id, (outcome,) = _run(archive, SearchConfig(tune_trials=4, tune_top=2), Budget())
    history = archive.run_history(run_id)
    assert outcome.verdicts["duplicate"] == 1  # the comment-only copy never reached the evaluator
    assert outcome.candidates == len(history)
    keys = [(h.source_hash, tuple(sorted(h.params.items()))) for h in history]
    assert len(keys) == len(set(keys)), "a setting was evaluated twice"
    assert {h.operator for h in history} >= {"translate", "tune"}
    assert outcome.best_kernel_id is not None and outcome.translated
    archive.close()


def test_budget_stops_the_run_and_resume_repeats_nothing(tmp_path):
    archive = Archive.open(f"sqlite:///{tmp_path / 'a.db'}")
    search = SearchConfig(tune_trials=4, tune_top=2)
    run_id, (first,) = _run(archive, search, Budget(max_candidates=3))
    before = archive.run_history(run_id)
    assert len(before) == 3
    _, (second,) = _run(archive, search, Budget(), history=before, run_id=run_id)
    after = archive.run_history(run_id)
    keys = [(h.source_hash, tuple(sorted(h.params.items()))) for h in after]
    assert len(keys) == len(set(keys)), "the resumed run repeated an evaluation"
    assert [h.evaluation_id for h in after[:3]] == [h.evaluation_id for h in before]
    fresh = Archive.open(f"sqlite:///{tmp_path / 'b.db'}")
    fresh_id, _ = _run(fresh, search, Budget())
    assert len(fresh.run_history(fresh_id)) == len(after)  # killed + resumed == uninterrupted
    archive.close()
    fresh.close()
