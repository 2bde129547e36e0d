"""Single-query decode attention over a KV cache (see attention_decode.cu)."""

from __future__ import annotations

from evolution.proposers.rules import cuda
from evolution.proposers.rules.codegen import Ctx, KernelCode, fill
from evolution.proposers.rules.ir import Scalar, Unsupported
from evolution.proposers.rules.plan import Region


def generate(ctx: Ctx, region: Region) -> KernelCode:
    node = region.nodes[0]
    q, k, v = (node.args[n] for n in ("q", "k", "v"))
    if node.shape != q.shape:
        raise Unsupported("decode attention whose output is shaped unlike the query", node.line)
    name = ctx.kernel_name(region)
    t = cuda.storage(q.dtype)[0]
    to = cuda.storage(node.dtype)[0]
    if not cuda.vector_ok(q.dtype):
        raise Unsupported(f"decode attention on {q.dtype}", node.line)
    text = fill("attention_decode.cu", NAME=name, T=t, TO=to, LOAD=f"load_{cuda.storage(q.dtype)[1]}",
                NARROW_O=cuda.narrow(node.dtype, "o / S"))
    split = ctx.variant.get(region.index, {}).get("mode", "block") == "split"
    i = region.index
    qs, ks, vs, out = ctx.py(q), ctx.py(k), ctx.py(v), ctx.py(node)
    scale = node.args["scale"]
    if node.args.get("scale_is_rsqrt_d"):
        scale_py = f"1.0 / math.sqrt(D{i})"
    elif isinstance(scale, Scalar):
        scale_py = f"float({scale.ref.python()})"
    else:
        scale_py = repr(float(scale))
    lines = [
        f"D{i} = {qs}.shape[-1]",
        f"L{i} = {ks}.shape[-2]",
        f"BH{i} = {qs}.numel() // D{i} if D{i} else 0",
        f"{out} = torch.empty({qs}.shape, dtype={cuda.TORCH_DTYPE[node.dtype]}, device={qs}.device)",
        f"assert D{i} <= MAXD and {ks}.shape == {vs}.shape and {ks}.numel() == BH{i} * L{i} * D{i}, "
        "'decode attention: head_dim over MAXD or KV cache not [batch, heads, len, head_dim]'",
        f"if BH{i} > 0 and L{i} > 0:",
        f"    vec{i} = VEC > 1 and D{i} % VEC == 0 and rules_aligned(VEC, {qs}, {ks}, {vs})",
    ]
    if split:
        lines += [
            f"    splits{i} = max(1, min(L{i} // 64, -(-self.rules_cap // (BH{i} * max(1, 2048 // BLOCK)))))",
            f"    chunk{i} = -(-L{i} // splits{i})",
            f"    splits{i} = -(-L{i} // chunk{i})",
        ]
    else:
        lines += [f"    splits{i} = 1", f"    chunk{i} = L{i}"]
    lines += [
        f"    part{i} = torch.empty(BH{i} * splits{i} * (D{i} + 2) if splits{i} > 1 else 1, dtype=torch.float32, "
        f"device={qs}.device)",
        f'    self.rules_mod.launch("{name}_main", grid=(BH{i}, splits{i}), block=(BLOCK,), '
        f"args=({qs}, {ks}, {vs}, {out}, part{i}, {scale_py}, L{i}, D{i}, chunk{i}, int(vec{i})))",
        f"    if splits{i} > 1:",
        f'        self.rules_mod.launch("{name}_combine", grid=(BH{i},), block=(BLOCK,), '
        f"args=(part{i}, {out}, splits{i}, D{i}))",
    ]
    return KernelCode(text, lines, [f"{name}_main", f"{name}_combine"])
