"""Scaled-dot-product attention over query tiles, flash-style (see flash_attention.cu).

One ``flash`` node (``patterns_flash``): q [..., Sq, D], k / v [..., Sk, D], optional causal
mask (key j > query i + off). Tunables: ``WARPS`` and, bf16, ``MTILES`` (16-row m-tiles per
warp: BLOCK_M = 16 * MTILES * WARPS); fp32 also ``BLOCK_N`` (keys per softmax chunk);
``HEAD_DIM`` (D rounded up to 16) is fixed per task. bf16 runs on tensor cores (mma.sync
m16n8k16) with FlashAttention's schedule (one k and one v buffer, two barriers per chunk) and
rounding points (a bf16 reference disagrees with anything else on rows with few keys), its
tiles in dynamic shared memory; fp32 on CUDA cores with fp32 FMA (TF32's ~3e-4 relative error
would miss the fp32 tolerance of 5e-5 relative L2), in 48 KB of static shared memory. Every
configuration a space offers fits its shared memory (``smem_bytes``, mirroring the template's
``_SMEM``) and compiles without spills for sm_90 (test_flash).
"""

from __future__ import annotations

import os
from typing import Any

from evolution.proposers.rules import cuda
from evolution.proposers.rules.codegen import Ctx, KernelCode, fill
from evolution.proposers.rules.ir import Scalar, Unsupported
from evolution.proposers.rules.plan import Region

SMEM_LIMIT = 48 * 1024  # fp32: static shared memory
DYN_SMEM_LIMIT = 99 * 1024  # bf16: dynamic shared memory every sm_80+ GPU can opt into (sm_86 / 89: 99 KB)
MAX_HEAD_DIM = 256
# The wgmma form (flash_attention.cu, FLASH_MMA 2: sm_90a warpgroup MMA for both products, built
# through compile_module's arch="sm_90a"). Its descriptors are what scripts/wgmma_probe.py found
# on the H200 and it is accepted there (tests/gpu/test_rules_gpu.py), but it is no faster than the
# mma.sync form by more than the noise (H200, 2026-12-02, one command: sdpa_bf16 0.463 ms against
# the mma.sync form's 0.478, eager 0.250, torch.compile 0.352; causal head dim 128 0.863 against
# 0.829): ncu shows it issue-bound on the softmax (stall "wait" 1.31, "selected" 1.00, gmma 0.03
# per issue), and FlashAttention-3's intra-warpgroup overlap (OVERLAP) did not change that. It is
# offered only with AUTOTUNER_FLASH_WGMMA=1, and only Hopper can build it.
WGMMA_VARIANT = os.environ.get("AUTOTUNER_FLASH_WGMMA", "0") == "1"


def head_dim(d: int) -> int:
    return max(16, -(-d // 16) * 16)


def chunk_keys(hd: int) -> int:
    """bf16's softmax chunk: FlashAttention's for the head dim (where p rounds to bf16)."""
    return 128 if hd <= 128 else 64


def q_in_registers(mtiles: int, block_n: int, hd: int) -> bool:
    """The template's ``_QREG``: q's fragments in registers while the scores and output rows
    leave room (else they are reloaded from shared memory per 16 columns)."""
    return mtiles * hd <= 128 and mtiles * (hd + block_n) <= 256


def smem_bytes(mma: bool, warps: int, block_n: int, hd: int, mtiles: int = 1) -> int:
    """Shared memory per block; bf16: the template's ``_SMEM`` (dynamic)."""
    bm = 16 * mtiles * warps
    if mma:  # one k and one v chunk; q apart unless staged in v's buffer
        q_apart = not (q_in_registers(mtiles, block_n, hd) and bm <= block_n)
        return 2 * (2 * block_n + (bm if q_apart else 0)) * (hd + 8)
    return (bm + block_n) * (hd + 1) * 4  # q and one k-or-v tile


def _mma(region: Region) -> bool:
    return region.nodes[0].args["q"].dtype == "bfloat16"


def _space(mma: bool, hd: int) -> dict[str, list[int]]:
    """Tile choices whose every combination fits shared memory and registers (the output rows
    take MTILES * HEAD_DIM / 2 registers per thread, the scores of a chunk MTILES * BLOCK_N / 2,
    q's fragments MTILES * HEAD_DIM / 4 where they stay in registers). bf16: BLOCK_N, the
    softmax chunk, is one value per head dim (``chunk_keys``), since where p is rounded to bf16
    decides agreement with the reference on rows with few keys (see flash_softmax). MTILES 2
    (two m-tiles per warp: each k and v fragment read from shared memory feeds two mma, half
    the ldmatrix traffic a score) only up to head dim 64, where it holds 128 scores and 64
    output values per thread at BLOCK_N 128: 255 registers, no spills with 8 warps, a 188-byte
    spill with 4 (nvcc 13, sm_90, -ftz); the search measures it. Above 64 it would spill more.
    MINB (blocks per SM the registers must allow) is searched there too, see ``defines``."""
    if mma:
        bn = chunk_keys(hd)
        if hd <= 64:
            return {"WARPS": [4, 8], "MTILES": [1, 2], "BLOCK_N": [bn], "MINB": [1, 3]}
        if hd <= 128:
            return {"WARPS": [4, 8], "MTILES": [1], "BLOCK_N": [bn]}
        return {"WARPS": [2] if hd > 192 else [2, 4], "MTILES": [1], "BLOCK_N": [bn]}
    warps = [2, 4] if hd <= 128 else [1]
    block_n = [16, 32, 64] if hd <= 64 else [16]
    while smem_bytes(mma, max(warps), max(block_n), hd) > SMEM_LIMIT and len(block_n) > 1:
        block_n = block_n[:-1]
    return {"WARPS": warps, "BLOCK_N": block_n}


def wgmma_ok(region: Region) -> bool:
    """The wgmma form's shapes: bf16, head dim 64 or 128 (128-byte rows, 128-key chunks)."""
    q = region.nodes[0].args["q"]
    return q.dtype == "bfloat16" and head_dim(q.shape[-1]) in (64, 128)


def options(region: Region) -> list[tuple[str, dict[str, Any]]]:
    """Two tile shapes: 128 query rows per block (8 warps) and 64 (4 warps, more blocks per SM);
    the wgmma form where it is enabled (WGMMA_VARIANT) and fits."""
    opts = [("tiles", {"mode": "tiles"}), ("narrow", {"mode": "narrow"})]
    if WGMMA_VARIANT and wgmma_ok(region):
        opts.insert(0, ("wgmma", {"mode": "wgmma"}))
    return opts


def defines(region: Region, choice: dict[str, Any]) -> tuple[dict[str, int], dict[str, list]]:
    q = region.nodes[0].args["q"]
    hd = head_dim(q.shape[-1])
    mma = _mma(region)
    space = _space(mma, hd)
    narrow = choice.get("mode") == "narrow"
    if mma and choice.get("mode") == "wgmma":  # warpgroups of 64 rows: 1 or 2 a block
        # STAGES: (k, v) chunk pairs in flight (1: FlashAttention-2's one k and one v buffer);
        # sm_90's 227 KB take every combination (head dim 128, 8 warps, 2 stages: 161 KB)
        # OVERLAP (head dim 64, STAGES 3): a chunk's softmax runs while the p v before it does
        # (FlashAttention-3's intra-warpgroup overlap)
        if hd <= 64:
            # H200, sdpa_bf16 (2026-12-02, after the softmax's mask branch): 4 warps STAGES 2 0.463-0.469
            # ms, STAGES 3 0.540-0.548, 8 warps 0.489-0.494; OVERLAP 1 within noise of 0 (the softmax's
            # instruction issue, not latency, is the limit), so a knob for sweeps, not searched
            params = {"WARPS": 4, "MTILES": 1, "BLOCK_N": 128, "HEAD_DIM": hd, "MINB": 1, "STAGES": 2, "OVERLAP": 0}
            return params, {"WARPS": [4, 8], "MTILES": [1], "BLOCK_N": [128], "STAGES": [1, 2, 3], "OVERLAP": [0]}
        params = {"WARPS": 8, "MTILES": 1, "BLOCK_N": 128, "HEAD_DIM": hd, "MINB": 1, "STAGES": 2, "OVERLAP": 0}
        return params, {"WARPS": [4, 8], "MTILES": [1], "BLOCK_N": [128], "STAGES": [1, 2], "OVERLAP": [0]}
    if mma:
        warps, mtiles = (min(space["WARPS"]) if narrow else max(space["WARPS"])), 1
        # MINB: blocks per SM the registers must allow (1: ptxas's choice). Searched for head dim
        # 64 (_space): either tile shape runs 8 warps an SM at ptxas's choice (nvcc 13, sm_90, -ftz: 235
        # registers with 4 warps, 224 with 8), too few to hide the chain from q k^T through the
        # softmax to p v; MINB 3 with 4 warps holds 168 registers (12 warps an SM) for a 48-byte
        # spill, about ten local accesses a chunk. Larger head dims take 254 registers already,
        # and 8 warps spill above 1 (MINB 2: 508 bytes), so there it stays a sweep knob.
        # LSUM (the template's: the row sums from the p v product, see flash_attention.cu; -1: with
        # one m-tile a warp): a knob for sweeps, not searched
        params = {"WARPS": warps, "MTILES": mtiles, "BLOCK_N": space["BLOCK_N"][0], "HEAD_DIM": hd, "MINB": 1,
                  "LSUM": -1}
        assert smem_bytes(True, warps, params["BLOCK_N"], hd, mtiles) <= DYN_SMEM_LIMIT
        return params, space
    warps, block_n = (4, 32) if hd <= 64 else (4, 16) if hd <= 128 else (1, 16)
    if narrow:
        block_n = min(space["BLOCK_N"])
        warps = max(space["WARPS"])
    block_n = min(block_n, max(space["BLOCK_N"]))
    assert smem_bytes(mma, warps, block_n, hd) <= SMEM_LIMIT
    return {"WARPS": warps, "MTILES": 1, "BLOCK_N": block_n, "HEAD_DIM": hd}, space


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
    mma = _mma(region)
    wgmma = mma and ctx.variant.get(region.index, {}).get("mode") == "wgmma"
    if wgmma and not wgmma_ok(region):
        raise Unsupported("wgmma attention needs bf16 and head dim 64 or 128", node.line)
    text = fill("flash_attention.cu", NAME=name, T=t, TO=to, MMA=2 if wgmma else int(mma),
                NARROW0=cuda.narrow(node.dtype, "o[i][dt][2 * h] * inv"),
                NARROW1=cuda.narrow(node.dtype, "o[i][dt][2 * h + 1] * inv"))
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
    bm = "16 * MTILES * WARPS"
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
        f'    self.rules_mod.launch("{name}_main", grid=((SQ{i} + {bm} - 1) // ({bm}), BH{i}), '
        f"block=(32 * WARPS,), args=({qs}, {ks}, {vs}, {out}, {scale_py} * 1.4426950408889634, SQ{i}, SK{i}, D{i}, {causal}, "
        f"{int(node.args.get('off', 0))}, int(vec{i}))" + (f", shared_mem=self.rules_flash_smem{i})" if mma else ")"),
    ]
    setup = []
    if mma:  # the template's _SMEM (smem_bytes), opted into above 48 KB
        qinv = f"(MTILES * HEAD_DIM <= 128 and MTILES * (HEAD_DIM + BLOCK_N) <= 256 and {bm} <= BLOCK_N)"
        size = (f"2 * ({bm} + 2 * STAGES * BLOCK_N) * HEAD_DIM + 1024" if wgmma else
                f"2 * (2 * BLOCK_N + (0 if {qinv} else {bm})) * (HEAD_DIM + 8)")
        setup = [f"self.rules_flash_smem{i} = {size}",
                 f"assert self.rules_flash_smem{i} <= self.rules_smem, (f'flash attention tiles need "
                 f"{{self.rules_flash_smem{i}}} bytes of shared memory per block; this GPU allows "
                 f"{{self.rules_smem}}: use fewer WARPS or MTILES')",
                 f'self.rules_mod.kernel("{name}_main").function.max_dynamic_shared_size_bytes = self.rules_flash_smem{i}']
    return KernelCode(text, lines, [f"{name}_main"], setup=setup, arch="sm_90a" if wgmma else None)
