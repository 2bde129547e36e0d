"""Reductions over dims that are not the trailing ones (column regions, ``kern_col``), and
norms / softmax over any dim: each small task must translate, and every variant must match the
reference on the CPU emulator (odd sizes, several dims, keepdim, R == 1, long R with few
columns through the split path, argmax ties and NaN, bf16); non-adjacent dims are refused with
a reason."""

from __future__ import annotations

import os

import pytest

import cuda_emu
from autotuner.tasks import load_task
from evolution.proposers.rules import translate
from evolution.proposers.rules.lower import lower
from evolution.proposers.rules.plan import make_plan
from evolution.proposers.rules.trace import trace_task
from test_extra_tasks import translate_cases, untranslated, write
from variant_checks import emulate_variants

_RMS_C = ("h = x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-6)\n"
          "return h * self.w.view(1, -1, 1, 1)")
CASES = {
    "sum_dim1": dict(body="return x.sum(dim=1)", inputs="[torch.randn(3, 37, 5)]"),
    "sum_dim0_keepdim": dict(body="return x.sum(dim=0, keepdim=True)", inputs="[torch.randn(37, 5, 3)]"),
    "sum_dims01": dict(body="return x.sum(dim=(0, 1))", inputs="[torch.randn(5, 7, 9)]"),
    "sum_dims12_of4": dict(body="return torch.sum(x, dim=[1, 2], keepdim=True)", inputs="[torch.randn(2, 3, 5, 7)]"),
    "sum_r1": dict(body="return x.sum(dim=1)", inputs="[torch.randn(4, 1, 33)]"),
    "sum_i1_row": dict(body="return x.sum(dim=1)", inputs="[torch.randn(4, 33, 1)]"),
    "mean_dim0": dict(body="return x.mean(dim=0)", inputs="[torch.randn(4099, 40)]"),
    "mean_dim0_odd": dict(body="return x.mean(dim=0)", inputs="[torch.randn(2011, 37)]"),
    "max_dim1": dict(body="return torch.amax(x, dim=1)", inputs="[torch.randn(3, 37, 5)]"),
    "min_dim1_tuple": dict(body="v, i = x.min(dim=1)\nreturn v, i", inputs="[torch.randn(3, 37, 5)]"),
    "prod_dim1": dict(body="return torch.prod(x, dim=1)", inputs="[1.0 + 0.05 * torch.randn(3, 17, 6)]"),
    "prod_last": dict(body="return torch.prod(x, dim=-1)", inputs="[1.0 + 0.05 * torch.randn(9, 17)]"),
    "argmax_dim1": dict(body="return x.argmax(dim=1)", inputs="[torch.randn(4, 33, 9)]"),
    "argmax_ties_nan": dict(body="y = torch.round(x * 2.0)\ny = torch.where(x > 2.2, torch.nan, y)\n"
                                 "return y.argmax(dim=1), y.argmin(dim=0)",
                            inputs="[torch.randn(41, 23, 6)]", extra="INPUT_DISTRIBUTIONS = []"),
    # whole columns of -inf (argmax) and +inf (argmin): the first index, though no value beats the start
    "argmax_inf_columns": dict(body="return x.argmax(dim=1), (-x).argmin(dim=1)",
                               inputs="[torch.where(torch.arange(7) % 3 == 0, -torch.inf, torch.randn(2, 45, 7))]",
                               extra="INPUT_DISTRIBUTIONS = []"),
    "argmin_dim0_long": dict(body="return x.argmin(dim=0)", inputs="[torch.randn(3001, 7)]"),
    "logsumexp_dim1": dict(body="return torch.logsumexp(x, dim=1)", inputs="[torch.randn(3, 37, 5)]"),
    "lse_dim0_long": dict(body="return torch.logsumexp(x, dim=0, keepdim=True)", inputs="[torch.randn(2500, 9)]"),
    "var_std_dim1": dict(body="return x.var(dim=1) + x.std(dim=1, keepdim=True).squeeze(1)",
                         inputs="[torch.randn(3, 37, 5) + 3.0]"),
    "var_dim0_long": dict(body="return torch.var(x, dim=0, unbiased=False)", inputs="[torch.randn(3001, 6) * 2 + 5]"),
    "l2_norm_dim1": dict(body="return torch.linalg.vector_norm(x, dim=1)", inputs="[torch.randn(3, 37, 5)]"),
    "l1_norm_dim0": dict(body="return torch.linalg.vector_norm(x, ord=1, dim=0)", inputs="[torch.randn(37, 5, 3)]"),
    "softmax_dim1_3d": dict(body="return torch.softmax(x, dim=1)", inputs="[torch.randn(3, 37, 5)]"),
    "softmax_dim1_4d": dict(body="return torch.softmax(x, dim=1)", inputs="[torch.randn(2, 7, 3, 5)]"),
    "log_softmax_dim0": dict(body="return F.log_softmax(x, dim=0)", inputs="[torch.randn(33, 17)]"),
    "softmax_dim1_bf16": dict(body="return torch.softmax(x, dim=1)", inputs="[torch.randn(2, 19, 24, dtype=torch.bfloat16)]",
                              dtype="bfloat16"),
    "rmsnorm_channels": dict(iargs=", c=12", init="self.w = nn.Parameter(1.0 + 0.1 * torch.randn(c))", body=_RMS_C,
                             inputs="[torch.randn(2, 12, 5, 7)]", initin="[12]"),
    "rmsnorm_channels_vec": dict(iargs=", c=12", init="self.w = nn.Parameter(1.0 + 0.1 * torch.randn(c))", body=_RMS_C,
                                 inputs="[torch.randn(2, 12, 4, 8)]", initin="[12]"),
    "rmsnorm_channels_long": dict(iargs=", c=300", init="self.w = nn.Parameter(1.0 + 0.1 * torch.randn(c))",
                                  body=_RMS_C, inputs="[torch.randn(2, 300, 2, 4)]", initin="[300]"),
    "softmax_dim1_vec": dict(body="return torch.softmax(x, dim=1)", inputs="[torch.randn(3, 9, 8, 4)]"),
    "layernorm_channels": dict(body="m = x.mean(dim=1, keepdim=True)\nv = x.var(dim=1, keepdim=True, unbiased=False)\n"
                                    "return (x - m) / torch.sqrt(v + 1e-5)", inputs="[torch.randn(2, 9, 4, 5) + 2.0]"),
    "standardize_dim0_bias": dict(iargs=", n=11", init="self.b = nn.Parameter(torch.randn(n))",
                                  body="return (x - x.mean(dim=0)) + self.b", inputs="[torch.randn(29, 11)]",
                                  initin="[11]"),
    "instancenorm": dict(init="self.n = nn.InstanceNorm2d(4)", body="return self.n(x)", inputs="[torch.randn(2, 4, 5, 6)]"),
    "batchnorm_eval": dict(init="self.bn = nn.BatchNorm2d(4)\nself.bn.running_mean.uniform_(-1, 1)\n"
                                "self.bn.running_var.uniform_(0.5, 2)\nself.bn.eval()",
                           body="return self.bn(x)", inputs="[torch.randn(2, 4, 5, 6)]"),
    # InstanceNorm with affine weight and bias (traced as weight.repeat(N) on a [1, N*C] view)
    "instancenorm_affine": dict(init="self.n = nn.InstanceNorm2d(4, affine=True)\n"
                                     "nn.init.uniform_(self.n.weight, 0.5, 1.5)\nnn.init.uniform_(self.n.bias, -1, 1)",
                                body="return self.n(x)", inputs="[torch.randn(2, 4, 5, 6)]"),
    # a BatchNorm module left in training mode: the evaluator runs every reference in eval mode,
    # so the rules trace it there too (running statistics, not the batch's)
    "batchnorm_module": dict(init="self.bn = nn.BatchNorm2d(4)\nself.bn.running_mean.uniform_(-1, 1)\n"
                                  "self.bn.running_var.uniform_(0.5, 2)",
                             body="return self.bn(x)", inputs="[torch.randn(2, 4, 5, 6)]"),
    # dims apart from each other: reduced block by block (the variance by the law of total variance)
    "sum_dims02": dict(body="return x.sum(dim=(0, 2))", inputs="[torch.randn(4, 5, 6)]"),
    "batch_stats_norm": dict(body="return F.batch_norm(x, None, None, training=True)", inputs="[torch.randn(2, 4, 5, 6)]"),
}
REFUSED = {
    "median_dim1": (dict(body="return torch.median(x, dim=1).values", inputs="[torch.randn(4, 5, 6)]"), "median"),
}


@pytest.fixture(scope="module")
def col_tasks(tmp_path_factory):  # noqa: ANN001, ANN201 - {name: (task path, Translation)}
    tmp = tmp_path_factory.mktemp("col_tasks")
    return translate_cases(tmp, CASES)


def test_every_col_task_translates(col_tasks) -> None:  # noqa: ANN001
    assert not untranslated(col_tasks)


@pytest.mark.parametrize("name, kinds", [
    ("sum_dim1", ["col"]), ("sum_dims01", ["col"]), ("sum_i1_row", ["row"]), ("softmax_dim1_4d", ["col"]),
    ("rmsnorm_channels", ["col"]), ("instancenorm", ["row"]), ("batchnorm_eval", ["pointwise"]),
    ("layernorm_channels", ["col"]),
])
def test_col_tasks_plan_to_expected_regions(name: str, kinds: list, col_tasks) -> None:  # noqa: ANN001
    path, _ = col_tasks[name]
    task = load_task(path)
    plan = make_plan(lower(trace_task(task), task.policy))
    assert [r.kind for r in plan.regions] == kinds, plan.describe()
    for region in plan.regions:
        if region.kind == "col":
            assert region.span[1] < len(region.shape)


def test_rmsnorm_over_channels_reads_the_weight_along_j(col_tasks) -> None:  # noqa: ANN001
    path, t = col_tasks["rmsnorm_channels"]
    (region,) = t.plan.regions
    kinds = sorted(lf.kind for lf in region.leaves.values() if lf.node.op != "const")
    assert kinds == ["col", "full"]
    assert region.rdims == (1,)


def test_split_variant_is_first_for_few_long_columns(col_tasks) -> None:  # noqa: ANN001
    _, t = col_tasks["mean_dim0"]
    assert t.proposals[0].variant == "col/colsplit-split"
    assert t.proposals[0].default_params["SPLIT"] > 1
    # and the block across 4 KB of each row, sliced along j too (16-byte columns)
    assert any(p.variant == "col/col-split" and p.default_params["SPLIT"] > 1 for p in t.proposals)
    _, t = col_tasks["softmax_dim1_3d"]
    assert not any(p.variant.endswith("-split") for p in t.proposals)  # per-element outputs: no split


def _emulate(col_tasks, tmp_path, every: bool) -> dict:  # noqa: ANN001
    specs, names = [], []
    for name, (task, t) in col_tasks.items():
        for p in t.proposals if every else t.proposals[:1]:
            cand = tmp_path / f"{name}__{p.variant.replace('/', '_')}.py"
            cand.write_text(p.source)
            params = dict(p.default_params, BLOCK=min(p.default_params["BLOCK"], 128))
            specs.append((task, cand, params, 3_000_000))
            names.append(f"{name} [{p.variant}]")
    reports = cuda_emu.run_candidates(specs, workers=max(2, os.cpu_count() or 2))
    return {n: r["reason"] for n, r in zip(names, reports) if not r["ok"]}


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_col_tasks_match_reference_on_cpu_emulator(col_tasks, tmp_path) -> None:  # noqa: ANN001
    """Every structural variant (col, colsplit, split, two-pass) of every case."""
    assert not _emulate(col_tasks, tmp_path, every=True)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_col_refused_with_a_reason(name: str, tmp_path) -> None:  # noqa: ANN001
    case, words = REFUSED[name]
    t = translate(load_task(write(tmp_path, name, case)))
    assert not t.proposals and t.notes
    assert words in t.notes[-1] and "not translated" in t.notes[-1]


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_cached_columns_in_shared_memory_match_reference_on_cpu_emulator(col_tasks, tmp_path) -> None:  # noqa: ANN001
    """SMEMC 1: the cached kernels' tile copied asynchronously into shared memory instead of
    registers, at ITEMS large enough that every case's column fits (the cached kernel runs):
    vector and scalar (odd inner size) paths, fp32 and bf16 storage."""
    bad, _, names = emulate_variants(col_tasks, tmp_path, lambda p: p.variant.startswith("col/colsplit-cached"),
                                     lambda p: dict(p.default_params, BLOCK=128, ITEMS=16, OCC=75, SMEMC=1))
    assert {"softmax_dim1_3d", "softmax_dim1_bf16", "softmax_dim1_vec", "rmsnorm_channels_vec"} <= \
        {n.split(" ")[0] for n in names}, names
    assert not bad
