"""Row regions split across blocks (``kern_rowsplit``): a few long rows of every row family
(reductions, argmax / argmin with ties and NaN, logsumexp, var, softmax / log-softmax,
LayerNorm over several dims, RMSNorm, GroupNorm, cross-entropy, outputs written before and
after the reductions) must offer the ``split`` variant first and match the reference on the
CPU emulator, with the chunk count chosen from the shape and forced to odd values (uneven
last chunks, odd D on the element-by-element path); the variant is absent for short rows."""

from __future__ import annotations

import os

import pytest

import cuda_emu
from autotuner.tasks import load_task
from evolution.proposers.rules.emit import emit_module
from evolution.proposers.rules.variants import _row_defines, variants_for
from test_extra_tasks import translate_cases

_LN = "self.ln = nn.LayerNorm({shape})\nwith torch.no_grad():\n    self.ln.weight.uniform_(0.5, 1.5)\n" \
      "    self.ln.bias.uniform_(-0.5, 0.5)"
_RMS = ("h = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)\nreturn h * self.w")
CASES = {
    "sum": dict(body="return x.sum(dim=-1)", inputs="[torch.randn(3, 20000)]"),
    "sum_odd": dict(body="return x.sum(dim=-1)", inputs="[torch.randn(3, 20011)]"),
    "mean_keepdim_2dims": dict(body="return x.mean(dim=(-2, -1), keepdim=True)", inputs="[torch.randn(2, 3, 101, 199)]"),
    "amax": dict(body="return torch.amax(x, dim=-1)", inputs="[torch.randn(3, 20000)]"),
    "amin_odd": dict(body="return torch.amin(x, dim=-1)", inputs="[torch.randn(3, 20003)]"),
    "max_tuple": dict(body="v, i = x.max(dim=-1)\nreturn v, i", inputs="[torch.randn(2, 17001)]"),
    "argmax_ties": dict(body="return torch.round(x * 2.0).argmax(dim=-1)", inputs="[torch.randn(3, 20000)]",
                        extra="INPUT_DISTRIBUTIONS = []"),
    "argmin_ties_odd": dict(body="return torch.round(x * 2.0).argmin(dim=-1)", inputs="[torch.randn(3, 20001)]",
                            extra="INPUT_DISTRIBUTIONS = []"),
    "argmax_nan": dict(body="y = torch.round(x * 2.0)\ny = torch.where(x > 3.0, torch.nan, y)\n"
                            "return y.argmax(dim=-1), y.argmin(dim=-1)",
                       inputs="[torch.randn(3, 20000)]", extra="INPUT_DISTRIBUTIONS = []"),
    "logsumexp": dict(body="return torch.logsumexp(x, dim=-1)", inputs="[torch.randn(3, 20000) * 4]"),
    "var_std": dict(body="return x.var(dim=-1) + x.std(dim=-1, unbiased=False)", inputs="[torch.randn(3, 20001) * 2 + 5]"),
    "softmax": dict(body="return torch.softmax(x, dim=-1)", inputs="[torch.randn(3, 20000) * 3]"),
    "log_softmax_odd": dict(body="return F.log_softmax(x, dim=-1)", inputs="[torch.randn(3, 20003)]"),
    "softmax_bf16": dict(body="return torch.softmax(x, dim=-1)", inputs="[torch.randn(3, 20000, dtype=torch.bfloat16)]",
                         dtype="bfloat16"),
    "softmax_weighted_sum": dict(body="p = torch.softmax(x, -1)\nreturn (p * x).sum(-1)", inputs="[torch.randn(3, 20000)]"),
    "layernorm_3d": dict(init=_LN.format(shape="[8, 50, 50]"), body="return self.ln(x)",
                         inputs="[torch.randn(3, 8, 50, 50) + 1.0]"),
    "layernorm_odd": dict(init=_LN.format(shape="20011"), body="return self.ln(x)", inputs="[torch.randn(2, 20011)]"),
    "rmsnorm": dict(iargs=", d=20000", init="self.w = nn.Parameter(1.0 + 0.1 * torch.randn(d))", body=_RMS,
                    inputs="[torch.randn(3, 20000)]", initin="[20000]"),
    "residual_layernorm": dict(fargs="x, r", body="h = x + r\nreturn F.layer_norm(h, (h.shape[-1],)), h",
                               inputs="[torch.randn(3, 20000), torch.randn(3, 20000)]"),
    "groupnorm": dict(init="self.gn = nn.GroupNorm(2, 4)\nwith torch.no_grad():\n    self.gn.weight.uniform_(0.5, 1.5)\n"
                           "    self.gn.bias.uniform_(-0.5, 0.5)", body="return self.gn(x)",
                      inputs="[torch.randn(2, 4, 96, 96)]"),
    "groupnorm_odd_seg": dict(init="self.gn = nn.GroupNorm(2, 4)", body="return self.gn(x)",
                              inputs="[torch.randn(1, 4, 91, 97)]"),
    "cross_entropy": dict(fargs="x, t", body="return F.cross_entropy(x, t)",
                          inputs="[torch.randn(3, 20000) * 2, torch.randint(0, 20000, (3,))]",
                          extra="INPUT_DISTRIBUTIONS = []"),
    "cross_entropy_none": dict(fargs="x, t", body="return F.cross_entropy(x, t, reduction='none')",
                               inputs="[torch.randn(3, 20001), torch.randint(0, 20001, (3,))]",
                               extra="INPUT_DISTRIBUTIONS = []"),
}
SHORT = {"sum_short": dict(body="return x.sum(dim=-1)", inputs="[torch.randn(4096, 256)]")}


@pytest.fixture(scope="module")
def split_tasks(tmp_path_factory):  # noqa: ANN001, ANN201 - {name: (task path, Translation)}
    tmp = tmp_path_factory.mktemp("rowsplit_tasks")
    return translate_cases(tmp, (CASES | SHORT))


def test_split_is_the_first_variant_for_few_long_rows(split_tasks) -> None:  # noqa: ANN001
    wrong = {n: [p.variant for p in t.proposals] for n, (_, t) in split_tasks.items()
             if n in CASES and (not t.proposals or t.proposals[0].variant != "row/split")}
    assert not wrong
    _, t = split_tasks["sum_short"]
    assert t.proposals and not any(p.variant == "row/split" for p in t.proposals)


def test_split_sizes_its_chunks_at_run_time(split_tasks) -> None:  # noqa: ANN001
    p = split_tasks["layernorm_3d"][1].proposals[0]
    assert p.default_params["SPLIT"] == 0 and "SPLITW" in p.params_space
    assert "rules_row0_split1" in p.source and "rules_row0_splitf" in p.source and "rules_row0_block" in p.source
    assert "atomicAdd" not in p.source and "atomicInc" not in p.source  # separate launches: deterministic, graph-safe


def _jobs(split_tasks, tmp_path, forced: tuple[int, ...]) -> tuple[list, list]:  # noqa: ANN001
    specs, names = [], []
    for name, (task, t) in split_tasks.items():
        for p in t.proposals:
            if p.variant != "row/split":
                continue
            cand = tmp_path / f"{name}.py"
            cand.write_text(p.source)
            for split in forced:
                params = dict(p.default_params, BLOCK=128, ITEMS=2, SPLIT=split)
                specs.append((task, cand, params, 3_000_000))
                names.append(f"{name} [SPLIT={split}]")
    return specs, names


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_split_rows_match_reference_on_cpu_emulator(split_tasks, tmp_path) -> None:  # noqa: ANN001
    """Chunks from the shape (the emulator reports 2 SMs: about 10 chunks), 7 (uneven) and 1
    (the block-per-row fallback)."""
    specs, names = _jobs(split_tasks, tmp_path, (0, 7, 1))
    reports = cuda_emu.run_candidates(specs, workers=max(2, os.cpu_count() or 2))
    bad = {n: r["reason"] for n, r in zip(names, reports) if not r["ok"]}
    assert not bad


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
@pytest.mark.parametrize("name", ["softmax", "layernorm_3d", "var_std"])
def test_split_two_pass_schedules_on_cpu_emulator(name: str, split_tasks, tmp_path) -> None:  # noqa: ANN001
    """The two-pass schedule (max, then sum; mean, then variance): later phases merge the
    earlier ones' partials in their partial kernels."""
    task_path, t = split_tasks[name]
    task = load_task(task_path)
    region = next(r for r in t.plan.regions if r.kind == "row")
    choice = {"mode": "split", "online": False, "var": "twopass"}
    defines, space = _row_defines(region, choice)
    base = variants_for(t.plan)[0]
    source = emit_module(task, t.plan, {**base.choices, region.index: choice}, defines, space, "row/split-twopass", [])
    assert "_split2" in source
    cand = tmp_path / f"{name}_twopass.py"
    cand.write_text(source)
    specs = [(task_path, cand, dict(defines, BLOCK=128, ITEMS=2, SPLIT=s), 3_000_000) for s in (0, 5)]
    reports = cuda_emu.run_candidates(specs, workers=2)
    assert not [r["reason"] for r in reports if not r["ok"]]
