"""Cumulative scans and the losses built from per-row and whole-tensor reductions, written the
ways users (and KernelBench level 1) write them: each translates to the expected plan, and
every structural variant matches the reference on the CPU emulator, on awkward sizes (odd
lengths, rows split across blocks, columns cut into chunks, bf16, reversed, exclusive)."""

from __future__ import annotations

import os

import pytest

import cuda_emu
from autotuner.tasks import load_task
from evolution.proposers.rules import translate
from evolution.proposers.rules.kern_scan import spec as scan_spec

from test_extra_tasks import translate_cases, write

X = "torch.randn(33, 1001)"
BF = "torch.randn(9, 1000, dtype=torch.bfloat16)"
BATCH = ('batch = 33\ndim = 77\nSHAPES = [{"name": "small", "batch": 20, "dim": 50}, '
         '{"name": "odd", "batch": 7, "dim": 1001, "hidden": True}]')
NOWIDE = "INPUT_DISTRIBUTIONS = []"
# name: (case, expected scan spec fields or expected region kinds)
SCANS = {
    "cumsum": (dict(body="return torch.cumsum(x, dim=1)", inputs=f"[{X}]"), {}),
    "cumprod": (dict(body="return torch.cumprod(x, dim=-1)", inputs=f"[{X}]", extra=NOWIDE), {"kind": "prod"}),
    "reverse": (dict(body="return torch.flip(torch.cumsum(torch.flip(x, [1]), 1), [1])", inputs=f"[{X}]"),
                {"reverse": True}),
    "reverse_method": (dict(body="return x.flip(-1).cumsum(-1).flip(-1)", inputs="[torch.randn(33, 1000)]"),
                       {"reverse": True}),
    "exclusive_sub": (dict(body="return torch.cumsum(x, 1) - x", inputs="[torch.randn(33, 1000)]"), {"exclusive": True}),
    "exclusive_reverse_sub": (dict(body="return x.flip(1).cumsum(1).flip(1) - x", inputs=f"[{X}]"),
                              {"exclusive": True, "reverse": True}),
    "exclusive_shift": (dict(body="return torch.cat((torch.zeros_like(x[:, :1]), x[:, :-1]), dim=1).cumsum(1)",
                             inputs=f"[{X}]"), {"exclusive": True, "pad": False}),
    "exclusive_kernelbench": (dict(body="e = torch.cat((torch.zeros_like(x.select(1, 0).unsqueeze(1)), x), dim=1)[:-1]\n"
                                        "return torch.cumsum(e, dim=1)", inputs="[torch.randn(33, 1000)]"),
                              {"exclusive": True, "pad": True, "trim0": 1}),
    "exclusive_pad_slice": (dict(body="return F.pad(torch.cumsum(x, 1), (1, 0))[:, :-1]", inputs="[torch.randn(33, 1000)]"),
                            {"exclusive": True, "pad": False}),
    "with_total_pad": (dict(body="return F.pad(torch.cumsum(x, -1), (1, 0))", inputs=f"[{X}]"),
                       {"exclusive": True, "pad": True}),
    "dim0": (dict(body="return torch.cumsum(x, dim=0)", inputs="[torch.randn(301, 130)]"), {"dim": 0}),
    "dim1_of_3d_prod": (dict(body="return torch.cumprod(x, dim=1)", inputs="[1 + 0.01 * torch.randn(3, 301, 7)]",
                             extra=NOWIDE), {"dim": 1, "kind": "prod"}),
    "dim0_reverse": (dict(body="return x.flip(0).cumsum(0).flip(0)", inputs="[torch.randn(301, 128)]"),
                     {"dim": 0, "reverse": True}),
    "dim0_exclusive": (dict(body="return x.cumsum(0) - x", inputs="[torch.randn(301, 128)]"),
                       {"dim": 0, "exclusive": True}),
    "bf16": (dict(body="return torch.cumsum(x, dim=-1)", inputs=f"[{BF}]", dtype="bfloat16"), {}),
    "bf16_reverse": (dict(body="return x.flip(-1).cumsum(-1).flip(-1)", inputs=f"[{BF}]", dtype="bfloat16"),
                     {"reverse": True}),
    "bf16_dim0": (dict(body="return torch.cumsum(x, dim=0)", inputs="[torch.randn(1000, 24, dtype=torch.bfloat16)]",
                       dtype="bfloat16"), {"dim": 0}),
    "long_rows_split": (dict(body="return torch.cumsum(x, dim=1)", inputs="[torch.randn(2, 300001)]"), {}),
    "long_rows_split_prod_reverse": (dict(body="return x.flip(1).cumprod(1).flip(1)", inputs="[torch.randn(2, 100003)]",
                                          extra=NOWIDE), {"reverse": True, "kind": "prod"}),
    "tall_columns_chunked": (dict(body="return torch.cumsum(x, dim=0)", inputs="[torch.randn(20001, 8)]"), {"dim": 0}),
    "masked": (dict(fargs="x, m", body="return torch.cumsum(x * m, dim=1)",
                    inputs="[torch.randn(33, 77), torch.randint(0, 2, (33, 77)).bool()]"), {}),
}
LOSSES = {
    "kl_batchmean": (dict(fargs="x, y", body="return F.kl_div(torch.log_softmax(x, -1), torch.softmax(y, -1), "
                                             "reduction='batchmean')",
                          inputs="[torch.randn(batch, dim), torch.randn(batch, dim)]", extra=BATCH),
                     ["row", "reduce_all"]),
    "kl_batchmean_log": (dict(fargs="x, y", body="return F.kl_div(torch.log(x), y, reduction='batchmean')",
                              inputs="[torch.rand(batch, dim).softmax(-1), torch.rand(batch, dim).softmax(-1)]",
                              extra=BATCH + "\n" + NOWIDE), ["reduce_all"]),
    "kl_sum_log_target": (dict(fargs="x, y", body="return F.kl_div(x, y, reduction='sum', log_target=True)",
                               inputs="[torch.randn(31, 45), torch.randn(31, 45)]"), ["reduce_all"]),
    "kl_mean": (dict(fargs="x, y", body="return F.kl_div(x, y, reduction='mean')",
                     inputs="[torch.randn(31, 45), torch.rand(31, 45)]"), ["reduce_all"]),
    "cosine": (dict(fargs="x, y", body="return torch.mean(1 - F.cosine_similarity(x, y, dim=1))",
                    inputs="[torch.randn(33, 77), torch.randn(33, 77)]"), ["row", "reduce_all"]),
    "cosine_embedding_like": (dict(fargs="x, y", body="return (1 - F.cosine_similarity(x, y, dim=-1, eps=1e-6)).sum()",
                                   inputs="[torch.randn(5, 7, 99), torch.randn(5, 7, 99)]"), ["row", "reduce_all"]),
    "hinge": (dict(fargs="x, y", body="return torch.mean(torch.clamp(1 - x * y, min=0))",
                   inputs="[torch.randn(33, 77), torch.randint(0, 2, (33, 77)).float() * 2 - 1]"), ["reduce_all"]),
    "triplet": (dict(fargs="a, p, n", body="return F.triplet_margin_loss(a, p, n, margin=1.0)",
                     inputs="[torch.randn(33, 77), torch.randn(33, 77), torch.randn(33, 77)]"), ["row", "reduce_all"]),
    "triplet_sum_margin": (dict(fargs="a, p, n", body="return F.triplet_margin_loss(a, p, n, margin=0.3, reduction='sum')",
                                inputs="[torch.randn(40, 5), torch.randn(40, 5), torch.randn(40, 5)]"),
                           ["row", "reduce_all"]),
    "huber_delta": (dict(fargs="x, y", body="return F.huber_loss(x, y, delta=2.5)",
                         inputs="[torch.randn(31, 45), torch.randn(31, 45)]"), ["reduce_all"]),
    "smooth_l1_default": (dict(fargs="x, y", body="return F.smooth_l1_loss(x, y)",
                               inputs="[torch.randn(31, 45), torch.randn(31, 45)]"), ["reduce_all"]),
    "ce_label_smoothing": (dict(fargs="x, t", body="return F.cross_entropy(x, t, label_smoothing=0.1)",
                                inputs="[torch.randn(40, 7), torch.randint(0, 7, (40,))]", extra=NOWIDE),
                           ["row", "reduce_all"]),
    "manual_batch_mean": (dict(body="return (x * x).sum() / x.shape[0]", inputs="[torch.randn(batch, dim)]", extra=BATCH),
                          ["reduce_all"]),
}
REFUSED = {
    "flip_alone": (dict(body="return torch.flip(x, [1])", inputs="[torch.randn(8, 16)]"), "flip"),
    "cumsum_int": (dict(body="return torch.cumsum(x, 1)", inputs="[torch.randint(0, 5, (8, 16))]"), "int64"),
}


@pytest.fixture(scope="module")
def translated(tmp_path_factory):  # noqa: ANN001, ANN201 - {name: (task path, Translation)}
    tmp = tmp_path_factory.mktemp("scans_losses")
    cases = {n: c for n, (c, _) in {**SCANS, **LOSSES}.items()}
    return translate_cases(tmp, cases)


@pytest.mark.parametrize("name", sorted(SCANS))
def test_scan_patterns_become_one_scan(name: str, translated) -> None:  # noqa: ANN001
    _, t = translated[name]
    assert t.proposals, t.notes
    scans = [r for r in t.plan.regions if r.kind == "scan"]
    assert len(scans) == 1, t.plan.describe()
    node = scans[0].nodes[0]
    want = dict(kind="sum", dim=len(node.args["self"].shape) - 1, reverse=False, exclusive=False, pad=False, trim0=0)
    want.update(SCANS[name][1])
    assert scan_spec(node) == want
    if name == "masked":
        assert [r.kind for r in t.plan.regions] == ["pointwise", "scan"]
    else:
        assert [r.kind for r in t.plan.regions] == ["scan"]


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_plan(name: str, translated) -> None:  # noqa: ANN001
    _, t = translated[name]
    assert t.proposals, t.notes
    assert [r.kind for r in t.plan.regions] == LOSSES[name][1], t.plan.describe()


def test_batchmean_divides_by_the_runtime_batch(translated) -> None:  # noqa: ANN001
    for name in ("kl_batchmean_log", "manual_batch_mean"):
        source = translated[name][1].proposals[0].source
        assert "float(x.shape[0])" in source


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_with_a_reason(name: str, tmp_path) -> None:  # noqa: ANN001
    case, words = REFUSED[name]
    t = translate(load_task(write(tmp_path, name, case)))
    assert not t.proposals and t.notes
    assert words in t.notes[-1] and "not translated" in t.notes[-1]


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_every_variant_matches_reference_on_cpu_emulator(translated, tmp_path) -> None:  # noqa: ANN001
    specs, names = [], []
    for name, (task, t) in sorted(translated.items()):
        proposals = t.proposals if name in SCANS else t.proposals[:1]
        for proposal in proposals:
            cand = tmp_path / f"{name}_{proposal.variant.replace('/', '_')}.py"
            cand.write_text(proposal.source)
            params = dict(proposal.default_params, BLOCK=min(proposal.default_params["BLOCK"], 128))
            specs.append((task, cand, params, 3_000_000))
            names.append(f"{name} [{proposal.variant}]")
            if "STAGE" in params:  # every path: staged through shared memory, in place, prefetching
                for extra in ({"STAGE": 1, "ITEMS": 2}, {"STAGE": 0, "PREFETCH": 1, "ITEMS": 2}):
                    specs.append((task, cand, dict(params, **extra), 3_000_000))
                    names.append(f"{name} [{proposal.variant} {extra}]")
    reports = cuda_emu.run_candidates(specs, workers=max(2, os.cpu_count() or 2))
    bad = {n: r["reason"] for n, r in zip(names, reports) if not r["ok"]}
    assert not bad
