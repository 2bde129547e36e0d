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
