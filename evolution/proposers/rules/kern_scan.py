"""Cumulative scans (cumsum / cumprod; reversed, exclusive, over any dim), from ``scan.cu``.

The scanned tensor is read as [outer, L, inner] (the scan dim is L). The last dim (inner 1):
a block (``block`` variant) or a warp (``warp``) per row, and rows too few to fill the GPU
are cut into segments with a totals pass first (two-level, deterministic). Other dims: a
thread per VEC columns walking down L, cut into chunks with a totals pass when the columns
are too few. The host side picks segments / chunks from the runtime shape.
"""

from __future__ import annotations

from evolution.proposers.rules import cuda
from evolution.proposers.rules.codegen import Ctx, KernelCode, fill
from evolution.proposers.rules.ir import Unsupported
from evolution.proposers.rules.plan import Region, base_leaf

_OP = {"sum": 0, "prod": 1}


def spec(node) -> dict:  # noqa: ANN001 - a cumsum node
    """The scan's parameters, with defaults for a node from an older lowering (plain cumsum, last dim)."""
    x = node.args["self"]
    rank = len(x.shape)
    return dict(kind=node.args.get("kind", "sum"), dim=node.args.get("dim", rank - 1),
                reverse=bool(node.args.get("reverse", False)), exclusive=bool(node.args.get("exclusive", False)),
                pad=bool(node.args.get("pad", False)), trim0=int(node.args.get("trim0", 0)))


def generate(ctx: Ctx, region: Region) -> KernelCode:
    node = region.nodes[0]
    x = node.args["self"]
    if base_leaf(x) is not x:
        raise Unsupported("a scan of a view", node.line)
    s = spec(node)
    rank = len(x.shape)
    if rank == 0:
        raise Unsupported("a scan of a 0-dim tensor", node.line)
    last = s["dim"] == rank - 1
    mode = ctx.variant.get(region.index, {}).get("mode", "block" if last else "cols")
    if mode not in (("block", "warp") if last else ("cols",)):
        raise Unsupported(f"scan mode {mode} over dim {s['dim']} of a rank-{rank} tensor")
    if not (cuda.vector_ok(x.dtype) and cuda.vector_ok(node.dtype)):
        raise Unsupported(f"a scan of {x.dtype} into {node.dtype}", node.line)
    if s["reverse"] and s["pad"]:
        raise Unsupported("a reversed scan with its total", node.line)
    name = ctx.kernel_name(region)
    tin, sin, _ = cuda.storage(x.dtype)
    tout, sout, _ = cuda.storage(node.dtype)
    text = fill("scan.cu", NAME=name, TIN=tin, TOUT=tout, OP=_OP[s["kind"]], LOAD=f"load_{sin}",
                STORE=f"store_{sout}", WIDEN_P=cuda.widen(x.dtype, "(xr)[p_]"), WIDEN_C=cuda.widen(x.dtype, "xr[u]"),
                NARROW_W=cuda.narrow(node.dtype, "w[u]"))
    i = region.index
    xs, ys = ctx.py(x), ctx.py(node)
    d = s["dim"]
    flags = (4 if s["reverse"] else 0) | (8 if s["exclusive"] else 0)
    lines = [
        f"xs{i} = {xs}.shape",
        f"outer{i} = math.prod(xs{i}[:{d}])",
        f"L{i} = xs{i}[{d}]",
        f"inner{i} = math.prod(xs{i}[{d + 1}:])",
        f"rows{i} = (xs{i}[0] - {s['trim0']}) * math.prod(xs{i}[1:{d}])" if s["trim0"] else f"rows{i} = outer{i}",
        f"Lo{i} = L{i} + {int(s['pad'])}",
        f"Lm{i} = max(L{i}, Lo{i})",
        f"{ys} = torch.empty(({'xs%d[0] - %d, ' % (i, s['trim0']) if s['trim0'] else ''}"
        f"*xs{i}[{1 if s['trim0'] else 0}:{d}], Lo{i}, *xs{i}[{d + 1}:]), "
        f"dtype={cuda.TORCH_DTYPE[node.dtype]}, device={xs}.device)",
        f"if {ys}.numel() > 0:",
    ]
    body: list[str] = []
    kernels: list[str]
    if last:
        body += [
            f"vin{i} = VEC > 1 and L{i} % VEC == 0 and rules_aligned(VEC, {xs})",
            f"vout{i} = VEC > 1 and Lo{i} % VEC == 0 and rules_aligned(VEC, {ys})",
            f"flags{i} = {flags} | int(vin{i}) | 2 * int(vout{i})",
        ]
        block_lines = [
            "tile = BLOCK * ITEMS * VEC",
            "full = self.rules_cap // WAVES",  # one wave of resident blocks
            f"nseg = 1 if rows{i} >= full else max(1, min(-(-full // rows{i}), -(-Lm{i} // (2 * tile))))",
            f"seg = -(-(-(-Lm{i} // nseg)) // tile) * tile",
            f"nseg = -(-Lm{i} // seg)",
            f"segtot{i} = torch.empty(max(1, rows{i} * nseg), dtype=torch.float32, device={xs}.device)",
            "if nseg > 1:",
            f'    self.rules_mod.launch("{name}_segtot", grid=(rules_grid(rows{i} * nseg, 1, self.rules_cap),), '
            f"block=(BLOCK,), args=({xs}, segtot{i}, rows{i}, L{i}, nseg, seg, flags{i}))",
            f'self.rules_mod.launch("{name}_block", grid=(rules_grid(rows{i} * nseg, 1, self.rules_cap),), '
            f"block=(BLOCK,), args=({xs}, {ys}, segtot{i}, rows{i}, L{i}, Lo{i}, nseg, seg, flags{i}))",
        ]
        if mode == "warp":  # short rows, many of them: a warp per row; otherwise the block path
            body += [f"if rows{i} >= self.rules_cap // WAVES * (BLOCK // 32) or Lm{i} <= 32 * ITEMS * VEC * 4:",
                     f'    self.rules_mod.launch("{name}_warp", grid=(rules_grid(rows{i}, BLOCK // 32, '
                     f"self.rules_cap),), block=(BLOCK,), args=({xs}, {ys}, rows{i}, L{i}, Lo{i}, flags{i}))",
                     "else:"] + ["    " + ln for ln in block_lines]
        else:
            body += block_lines
        kernels = [f"{name}_block", f"{name}_warp", f"{name}_segtot"]
    else:
        body += [
            f"vec{i} = VEC > 1 and inner{i} % VEC == 0 and rules_aligned(VEC, {xs}, {ys})",
            f"flags{i} = {flags} | 3 * int(vec{i})",
            f"ngrp{i} = -(-inner{i} // VEC)",
            f"threads{i} = rows{i} * ngrp{i}",
            f"want{i} = self.rules_cap // WAVES * BLOCK",  # one wave of resident threads
            f"nchunk{i} = 1 if threads{i} >= want{i} else max(1, min(-(-want{i} // threads{i}), -(-Lm{i} // 64)))",
            f"chunk{i} = -(-Lm{i} // nchunk{i})",
            f"nchunk{i} = -(-Lm{i} // chunk{i})",
            f"coltot{i} = torch.empty(max(1, nchunk{i} * rows{i} * inner{i}) if nchunk{i} > 1 else 1, "
            f"dtype=torch.float32, device={xs}.device)",
            f"if nchunk{i} > 1:",
            f'    self.rules_mod.launch("{name}_coltot", grid=(rules_grid(threads{i} * nchunk{i}, BLOCK, '
            f"self.rules_cap),), block=(BLOCK,), args=({xs}, coltot{i}, rows{i}, L{i}, inner{i}, nchunk{i}, "
            f"chunk{i}, flags{i}))",
            f'self.rules_mod.launch("{name}_cols", grid=(rules_grid(threads{i} * nchunk{i}, BLOCK, self.rules_cap),), '
            f"block=(BLOCK,), args=({xs}, {ys}, coltot{i}, rows{i}, outer{i}, L{i}, Lo{i}, inner{i}, nchunk{i}, "
            f"chunk{i}, flags{i}))",
        ]
        kernels = [f"{name}_cols", f"{name}_coltot"]
    lines += ["    " + ln for ln in body]
    return KernelCode(text, lines, kernels)
