"""The simulated evaluator (``--evaluator simulate``) answers in the real evaluator's shape.

The search is tested on CPU with made-up results; they are worth something only if they look
like what the real evaluator returns: an ``EvalResult`` whose every field has its declared
type, one shape row per task shape, stages the real one uses, reports the real parent would
accept from its child, and rows the archive keeps unchanged. A statically rejected candidate
needs no GPU, so there the two are compared field by field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from archive import Archive, KernelSpec
from autotuner.evaluator.eval_config import EvalConfig
from autotuner.evaluator.sandbox import _implausible, evaluate_many
from autotuner.evaluator.verdict import EvalResult, Stage, Verdict
from autotuner.tasks import Task, load_task, suite_dir
from evolution.simulate import simulated_evaluator

EXAMPLE = (Path(__file__).parents[2] / "examples" / "relu_candidate.py").read_text()
CONFIG = EvalConfig()


def conforms(value: Any, hint: Any) -> bool:
    """Whether ``value`` has the type ``hint`` declares (the forms EvalResult's fields use)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(conforms(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(conforms(k, args[0]) and conforms(v, args[1]) for k, v in value.items())
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return isinstance(value, hint) and all(conforms(getattr(value, f.name), hints[f.name])
                                               for f in dataclasses.fields(hint))
    return isinstance(value, hint)


@pytest.fixture(scope="module")
def task() -> Task:
    return load_task(suite_dir() / "activation" / "relu.py")


@pytest.fixture(scope="module")
def simulated(task: Task, tmp_path_factory: pytest.TempPathFactory) -> list[EvalResult]:
    """Results for twelve distinct sources at two settings each: accepted ones and rejected ones."""
    folder = tmp_path_factory.mktemp("candidates")
    evaluate = simulated_evaluator()
    results = []
    for i in range(12):
        path = folder / f"candidate_{i}.py"
        path.write_text(f"{EXAMPLE}\n# variant {i}\n")
        results += evaluate(task, path, [{"BLOCK": 128}, {"BLOCK": 512}], CONFIG)
    assert {r.verdict for r in results} == {Verdict.ACCEPTED, Verdict.REJECTED}
    return results


def test_every_field_has_its_declared_type(simulated: list[EvalResult]) -> None:
    for result in simulated:
        assert conforms(result, EvalResult), result


def test_one_shape_row_per_task_shape_and_the_real_stages(simulated: list[EvalResult], task: Task) -> None:
    for result in simulated:
        assert result.task_name == task.name and result.task_hash == task.content_hash
        assert (result.policy, result.dtype) == (task.policy, task.dtype)
        assert result.provenance is not None and result.provenance.harness_version
        if result.accepted:
            assert result.stage is Stage.DONE
            assert sorted((s.shape, s.hidden) for s in result.shapes) == sorted((s.name, s.hidden) for s in task.shapes)
            timed = result.timed
            assert timed is not None and timed.eager is not None and timed.compiled is not None
            assert timed.roofline_ms is not None and result.roofline_fraction is not None
            # the worker's resource report: one entry per kernel the candidate launched through the runtime
            assert [r.name for r in result.resources] == ["relu"] and all(r.registers > 0 for r in result.resources)
        else:
            assert result.stage is not Stage.DONE and result.reason


def test_the_real_parent_would_accept_the_report(simulated: list[EvalResult], task: Task) -> None:
    """What the parent checks in its child's report (shape count, trials, timing) adds up."""
    for result in simulated:
        assert _implausible(result, CONFIG, len(task.shapes)) is None
        assert EvalResult.from_json(result.to_json()) == result  # the child -> parent JSON round trip


def test_the_archive_keeps_it_unchanged(simulated: list[EvalResult], task: Task, tmp_path: Path) -> None:
    with Archive.open(f"sqlite:///{tmp_path / 'a.db'}") as archive:
        for i, result in enumerate(simulated[:6]):
            recorded = archive.record(task, KernelSpec(f"// {i}\n", params={"i": i}), result)
            back = archive.result(recorded.evaluation_id)
            assert back.to_json() == {**result.to_json(), "candidate_hash": back.candidate_hash}


def test_a_static_rejection_matches_the_real_evaluator(task: Task, tmp_path: Path) -> None:
    candidate = tmp_path / "candidate.py"
    candidate.write_text(EXAMPLE.replace("import torch\n", "import os\nimport torch\n", 1))
    (real,) = evaluate_many(task, candidate, [{}], CONFIG)  # refused before any GPU is needed
    (fake,) = simulated_evaluator()(task, candidate, [{}], CONFIG)
    assert real.stage is fake.stage is Stage.STATIC and real.verdict is fake.verdict is Verdict.REJECTED
    fields = ("reason", "task_name", "task_hash", "candidate_hash", "policy", "dtype", "shapes", "speedup_eager")
    assert {f: getattr(fake, f) for f in fields} == {f: getattr(real, f) for f in fields}
    assert fake.provenance.harness_version == real.provenance.harness_version
