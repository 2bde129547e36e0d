"""Structural variants of a plan, with their tunables and defaults sized from the task.

One region (the heaviest: dconv, attention, gemm, row, scan, pool, reduce_all, then pointwise) varies; the
others keep their first option. Tunables are shared by every kernel of a candidate (one ``BLOCK``,
one ``VEC``...), compiled in as defines; ``space`` is what optuna searches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evolution.proposers.rules import cuda, kern_conv, kern_flash, kern_gemm, kern_pointwise, kern_pool
from evolution.proposers.rules.kern_row import schedule
from evolution.proposers.rules.plan import Plan, Region
from evolution.proposers.rules.variants_col import col_defines, col_options

_PRIORITY = ("dconv", "flash", "attention", "gemm", "row", "col", "scan", "pool", "reduce_all", "pointwise", "copy")


@dataclass(frozen=True)
class Variant:
    label: str
    choices: dict[int, dict[str, Any]]  # region index -> structural choices
    defines: dict[str, int]
    space: dict[str, list] = field(default_factory=dict)


def _pow2(x: float, lo: int, hi: int) -> int:
    v = lo
    while v < x and v < hi:
        v *= 2
    return v


def _vec_choices(dtype: str) -> tuple[int, list[int]]:
    size = cuda.storage(dtype)[2]
    best = max(1, 16 // size)
    return best, [v for v in (1, 2, 4, 8) if v * size <= 16]


def _row_size(region: Region) -> int:
    d = 1
    for s in region.shape[len(region.shape) - region.k:]:
        d *= s
    return d


def _cache_per_thread(region: Region, vec: int) -> int:
    """Row values a thread may keep in registers: 32 floats over all cached inputs."""
    n_full = sum(1 for lf in {lf.node.id: lf for lf in region.leaves.values()}.values()
                 if lf.kind == "full" and lf.node.op != "const")
    return max(vec, 32 // max(1, n_full))


_SMS = 132  # sizing guesses only (an H100 / H200): the candidates size grids at run time


def _row_count(region: Region) -> int:
    rows = 1
    for s in region.shape[: len(region.shape) - region.k]:
        rows *= s
    return rows


def _row_options(region: Region) -> list[tuple[str, dict[str, Any]]]:
    d = _row_size(region)
    vec, _ = _vec_choices(region.anchor.dtype)
    online = schedule(region, True, True)
    two_pass = schedule(region, False, False)
    passes = online.phases + (1 if online.late else 0)
    per_thread = _cache_per_thread(region, vec)
    # Measured on an H200 (scripts/rules_sweep.py): caching a row in registers pays for a warp
    # per row; a block-cached row holds 16-32 registers per thread for its values, which keeps
    # 2 blocks per SM and loses to streaming the row twice (the second read hits L2) by 10-40%.
    if passes > 1 and d <= 32 * per_thread:
        modes = ["warpcached", "warp", "cached"]
    elif passes > 1 and d <= 1024 * per_thread:
        modes = ["block", "cached", "warp"]
    elif d <= 2048:
        # A warp per row from 2048 down: (64 x 4096, 2047) sum / max / argmax measured 0.73-0.81 ms
        # with a warp a row against 0.76-1.07 ms with a 128-thread block a row (H200, 2026-12-01)
        modes = ["warp", "block"]
    else:
        modes = ["block", "warp"]
    opts = [(m, {"mode": m}) for m in modes]
    if online.fused or online.onepass_var or two_pass.phases != online.phases:
        opts.insert(min(2, len(opts)), (f"{modes[0]}-twopass", {"mode": modes[0], "online": False, "var": "twopass"}))
    # A few long rows: a block per row leaves most SMs idle, so each row is split across
    # blocks (kern_rowsplit). First when the rows do not fill two waves of 512-thread blocks
    # (4 per SM) and are long; last while they fill few waves; absent for short rows.
    # Multi-pass rows past the registers: cached in shared memory across a thread-block
    # cluster (kern_rowcluster), one read and one write per element where the streaming
    # kernels read twice. First for rows split over several blocks (over 64 KB), second after
    # the streaming block kernel otherwise, last when the slices exceed 64 KB (below). Measured
    # on an H200 (2026-12-01, rules_sweep, after the fast exp and the 16-byte stores): softmax 8192 x 65536 fp32 1.46 ms in 4 blocks of
    # 256 threads against the block kernel's best 1.65 (torch.compile 1.65); RMSNorm and
    # LayerNorm 65536 x 8192 (one block a row) 1.19 / 1.25 ms against the block kernel's
    # 1.14 / 1.14.
    # Slices over 64 KB (rows past 512 KB) leave one block per SM, whose copy cannot overlap its
    # passes: last. Measured on an H200 (2026-12-01, bench suite): GroupNorm's 2 MB rows in
    # clusters of 16, 4.51 ms untuned, against 1.76 for the split rows and 1.94 for the block kernel.
    cluster = passes > 1 and d > 32 * per_thread and _fits_cluster(region)
    one_block_per_sm = cluster and _row_bytes(region) > _cluster_size(region) * _CLUSTER_SLICE
    if cluster and not one_block_per_sm:
        first = _cluster_size(region) > 1
        opts.insert(0 if first else min(1, len(opts)), ("cluster", {"mode": "cluster"}))
    rows = _row_count(region)
    if rows < 2 * _SMS and d >= 16384:
        opts.insert(0, ("split", {"mode": "split"}))
    elif rows < 16 * _SMS and d >= 4096:
        opts.append(("split", {"mode": "split"}))
    if one_block_per_sm:
        opts.append(("cluster", {"mode": "cluster"}))
    return opts


_CLUSTER_SMEM = 220 * 1024  # a block's shared memory on an H100 / H200 (227 KB), less scratch
_CLUSTER_SLICE = 64 * 1024  # slices up to this size keep 3 blocks per SM resident


def _row_bytes(region: Region) -> int:
    """Bytes of one row over the whole-row operands a cluster kernel caches."""
    d = _row_size(region)
    leaves = {lf.node.id: lf for lf in region.leaves.values()}.values()
    return sum(d * cuda.storage(lf.node.dtype)[2] for lf in leaves if lf.kind == "full" and lf.node.op != "const")


_MAX_CLUSTER = 16  # non-portable past 8: H100 / H200 allow 16 once a kernel opts in (runtime.occupancy)


def _fits_cluster(region: Region) -> bool:
    from evolution.proposers.rules.kern_rowcluster import can_cluster
    return 0 < _row_bytes(region) <= _MAX_CLUSTER * _CLUSTER_SMEM and can_cluster(region)


def _cluster_size(region: Region) -> int:
    """The fewest blocks (a power of two, at most 8) whose slices stay under 64 KB each; 16 for
    rows whose slices do not fit a block's shared memory even over 8 blocks (rows of 1.7 to
    3.4 MB: GroupNorm's 8 channels of 256 x 256, 2 MB, read once instead of twice)."""
    c, row = 1, _row_bytes(region)
    while c < 8 and row > c * _CLUSTER_SLICE:
        c *= 2
    return 16 if row > 8 * _CLUSTER_SMEM else c


def _cluster_space(region: Region) -> list[int]:
    """Cluster sizes to search: 16 too where 8 would leave slices over 64 KB (one block per SM
    at 8: 16 halves the slices, so two blocks share an SM and one's copy overlaps the other's
    passes; softmax over 393216 fp32, 1.5 MB rows, 0.90x torch.compile at 8)."""
    return [1, 2, 4, 8] + ([16] if _row_bytes(region) > 8 * _CLUSTER_SLICE else [])


def _row_defines(region: Region, choice: dict[str, Any]) -> tuple[dict[str, int], dict[str, list]]:
    d = _row_size(region)
    vec, vecs = _vec_choices(region.anchor.dtype)
    max_items = max(1, _cache_per_thread(region, vec) // vec)
    mode = choice["mode"]
    if mode == "cluster":
        # A cluster per row (WAVES 0). BLOCK: measured on an H200 (softmax 65536 fp32, 2026-12-01)
        # 256 threads beat 512 and 1024 by 15-70% in clusters of 4 and 8 (more blocks resident,
        # so one block's fill overlaps another's passes); a single block per SM (slices over
        # 64 KB, or CLUSTER 1 rows) wants 512 (RMSNorm 8192: 1.19 ms against 1.28 at 256).
        cluster = _cluster_size(region)
        block = 256 if cluster > 1 and _row_bytes(region) <= cluster * _CLUSTER_SLICE else 512
        # PIPE 1 (a persistent grid, the next row's slices copying while this row computes and
        # writes) is searched, not the default, until it is measured on a GPU.
        defines = {"BLOCK": block, "VEC": vec, "CLUSTER": cluster, "WAVES": 0, "OCC": 0, "ITEMS": 1, "HINTS": 1,
                   "PIPE": 0}
        space = {"BLOCK": [128, 256, 512, 1024], "VEC": vecs, "CLUSTER": _cluster_space(region),
                 "WAVES": [0, 1, 2], "OCC": [0, 50], "PIPE": [0, 1]}
        return defines, space
    if mode == "split":
        # BLOCK x ITEMS x 16 bytes in flight per block and operand; SPLITW waves of blocks
        # (SPLIT > 0 forces the chunk count). The block-per-row kernel (S == 1) shares BLOCK.
        defines = {"BLOCK": 512, "VEC": vec, "ITEMS": 4, "WAVES": 0, "OCC": 0, "SPLITW": 2, "SPLIT": 0}
        space = {"BLOCK": [128, 256, 512, 1024], "VEC": vecs, "ITEMS": [1, 2, 4, 8], "SPLITW": [1, 2, 4, 8],
                 "OCC": [0, 50, 100]}
        return defines, space
    if mode in ("warp", "warpcached"):
        items = _pow2(d / (32 * vec), 1, max_items) if mode == "warpcached" else 1
        defines = {"BLOCK": 256, "VEC": vec, "ITEMS": items, "WAVES": 2 if mode == "warpcached" else 0, "OCC": 0}
        space = {"BLOCK": [64, 128, 256, 512], "VEC": vecs, "WAVES": [0, 1, 2, 4, 8],
                 "ITEMS": sorted({1, 2, 4, 8, items}) if mode == "warpcached" else [1, 2, 4], "OCC": [0, 50, 100]}
    elif mode == "cached":  # blocks of 256+ threads, more rows in flight per SM, registers allowing
        items = _pow2(d / (256 * vec), 1, max_items)
        block = _pow2(d / (vec * items), 64, 1024)
        # OCC 25 (at least 512 threads a SM) caps a 256-thread block at 128 registers, so two
        # blocks share an SM and one's loads overlap the other's reduction and stores: LayerNorm
        # over 8192 fp32 (row, weight and bias in registers) took 138 at OCC 0, one block a SM;
        # 128 at OCC 25 without spills (ptxas, sm_90). RMSNorm (112) is unchanged by it.
        defines = {"BLOCK": block, "VEC": vec, "ITEMS": items, "WAVES": 2, "OCC": 25}
        space = {"BLOCK": [128, 256, 512, 1024], "VEC": vecs, "ITEMS": sorted({1, 2, 4, 8, items}), "WAVES": [1, 2, 4],
                 "OCC": [0, 25, 50]}
    else:
        # Uncapped grids (WAVES 0: a block per row, no grid-stride loop) and at most 512
        # threads per row measured 5-15% faster than 2 capped waves of 1024-thread blocks.
        # At least 8 vectors a thread: the compiler unrolls the first pass into that many loads in
        # flight, which is what keeps a streaming row near the bandwidth (RMSNorm 8192 fp32 on an
        # H200: 1.14 ms at 256 threads, 94 registers, 90% of copy; 1.56 ms at 512); not under
        # 256 for rows of 2048+ elements (bf16 RMSNorm 8192: 95% of copy at 256).
        block = _pow2(d / (vec * 8), 256 if d >= 2048 else 128, 512)
        defines = {"BLOCK": block, "VEC": vec, "ITEMS": 1, "WAVES": 0, "OCC": 0, "HINTS": 1}
        # ITEMS vectors per operand in flight per thread: 4 helped long rows (cross-entropy
        # over 128k classes: -9%) and hurt 8k-element rows (+15-60%, registers): searched.
        space = {"BLOCK": [128, 256, 512, 1024], "VEC": vecs, "WAVES": [0, 1, 2, 4], "ITEMS": [1, 2, 4],
                 "OCC": [0, 50, 100], "HINTS": [0, 1]}
    return defines, space


def _scan_last(region: Region) -> bool:
    """A scan along the last dim (else along a strided dim)."""
    node = region.nodes[0]
    rank = len(node.args["self"].shape)
    return node.args.get("dim", rank - 1) == rank - 1


def _scan_misaligned(region: Region, vec: int) -> bool:
    """Rows of the scan's input or output that do not start on a VEC boundary."""
    node = region.nodes[0]
    length = node.args["self"].shape[-1] if node.args["self"].shape else 1
    return length % vec != 0 or (length + int(bool(node.args.get("pad")))) % vec != 0


def _options(region: Region) -> list[tuple[str, dict[str, Any]]]:
    if region.kind == "flash":
        return kern_flash.options(region)
    if region.kind == "row":
        return _row_options(region)
    if region.kind == "col":
        return col_options(region)
    if region.kind == "scan":
        if not _scan_last(region):
            return [("cols", {"mode": "cols"})]
        d = region.shape[-1] if region.shape else 1
        # Staged (misaligned) rows: the warp kernel first (exclusive cumsum of 16383 x 32769:
        # 1.85 ms against the block kernel's 2.10, H200)
        warp_first = d <= 2048 or _scan_misaligned(region, _vec_choices(region.nodes[0].dtype)[0])
        return [("warp", {"mode": "warp"}), ("block", {"mode": "block"})] if warp_first else \
            [("block", {"mode": "block"}), ("warp", {"mode": "warp"})]
    if region.kind == "attention":
        q = region.nodes[0].args["q"]
        bh = q.numel // max(1, q.shape[-1])
        opts = [("block", {"mode": "block"}), ("split", {"mode": "split"})]
        return opts[::-1] if bh < 512 else opts
    if region.kind in ("pointwise", "reduce_all"):
        return [("vec", {"mode": "vec"}), ("scalar", {"mode": "scalar"})]
    if region.kind == "copy":
        return [("gather", {"mode": "gather"})]
    if region.kind == "pool":
        return kern_pool.options(region)
    if region.kind == "dconv":
        return kern_conv.options(region)
    if region.kind == "gemm":
        return kern_gemm.options(region)
    return [("torch", {})]


def _defines(region: Region, choice: dict[str, Any]) -> tuple[dict[str, int], dict[str, list]]:
    if region.kind == "flash":
        return kern_flash.defines(region, choice)
    if region.kind == "copy":  # the main region only when the forward is nothing but views
        return {"WAVES": 4}, {"WAVES": [1, 4, 16]}
    if region.kind == "pool":  # a thread per output (window) or per ROWS outputs (strip)
        if choice["mode"] == "strip":
            return ({"BLOCK": 256, "WAVES": 4, "ROWS": 4},
                    {"BLOCK": [128, 256, 512], "WAVES": [1, 4, 16], "ROWS": [1, 2, 4, 8]})
        return {"BLOCK": 256, "WAVES": 4}, {"BLOCK": [128, 256, 512], "WAVES": [1, 4, 16]}
    if region.kind == "dconv":
        return kern_conv.defines(region, choice)
    if region.kind == "gemm":
        return kern_gemm.defines(region, choice)
    if region.kind == "row":
        return _row_defines(region, choice)
    if region.kind == "col":
        return col_defines(region, choice)
    dtype = region.nodes[0].dtype if region.kind in ("scan", "attention") else (
        region.anchor.dtype if region.anchor is not None else "float32")
    if region.kind == "attention":
        dtype = region.nodes[0].args["q"].dtype
    vec, vecs = _vec_choices(dtype)
    if region.kind == "scan":
        d = region.shape[-1] if region.shape else 1
        if choice["mode"] == "cols":  # a thread per VEC columns: one 16-byte access per row in flight per lane
            return ({"BLOCK": 256, "VEC": vec, "ITEMS": 1, "WAVES": 2},
                    {"BLOCK": [128, 256, 512], "VEC": vecs, "WAVES": [1, 2, 4]})
        # One VEC group a thread (ITEMS 1: a warp's accesses are consecutive 16-byte vectors) in
        # place where every row is aligned; rows that are not (odd lengths, the exclusive scan's
        # L + 1 outputs) go through shared memory (STAGE 1) with ITEMS 2. Measured on an H200
        # (2026-12-01, rules_sweep): cumsum 16384^2 0.73 ms at ITEMS 1 in place, 0.84 at ITEMS 2,
        # 1.13-1.19 staged; KernelBench's exclusive cumsum (rows of 32769) 1.85 ms staged with
        # ITEMS 2 (warp), 2.14 in place with ITEMS 1, 5.0-5.6 in place with ITEMS 2.
        stage = int(_scan_misaligned(region, vec))
        items = 2 if stage else 1
        # PREFETCH 1 (in place only) keeps the next chunk's loads in flight during this chunk's
        # scan and stores; not yet measured, so searched and off by default.
        if choice["mode"] == "warp":
            return ({"BLOCK": 256, "VEC": vec, "ITEMS": items, "WAVES": 2, "STAGE": stage, "PREFETCH": 0},
                    {"BLOCK": [64, 128, 256, 512], "VEC": vecs, "ITEMS": [1, 2, 4], "STAGE": [0, 1],
                     "PREFETCH": [0, 1]})
        return ({"BLOCK": _pow2(d / vec, 128, 512), "VEC": vec, "ITEMS": items, "WAVES": 2, "STAGE": stage,
                 "PREFETCH": 0},
                {"BLOCK": [128, 256, 512, 1024], "VEC": vecs, "ITEMS": [1, 2, 4], "STAGE": [0, 1],
                 "PREFETCH": [0, 1]})
    if region.kind == "attention":
        d = region.nodes[0].args["q"].shape[-1]
        wvec = max(1, min(vec, _pow2(d / 32, 1, 8)))
        return ({"BLOCK": 256, "VEC": wvec, "KEYS": 2, "MAXD": _pow2(d, 256, 4096), "WAVES": 2},
                {"BLOCK": [64, 128, 256, 512], "VEC": vecs, "KEYS": [1, 2, 4]})
    if region.kind == "reduce_all":
        if choice["mode"] == "scalar":
            return {"BLOCK": 512, "VEC": 1, "WAVES": 2}, {"BLOCK": [128, 256, 512, 1024], "WAVES": [1, 2, 4, 8]}
        return ({"BLOCK": 512, "VEC": vec, "WAVES": 2},
                {"BLOCK": [128, 256, 512, 1024], "VEC": vecs, "WAVES": [1, 2, 4, 8]})
    if region.kind == "pointwise":
        if choice["mode"] == "scalar":
            return ({"BLOCK": 256, "VEC": 1, "ITEMS": 4, "WAVES": 0},
                    {"BLOCK": [128, 256, 512, 1024], "ITEMS": [1, 2, 4, 8], "WAVES": [0, 2, 8, 32]})
        # One 16-byte access per operand per thread and a block per piece of work (WAVES 0):
        # 93% of copy bandwidth on an H200 where 2 capped waves with ITEMS 2 gave 87%; the
        # kernel alone runs at 100% (Nsight Compute), the rest is the launch.
        return ({"BLOCK": 256, "VEC": vec, "ITEMS": 1, "WAVES": 0, "OCC": 0},
                {"BLOCK": [128, 256, 512, 1024], "VEC": vecs, "ITEMS": [1, 2, 4], "WAVES": [0, 2, 8, 32],
                 "OCC": [0, 100]})
    return {}, {}


def primary(plan: Plan) -> Region | None:
    for kind in _PRIORITY:
        for region in plan.regions:
            if region.kind == kind:
                return region
    return None


def variants_for(plan: Plan) -> list[Variant]:
    """Every structural variant of ``plan``'s primary region (the first is the best guess)."""
    main = primary(plan)
    if main is None:
        return []
    base_choices = {r.index: _options(r)[0][1] for r in plan.regions}
    options = _options(main)
    if kern_pointwise.nhwc_conv(plan, main) is not None:
        # second: measured beside the NCHW epilogue by every search, not yet on a GPU
        options.insert(1, ("vec-nhwc", {**options[0][1], "layout": "nhwc"}))
    out = []
    for label, choice in options:
        choices = dict(base_choices)
        choices[main.index] = choice
        defines, space = _defines(main, choice)
        for region in plan.regions:  # keys only other regions use (attention's MAXD, ...)
            if region is not main:
                extra, _ = _defines(region, choices[region.index])
                for key, value in extra.items():
                    defines.setdefault(key, value)
        if uses_exp(plan):  # hardware ex2 / rcp by default (common.cu says why); searched
            defines["FASTEXP"] = 1
            space = {**space, "FASTEXP": [0, 1]}
        out.append(Variant(f"{main.kind}/{label}", choices, defines, by_effect(space)))
    return out


# The tuner climbs from the default one parameter at a time, the space's first keys first
# (``evolution.tuning``), and a budget of 8 settings reaches the first few. Ranked by the effect
# each had in measured grids on an H200: cluster size (softmax 8192 x 65536: 1.46 against
# 3.0 ms) and block size (RMSNorm 8192: 1.14 against 1.56 ms) by far; where the column
# kernels cache their tile (SMEMC: new, its one step tried in the first round); then work per thread
# and grid waves (relu: ITEMS 4 x WAVES 32 5% over the default; cross-entropy ITEMS 4 -9%,
# +15-60% on 8k rows), split factors, occupancy caps; the pipelining switches, which have not
# shown an effect yet; the vector width (the default is already the widest aligned access) and
# the fast exp (on by default; off only trades speed for accuracy) last.
_EFFECT = ("CLUSTER", "BLOCK", "SMEMC", "ITEMS", "WAVES", "UNROLL", "SPLIT", "SPLITW", "COUT_PER_THREAD", "POS_PER_THREAD",
           "OCC", "PIPE", "STAGE", "PREFETCH", "HINTS")
_LAST = ("VEC", "FASTEXP")


def by_effect(space: dict[str, list]) -> dict[str, list]:
    """``space`` with its keys in the order the tuner should try them (see ``_EFFECT``);
    keys not ranked there keep their order, after the ranked ones and before ``_LAST``."""
    def rank(key: str) -> int:
        if key in _EFFECT:
            return _EFFECT.index(key)
        return len(_EFFECT) + 1 + _LAST.index(key) if key in _LAST else len(_EFFECT)
    return {key: space[key] for key in sorted(space, key=rank)}


def uses_exp(plan: Plan) -> bool:
    """Whether any kernel of ``plan`` evaluates exp (directly, in sigmoid / SiLU, or in an
    online log-sum-exp)."""
    kinds = {"exp", "sigmoid", "silu"}
    return any(n.op in kinds or (n.op == "red" and n.args.get("kind") == "lse")
               for r in plan.regions for n in r.nodes)
