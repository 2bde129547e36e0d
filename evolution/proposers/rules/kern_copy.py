"""Copy regions: a transposed, permuted, strided-slice or selected view (``plan.STRIDED``) made
a contiguous tensor, for the kernels that read every operand in their own memory order.

The view is taken in Python (``x.permute(0, 2, 1)``, ``x[:, 1::2]``: views, no compute) and the
kernel gathers its elements through the view's runtime sizes and strides, so the sizes are
never the traced ones. It costs one read and one write of the view more than a kernel
addressing the view in place would (``lower`` avoids it for a reduction over a permute whose
kept dims keep their order).
"""

from __future__ import annotations

from evolution.proposers.rules import cuda
from evolution.proposers.rules.codegen import I32_LIMIT, Ctx, KernelCode, fill, join_params
from evolution.proposers.rules.ir import Node, Unsupported
from evolution.proposers.rules.plan import STRIDED, Region

BLOCK = 256  # threads per block: the kernel is one load and one store per element
_OPEN_END = 1 << 62  # a slice end at or past this is "to the end" (Python's x[a::s])


def _bound(value: int | None, default: int) -> str:
    return "" if value is None or value == default or (default == _OPEN_END and value >= _OPEN_END) else str(value)


def view_python(ctx: Ctx, node: Node) -> str:
    """Python expression of the view ``node`` (a chain of ``STRIDED`` ops over a value)."""
    x = node.args["self"]
    base = view_python(ctx, x) if x.op in STRIDED and x.id not in ctx.plan.producer else ctx.py(x)
    if node.op == "t":
        return f"{base}.t()"
    if node.op == "transpose":
        return f"{base}.transpose({node.args['dim0']}, {node.args['dim1']})"
    if node.op == "permute":
        return f"{base}.permute({', '.join(str(d) for d in node.args['dims'])})"
    if node.op == "select":
        return f"{base}.select({node.args['dim']}, {node.args['index']})"
    if node.op == "slice":
        step = node.args["step"]
        part = f"{_bound(node.args['start'], 0)}:{_bound(node.args['end'], _OPEN_END)}"
        part += f":{step}" if step != 1 else ""
        return f"{base}[{':, ' * node.args['dim']}{part}]"
    raise Unsupported(f"aten.{node.op} is not a view the rules copy", node.line)


def generate(ctx: Ctx, region: Region) -> KernelCode:
    name = ctx.kernel_name(region)
    out = region.nodes[-1]
    rank = len(out.shape)
    ctype = cuda.storage(out.dtype)[0]
    index = [f"        const I c{k} = t_ % z{k}; t_ /= z{k}; off += c{k} * s{k};" for k in range(rank - 1, 0, -1)]
    if rank:
        index.append("        off += t_ * s0;")
    sizes = [f"z{k}" for k in range(1, rank)] + [f"s{k}" for k in range(rank)]
    text = fill("copy.cu", NAME=name, T=ctype, BLOCK=BLOCK, INDEX="\n".join(index),
                SIZES=join_params([f"I {s}" for s in sizes]),
                SIZE_PARAMS=join_params([f"long long {s}" for s in sizes]),
                SIZE_ARGS_I32=join_params([f"(int){s}" for s in sizes]), SIZE_ARGS_I64=join_params(sizes))
    i = region.index
    view, result = f"v{i}", ctx.py(out)
    lines = [f"{view} = {view_python(ctx, out)}",
             f"{result} = torch.empty({view}.shape, dtype={cuda.TORCH_DTYPE[out.dtype]}, device={view}.device)",
             f"n{i} = {result}.numel()",
             f"if n{i} > 0:"]
    values = [f"{view}.shape[{k}]" for k in range(1, rank)] + [f"{view}.stride({k})" for k in range(rank)]
    # 32-bit index math when both the copy and the span of the source it reads are small
    span = " + ".join([f"({view}.shape[{k}] - 1) * abs({view}.stride({k}))" for k in range(rank)] or ["0"])
    lines.append(f'    kernel{i} = "{name}_i32" if n{i} < {I32_LIMIT} and {span} < {I32_LIMIT} else "{name}_i64"')
    lines.append(f"    self.rules_mod.launch(kernel{i}, grid=(rules_grid(n{i}, {BLOCK}, self.rules_cap),), "
                 f"block=({BLOCK},), args=({view}, {result}, {''.join(v + ', ' for v in values)}n{i}))")
    return KernelCode(text, lines, [f"{name}_i32", f"{name}_i64"])
