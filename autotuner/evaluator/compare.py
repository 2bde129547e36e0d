"""Compare a candidate's outputs with the reference's, at tolerances fixed per dtype.

Two tests, both must pass: elementwise ``|out - ref| <= atol * rms(ref) + rtol * |ref|``
catches localized errors (a wrong tail, a skipped row); the relative L2 error
``||out - ref|| / ||ref||`` catches a uniform loss of precision, which is how an fp32 task
computed through fp16 or TF32 shows itself (about 3e-4, against 1e-7 for honest fp32).
NaN never passes, so a poisoned (unwritten) element always fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

# rtol: elementwise relative; atol: elementwise absolute, in units of the reference's RMS;
# rel_l2: bound on the relative L2 error of the whole tensor.
TOLERANCES: dict[str, dict[str, float]] = {
    "float32": {"rtol": 1e-4, "atol": 1e-4, "rel_l2": 5e-5},
    "float16": {"rtol": 5e-3, "atol": 2e-3, "rel_l2": 2e-3},
    "bfloat16": {"rtol": 3e-2, "atol": 1e-2, "rel_l2": 1e-2},
}


def tolerances_for(dtype: str, override: dict[str, float] | None = None) -> dict[str, float]:
    tol = dict(TOLERANCES[dtype])
    tol.update(override or {})
    return tol


@dataclass
class Comparison:
    ok: bool
    reason: str = ""
    max_abs_err: float = 0.0
    rel_l2: float = 0.0


def flatten_outputs(value: Any) -> list[Any]:
    """A forward may return a tensor, a tuple/list of tensors, or a Python number."""
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in flatten_outputs(item)]
    return [value]


def foreign_type(out: Any, ref: Any) -> str | None:
    """Why ``out`` may not be compared at all, or None: a tensor of another type than the
    reference's (a subclass's ``__torch_function__`` can answer every op of the comparison as
    the reference would; checked with ``type``, which no subclass can redefine)."""
    if isinstance(out, torch.Tensor) and type(out) is not type(ref):
        return (f"a {type(out).__module__}.{type(out).__qualname__}, expected a {type(ref).__qualname__} "
                "(a tensor subclass could redefine the comparison itself; return plain tensors)")
    return None


def _compare_tensor(name: str, out: torch.Tensor, ref: torch.Tensor, tol: dict[str, float]) -> Comparison:
    foreign = foreign_type(out, ref)
    if foreign:
        return Comparison(False, f"{name}: {foreign}")
    if tuple(out.shape) != tuple(ref.shape):
        return Comparison(False, f"{name}: shape {tuple(out.shape)}, expected {tuple(ref.shape)}")
    if out.dtype != ref.dtype:
        return Comparison(False, f"{name}: dtype {out.dtype}, expected {ref.dtype} (no silent casts)")
    if out.device != ref.device:
        return Comparison(False, f"{name}: on {out.device}, expected {ref.device}")
    if out.numel() == 0:
        return Comparison(True)
    if not ref.is_floating_point():
        wrong = int((out != ref).sum())
        return Comparison(wrong == 0, f"{name}: {wrong} of {ref.numel()} elements differ" if wrong else "")
    o = out.float()
    r = ref.float()
    quick = _quick_pass(o, r, tol)
    return quick if quick is not None else _full_compare(name, o, r, tol)


def _full_compare(name: str, o: torch.Tensor, r: torch.Tensor, tol: dict[str, float]) -> Comparison:
    """Every case, with the reason a person reads: NaN, infinities, elements, relative L2."""
    out_nan = torch.isnan(o)
    ref_nan = torch.isnan(r)
    # NaN positions must match both ways: poison left in the output, and NaN propagation, which
    # is part of the op (relu, max...)
    for misplaced, what in (
        (out_nan & ~ref_nan, "NaN where the reference is finite (unwritten output keeps the poison value, "
                             "or the kernel produced NaN)"),
        (ref_nan & ~out_nan, "finite where the reference is NaN (the kernel drops NaN, e.g. fmaxf where "
                             "PyTorch propagates it)"),
    ):
        if bool(misplaced.any()):
            count = int(misplaced.sum())
            return Comparison(False, f"{name}: {count} of {r.numel()} elements are {what}",
                              float("nan"), float("nan"))
    both_inf_same = torch.isinf(r) & (o == r)
    finite = torch.isfinite(r) & ~ref_nan
    diff = torch.where(finite, (o - r).abs(), torch.zeros_like(r))
    bad_inf = torch.isinf(r) & ~both_inf_same
    if bool(bad_inf.any()):
        return Comparison(False, f"{name}: {int(bad_inf.sum())} infinite reference elements not matched")
    r_fin = torch.where(finite, r, torch.zeros_like(r))
    ref_norm = float(torch.linalg.vector_norm(r_fin, dtype=torch.float64))
    rms = ref_norm / max(1, int(finite.sum())) ** 0.5
    err_norm = float(torch.linalg.vector_norm(diff, dtype=torch.float64))
    max_abs = float(diff.max())
    rel_l2 = err_norm / ref_norm if ref_norm > 0 else (0.0 if err_norm == 0 else float("inf"))
    allowed = tol["atol"] * max(rms, 1e-30) + tol["rtol"] * r_fin.abs()
    over = diff > allowed
    if bool(over.any()):
        n_over = int(over.sum())
        idx = int(torch.argmax((diff - allowed).flatten()))
        return Comparison(
            False,
            f"{name}: {n_over} of {r.numel()} elements outside tolerance (worst at flat index "
            f"{idx}: got {float(o.flatten()[idx]):.6g}, expected {float(r.flatten()[idx]):.6g}; "
            f"max abs err {max_abs:.3g}, rel L2 err {rel_l2:.3g})",
            max_abs, rel_l2,
        )
    if rel_l2 > tol["rel_l2"]:
        return Comparison(
            False,
            f"{name}: relative L2 error {rel_l2:.3g} exceeds {tol['rel_l2']:g} for this dtype "
            "(lower precision than the task allows, e.g. fp16 or TF32 arithmetic)",
            max_abs, rel_l2,
        )
    return Comparison(True, "", max_abs, rel_l2)


def _quick_pass(o: torch.Tensor, r: torch.Tensor, tol: dict[str, float]) -> Comparison | None:
    """The passing verdict of ``_compare_tensor`` in half its passes over memory, or None to
    let the full comparison decide.

    The full comparison builds NaN, infinity and finite masks and masked copies (about 25
    passes over the tensor: ~27 ms for a 2 GiB fp32 output on an H200, after every timed
    call). When the reference is all finite those masks are all-true, ``r_fin`` is ``r`` and
    ``diff`` is ``|o - r|``; the same norms, maximum, ``allowed`` and ``diff > allowed`` are
    computed here by the same operations in the same order (same values, bit for bit), so a
    pass here is exactly a pass there. Anything else (a non-finite value on either side, an
    element or the L2 error over tolerance) returns None, and the full comparison gives its
    verdict and reason as before. Contiguous tensors only: then the full comparison's masked
    copies have the same layout, so its reductions add in the same order.
    """
    if not (o.is_contiguous() and r.is_contiguous()):
        return None
    ref_norm = float(torch.linalg.vector_norm(r, dtype=torch.float64))
    if not math.isfinite(ref_norm):  # an infinite or NaN reference element (fp32 squares cannot overflow fp64)
        return None
    diff = (o - r).abs_()
    err_norm = float(torch.linalg.vector_norm(diff, dtype=torch.float64))
    if not math.isfinite(err_norm):  # NaN (poison) or infinity in the output
        return None
    rms = ref_norm / max(1, r.numel()) ** 0.5
    rel_l2 = err_norm / ref_norm if ref_norm > 0 else (0.0 if err_norm == 0 else float("inf"))
    allowed = r.abs().mul_(tol["rtol"]).add_(tol["atol"] * max(rms, 1e-30))
    if bool((diff > allowed).any()) or rel_l2 > tol["rel_l2"]:
        return None
    return Comparison(True, "", float(diff.max()), rel_l2)


# Bounds of _norm_fp32: a sum of 1024 positive fp32 terms, in any order, is within (m - 1) * eps
# = 6.1e-5 of the true sum; a square under FLT_MIN (|x| < 1.1e-19) can be lost, at most
# sqrt(n) * 1.2e-19 of a norm. Both far inside the factor 2 ``passes_with_margin`` leaves.
_ROW = 1024
_UNDERFLOW = 1.2e-19


def _norm_fp32(x: torch.Tensor) -> float:
    """``||x||`` from fp32 norms of rows of 1024 elements, combined in float64: one read of
    ``x`` (the float64 norm first writes a float64 copy twice its size)."""
    flat = x.reshape(-1)
    cut = flat.numel() - flat.numel() % _ROW
    parts = [torch.linalg.vector_norm(flat[cut:]).reshape(1)]
    if cut:
        parts.append(torch.linalg.vector_norm(flat[:cut].view(-1, _ROW), dim=1))
    return float(torch.linalg.vector_norm(torch.cat(parts).double()))


def _tensor_passes_with_margin(out: Any, ref: Any, tol: dict[str, float]) -> bool:
    if not (isinstance(out, torch.Tensor) and isinstance(ref, torch.Tensor)) or foreign_type(out, ref):
        return False
    if out.shape != ref.shape or out.dtype != ref.dtype or out.device != ref.device:
        return False
    if not ref.is_floating_point() or ref.numel() == 0:
        return False
    o, r = out.float(), ref.float()
    if not (o.is_contiguous() and r.is_contiguous()):
        return False
    n = r.numel()
    ref_norm = _norm_fp32(r)  # infinite or NaN with any non-finite element (or a square over fp32)
    if not (math.isfinite(ref_norm) and ref_norm > 0):
        return False
    diff = (o - r).abs_()  # as _full_compare computes it where the reference is finite
    err_norm = _norm_fp32(diff)  # NaN with any NaN (poison) in the output
    if not math.isfinite(err_norm) or 2 * (err_norm + math.sqrt(n) * _UNDERFLOW) > tol["rel_l2"] * ref_norm:
        return False
    rms_low = 0.5 * ref_norm / math.sqrt(n)  # under the float64 rms: a smaller allowance everywhere
    allowed = r.abs().mul_(tol["rtol"]).add_(tol["atol"] * max(rms_low, 1e-30))
    return not bool((diff > allowed).any())


def passes_with_margin(out: Any, ref: Any, tol: dict[str, float], kernel: Any = None) -> bool:
    """True only where ``compare_outputs`` passes, shown in fewer passes over memory; False
    says nothing (ask ``compare_outputs``).

    For the checks that need a verdict and no figures (after every timed call): about 31 GB
    of traffic for a 2 GiB fp32 output against 49 GB for ``_quick_pass`` (its float64 norms
    write float64 copies) and 94 GB for the full comparison. The norms are fp32 sums of 1024
    squares combined in float64 (``_norm_fp32``: within 1e-4 of the float64 norms, up to
    squares under FLT_MIN, which are added back as a bound), so a relative L2 error under half
    the bound, and every element within its bound with half the rms allowance (the same fp32
    operations with a smaller scalar: rounding is monotone, so never a larger allowance), pass
    the full comparison too. Only all-finite, contiguous floating outputs of the right shape
    and dtype are judged here. ``kernel`` (an ``evaluator.margin_kernel.MarginKernel``) judges
    the same in one pass over each side where it can.
    """
    outs, refs = flatten_outputs(out), flatten_outputs(ref)
    return len(outs) == len(refs) and all(_one_passes(o, r, tol, kernel) for o, r in zip(outs, refs))


def _one_passes(out: Any, ref: Any, tol: dict[str, float], kernel: Any) -> bool:
    found = kernel.passes(out, ref, tol) if kernel is not None else None
    return found if found is not None else _tensor_passes_with_margin(out, ref, tol)


def compare_outputs(out: Any, ref: Any, tol: dict[str, float], kernel: Any = None) -> Comparison:
    """Compare whole outputs (tensor or tuple); the reason names the failing output.

    ``kernel`` (``margin_kernel.MarginKernel``): a tensor it shows passing in one pass is
    passed with its figures; anything else gets the comparison below and its reason."""
    outs, refs = flatten_outputs(out), flatten_outputs(ref)
    if len(outs) != len(refs):
        return Comparison(False, f"returned {len(outs)} outputs, expected {len(refs)}")
    worst = Comparison(True)
    for i, (o, r) in enumerate(zip(outs, refs)):
        name = f"output {i}" if len(refs) > 1 else "output"
        if isinstance(r, torch.Tensor):
            if not isinstance(o, torch.Tensor):
                return Comparison(False, f"{name}: got {type(o).__name__}, expected a tensor")
            found = kernel.comparison(o, r, tol) if kernel is not None else None
            result = found if found is not None else _compare_tensor(name, o, r, tol)
        else:
            result = Comparison(o == r, "" if o == r else f"{name}: got {o!r}, expected {r!r}")
        if not result.ok:
            return result
        worst.max_abs_err = max(worst.max_abs_err, result.max_abs_err)
        worst.rel_l2 = max(worst.rel_l2, result.rel_l2)
    return worst


def outputs_identical(a: Any, b: Any) -> bool:
    """Bitwise equality of two runs' outputs (NaN-safe)."""
    for x, y in zip(flatten_outputs(a), flatten_outputs(b)):
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            if x.shape != y.shape or x.dtype != y.dtype:
                return False
            if x.numel() and not torch.equal(x.contiguous().reshape(-1).view(torch.uint8), y.contiguous().reshape(-1).view(torch.uint8)):
                return False
        elif x != y:
            return False
    return True
