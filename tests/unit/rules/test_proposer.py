"""The rules proposer against the Proposer contract, on the whole suite and on small tasks."""

from __future__ import annotations

import ast

import pytest

from autotuner.candidate import cuda_sources
from autotuner.evaluator.static_check import check_source
from autotuner.runtime import parse_kernels
from autotuner.tasks import load_task
from evolution.proposers.base import Proposer, ProposalRequest
from evolution.proposers.rules import RulesProposer, translate

from conftest import write_task

ROW_FAMILIES = ("normalization/", "softmax/", "reduction/", "loss/cross_entropy", "decode/residual_rmsnorm")


def test_is_a_proposer() -> None:
    proposer = RulesProposer()
    assert isinstance(proposer, Proposer)
    assert proposer.name == "rules"


def test_every_suite_task_translates(translations) -> None:  # noqa: ANN001
    missing = {name: t.notes for name, t in translations.items() if not t.proposals}
    assert not missing


def test_row_ops_get_several_structural_variants(translations) -> None:  # noqa: ANN001
    for name, t in translations.items():
        if name.startswith(ROW_FAMILIES):
            variants = [p.variant for p in t.proposals]
            assert len(variants) >= 2 and len(set(variants)) == len(variants), (name, variants)


def _init_kwonly(source: str) -> dict[str, object]:
    tree = ast.parse(source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ModelNew")
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    return {a.arg: ast.literal_eval(d) for a, d in zip(init.args.kwonlyargs, init.args.kw_defaults)}


def _module_params(source: str) -> dict[str, list]:
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "PARAMS":
            return ast.literal_eval(node.value)
    raise AssertionError("no PARAMS")


def test_proposals_are_well_formed_candidates(translations, suite_tasks) -> None:  # noqa: ANN001
    for name, t in translations.items():
        for p in t.proposals:
            if p.proposer == "seed":  # hand-written (tests/unit/test_seeds.py)
                continue
            where = f"{name} {p.variant}"
            assert check_source(p.source) == [], where
            assert p.operator == "translate" and p.proposer == "rules" and p.variant, where
            assert _module_params(p.source) == p.params_space, where
            assert _init_kwonly(p.source) == p.default_params, where
            for key, choices in p.params_space.items():
                assert p.default_params[key] in choices, (where, key)
            kernels = {k for src in cuda_sources(p.source) for k in parse_kernels(src)}
            assert kernels and all(k.startswith("rules_") for k in kernels), where
            assert 'extern "C"' in "".join(cuda_sources(p.source)), where


def test_model_new_keeps_the_reference_constructor(translations, suite_tasks) -> None:  # noqa: ANN001
    for name, t in translations.items():
        ref = ast.parse(suite_tasks[name].source)
        model = next(n for n in ref.body if isinstance(n, ast.ClassDef) and n.name == "Model")
        ref_init = next(n for n in model.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
        rules = [p for p in t.proposals if p.proposer == "rules"]
        if not rules:
            continue
        cand = ast.parse(rules[0].source)
        cls = next(n for n in cand.body if isinstance(n, ast.ClassDef) and n.name == "ModelNew")
        init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
        assert [a.arg for a in init.args.args] == [a.arg for a in ref_init.args.args], name


def test_hybrid_tasks_leave_only_the_gemm_or_conv_to_pytorch(translations) -> None:  # noqa: ANN001
    for name, t in translations.items():
        source = t.proposals[0].source
        if name.startswith(("gemm/", "conv/")):
            assert ("torch.mm(" in source) != ("F.conv2d(" in source), name
            assert any("stays in PyTorch" in n for n in t.notes), name
        else:
            assert "torch.mm(" not in source and "F.conv" not in source, name


def test_other_operators_get_a_note(suite_tasks) -> None:  # noqa: ANN001
    batch = RulesProposer().propose(ProposalRequest(suite_tasks["activation/relu"], operator="optimize"))
    assert batch.proposals == [] and "only translates" in batch.notes[0]


def test_request_goes_through_propose(suite_tasks) -> None:  # noqa: ANN001
    batch = RulesProposer(max_variants=1).propose(ProposalRequest(suite_tasks["softmax/softmax"]))
    assert len(batch.proposals) == 1 and batch.proposals[0].variant.startswith("row/")


@pytest.mark.parametrize("forward, expect", [
    ("        return torch.fft.fft(x).real", "aten._fft_r2c"),
    ("        return torch.sort(x, dim=-1).values", "aten.sort"),
    ("        return torch.cummax(x, dim=-1).values", "aten.cummax"),
])
def test_untranslatable_ops_are_reported_with_their_line(tmp_path, forward: str, expect: str) -> None:  # noqa: ANN001
    batch = RulesProposer().propose(ProposalRequest(load_task(write_task(tmp_path, forward))))
    assert batch.proposals == []
    assert any(expect in n and "line 11" in n for n in batch.notes), batch.notes


def test_strict_gemm_is_the_rules_own_kernel(tmp_path) -> None:  # noqa: ANN001
    """Under the strict policy the GEMM is a kernel of the candidate's (no PyTorch call), its
    epilogue a pointwise region; an integer matmul is refused with the reason."""
    task = load_task(write_task(tmp_path, "        return torch.relu(x @ self.w)",
                                init="        self.w = nn.Parameter(torch.randn(16, 4))\n"))
    batch = RulesProposer().propose(ProposalRequest(task))
    assert batch.proposals and all(p.variant.startswith("gemm/") for p in batch.proposals)
    assert all("torch.mm" not in p.source and "torch.matmul" not in p.source for p in batch.proposals)
    task = load_task(write_task(tmp_path, "        return x @ x.t()", inputs="[torch.randint(0, 5, (8, 16))]"))
    batch = RulesProposer().propose(ProposalRequest(task))
    assert batch.proposals == [] and any("float32, bfloat16 or float16" in n for n in batch.notes)


def test_hybrid_gemm_with_a_plain_weight(tmp_path) -> None:  # noqa: ANN001
    task = load_task(write_task(tmp_path, "        return torch.tanh(x @ self.w) * 2.0",
                                init="        self.w = nn.Parameter(torch.randn(16, 4))\n", policy="hybrid"))
    batch = RulesProposer().propose(ProposalRequest(task))
    assert batch.proposals and "torch.mm(x, self.w)" in batch.proposals[0].source


def test_a_fused_chain_with_broadcasts(tmp_path) -> None:  # noqa: ANN001
    task = load_task(write_task(
        tmp_path, "        return torch.sigmoid(x * self.scale + self.bias.view(1, -1)).clamp(max=self.cap)",
        init="        self.scale = 0.5\n        self.cap = 0.9\n        self.bias = nn.Parameter(torch.randn(16))\n"))
    batch = RulesProposer().propose(ProposalRequest(task))
    assert batch.proposals, batch.notes
    source = batch.proposals[0].source
    assert "float(self.scale)" in source and "float(self.cap)" in source


_BRANCHY = dict(iargs=", scale", init="self.scale = scale", initin="[scale]", inputs="[torch.randn(16, 64)]",
                extra="scale = 1.0",
                body="y = torch.relu(x)\nif self.scale != 1.0:\n    y = y * self.scale\nreturn y")


def test_a_branch_on_an_attribute_is_kept_when_the_task_has_one_shape(tmp_path) -> None:  # noqa: ANN001
    """KernelBench's tasks have one shape: nothing can set the attribute otherwise, so the traced
    branch is right and the task translates (with a note)."""
    from test_extra_tasks import write

    t = translate(load_task(write(tmp_path, "branchy", _BRANCHY)))
    assert t.proposals, t.notes
    assert any("depends on attribute scale" in n for n in t.notes)


def test_a_branch_on_an_attribute_is_refused_when_shapes_may_set_it_otherwise(tmp_path) -> None:  # noqa: ANN001
    from test_extra_tasks import write

    case = dict(_BRANCHY, extra='scale = 1.0\nSHAPES = [{"name": "other", "scale": 0.5, "hidden": True}]')
    t = translate(load_task(write(tmp_path, "branchy_shapes", case)))
    assert not t.proposals
    assert "branches on attribute(s) scale" in t.notes[-1] and "several shapes" in t.notes[-1]
