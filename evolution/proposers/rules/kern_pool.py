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


def generate(ctx: Ctx, region: Region) -> KernelCode:
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


def _forward(ctx: Ctx, region: Region, name: str, lead: int) -> list[str]:
    """Python lines: output extents from the input's runtime sizes, the output, the launch."""
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
