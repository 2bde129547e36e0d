"""Structural variants and tunables of column regions (``kern_col``), sized from the traced shape.

``col`` (a thread per column) needs many columns to fill the GPU: at least ~132 SMs x 1024
threads x VEC. Otherwise ``colsplit`` (a warp per 32 x VEC columns, BLOCK / 32 warps along j),
with a cross-block split of j (``split``: partial states and a merge kernel) when one pass
computes per-column outputs only. Regions that re-read the operand (softmax, RMSNorm over C)
prefer ``colsplit`` too: a block's columns are 32 x VEC wide, so the second pass re-reads a
small working set (L1 / L2) instead of the whole tensor.
"""

from __future__ import annotations

import math
from typing import Any

from evolution.proposers.rules import cuda
from evolution.proposers.rules.kern_col import can_split
from evolution.proposers.rules.kern_row import schedule
from evolution.proposers.rules.plan import Region

_SMS, _THREADS_PER_SM = 132, 2048


def col_sizes(region: Region) -> tuple[int, int, int]:
    a, b = region.span
    shape = region.shape
    return math.prod(shape[:a]), math.prod(shape[a:b]), math.prod(shape[b:])


def _vec(region: Region) -> tuple[int, list[int]]:
    size = cuda.storage(region.anchor.dtype)[2]
    _, _, inner = col_sizes(region)
    best = max(1, 16 // size)
    while best > 1 and inner % best:
        best //= 2
    return max(1, min(best, 4 if size >= 4 else 8)), [v for v in (1, 2, 4, 8) if v * size <= 16]


def _split_factor(ncols: int, vec: int, warps: int, per_block: int = 0) -> int:
    """Slices of j for enough blocks to fill about two waves (a power of two, at most 256) of
    blocks of ``warps`` warps each covering ``per_block`` columns (colsplit: 32 x VEC)."""
    blocks = max(1, -(-ncols // (per_block or 32 * vec)))
    split = max(1, min(256, (_SMS * (_THREADS_PER_SM // (32 * warps)) * 2) // blocks))
    return 1 << (split.bit_length() - 1)


def _cache_items(region: Region, vec: int) -> int:
    """j values a thread may keep in registers per cached tensor: 32 floats over all of them."""
    n_full = len({lf.node.id for lf in region.leaves.values() if lf.kind == "full" and lf.node.op != "const"})
    return max(1, 32 // (vec * max(1, n_full)))


def col_options(region: Region) -> list[tuple[str, dict[str, Any]]]:
    outer, r, inner = col_sizes(region)
    ncols = outer * inner
    online = schedule(region, True, True)
    two_pass = schedule(region, False, False)
    passes = online.phases + (1 if online.late else 0)
    vec, _ = _vec(region)
    many = ncols >= _SMS * 512 * vec  # a thread per column still fills a quarter of the GPU
    split = can_split(region, online) and _split_factor(ncols, vec, 8) > 1
    if passes > 1:
        modes = ["colsplit", "col"]
        if r <= _cache_items(region, vec) * 16:
            modes.insert(0, "colsplit-cached")
    elif many and vec > 1:
        modes = ["col", "colsplit"]
    elif many:
        # Scalar columns (an odd inner extent): a thread per column holds UNROLL 4-byte loads
        # in flight, about 1000 threads per SM: too few bytes. Warps along j multiply the
        # threads (and bytes in flight) by BLOCK / 32.
        modes = ["colsplit", "col"]
    else:
        modes = (["colsplit-split"] if split and r >= 1024 else []) + ["colsplit", "col"]
        if split and "colsplit-split" not in modes:
            modes.append("colsplit-split")
        if split and vec > 1:
            # A block across BLOCK x VEC columns (4 KB of each row at 256 threads and 16-byte
            # lanes, as PyTorch's own column reduction reads) and a slice of j, against
            # colsplit's 512 bytes a row across 8 warps: mean over dim 0 of (131072, 4096)
            # ran colsplit-split at 0.64 ms at best, eager 0.57 (H200, 2026-12-02).
            modes.insert(1, "col-split")
    opts = [(m, {"mode": m.split("-")[0], "split": m.endswith("-split"), "cached": m.endswith("-cached")})
            for m in modes]
    if online.fused or online.onepass_var or two_pass.phases != online.phases:
        first = dict(opts[0][1], split=False)  # two passes: no cross-block split
        label = modes[0].removesuffix("-split")
        # A column cached in registers is read from memory once either way, so the plain passes
        # over registers cost no traffic and save the online rescaling: softmax over dim 1 of
        # (64, 128, 65536) ran 1.90 ms two-pass against 2.63 ms online (H200, 2026-12-01).
        at = 0 if first.get("cached") else min(2, len(opts))
        opts.insert(at, (f"{label}-twopass", dict(first, online=False, var="twopass")))
    if opts[0][1].get("cached"):
        # The same with the tile in shared memory (SMEMC) at the occupancy it is for (OCC 75):
        # second, so every search measures it at a setting where it can win; the climb from
        # the register default steps SMEMC alone, at OCC 50, where it cannot (col_defines).
        opts.insert(1, (f"{opts[0][0]}-smem", dict(opts[0][1], smem=True)))
    return opts


def _has_arg(region: Region) -> bool:
    """A live argmax / argmin (torch.max(x, dim)[0] traces one that nothing reads)."""
    return any(n.args.get("kind") in ("argmax", "argmin") for n in schedule(region, True, True).reds)


def col_defines(region: Region, choice: dict[str, Any]) -> tuple[dict[str, int], dict[str, list]]:
    outer, r, inner = col_sizes(region)
    ncols = outer * inner
    vec, vecs = _vec(region)
    mode = choice["mode"]
    if mode == "col":
        # UNROLL x VEC loads in flight per thread; fewer when R is short. An arg-reduction's
        # slots hold a value and an int64 index each: at UNROLL 8 argmax over dim 1 of
        # (64, 4096, 2047) ran 1.72 ms, at UNROLL 4 1.01 (H200, 2026-12-02; max over the same
        # dim is faster at 8: 0.77 against 0.86).
        unroll = 4 if vec > 1 or _has_arg(region) else 8
        while unroll > 1 and unroll > r:
            unroll //= 2
        split = _split_factor(ncols, vec, 8, per_block=256 * vec) if choice.get("split") else 1
        defines = {"BLOCK": 256, "VEC": vec, "UNROLL": unroll, "WAVES": 2, "SPLIT": split, "OCC": 0}
        space = {"BLOCK": [128, 256, 512], "VEC": vecs, "UNROLL": [1, 2, 4, 8, 16], "WAVES": [1, 2, 4], "OCC": [0, 75]}
        if choice.get("split"):
            space["SPLIT"] = sorted({16, 64, 256, split})
    else:
        # BLOCK / 32 warps along j: enough to cover R with UNROLL loads each, at most 16.
        # Scalar columns: 8 loads in flight per thread (4 bytes each), arg-reductions too since
        # the column loop keeps one running offset: argmax over dim 1 of (64, 4096, 2047) ran
        # 0.77 ms at UNROLL 8, 0.88 at 4 (H200, 2026-12-02; eager 0.72, torch.compile 0.85).
        unroll = 8 if vec == 1 and r >= 256 else 4
        while unroll > 1 and unroll * 4 > r:
            unroll //= 2
        warps = 8
        while warps > 2 and warps * unroll > r:
            warps //= 2
        split = _split_factor(ncols, vec, warps) if choice.get("split") else 1
        if choice.get("cached"):  # the fewest warps whose registers hold the column (ITEMS each)
            # At most 8 bytes per lane and row (VEC 2 in fp32) and 64 registers (OCC 50): with
            # 16-byte lanes a 512-thread block took 78 registers, one block per SM, and its
            # load phase never overlapped another block's merge and stores (softmax over
            # dim 1: 0.44x torch.compile on an H200).
            size = cuda.storage(region.anchor.dtype)[2]
            vec = max(1, min(vec, 8 // size))
            items = max(1, _cache_items(region, vec) // 2)  # 16 values a thread
            warps = 4
            while warps < 16 and warps * items < r:
                warps *= 2
            while items > 1 and warps * (items // 2) >= r:
                items //= 2
            defines = {"BLOCK": 32 * warps, "VEC": vec, "UNROLL": 1, "WAVES": 2, "SPLIT": 1, "ITEMS": items, "OCC": 50,
                       "SMEMC": 0}
            if choice.get("smem"):
                defines.update(SMEMC=1, OCC=75)
            # SMEMC 1 keeps the tile in shared memory, copied asynchronously, instead of registers:
            # with 64 registers a thread, two 512-thread blocks per SM alternate between their load
            # and their merge / store phases (softmax over dim 1: 0.72x torch.compile on an H200);
            # without the registers (ptxas, sm_90: 40 at OCC 75, 512 threads, 41 KB of shared memory),
            # three are resident. Searched, not the default, until measured.
            # ITEMS 16 and 32 let smaller blocks still hold a column of 128 or more.
            space = {"BLOCK": [128, 256, 512], "VEC": [v for v in vecs if v <= 4],
                     "ITEMS": sorted({1, 2, 4, 8, 16, 32, items}), "WAVES": [1, 2, 4], "OCC": [0, 50, 75, 100],
                     "SMEMC": [0, 1]}
            return defines, space
        defines = {"BLOCK": 32 * warps, "VEC": vec, "UNROLL": unroll, "WAVES": 2, "SPLIT": split, "OCC": 0}
        space = {"BLOCK": [64, 128, 256, 512], "VEC": [v for v in vecs if v <= 4], "UNROLL": [1, 2, 4, 8],
                 "WAVES": [1, 2, 4], "OCC": [0, 75]}
        if choice.get("split"):
            space["SPLIT"] = sorted({1, 4, 16, 64, 256, split})
    return defines, space
