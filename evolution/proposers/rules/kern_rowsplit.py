"""Row regions split across blocks (``kernels/templates/row_split.cu``): a few very long rows.

A row region runs a block per row, so 16 rows of 4M elements use 16 blocks of a 132-SM GPU.
Here a row is cut into S chunks (a multiple of VEC elements each) and the grid is (rows, S).
Every phase of ``kern_row.schedule`` becomes one kernel ``splitP`` whose blocks merge the
earlier phases' partial states from a small workspace (S partials per state, merged by each
warp in a fixed order: deterministic), stream their chunk once with ``RowGen``'s streaming
pass (the same code as a whole-row pass, bounds [lo_, hi_) instead of [0, D)), fold the block
and write its partial state. A last kernel ``splitf`` merges every phase and writes the
per-element outputs of its chunk (grid (rows, S)) and the per-row outputs (grid (rows, 1)
when there are no per-element ones). So every row family (reductions, softmax with its online
(max, sum) pair, norms with one-pass shifted sums, GroupNorm, cross-entropy with its gather)
splits without special cases, in phases + 1 launches; a two-phase family reads its input
three times from DRAM (stats, then normalize), each pass at full width (16-byte accesses,
ITEMS vectors in flight per thread). S is chosen from the shape at run time (about SPLITW
waves of blocks, at least BLOCK x VEC elements per chunk; SPLIT > 0 forces it); S == 1 falls
back to the block-per-row kernel.
"""

from __future__ import annotations

from typing import Any

from evolution.proposers.rules import cuda
from evolution.proposers.rules.codegen import Ctx, KernelCode, fill, join_params
from evolution.proposers.rules.ir import Node
from evolution.proposers.rules.kern_row import MODES, RowGen, _forward as _row_forward, _signature
from evolution.proposers.rules.plan import Region

_I8, _I12, _I16 = " " * 8, " " * 12, " " * 16
_ARG = ("argmax", "argmin")
_IDENTITY = {"sum": "0.0f", "prod": "1.0f", "max": "RULES_NEG_INF", "min": "RULES_POS_INF",
             "lse_m": "RULES_NEG_INF", "lse_s": "0.0f", "arg_i": "0x7fffffffffffffffLL"}


def states(gen: RowGen, red: Node) -> list[tuple[str, str]]:
    """(C variable, merge kind) of each component of a reduction's accumulator state."""
    i, kind = red.id, red.args["kind"]
    if red.id in gen.plan.fused or kind == "lse":
        return [(f"lm{i}", "lse_m"), (f"ls{i}", "lse_s")]
    if kind in _ARG:
        return [(f"av{i}", "arg_v"), (f"ai{i}", "arg_i")]
    if kind == "var" and red.id in gen.plan.onepass_var:
        return [(f"vs1_{i}", "sum"), (f"vs2_{i}", "sum")]
    return [(f"acc{i}", {"mean": "sum", "var": "sum"}.get(kind, kind))]


class SplitGen:
    """Kernel bodies of a split row region, over a ``RowGen`` whose passes stream one chunk."""

    def __init__(self, gen: RowGen) -> None:
        self.gen = gen
        self.plan = gen.plan
        gen.lo, gen.hi = "lo_", "hi_"
        # Chunks of the whole tensor are read again only after every other chunk: no L2 reuse
        # to protect between passes (the last pass of a chunk still loads "evict first").
        gen.keep_hint = "RULES_EVICT_NORMAL"
        fused_max = set(self.plan.fused.values())
        self.slots: dict[str, tuple[str, int]] = {}  # state variable -> (ws or wsi, slot)
        nf = ni = 0
        for red in self.plan.reds:
            if red.id in fused_max:
                continue
            for name, merge in states(gen, red):
                if merge == "arg_i":
                    self.slots[name] = ("wsi", ni)
                    ni += 1
                else:
                    self.slots[name] = ("ws", nf)
                    nf += 1
        self.n_float, self.n_int = nf, ni

    def phase_reds(self, p: int) -> list[Node]:
        return [r for r in self.plan.reds if self.plan.phase[r.id] == p]

    def state_reds(self, p: int) -> list[Node]:
        fused_max = set(self.plan.fused.values())
        return [r for r in self.phase_reds(p) if r.id not in fused_max]

    def at(self, name: str, s: str) -> str:
        buf, slot = self.slots[name]
        return f"{buf}[({slot} * rows + row) * S + {s}]"

    # -- pieces -------------------------------------------------------------------------------
    def merge(self, p: int, env: cuda.Env, computed: set[int]) -> list[str]:
        """Phase ``p``'s S partial states merged (the same in every thread), then its row values."""
        reds = self.state_reds(p)
        lines = []
        for red in reds:
            for name, merge in states(self.gen, red):
                ctype = "long long" if merge == "arg_i" else "float"
                value = _IDENTITY.get(merge) or ("RULES_NEG_INF" if red.args["kind"] == "argmax" else "RULES_POS_INF")
                lines.append(f"{_I8}{ctype} {name} = {value};")
        lines.append(f"{_I8}for (long long s = lane_; s < S; s += 32) {{")
        fold = []
        for red in reds:
            st = states(self.gen, red)
            names = [n for n, _ in st]
            if st[0][1] == "lse_m":
                lines.append(f"{_I12}lse_merge({names[0]}, {names[1]}, {self.at(names[0], 's')}, "
                             f"{self.at(names[1], 's')});")
                fold.append(f"warp_lse({names[0]}, {names[1]});")
            elif st[0][1] == "arg_v":
                is_max = str(red.args["kind"] == "argmax").lower()
                lines.append(f"{_I12}{{ const float v_ = {self.at(names[0], 's')}; const long long i_ = "
                             f"{self.at(names[1], 's')}; if (rules_argbetter(v_, i_, {names[0]}, {names[1]}, "
                             f"{is_max})) {{ {names[0]} = v_; {names[1]} = i_; }} }}")
                fold.append(f"warp_arg({names[0]}, {names[1]}, {is_max});")
            else:
                ops = {"sum": "{a} += {b};", "prod": "{a} *= {b};", "max": "{a} = rules_max({a}, {b});",
                       "min": "{a} = rules_min({a}, {b});"}
                for n, m in st:
                    lines.append(_I12 + ops[m].format(a=n, b=self.at(n, "s")))
                    fold.append(f"{n} = warp_{m}({n});")
        lines.append(f"{_I8}}}")
        lines += [_I8 + f for f in fold]
        lines += self.gen.values(self.phase_reds(p), env)
        lines += self.gen.row_values(env, p, computed)
        return lines

    def partial(self, p: int) -> list[str]:
        """Kernel ``split{p}``: earlier phases merged, the chunk streamed, the block's states out."""
        gen = self.gen
        env = cuda.Env(gen.scalars, "r")
        lines = gen.setup(env)
        computed: set[int] = set()
        for q in range(1, p):
            lines += self.merge(q, env, computed)
        reds = self.phase_reds(p)
        for red in reds:
            if red.id in self.plan.onepass_var:  # the row's first element: the same shift in every chunk
                pre, value = gen.eval_at(env, red.args["self"], "0", f"k{red.id}")
                lines.append(f"{_I8}float shift{red.id};")
                lines.append(f"{_I8}{{ {' '.join(pre)} shift{red.id} = {value}; }}")
        decl, update, operands = gen.accumulators(reds, env)
        lines += [_I8 + d for d in decl]
        stores = self.plan.early if p == 1 else []
        lines += gen.stream_loop(env, operands, update, stores, {}, f"e{p}")
        lines += gen.combine(reds)
        lines.append(f"{_I8}if (tid == 0) {{")
        for red in self.state_reds(p):
            for name, _ in states(gen, red):
                lines.append(f"{_I12}{self.at(name, 's_')} = {name};")
        lines.append(f"{_I8}}}")
        return lines

    def final(self) -> list[str]:
        """Kernel ``splitf``: every phase merged, per-element outputs of the chunk, per-row ones."""
        gen = self.gen
        env = cuda.Env(gen.scalars, "r")
        lines = gen.setup(env)
        computed: set[int] = set()
        for p in range(1, self.plan.phases + 1):
            lines += self.merge(p, env, computed)
        if self.plan.late:
            readback = {}
            for out in self.plan.early:  # written by the first kernel: read back, not recomputed
                if len([lf for lf in gen.used_leaves(gen.e_cone([out])) if lf.kind == "full"]) >= 2:
                    readback[out.id] = out
            lines += gen.stream_loop(env, [], [], self.plan.late, readback, "f")
        if self.plan.row_outputs:
            lines.append(f"{_I8}if (s_ == 0 && tid == 0) {{")
            for out in self.plan.row_outputs:
                lines.append(f"{_I12}o{out.id}[row] = {cuda.narrow(out.dtype, env.value(out))};")
            lines.append(f"{_I8}}}")
        return lines


def can_split(gen: RowGen) -> bool:
    return gen.plan.phases >= 1


def generate(ctx: Ctx, region: Region, variant: dict[str, Any]) -> KernelCode:
    """The block-per-row kernel (S == 1) and the split kernels, with the forward choosing."""
    gen = RowGen(ctx, region, variant)
    name = ctx.kernel_name(region)
    block = gen.body(MODES["block"])
    split = SplitGen(gen)
    bodies = {f"split{p}": split.partial(p) for p in range(1, gen.plan.phases + 1)}
    bodies["splitf"] = split.final()
    params, tensors = _signature(gen)
    params += gen.scalars.c_params()
    extra = "long long G, long long SEG, " if gen.group is not None else ""
    mode = MODES["block"]
    texts = [fill("row.cu", NAME=name, MODE="block", PARAMS=join_params(params), EXTRA=extra, NT=mode["NT"],
                  TID=mode["TID"], ROW0=mode["ROW0"], RSTEP=mode["RSTEP"], BODY="\n".join(block))]
    for suffix, body in bodies.items():
        texts.append(fill("row_split.cu", NAME=name, MODE=suffix, PARAMS=join_params(params), EXTRA=extra,
                          BODY="\n".join(body)))
    kernels = [f"{name}_block"] + [f"{name}_{s}" for s in bodies]
    return KernelCode("\n\n".join(texts), _forward(ctx, region, gen, split, name, tensors), kernels)


def _forward(ctx: Ctx, region: Region, gen: RowGen, split: SplitGen, name: str, tensors: list[str]) -> list[str]:
    i = region.index
    base = _row_forward(ctx, region, gen, name, ["block"], tensors)
    guard = base.index(f"if rows{i} > 0 and D{i} > 0:")
    head, body = base[: guard + 1], [b[4:] for b in base[guard + 1:]]
    vec_line, fallback = body[0], body[1:]
    anchor = ctx.py(region.anchor)
    extra = [f"G{i}", f"SEG{i}"] if gen.group is not None else []
    args = tensors + list(gen.scalars.params.values()) + [f"rows{i}", f"D{i}"] + extra + [
        f"S{i}", f"chunk{i}", f"ws{i}", f"wsi{i}"]
    out = [vec_line,
           "# chunks: about SPLITW waves of blocks over the GPU, at least BLOCK x VEC elements each",
           f"S{i} = SPLIT if SPLIT > 0 else -(-SPLITW * self.rules_sms * max(1, 2048 // BLOCK) // rows{i})",
           f"S{i} = max(1, min(S{i}, 65535, -(-D{i} // VEC) if SPLIT > 0 else D{i} // (BLOCK * VEC)))",
           f"chunk{i} = -(-D{i} // S{i})",
           f"chunk{i} = -(-chunk{i} // VEC) * VEC  # whole vectors: 16-byte aligned chunks",
           f"S{i} = -(-D{i} // chunk{i})",
           f"if S{i} > 1:",
           f"    ws{i} = torch.empty(max(1, {split.n_float} * rows{i} * S{i}), dtype=torch.float32, "
           f"device={anchor}.device)",
           f"    wsi{i} = torch.empty(max(1, {split.n_int} * rows{i} * S{i}), dtype=torch.int64, "
           f"device={anchor}.device)",
           f"    gx{i} = min(rows{i}, RULES_UNCAPPED)"]
    for p in range(1, gen.plan.phases + 1):
        out.append(f'    self.rules_mod.launch("{name}_split{p}", grid=(gx{i}, S{i}), block=(BLOCK,), '
                   f"args=({', '.join(args + [f'int(vec{i})'])},))")
    gy = f"S{i}" if gen.plan.late else "1"
    out.append(f'    self.rules_mod.launch("{name}_splitf", grid=(gx{i}, {gy}), block=(BLOCK,), '
               f"args=({', '.join(args + [f'int(vec{i})'])},))")
    out.append("else:")
    out += ["    " + f for f in fallback]
    return head + ["    " + o for o in out]
