"""Scaled-dot-product attention over query tiles, flash-style (see flash_attention.cu).

One ``flash`` node (``patterns_flash``): q [..., Sq, D], k / v [..., Sk, D], optional causal
mask (key j > query i + off). Tunables: ``WARPS`` (16 query rows each: BLOCK_M = 16 * WARPS),
``BLOCK_N`` (keys per softmax chunk); bf16 also ``KV_TILE`` (keys per cp.async piece) and
``STAGES`` (pieces in flight); ``HEAD_DIM`` (D rounded up to 16) is fixed per task. bf16 runs
on tensor cores (mma.sync m16n8k16) with FlashAttention's rounding points (a bf16 reference
disagrees with anything else on rows with few keys); fp32 on CUDA cores with fp32 FMA
(TF32's ~3e-4 relative error would miss the fp32 tolerance of 5e-5 relative L2). Every
configuration a space offers fits the 48 KB of static shared memory (``smem_bytes``; the
template static_asserts it too) and compiles without spills for sm_90 (test_flash).
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


def smem_bytes(mma: bool, warps: int, block_n: int, hd: int, kv_tile: int = 0, stages: int = 2) -> int:
    bm = 16 * warps
    if mma:  # a ring of STAGES pieces of KV_TILE keys; q staged through it (hd > 128: kept apart)
        kt = min(kv_tile or block_n, block_n)
        ring, q = stages * kt * (hd + 8), bm * (hd + 8)
        return 2 * (max(ring, q) if hd <= 128 else ring + q)
    return (bm + block_n) * (hd + 1) * 4  # q and one k-or-v tile


def _mma(region: Region) -> bool:
    return region.nodes[0].args["q"].dtype == "bfloat16"


def _space(mma: bool, hd: int) -> dict[str, list[int]]:
    """Tile choices whose every combination fits shared memory and registers (the output rows
    take HEAD_DIM / 2 registers per thread, q's fragments HEAD_DIM / 4, the scores of a chunk
    BLOCK_N / 2). bf16: BLOCK_N, the softmax chunk, is one value per head dim (128 up to 128,
    else 64), since where p is rounded to bf16 decides agreement with the reference on rows
    with few keys (see flash_softmax); KV_TILE and STAGES shape the cp.async ring."""
    if mma:
        if hd <= 128:
            space = {"WARPS": [4, 8], "BLOCK_N": [128], "KV_TILE": [32, 64] if hd <= 64 else [16, 32],
                     "STAGES": [2, 3, 4]}
        else:
            space = {"WARPS": [2] if hd > 192 else [2, 4], "BLOCK_N": [64], "KV_TILE": [16], "STAGES": [2] if hd > 192 else [2, 3]}
        return space
    warps = [2, 4] if hd <= 128 else [1]
    block_n = [16, 32, 64] if hd <= 64 else [16]
    while smem_bytes(mma, max(warps), max(block_n), hd) > SMEM_LIMIT and len(block_n) > 1:
        block_n = block_n[:-1]
    return {"WARPS": warps, "BLOCK_N": block_n}


def options(region: Region) -> list[tuple[str, dict[str, Any]]]:
    """Two tile shapes: 128 query rows per block (8 warps) and 64 (4 warps, more blocks per SM)."""
    return [("tiles", {"mode": "tiles"}), ("narrow", {"mode": "narrow"})]


def defines(region: Region, choice: dict[str, Any]) -> tuple[dict[str, int], dict[str, list]]:
    q = region.nodes[0].args["q"]
    hd = head_dim(q.shape[-1])
    mma = _mma(region)
    space = _space(mma, hd)
    narrow = choice.get("mode") == "narrow"
    if mma:
        params = {"WARPS": (4 if narrow else 8) if hd <= 128 else max(space["WARPS"]),
                  "BLOCK_N": space["BLOCK_N"][0], "KV_TILE": max(space["KV_TILE"]),
                  "STAGES": 3 if hd <= 192 else 2, "HEAD_DIM": hd}
        if hd > 128 and narrow:
            params["WARPS"] = min(space["WARPS"])
        assert smem_bytes(True, params["WARPS"], params["BLOCK_N"], hd, params["KV_TILE"], params["STAGES"]) <= SMEM_LIMIT
        return params, space
    warps, block_n = (4, 32) if hd <= 64 else (4, 16) if hd <= 128 else (1, 16)
    if narrow:
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
        f"block=(32 * WARPS,), args=({qs}, {ks}, {vs}, {out}, {scale_py} * 1.4426950408889634, SQ{i}, SK{i}, D{i}, {causal}, "
        f"{int(node.args.get('off', 0))}, int(vec{i})))",
    ]
    return KernelCode(text, lines, [f"{name}_main"])
