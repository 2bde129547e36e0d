"""Direct-convolution regions (strict policy): ``nn.Conv1d/2d/3d`` and ``nn.ConvTranspose1d/2d/3d``
(``aten.convolution``: stride, padding, dilation, output_padding, groups, bias) as a kernel of
the rules' own, since a strict task may not leave the convolution to cuDNN.

A thread computes ``COUT_PER_THREAD`` output channels (of one group) at ``POS_PER_THREAD``
consecutive positions along the last dim: out[n, co, o] = bias[co] + sum over the group's input
channels ci and the window's taps k of x[n, ci, o*s - p + k*d] * w[co, ci_local, k] (taps outside
the input are skipped, i.e. zero padding; the padding before and after a dim may differ where a
zero ``constant_pad_nd`` folded in), or for the transposed form (its gather: an output reads the
inputs whose scatter reaches it) x[n, ci, i] * w[ci, co_local, k] over the taps where
o + p - k*d = i*s with i inside the input. The window geometry is compiled in (the tap loops
unroll; the weight's spatial size and the module's settings are checked at run time); batch,
channels and spatial extents are read from the tensors, and the output extents follow PyTorch's
formulas.
"""

from __future__ import annotations

import math
from typing import Any

from evolution.proposers.rules import cuda
from evolution.proposers.rules.codegen import I32_LIMIT, Ctx, KernelCode, fill, join_params
from evolution.proposers.rules.ir import AttrRef, Node
from evolution.proposers.rules.plan import Region

_IND = " " * 12


def _cout_g(conv: Node) -> int:
    """Output channels per group, at the traced shape."""
    w = conv.args["weight"]
    return w.shape[1] if conv.args["transposed"] else w.shape[0] // conv.args["groups"]


def options(region: Region) -> list[tuple[str, dict[str, Any]]]:
    """Structural variants: channels per thread. Several reuse each x load (registers allowing);
    one is all a depthwise convolution (one channel per group) can use."""
    cout_g = _cout_g(region.nodes[0])
    if cout_g == 1:
        return [("direct", {"cpt": 1})]
    wide = 4 if cout_g >= 4 else 2
    opts = [(f"cout{wide}", {"cpt": wide}), ("direct", {"cpt": 1})]
    return opts if cout_g >= 8 else opts[::-1]


def defines(region: Region, choice: dict[str, Any]) -> tuple[dict[str, int], dict[str, list]]:
    """A thread per channel block at POS_PER_THREAD positions; BLOCK and WAVES shape the launch only."""
    cout_g = _cout_g(region.nodes[0])
    per_thread = [c for c in (1, 2, 4, 8) if c == 1 or c <= cout_g]
    # POS_PER_THREAD > 1 (each weight load serving that many positions) is searched, not the
    # default, until it is measured on a GPU.
    return ({"BLOCK": 256, "WAVES": 4, "COUT_PER_THREAD": choice["cpt"], "POS_PER_THREAD": 1},
            {"BLOCK": [128, 256, 512], "WAVES": [1, 4, 16], "COUT_PER_THREAD": per_thread,
             "POS_PER_THREAD": [1, 2, 4]})


def _window(conv: Node, dtype: str) -> tuple[list[str], list[str]]:
    """(CUDA lines before the channel loop, the tap loops inside it accumulating ``acc``). The
    last dim's taps load the COUT_PER_THREAD weights once for the thread's POS_PER_THREAD
    positions (``o{last} + q``)."""
    k, s, p, d, pe = (conv.args[name] for name in ("kernel", "stride", "padding", "dilation", "padding_end"))
    nd = len(k)
    last = nd - 1
    transposed = conv.args["transposed"]
    setup = [f"        const I h{a} = o{a}{'' if transposed else f' * (I){s[a]}'} "
             f"{'+' if transposed else '-'} (I){p[a]};" for a in range(nd)]
    lines, pad = [], _IND
    for a in range(nd):
        lines.append(f"{pad}#pragma unroll")
        lines.append(f"{pad}for (int j{a} = 0; j{a} < {k[a]}; ++j{a}) {{")
        pad += "    "
        if a == last:  # this tap's weights, then the thread's positions along the last dim
            tap = "j0"
            for b in range(1, nd):
                tap = f"({tap}) * {k[b]} + j{b}"
            lines.append(f"{pad}float wv[COUT_PER_THREAD];")
            lines.append(f"{pad}#pragma unroll")
            lines.append(f"{pad}for (int j = 0; j < COUT_PER_THREAD; ++j) "
                         f"wv[j] = {cuda.widen(dtype, f'wc[wo[j] + (I)({tap})]')};")
            lines.append(f"{pad}#pragma unroll")
            lines.append(f"{pad}for (int q = 0; q < POS_PER_THREAD; ++q) {{")
            pad += "    "
        if transposed:  # o + p - j*d must be a multiple of the stride, the quotient inside the input
            shift = f"(I)(q - j{a} * {d[a]})" if a == last else f"(I)(-j{a} * {d[a]})"
            lines.append(f"{pad}const I t{a} = h{a} + {shift};")
            checks = [f"t{a} < 0"] + ([f"t{a} % (I){s[a]} != 0"] if s[a] > 1 else [])
            lines.append(f"{pad}if ({' || '.join(checks)}) continue;")
            lines.append(f"{pad}const I i{a} = t{a}{f' / (I){s[a]}' if s[a] > 1 else ''};")
            lines.append(f"{pad}if (i{a} >= l{a}) continue;")
        else:  # without padding on a side no tap of an output PyTorch sizes lies past that side
            shift = f"(I)(q * {s[a]} + j{a} * {d[a]})" if a == last else f"(I)(j{a} * {d[a]})"
            lines.append(f"{pad}const I i{a} = h{a} + {shift};")
            # (a position past the output's end, in the last block along the last dim, may reach past it)
            past = f"i{a} >= l{a}" if pe[a] > 0 else (f"(POS_PER_THREAD > 1 && i{a} >= l{a})" if a == last else "")
            checks = ([f"i{a} < 0"] if p[a] > 0 else []) + ([past] if past else [])
            if checks:
                lines.append(f"{pad}if ({' || '.join(checks)}) continue;")
        lines.append(f"{pad}const I r{a} = {f'i{a}' if a == 0 else f'r{a - 1} * l{a} + i{a}'};")
    lines.append(f"{pad}const float xv = {cuda.widen(dtype, f'xc[r{last}]')};")
    lines.append(f"{pad}#pragma unroll")
    lines.append(f"{pad}for (int j = 0; j < COUT_PER_THREAD; ++j) acc[q][j] += xv * wv[j];")
    for _ in range(nd + 1):
        pad = pad[:-4]
        lines.append(f"{pad}}}")
    return setup, lines


def generate(ctx: Ctx, region: Region) -> KernelCode:
    name = ctx.kernel_name(region)
    conv = region.nodes[0]
    dtype = conv.dtype
    nd = len(conv.args["kernel"])
    taps = math.prod(conv.args["kernel"])
    if conv.args["transposed"]:  # w: [Cin, Cout / G, *k]
        w_base, w_ci, w_j = f"(g * cin_g * cout_g + c0) * (I){taps}", f"cout_g * (I){taps}", f"(I){taps}"
    else:  # w: [Cout, Cin / G, *k]
        w_base, w_ci, w_j = f"(g * cout_g + c0) * cin_g * (I){taps}", f"(I){taps}", f"cin_g * (I){taps}"
    has_bias = conv.args["bias"] is not None
    acc = "acc[q][j] + " + cuda.widen(dtype, "bias[g * cout_g + c0 + (I)j]") if has_bias else "acc[q][j]"
    setup, window = _window(conv, dtype)
    last = nd - 1
    index = [f"        const I o{last} = (t_ % zq) * (I)POS_PER_THREAD; t_ /= zq;"]
    index += [f"        const I o{a} = t_ % z{a}; t_ /= z{a};" for a in range(nd - 2, -1, -1)]
    sp = "o0"
    for a in range(1, nd):
        sp = f"({sp}) * z{a} + o{a}"
    sizes = [f"l{a}" for a in range(nd)] + [f"z{a}" for a in range(nd)]
    t = cuda.storage(dtype)[0]
    what = ("Transposed convolution (the gather form)" if conv.args["transposed"] else "Convolution") + \
        f" (window {list(conv.args['kernel'])}, groups {conv.args['groups']})"
    text = fill("conv.cu", NAME=name, T=t, ND=nd, WHAT=what, GROUPS=conv.args["groups"], INDEX="\n".join(index),
                SETUP="\n".join(setup), WINDOW="\n".join(window), STORE=cuda.narrow(dtype, acc), SP=sp,
                LAST_POS=f"o{last}", LAST_EXT=f"z{last}",
                W_BASE=w_base, W_CI=w_ci, W_J=w_j,
                BIAS_PARAM=f"const {t}* __restrict__ bias, " if has_bias else "", BIAS_ARG="bias, " if has_bias else "",
                SIZES=join_params([f"I {s}" for s in sizes]),
                SIZE_PARAMS=join_params([f"long long {s}" for s in sizes]),
                SIZE_ARGS_I32=join_params([f"(int){s}" for s in sizes]), SIZE_ARGS_I64=join_params(sizes))
    return KernelCode(text, _forward(ctx, region, name), [f"{name}_i32", f"{name}_i64"])


def _signed(v: int) -> str:
    """`` + v`` / `` - v`` (nothing for 0), to append to a Python expression."""
    return f" {'-' if v < 0 else '+'} {abs(v)}" if v else ""


def _forward(ctx: Ctx, region: Region, name: str) -> list[str]:
    """Python lines: the run-time checks of what is compiled in, the output's extents from the
    input's sizes (PyTorch's formulas), the output, the launch."""
    conv = region.nodes[0]
    i, x, w, out = region.index, ctx.py(conv.args["input"]), ctx.py(conv.args["weight"]), ctx.py(conv)
    k, s, p, d, op, pe = (conv.args[key] for key in ("kernel", "stride", "padding", "dilation", "output_padding",
                                                      "padding_end"))
    groups, transposed = conv.args["groups"], conv.args["transposed"]
    cig, cog, nblk, n = f"cig{i}", f"cog{i}", f"nblk{i}", f"n{i}"
    c = 0 if conv.args["unbatched"] else 1  # x's channel dim (an unbatched input is [C, *spatial])
    batch = "1" if c == 0 else f"{x}.shape[0]"
    if transposed:
        lines = [f"{cig}, {cog} = {x}.shape[{c}] // {groups}, {w}.shape[1]",
                 f"assert {w}.shape[0] == {x}.shape[{c}] == {groups} * {cig} and tuple({w}.shape[2:]) == {tuple(k)}, "
                 f"'the rules compiled in a transposed convolution of window {list(k)} and {groups} group(s)'"]
    else:
        lines = [f"{cig}, {cog} = {w}.shape[1], {w}.shape[0] // {groups}",
                 f"assert {x}.shape[{c}] == {groups} * {cig} and {w}.shape[0] == {groups} * {cog} and "
                 f"tuple({w}.shape[2:]) == {tuple(k)}, "
                 f"'the rules compiled in a convolution of window {list(k)} and {groups} group(s)'"]
    if conv.args["geometry"] is not None:
        path, settings = conv.args["geometry"]
        mod = AttrRef(path + ".x").python()[: -len(".x")] if path else "self"
        lines.append(f"assert ({mod}.stride, {mod}.padding, {mod}.dilation, {mod}.groups, {mod}.output_padding) == "
                     f"{settings}, {'the rules compiled in the settings of this convolution: ' + settings!r}")
    ins, outs = [], []
    for a in range(len(k)):
        size, ext = f"l{i}_{a}", f"z{i}_{a}"
        lines.append(f"{size} = {x}.shape[{c + 1 + a}]")
        if transposed:
            lines.append(f"{ext} = ({size} - 1) * {s[a]}{_signed(d[a] * (k[a] - 1) + op[a] + 1 - 2 * p[a])}")
        else:
            lines.append(f"{ext} = ({size}{_signed(p[a] + pe[a] - d[a] * (k[a] - 1) - 1)}) // {s[a]} + 1")
        ins.append(size)
        outs.append(ext)
    bias = conv.args["bias"]
    tensors = [x, w] + ([ctx.py(bias)] if bias is not None else []) + [out]
    lines += [f"{out} = torch.empty(({batch + ', ' if c else ''}{groups} * {cog}, {''.join(o + ', ' for o in outs)}), "
              f"dtype={cuda.TORCH_DTYPE[conv.dtype]}, device={x}.device)",
              f"{nblk} = -(-{cog} // COUT_PER_THREAD)",
              f"zq{i} = -(-{outs[-1]} // POS_PER_THREAD)",
              f"{n} = {batch} * {groups} * {nblk} * {''.join(o + ' * ' for o in outs[:-1])}zq{i}",
              f"if {n} > 0:",
              f'    kernel{i} = "{name}_i32" if max({n}, {", ".join(t + ".numel()" for t in tensors)}) < {I32_LIMIT} '
              f'else "{name}_i64"',
              f"    self.rules_mod.launch(kernel{i}, grid=(rules_grid({n}, BLOCK, self.rules_cap),), block=(BLOCK,), "
              f"args=({', '.join(tensors)}, {''.join(v + ', ' for v in ins + outs)}zq{i}, {cig}, {cog}, {nblk}, "
              f"{' * '.join(ins)}, {' * '.join(outs)}, {n}))"]
    return lines
