"""The GEMM or convolution a hybrid task may leave to cuBLAS / cuDNN: one PyTorch call, no
bias (the bias and everything after it run in the epilogue kernel that reads the result)."""

from __future__ import annotations

from evolution.proposers.rules.codegen import Ctx, KernelCode
from evolution.proposers.rules.ir import AttrRef, Node, Unsupported
from evolution.proposers.rules.plan import Region, base_leaf


def _operand(ctx: Ctx, node: Node) -> str:
    """A GEMM operand: a tensor, its transpose, or a 2-D flattening of its leading dims."""
    if node.op in ("t", "transpose"):
        if len(node.shape) != 2:
            raise Unsupported("a GEMM operand transposed in more than 2 dims", node.line)
        return f"{_operand(ctx, node.args['self'])}.t()"
    if node.op == "view":
        base = base_leaf(node)
        if len(node.shape) == 2 and node.shape[-1] == base.shape[-1] and len(base.shape) >= 2:
            return f"{ctx.py(base)}.reshape(-1, {ctx.py(base)}.shape[-1])"
        raise Unsupported("a GEMM operand reshaped other than by flattening leading dims", node.line)
    return ctx.py(node)


def generate(ctx: Ctx, region: Region) -> KernelCode:
    node = region.nodes[0]
    out = ctx.py(node)
    if node.op == "mm":
        x = node.args["self"]
        b = _operand(ctx, node.args["mat2"])
        if len(x.shape) > 2:  # nn.Linear on an N-D input: flatten the leading dims, then restore
            xs = ctx.py(x)
            return KernelCode("", [f"{out} = torch.mm({xs}.reshape(-1, {xs}.shape[-1]), {b})",
                                   f"{out} = {out}.view({xs}.shape[:-1] + ({out}.shape[-1],))"], [])
        return KernelCode("", [f"{out} = torch.mm({_operand(ctx, x)}, {b})"], [])
    x, w = ctx.py(node.args["input"]), ctx.py(node.args["weight"])
    rank = len(node.shape) - 2
    fn = f"F.conv{rank}d"
    if node.args.get("module") is not None:
        mod = AttrRef(node.args["module"] + ".x").python()[: -len(".x")] if node.args["module"] else "self"
        settings = f"{mod}.stride, {mod}.padding, {mod}.dilation, {mod}.groups"
    else:
        settings = ", ".join(repr(node.args[k]) for k in ("stride", "padding", "dilation", "groups"))
    setup = []
    if any(ctx.variant.get(r.index, {}).get("layout") == "nhwc" and ctx.plan.producer.get(r.anchor.id) is region
           for r in ctx.plan.regions if r.kind == "pointwise"):
        # its epilogue runs in channels_last order (kern_pointwise says why): a channels_last
        # weight makes cuDNN convolve in NHWC and return NHWC; loading weights later (a state
        # dict, .to()) copies into this layout
        setup.append(f"{w}.data = {w}.data.contiguous(memory_format=torch.channels_last)")
    return KernelCode("", [f"{out} = {fn}({x}, {w}, None, {settings})"], [], setup=setup)
