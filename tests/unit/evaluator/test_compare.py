"""Tolerances per dtype: honest fp32 passes, fp16/TF32 rounding and zeros do not."""

import torch

from autotuner.evaluator.compare import compare_outputs, outputs_identical, tolerances_for

FP32 = tolerances_for("float32")


def test_honest_fp32_rounding_passes():
    ref = torch.randn(512, 512)
    assert compare_outputs(ref * (1 + 1e-7 * torch.randn_like(ref)), ref, FP32).ok


def test_fp16_round_trip_fails_an_fp32_task():
    ref = torch.randn(512, 512)
    result = compare_outputs(ref.half().float(), ref, FP32)
    assert not result.ok


def test_tf32_like_error_fails_on_relative_l2():
    ref = torch.randn(512, 512) * 1000
    noisy = ref * (1 + 3e-4 * torch.randn_like(ref))
    assert not compare_outputs(noisy, ref, {"rtol": 1e-2, "atol": 1e-2, "rel_l2": 5e-5}).ok


def test_zeros_fail_even_when_outputs_are_tiny():
    ref = torch.randn(1000) * 1e-6
    result = compare_outputs(torch.zeros_like(ref), ref, FP32)
    assert not result.ok


def test_nan_never_passes_and_is_named_as_poison():
    ref = torch.randn(100)
    out = ref.clone()
    out[-1] = float("nan")
    result = compare_outputs(out, ref, tolerances_for("bfloat16"))
    assert not result.ok and "poison" in result.reason


def test_a_dropped_nan_fails_and_a_kept_one_passes():
    """relu(NaN) is NaN in PyTorch: a kernel that returns 0 there (fmaxf) computes another op."""
    ref = torch.randn(100)
    ref[[3, 50]] = float("nan")
    dropped = torch.nan_to_num(ref, nan=0.0)
    result = compare_outputs(dropped, ref, FP32)
    assert not result.ok and "2 of 100 elements are finite where the reference is NaN" in result.reason
    assert compare_outputs(ref.clone(), ref, FP32).ok


def test_shape_dtype_and_count_mismatches():
    ref = torch.randn(4, 4)
    assert "shape" in compare_outputs(torch.randn(16), ref, FP32).reason
    assert "dtype" in compare_outputs(ref.double(), ref, FP32).reason
    assert "outputs" in compare_outputs((ref, ref), ref, FP32).reason


def test_integer_outputs_compare_exactly_and_tuples_name_the_output():
    idx = torch.arange(10)
    assert compare_outputs(idx, idx, FP32).ok
    wrong = idx.clone()
    wrong[3] = 0
    assert not compare_outputs(wrong, idx, FP32).ok
    a = torch.randn(8)
    assert "output 1" in compare_outputs((a, a + 1), (a, a), FP32).reason


def test_bf16_one_ulp_differences_pass():
    ref = torch.randn(4096).bfloat16()
    ulp = (ref.float() * (1 + 2**-8)).bfloat16()
    assert compare_outputs(ulp, ref, tolerances_for("bfloat16")).ok


def test_identical_is_bitwise():
    a = torch.randn(10)
    assert outputs_identical(a, a.clone())
    b = a.clone()
    b[0] = torch.nextafter(b[0], torch.tensor(10.0))
    assert not outputs_identical(a, b)


def test_scalar_outputs_and_inputs_compare_bytewise():
    from autotuner.evaluator.inputs import inputs_unchanged

    loss = torch.tensor(1.5)
    assert outputs_identical(loss, loss.clone())
    assert not outputs_identical(loss, torch.tensor(1.25))
    assert inputs_unchanged([loss], [loss.clone()]) == []
    assert inputs_unchanged([loss], [torch.tensor(2.0)]) == [0]


def _cases() -> list[tuple[torch.Tensor, torch.Tensor, dict[str, float]]]:
    """Outputs near and far from their references: passes, boundary cases, every kind of failure."""
    torch.manual_seed(0)
    cases = []
    for dtype in ("float32", "float16", "bfloat16"):
        tol = tolerances_for(dtype)
        ref = torch.randn(257, 33)
        for scale in (0.0, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 3e-4, 1e-3, 1e-2):
            out = ref * (1 + scale * torch.randn_like(ref))
            cases.append((out, ref, tol))
        cases.append((ref.clone(), ref, tol))
        cases.append((torch.zeros_like(ref), torch.zeros_like(ref), tol))
        cases.append((torch.zeros_like(ref), ref, tol))
        cases.append((ref + 1e-30, torch.zeros_like(ref), tol))
    ref = torch.randn(1000)
    for special in (float("nan"), float("inf"), -float("inf")):
        poisoned = ref.clone()
        poisoned[7] = special
        cases.append((poisoned, ref, FP32))  # bad output element
        cases.append((ref.clone(), poisoned, FP32))  # non-finite reference, output finite
        cases.append((poisoned.clone(), poisoned, FP32))  # both the same
    cases.append((torch.full((10,), 3e38), torch.full((10,), -3e38), FP32))  # the difference overflows
    worst = ref.clone()
    worst[3] += 1e-4 * (ref.pow(2).mean().sqrt() + ref[3].abs()) * 0.999  # just inside one element's bound
    cases.append((worst, ref, {"rtol": 1e-4, "atol": 1e-4, "rel_l2": 1.0}))
    worst = ref.clone()
    worst[3] += 1e-4 * (ref.pow(2).mean().sqrt() + ref[3].abs()) * 1.001  # just outside it
    cases.append((worst, ref, {"rtol": 1e-4, "atol": 1e-4, "rel_l2": 1.0}))
    wide = torch.randn(64, 48)
    cases.append((wide.t() * (1 + 1e-7), wide.t(), FP32))  # not contiguous: the full comparison decides
    return cases


def test_quick_path_gives_exactly_the_full_comparisons_verdict():
    """The quick path only ever answers 'pass', and then with the very numbers the full one gives."""
    from autotuner.evaluator.compare import _compare_tensor, _full_compare, _quick_pass

    quick_passes = 0
    for out, ref, tol in _cases():
        full = _full_compare("output", out.float(), ref.float(), tol)
        both = _compare_tensor("output", out, ref, tol)
        assert (both.ok, both.reason) == (full.ok, full.reason)
        if full.ok:
            assert (both.max_abs_err, both.rel_l2) == (full.max_abs_err, full.rel_l2)
        quick = _quick_pass(out.float(), ref.float(), tol)
        if quick is not None:
            quick_passes += 1
            assert full.ok and (quick.max_abs_err, quick.rel_l2) == (full.max_abs_err, full.rel_l2)
    assert quick_passes >= 10  # the common case does take the quick path


def test_margin_test_never_passes_what_the_full_comparison_rejects():
    """passes_with_margin is a shortcut to 'pass' only: every case it passes, the full one passes."""
    from autotuner.evaluator.compare import passes_with_margin

    passed = 0
    for out, ref, tol in _cases():
        if passes_with_margin(out, ref, tol):
            passed += 1
            assert compare_outputs(out, ref, tol).ok
    assert passed >= 8  # honest outputs take the shortcut
    generator = torch.Generator().manual_seed(1)
    for trial in range(300):  # errors spread, and single elements, around both bounds
        ref = torch.randn(1500, generator=generator) * 10 ** (trial % 7 - 3)
        tol = tolerances_for(("float32", "float16", "bfloat16")[trial % 3])
        out = ref * (1 + tol["rel_l2"] * (0.2 + trial / 150) * torch.randn(1500, generator=generator))
        spike = int(torch.randint(1500, (1,), generator=generator))
        bound = tol["atol"] * float(ref.pow(2).mean().sqrt()) + tol["rtol"] * abs(float(ref[spike]))
        out[spike] = ref[spike] + bound * (0.3 + trial / 200)
        if passes_with_margin(out, ref, tol):
            passed += 1
            assert compare_outputs(out, ref, tol).ok, trial
    assert passed >= 50


def test_margin_test_refuses_what_it_cannot_show():
    from autotuner.evaluator.compare import passes_with_margin

    ref = torch.randn(3000)
    assert passes_with_margin(ref.clone(), ref, FP32)
    assert passes_with_margin((ref.clone(), ref * 2), (ref, ref * 2), FP32)
    out = ref.clone()
    out[2999] = float("nan")  # poison in the tail past the last full row of 1024
    assert not passes_with_margin(out, ref, FP32)
    assert not passes_with_margin(ref.clone(), torch.full_like(ref, float("inf")), FP32)
    assert not passes_with_margin(torch.full((8,), 1e20), torch.full((8,), 1e20), FP32)  # squares overflow fp32
    assert not passes_with_margin(ref.half(), ref, FP32)  # dtype
    assert not passes_with_margin(torch.arange(5), torch.arange(5), FP32)  # integers: the exact comparison
    assert not passes_with_margin(ref.view(60, 50).t().clone(), ref.view(60, 50).t(), FP32)  # not contiguous
    tiny = torch.full((4096,), 1e-20)
    assert not passes_with_margin(torch.zeros_like(tiny), tiny, FP32)  # squares underflow: cannot tell
    assert not compare_outputs(torch.zeros_like(tiny), tiny, FP32).ok
    near = ref * (1 + 0.8 * FP32["rel_l2"] * torch.randn_like(ref).sign())  # rel L2 0.8x the bound
    assert compare_outputs(near, ref, {**FP32, "rtol": 1.0}).ok
    assert not passes_with_margin(near, ref, {**FP32, "rtol": 1.0})  # inside the bound, outside the margin


def test_timed_check_uses_the_full_comparison_when_the_margin_says_nothing():
    from types import SimpleNamespace

    import pytest

    from autotuner.evaluator.measure import timed_output_check
    from autotuner.evaluator.verify import Rejection

    x = torch.randn(2048)
    pool = SimpleNamespace(sets=[[x.clone()]], pristine=lambda j: [x.clone()])
    check = timed_output_check(torch.nn.Identity(), pool, FP32)
    check(0, x.clone())  # passes by the margin
    check(0, x * (1 + 0.8 * FP32["rel_l2"]))  # uniform error 0.8x the bound: only the full comparison passes it
    with pytest.raises(Rejection, match="relative L2"):
        check(0, x * (1 + 1.5 * FP32["rel_l2"]))


def test_inputs_compared_bit_for_bit_whatever_their_size_and_offset() -> None:
    """Word views (8, 4 or 1 bytes) change the cost, never the verdict."""
    from autotuner.evaluator.inputs import inputs_unchanged

    x = torch.randn(10, 7)
    nan = x.clone()
    nan[3, 3] = float("nan")
    assert inputs_unchanged([nan], [nan.clone()]) == []  # the same NaN bits: unchanged
    zero, negzero = torch.zeros(8), torch.zeros(8)
    negzero[5] = -0.0
    assert inputs_unchanged([zero], [negzero]) == [0]  # equal as floats, not as bits
    half = torch.randn(3, dtype=torch.float16)  # 6 bytes: byte view
    moved = half.clone()
    moved[2] = moved[2] + 1
    assert inputs_unchanged([half, half], [half.clone(), moved]) == [1]
    base = torch.randn(17)
    a, b = base[1:], base.clone()[1:]  # 4-byte storage offset: int32 words
    assert inputs_unchanged([a], [b]) == []
    c = b.clone()
    c[-1] += 1
    assert inputs_unchanged([a], [c]) == [0]
    assert inputs_unchanged([x], [x.double()]) == [0]  # same values, another dtype
