"""Whole-tensor reductions (losses, ``x.sum()``): a grid-stride partial pass and a one-block
final pass that also computes the scalar arithmetic on the results (``total / count``)."""

from __future__ import annotations

from evolution.proposers.rules import cuda
from evolution.proposers.rules.codegen import Ctx, KernelCode, fill, join_params, pointer_param
from evolution.proposers.rules.ir import Unsupported
from evolution.proposers.rules.plan import Region

_INIT = {"sum": "0.0f", "mean": "0.0f", "max": "RULES_NEG_INF", "min": "RULES_POS_INF"}
_MERGE = {"sum": "{a} += {b};", "mean": "{a} += {b};", "max": "{a} = rules_max({a}, {b});",
          "min": "{a} = rules_min({a}, {b});"}
_BLOCK = {"sum": "block_sum", "mean": "block_sum", "max": "block_max", "min": "block_min"}


def generate(ctx: Ctx, region: Region) -> KernelCode:
    name = ctx.kernel_name(region)
    scalars = cuda.Scalars()
    reds = [n for n in region.nodes if n.op == "red_all"]
    for red in reds:
        if red.args["kind"] not in _INIT:
            raise Unsupported(f"a whole-tensor {red.args['kind']}", red.line)
    finals = [n for n in region.nodes if n.id in set(region.finals)]
    prologue = [n for n in region.nodes if n.id not in set(region.finals)]
    leaves = list({lf.node.id: lf for lf in region.leaves.values()}.values())
    for lf in leaves:
        if lf.kind not in ("full", "scalar"):
            raise Unsupported(f"{lf.node.op} {lf.node.name} broadcast into a whole-tensor reduction")
    full = [lf for lf in leaves if lf.kind == "full" and lf.node.op != "const"]
    vectorable = all(cuda.vector_ok(lf.node.dtype) for lf in full)

    def body(vector: bool) -> list[str]:
        ind = " " * 8
        env = cuda.Env(scalars, "v" if vector else "w")
        lines = []
        for lf in leaves:
            node = lf.node
            kind = cuda.ctype(node.dtype)
            if node.op == "const":
                env.bind(node, cuda.literal(node.args["value"], kind), kind)
            elif lf.kind == "scalar":
                lines.append(f"{ind}const {kind} c{node.id} = {cuda.widen(node.dtype, f'p{node.id}[0]')};")
                env.bind(node, f"c{node.id}", kind)
            elif vector and cuda.vector_ok(node.dtype):
                suffix = cuda.storage(node.dtype)[1]
                lines.append(f"{ind}{kind} a{node.id}[VEC]; load_{suffix}<VEC>(p{node.id} + e, a{node.id});")
                env.bind(node, f"a{node.id}[u]", kind)
            else:
                lines.append(f"{ind}const {kind} a{node.id} = {cuda.widen(node.dtype, f'p{node.id}[e]')};")
                env.bind(node, f"a{node.id}", kind)
        inner = ind + ("    " if vector else "")
        stmts = cuda.compute_all(env, prologue, inner)
        lane = "u" if vector else "0"
        for red in reds:
            merge = _MERGE[red.args["kind"]]
            stmts.append(inner + merge.format(a=f"acc{red.id}[{lane}]", b=env.value(red.args["self"])))
        if vector:
            return lines + [f"{ind}RULES_LANES {{"] + stmts + [f"{ind}}}"]
        return lines + stmts

    decl = [f"    float acc{r.id}[VEC];" for r in reds]
    decl += [f"    RULES_LANES acc{r.id}[u] = {_INIT[r.args['kind']]};" for r in reds]
    block_reduce = []
    for k, red in enumerate(reds):
        kind = red.args["kind"]
        lanes = _MERGE[kind].format(a=f"acc{red.id}[0]", b=f"acc{red.id}[u]")
        block_reduce.append(f"    for (int u = 1; u < VEC; ++u) {lanes}")
        block_reduce.append(f"    const float t{red.id} = {_BLOCK[kind]}<BLOCK>(acc{red.id}[0]);")
    block_reduce.append("    if (threadIdx.x == 0) {")
    for k, red in enumerate(reds):
        block_reduce.append(f"        part[(long long)blockIdx.x * {len(reds)} + {k}] = t{red.id};")
    block_reduce.append("    }")

    fenv = cuda.Env(scalars, "f")
    fdecl = [f"    float acc{r.id} = {_INIT[r.args['kind']]};" for r in reds]
    fload = [f"        {_MERGE[r.args['kind']].format(a=f'acc{r.id}', b=f'part[b * {len(reds)} + {k}]')}"
             for k, r in enumerate(reds)]
    freduce = []
    for red in reds:
        kind = red.args["kind"]
        value = f"{_BLOCK[kind]}<BLOCK>(acc{red.id})"
        if kind == "mean":
            value += " * (1.0f / (float)n)"
        freduce.append(f"    const float q{red.id} = {cuda.round_to(red.dtype, value)};")
        fenv.bind(red, f"q{red.id}", "float")
    final = []
    for lf in leaves:
        if lf.node.op == "const":
            fenv.bind(lf.node, cuda.literal(lf.node.args["value"]), cuda.ctype(lf.node.dtype))
    final += cuda.compute_all(fenv, [n for n in finals if n.op != "red_all"], " " * 8)
    for out in region.outputs:
        final.append(f"        o{out.id}[0] = {cuda.narrow(out.dtype, fenv.value(out))};")

    params, tensors = [], []
    for lf in leaves:
        if lf.node.op != "const":
            params.append(pointer_param(lf.node, f"p{lf.node.id}"))
            tensors.append(ctx.py(lf.node))
    out_params = [pointer_param(o, f"o{o.id}", const=False) for o in region.outputs]
    vec_body, scalar_body = body(True), body(False)
    params += scalars.c_params()
    out_params += scalars.c_params()
    text = fill("reduce_all.cu", NAME=name, PARAMS=join_params(params), DECL="\n".join(decl),
                VEC_BODY="\n".join(vec_body), SCALAR_BODY="\n".join(scalar_body), BLOCK_REDUCE="\n".join(block_reduce),
                OUT_PARAMS=join_params(out_params), FDECL="\n".join(fdecl), FLOAD="\n".join(fload),
                FREDUCE="\n".join(freduce), FINAL="\n".join(final))
    i = region.index
    anchor = ctx.py(region.anchor)
    lines = [f"n{i} = {anchor}.numel()"]
    for out in region.outputs:
        lines.append(f"{ctx.py(out)} = torch.empty({tuple(out.shape)!r}, dtype={cuda.TORCH_DTYPE[out.dtype]}, "
                     f"device={anchor}.device)")
    svals = list(scalars.params.values())
    wide = ", ".join(ctx.py(lf.node) for lf in full)
    conds = f"VEC > 1 and rules_aligned(VEC, {wide})" if vectorable and full else "False"
    lines += [
        f"vec{i} = {conds}",
        f"nv{i} = n{i} // VEC if vec{i} else 0",
        f"grid{i} = rules_grid(max(nv{i}, n{i} - nv{i} * VEC), BLOCK, self.rules_cap)",
        f"part{i} = torch.empty(grid{i} * {len(reds)}, dtype=torch.float32, device={anchor}.device)",
        f'self.rules_mod.launch("{name}_partial", grid=(grid{i},), block=(BLOCK,), '
        f"args=({', '.join(tensors + svals + [f'part{i}', f'n{i}', f'int(vec{i})'])},))",
        f'self.rules_mod.launch("{name}_final", grid=(1,), block=(BLOCK,), '
        f"args=({', '.join([f'part{i}'] + [ctx.py(o) for o in region.outputs] + svals + [f'grid{i}', f'n{i}'])},))",
    ]
    return KernelCode(text, lines, [f"{name}_partial", f"{name}_final"])
