"""A candidate's source hash: one function, one value, everywhere (resume depends on it)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from archive import Archive, KernelSpec
from archive.testing import make_result, make_task
from autotuner.candidate import source_hash
from autotuner.evaluator.eval_config import EvalConfig
from autotuner.tasks import load_task
from evolution.simulate import simulated_evaluator

ROOT = Path(__file__).parents[2]
SOURCE = 'extern "C" __global__ void k() {}  // é\n'  # non-ASCII: the text is hashed as UTF-8
PINNED = "06ebc44ce1994b65aa65c0b0d135ae9f0b922c14ee6eb37017a47a149734973e"


def test_the_hash_value_is_pinned() -> None:
    """Archives written before this version hold these values: changing them breaks resume."""
    assert source_hash(SOURCE) == PINNED == hashlib.sha256(SOURCE.encode("utf-8")).hexdigest()


def test_the_archive_stores_the_same_hash(tmp_path) -> None:  # noqa: ANN001
    with Archive.open(f"sqlite:///{tmp_path / 'a.db'}") as archive:
        recorded = archive.record(make_task(), KernelSpec(SOURCE), make_result())
        assert archive.kernel(recorded.kernel_id).source_hash == PINNED
        assert archive.result(recorded.evaluation_id).candidate_hash == PINNED


def test_the_simulated_evaluator_reports_the_same_hash(tmp_path) -> None:  # noqa: ANN001
    candidate = tmp_path / "candidate.py"
    candidate.write_text(SOURCE, encoding="utf-8")
    task = load_task(ROOT / "kernels/tasks/activation/relu.py")
    (result,) = simulated_evaluator()(task, candidate, [{}], EvalConfig())
    assert result.candidate_hash == PINNED
