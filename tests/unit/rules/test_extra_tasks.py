"""Beyond the suite: small tasks written the ways users write PyTorch (3-D softmax, LayerNorm
over two dims, var/std, argmin, a tuple from max, CE with ignore_index, nn.Linear on a 3-D
input, HF-style RMSNorm in bf16...). Each must translate, and its first variant must match the
reference on the CPU emulator; a few must be refused with a reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import cuda_emu
from autotuner.tasks import load_task
from evolution.proposers.rules import translate

TEMPLATE = '''import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self{iargs}):
        super().__init__()
{init}
    def forward(self, {fargs}):
{body}


def get_inputs():
    return {inputs}


def get_init_inputs():
    return {initin}


DTYPE = "{dtype}"
POLICY = "{policy}"
{extra}'''

CASES = {
    # NaN through relu / hardswish stays NaN, as in PyTorch (the branch-free relu select)
    "relu_hardswish_nan": dict(body="y = torch.where(x > 1.5, torch.nan, x)\nreturn torch.relu(y) + F.hardswish(y)",
                               inputs="[torch.randn(31, 257)]"),
    "affine_chain": dict(body="return torch.where(x > 0, x * 2.0 + 1.0, 0.1 * x) - 3.0", inputs="[torch.randn(37, 129)]"),
    "activations": dict(body="return F.gelu(x, approximate='tanh') + F.elu(x) + F.hardtanh(x, -0.5, 0.5) + x.clamp(min=-1.0)",
                        inputs="[torch.randn(7, 1001)]"),
    # NaN where PyTorch keeps it: hardshrink's and softshrink's middle, celu, logsigmoid for large |x|
    "shrink_celu_logsigmoid": dict(body="y = torch.where(x > 2.5, torch.nan, x * 4)\n"
                                        "return F.hardshrink(y, 0.5) + F.softshrink(y, 0.5) + F.celu(y, 0.7) "
                                        "+ F.logsigmoid(y) + torch.logit(torch.sigmoid(x), eps=1e-3)",
                                   inputs="[torch.randn(13, 257)]"),
    "prelu_rrelu": dict(init="self.p = nn.PReLU(7)\nnn.init.uniform_(self.p.weight, 0.1, 0.5)",
                        body="return self.p(x) + F.rrelu(x, 0.1, 0.3, training=False)",
                        inputs="[torch.randn(5, 7, 33)]"),
    "logsigmoid_bf16": dict(body="return F.logsigmoid(x) * 2", inputs="[torch.randn(9, 1000, dtype=torch.bfloat16)]",
                            dtype="bfloat16"),
    "softmax3d": dict(body="return torch.softmax(x, dim=-1)", inputs="[torch.randn(3, 5, 333)]"),
    "layernorm_noaffine": dict(body="return F.layer_norm(x, (x.shape[-1],))", inputs="[torch.randn(4, 3, 257)]"),
    "layernorm_two_dims": dict(init="self.ln = nn.LayerNorm([6, 50])", body="return self.ln(x)", inputs="[torch.randn(5, 6, 50)]"),
    "mean_two_dims": dict(body="return x.mean(dim=(-2, -1), keepdim=True)", inputs="[torch.randn(3, 7, 9, 11)]"),
    "var_std": dict(body="return x.var(dim=-1) + x.std(dim=-1)", inputs="[torch.randn(33, 100)]"),
    "l2_norm": dict(body="return torch.linalg.vector_norm(x, dim=-1)", inputs="[torch.randn(19, 77)]"),
    "max_tuple": dict(body="v, i = x.max(dim=-1)\nreturn v, i", inputs="[torch.randn(21, 65)]"),
    "sum_all": dict(body="return x.sum()", inputs="[torch.randn(301, 33)]"),
    "standardize": dict(body="return (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-5)",
                        inputs="[torch.randn(17, 99)]"),
    "cumsum_bf16": dict(body="return torch.cumsum(x, dim=-1)", inputs="[torch.randn(9, 1000, dtype=torch.bfloat16)]",
                        dtype="bfloat16"),
    "silu_row_scale": dict(fargs="x, y", body="return F.silu(x) * y", inputs="[torch.randn(13, 70), torch.randn(13, 1)]"),
    "ce_ignore_index": dict(fargs="x, t", body="return F.cross_entropy(x, t, ignore_index=1)",
                            inputs="[torch.randn(40, 7), torch.randint(0, 7, (40,))]", extra="INPUT_DISTRIBUTIONS = []"),
    "mse_sum": dict(fargs="x, y", body="return F.mse_loss(x, y, reduction='sum')", inputs="[torch.randn(31, 45), torch.randn(31, 45)]"),
    "mse_none": dict(fargs="x, y", body="return F.mse_loss(x, y, reduction='none')", inputs="[torch.randn(31, 45), torch.randn(31, 45)]"),
    "smooth_l1": dict(fargs="x, y", body="return F.smooth_l1_loss(x, y, beta=0.5)", inputs="[torch.randn(31, 45), torch.randn(31, 45)]"),
    "softmax_bf16": dict(body="return torch.softmax(x, dim=-1)", inputs="[torch.randn(11, 300, dtype=torch.bfloat16)]",
                         dtype="bfloat16"),
    "logsumexp_minus_min": dict(body="return torch.logsumexp(x, dim=-1, keepdim=True) - x.amin(-1, keepdim=True)",
                                inputs="[torch.randn(23, 333)]"),
    "argmin": dict(body="return x.argmin(dim=-1)", inputs="[torch.randn(23, 333)]"),
    "hf_rmsnorm_3d_bf16": dict(iargs=", d=96", init="self.w = nn.Parameter(torch.ones(d) + 0.1 * torch.randn(d))",
                               body="h = x.float()\nh = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)\n"
                                    "return self.w * h.to(x.dtype)",
                               inputs="[torch.randn(2, 7, 96, dtype=torch.bfloat16)]", initin="[96]", dtype="bfloat16"),
    "linear_3d": dict(iargs=", k=33, n=17", init="self.lin = nn.Linear(k, n)", body="return torch.relu(self.lin(x))",
                      inputs="[torch.randn(2, 5, 33)]", initin="[33, 17]", policy="hybrid"),
    "bias_per_channel": dict(init="self.b = nn.Parameter(torch.randn(6))", body="return torch.tanh(x + self.b.view(1, 6, 1, 1)) * 0.5",
                             inputs="[torch.randn(2, 6, 5, 7)]"),
    "scalar_parameter": dict(init="self.alpha = nn.Parameter(torch.tensor(0.7))", body="return x * self.alpha + 1.0",
                             inputs="[torch.randn(10, 20)]"),
    "two_outputs": dict(body="return torch.exp(x), torch.log1p(x.abs())", inputs="[torch.randn(10, 21)]"),
    "groupnorm_noaffine": dict(init="self.gn = nn.GroupNorm(3, 6, affine=False)", body="return self.gn(x)",
                               inputs="[torch.randn(2, 6, 5, 7)]"),
    "softmax_weighted_sum": dict(body="p = torch.softmax(x, -1)\nreturn (p * x).sum(-1)", inputs="[torch.randn(12, 50)]"),
    # reductions over dims apart from each other (kept dims between them): block by block
    "sum_apart": dict(body="return x.sum(dim=(0, 2))", inputs="[torch.randn(8, 4, 3)]"),
    "mean_apart_keepdim": dict(body="return x - x.mean(dim=(0, 2), keepdim=True)", inputs="[torch.randn(16, 64, 33)]"),
    "sum_three_blocks": dict(body="return x.sum(dim=(0, 2, 4))", inputs="[torch.randn(3, 4, 5, 6, 7)]"),
    "amax_apart": dict(body="return x.amax(dim=(1, 3))", inputs="[torch.randn(4, 8, 17, 19)]"),
    "logsumexp_apart": dict(body="return torch.logsumexp(x, dim=(0, 2))", inputs="[torch.randn(16, 64, 33)]"),
    "var_apart": dict(body="return x.var(dim=(0, 2))", inputs="[3 + torch.randn(16, 64, 33)]"),
    "std_apart_keepdim": dict(body="return x.std(dim=(0, 2), keepdim=True, correction=0)",
                              inputs="[torch.randn(16, 64, 33)]"),
    # the index into the flattened tensor: every dim one reduced block (a row split across blocks)
    "argmax_flattened": dict(body="return torch.argmax(x)", inputs="[torch.randn(16, 64, 33)]"),
    "argmin_flattened_keepdim": dict(body="return torch.argmin(x, keepdim=True)", inputs="[torch.randn(5, 3001)]"),
    "batch_norm_batch_stats": dict(body="return F.batch_norm(x, None, None, training=True)",
                                   inputs="[torch.randn(4, 8, 17, 19)]"),
    # var / std / prod over every element: one long row, split across blocks where it is long
    "std_all": dict(body="return torch.std(x)", inputs="[torch.randn(5, 37, 129) * 2.0 + 3.0]"),
    "var_all_biased_keepdim": dict(body="return torch.var(x, unbiased=False, dim=None, keepdim=True)",
                                   inputs="[torch.randn(7, 301) + 1.0]"),
    "prod_all": dict(body="return torch.prod(x)", inputs="[1.0 + 0.01 * torch.randn(4, 1251)]"),
    # binary cross-entropy (probabilities and logits), GLU
    "bce_mean": dict(fargs="x, y", body="return F.binary_cross_entropy(torch.sigmoid(x), torch.sigmoid(y))",
                     inputs="[torch.randn(33, 257) * 3.0, torch.randn(33, 257)]"),
    "bce_none_bf16": dict(fargs="x, y", dtype="bfloat16",
                          body="return F.binary_cross_entropy(torch.sigmoid(x), torch.sigmoid(y), reduction='none')",
                          inputs="[torch.randn(17, 130, dtype=torch.bfloat16), torch.rand(17, 130, dtype=torch.bfloat16)]"),
    # inputs clamped to exactly 0 and 1: log gives -inf, clamped at -100 as PyTorch does
    "bce_saturated_sum": dict(fargs="x, y", body="return F.binary_cross_entropy(x.clamp(0, 1), torch.sigmoid(y), "
                                                 "reduction='sum')",
                              inputs="[torch.randn(4016), torch.randn(4016)]"),
    "bce_logits_pos_weight": dict(fargs="x, y", init="self.pw = nn.Parameter(torch.rand(64) * 3.0)",
                                  body="return F.binary_cross_entropy_with_logits(x, torch.sigmoid(y), pos_weight=self.pw, "
                                       "reduction='none')",
                                  inputs="[torch.randn(40, 64) * 4.0, torch.rand(40, 64)]"),
    "bce_logits_weighted": dict(fargs="x, y, w",
                                body="return F.binary_cross_entropy_with_logits(x, torch.sigmoid(y), weight=w, reduction='sum')",
                                inputs="[torch.randn(40, 65), torch.rand(40, 65), torch.rand(40, 65)]"),
    "soft_margin": dict(fargs="x, y", body="return F.soft_margin_loss(x, torch.sign(y))",
                        inputs="[torch.randn(33, 257) * 4.0, torch.randn(33, 257)]"),
    "glu_last": dict(body="return F.glu(x, dim=-1)", inputs="[torch.randn(37, 258)]"),
    "glu_mid": dict(body="return F.glu(x, dim=1)", inputs="[torch.randn(4, 66, 33)]"),
    # rows of one element: the reduction is the element (a row kernel cannot tell a one-element
    # row's values from its results); NaN and infinities as PyTorch gives them
    "softmax_rows_of_one": dict(body="y = torch.where(x > 2.0, torch.inf, x)\n"
                                     "return torch.softmax(y, dim=-1) + torch.log_softmax(x, dim=-1)",
                                inputs="[torch.randn(4096, 1)]"),
    "layernorm_of_one": dict(body="return F.layer_norm(x, (1,))", inputs="[torch.randn(300, 1)]"),
    "reductions_over_one_keepdim": dict(
        body="k = dict(dim=1, keepdim=True)\n"
             "return (x.sum(**k) + x.amax(**k) - x.mean(**k) * x.prod(**k), x.argmax(**k), torch.logsumexp(x, **k), "
             "x.var(unbiased=False, **k), x.std(**k))",
        inputs="[torch.randn(37, 1, 19)]"),
    "reductions_over_one": dict(body="return x.sum(1) + x.amax(1) - x.mean(1), x.argmax(1), x.var(1, unbiased=False)",
                                inputs="[torch.randn(37, 1, 19)]"),
}
REFUSED = {
    "matmul_int_strict": (dict(fargs="x, y", body="return x @ y",
                               inputs="[torch.randint(0, 3, (8, 4)), torch.randint(0, 3, (4, 5))]"),
                          "float32, bfloat16 or float16"),
    "median": (dict(body="return torch.median(x, dim=1).values", inputs="[torch.randn(8, 4, 3)]"), "median"),
    "identity": (dict(body="return x", inputs="[torch.randn(8, 8)]"), "nothing is left"),
    "gemm_only": (dict(init="self.w = nn.Parameter(torch.randn(8, 4))", body="return x @ self.w",
                       inputs="[torch.randn(8, 8)]", policy="hybrid"), "nothing is left"),
}


def write(tmp: Path, name: str, case: dict) -> Path:
    fields = dict(iargs="", init="", fargs="x", inputs="", initin="[]", dtype="float32", policy="strict", extra="")
    fields.update(case)
    fields["init"] = "".join(f"        {line}\n" for line in fields["init"].splitlines())
    fields["body"] = "\n".join(f"        {line}" for line in fields["body"].splitlines())
    path = tmp / f"{name}.py"
    path.write_text(TEMPLATE.format(**fields))
    return path


def translate_cases(tmp: Path, cases: dict) -> dict:
    """{name: (task path, Translation)} for task fields (or (fields, expectation) pairs) by name."""
    out = {}
    for name, case in cases.items():
        path = write(tmp, name, case[0] if isinstance(case, tuple) else case)
        out[name] = (path, translate(load_task(path)))
    return out


def untranslated(translations: dict) -> dict:
    """{name: notes} of the cases the rules did not translate."""
    return {name: t.notes for name, (_, t) in translations.items() if not t.proposals}


@pytest.fixture(scope="module")
def extra(tmp_path_factory):  # noqa: ANN001, ANN201 - {name: (task path, Translation)}
    tmp = tmp_path_factory.mktemp("extra_tasks")
    return translate_cases(tmp, CASES)


def test_every_extra_task_translates(extra) -> None:  # noqa: ANN001
    assert not untranslated(extra)


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_extra_tasks_match_reference_on_cpu_emulator(extra, tmp_path) -> None:  # noqa: ANN001
    specs, names = [], []
    for name, (task, t) in extra.items():
        proposal = t.proposals[0]
        cand = tmp_path / f"{name}.py"
        cand.write_text(proposal.source)
        params = dict(proposal.default_params, BLOCK=min(proposal.default_params["BLOCK"], 128))
        specs.append((task, cand, params, 3_000_000))
        names.append(name)
    reports = cuda_emu.run_candidates(specs, workers=max(2, os.cpu_count() or 2))
    bad = {n: r["reason"] for n, r in zip(names, reports) if not r["ok"]}
    assert not bad


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_with_a_reason(name: str, tmp_path) -> None:  # noqa: ANN001
    case, words = REFUSED[name]
    t = translate(load_task(write(tmp_path, name, case)))
    assert not t.proposals and t.notes
    assert words in t.notes[-1] and "not translated" in t.notes[-1]
