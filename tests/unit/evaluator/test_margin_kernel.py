"""The one-pass timed-call check (``evaluator/margin_kernel.py``) against ``compare_outputs``.

Its contract: True only where ``compare_outputs`` passes, and True for honest outputs (else it
saves nothing). Run on the CPU emulator (the kernel compiled as C++) and, with the ``gpu``
marker, on the GPU itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from autotuner.evaluator.compare import compare_outputs, passes_with_margin, tolerances_for
from autotuner.evaluator.margin_kernel import DTYPE_CODES, SOURCE, MarginKernel, verdict

RULES = Path(__file__).resolve().parents[1] / "rules"


@pytest.fixture(scope="module")
def emulated() -> MarginKernel:
    sys.path.insert(0, str(RULES))
    import cuda_emu

    reason = cuda_emu.compiler_missing()
    if reason:
        pytest.skip(reason)
    modules = {code: cuda_emu.compile_module(SOURCE, defines={"DTYPE": code}) for code in set(DTYPE_CODES.values())}

    def launch(code: int, blocks: int, threads: int, args: tuple) -> None:
        modules[code].launch("margin_check", (blocks,), (threads,), args)

    kernel = MarginKernel(launch, max_blocks=3)
    kernel.threads = 64  # the emulator runs a host thread per CUDA thread: small blocks
    return kernel


@pytest.fixture(scope="module")
def on_gpu() -> MarginKernel:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    kernel = MarginKernel.build()
    assert kernel is not None, "the margin kernel did not build on this GPU"
    return kernel


def cases(dtype: torch.dtype, device: str) -> list[tuple[str, torch.Tensor, torch.Tensor, bool]]:
    """(name, output, reference, whether an honest kernel would produce it)."""
    g = torch.Generator().manual_seed(7)
    tol = tolerances_for(str(dtype).removeprefix("torch."))
    ref = torch.randn(3001, generator=g).to(dtype)
    ulp = {torch.float32: 2.0 ** -23, torch.bfloat16: 2.0 ** -7, torch.float16: 2.0 ** -10}[dtype]
    near = (ref.float() * (1 + 0.25 * ulp * torch.randn(3001, generator=g).clamp(-2, 2))).to(dtype)  # a few ulp at worst
    one_off = ref.clone()
    one_off[1234] = ref[1234].float() + 50 * tol["atol"] + 2 * tol["rtol"] * abs(float(ref[1234]))
    noisy = (ref.float() + 3 * tol["rel_l2"] * torch.randn(3001, generator=g)).to(dtype)
    nan_out = ref.clone()
    nan_out[5] = float("nan")
    both_nan_ref, both_nan_out = ref.clone(), ref.clone()
    both_nan_ref[9] = both_nan_out[9] = float("nan")
    inf_ref = ref.clone()
    inf_ref[11] = float("inf")
    tiny = ref * 1e-30 if dtype == torch.float32 else ref
    out = [("identical", ref.clone(), ref, True), ("rounding noise", near, ref, True), ("one element off", one_off, ref, False),
           ("noise over the L2 bound", noisy, ref, False), ("NaN in the output", nan_out, ref, False),
           ("NaN on both sides", both_nan_out, both_nan_ref, False), ("an infinite reference", inf_ref.clone(), inf_ref, False),
           ("zeros for the output", torch.zeros_like(ref), ref, False), ("tiny values", tiny.clone(), tiny, True),
           ("all zeros", torch.zeros_like(ref), torch.zeros_like(ref), False)]
    return [(name, o.to(device), r.to(device), honest) for name, o, r, honest in out]


def check_against_compare(kernel: MarginKernel, device: str) -> None:
    for dtype in DTYPE_CODES:
        tol = tolerances_for(str(dtype).removeprefix("torch."))
        for name, out, ref, honest in cases(dtype, device):
            found = kernel.passes(out, ref, tol)
            full = compare_outputs(out, ref, tol).ok
            assert found is not None, name
            if found:
                assert full, f"{dtype} {name}: the kernel passed what compare_outputs fails"
            if honest:
                assert found, f"{dtype} {name}: an honest output was not passed"
            assert passes_with_margin(out, ref, tol, kernel) == found, name
            with_kernel, alone = compare_outputs(out, ref, tol, kernel), compare_outputs(out, ref, tol)
            assert with_kernel.ok == alone.ok and with_kernel.reason == alone.reason, name
            if alone.ok:  # the figures a passing comparison records (a failing one is the torch path's)
                assert with_kernel.max_abs_err == pytest.approx(alone.max_abs_err, rel=1e-6, abs=0), name
                assert with_kernel.rel_l2 == pytest.approx(alone.rel_l2, rel=1e-6, abs=1e-30), name


def test_emulated_kernel_never_passes_what_compare_fails(emulated: MarginKernel) -> None:
    check_against_compare(emulated, "cpu")


def test_emulated_sums_are_the_float64_sums(emulated: MarginKernel) -> None:
    g = torch.Generator().manual_seed(3)
    ref = torch.randn(5000, generator=g)
    out = ref + 1e-3 * torch.randn(5000, generator=g)
    sum_r2, sum_d2, worst, bad, max_d = emulated.sums(out, ref, 1e-4)
    d = (out - ref).abs()
    assert sum_r2 == pytest.approx(float((ref.double() ** 2).sum()), rel=1e-12)
    assert sum_d2 == pytest.approx(float((d.double() ** 2).sum()), rel=1e-12)
    assert worst == pytest.approx(float((d.double() - (ref.abs() * 1e-4).double()).max()), rel=1e-5)
    assert bad == 0
    assert max_d == float(d.max())


def test_emulated_kernel_leaves_other_outputs_to_torch(emulated: MarginKernel) -> None:
    tol = tolerances_for("float32")
    x = torch.randn(64, 64)
    assert emulated.passes(x.t(), x.t().contiguous(), tol) is None  # not contiguous
    assert emulated.passes(x.double(), x.double(), tol) is None  # float64
    assert emulated.passes(x, x[:32], tol) is None  # shapes differ

    class Sub(torch.Tensor):
        pass

    assert emulated.passes(x.as_subclass(Sub), x.clone(), tol) is None  # a subclass: its data_ptr is its own word
    assert passes_with_margin(x.double(), x.double().clone(), tol, emulated)  # the torch path judged it


def test_verdict_margins() -> None:
    tol = {"rtol": 1e-4, "atol": 1e-4, "rel_l2": 5e-5}
    n = 10_000
    ref_sq = float(n)  # rms 1
    assert verdict([ref_sq, 0.0, -1.0, 0.0], n, tol)
    assert verdict([ref_sq, 0.0, -1.0, 0.0, 0.0], n, tol)  # with the max difference the kernel also leaves
    # the L2 test keeps a factor 2: an error norm just under half the bound passes, above fails
    bound = tol["rel_l2"] * n ** 0.5
    assert verdict([ref_sq, (0.49 * bound) ** 2, -1.0, 0.0], n, tol)
    assert not verdict([ref_sq, (0.51 * bound) ** 2, -1.0, 0.0], n, tol)
    # an element's slack is judged against half the rms allowance
    assert verdict([ref_sq, 0.0, 0.49 * tol["atol"], 0.0], n, tol)
    assert not verdict([ref_sq, 0.0, 0.51 * tol["atol"], 0.0], n, tol)
    assert not verdict([ref_sq, 0.0, -1.0, 1.0], n, tol)  # a non-finite element
    assert not verdict([float("nan"), 0.0, -1.0, 0.0], n, tol)
    assert not verdict([0.0, 0.0, -1.0, 0.0], n, tol)  # an all-zero reference: the torch path


@pytest.mark.gpu
def test_gpu_kernel_never_passes_what_compare_fails(on_gpu: MarginKernel) -> None:
    check_against_compare(on_gpu, "cuda")


@pytest.mark.gpu
def test_gpu_kernel_on_a_large_output(on_gpu: MarginKernel) -> None:
    """Many blocks, the unrolled loop and its tail: a softmax-sized row set with one bad element."""
    tol = tolerances_for("float32")
    ref = torch.softmax(torch.randn(4099, 8193, device="cuda"), dim=-1)
    out = ref * (1 + 2e-7 * torch.randn_like(ref))
    assert on_gpu.passes(out, ref, tol) is True
    out.view(-1)[-1] += 1e-2
    assert on_gpu.passes(out, ref, tol) is False and not compare_outputs(out, ref, tol).ok


def test_replacing_what_the_sums_use_is_tampering(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host half of the check runs through torch: a candidate that swaps those functions (to
    report passing sums) is caught by the harness guard after the timed calls."""
    from autotuner.evaluator.watch import HarnessGuard

    guard = HarnessGuard()
    assert guard.changes() == []
    monkeypatch.setattr(torch, "stack", lambda *a, **k: torch.zeros(4))
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: [1.0, 0.0, -1.0, 0.0])
    changed = guard.changes()
    assert "torch.stack was replaced" in changed and "torch.Tensor.tolist was replaced" in changed


def test_a_tensor_subclass_output_is_refused_before_any_op_on_it() -> None:
    """``tests/adversarial/candidates/tensor_subclass_lie.py``'s trick on the comparison itself:
    an output whose ``__torch_function__`` answers every op with the reference passed both torch
    paths; its type now fails it first, with a reason."""

    class Liar(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206
            real = [a for a in args if isinstance(a, torch.Tensor) and not isinstance(a, Liar)]
            if real:
                args = tuple(real[0] if isinstance(a, Liar) else a for a in args)
            return super().__torch_function__(func, types, args, kwargs or {})

    tol = tolerances_for("float32")
    ref = torch.relu(torch.randn(1000))
    out = torch.zeros(1000).as_subclass(Liar)
    assert not passes_with_margin(out, ref, tol)
    found = compare_outputs((ref.clone(), out), (ref, ref), tol)
    assert not found.ok and "output 1" in found.reason and "subclass" in found.reason
