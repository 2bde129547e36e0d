"""GEMM regions: C[z] = A[z] @ B[z] for ``mm`` / ``bmm`` / ``mv`` / ``addmm`` (its bias is a
pointwise region after), with the operands read in place (``gemm_layout``: every transpose,
flattening or broadcast batch folded into three strides per operand) by the tiled SIMT kernel of
``templates/gemm.cu``.

Every size and stride is computed in ``forward`` from the operands' runtime shapes (the bases
are contiguous: inputs are asserted so, other regions write contiguous tensors), and so is
each operand's load mode: 16-byte vectors along k or along m / n where that dim has stride 1
and the pointer and the other strides are aligned, scalar otherwise. The tile shape and the
split-K bound are defines (``variants``); the host picks the split from K.
"""

from __future__ import annotations

from typing import Any

from evolution.proposers.rules import cuda
from evolution.proposers.rules.codegen import Ctx, KernelCode, fill
from evolution.proposers.rules.ir import Unsupported
from evolution.proposers.rules.plan import Region

# (BM, BN, BK, TM, TN) per tile config: 256 threads each but ``narrow`` (128). ``narrow``
# (few columns: matrix-vector) and ``wide`` (few rows: a decode step's activations times a
# weight) keep the idle part of a tile small; split-K then fills the GPU.
TILES = {
    "large": (128, 128, 8, 8, 8),
    "medium": (64, 64, 16, 4, 4),
    "small": (32, 32, 16, 2, 2),
    "narrow": (128, 16, 16, 4, 4),
    "wide": (8, 64, 32, 1, 2),
}
# What optuna searches around each config. Every combination must compile: at most 1024
# threads (BM * BN / (TM * TN)) and 48 KB of static shared memory (2 * BK * (BM + BN + 8)
# floats), both checked by test_gemm.
SPACES = {
    "square": {"GEMM_BM": [64, 128], "GEMM_BN": [64, 128], "GEMM_BK": [8, 16], "GEMM_TM": [4, 8], "GEMM_TN": [4, 8]},
    "small": {"GEMM_BM": [16, 32, 64], "GEMM_BN": [16, 32, 64], "GEMM_BK": [8, 16], "GEMM_TM": [2, 4],
              "GEMM_TN": [2, 4]},
    "narrow": {"GEMM_BM": [64, 128], "GEMM_BN": [8, 16, 32], "GEMM_BK": [8, 16], "GEMM_TM": [4, 8],
               "GEMM_TN": [2, 4]},
    "wide": {"GEMM_BM": [8, 16], "GEMM_BN": [64, 128], "GEMM_BK": [16, 32], "GEMM_TM": [1, 2], "GEMM_TN": [2, 4]},
}
SPACE_OF = {"large": "square", "medium": "square", "small": "small", "narrow": "narrow", "wide": "wide"}
_SMS = 132  # sizing guesses only (H100 / H200)


def _size(base: str, group: Any) -> str:
    return " * ".join(f"{base}.shape[{d}]" for d in group) if group else "1"


def _stride(base: str, group: Any) -> str:
    """The stride of a group of a contiguous base's consecutive dims (0 for size 1 / broadcast)."""
    return f"math.prod({base}.shape[{group[-1] + 1}:])" if group else "0"


def _mask(tri: tuple[str, int] | None) -> tuple[str, str]:
    """(CUDA statement zeroing ``v`` where a fused triu / tril masks element (m, n); the body of
    the test that a whole tile (m0, n0) is masked)."""
    if tri is None:
        return "", "(void)m0; (void)n0; return false;"
    kind, d = tri
    if kind == "triu":  # kept where n - m >= d
        return (f"                if (n0 + c - m < (long long){d}) v = 0.0f;",
                f"return n0 + GEMM_BN - 1 - m0 < (long long){d};")
    return (f"                if (n0 + c - m > (long long){d}) v = 0.0f;",
            f"return n0 - (m0 + GEMM_BM - 1) > (long long){d};")


def generate(ctx: Ctx, region: Region) -> KernelCode:
    name = ctx.kernel_name(region)
    node = region.nodes[0]
    a_node, b_node = node.args["self"], node.args["mat2"]
    dtype = node.dtype
    if a_node.dtype != dtype or b_node.dtype != dtype:
        raise Unsupported("a GEMM whose operands and result differ in dtype", node.line)
    ctype, suffix, size = cuda.storage(dtype)
    vec = 16 // size
    mask, tile_masked = _mask(node.args["tri"])
    entries, kernels = _entries(name, ctype)
    text = fill("gemm.cu", NAME=name, TA=ctype, TB=ctype, TC=ctype, V=vec, LOADV=f"load_{suffix}<V>",
                WIDEN=cuda.widen(dtype, "").removesuffix("()") if dtype != "float32" else "",
                NARROW=cuda.narrow(dtype, "v"), MASK=mask, TILE_MASKED=tile_masked, ENTRIES=entries)
    return KernelCode(text, _forward(ctx, region, name, vec), kernels + [f"{name}_sum"])


# load mode letters: s scalar, k vectors along k, x vectors along m / n -> (SCALAR, VX) template flags
_MODES = {"s": ("true", "false"), "k": ("false", "false"), "x": ("false", "true")}


def _entries(name: str, ctype: str) -> tuple[str, list[str]]:
    """The kernels' CUDA text (one per pair of load modes, and a split-K one per pair of vector
    modes) and their names."""
    texts, names = [], []
    for partial in (False, True):
        for a, (sa, va) in _MODES.items():
            for b, (sb, vb) in _MODES.items():
                if partial and "s" in (a, b):
                    continue
                kname = f"{name}_{a}{b}" + ("_partial" if partial else "")
                out = "float* __restrict__ W" if partial else f"{ctype}* __restrict__ C"
                extra = ", int split, long long kchunk" if partial else ""
                call = ("nullptr, W" if partial else "C, nullptr") + (", split, kchunk" if partial else ", 1, K")
                # vector kernels: capped at 128 registers (2 blocks of 256 threads per SM); the
                # scalar ones (~170 registers) would spill under the cap, and are the rare path
                bounds = f"{name}_NT" if "s" in (a, b) else f"{name}_NT, {name}_MINB"
                texts.append(
                    f'extern "C" __global__ void __launch_bounds__({bounds})\n'
                    f"{kname}(const {ctype}* __restrict__ A, const {ctype}* __restrict__ B, {out}, long long M, "
                    f"long long N, long long K,\n    long long batch, long long sab, long long sam, long long sak, "
                    f"long long sbb, long long sbk, long long sbn, int axa, int axb{extra})\n"
                    f"{{\n    {name}_SMEM;\n"
                    f"    {name}_body<{sa}, {va}, {sb}, {vb}, {'true' if partial else 'false'}>(A, B, {call.split(', ')[0]}, "
                    f"{call.split(', ')[1]}, M, N, K, batch, sab, sam, sak, sbb, sbk, sbn, axa != 0, axb != 0, "
                    f"{', '.join(call.split(', ')[2:])}, sA, sB);\n}}\n")
                names.append(kname)
    return "\n".join(texts), names


def _mode(i: int, op: str, base: str, x: str, k: str, b: str, vec: int) -> str:
    """Python: the load mode of operand ``op`` (1 / 3: vectors along k / along m or n; 0 / 2:
    scalar with k / m or n consecutive across threads). ``x``, ``k``, ``b``: its (stride, size)
    variables along m or n, k and the batch."""
    aligned = f"{base}.data_ptr() % 16 == 0"
    batch = f"(s{op}b{i} % {vec} == 0 or bt{i} == 1)"
    return (f"m{op}{i} = (1 if s{op}{k}{i} == 1 and (s{op}{x}{i} % {vec} == 0 or {x}{i} == 1) and {batch} and {aligned} "
            f"else 3 if s{op}{x}{i} == 1 and (s{op}{k}{i} % {vec} == 0 or k{i} == 1) and {batch} and {aligned} "
            f"else 0 if s{op}{k}{i} <= s{op}{x}{i} else 2)")


def _forward(ctx: Ctx, region: Region, name: str, vec: int) -> list[str]:
    node = region.nodes[0]
    i = region.index
    a, b, out = ctx.py(node.args["self"]), ctx.py(node.args["mat2"]), ctx.py(node)
    ga, gb = node.args["ga"], node.args["gb"]
    batch = _size(a, ga[0]) if ga[0] else _size(b, gb[0]) if gb[0] else "1"
    sizes = {"a": a, "b": b}
    shape = [" * ".join(f"{sizes[op]}.shape[{d}]" for op, d in group) if group else "1" for group in node.args["out"]]
    torch_dtype = cuda.TORCH_DTYPE[node.dtype]
    launch = "self.rules_mod.launch"
    args = f"bt{i}, sab{i}, sam{i}, sak{i}, sbb{i}, sbk{i}, sbn{i}, int(ma{i} == 2), int(mb{i} == 2)"
    letters = "'sksx'"  # load mode -> the kernel name's letter (see _entries)
    return [
        f"bt{i}, m{i}, n{i}, k{i} = {batch}, {_size(a, ga[1])}, {_size(b, gb[2])}, {_size(a, ga[2])}",
        f"sab{i}, sam{i}, sak{i} = {_stride(a, ga[0])}, {_stride(a, ga[1])}, {_stride(a, ga[2])}",
        f"sbb{i}, sbk{i}, sbn{i} = {_stride(b, gb[0])}, {_stride(b, gb[1])}, {_stride(b, gb[2])}",
        f"{out} = torch.empty(({''.join(s + ', ' for s in shape)}), dtype={torch_dtype}, device={a}.device)",
        f"if bt{i} * m{i} * n{i} > 0:",
        "    " + _mode(i, "a", a, "m", "k", "b", vec),
        "    " + _mode(i, "b", b, "n", "k", "b", vec),
        f"    kernel{i} = '{name}_' + {letters}[ma{i}] + {letters}[mb{i}]",
        # split-K: at most GEMM_SPLITK slices of at least 4 k-steps each, whole k-steps; only
        # where both operands load as vectors (the only split kernels compiled)
        f"    split{i} = max(1, min(GEMM_SPLITK, k{i} // (4 * GEMM_BK))) if ma{i} % 2 and mb{i} % 2 else 1",
        f"    chunk{i} = -(-k{i} // (split{i} * GEMM_BK)) * GEMM_BK",
        f"    split{i} = -(-k{i} // chunk{i}) if chunk{i} > 0 else 1",
        f"    grid{i} = (-(-m{i} // GEMM_BM) * -(-n{i} // GEMM_BN), min(bt{i} * split{i}, 65535))",
        f"    threads{i} = (GEMM_BM // GEMM_TM) * (GEMM_BN // GEMM_TN)",
        f"    if split{i} == 1:",
        f"        {launch}(kernel{i}, grid=grid{i}, block=(threads{i},), "
        f"args=({a}, {b}, {out}, m{i}, n{i}, k{i}, {args}))",
        "    else:",
        f"        w{i} = torch.empty((split{i}, bt{i}, m{i}, n{i}), dtype=torch.float32, device={a}.device)",
        f"        {launch}(kernel{i} + '_partial', grid=grid{i}, block=(threads{i},), "
        f"args=({a}, {b}, w{i}, m{i}, n{i}, k{i}, {args}, split{i}, chunk{i}))",
        f"        {launch}('{name}_sum', grid=(rules_grid(bt{i} * m{i} * n{i}, BLOCK, self.rules_cap),), block=(BLOCK,), "
        f"args=(w{i}, {out}, bt{i} * m{i} * n{i}, split{i}))",
    ]


def options(region: Region) -> list[tuple[str, dict[str, Any]]]:
    """Tile configs, the best guess first: large tiles where C has enough of them to fill the
    GPU, smaller ones (more blocks) below that, a narrow tile for matrix-vector shapes."""
    node = region.nodes[0]
    ga, gb = node.args["ga"], node.args["gb"]
    a, b = node.args["self"], node.args["mat2"]
    m = _traced(a, ga[1])
    n = _traced(b, gb[2])
    batch = _traced(a, ga[0]) if ga[0] else _traced(b, gb[0]) if gb[0] else 1
    if m <= 16:
        order = ["wide", "small", "medium"]
    elif n <= 16:
        order = ["narrow", "small", "medium"]
    elif batch * -(-m // 128) * -(-n // 128) >= _SMS:
        order = ["large", "medium", "small"]
    elif batch * -(-m // 64) * -(-n // 64) >= _SMS:
        order = ["medium", "large", "small"]
    else:
        order = ["small", "medium", "large"]
    return [(label, {"mode": label}) for label in order]


def _traced(node: Any, group: Any) -> int:
    out = 1
    for d in group or ():
        out *= node.shape[d]
    return out


def defines(region: Region, choice: dict[str, Any]) -> tuple[dict[str, int], dict[str, list]]:
    """The tile config's defines; split-K up to 8 slices where C's tiles cannot fill the GPU
    and K is long (the host still splits only K of 4+ k-steps per slice)."""
    node = region.nodes[0]
    ga, gb = node.args["ga"], node.args["gb"]
    a, b = node.args["self"], node.args["mat2"]
    bm, bn, bk, tm, tn = TILES[choice["mode"]]
    m, n, k = _traced(a, ga[1]), _traced(b, gb[2]), _traced(a, ga[2])
    batch = _traced(a, ga[0]) if ga[0] else _traced(b, gb[0]) if gb[0] else 1
    blocks = batch * -(-m // bm) * -(-n // bn)
    split = 1
    while split < 8 and blocks * split * 2 <= 2 * _SMS and k >= split * 2 * 4 * bk:
        split *= 2
    # BLOCK: the split-K sum kernel's threads (and the other regions' default)
    params = {"GEMM_BM": bm, "GEMM_BN": bn, "GEMM_BK": bk, "GEMM_TM": tm, "GEMM_TN": tn, "GEMM_SPLITK": split,
              "BLOCK": 256}
    space = dict(SPACES[SPACE_OF[choice["mode"]]], GEMM_SPLITK=[1, 2, 4, 8, 16])
    return params, space
