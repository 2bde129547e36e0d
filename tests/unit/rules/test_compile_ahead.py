"""Compiles ahead of the build: what a rule candidate declares it compiles
(``COMPILE_AHEAD``, read without running it) is what its ``ModelNew`` compiles at any setting,
so the evaluator's side-by-side compile of several settings fills the caches the builds hit."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from autotuner.candidate import ahead_compiles
from autotuner.evaluator.inputs import init_args
from autotuner.runtime import compile as runtime_compile
from autotuner.tasks import load_task
from evolution.proposers.rules import translate

ROOT = Path(__file__).resolve().parents[3]
TASKS = ["softmax/softmax.py", "activation/relu.py", "normalization/layernorm.py", "scan/cumsum.py",
         "loss/cross_entropy.py", "reduction/sum_dim1_3d.py"]


class _Built(Exception):
    """Stops ModelNew right after its compile (the rest needs a GPU)."""


def _compiled_by_model(module, args, setting):  # noqa: ANN001, ANN202
    seen = []

    def fake(source, defines=None):  # noqa: ANN001, ANN202
        seen.append((source, dict(defines or {})))
        raise _Built

    module.compile_module = fake
    with pytest.raises(_Built):
        module.ModelNew(*args, **setting)
    return seen[0]


@pytest.mark.parametrize("rel", TASKS)
def test_the_declared_compiles_are_what_the_model_compiles(rel: str, tmp_path: Path) -> None:
    import importlib.util

    task = load_task(ROOT / "kernels" / "tasks" / rel)
    rng = random.Random(0)
    for i, proposal in enumerate(translate(task, max_variants=2).proposals):
        path = tmp_path / f"cand_{i}.py"
        path.write_text(proposal.source)
        spec = importlib.util.spec_from_file_location(f"ahead_cand_{rel.replace('/', '_')}_{i}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        other = {name: rng.choice(values) for name, values in proposal.params_space.items()}
        settings = [dict(proposal.default_params), other]
        units = ahead_compiles(proposal.source, settings)
        assert units, f"{rel} {proposal.variant}: no COMPILE_AHEAD"
        args = init_args(task, task.shapes[0])
        expected = [_compiled_by_model(module, args, s) for s in settings]
        assert [u for u in units] == [e for j, e in enumerate(expected) if e not in expected[:j]]


def test_undeclared_or_malformed_candidates_declare_nothing() -> None:
    assert ahead_compiles("SOURCE = '__global__ void k() {}'\n", [{}]) == []
    assert ahead_compiles("def broken(:\n", [{}]) == []
    assert ahead_compiles("COMPILE_AHEAD = {'source': 'SRC', 'defines': {}}\nSRC = make()\n", [{}]) == []  # not a literal
    text = "SRC = 'x'\nCOMPILE_AHEAD = {'source': 'SRC', 'defines': {'B': 1}}\n"
    assert ahead_compiles(text, [{}, {"B": 1}, {"B": 2}, {"B": 2, "OTHER": 5}]) == [("x", {"B": 1}), ("x", {"B": 2})]


def test_units_compile_side_by_side_and_failures_are_left_to_the_build(monkeypatch) -> None:
    barrier = threading.Barrier(3, timeout=5)
    calls = []

    def fake(source, defines=None):  # noqa: ANN001, ANN202
        calls.append(defines["B"])
        barrier.wait()  # returns only when three compiles are in flight at once
        if defines["B"] == 3:
            raise RuntimeError("bad unit")
        time.sleep(0.01)

    monkeypatch.setattr(runtime_compile, "compile_module", fake)
    done = runtime_compile.compile_ahead([("s", {"B": b}) for b in (1, 2, 3)], jobs=3)
    assert done == 2 and sorted(calls) == [1, 2, 3]
    assert runtime_compile.compile_ahead([]) == 0


def test_an_arch_specific_unit_compiles_for_its_target(monkeypatch) -> None:
    """A candidate that declares ``'arch': 'sm_90a'`` (the wgmma flash form) is compiled ahead for
    that target, so its build finds the module in the cache."""
    calls = []
    monkeypatch.setattr(runtime_compile, "compile_module",
                        lambda source, defines=None, arch=None: calls.append((defines["B"], arch)))
    assert runtime_compile.compile_ahead([("s", {"B": 1}), ("s", {"B": 2})], jobs=2, arch="sm_90a") == 2
    assert sorted(calls) == [(1, "sm_90a"), (2, "sm_90a")]
