"""Where the bf16 flash kernel rounds the softmax weights, checked on the CPU emulator.

A bf16 attention reference (PyTorch's flash / cuDNN kernels) rounds p = exp(s - running max)
to bf16 before the p v product. On rows with few keys (the first rows of a causal mask) that
rounding alone moves the output by several times the bf16 tolerance against exact
arithmetic, so a kernel agrees with the reference only where it rounds the same weights at
the same points: p relative to the max of the raw scores over the keys seen so far, keys
taken in 128-key chunks from the last (the diagonal) to the first, one fma before exp2. The
row sum is free to differ (the kernel's LSUM, with one m-tile a warp, sums p as rounded: the
p v product's column of ones): it scales a whole output row by one factor within 2^-8 (bf16's unit roundoff), which
no cancellation amplifies; the model follows the kernel there too, so the bound stays tight. The kernel that rounded p relative to the max of 64-key
chunks taken first to last had 2 (11 with 32-key chunks) of 67M elements outside the bf16
tolerance on the causal task's timed shape (H200); the 64-key model below shows the same
disagreement on rows 64-127 here, which is what this test would have caught.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import cuda_emu
from test_flash import FORMS, _task

pytestmark = pytest.mark.slow


def model(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, chunk: int, causal: bool, reverse: bool,
          l_of_rounded_p: bool = False) -> torch.Tensor:
    """FlashAttention's rounding points in torch: fp32 scores, bf16 p, fp32 accumulation (the
    row sum of p before rounding, or of p as rounded: ``l_of_rounded_p``, the kernel's LSUM)."""
    sq, sk, d = q.shape[-2], k.shape[-2], q.shape[-1]
    c = torch.tensor(1.0 / math.sqrt(d) * 1.4426950408889634, dtype=torch.float32).double()
    s = q.float() @ k.float().transpose(-1, -2)
    if causal:
        s = s.masked_fill(~torch.ones(sq, sk, dtype=torch.bool).tril(), float("-inf"))
    m = torch.full((*q.shape[:-1], 1), float("-inf"))
    l = torch.zeros(*q.shape[:-1], 1)
    o = torch.zeros(*q.shape[:-1], d)
    n = -(-sk // chunk)
    for j in (range(n - 1, -1, -1) if reverse else range(n)):
        st = s[..., j * chunk:(j + 1) * chunk]
        mx = torch.maximum(m, st.amax(-1, keepdim=True))
        cur = torch.where(mx == float("-inf"), torch.zeros_like(mx), mx)
        corr = torch.exp2(((m - cur) * c.float()))
        base = (cur.double() * c).float().double()
        p = torch.exp2((st.double() * c - base).float())
        l = l * corr + (p.bfloat16().float() if l_of_rounded_p else p).sum(-1, keepdim=True)
        o = o * corr + (p.bfloat16().double() @ v[..., j * chunk:(j + 1) * chunk, :].double()).float()
        m = mx
    return (o / torch.where(l > 0, l, torch.ones_like(l))).bfloat16()


def ratio(out: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """|out - ref| over the evaluator's bf16 allowance (1e-2 rms(ref) + 3e-2 |ref|)."""
    o, r = out.double(), ref.double()
    return (o - r).abs() / (1e-2 * r.pow(2).mean().sqrt() + 3e-2 * r.abs())


def _emulated(tmp_path: Path, form: str, sq: int, sk: int, d: int, params: dict, inputs: list,
              monkeypatch: pytest.MonkeyPatch) -> torch.Tensor:
    import types

    import autotuner.runtime
    from autotuner.candidate import import_candidate
    from autotuner.tasks import load_task
    from evolution.proposers.rules import translate

    task = load_task(_task(tmp_path, FORMS[form][0], "bfloat16", sq, sk, d))
    proposal = translate(task).proposals[0]
    cand = tmp_path / "cand.py"
    cand.write_text(proposal.source)
    monkeypatch.setattr(autotuner.runtime, "compile_module", cuda_emu.compile_module)  # as emu_run.py does
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda *a, **k: types.SimpleNamespace(
        multi_processor_count=2, major=9, minor=0, shared_memory_per_multiprocessor=228 * 1024))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    mod = import_candidate(cand)
    net = mod.ModelNew(**{**proposal.default_params, **params})
    with torch.no_grad():
        return net(*inputs)


CASES = [  # form, heads, sq, sk, d, params
    ("sdpa_causal", 3, 256, 256, 64, {"WARPS": 4}),
    ("sdpa_causal", 2, 200, 200, 128, {"WARPS": 8}),
    ("sdpa_causal", 2, 70, 150, 128, {"WARPS": 4}),
    ("sdpa", 2, 40, 301, 64, {"WARPS": 8}),
    ("sdpa_causal", 2, 190, 190, 64, {"WARPS": 4, "MTILES": 2}),  # two m-tiles, q reloaded from shared memory
    ("sdpa_causal", 2, 130, 130, 256, {}),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[2]}x{c[3]}-d{c[4]}" for c in CASES])
def test_bf16_flash_rounds_p_where_flashattention_does(case: tuple, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    reason = cuda_emu.compiler_missing()
    if reason:
        pytest.skip(reason)
    form, heads, sq, sk, d, params = case
    causal = FORMS[form][1]
    g = torch.Generator().manual_seed(sq * 7 + d)
    q, k, v = (torch.randn(1, heads, n, d, generator=g).bfloat16() for n in (sq, sk, sk))
    out = _emulated(tmp_path, form, sq, sk, d, params, [q, k, v], monkeypatch)
    chunk = 128 if d <= 128 else 64
    ref = model(q, k, v, chunk, causal, reverse=True, l_of_rounded_p=params.get("MTILES", 1) == 1)  # LSUM -1
    r = ratio(out, ref)
    # the same rounding points: only accumulation order differs (a bf16 ulp of the output, rarely)
    assert float(r.max()) < 0.35, f"max {float(r.max()):.3f} of the allowance, at row {int(r.amax((0, 1, 3)).argmax())}"
    exact = torch.softmax((q.double() @ k.double().transpose(-1, -2)) / math.sqrt(d)
                          + (torch.zeros(sq, sk).masked_fill(~torch.ones(sq, sk, dtype=torch.bool).tril(), float("-inf"))
                             if causal else 0), -1) @ v.double()
    assert float(((out.double() - exact).norm() / exact.norm())) < 1e-2  # the evaluator's rel_l2


def test_the_row_sum_of_rounded_p_scales_each_row_by_one_factor_within_2_to_the_minus_8() -> None:
    """LSUM's claim: summing p as rounded instead of before rounding moves a row of the output
    by one factor, within 2^-8, so the allowance's relative part (3e-2) always covers it."""
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 8, 256, 64, generator=g).bfloat16() for _ in range(3))
    a = model(q, k, v, 128, True, reverse=True).double()
    b = model(q, k, v, 128, True, reverse=True, l_of_rounded_p=True).double()
    factor = b / a.where(a != 0, torch.ones_like(a))
    assert float((factor - 1).abs().max()) < 2 ** -8 + 2 ** -7  # within 2^-8, plus both outputs' bf16 rounding
    assert float(ratio(b, a).max()) < 0.35


def test_rounding_relative_to_a_64_key_max_disagrees_on_rows_64_to_127() -> None:
    """The power of the check above: the old kernel's rounding (64-key chunks, first to last)
    against the reference's, on the causal task's head dim, exceeds the bound used there."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 64, 128, 128, generator=g).bfloat16() for _ in range(3))
    new = model(q, k, v, 128, True, reverse=True)
    old = model(q, k, v, 64, True, reverse=False)
    r = ratio(old, new)
    assert float(r[..., :64, :].max()) == 0.0  # one chunk: the same rounding
    assert float(r[..., 64:, :].max()) > 0.35
