"""cumsum along the last dim: a block (or a warp) per row, chunked, with a running carry."""

from __future__ import annotations

from evolution.proposers.rules import cuda
from evolution.proposers.rules.codegen import Ctx, KernelCode, fill
from evolution.proposers.rules.ir import Unsupported
from evolution.proposers.rules.kern_row import MODES
from evolution.proposers.rules.plan import Region, base_leaf


def generate(ctx: Ctx, region: Region) -> KernelCode:
    node = region.nodes[0]
    x = node.args["self"]
    if base_leaf(x) is not x:
        raise Unsupported("cumsum of a view", node.line)
    mode_name = ctx.variant.get(region.index, {}).get("mode", "block")
    if mode_name not in ("block", "warp"):
        raise Unsupported(f"scan mode {mode_name}")
    mode = MODES[mode_name]
    name = ctx.kernel_name(region)
    tin, sin, _ = cuda.storage(x.dtype)
    tout, sout, _ = cuda.storage(node.dtype)
    if not (cuda.vector_ok(x.dtype) and cuda.vector_ok(node.dtype)):
        raise Unsupported(f"cumsum of {x.dtype} into {node.dtype}", node.line)
    text = fill("scan.cu", NAME=name, MODE=mode_name, TIN=tin, TOUT=tout, NT=mode["NT"], TID=mode["TID"],
                ROW0=mode["ROW0"], RSTEP=mode["RSTEP"], LOAD=f"load_{sin}", STORE=f"store_{sout}",
                WIDEN=cuda.widen(x.dtype, "xr[b + u]"), NARROW=cuda.narrow(node.dtype, "v[it * VEC + u]"))
    i = region.index
    xs, ys = ctx.py(x), ctx.py(node)
    per_block = "1" if mode["NT"] == "BLOCK" else "BLOCK // 32"
    lines = [
        f"D{i} = {xs}.shape[-1] if {xs}.dim() else 1",
        f"rows{i} = {xs}.numel() // D{i} if D{i} else 0",
        f"{ys} = torch.empty({xs}.shape, dtype={cuda.TORCH_DTYPE[node.dtype]}, device={xs}.device)",
        f"if rows{i} > 0:",
        f"    vec{i} = VEC > 1 and D{i} % VEC == 0 and rules_aligned(VEC, {xs}, {ys})",
        f"    grid{i} = rules_grid(rows{i}, {per_block}, self.rules_cap)",
        f'    self.rules_mod.launch("{name}_{mode_name}", grid=(grid{i},), block=(BLOCK,), '
        f"args=({xs}, {ys}, rows{i}, D{i}, int(vec{i})))",
    ]
    return KernelCode(text, lines, [f"{name}_{mode_name}"])
