"""Pool regions: max or average pooling (``nn.MaxPool1d/2d/3d``, ``nn.AvgPool1d/2d/3d``) over
the trailing 1-3 dims of a contiguous input or of another region's result.

The window (size, stride, padding, dilation) is a module constant, so it is compiled in and
the window loops unroll; every size (batch, channels, spatial extents) is read from the
tensor at run time and the output extents follow PyTorch's formula, ``ceil_mode`` included
(the last window must start inside the input or its left padding). A thread computes one
output element (and, for ``return_indices``, its int64 index); consecutive threads write
consecutive outputs.
"""

from __future__ import annotations

from evolution.proposers.rules import cuda
from evolution.proposers.rules.codegen import I32_LIMIT, Ctx, KernelCode, fill, join_params
from evolution.proposers.rules.ir import Node
from evolution.proposers.rules.plan import Region

_IND = " " * 8


def out_size_python(z: str, size: str, k: int, s: int, p: int, d: int, ceil: bool) -> list[str]:
    """Python statements setting ``z`` (an output extent) from ``size`` as PyTorch computes it:
    floor or ceil of (size + 2p - d(k-1) - 1) / s, plus 1; in ceil mode one less when the last
    window would start in the right padding."""
    shift = 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)
    lines = [f"{z} = ({size} {'-' if shift < 0 else '+'} {abs(shift)}) // {s} + 1"]
    if ceil:
        lines.append(f"{z} -= ({z} - 1) * {s} >= {size} + {p}")
    return lines


def _window(pool: Node, dtype: str, indices: bool) -> tuple[str, str]:
    """(CUDA loops over the window accumulating ``acc`` (and ``arg``, the max's offset in the
    plane, when ``indices``), the stored result expression)."""
    nd = len(pool.args["kernel"])
    k, s, p, d = (pool.args[name] for name in ("kernel", "stride", "padding", "dilation"))
    is_max = pool.args["kind"] == "max"
    lines = [f"{_IND}float acc = {'RULES_NEG_INF' if is_max else '0.0f'};"] + ([f"{_IND}I arg = -1;"] if indices else [])
    lines += [f"{_IND}const I h{a} = o{a} * (I){s[a]} - (I){p[a]};" for a in range(nd)]
    pad = _IND
    for a in range(nd):
        offset = f"i{a}" if a == 0 else f"r{a - 1} * l{a} + i{a}"
        lines.append(f"{pad}#pragma unroll")
        lines.append(f"{pad}for (int j{a} = 0; j{a} < {k[a]}; ++j{a}) {{")
        pad += "    "
        lines.append(f"{pad}const I i{a} = h{a} + (I)(j{a} * {d[a]});")
        checks = (["i{a} < 0"] if p[a] > 0 else []) + (["i{a} >= l{a}"] if p[a] > 0 or pool.args["ceil_mode"] else [])
        if checks:
            lines.append(f"{pad}if ({' || '.join(c.format(a=a) for c in checks)}) continue;")
        lines.append(f"{pad}const I r{a} = {offset};")
    value = cuda.widen(dtype, f"in[r{nd - 1}]")
    if indices:  # PyTorch's test: the first cell, then a larger value or a NaN
        lines.append(f"{pad}const float v = {value};")
        lines.append(f"{pad}if (arg < 0 || v > acc || v != v) {{ acc = v; arg = r{nd - 1}; }}")
    else:
        lines.append(f"{pad}acc = rules_max(acc, {value});" if is_max else f"{pad}acc += {value};")
    for a in range(nd - 1, -1, -1):
        pad = pad[:-4]
        lines.append(f"{pad}}}")
    if is_max:
        return "\n".join(lines), cuda.narrow(dtype, "acc")
    return "\n".join(lines + _divisor(pool)), cuda.narrow(dtype, "acc / (float)div")


def _divisor(pool: Node) -> list[str]:
    """CUDA lines defining ``div``: divisor_override, else the window's cells inside the padded
    input (count_include_pad) or inside the input, as PyTorch's avg_pool counts them."""
    if pool.args["divisor"] is not None:
        return [f"{_IND}const I div = (I){pool.args['divisor']};"]
    k, p = pool.args["kernel"], pool.args["padding"]
    cells = []
    for a in range(len(k)):
        if pool.args["count_include_pad"]:
            cells.append(f"((h{a} + {k[a]} < l{a} + {p[a]} ? h{a} + {k[a]} : l{a} + {p[a]}) - h{a})")
        else:
            cells.append(f"((h{a} + {k[a]} < l{a} ? h{a} + {k[a]} : l{a}) - (h{a} > 0 ? h{a} : (I)0))")
    return [f"{_IND}const I div = {' * '.join(cells)};"]


def strip_ok(region: Region) -> bool:
    """The strip form needs two or more spatial dims and no indices (an index is not separable)."""
    return len(region.nodes[0].args["kernel"]) >= 2 and not any(n.op == "pool_indices" for n in region.nodes)


def options(region: Region) -> list[tuple[str, dict]]:
    """Strip first where it applies: it reads each input row once for ROWS outputs."""
    window = [("window", {"mode": "window"})]
    return [("strip", {"mode": "strip"})] + window if strip_ok(region) else window


def generate(ctx: Ctx, region: Region) -> KernelCode:
    if ctx.variant.get(region.index, {}).get("mode") == "strip" and strip_ok(region):
        return _generate_strip(ctx, region)
    name = ctx.kernel_name(region)
    pool = region.nodes[0]
    x = pool.args["self"]
    nd = len(pool.args["kernel"])
    lead = len(x.shape) - nd
    index = [f"{_IND}const I o{a} = t_ % z{a}; t_ /= z{a};" for a in range(nd - 1, -1, -1)]
    indices = any(n.op == "pool_indices" for n in region.nodes)
    window, store = _window(pool, x.dtype, indices)
    sizes = [f"l{a}" for a in range(nd)] + [f"z{a}" for a in range(nd)]
    text = fill("pool.cu", NAME=name, T=cuda.storage(x.dtype)[0], ND=nd, INDEX="\n".join(index),
                WINDOW=window, STORE=store, IDX_PARAM="long long* __restrict__ idx, " if indices else "",
                IDX_ARG="idx, " if indices else "", IDX_STORE="\n        idx[e] = (long long)arg;" if indices else "",
                SIZES=join_params([f"I {s}" for s in sizes]),
                SIZE_PARAMS=join_params([f"long long {s}" for s in sizes]),
                SIZE_ARGS_I32=join_params([f"(int){s}" for s in sizes]), SIZE_ARGS_I64=join_params(sizes))
    return KernelCode(text, _forward(ctx, region, name, lead), [f"{name}_i32", f"{name}_i64"])


def _extents(ctx: Ctx, region: Region, lead: int) -> tuple[list[str], list[str], list[str]]:
    """(Python lines: input and output extents from the input's runtime sizes, then the output
    tensor; the input extents' names; the output extents' names)."""
    pool = region.nodes[0]
    i, src, result = region.index, ctx.py(pool.args["self"]), ctx.py(pool)
    k, s, p, d = (pool.args[key] for key in ("kernel", "stride", "padding", "dilation"))
    lines, ins, outs = [], [], []
    for a in range(len(k)):
        size, out = f"l{i}_{a}", f"z{i}_{a}"
        lines.append(f"{size} = {src}.shape[{lead + a}]")
        lines += out_size_python(out, size, k[a], s[a], p[a], d[a], pool.args["ceil_mode"])
        ins.append(size)
        outs.append(out)
    shape = f"tuple({src}.shape[:{lead}]) + ({''.join(o + ', ' for o in outs)})"
    lines.append(f"{result} = torch.empty({shape}, dtype={cuda.TORCH_DTYPE[pool.dtype]}, device={src}.device)")
    return lines, ins, outs


def _forward(ctx: Ctx, region: Region, name: str, lead: int) -> list[str]:
    """Python lines: output extents from the input's runtime sizes, the output, the launch."""
    pool = region.nodes[0]
    i, src, result = region.index, ctx.py(pool.args["self"]), ctx.py(pool)
    lines, ins, outs = _extents(ctx, region, lead)
    outputs = [result]
    for node in region.nodes[1:]:  # the indices
        outputs.append(ctx.py(node))
        lines.append(f"{outputs[-1]} = torch.empty({result}.shape, dtype=torch.int64, device={src}.device)")
    lines += [
              f"n{i} = {result}.numel()",
              f"if n{i} > 0:",
              f'    kernel{i} = "{name}_i32" if n{i} < {I32_LIMIT} and {src}.numel() < {I32_LIMIT} else "{name}_i64"',
              f"    self.rules_mod.launch(kernel{i}, grid=(rules_grid(n{i}, BLOCK, self.rules_cap),), block=(BLOCK,), "
              f"args=({src}, {''.join(v + ', ' for v in outputs + ins + outs)}{' * '.join(ins)}, n{i}))"]
    return lines


# -- the strip form ------------------------------------------------------------------------------
# A thread computes ROWS outputs stacked along the second-to-last spatial dim (a compile-time
# define the tuner varies). Pooling is separable: each input row the strip's windows touch is
# reduced over the last dim's window once, into ``m``, and folded into every output whose
# window holds that row. For a 3 x 3 window at stride 2 a thread then reads 3 (ROWS + 2) cells
# for ROWS outputs, not 9 ROWS, and does one index split per strip, not per output.


def _strip_window(pool: Node, dtype: str) -> tuple[list[str], list[str], str]:
    """(CUDA lines leaving ``acc[r]`` per output of the strip, lines per output ``r`` before its
    store (avg: its divisor), the store expression of output ``r``)."""
    nd = len(pool.args["kernel"])
    k, s, p, d = (pool.args[name] for name in ("kernel", "stride", "padding", "dilation"))
    is_max = pool.args["kind"] == "max"
    a, last = nd - 2, nd - 1  # the strip's dim, the dim reduced first
    combine = "rules_max({x}, {y})" if is_max else "{x} + {y}"
    init = "RULES_NEG_INF" if is_max else "0.0f"
    span = f"((ROWS - 1) * {s[a]} + {(k[a] - 1) * d[a]} + 1)"  # input rows between the strip's first and last window
    lines = [f"{_IND}float acc[ROWS];",
             f"{_IND}#pragma unroll",
             f"{_IND}for (int r = 0; r < ROWS; ++r) acc[r] = {init};"]
    lines += [f"{_IND}const I h{b} = o{b} * (I){s[b]} - (I){p[b]};" for b in range(nd)]
    pad = _IND
    for b in range(a):  # dims before the strip's: swept as the window form does
        offset = f"i{b}" if b == 0 else f"r{b - 1} * l{b} + i{b}"
        lines += [f"{pad}#pragma unroll", f"{pad}for (int j{b} = 0; j{b} < {k[b]}; ++j{b}) {{"]
        pad += "    "
        lines.append(f"{pad}const I i{b} = h{b} + (I)(j{b} * {d[b]});")
        checks = (["i{b} < 0"] if p[b] > 0 else []) + (["i{b} >= l{b}"] if p[b] > 0 or pool.args["ceil_mode"] else [])
        if checks:
            lines.append(f"{pad}if ({' || '.join(c.format(b=b) for c in checks)}) continue;")
        lines.append(f"{pad}const I r{b} = {offset};")
    row = f"i{a}" if a == 0 else f"r{a - 1} * l{a} + i{a}"
    lines += [f"{pad}#pragma unroll",
              f"{pad}for (int u = 0; u < {span}; ++u) {{",
              # every test on u and r below is on constants once unrolled: rows no window holds are skipped
              f"{pad}    bool used = false;",
              f"{pad}    #pragma unroll",
              f"{pad}    for (int r = 0; r < ROWS; ++r) {{ const int q = u - r * {s[a]}; "
              f"used |= q >= 0 && q % {d[a]} == 0 && q / {d[a]} < {k[a]}; }}",
              f"{pad}    if (!used) continue;",
              f"{pad}    const I i{a} = h{a} + (I)u;",
              # rows past the input also come from strip outputs past the end: always tested
              f"{pad}    if ({'i%d < 0 || ' % a if p[a] > 0 else ''}i{a} >= l{a}) continue;",
              f"{pad}    const I r{a} = {row};",
              f"{pad}    float m = {init};",
              f"{pad}    #pragma unroll",
              f"{pad}    for (int j{last} = 0; j{last} < {k[last]}; ++j{last}) {{",
              f"{pad}        const I i{last} = h{last} + (I)(j{last} * {d[last]});"]
    checks = (["i{b} < 0"] if p[last] > 0 else []) + (["i{b} >= l{b}"] if p[last] > 0 or pool.args["ceil_mode"] else [])
    if checks:
        lines.append(f"{pad}        if ({' || '.join(c.format(b=last) for c in checks)}) continue;")
    value = cuda.widen(dtype, f"in[r{a} * l{last} + i{last}]")
    lines += [f"{pad}        m = {combine.format(x='m', y=value)};",
              f"{pad}    }}",
              f"{pad}    #pragma unroll",
              f"{pad}    for (int r = 0; r < ROWS; ++r) {{",
              f"{pad}        const int q = u - r * {s[a]};",
              f"{pad}        if (q >= 0 && q % {d[a]} == 0 && q / {d[a]} < {k[a]}) acc[r] = {combine.format(x='acc[r]', y='m')};",
              f"{pad}    }}",
              f"{pad}}}"]
    for b in range(a - 1, -1, -1):
        pad = pad[:-4]
        lines.append(f"{pad}}}")
    if is_max:
        return lines, [], cuda.narrow(dtype, "acc[r]")
    # the divisor per output: the strip's dim starts s rows further down for each r
    divisor = [line.replace(f"h{a}", f"hr{a}") for line in _divisor(pool)]
    per_output = [f"{_IND}const I hr{a} = h{a} + (I)(r * {s[a]});"] + divisor
    return lines, per_output, cuda.narrow(dtype, "acc[r] / (float)div")


def _generate_strip(ctx: Ctx, region: Region) -> KernelCode:
    name = ctx.kernel_name(region)
    pool = region.nodes[0]
    x = pool.args["self"]
    nd = len(pool.args["kernel"])
    lead = len(x.shape) - nd
    a, last = nd - 2, nd - 1
    index = [f"{_IND}const I o{last} = t_ % z{last}; t_ /= z{last};",
             f"{_IND}const I o{a} = (t_ % g) * (I)ROWS; t_ /= g;"]
    index += [f"{_IND}const I o{b} = t_ % z{b}; t_ /= z{b};" for b in range(a - 1, -1, -1)]
    window, per_output, store = _strip_window(pool, x.dtype)
    # out: the strip's first output, then one output row (z_last) further per r
    first = "t_"
    for b in range(nd):
        first = f"({first} * z{b} + o{b})"
    body = "\n".join([*index, f"{_IND}const ${{T}}* __restrict__ in = src + t_ * plane;", *window,
                      f"{_IND}const I first = {first};",
                      f"{_IND}#pragma unroll",
                      f"{_IND}for (int r = 0; r < ROWS; ++r) {{",
                      f"{_IND}    if (o{a} + r >= z{a}) break;",
                      *[f"    {line}" for line in per_output],
                      f"{_IND}    dst[first + (I)r * z{last}] = {store};",
                      f"{_IND}}}"])
    sizes = [f"l{b}" for b in range(nd)] + [f"z{b}" for b in range(nd)] + ["g"]
    text = fill("pool_strip.cu", NAME=name, T=cuda.storage(x.dtype)[0], ND=nd,
                BODY=body.replace("${T}", cuda.storage(x.dtype)[0]),
                SIZES=join_params([f"I {v}" for v in sizes]),
                SIZE_PARAMS=join_params([f"long long {v}" for v in sizes]),
                SIZE_ARGS_I32=join_params([f"(int){v}" for v in sizes]), SIZE_ARGS_I64=join_params(sizes))
    return KernelCode(text, _forward_strip(ctx, region, name, lead), [f"{name}_i32", f"{name}_i64"])


def _forward_strip(ctx: Ctx, region: Region, name: str, lead: int) -> list[str]:
    """Python lines: output extents, the output, a thread per strip of ROWS outputs."""
    pool = region.nodes[0]
    i, src, result = region.index, ctx.py(pool.args["self"]), ctx.py(pool)
    lines, ins, outs = _extents(ctx, region, lead)
    strip = outs[-2]
    lines += [f"g{i} = -(-{strip} // ROWS)",  # strips along the second-to-last dim
              f"n{i} = {result}.numel() // max(1, {strip}) * g{i}",
              f"if {result}.numel() > 0:",
              f'    kernel{i} = "{name}_i32" if {result}.numel() < {I32_LIMIT} and {src}.numel() < {I32_LIMIT} else "{name}_i64"',
              f"    self.rules_mod.launch(kernel{i}, grid=(rules_grid(n{i}, BLOCK, self.rules_cap),), block=(BLOCK,), "
              f"args=({src}, {result}, {''.join(v + ', ' for v in ins + outs)}g{i}, {' * '.join(ins)}, n{i}))"]
    return lines
