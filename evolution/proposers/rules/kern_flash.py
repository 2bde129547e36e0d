"""Scaled-dot-product attention over query tiles, flash-style (see flash_attention.cu).

One ``flash`` node (``patterns_flash``): q [..., Sq, D], k / v [..., Sk, D], optional causal
mask (key j > query i + off). Tunables: ``WARPS`` (16 query rows each: BLOCK_M = 16 * WARPS),
``BLOCK_N`` (keys per shared-memory tile); ``HEAD_DIM`` (D rounded up to 16) is fixed per
task. bf16 runs on tensor cores (mma.sync m16n8k16); fp32 on CUDA cores with fp32 FMA
(TF32's ~3e-4 relative error would miss the fp32 tolerance of 5e-5 relative L2). Every
configuration a space offers fits the 48 KB of static shared memory (checked by
``smem_bytes``; the template static_asserts it too).
"""

from __future__ import annotations

from typing import Any

from evolution.proposers.rules import cuda
from evolution.proposers.rules.codegen import Ctx, KernelCode, fill
from evolution.proposers.rules.ir import Scalar, Unsupported
from evolution.proposers.rules.plan import Region

SMEM_LIMIT = 48 * 1024
MAX_HEAD_DIM = 256


def head_dim(d: int) -> int:
    return max(16, -(-d // 16) * 16)


def smem_bytes(mma: bool, warps: int, block_n: int, hd: int) -> int:
    bm = 16 * warps
    if mma:  # q staged once, then k and v tiles in the same buffer (hd > 128: q kept apart)
        rows = max(bm, 2 * block_n) if hd <= 128 else bm + 2 * block_n
        return rows * (hd + 8) * 2
    return (bm + block_n) * (hd + 1) * 4  # q and one k-or-v tile


def _mma(region: Region) -> bool:
    return region.nodes[0].args["q"].dtype == "bfloat16"


def _space(mma: bool, hd: int) -> dict[str, list[int]]:
    """Tile choices whose largest combination fits shared memory (and registers: the
    output rows take HEAD_DIM / 2 registers per thread, q's fragments HEAD_DIM / 4)."""
    if mma:
        warps = [4, 8] if hd <= 128 else [2] if hd > 192 else [2, 4]
        block_n = [32, 64, 128] if hd <= 64 else [32, 64] if hd <= 128 else [16]
    else:
        warps = [2, 4] if hd <= 128 else [1]
        block_n = [16, 32, 64] if hd <= 64 else [16] if hd <= 128 else [16]
    while smem_bytes(mma, max(warps), max(block_n), hd) > SMEM_LIMIT and len(block_n) > 1:
        block_n = block_n[:-1]
    return {"WARPS": warps, "BLOCK_N": block_n}


def options(region: Region) -> list[tuple[str, dict[str, Any]]]:
    """Two tile shapes: FlashAttention-2's (64 or 128 keys per tile) and a narrower one."""
    return [("tiles", {"mode": "tiles"}), ("narrow", {"mode": "narrow"})]


def defines(region: Region, choice: dict[str, Any]) -> tuple[dict[str, int], dict[str, list]]:
    q = region.nodes[0].args["q"]
    hd = head_dim(q.shape[-1])
    mma = _mma(region)
    space = _space(mma, hd)
    if mma:
        warps, block_n = (4, 64) if hd <= 128 else (max(space["WARPS"]), 16)
    else:
        warps, block_n = (4, 32) if hd <= 64 else (4, 16) if hd <= 128 else (1, 16)
    if choice.get("mode") == "narrow":
        block_n = min(space["BLOCK_N"])
        warps = max(space["WARPS"])
    block_n = min(block_n, max(space["BLOCK_N"]))
    assert smem_bytes(mma, warps, block_n, hd) <= SMEM_LIMIT
    return {"WARPS": warps, "BLOCK_N": block_n, "HEAD_DIM": hd}, space


def generate(ctx: Ctx, region: Region) -> KernelCode:
    node = region.nodes[0]
    q, k, v = (node.args[n] for n in ("q", "k", "v"))
    if node.shape != q.shape:
        raise Unsupported("attention whose output is shaped unlike the query", node.line)
    if q.shape[-1] > MAX_HEAD_DIM:
        raise Unsupported(f"attention with head_dim {q.shape[-1]} over {MAX_HEAD_DIM}", node.line)
    if q.dtype not in ("float32", "bfloat16"):
        raise Unsupported(f"attention on {q.dtype}", node.line)
    name = ctx.kernel_name(region)
    t = cuda.storage(q.dtype)[0]
    to = cuda.storage(node.dtype)[0]
    text = fill("flash_attention.cu", NAME=name, T=t, TO=to, MMA=int(_mma(region)),
                NARROW0=cuda.narrow(node.dtype, "o[dt][2 * h] * inv"),
                NARROW1=cuda.narrow(node.dtype, "o[dt][2 * h + 1] * inv"))
    i = region.index
    qs, ks, vs, out = ctx.py(q), ctx.py(k), ctx.py(v), ctx.py(node)
    scale = node.args["scale"]
    if node.args.get("scale_is_rsqrt_d"):
        scale_py = f"1.0 / math.sqrt(D{i})"
    elif isinstance(scale, Scalar):
        scale_py = f"float({scale.ref.python()})"
    else:
        scale_py = repr(float(scale))
    causal = int(bool(node.args.get("causal")))
    elem = 16 // cuda.storage(q.dtype)[2]
    lines = [
        f"D{i} = {qs}.shape[-1]",
        f"SQ{i} = {qs}.shape[-2]",
        f"SK{i} = {ks}.shape[-2]",
        f"BH{i} = {qs}.numel() // max(1, SQ{i} * D{i})",
        f"{out} = torch.empty({qs}.shape, dtype={cuda.TORCH_DTYPE[node.dtype]}, device={qs}.device)",
        f"assert D{i} <= HEAD_DIM and {ks}.shape == {vs}.shape and {ks}.numel() == BH{i} * SK{i} * D{i}, "
        "'attention: head_dim over HEAD_DIM, or k / v not [..., seq, head_dim] like q'",
        f"if {out}.numel() > 0:",
        f"    vec{i} = D{i} % {elem} == 0 and rules_aligned({elem}, {qs}, {ks}, {vs})",
        f'    self.rules_mod.launch("{name}_main", grid=((SQ{i} + 16 * WARPS - 1) // (16 * WARPS), BH{i}), '
        f"block=(32 * WARPS,), args=({qs}, {ks}, {vs}, {out}, {scale_py}, SQ{i}, SK{i}, D{i}, {causal}, "
        f"{int(node.args.get('off', 0))}, int(vec{i})))",
    ]
    return KernelCode(text, lines, [f"{name}_main"])
