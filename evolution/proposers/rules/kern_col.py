"""Column regions: reductions over a block of dims that is not trailing, with their prologue
and epilogue (``kernels/templates/col.cu``).

The operand is viewed as [O, R, I] (outer, reduced, inner > 1); a "column" is one (o, i), its
element j at ``o * R * I + j * I + i``. Covers every reduction kind of the row regions (sum,
mean, prod, max / min, argmax / argmin, logsumexp, var / std, norms), softmax / log-softmax
and RMSNorm / LayerNorm-style epilogues over such dims, with the phases scheduled exactly as
in ``kern_row.schedule`` (a pass over j per phase; an online (max, sum) pair for softmax; a
shifted one-pass variance). Leaves: whole tensors at the strided address, values along the
reduced dims (a norm's weight over C) indexed by j, per-column values indexed by the column.

Modes (``MODES``): ``col`` (a thread per column, consecutive threads on consecutive columns),
``colsplit`` (32 columns x BLOCK / 32 warps splitting j, merged in shared memory); ``split``
adds a cross-block split of j (grid.y slices writing partial states, then a ``merge`` kernel
per column), for few columns and long R, when the region's outputs are all per column and one
pass computes them.
"""

from __future__ import annotations

import re
from typing import Any

from evolution.proposers.rules import cuda
from evolution.proposers.rules.codegen import Ctx, KernelCode, fill, join_params, pointer_param
from evolution.proposers.rules.ir import Node, Unsupported
from evolution.proposers.rules.kern_row import _exp_of_diff, reduced_value, schedule
from evolution.proposers.rules.plan import Leaf, Region

MODES = {
    "col": {"NTC": "BLOCK", "NW": "1", "TC": "(int)threadIdx.x", "TW": "0"},
    "colsplit": {"NTC": "32", "NW": "(BLOCK / 32)", "TC": "(int)(threadIdx.x & 31)",
                 "TW": "(int)(threadIdx.x >> 5)"},
}
_I8, _I12, _I16 = " " * 8, " " * 12, " " * 16
_ARG = ("argmax", "argmin")
# An update line holding this token reads the lane's liveness itself, as a select, and runs
# unguarded; the others run under ``if (live[u])``. Lanes past the last column compute on
# values never loaded, harmlessly, and update nothing. The guard around a multi-instruction
# update compiled to a branch and a convergence barrier per slot, which kept the UNROLL slots'
# updates from interleaving (argmax over dim 1: 11 instructions a slot, between BSSY / BSYNC).
_LIVE = "@LIVE@"


def _guarded(update: str) -> str:
    return update.replace(_LIVE, "live[u]") if _LIVE in update else f"if (live[u]) {update}"


def can_split(region: Region, plan: Any = None) -> bool:
    """A cross-block split of j needs one pass and outputs that are all per column."""
    plan = plan or schedule(region, True, True)
    members = {n.id for n in region.nodes}
    gathers = any(n.op == "gather" for n in region.nodes)
    return plan.phases == 1 and not plan.early and not plan.late and not gathers and bool(members)


def _states(red: Node, plan: Any) -> list[tuple[str, str]]:
    """(C array name, merge kind) of a reduction's accumulator state components."""
    i, kind = red.id, red.args["kind"]
    if red.id in plan.fused or kind == "lse":
        return [(f"lm{i}", "lse_m"), (f"ls{i}", "lse_s")]
    if kind in _ARG:
        return [(f"av{i}", "arg_v"), (f"ai{i}", "arg_i")]
    if kind == "var" and red.id in plan.onepass_var:
        return [(f"vs1_{i}", "sum"), (f"vs2_{i}", "sum")]
    return [(f"acc{i}", {"mean": "sum", "var": "sum"}.get(kind, kind))]


class ColGen:
    def __init__(self, ctx: Ctx, region: Region, variant: dict[str, Any]) -> None:
        self.ctx = ctx
        self.region = region
        self.members = {n.id: n for n in region.nodes}
        self.plan = schedule(region, variant.get("online", True), variant.get("var", "onepass") == "onepass")
        self.leaves: list[Leaf] = list({lf.node.id: lf for lf in region.leaves.values()}.values())
        self.scalars = cuda.Scalars()
        for n in region.nodes:
            if n.op in ("gather", "rowview", "gchan"):
                raise Unsupported(f"{n.op} in a reduction over non-trailing dims", n.line)
        for lf in self.leaves:
            if lf.kind not in ("full", "col", "row", "scalar"):
                raise Unsupported(f"{lf.node.op} {lf.node.name} broadcast into a column reduction")

    # -- helpers ------------------------------------------------------------------------------
    def level(self, node: Node) -> str:
        return self.region.level(node) if node.id in self.members else "leaf"

    def e_cone(self, roots: list[Node]) -> list[Node]:
        need: dict[int, Node] = {}
        stack = [r for r in roots if r.id in self.members and self.level(r) == "E"]
        while stack:
            node = stack.pop()
            if node.id in need:
                continue
            need[node.id] = node
            stack += [o for o in node.operands()
                      if o.id in self.members and self.level(o) == "E" and o.op != "red"]
        return [n for n in self.region.nodes if n.id in need]

    def leaf_of(self, node: Node) -> Leaf | None:
        return next((lf for lf in self.leaves if lf.node.id == node.id), None)

    def elem_leaves(self, nodes: list[Node], roots: list[Node]) -> list[Leaf]:
        """Per-element leaves (whole tensors and values along j) that ``nodes`` read."""
        out: dict[int, Leaf] = {}
        for n in list(nodes) + [r for r in roots if self.leaf_of(r) is not None]:
            for o in ([n] if self.leaf_of(n) is not None else n.operands()):
                lf = self.leaf_of(o)
                if lf is not None and lf.kind in ("full", "col") and lf.node.op != "const":
                    out.setdefault(lf.node.id, lf)
        return list(out.values())

    # -- setup: per-column and scalar leaves --------------------------------------------------
    def setup(self, env: cuda.Env) -> list[str]:
        lines = []
        for lf in self.leaves:
            node = lf.node
            kind = cuda.ctype(node.dtype)
            if node.op == "const":
                env.bind(node, cuda.literal(node.args["value"], kind), kind)
            elif lf.kind == "row":
                lines.append(f"{_I8}{kind} rl{node.id}[VEC];")
                lines.append(f"{_I8}RULES_LANES rl{node.id}[u] = live[u] ? "
                             f"{cuda.widen(node.dtype, f'p{node.id}[c[u]]')} : ({kind})0;")
                env.bind(node, f"rl{node.id}[u]", kind)
            elif lf.kind == "scalar":
                lines.append(f"{_I8}const {kind} rl{node.id} = {cuda.widen(node.dtype, f'p{node.id}[0]')};")
                env.bind(node, f"rl{node.id}", kind)
        lines += self.column_values(env, set())
        return lines

    def column_values(self, env: cuda.Env, computed: set[int]) -> list[str]:
        """Per-column values (arrays over the VEC columns) and scalars whose operands are ready."""
        lines = []
        for node in self.region.nodes:
            if node.id in computed or env.has(node) or self.level(node) == "E" or node.op == "red":
                continue
            if not all(env.has(o) for o in node.operands()):
                continue
            computed.add(node.id)
            lanes = any("[u]" in env.value(o) for o in node.operands())
            stmt = env.compute(node)
            if not stmt:
                continue
            if not lanes:
                lines.append(_I8 + stmt)
                continue
            kind = env.types[node.id]
            name = env.value(node)
            lines.append(f"{_I8}{kind} cv{node.id}[VEC];")
            lines.append(f"{_I8}RULES_LANES {{ {stmt} cv{node.id}[u] = {name}; }}")
            env.bind(node, f"cv{node.id}[u]", kind)
        return lines

    # -- one pass over j ----------------------------------------------------------------------
    def load(self, lf: Leaf, ind: str, q: str, j: str, row: str | None = None) -> list[str]:
        """Lines loading element ``j`` of this thread's columns; ``row``, when given, is ``j * I``
        already computed (the j loops keep it running: one add a load, not a 64-bit multiply)."""
        node = lf.node
        kind = cuda.ctype(node.dtype)
        row = row or f"{j} * I"
        if lf.kind == "col":  # along the reduced dims: the same value for every column
            return [f"{ind}a{node.id}[{q}] = {cuda.widen(node.dtype, f'p{node.id}[{j}]')};"]
        scalar = (f"RULES_LANES a{node.id}[{q}][u] = live[u] ? "
                  f"{cuda.widen(node.dtype, f'p{node.id}[base[u] + {row}]')} : ({kind})0;")
        if not cuda.vector_ok(node.dtype):
            return [f"{ind}{scalar}"]
        suffix = cuda.storage(node.dtype)[1]
        return [f"{ind}if (!vec) {{ {scalar} }}",
                f"{ind}else if (live[0]) load_{suffix}<VEC>(p{node.id} + base[0] + {row}, a{node.id}[{q}]);",
                f"{ind}else {{ RULES_LANES a{node.id}[{q}][u] = ({kind})0; }}"]

    def copy_to_shared(self, lf: Leaf, ind: str) -> list[str]:
        """SMEMC: item ``it`` of this thread's slice of ``lf`` copied asynchronously into its own
        slots of shared memory (no registers held while the copies fly, so a block keeps its
        whole tile in flight at the cost of shared memory instead of registers)."""
        node = lf.node
        slot = f"cs{node.id}[(it * BLOCK + (int)threadIdx.x) * VEC"
        size = cuda.storage(node.dtype)[2]
        scalar = (f"RULES_LANES {{ if (live[u]) rules_cp_async<{size}>(&{slot} + u], p{node.id} + base[u] + jq * I); "
                  f"else {slot} + u] = 0; }}")
        if not cuda.vector_ok(node.dtype):
            return [f"{ind}{scalar}"]
        return [f"{ind}if (!vec) {{ {scalar} }}",
                f"{ind}else if (live[0]) rules_cp_async<VEC * {size}>(&{slot}], p{node.id} + base[0] + jq * I);",
                f"{ind}else {{ RULES_LANES {slot} + u] = 0; }}"]

    def store(self, out: Node, ind: str, q: str, j: str, row: str | None = None) -> list[str]:
        row = row or f"{j} * I"
        scalar = (f"RULES_LANES if (live[u]) o{out.id}[base[u] + {row}] = "
                  f"{cuda.narrow(out.dtype, f'r{out.id}[{q}][u]')};")
        if not cuda.vector_ok(out.dtype):
            return [f"{ind}{scalar}"]
        suffix = cuda.storage(out.dtype)[1]
        return [f"{ind}if (!vec) {{ {scalar} }}",
                f"{ind}else if (live[0]) store_{suffix}<VEC>(o{out.id} + base[0] + {row}, r{out.id}[{q}]);"]

    def loop(self, env: cuda.Env, roots: list[Node], update: list[str], stores: list[Node], tag: str) -> list[str]:
        """A pass over this thread's j (from ``jbeg + tw``, step NW): ``roots`` per element, the
        ``update`` lines (``@id@`` is node ``id``'s value; ``q``, ``u`` and ``jq`` in scope),
        then the ``stores``. Main loop unrolled UNROLL times (loads first), then a tail."""
        nodes = self.e_cone(roots + stores)
        leaves = self.elem_leaves(nodes, roots)
        # jI = j * I runs beside j, so an element's offset is base + jI + q * NWI (q * NWI hoisted)
        lines = [f"{_I8}{{", f"{_I12}long long j = jbeg + tw;", f"{_I12}const long long NWI = (long long)NW * I;",
                 f"{_I12}long long jI = j * I;"]
        for main in (True, False):
            if main:
                lines.append(f"{_I12}for (; j + (long long)(UNROLL - 1) * NW < jend; "
                             f"j += (long long)UNROLL * NW, jI += (long long)UNROLL * NWI) {{")
                reps = "UNROLL"
            else:
                lines.append(f"{_I12}for (; j < jend; j += NW, jI += NWI) {{")
                reps = "1"
            lane = env.child(f"{tag}{'m' if main else 't'}_")
            for lf in leaves:
                kind = cuda.ctype(lf.node.dtype)
                dims = f"[{reps}]" if lf.kind == "col" else f"[{reps}][VEC]"
                lines.append(f"{_I16}{kind} a{lf.node.id}{dims};")
                lane.bind(lf.node, f"a{lf.node.id}[q]" + ("" if lf.kind == "col" else "[u]"), kind)
            for out in stores:
                lines.append(f"{_I16}float r{out.id}[{reps}][VEC];")
            lines.append(f"{_I16}#pragma unroll")
            lines.append(f"{_I16}for (int q = 0; q < {reps}; ++q) {{")
            lines.append(f"{_I16}    const long long jq = j + (long long)q * NW, jqI = jI + (long long)q * NWI;")
            for lf in leaves:
                lines += self.load(lf, _I16 + "    ", "q", "jq", "jqI")
            lines.append(f"{_I16}}}")
            lines.append(f"{_I16}#pragma unroll")
            lines.append(f"{_I16}for (int q = 0; q < {reps}; ++q) {{")
            lines.append(f"{_I16}    const long long jq = j + (long long)q * NW, jqI = jI + (long long)q * NWI;")
            lines.append(f"{_I16}    RULES_LANES {{")
            inner = _I16 + " " * 8
            lines += cuda.compute_all(lane, nodes, inner)
            acc_q = "q" if main else "0"
            lines += [inner + _guarded(re.sub(r"@(\d+)@", lambda m: lane.code[int(m.group(1))], u)
                                       .replace("[Q]", f"[{acc_q}]")) for u in update]
            for out in stores:
                lines.append(f"{inner}r{out.id}[q][u] = {lane.value(out)};")
            lines.append(f"{_I16}    }}")
            for out in stores:
                lines += self.store(out, _I16 + "    ", "q", "jq", "jqI")
            lines.append(f"{_I16}}}")
            lines.append(f"{_I12}}}")
        lines.append(f"{_I8}}}")
        return lines

    def loop_cached(self, env: cuda.Env, roots: list[Node], update: list[str], stores: list[Node],
                    tag: str) -> list[str]:
        """The same pass when this thread's whole slice of j (ITEMS values, R <= NW * ITEMS) is
        kept in registers: whole-tensor leaves are loaded by the first pass only (all ITEMS
        loads in flight), later passes (the epilogue) read them back from ``c<id>``."""
        nodes = self.e_cone(roots + stores)
        leaves = self.elem_leaves(nodes, roots)
        lane = env.child(f"{tag}c_")
        lines = []
        fresh = [lf for lf in leaves if lf.kind == "full" and lf.node.id not in self.cached]
        if fresh:
            lines.append(f"{_I8}#pragma unroll")
            lines.append(f"{_I8}for (int it = 0; it < ITEMS; ++it) {{")
            lines.append(f"{_I12}const long long jq = jbeg + tw + (long long)it * NW;")
            lines.append(f"{_I12}if (jq < jend) {{")
            for lf in fresh:
                lines.append(f"#if CS{lf.node.id}_ON")
                lines += self.copy_to_shared(lf, _I16)
                lines.append("#else")
                lines += [line.replace(f"a{lf.node.id}[it]", f"c{lf.node.id}[it]")
                          for line in self.load(lf, _I16, "it", "jq")]
                lines.append("#endif")
                self.cached.add(lf.node.id)
            lines.append(f"{_I12}}}")
            lines.append(f"{_I8}}}")
            lines.append("#if SMEMC")
            lines.append(f"{_I8}rules_cp_wait();  // this thread's own copies: it reads back only its slots")
            lines.append("#endif")
        for lf in leaves:
            kind = cuda.ctype(lf.node.dtype)
            lane.bind(lf.node, f"CV{lf.node.id}(it, u)" if lf.kind == "full" else f"a{lf.node.id}", kind)
        lines.append(f"{_I8}#pragma unroll")
        lines.append(f"{_I8}for (int it = 0; it < ITEMS; ++it) {{")
        lines.append(f"{_I12}const long long jq = jbeg + tw + (long long)it * NW;")
        lines.append(f"{_I12}if (jq < jend) {{")
        for lf in leaves:
            if lf.kind == "col":
                lines.append(f"{_I16}const {cuda.ctype(lf.node.dtype)} a{lf.node.id} = "
                             f"{cuda.widen(lf.node.dtype, f'p{lf.node.id}[jq]')};")
        for out in stores:
            lines.append(f"{_I16}float r{out.id}[1][VEC];")
        lines.append(f"{_I16}RULES_LANES {{")
        inner = _I16 + "    "
        lines += cuda.compute_all(lane, nodes, inner)
        lines += [inner + _guarded(re.sub(r"@(\d+)@", lambda m: lane.code[int(m.group(1))], u)
                                   .replace("[Q]", "[it % UNROLL]")) for u in update]
        for out in stores:
            lines.append(f"{inner}r{out.id}[0][u] = {lane.value(out)};")
        lines.append(f"{_I16}}}")
        for out in stores:
            lines += self.store(out, _I16, "0", "jq")
        lines += [f"{_I12}}}", f"{_I8}}}"]
        return lines

    # -- reductions ---------------------------------------------------------------------------
    def accumulators(self, reds: list[Node], env: cuda.Env) -> tuple[list[str], list[str], list[Node]]:
        decl, update, operands = [], [], []
        fused_max = set(self.plan.fused.values())

        def arr(name: str, kind: str, init: str) -> None:
            decl.append(f"{kind} {name}[UNROLL][VEC];")
            decl.append(f"_Pragma(\"unroll\") for (int q = 0; q < UNROLL; ++q) RULES_LANES {name}[q][u] = {init};")

        for red in reds:
            kind, x, i = red.args["kind"], red.args["self"], red.id
            if red.id in fused_max:
                continue
            if red.id in self.plan.fused:
                X = _exp_of_diff(x)[0]
                arr(f"lm{i}", "float", "RULES_NEG_INF")
                arr(f"ls{i}", "float", "0.0f")
                update.append(f"lse_add(lm{i}[Q][u], ls{i}[Q][u], @{X.id}@);")
                operands.append(X)
                continue
            operands.append(x)
            v = f"@{x.id}@"
            if kind in ("sum", "mean"):
                arr(f"acc{i}", "float", "0.0f")
                update.append(f"acc{i}[Q][u] += {v};")
            elif kind == "prod":
                arr(f"acc{i}", "float", "1.0f")
                update.append(f"acc{i}[Q][u] *= {v};")
            elif kind in ("max", "min"):
                arr(f"acc{i}", "float", "RULES_NEG_INF" if kind == "max" else "RULES_POS_INF")
                update.append(f"acc{i}[Q][u] = rules_{kind}(acc{i}[Q][u], {v});")
            elif kind in _ARG:
                arr(f"av{i}", "float", "RULES_NEG_INF" if kind == "argmax" else "RULES_POS_INF")
                arr(f"ai{i}", "long long", "RULES_ARG_EMPTY")
                # jq only grows for a slot ([Q][u]): the branch-free scan step (common.cu)
                update.append(f"{{ const float v_ = {v}; const bool t_ = {_LIVE} & rules_argtake(v_, av{i}[Q][u], "
                              f"ai{i}[Q][u], {str(kind == 'argmax').lower()}); av{i}[Q][u] = t_ ? v_ : av{i}[Q][u]; "
                              f"ai{i}[Q][u] = t_ ? jq : ai{i}[Q][u]; }}")
            elif kind == "lse":
                arr(f"lm{i}", "float", "RULES_NEG_INF")
                arr(f"ls{i}", "float", "0.0f")
                update.append(f"lse_add(lm{i}[Q][u], ls{i}[Q][u], {v});")
            elif kind == "var" and red.id in self.plan.onepass_var:
                arr(f"vs1_{i}", "float", "0.0f")
                arr(f"vs2_{i}", "float", "0.0f")
                update.append(f"{{ const float d_ = {v} - shift{i}[u]; vs1_{i}[Q][u] += d_; "
                              f"vs2_{i}[Q][u] = fmaf(d_, d_, vs2_{i}[Q][u]); }}")
            elif kind == "var":
                arr(f"acc{i}", "float", "0.0f")
                mean = env.value(red.args["mean"])
                update.append(f"{{ const float d_ = {v} - {mean}; acc{i}[Q][u] = fmaf(d_, d_, acc{i}[Q][u]); }}")
            else:
                raise Unsupported(f"a {kind} reduction over non-trailing dims", red.line)
        return [_I8 + d for d in decl], update, operands

    def fold(self, reds: list[Node]) -> list[str]:
        """Fold the UNROLL accumulators into [0], then merge across the block's warps."""
        lines = []
        for red in self.state_reds(reds):
            kind = red.args["kind"]
            states = _states(red, self.plan)
            names = [s for s, _ in states]
            if states[0][1] == "lse_m":
                merge = f"lse_merge({names[0]}[0][u], {names[1]}[0][u], {names[0]}[q][u], {names[1]}[q][u]);"
                warp = f"colwarp_lse<NW, VEC>({names[0]}[0], {names[1]}[0]);"
            elif states[0][1] == "arg_v":
                is_max = str(kind == "argmax").lower()
                merge = (f"if (rules_argbetter({names[0]}[q][u], {names[1]}[q][u], {names[0]}[0][u], {names[1]}[0][u], "
                         f"{is_max})) {{ {names[0]}[0][u] = {names[0]}[q][u]; {names[1]}[0][u] = {names[1]}[q][u]; }}")
                warp = f"colwarp_arg<NW, VEC>({names[0]}[0], {names[1]}[0], {is_max});"
            else:
                ops_ = {"sum": "{a} += {b};", "prod": "{a} *= {b};", "max": "{a} = rules_max({a}, {b});",
                        "min": "{a} = rules_min({a}, {b});"}
                merge = " ".join(ops_[m].format(a=f"{n}[0][u]", b=f"{n}[q][u]") for n, m in states)
                warp = " ".join(f"colwarp_{m}<NW, VEC>({n}[0]);" for n, m in states)
            lines.append(f"{_I8}_Pragma(\"unroll\") for (int q = 1; q < UNROLL; ++q) RULES_LANES {{ {merge} }}")
            lines.append(f"{_I8}{warp}")
        return lines

    def state_reds(self, reds: list[Node]) -> list[Node]:
        fused_max = set(self.plan.fused.values())
        return [r for r in reds if r.id not in fused_max]

    def finalize(self, reds: list[Node], env: cuda.Env) -> list[str]:
        lines = []
        for red in self.state_reds(reds):
            i = red.id
            kt = cuda.ctype(red.dtype)
            if red.id in self.plan.fused:
                m = self.plan.fused[red.id]
                lines.append(f"float cv{m}[VEC], cv{i}[VEC];")
                lines.append(f"RULES_LANES {{ cv{m}[u] = lm{i}[0][u]; cv{i}[u] = ls{i}[0][u]; }}")
                env.bind(self.members[m], f"cv{m}[u]", "float")
                env.bind(red, f"cv{i}[u]", "float")
                continue
            value = reduced_value(red, red.id in self.plan.onepass_var, lambda n, i=i: f"{n}{i}[0][u]", "R")
            if kt == "float":
                value = cuda.round_to(red.dtype, value)
            lines.append(f"{kt} cv{i}[VEC];")
            lines.append(f"RULES_LANES cv{i}[u] = {value};")
            env.bind(red, f"cv{i}[u]", kt)
        return [_I8 + line for line in lines]

    def shifts(self, reds: list[Node], env: cuda.Env) -> list[str]:
        """One-pass variances: each column's shift is its element at j == 0 (same in every
        warp and every slice of j, so partial sums merge)."""
        lines = []
        for red in reds:
            if red.id not in self.plan.onepass_var:
                continue
            x = red.args["self"]
            sub = env.child(f"k{red.id}_")
            pre = []
            nodes = self.e_cone([x])
            for lf in self.elem_leaves(nodes, [x]):
                node = lf.node
                if lf.kind == "col":
                    src = cuda.widen(node.dtype, f"p{node.id}[0]")
                else:
                    src = f"live[u] ? {cuda.widen(node.dtype, f'p{node.id}[base[u]]')} : 0.0f"
                pre.append(f"const {cuda.ctype(node.dtype)} k{red.id}_l{node.id} = {src};")
                sub.bind(node, f"k{red.id}_l{node.id}", cuda.ctype(node.dtype))
            pre += [s.strip() for s in cuda.compute_all(sub, nodes, "")]
            lines.append(f"{_I8}float shift{red.id}[VEC];")
            lines.append(f"{_I8}RULES_LANES {{ {' '.join(pre)} shift{red.id}[u] = {sub.value(x)}; }}")
        return lines

    # -- kernel bodies ------------------------------------------------------------------------
    def column_outputs(self, env: cuda.Env) -> list[str]:
        if not self.plan.row_outputs:
            return []
        lines = [f"{_I8}if (tw == 0) {{"]
        for out in self.plan.row_outputs:
            lines.append(f"{_I12}RULES_LANES if (live[u]) o{out.id}[c[u]] = {cuda.narrow(out.dtype, env.value(out))};")
        lines.append(f"{_I8}}}")
        return lines

    def body(self, what: str, cached: bool = False) -> list[str]:
        """``what``: ``direct`` (the whole job), ``partial`` (phase 1 over a slice of j, states
        to the workspace) or ``merge`` (states from the workspace, then the per-column work).
        ``cached``: the thread's slice of j stays in registers between passes."""
        env = cuda.Env(self.scalars, "x")
        lines = self.setup(env)
        self.cached: set[int] = set()
        loop = self.loop_cached if cached else self.loop
        if cached:  # registers, or (SMEMC) shared memory in the operand's storage type
            for lf in self.leaves:
                if lf.kind == "full" and lf.node.op != "const":
                    i, store = lf.node.id, cuda.storage(lf.node.dtype)[0]
                    size = cuda.storage(lf.node.dtype)[2]
                    # static shared memory stops at 48 KB; the column merges take up to 12 KB
                    lines += [f"#define CS{i}_ON (SMEMC && ITEMS * BLOCK * VEC * {size} <= 36864)",
                              f"#if CS{i}_ON",
                              f"{_I8}alignas(16) __shared__ {store} cs{i}[ITEMS * BLOCK * VEC];",
                              f"#define CV{i}(it_, u_) "
                              f"{cuda.widen(lf.node.dtype, f'cs{i}[((it_) * BLOCK + (int)threadIdx.x) * VEC + (u_)]')}",
                              "#else",
                              f"{_I8}{cuda.ctype(lf.node.dtype)} c{i}[ITEMS][VEC];",
                              f"#define CV{i}(it_, u_) c{i}[it_][u_]",
                              "#endif"]
        plan = self.plan
        computed: set[int] = set()
        for p in range(1, plan.phases + 1):
            reds = [r for r in plan.reds if plan.phase[r.id] == p]
            if what == "merge":
                lines += self.merge_states(reds)
            else:
                lines += self.shifts(reds, env)
                decl, update, operands = self.accumulators(reds, env)
                lines += decl
                stores = plan.early if p == 1 else []
                lines += loop(env, operands, update, stores, f"e{p}")
                lines += self.fold(reds)
            if what == "partial":
                return lines + self.write_states(reds)
            lines += self.finalize(reds, env)
            lines += self.column_values(env, computed)
        if plan.late:
            lines += loop(env, [], [], plan.late, "f")
        undef = [f"#undef CV{i}\n#undef CS{i}_ON" for i in sorted(self.cached)] if cached else []
        return lines + self.column_outputs(env) + undef

    def state_layout(self, reds: list[Node]) -> list[tuple[str, str, int]]:
        """(state array, merge kind, slot) in the workspace; float and int64 slots counted apart."""
        out, nf, ni = [], 0, 0
        for red in self.state_reds(reds):
            for name, merge in _states(red, self.plan):
                if merge == "arg_i":
                    out.append((name, merge, ni))
                    ni += 1
                else:
                    out.append((name, merge, nf))
                    nf += 1
        return out

    def n_float_states(self) -> int:
        return sum(1 for _, m, _ in self.state_layout(self.plan.reds) if m != "arg_i")

    def n_int_states(self) -> int:
        return sum(1 for _, m, _ in self.state_layout(self.plan.reds) if m == "arg_i")

    def write_states(self, reds: list[Node]) -> list[str]:
        lines = [f"{_I8}if (tw == 0) {{", f"{_I12}RULES_LANES if (live[u]) {{"]
        for name, merge, slot in self.state_layout(reds):
            buf = "wsi" if merge == "arg_i" else "ws"
            lines.append(f"{_I16}{buf}[({slot} * S + (long long)blockIdx.y) * ncols + c[u]] = {name}[0][u];")
        lines += [f"{_I12}}}", f"{_I8}}}"]
        return lines

    def merge_states(self, reds: list[Node]) -> list[str]:
        layout = self.state_layout(reds)
        lines = []
        init = {"sum": "0.0f", "prod": "1.0f", "max": "RULES_NEG_INF", "min": "RULES_POS_INF", "lse_m": "RULES_NEG_INF",
                "lse_s": "0.0f", "arg_i": "0x7fffffffffffffffLL"}
        for red in self.state_reds(reds):
            kind = red.args["kind"]
            for name, merge in _states(red, self.plan):
                ctype_ = "long long" if merge == "arg_i" else "float"
                value = init.get(merge) or ("RULES_NEG_INF" if kind == "argmax" else "RULES_POS_INF")
                lines.append(f"{_I8}{ctype_} {name}[1][VEC];")
                lines.append(f"{_I8}RULES_LANES {name}[0][u] = {value};")
        lines.append(f"{_I8}for (long long s = 0; s < S; ++s) {{")
        lines.append(f"{_I12}RULES_LANES if (live[u]) {{")
        slot = {name: (merge, k) for name, merge, k in layout}

        def at(name: str) -> str:
            merge, k = slot[name]
            return f"{'wsi' if merge == 'arg_i' else 'ws'}[({k} * S + s) * ncols + c[u]]"

        for red in self.state_reds(reds):
            states = _states(red, self.plan)
            names = [n for n, _ in states]
            if states[0][1] == "lse_m":
                lines.append(f"{_I16}lse_merge({names[0]}[0][u], {names[1]}[0][u], {at(names[0])}, {at(names[1])});")
            elif states[0][1] == "arg_v":
                is_max = str(red.args["kind"] == "argmax").lower()
                lines.append(f"{_I16}{{ const float v_ = {at(names[0])}; const long long i_ = {at(names[1])}; "
                             f"if (rules_argbetter(v_, i_, {names[0]}[0][u], {names[1]}[0][u], {is_max})) "
                             f"{{ {names[0]}[0][u] = v_; {names[1]}[0][u] = i_; }} }}")
            else:
                ops_ = {"sum": "{a} += {b};", "prod": "{a} *= {b};", "max": "{a} = rules_max({a}, {b});",
                        "min": "{a} = rules_min({a}, {b});"}
                for n, m in states:
                    lines.append(_I16 + ops_[m].format(a=f"{n}[0][u]", b=at(n)))
        lines += [f"{_I12}}}", f"{_I8}}}"]
        return lines


def _signature(gen: ColGen) -> tuple[list[str], list[str]]:
    params, tensors = [], []
    for lf in gen.leaves:
        if lf.node.op == "const":
            continue
        params.append(pointer_param(lf.node, f"p{lf.node.id}"))
        tensors.append(gen.ctx.py(lf.node))
    for out in gen.region.outputs:
        params.append(pointer_param(out, f"o{out.id}", const=False))
        tensors.append(gen.ctx.py(out))
    return params, tensors


def generate(ctx: Ctx, region: Region) -> KernelCode:
    variant = ctx.variant.get(region.index, {})
    mode = variant.get("mode", "col")
    gen = ColGen(ctx, region, variant)
    split = bool(variant.get("split")) and can_split(region, gen.plan)
    name = ctx.kernel_name(region)
    params, tensors = _signature(gen)
    cached = bool(variant.get("cached")) and not split
    bodies = {"direct": gen.body("direct")}
    if cached:
        bodies["cached"] = gen.body("direct", cached=True)
    if split:
        bodies["partial"] = gen.body("partial")
        bodies["merge"] = gen.body("merge")
    params += gen.scalars.c_params()
    ws_params = "float* __restrict__ ws, long long* __restrict__ wsi, "
    texts = []
    kernels = {}
    for what, body in bodies.items():
        m = "col" if what == "merge" else mode
        suffix = {"direct": mode, "cached": f"{mode}_cached", "partial": f"{mode}_partial", "merge": "merge"}[what]
        kernels[what] = f"{name}_{suffix}"
        ws = ws_params if what in ("partial", "merge") else ""
        texts.append(fill("col.cu", NAME=name, MODE=suffix, PARAMS=join_params(params), WS=ws,
                          NTC=MODES[m]["NTC"], NW=MODES[m]["NW"], TC=MODES[m]["TC"], TW=MODES[m]["TW"],
                          BODY="\n".join(body)))
    forward = _forward(ctx, region, gen, kernels, mode, split, tensors)
    return KernelCode("\n\n".join(texts), forward, list(kernels.values()))


def _forward(ctx: Ctx, region: Region, gen: ColGen, kernels: dict[str, str], mode: str, split: bool,
             tensors: list[str]) -> list[str]:
    i = region.index
    anchor = ctx.py(region.anchor)
    a, b = region.span
    lines = [f"O{i} = math.prod({anchor}.shape[:{a}])",
             f"R{i} = math.prod({anchor}.shape[{a}:{b}])",
             f"I{i} = math.prod({anchor}.shape[{b}:])",
             f"ncols{i} = O{i} * I{i}"]
    for out in region.outputs:
        lines.append(ctx.alloc(region, out))
    lines.append(f"if ncols{i} > 0 and R{i} > 0:")
    body = []
    wide = [ctx.py(lf.node) for lf in gen.leaves if lf.kind == "full" and lf.node.op != "const"]
    wide += [ctx.py(o) for o in gen.plan.early + gen.plan.late]
    vectorable = all(cuda.vector_ok(lf.node.dtype) for lf in gen.leaves if lf.kind == "full") and \
        all(cuda.vector_ok(o.dtype) for o in gen.plan.early + gen.plan.late)
    conds = ["VEC > 1", f"I{i} % VEC == 0"] + ([f"rules_aligned(VEC, {', '.join(wide)})"] if wide else [])
    body.append(f"vec{i} = {' and '.join(conds) if vectorable else 'False'}")
    per_block = "BLOCK * VEC" if mode == "col" else "32 * VEC"
    body.append(f"cblocks{i} = (ncols{i} + {per_block} - 1) // ({per_block})")
    scalars = list(gen.scalars.params.values())
    dims = [f"O{i}", f"R{i}", f"I{i}"]
    if split:
        nw = "1" if mode == "col" else "(BLOCK // 32)"
        body.append(f"S{i} = max(1, min(SPLIT, self.rules_cap // cblocks{i}, R{i} // ({nw} * UNROLL * 4)))")
        body.append(f"if S{i} > 1:")
        body.append(f"    ws{i} = torch.empty({gen.n_float_states()} * S{i} * ncols{i}, dtype=torch.float32, "
                    f"device={anchor}.device)")
        body.append(f"    wsi{i} = torch.empty(max(1, {gen.n_int_states()} * S{i} * ncols{i}), dtype=torch.int64, "
                    f"device={anchor}.device)")
        pargs = tensors + scalars + dims + [f"S{i}", f"ws{i}", f"wsi{i}", f"int(vec{i})"]
        body.append(f'    self.rules_mod.launch("{kernels["partial"]}", grid=(min(cblocks{i}, self.rules_cap), S{i}), '
                    f"block=(BLOCK,), args=({', '.join(pargs)},))")
        margs = tensors + scalars + dims + [f"S{i}", f"ws{i}", f"wsi{i}", "0"]
        body.append(f'    self.rules_mod.launch("{kernels["merge"]}", grid=(rules_grid(ncols{i}, BLOCK * VEC, '
                    f"self.rules_cap),), block=(BLOCK,), args=({', '.join(margs)},))")
        body.append("else:")
        dargs = tensors + scalars + dims + ["1", f"int(vec{i})"]
        body.append(f'    self.rules_mod.launch("{kernels["direct"]}", grid=(min(cblocks{i}, self.rules_cap),), '
                    f"block=(BLOCK,), args=({', '.join(dargs)},))")
    else:
        dargs = tensors + scalars + dims + ["1", f"int(vec{i})"]
        kernel = f'"{kernels["direct"]}"'
        if "cached" in kernels:
            nw = "1" if mode == "col" else "(BLOCK // 32)"
            kernel = f'"{kernels["cached"]}" if R{i} <= {nw} * ITEMS else "{kernels["direct"]}"'
        body.append(f"kernel{i} = {kernel}")
        body.append(f"self.rules_mod.launch(kernel{i}, grid=(min(cblocks{i}, self.rules_cap),), "
                    f"block=(BLOCK,), args=({', '.join(dargs)},))")
    return lines + ["    " + x for x in body]
