"""The hand-written seeds in kernels/seeds: well-formed candidates, each proposed for its task only.

Their numerics are checked on the CPU emulator (tests/unit/rules/test_emulated.py, which
runs a task's first proposal: the seed where the rules do not translate) and on the GPU by
the engine tests; here: the contract a proposal must keep.
"""

from __future__ import annotations

import ast

import pytest

from autotuner.candidate import cuda_sources
from autotuner.evaluator.verdict import EvalResult, ShapeResult, Stage, TimingStats, Verdict
from autotuner.evaluator.static_check import check_source
from autotuner.runtime import parse_kernels
from autotuner.tasks import load_task, suite_dir
from evolution.proposers.base import ProposalRequest
from evolution.proposers.rules import RulesProposer
from evolution.proposers.seeds import (SeedsProposer, constructor_defaults, params_space, seed_dir, seed_task,
                                       seed_tasks, seeds_for, sweep_knobs)
from evolution.tuning import tune

SEEDS = sorted(seed_dir().glob("*.py"))


def _init_defaults(source: str) -> dict:  # the test's own reading, independent of the proposer's
    cls = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "ModelNew")
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    args = init.args.args[len(init.args.args) - len(init.args.defaults):]
    return {a.arg: ast.literal_eval(d) for a, d in zip(args, init.args.defaults)}


def test_there_are_seeds() -> None:
    assert {p.stem for p in SEEDS} >= {"attention_decode_gqa_bf16", "rope_bf16"}


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem)
def test_seed_is_a_well_formed_candidate_for_its_task(path) -> None:  # noqa: ANN001
    source = path.read_text()
    assert check_source(source) == []
    rels = seed_tasks(source)
    assert rels and seed_task(source) == rels[0], f"{path.name}: no '# TASK:' line"
    for rel in rels:
        assert (suite_dir() / rel).is_file(), f"{path.name}: '# TASK: {rel}' names no suite task"
    space, knobs, defaults = params_space(source), sweep_knobs(source), _init_defaults(source)
    # every constructor parameter is searched or declared a sweep-only knob, never both
    assert space and set(space) | set(knobs) == set(defaults) and not set(space) & set(knobs)
    assert all(defaults[k] in choices for k, choices in {**space, **knobs}.items())
    kernels = {k for src in cuda_sources(source) for k in parse_kernels(src)}
    assert kernels and all(k.isidentifier() for k in kernels)


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.stem)
def test_a_seed_is_proposed_at_its_constructor_defaults(path) -> None:  # noqa: ANN001
    """The tuner climbs from a proposal's default setting; a seed's is what its constructor runs
    with when passed nothing, every searched key named, so the climb can start from it."""
    source = path.read_text()
    space, defaults = params_space(source), _init_defaults(source)
    task = load_task(suite_dir() / seed_task(source))
    (proposal,) = [p for p in seeds_for(task) if p.variant == f"seed/{path.stem}"]
    assert proposal.default_params == {k: defaults[k] for k in space}
    assert set(proposal.default_params) == set(space)


def test_a_seeds_tuning_measures_its_defaults_then_their_neighbours() -> None:
    """Not eight random draws of a nine-key space (what a start outside the space gave): the
    defaults first, then settings one step from them."""
    task = load_task(suite_dir() / "decode/gemv_gate_up_bf16.py")
    (proposal,) = seeds_for(task)
    start = proposal.default_params
    seen: list[dict] = []

    def evaluate(settings: list[dict]) -> list[EvalResult]:
        seen.extend(settings)
        results = []
        for i, _ in enumerate(settings):  # every setting accepted, each slower than the last
            ms = 1.0 + 0.01 * len(seen) + 0.001 * i
            stats = TimingStats(ms, ms, 0, ms, ms, ms, ms, 50)
            results.append(EvalResult(Verdict.ACCEPTED, Stage.DONE, "ok",
                                      shapes=[ShapeResult("default", False, 5, candidate=stats)]))
        return results

    tune(proposal.params_space, evaluate, trials=8, batch=4, start=start)
    assert seen[0] == start
    for setting in seen[1:4]:
        moved = [k for k in start if setting[k] != start[k]]
        assert len(moved) == 1, setting
        choices = proposal.params_space[moved[0]]
        assert abs(choices.index(setting[moved[0]]) - choices.index(start[moved[0]])) == 1, setting


@pytest.mark.parametrize("init, reason", [
    ("def __init__(self, n, UPW=3, OCC=4): ...", "a default outside the space's choices"),
    ("def __init__(self, n, UPW=1 + 1, OCC=4): ...", "a default that is not a literal"),
    ("def __init__(self, n, UPW=1, OCC=None, **kw): ...", "a default outside the space's choices"),
    ("def __init__(self, n, OCC=4, **kw): ...", "a searched key without a default"),
])
def test_constructor_defaults_are_empty_where_they_cannot_start_a_climb(init: str, reason: str) -> None:
    source = f"class ModelNew:\n    {init}\n"
    assert constructor_defaults(source, {"UPW": [0, 1, 2], "OCC": [2, 4]}) == {}, reason


def test_constructor_defaults_read_keyword_only_defaults_too() -> None:
    source = "class ModelNew:\n    def __init__(self, n, UPW=1, *, OCC=2, EXTRA=7): ...\n"
    assert constructor_defaults(source, {"UPW": [0, 1, 2], "OCC": [2, 4]}) == {"UPW": 1, "OCC": 2}


def test_one_seed_serves_every_task_it_names() -> None:
    """The plain decode GEMV names five projection tasks: each is offered it, under one variant."""
    for rel in ("decode/gemv_qkv_bf16.py", "decode/gemv_lm_head_bf16.py"):
        found = seeds_for(load_task(suite_dir() / rel))
        assert [p.variant for p in found] == ["seed/decode_gemv_bf16"], (rel, [p.variant for p in found])


def test_seeds_are_proposed_for_their_task_and_no_other() -> None:
    gqa = load_task(suite_dir() / "decode/attention_decode_gqa_bf16.py")
    batch = RulesProposer().propose(ProposalRequest(gqa))
    assert [p.proposer for p in batch.proposals] == ["seed"]
    assert batch.proposals[0].params_space == params_space(batch.proposals[0].source)
    assert any("not translated" in n for n in batch.notes) and any("seed" in n for n in batch.notes)
    rope = load_task(suite_dir() / "decode/rope_bf16.py")
    assert [p.proposer for p in RulesProposer().propose(ProposalRequest(rope)).proposals][-1] == "seed"
    assert seeds_for(load_task(suite_dir() / "activation/relu.py")) == []


def test_a_seed_with_a_broken_params_dict_is_skipped(tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "bad.py").write_text("# TASK: kernels/tasks/activation/relu.py\nPARAMS = {'BLOCK': make()}\n")
    (tmp_path / "good.py").write_text("# TASK: kernels/tasks/activation/relu.py\nPARAMS = {'BLOCK': [128]}\n")
    found = seeds_for(load_task(suite_dir() / "activation/relu.py"), folder=tmp_path)
    assert [p.variant for p in found] == ["seed/good"]


def test_the_seeds_proposer_says_why_it_has_nothing() -> None:
    """The rest of its contract runs in tests/contracts; here: a task without a seed, another operator."""
    relu = load_task(suite_dir() / "activation/relu.py")
    for request in (ProposalRequest(relu), ProposalRequest(relu, operator="optimize")):
        batch = SeedsProposer().propose(request)
        assert batch.proposals == [] and batch.notes


def test_seed_model_imports_a_seed_freshly_and_names_a_missing_one() -> None:
    from evolution.proposers.seeds import seed_model

    first, second = seed_model("decode_gemv_bf16"), seed_model("decode_gemv_bf16")
    assert first.__name__ == "ModelNew" and first is not second  # a fresh module each time
    with pytest.raises(FileNotFoundError, match="no_such_seed"):
        seed_model("no_such_seed")
