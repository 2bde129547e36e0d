"""Reductions, norms and softmax that read their input through a transposed, permuted,
step-sliced or selected view (issue 12). A reduction straight over a permute whose kept dims
keep their order becomes one over the permute's input (``lower``: no copy); every other strided
view is copied into a contiguous tensor by a ``copy`` region first. Each case must translate,
plan to the expected regions, and every variant must match PyTorch on the CPU emulator."""

from __future__ import annotations

import shutil

import pytest

import cuda_emu
from autotuner.tasks import load_task
from evolution.proposers.rules import translate
from test_extra_tasks import translate_cases, untranslated, write
from variant_checks import emulate_every_variant, nvcc_errors

# name -> (task fields, the region kinds it plans to)
CASES = {
    # the three
    "transpose_sum": (dict(body="return x.transpose(1, 2).sum(dim=-1)", inputs="[torch.randn(16, 256, 64)]"),
                      ["col"]),
    "permute_softmax": (dict(body="return torch.softmax(x.permute(0, 2, 1), dim=-1)",
                             inputs="[torch.randn(8, 128, 96)]"), ["copy", "row"]),
    "strided_sum": (dict(body="return x[:, ::2].sum(dim=1)", inputs="[torch.randn(16, 256, 64)]"), ["copy", "col"]),
    # permutes folded into the reduction (kept dims in order)
    "permute4_sum_two": (dict(body="return x.permute(0, 3, 1, 2).sum(dim=(2, 3))", inputs="[torch.randn(3, 5, 7, 9)]"),
                         ["col"]),
    "permute4_mean_apart": (dict(body="return x.permute(0, 2, 1, 3).mean(dim=(1, 3))",
                                 inputs="[torch.randn(4, 6, 5, 7)]"), ["row"]),
    "t_mean_dim0": (dict(body="return x.t().mean(dim=0)", inputs="[torch.randn(37, 129)]"), ["row"]),
    "transpose_amax_keepdim": (dict(body="return x.transpose(0, 1).amax(dim=0, keepdim=True)",
                                    inputs="[torch.randn(33, 65)]"), ["row"]),
    "transpose_argmax": (dict(body="return x.transpose(1, 2).argmax(dim=1)", inputs="[torch.randn(5, 33, 17)]"),
                         ["row"]),
    "transpose_max_tuple": (dict(body="v, i = x.transpose(0, 1).max(dim=1)\nreturn v, i",
                                 inputs="[torch.randn(33, 20)]"), ["col"]),
    "transpose_var": (dict(body="return x.transpose(0, 1).var(dim=1)", inputs="[torch.randn(37, 11) + 3.0]"), ["col"]),
    "permute_sum_all": (dict(body="return x.permute(1, 0).sum()", inputs="[torch.randn(301, 33)]"), ["reduce_all"]),
    "two_transposes_sum": (dict(body="return x.transpose(0, 2).transpose(1, 2).sum(dim=0)",
                                inputs="[torch.randn(3, 5, 7)]"), ["row"]),
    # copied first
    "permute_kept_reordered": (dict(body="return x.permute(2, 0, 1).sum(dim=1)", inputs="[torch.randn(6, 7, 9)]"),
                               ["copy", "col"]),
    "log_softmax_permuted": (dict(body="return F.log_softmax(x.permute(2, 0, 1), dim=0)",
                                  inputs="[torch.randn(6, 7, 33)]"), ["copy", "col"]),
    "softmax_t_bf16": (dict(body="return torch.softmax(x.t(), dim=-1)", inputs="[torch.randn(17, 40, dtype=torch.bfloat16)]",
                            dtype="bfloat16"), ["copy", "row"]),
    "layernorm_permuted": (dict(body="return F.layer_norm(x.permute(0, 2, 1), (x.shape[1],))",
                                inputs="[torch.randn(3, 20, 11)]"), ["copy", "row"]),
    "argmax_flattened_t": (dict(body="return torch.argmax(x.t())", inputs="[torch.randn(13, 7)]"), ["copy", "row"]),
    "slice_offset_step": (dict(body="return x[:, 3::3].sum(dim=-1)", inputs="[torch.randn(11, 100)]"), ["copy", "row"]),
    "slices_odd_amax": (dict(body="return x[1:, ::2, 1:-1].amax(dim=1)", inputs="[torch.randn(9, 37, 13)]"),
                        ["copy", "col"]),
    "select_sum": (dict(body="return x[:, 2].sum(dim=-1)", inputs="[torch.randn(5, 4, 33)]"), ["copy", "row"]),
    "transpose_add": (dict(body="return x + x.t()", inputs="[torch.randn(8, 8)]"), ["copy", "pointwise"]),
    "pointwise_then_t_softmax": (dict(body="return torch.softmax((x * 2.0 + 1.0).t(), dim=-1)",
                                      inputs="[torch.randn(19, 23)]"), ["pointwise", "copy", "row"]),
    "sum_then_t_softmax": (dict(body="return torch.softmax(x.sum(1).t(), dim=-1)", inputs="[torch.randn(4, 9, 33)]"),
                           ["col", "copy", "row"]),
    "shared_transpose": (dict(body="y = x.t()\nreturn torch.softmax(y, -1), y.sum(-1)", inputs="[torch.randn(24, 10)]"),
                         None),
    "returns_permute": (dict(body="return x.permute(2, 0, 1)", inputs="[torch.randn(3, 5, 7)]"), ["copy"]),
}
REFUSED = {
    # a bound computed from the size would be baked in: refused when it moves between shapes
    "slice_bound_moves": (dict(body="return x[:, : x.shape[1] // 2].sum(dim=-1)", inputs="[torch.randn(N, D)]",
                               extra='N, D = 6, 40\nSHAPES = [{"name": "a", "N": 6, "D": 40}, '
                                     '{"name": "b", "N": 5, "D": 22}]'), "changes with the input shape"),
}


@pytest.fixture(scope="module")
def strided(tmp_path_factory):  # noqa: ANN001, ANN201 - {name: (task path, Translation)}
    tmp = tmp_path_factory.mktemp("strided_views")
    return translate_cases(tmp, CASES)


def test_every_strided_view_task_translates(strided) -> None:  # noqa: ANN001
    assert not untranslated(strided)


@pytest.mark.parametrize("name", sorted(n for n, (_, kinds) in CASES.items() if kinds is not None))
def test_strided_view_plans(name: str, strided) -> None:  # noqa: ANN001
    """A folded permute costs no copy; other views one copy region ahead of the reader."""
    _, t = strided[name]
    assert [r.kind for r in t.plan.regions] == CASES[name][1], t.plan.describe()


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_strided_view_refused_with_a_reason(name: str, tmp_path) -> None:  # noqa: ANN001
    case, words = REFUSED[name]
    t = translate(load_task(write(tmp_path, name, case)))
    assert not t.proposals and words in t.notes[-1], t.notes


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_strided_views_match_reference_on_cpu_emulator(strided, tmp_path) -> None:  # noqa: ANN001
    """Every structural variant of every case."""
    bad, _ = emulate_every_variant(strided, tmp_path)
    assert not bad


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
def test_strided_view_sources_compile_for_sm90(strided) -> None:  # noqa: ANN001
    """The copy template (every dtype and rank here) with the other regions, as nvcc sees them."""
    assert not nvcc_errors(strided)
