"""Tracing and planning of the built-in suite: each task becomes the regions we expect."""

from __future__ import annotations

import pytest

from autotuner.tasks import load_task
from evolution.proposers.rules.ir import AttrRef, Unsupported
from evolution.proposers.rules.kern_row import schedule
from evolution.proposers.rules.lower import lower
from evolution.proposers.rules.plan import make_plan
from evolution.proposers.rules.trace import trace_task

from conftest import PATHS, rel, write_task

_POINTWISE = ["pointwise"]
EXPECTED = {
    **{f"activation/{n}": _POINTWISE for n in
       ("elu_wide", "gelu", "hardswish", "leaky_relu", "relu", "sigmoid", "silu", "softplus", "tanh")},
    **{f"conv/{n}": ["conv", "pointwise"] for n in ("conv2d_add_sigmoid", "conv2d_bias_relu", "conv2d_scale_shift_relu")},
    **{f"gemm/{n}": ["mm", "pointwise"] for n in
       ("gemm_bias_gelu", "gemm_bias_relu", "gemm_bias_silu_bf16", "gemm_scale_residual")},
    "decode/attention_decode_bf16": ["attention"],
    **{f"attention/{n}": ["flash"] for n in ("sdpa_bf16", "sdpa_causal_bf16", "attention_causal_fp32")},
    "decode/attention_decode_gqa_bf16": None,  # masked grouped heads: no rule; a seed in kernels/seeds
    "decode/attention_o_residual_bf16": None,  # the same attention, then a projection: a seed only
    "decode/residual_rmsnorm_bf16": ["row"],
    "decode/rope_bf16": ["pointwise", "pointwise"],
    "decode/silu_mul_bf16": _POINTWISE,
    # decode matrix-vector tasks (issue 13): the rules' GEMM kernel (strict policy), the residual
    # after it in a pointwise region; hand-written seeds in kernels/seeds.
    **{f"decode/{n}": ["gemm"] for n in ("gemv_o_bf16", "gemv_gate_up_bf16", "gemv_down_bf16", "gemv_lm_head_bf16")},
    **{f"decode/{n}": ["gemm", "pointwise"] for n in ("o_residual_bf16", "down_residual_bf16")},
    # A string: the Unsupported message expected.
    **{f"decode/{n}": "shape-dependent control flow" for n in ("gemv_qkv_bf16", "qkv_rope_append_bf16",
                                                               "lm_head_argmax_bf16")},
    "decode/gate_up_silu_bf16": "no rule for aten.split",
    "loss/cross_entropy": ["row", "reduce_all"],
    "loss/cosine_similarity_loss": ["row", "reduce_all"],
    "loss/hinge_loss": ["reduce_all"],
    "loss/kl_div": ["reduce_all"],
    "loss/triplet_margin_loss": ["row", "reduce_all"],
    "loss/huber_loss": ["reduce_all"],
    "loss/mse_loss": ["reduce_all"],
    **{f"normalization/{n}": ["row"] for n in ("groupnorm", "layernorm", "layernorm_3d", "rmsnorm",
                                                     "rmsnorm_bf16")},
    **{f"reduction/{n}": ["row"] for n in ("argmax_dim", "logsumexp_dim", "max_dim", "mean_dim", "sum_dim",
                                                "sum_long_rows")},
    **{f"reduction/{n}": ["row"] for n in ("sum_dim2_3d", "max_dim2_3d", "argmax_dim2_3d")},
    **{f"reduction/{n}": ["col"] for n in ("sum_dim1_3d", "max_dim1_3d", "argmax_dim1_3d", "mean_dim0")},
    "normalization/rmsnorm_dim1": ["col"],
    "softmax/softmax_dim1": ["col"],
    **{f"pooling/{n}": ["pool"] for n in ("maxpool2d", "avgpool3d")},
    **{f"scan/{n}": ["scan"] for n in ("cumsum", "cumprod", "cumsum_dim0", "cumsum_exclusive", "cumsum_reverse")},
    **{f"softmax/{n}": ["row"] for n in ("softmax", "log_softmax", "softmax_bf16", "softmax_wide")},
}


def _plan(task):  # noqa: ANN001, ANN202
    return make_plan(lower(trace_task(task), task.policy))


def test_expectations_cover_the_suite() -> None:
    assert sorted(EXPECTED) == sorted(rel(p) for p in PATHS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_suite_task_plans_to_expected_regions(name: str, suite_tasks) -> None:  # noqa: ANN001
    if EXPECTED[name] is None or isinstance(EXPECTED[name], str):
        with pytest.raises(Unsupported, match=EXPECTED[name] or "aten.arange"):
            _plan(suite_tasks[name])
        return
    plan = _plan(suite_tasks[name])
    assert [r.kind for r in plan.regions] == EXPECTED[name], plan.describe()
    for region in plan.regions:
        if region.kind in ("pointwise", "row", "reduce_all"):
            assert region.anchor is not None and region.outputs


@pytest.mark.parametrize("name, attr, arg, path", [
    ("activation/leaky_relu", "leaky_relu", "negative_slope", "negative_slope"),
    ("loss/huber_loss", "huber_loss", "delta", "delta"),
    ("normalization/rmsnorm", "add", "other", "eps"),
    ("normalization/layernorm", "native_layer_norm", "eps", "norm.eps"),
    ("gemm/gemm_scale_residual", "mul", "other", "scale"),
])
def test_scalars_read_from_the_model_stay_attributes(name, attr, arg, path, suite_tasks) -> None:  # noqa: ANN001
    graph = trace_task(suite_tasks[name])
    node = next(n for n in graph.nodes if n.op == attr)
    assert node.attrs[arg] == AttrRef(path)
    assert AttrRef(path).python() == f"self.{path}"


def test_trace_records_the_task_line(suite_tasks) -> None:  # noqa: ANN001
    graph = trace_task(suite_tasks["softmax/softmax"])
    node = next(n for n in graph.nodes if n.op == "_softmax")
    line = suite_tasks["softmax/softmax"].source.splitlines()[node.line - 1]
    assert "softmax" in line


def test_groupnorm_group_count_follows_the_module(suite_tasks) -> None:  # noqa: ANN001
    plan = _plan(suite_tasks["normalization/groupnorm"])
    rowview = next(n for n in plan.regions[0].nodes if n.op == "rowview")
    assert rowview.args["groups"].ref == AttrRef("norm.num_groups")
    kinds = {lf.node.name: lf.kind for lf in plan.regions[0].leaves.values()}
    assert kinds == {"norm.weight": "gchan", "norm.bias": "gchan", "": "full"} or kinds["norm.weight"] == "gchan"


def test_softmax_fuses_max_and_sum_online_or_not(suite_tasks) -> None:  # noqa: ANN001
    region = _plan(suite_tasks["softmax/softmax"]).regions[0]
    online, two_pass = schedule(region, True, True), schedule(region, False, False)
    assert online.phases == 1 and online.fused
    assert two_pass.phases == 2 and not two_pass.fused
    assert [o.op for o in online.late] == ["div"]


def test_layernorm_variance_in_one_or_two_passes(suite_tasks) -> None:  # noqa: ANN001
    region = _plan(suite_tasks["normalization/layernorm"]).regions[0]
    assert schedule(region, True, True).phases == 1
    assert schedule(region, True, False).phases == 2


def test_residual_rmsnorm_writes_the_sum_in_the_first_pass(suite_tasks) -> None:  # noqa: ANN001
    region = _plan(suite_tasks["decode/residual_rmsnorm_bf16"]).regions[0]
    sched = schedule(region, True, True)
    assert [o.op for o in sched.early] == ["add"] and [o.op for o in sched.late] == ["mul"]
    kinds = sorted(lf.kind for lf in region.leaves.values())
    assert kinds == ["col", "full", "full"]


def test_broadcast_operands_are_classified(suite_tasks) -> None:  # noqa: ANN001
    conv = _plan(suite_tasks["conv/conv2d_scale_shift_relu"]).regions[1]
    assert {lf.node.name: lf.kind for lf in conv.leaves.values() if lf.node.op == "param"} == \
        {"scale": "general", "shift": "general"}
    ce = _plan(suite_tasks["loss/cross_entropy"]).regions[0]
    assert {lf.node.name: lf.kind for lf in ce.leaves.values()} == {"logits": "full", "targets": "row"}
    rope = _plan(suite_tasks["decode/rope_bf16"]).regions[0]
    assert {lf.node.name: (lf.kind, lf.rotate) for lf in rope.leaves.values()} == \
        {"q": ("full", True), "cos": ("general", False), "sin": ("general", False)}


@pytest.mark.parametrize("forward, op", [
    ("        return torch.fft.fft(x).real", "fft"),
    ("        return torch.sort(x, dim=-1).values", "sort"),
    ("        return torch.median(x.view(2, 4, 16), dim=1).values", "median"),
])
def test_untranslatable_ops_name_op_and_line(tmp_path, forward: str, op: str) -> None:  # noqa: ANN001
    task = load_task(write_task(tmp_path, forward))
    with pytest.raises(Unsupported) as info:
        _plan(task)
    assert op in str(info.value)
    assert "line 11" in str(info.value), str(info.value)
