"""Pointwise regions: one kernel computing every output element from the same element of each
operand (broadcast operands are addressed through the coordinates of collapsed dims, split off
the element index by divider.cu's multiply-high division, not by an integer division).

The epilogue of a hybrid task's 2-D convolution may run in channels_last order (``layout``
``nhwc``, a structural variant): cuDNN's tensor-core convolutions work in NHWC, and an NCHW
convolution pays a transpose of its input and of its output inside cuDNN (torch.compile's
layout optimization moves such convolutions to channels_last for the same reason). The weight
is made channels_last once in ``rules_setup``, so cuDNN returns a channels_last result; the
epilogue then walks that buffer in memory order (the region's space permuted to N, H, W, C,
per-channel operands indexed by the innermost coordinate) and writes over it in place, so the
candidate returns a channels_last tensor: the same values, other strides.
"""

from __future__ import annotations

import dataclasses

from evolution.proposers.rules import cuda
from evolution.proposers.rules.codegen import I32_LIMIT, Ctx, KernelCode, fill, join_params, pointer_param, template_text
from evolution.proposers.rules.ir import Node
from evolution.proposers.rules.plan import Leaf, Plan, Region

_IND = " " * 16


def _groups(region: Region, leaves: list[Leaf], rotate: bool) -> list[list[int]]:
    """Runs of adjacent non-unit dims that every broadcast operand covers alike."""
    general = [lf for lf in leaves if lf.kind == "general"]
    dims = [d for d, s in enumerate(region.shape) if s != 1]
    if not general and not rotate:
        return [dims]
    groups: list[list[int]] = []
    last_sig = None
    for d in dims:
        sig = tuple(d in lf.covers for lf in general)
        boundary = rotate and d == dims[-1]
        if groups and sig == last_sig and not boundary:
            groups[-1].append(d)
        else:
            groups.append([d])
        last_sig = sig
    return groups


def _covered(leaf: Leaf, groups: list[list[int]]) -> list[int]:
    return [g for g, dims in enumerate(groups) if dims[0] in leaf.covers]


def _offset(cover: list[int]) -> str:
    off = f"c{cover[0]}"
    for g in cover[1:]:
        off = f"({off} * z{g} + c{g})"
    return off


def inplace_anchor(plan: Plan, region: Region) -> Node | None:
    """Write the result over the GEMM / convolution output it reads (a buffer we own)."""
    anchor = region.anchor
    src = plan.producer.get(anchor.id)
    if src is None or src.kind not in ("mm", "conv") or len(region.outputs) != 1:
        return None
    out = region.outputs[0]
    users = plan.graph.users().get(anchor.id, [])
    members = {n.id for n in region.nodes}
    if anchor in plan.graph.outputs or not all(u.id in members for u in users):
        return None
    return anchor if out.dtype == anchor.dtype else None


NHWC = (0, 2, 3, 1)  # the space's dims in channels_last memory order


def nhwc_conv(plan: Plan, region: Region) -> Region | None:
    """The 2-D convolution region whose epilogue ``region`` may run in channels_last order: the
    epilogue writes over the convolution's result in place and reads nothing else of full size
    (only per-channel values, scalars and constants); the weight is a module parameter (made
    channels_last at setup). None when any of that does not hold."""
    if region.kind != "pointwise" or len(region.shape) != 4 or inplace_anchor(plan, region) is None:
        return None
    src = plan.producer.get(region.anchor.id)
    conv = src.nodes[0] if src is not None and src.kind == "conv" else None
    if conv is None or len(conv.shape) != 4 or conv.args["weight"].op != "param" or tuple(conv.shape) != region.shape:
        return None
    if any(n.op == "rotate_half" for n in region.nodes):
        return None
    for leaf in region.leaves.values():
        if leaf.node.op == "const" or leaf.node.id == region.anchor.id:
            continue
        if [d for d in leaf.covers if d is not None] not in ([], [1]):
            return None
    return src


def _channels_last(region: Region) -> Region:
    """``region`` over its space in NHWC memory order (``nhwc_conv`` accepted it)."""
    where = {old: new for new, old in enumerate(NHWC)}
    space = [i for i, s in enumerate(NHWC) if region.shape[s] != 1]

    def moved(covers: tuple) -> tuple:
        return tuple(None if c is None else where[c] for c in covers)

    def leaf(lf: Leaf) -> Leaf:
        covers = moved(lf.covers)
        dims = sorted(d for d in covers if d is not None)
        if lf.node.id == region.anchor.id or (dims and dims == space):
            kind = "full"  # the convolution's result: contiguous in this order
        else:
            kind = "general" if dims else "scalar"
        return Leaf(lf.node, covers, kind, lf.rotate)

    return dataclasses.replace(region, shape=tuple(region.shape[d] for d in NHWC), perm=NHWC,
                               maps={k: moved(m) for k, m in region.maps.items()},
                               leaves={k: leaf(lf) for k, lf in region.leaves.items()})


def generate(ctx: Ctx, region: Region) -> KernelCode:
    if ctx.variant.get(region.index, {}).get("layout") != "nhwc":
        return _generate(ctx, region, ctx.kernel_name(region))
    # Both orders: cuDNN returns NCHW where a channels_last weight is ambiguous (one input
    # channel, a 1x1 window: the two layouts are the same memory), so the forward takes the
    # kernel that matches the strides it got.
    plain = _generate(ctx, region, ctx.kernel_name(region))
    nhwc = _generate(ctx, _channels_last(region), ctx.kernel_name(region) + "_cl")
    anchor = ctx.py(region.anchor)
    forward = [f"if {anchor}.is_contiguous():"] + ["    " + line for line in plain.forward]
    forward += ["else:", f"    assert {anchor}.is_contiguous(memory_format=torch.channels_last), "
                         "'the NHWC epilogue reads a channels_last convolution result'"]
    forward += ["    " + line for line in nhwc.forward]
    return KernelCode(plain.cuda + "\n\n" + nhwc.cuda, forward, plain.kernels + nhwc.kernels)


def _generate(ctx: Ctx, region: Region, name: str) -> KernelCode:
    scalars = cuda.Scalars()
    leaves = list({lf.node.id: lf for lf in region.leaves.values()}.values())
    rotations = [n for n in region.nodes if n.op == "rotate_half"]
    groups = _groups(region, leaves, bool(rotations))
    last = len(groups) - 1
    inplace = inplace_anchor(ctx.plan, region)
    ptr = {lf.node.id: f"p{lf.node.id}" for lf in leaves if lf.node.op != "const"}
    if inplace is not None:
        ptr[inplace.id] = f"o{region.outputs[0].id}"
    coords = bool(rotations) or any(lf.kind == "general" for lf in leaves)
    vectorable = all(cuda.vector_ok(lf.node.dtype) for lf in leaves if lf.node.op != "const") and \
        all(cuda.vector_ok(o.dtype) for o in region.outputs)

    def coord_lines(indent: str) -> list[str]:
        if not coords:
            return []
        lines = [f"{indent}I t_ = e;"]
        for g in range(last, 0, -1):  # rules_idiv: divider.cu
            lines.append(f"{indent}const I q{g}_ = rules_idiv(t_, z{g}, mz{g}, sz{g}); "
                         f"const I c{g} = t_ - q{g}_ * z{g}; t_ = q{g}_;")
        lines.append(f"{indent}const I c0 = t_;")
        return lines

    # -- vector path --------------------------------------------------------------------------
    decl, load, comp = [], [], []
    vec_env = cuda.Env(scalars, "v")
    for lf in leaves:
        node = lf.node
        if node.op == "const":
            vec_env.bind(node, cuda.literal(node.args["value"]), cuda.ctype(node.dtype))
            continue
        kind = cuda.ctype(node.dtype)
        suffix = cuda.storage(node.dtype)[1]
        p = ptr[node.id]
        decl.append(f"        {kind} a{node.id}[ITEMS][VEC];")
        if lf.kind == "full":
            off = "e"
        elif lf.kind == "scalar":
            off = "(I)0"
        else:
            off = _offset(_covered(lf, groups))
        contiguous = lf.kind == "full" or (lf.kind == "general" and last in _covered(lf, groups))
        if contiguous and cuda.vector_ok(node.dtype):
            load.append(f"{_IND}load_{suffix}<VEC>({p} + {off}, a{node.id}[it]);")
        elif contiguous:
            load.append(f"{_IND}RULES_LANES a{node.id}[it][u] = {cuda.widen(node.dtype, f'{p}[{off} + u]')};")
        else:
            load.append(f"{_IND}{{ const {kind} s_ = {cuda.widen(node.dtype, f'{p}[{off}]')}; "
                        f"RULES_LANES a{node.id}[it][u] = s_; }}")
        vec_env.bind(node, f"a{node.id}[it][u]", kind)
    for rot in rotations:
        src = rot.args["self"]
        suffix = cuda.storage(src.dtype)[1]
        decl.append(f"        float q{rot.id}[ITEMS][VEC];")
        load.append(f"{_IND}{{ const bool lo_ = c{last} < half; "
                    f"load_{suffix}<VEC>({ptr[src.id]} + e + (lo_ ? half : -half), "
                    f"q{rot.id}[it]); if (lo_) RULES_LANES q{rot.id}[it][u] = -q{rot.id}[it][u]; }}")
        vec_env.bind(rot, f"q{rot.id}[it][u]", "float")
    if load:
        load = coord_lines(_IND) + load
    body = cuda.compute_all(vec_env, [n for n in region.nodes if n.op != "rotate_half"], _IND + "    ")
    for out in region.outputs:
        decl.append(f"        {cuda.ctype(out.dtype)} r{out.id}[ITEMS][VEC];")
        body.append(f"{_IND}    r{out.id}[it][u] = {vec_env.value(out)};")
    comp.append(f"{_IND}RULES_LANES {{")
    comp += body
    comp.append(f"{_IND}}}")
    for out in region.outputs:
        suffix = cuda.storage(out.dtype)[1]
        if cuda.vector_ok(out.dtype):
            comp.append(f"{_IND}store_{suffix}<VEC>(o{out.id} + e, r{out.id}[it]);")
        else:
            comp.append(f"{_IND}RULES_LANES o{out.id}[e + u] = {cuda.narrow(out.dtype, f'r{out.id}[it][u]')};")

    # -- scalar path --------------------------------------------------------------------------
    ind = " " * 8
    scalar = coord_lines(ind)
    s_env = cuda.Env(scalars, "w")
    for lf in leaves:
        node = lf.node
        if node.op == "const":
            s_env.bind(node, cuda.literal(node.args["value"]), cuda.ctype(node.dtype))
            continue
        off = "e" if lf.kind == "full" else "(I)0" if lf.kind == "scalar" else _offset(_covered(lf, groups))
        kind = cuda.ctype(node.dtype)
        scalar.append(f"{ind}const {kind} b{node.id} = {cuda.widen(node.dtype, f'{ptr[node.id]}[{off}]')};")
        s_env.bind(node, f"b{node.id}", kind)
    for rot in rotations:
        src = rot.args["self"]
        v = cuda.widen(src.dtype, f"{ptr[src.id]}[e + (c{last} < half ? half : -half)]")
        scalar.append(f"{ind}const float q{rot.id} = c{last} < half ? -{v} : {v};")
        s_env.bind(rot, f"q{rot.id}", "float")
    scalar += cuda.compute_all(s_env, [n for n in region.nodes if n.op != "rotate_half"], ind)
    for out in region.outputs:
        scalar.append(f"{ind}o{out.id}[e] = {cuda.narrow(out.dtype, s_env.value(out))};")

    # -- signature ----------------------------------------------------------------------------
    params, args = [], []
    for lf in leaves:
        node = lf.node
        if node.op == "const" or (inplace is not None and node.id == inplace.id):
            continue
        params.append(pointer_param(node, ptr[node.id]))
        args.append(ptr[node.id])
    for out in region.outputs:
        params.append(pointer_param(out, f"o{out.id}", const=False))
        args.append(f"o{out.id}")
    params += scalars.c_params()
    args += list(scalars.params)
    sizes = [f"z{g}" for g in range(1, last + 1)] if coords else []
    if rotations:
        sizes.append("half")
    # each coordinate size z comes with its divider (mz, sz): see divider.cu
    divided = [s for s in sizes if s != "half"]
    text = fill(
        "pointwise.cu", NAME=name, PARAMS=join_params(params), ARGS=join_params(args),
        SIZES=join_params([f"I {s}" for s in sizes] + [f"unsigned m{s}, int s{s}" for s in divided]),
        SIZE_PARAMS=join_params([f"long long {s}" for s in sizes] + [f"unsigned int m{s}, int s{s}" for s in divided]),
        SIZE_ARGS_I32=join_params([f"(int){s}" for s in sizes] + [f"m{s}, s{s}" for s in divided]),
        SIZE_ARGS_I64=join_params(sizes + [f"m{s}, s{s}" for s in divided]),
        VEC_DECL="\n".join(decl), VEC_LOAD="\n".join(load), VEC_COMPUTE="\n".join(comp), SCALAR="\n".join(scalar),
    )
    if divided:
        text = template_text("divider.cu") + "\n" + text
    forward = _forward(ctx, region, name, leaves, groups, sizes, ptr, inplace, scalars, vectorable)
    return KernelCode(text, forward, [f"{name}_i32", f"{name}_i64"])


def _forward(ctx: Ctx, region: Region, name: str, leaves: list[Leaf], groups: list[list[int]],
             sizes: list[str], ptr: dict[int, str], inplace: Node | None, scalars: cuda.Scalars,
             vectorable: bool) -> list[str]:
    anchor = ctx.py(region.anchor)
    i = region.index
    dims = ctx.dims(region)
    lines = [f"n{i} = {anchor}.numel()"]
    for out in region.outputs:
        if inplace is not None:
            lines.append(f"{ctx.py(out)} = {ctx.py(inplace)}")
        else:
            lines.append(ctx.alloc(region, out))
    tensors = [ctx.py(lf.node) for lf in leaves if lf.node.op != "const" and not (inplace and lf.node.id == inplace.id)]
    tensors += [ctx.py(o) for o in region.outputs]
    lines.append(f"if n{i} > 0:")
    body = []
    size_values = []
    for s in sizes:
        if s == "half":
            value = f"{dims[-1]} // 2"
        else:
            value = " * ".join(dims[d] for d in groups[int(s[1:])])
        body.append(f"{s}_{i} = {value}")
        size_values.append(f"{s}_{i}")
    divided = [s for s in sizes if s != "half"]
    for s in divided:  # the divider divider.cu's rules_idiv takes with each coordinate size
        body.append(f"s{s}_{i} = ({s}_{i} - 1).bit_length()")
        body.append(f"m{s}_{i} = ((1 << 32) * ((1 << s{s}_{i}) - {s}_{i})) // {s}_{i} + 1")
        size_values += [f"m{s}_{i}", f"s{s}_{i}"]
    conds = ["VEC > 1", f"rules_aligned(VEC, {', '.join(tensors)})"] if vectorable else ["False"]
    if len(groups) > 1 or "half" in sizes:
        conds.append(f"z{len(groups) - 1}_{i} % VEC == 0" if len(groups) > 1 else f"n{i} % VEC == 0")
    if "half" in sizes:
        conds.append(f"half_{i} % VEC == 0")
    body.append(f"vec{i} = {' and '.join(conds)}")
    body.append(f"nv{i} = n{i} // VEC if vec{i} else 0")
    body.append(f"grid{i} = rules_grid(max(-(-nv{i} // ITEMS), n{i} - nv{i} * VEC), BLOCK, self.rules_cap)")
    launch_args = tensors + list(scalars.params.values()) + [f"n{i}"] + size_values + [f"int(vec{i})"]
    body.append(f'kernel{i} = "{name}_i32" if n{i} < {I32_LIMIT} else "{name}_i64"')
    body.append(f"self.rules_mod.launch(kernel{i}, grid=(grid{i},), block=(BLOCK,), "
                f"args=({', '.join(launch_args)},))")
    return lines + ["    " + b for b in body]
