"""Max and average pooling over 1, 2 and 3 spatial dims (KernelBench level 1, tasks 41-46, and
the options around them, ``return_indices`` included): each case must translate to a ``pool``
region (with pointwise regions around it where the forward has elementwise ops), every variant
must match PyTorch on the CPU emulator at every shape the task lists (sizes are read at run
time, the window is compiled in), and the sources must compile with nvcc for sm_90."""

from __future__ import annotations

import shutil

import pytest

import cuda_emu
from autotuner.tasks import load_task
from evolution.proposers.rules import translate
from test_extra_tasks import translate_cases, untranslated, write
from variant_checks import emulate_every_variant, emulate_variants, nvcc_errors

# Two visible shapes: the kernels must take every size from the tensors, none from the trace.
_SHAPES = 'SHAPES = [{"name": "a", "L": %d}, {"name": "b", "L": %d}]'


def _pool(module: str, inputs: str, extra: str = "", dtype: str = "float32", body: str = "return self.p(x)") -> dict:
    return dict(init=f"self.p = nn.{module}", body=body, inputs=inputs, extra=extra, dtype=dtype)


# name -> (task fields, the region kinds it plans to)
CASES = {
    # KernelBench level 1, tasks 41-46 (small shapes, odd sizes)
    "maxpool1d_kb41": (_pool("MaxPool1d(kernel_size=4, stride=2, padding=1, dilation=3)", "[torch.randn(2, 3, L)]",
                             "L = 37\n" + _SHAPES % (37, 40)), ["pool"]),
    "maxpool2d_kb42": (_pool("MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=2)", "[torch.randn(2, 3, L, 19)]",
                             "L = 21\n" + _SHAPES % (21, 26)), ["pool"]),
    "maxpool3d_kb43": (_pool("MaxPool3d(kernel_size=3, stride=2, padding=1, dilation=3, return_indices=False, "
                             "ceil_mode=False)", "[torch.randn(2, 3, 17, L, 21)]", "L = 19\n" + _SHAPES % (19, 24)),
                       ["pool"]),
    "avgpool1d_kb44": (_pool("AvgPool1d(kernel_size=8, stride=1, padding=4)", "[torch.randn(2, 3, L)]",
                             "L = 37\n" + _SHAPES % (37, 30)), ["pool"]),
    "avgpool2d_kb45": (_pool("AvgPool2d(kernel_size=3, stride=None, padding=0)", "[torch.randn(2, 3, 23, L)]",
                             "L = 19\n" + _SHAPES % (19, 40)), ["pool"]),
    "avgpool3d_kb46": (_pool("AvgPool3d(kernel_size=3, stride=2, padding=1)", "[torch.randn(2, 3, L, 19, 21)]",
                             "L = 17\n" + _SHAPES % (17, 20)), ["pool"]),
    # ceil_mode: a last window that starts in the right padding is dropped (L = 35 here)
    "maxpool1d_ceil_drop": (_pool("MaxPool1d(3, stride=3, padding=1, ceil_mode=True)", "[torch.randn(2, 3, L)]",
                                  "L = 35\n" + _SHAPES % (35, 34)), ["pool"]),
    "maxpool3d_dilation_ceil": (_pool("MaxPool3d(2, stride=2, padding=1, dilation=2, ceil_mode=True)",
                                      "[torch.randn(2, 3, 17, 18, 19)]"), ["pool"]),
    "maxpool2d_dilation_rect": (_pool("MaxPool2d((3, 2), stride=(1, 3), padding=(1, 0), dilation=(2, 3))",
                                      "[torch.randn(2, 3, 20, 33)]"), ["pool"]),
    "avgpool2d_ceil": (_pool("AvgPool2d(3, stride=2, padding=1, ceil_mode=True)", "[torch.randn(2, 3, 20, 17)]"),
                       ["pool"]),
    "avgpool2d_ceil_nopad": (_pool("AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)",
                                   "[torch.randn(2, 3, 20, 19)]"), ["pool"]),
    "avgpool3d_nopad": (_pool("AvgPool3d(3, stride=2, padding=1, count_include_pad=False)",
                              "[torch.randn(2, 3, 17, 18, 19)]"), ["pool"]),
    "avgpool2d_divisor": (_pool("AvgPool2d(3, stride=2, padding=1, divisor_override=5)", "[torch.randn(2, 3, 21, 18)]"),
                          ["pool"]),
    "avgpool1d_ceil_nopad": (_pool("AvgPool1d(4, stride=3, padding=2, ceil_mode=True, count_include_pad=False)",
                                   "[torch.randn(2, 3, 31)]"), ["pool"]),
    # dtypes
    "maxpool2d_bf16": (_pool("MaxPool2d(3, stride=2, padding=1, dilation=2)",
                             "[torch.randn(2, 3, 21, 19, dtype=torch.bfloat16)]", dtype="bfloat16"), ["pool"]),
    "avgpool2d_bf16": (_pool("AvgPool2d(3, stride=2, padding=1)", "[torch.randn(2, 3, 21, 18, dtype=torch.bfloat16)]",
                             dtype="bfloat16"), ["pool"]),
    "maxpool3d_bf16": (_pool("MaxPool3d(3, stride=2, padding=1)", "[torch.randn(2, 3, 17, 18, 19, dtype=torch.bfloat16)]",
                             dtype="bfloat16"), ["pool"]),
    "avgpool1d_f16": (_pool("AvgPool1d(5, stride=2, padding=2)", "[torch.randn(2, 3, 39, dtype=torch.float16)]",
                            dtype="float16"), ["pool"]),
    # NaN in a window gives NaN; elementwise ops before / after the pool are their own regions
    "maxpool2d_nan": (_pool("MaxPool2d(3, stride=2, padding=1)", "[torch.randn(2, 3, 21, 19)]",
                            body="return self.p(torch.where(x > 1.5, torch.nan, x))"), ["pointwise", "pool"]),
    "maxpool1d_nan": (_pool("MaxPool1d(4, stride=2, padding=1, dilation=3)", "[torch.randn(2, 3, 37)]",
                            body="return self.p(torch.where(x > 1.0, torch.nan, x))"), ["pointwise", "pool"]),
    "maxpool2d_relu": (_pool("MaxPool2d(2)", "[torch.randn(2, 3, 21, 19)]", body="return torch.relu(self.p(x)) * 2.0"),
                       ["pool", "pointwise"]),
    # functional forms and an unbatched input
    "functional_max2d_int": (dict(body="return F.max_pool2d(x, 3)", inputs="[torch.randn(2, 3, 22, 19)]"), ["pool"]),
    "functional_avg1d": (dict(body="return F.avg_pool1d(x, 3, 2, 1)", inputs="[torch.randn(2, 3, 25)]"), ["pool"]),
    "unbatched_avg2d": (_pool("AvgPool2d(3, stride=2, padding=1)", "[torch.randn(3, 21, 19)]"), ["pool"]),
    "unbatched_max1d": (_pool("MaxPool1d(3, stride=2, padding=1)", "[torch.randn(3, 29)]"), ["pool"]),
}
# Random inputs rarely tie; these windows do (rounded values, and -inf cells): PyTorch keeps the
# first max in scan order, the first cell of an all -inf window, the last NaN.
_TIES = "return self.p(torch.where(x > 1.8, -torch.inf, torch.where(x < -1.8, torch.nan, torch.round(x))))"
CASES.update({
    # return_indices: the kernel also writes the int64 flattened spatial index of each max
    "maxpool2d_indices": (_pool("MaxPool2d(3, stride=2, padding=1, dilation=2, return_indices=True)",
                                "[torch.randn(2, 3, 21, 19)]", body="v, i = self.p(x)\nreturn v, i"), ["pool"]),
    "maxpool3d_indices_ties": (_pool("MaxPool3d(3, stride=2, padding=1, return_indices=True)",
                                     "[torch.randn(2, 3, 11, 12, 13)]",
                                     body=_TIES.replace("return ", "v, i = ") + "\nreturn v, i"),
                               ["pointwise", "pool"]),
    "maxpool1d_indices_only": (_pool("MaxPool1d(4, stride=2, padding=1, dilation=3, return_indices=True)",
                                     "[torch.randn(2, 3, L)]", "L = 37\n" + _SHAPES % (37, 40),
                                     body="return self.p(torch.round(x * 2.0))[1]"), ["pointwise", "pool"]),
    "maxpool2d_ties_ceil": (_pool("MaxPool2d(2, stride=2, padding=1, ceil_mode=True, return_indices=True)",
                                  "[torch.randn(2, 3, 15, 16)]", body=_TIES.replace("return ", "v, i = ") +
                                  "\nreturn v, i"), ["pointwise", "pool"]),
})
REFUSED = {
    "int_input": (dict(body="return F.max_pool2d(x, 2)", inputs="[torch.randint(0, 9, (2, 3, 8, 8))]"),
                  "the rules pool float32, bfloat16 and float16 tensors"),
    "pool_of_reshape": (dict(body="return F.max_pool2d(x.view(2, 3, 4, -1), 2)", inputs="[torch.randn(2, 3, 32)]"),
                        "pool before reshaping"),
}


@pytest.fixture(scope="module")
def pooling(tmp_path_factory):  # noqa: ANN001, ANN201 - {name: (task path, Translation)}
    tmp = tmp_path_factory.mktemp("pooling")
    return translate_cases(tmp, CASES)


def test_every_pooling_task_translates(pooling) -> None:  # noqa: ANN001
    assert not untranslated(pooling)


@pytest.mark.parametrize("name", sorted(CASES))
def test_pooling_plans(name: str, pooling) -> None:  # noqa: ANN001
    """One pool region, its elementwise neighbours in pointwise regions."""
    _, t = pooling[name]
    assert [r.kind for r in t.plan.regions] == CASES[name][1], t.plan.describe()


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_pooling_refused_with_a_reason(name: str, tmp_path) -> None:  # noqa: ANN001
    case, words = REFUSED[name]
    t = translate(load_task(write(tmp_path, name, case)))
    assert not t.proposals and words in t.notes[-1], t.notes


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_pooling_matches_reference_on_cpu_emulator(pooling, tmp_path) -> None:  # noqa: ANN001
    """Every structural variant of every case, at every shape the task lists."""
    bad, reports = emulate_every_variant(pooling, tmp_path)
    assert not bad
    assert all(len(r["shapes"]) >= 1 for r in reports)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
def test_pooling_sources_compile_for_sm90(pooling) -> None:  # noqa: ANN001
    """The pool template (each rank, dtype and option here) with the other regions, as nvcc sees them."""
    assert not nvcc_errors(pooling)


_STRIP_CASES = ("maxpool2d_kb42", "maxpool3d_kb43", "avgpool2d_ceil_nopad", "avgpool3d_nopad", "maxpool2d_dilation_rect",
                "avgpool2d_divisor", "maxpool2d_nan", "maxpool2d_bf16")


def test_strip_variant_is_offered_first_where_it_applies(pooling) -> None:  # noqa: ANN001
    """Two or more spatial dims and no indices: the strip form leads; otherwise the window form alone."""
    for name, (_, t) in pooling.items():
        variants = [p.variant for p in t.proposals]
        strip = any("strip" in v for v in variants)
        pool = next(r for r in t.plan.regions if r.kind == "pool").nodes
        expected = len(pool[0].args["kernel"]) >= 2 and not any(n.op == "pool_indices" for n in pool)
        assert strip == expected, (name, variants)
        if strip:
            assert "strip" in variants[0], (name, variants)


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
@pytest.mark.parametrize("rows", [1, 3, 8])
def test_strips_of_any_height_match_reference_on_cpu_emulator(rows: int, pooling, tmp_path) -> None:  # noqa: ANN001
    """ROWS is the tuner's: strips that overhang the output (3 into odd heights), one row, eight."""
    chosen = {k: pooling[k] for k in _STRIP_CASES}
    bad, reports, names = emulate_variants(chosen, tmp_path, pick=lambda p: "strip" in p.variant,
                                           params=lambda p: {**p.default_params, "BLOCK": 64, "ROWS": rows})
    assert len(names) == len(_STRIP_CASES)
    assert not bad, bad
