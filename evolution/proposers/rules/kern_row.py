"""Row regions: reductions over the trailing dims with their prologue and epilogue.

Covers sum / mean / max / argmax / logsumexp, softmax and log-softmax, LayerNorm, RMSNorm
(with a residual add and two outputs), GroupNorm (rows of C/G*HW elements), and the per-row
part of cross-entropy. Reductions are scheduled in phases (one pass over the row each): a
reduction whose operand needs another's result runs one phase later, except that
``sum(exp(x - max(x)))`` shares a phase with ``max(x)`` as an online (max, sum) pair when the
variant asks for it, and a variance shares its mean's phase as shifted sums (one-pass).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from evolution.proposers.rules import cuda
from evolution.proposers.rules.codegen import Ctx, KernelCode, fill, join_params, pointer_param
from evolution.proposers.rules.ir import Node, Scalar, Unsupported
from evolution.proposers.rules.plan import Leaf, Region

MODES = {
    "block": {"NT": "BLOCK", "TID": "(int)threadIdx.x", "ROW0": "(long long)blockIdx.x",
              "RSTEP": "(long long)gridDim.x", "cached": False, "fallback": None},
    "warp": {"NT": "32", "TID": "(int)(threadIdx.x & 31)",
             "ROW0": "(long long)blockIdx.x * (BLOCK / 32) + (threadIdx.x >> 5)",
             "RSTEP": "(long long)gridDim.x * (BLOCK / 32)", "cached": False, "fallback": None},
}
MODES["cached"] = dict(MODES["block"], cached=True, fallback="block")
MODES["warpcached"] = dict(MODES["warp"], cached=True, fallback="warp")
_I4, _I8, _I12 = " " * 8, " " * 12, " " * 16


@dataclass
class RowPlan:
    """Phases of one row region (independent of the CUDA mode)."""

    reds: list[Node]
    phase: dict[int, int]
    fused: dict[int, int]  # sum-of-exp red id -> its max red id (online pair)
    onepass_var: set[int]
    phases: int
    early: list[Node] = field(default_factory=list)  # per-element outputs needing no reduction
    late: list[Node] = field(default_factory=list)  # per-element outputs written in the last pass
    row_outputs: list[Node] = field(default_factory=list)


def _members(region: Region) -> dict[int, Node]:
    return {n.id: n for n in region.nodes}


def _exp_of_diff(node: Node) -> tuple[Node, Node] | None:
    """``(X, m)`` when ``node`` is ``exp(X - m)``."""
    if node.op != "exp" or not isinstance(node.args.get("self"), Node):
        return None
    d = node.args["self"]
    if d.op != "sub" or not isinstance(d.args.get("other"), Node) or d.args.get("alpha", 1) != 1:
        return None
    return d.args["self"], d.args["other"]


def schedule(region: Region, online: bool, onepass: bool) -> RowPlan:
    members = _members(region)
    live: set[int] = set()  # what the outputs need (torch.max(x, dim)[0] also traces the argmax)
    stack = list(region.outputs)
    while stack:
        node = stack.pop()
        if node.id in live or node.id not in members:
            continue
        live.add(node.id)
        stack += node.operands()
    reds = [n for n in region.nodes if n.op == "red" and n.id in live]
    phase: dict[int, int] = {}
    fused: dict[int, int] = {}
    onepass_var: set[int] = set()
    memo: dict[int, int] = {}

    def need(node: Node) -> int:
        if node.id not in members:
            return 0
        if node.op == "red":
            return phase[node.id]
        if node.id not in memo:
            memo[node.id] = max((need(o) for o in node.operands()), default=0)
        return memo[node.id]

    for red in reds:
        x = red.args["self"]
        p = 1 + need(x)
        kind = red.args["kind"]
        if kind == "var":
            mean = red.args["mean"]
            if onepass and mean.id in phase and phase[mean.id] == p:
                onepass_var.add(red.id)
            else:
                p = max(p, phase.get(mean.id, 0) + 1)
        if kind == "sum" and online:
            pair = _exp_of_diff(x)
            if pair is not None:
                X, m = pair
                if (m.op == "red" and m.args["kind"] == "max" and m.args["self"] is X and m.args["keepdim"]
                        and m.id in phase and need(X) < phase[m.id]):
                    fused[red.id] = m.id
                    p = phase[m.id]
        phase[red.id] = p
        memo.clear()
    plan = RowPlan(reds, phase, fused, onepass_var, max(phase.values(), default=0))
    for out in region.outputs:
        level = region.level(out)
        if level == "E":
            (plan.early if need(out) == 0 and plan.phases > 0 else plan.late).append(out)
        else:
            plan.row_outputs.append(out)
    return plan


def var_denominator(red: Node, length: str) -> str:
    """``length`` (the reduced count, a C expression) less the variance's correction."""
    c = red.args.get("correction", 0)
    if isinstance(c, Scalar):
        raise Unsupported("a variance correction read from the model", red.line)
    return f"(float){length}" if not c else f"(float)({length} - {int(c)})"


def reduced_value(red: Node, onepass_var: bool, state: Any, length: str) -> str:
    """The value of a finished reduction from its merged state, as a C expression.

    ``state(prefix)`` names one of the reduction's state variables (``acc``, ``ai``, ``lm``,
    ``ls``, ``vs1_``, ``vs2_``): row kernels hold scalars, column kernels a lane of an array.
    ``length`` is the reduced count (``D`` along rows, ``R`` along columns)."""
    kind = red.args["kind"]
    if kind in ("sum", "max", "min", "prod"):
        return state("acc")
    if kind == "mean":
        return f"{state('acc')} * (1.0f / (float){length})"
    if kind in ("argmax", "argmin"):
        return state("ai")
    if kind == "lse":
        return f"{state('lm')} + logf({state('ls')})"
    if kind == "var":
        denom = var_denominator(red, length)
        if onepass_var:
            s1, s2 = state("vs1_"), state("vs2_")
            return f"fmaxf(({s2} - {s1} * ({s1} / (float){length})) / {denom}, 0.0f)"
        return f"{state('acc')} / {denom}"
    raise Unsupported(f"a {kind} reduction", red.line)


class RowGen:
    def __init__(self, ctx: Ctx, region: Region, variant: dict[str, Any]) -> None:
        self.ctx = ctx
        self.region = region
        self.members = _members(region)
        self.plan = schedule(region, variant.get("online", True), variant.get("var", "onepass") == "onepass")
        self.leaves: list[Leaf] = list({lf.node.id: lf for lf in region.leaves.values()}.values())
        self.scalars = cuda.Scalars()
        self.group = next((n for n in region.nodes if n.op == "rowview"), None)
        self.loaded_cache: set[int] = set()
        # Bounds of the streaming passes: the whole row [0, D), or a chunk [lo_, hi_) of it
        # (row-split kernels, ``kern_rowsplit``), which also read rows once per pass only.
        self.lo: str | None = None
        self.hi = "D"
        self.keep_hint = "RULES_EVICT_LAST"
        # Rows of any length by whole vectors (vec == 2): each row's scalar head up to the first
        # VEC-aligned element, its aligned middle by vectors, its scalar tail. Only for the
        # plain row kernels (set by ``generate``) and operands laid out like the row (no weights
        # along it, no GroupNorm channels): every operand then has the same misalignment.
        self.allow_unaligned = False

    # -- helpers ------------------------------------------------------------------------------
    def level(self, node: Node) -> str:
        return self.region.level(node) if node.id in self.members else "leaf"

    def e_cone(self, roots: list[Node], stop: set[int] | None = None) -> list[Node]:
        """Per-element members that ``roots`` need (stopping at per-row values and ``stop``)."""
        need: dict[int, Node] = {}
        stop = stop or set()
        stack = [r for r in roots if r.id in self.members and self.level(r) == "E" and r.id not in stop]
        while stack:
            node = stack.pop()
            if node.id in need:
                continue
            need[node.id] = node
            for o in node.operands():
                if o.id in self.members and self.level(o) == "E" and o.op != "red" and o.id not in stop:
                    stack.append(o)
        return [n for n in self.region.nodes if n.id in need]

    def leaf_of(self, node: Node) -> Leaf | None:
        for lf in self.leaves:
            if lf.node.id == node.id:
                return lf
        return None

    def used_leaves(self, nodes: list[Node], roots: list[Node] = ()) -> list[Leaf]:
        ids = []
        for n in list(nodes) + [r for r in roots if self.leaf_of(r) is not None]:
            for o in ([n] if self.leaf_of(n) is not None else n.operands()):
                lf = self.leaf_of(o)
                if lf is not None and lf.kind in ("full", "col", "gchan") and lf.node.id not in ids:
                    ids.append(lf.node.id)
        return [self.leaf_of_id(i) for i in ids]

    def leaf_of_id(self, node_id: int) -> Leaf:
        return next(lf for lf in self.leaves if lf.node.id == node_id)

    # -- row scope ----------------------------------------------------------------------------
    def setup(self, env: cuda.Env) -> list[str]:
        lines = []
        for lf in self.leaves:
            node = lf.node
            kind = cuda.ctype(node.dtype)
            if node.op == "const":
                env.bind(node, cuda.literal(node.args["value"], kind), kind)
            elif lf.kind == "full":
                ptr_type = cuda.storage(node.dtype)[0]
                lines.append(f"{_I8}const {ptr_type}* __restrict__ p{node.id}r = p{node.id} + row * D;")
            elif lf.kind == "row":
                lines.append(f"{_I8}const {kind} rl{node.id} = {cuda.widen(node.dtype, f'p{node.id}[row]')};")
                env.bind(node, f"rl{node.id}", kind)
            elif lf.kind == "scalar":
                lines.append(f"{_I8}const {kind} rl{node.id} = {cuda.widen(node.dtype, f'p{node.id}[0]')};")
                env.bind(node, f"rl{node.id}", kind)
        for out in self.plan.early + self.plan.late:
            lines.append(f"{_I8}{cuda.storage(out.dtype)[0]}* __restrict__ o{out.id}r = o{out.id} + row * D;")
        if self.group is not None:
            lines.append(f"{_I8}const long long gbase = (row % G) * (D / SEG);")
        if self.allow_unaligned:
            lines.append(f"{_I8}const long long h0_ = vec == 2 ? ((VEC - (row * D) % VEC) % VEC < D ? "
                         f"(VEC - (row * D) % VEC) % VEC : D) : 0;")
            lines.append(f"{_I8}const long long hv_ = vec == 2 ? h0_ + (D - h0_) / VEC * VEC : D;")
        for node in self.region.nodes:  # scalar-only arithmetic
            if self.level(node) == "S" and node.op not in ("red",) and all(
                    env.has(o) for o in node.operands()):
                stmt = env.compute(node)
                if stmt:
                    lines.append(_I8 + stmt)
        return lines

    def eval_at(self, env: cuda.Env, node: Node, index: str, tag: str) -> tuple[list[str], str]:
        """Statements computing per-element ``node`` at element ``index`` of the row."""
        sub = env.child(f"{tag}_")
        lines = []
        for lf in self.used_leaves(self.e_cone([node]), [node]):
            if env.has(lf.node):
                continue
            src = self.load_one(lf, index)
            lines.append(f"const {cuda.ctype(lf.node.dtype)} {tag}_l{lf.node.id} = {src};")
            sub.bind(lf.node, f"{tag}_l{lf.node.id}", cuda.ctype(lf.node.dtype))
        lines += [s.strip() for s in cuda.compute_all(sub, self.e_cone([node]), "")]
        return lines, sub.value(node)

    def load_one(self, lf: Leaf, index: str) -> str:
        node = lf.node
        if lf.kind == "full":
            return cuda.widen(node.dtype, f"p{node.id}r[{index}]")
        if lf.kind == "col":
            return cuda.widen(node.dtype, f"p{node.id}[{index}]")
        if lf.kind == "gchan":
            return cuda.widen(node.dtype, f"p{node.id}[gbase + ({index}) / SEG]")
        raise Unsupported(f"leaf kind {lf.kind} read per element")

    # -- one pass over the row ----------------------------------------------------------------
    def loop(self, env: cuda.Env, mode: dict[str, Any], roots: list[Node], update: list[str],
             stores: list[Node], readback: dict[int, Node], tag: str) -> list[str]:
        """A pass computing ``roots`` (and what they need) per element, then the ``update``
        lines (``@id@`` stands for node ``id``'s value), then storing ``stores``."""
        if not mode["cached"]:
            return self.stream_loop(env, roots, update, stores, readback, tag)
        return self.cached_loop(env, roots, update, stores, tag)

    def cached_loop(self, env: cuda.Env, roots: list[Node], update: list[str], stores: list[Node],
                    tag: str) -> list[str]:
        """A pass over the thread's ITEMS vectors of a row kept in registers: every load of the
        pass first (the row on its first pass into ``c<id>``, other operands into ``a<id>``),
        then the computing, reducing and storing. Interleaved, a weight's load waited behind
        the previous vector's store: eight L2 round trips in a row per pass (RMSNorm over 8192
        fp32 on the H200: 1.84 ms, against 1.13 for the streaming block kernel)."""
        nodes = self.e_cone(roots + stores)
        lane = env.child(f"{tag}_")
        ind = _I12 + "    "
        head = [f"{_I8}#pragma unroll", f"{_I8}for (int it = 0; it < ITEMS; ++it) {{",
                f"{_I12}const long long base = ((long long)it * NT + tid) * VEC;",
                f"{_I12}if (base < D) {{", f"{ind}const bool full = vec && base + VEC <= D;"]
        tail = [f"{_I12}}}", f"{_I8}}}"]
        decl: list[str] = []
        loads: list[str] = []
        for lf in self.used_leaves(nodes, roots):
            node = lf.node
            if lane.has(node):
                continue
            if lf.kind == "full":
                if node.id not in self.loaded_cache:
                    self.loaded_cache.add(node.id)
                    loads += self.vec_load(ind, f"p{node.id}r", node.dtype, f"c{node.id}[it]")
                lane.bind(node, f"c{node.id}[it][u]", cuda.ctype(node.dtype))
                continue
            kind = cuda.ctype(node.dtype)
            decl.append(f"{_I8}{kind} a{node.id}[ITEMS][VEC];")
            if lf.kind == "gchan":
                channel = cuda.widen(node.dtype, f"p{node.id}[gbase + base / SEG]")
                loads.append(f"{ind}if (full) {{ const {kind} s_ = {channel}; RULES_LANES a{node.id}[it][u] = s_; }}")
                loads.append(f"{ind}else RULES_LANES a{node.id}[it][u] = base + u < D ? "
                             f"{cuda.widen(node.dtype, f'p{node.id}[gbase + (base + u) / SEG]')} : ({kind})0;")
            else:
                loads += self.vec_load(ind, f"p{node.id}", node.dtype, f"a{node.id}[it]")
            lane.bind(node, f"a{node.id}[it][u]", kind)
        lines = decl + (head + loads + tail if loads else [])
        lines += head + self.lanes(ind, lane, nodes, update, stores, "j < D")
        for out in stores:
            lines += self.vec_store(ind, f"o{out.id}r", out.dtype, f"r{out.id}")
        lines += tail
        self.last_lane = lane
        return lines

    def stream_loop(self, env: cuda.Env, roots: list[Node], update: list[str], stores: list[Node],
                    readback: dict[int, Node], tag: str) -> list[str]:
        """A streaming pass: each step first loads ITEMS vectors of every operand (so ITEMS x
        16 bytes per operand are in flight per thread), then computes, reduces and stores them.

        The pass is written twice: for ``vec`` rows (the host checked D % VEC == 0 and the
        alignment, so every vector is whole: no per-element guards, 16-byte accesses with L2
        eviction hints) and for the rest (element by element). Separate paths keep the
        guards' registers out of the fast one."""
        last_pass = tag == "f" or (not self.plan.late and tag == f"e{self.plan.phases}")
        if self.allow_unaligned and self.lo is None:
            parts = {}
            for key, lo, hi, whole in (("fast", "h0_", "hv_", True), ("head", None, "h0_", False),
                                       ("tail", "hv_", "D", False), ("slow", None, "D", False)):
                self.lo, self.hi = lo, hi
                parts[key] = self._stream_pass(env, roots, update, stores, readback, tag + key[0], whole, last_pass)
            self.lo, self.hi = None, "D"
            return ([f"{_I8}if (vec) {{"] + parts["fast"] + [f"{_I8}if (vec == 2) {{"] + parts["head"] + parts["tail"]
                    + [f"{_I8}}}", f"{_I8}}} else {{"] + parts["slow"] + [f"{_I8}}}"])
        fast = self._stream_pass(env, roots, update, stores, readback, tag, True, last_pass)
        slow = self._stream_pass(env, roots, update, stores, readback, tag + "s", False, last_pass)
        return [f"{_I8}if (vec) {{"] + fast + [f"{_I8}}} else {{"] + slow + [f"{_I8}}}"]

    def _stream_pass(self, env: cuda.Env, roots: list[Node], update: list[str], stores: list[Node],
                     readback: dict[int, Node], tag: str, whole: bool, last_pass: bool) -> list[str]:
        nodes = self.e_cone(roots + stores, set(readback))
        lane = env.child(f"{tag}_")
        step = [f"{_I12}#pragma unroll", f"{_I12}for (int it = 0; it < ITEMS; ++it) {{",
                f"{_I12}    const long long base = base0 + (long long)it * NT * VEC;",
                f"{_I12}    if (base < {self.hi}) {{"]
        ind = _I12 + " " * 8
        decl: list[str] = []
        loads: list[str] = []
        for out in readback.values():  # written by this thread earlier: plain loads
            decl.append(f"{_I12}float rb{out.id}[ITEMS][VEC];")
            loads += self.stream_load(ind, f"o{out.id}r", out.dtype, f"rb{out.id}[it]", whole, "RULES_EVICT_NORMAL",
                                      self.hi)
            lane.bind(out, f"rb{out.id}[it][u]", cuda.ctype(out.dtype))
        for lf in self.used_leaves(nodes, roots):
            node = lf.node
            if lane.has(node):
                continue
            kind = cuda.ctype(node.dtype)
            decl.append(f"{_I12}{kind} a{node.id}[ITEMS][VEC];")
            if lf.kind == "gchan":
                if whole:  # SEG % VEC == 0: one channel per vector
                    channel = cuda.widen(node.dtype, f"p{node.id}[gbase + base / SEG]")
                    loads.append(f"{ind}{{ const {kind} s_ = {channel}; RULES_LANES a{node.id}[it][u] = s_; }}")
                else:
                    loads.append(f"{ind}RULES_LANES a{node.id}[it][u] = base + u < {self.hi} ? "
                                 f"{cuda.widen(node.dtype, f'p{node.id}[gbase + (base + u) / SEG]')} : ({kind})0;")
            else:
                shared = lf.kind != "full"  # the same for every row (weights): keep it in L2
                hint = "RULES_EVICT_LAST" if shared else self.keep_hint if not last_pass else "RULES_EVICT_FIRST"
                ptr = f"p{node.id}r" if lf.kind == "full" else f"p{node.id}"
                loads += self.stream_load(ind, ptr, node.dtype, f"a{node.id}[it]", whole, hint, self.hi)
            lane.bind(node, f"a{node.id}[it][u]", kind)
        start = "(long long)tid * VEC" if self.lo is None else f"{self.lo} + (long long)tid * VEC"
        lines = [f"{_I8}for (long long base0 = {start}; base0 < {self.hi}; "
                 f"base0 += (long long)NT * VEC * ITEMS) {{"]
        lines += decl + step + loads + [f"{_I12}    }}", f"{_I12}}}"] + step
        lines += self.lanes(ind, lane, nodes, update, stores, None if whole else f"j < {self.hi}")
        for out in stores:
            if whole and cuda.vector_ok(out.dtype):
                lines.append(f"{ind}store_{cuda.storage(out.dtype)[1]}<VEC>(o{out.id}r + base, r{out.id});")
            else:
                lines.append(f"{ind}RULES_LANES if ({'true' if whole else f'base + u < {self.hi}'}) "
                             f"o{out.id}r[base + u] = {cuda.narrow(out.dtype, f'r{out.id}[u]')};")
        lines += [f"{_I12}    }}", f"{_I12}}}", f"{_I8}}}"]
        self.last_lane = lane
        return lines

    @staticmethod
    def stream_load(ind: str, ptr: str, dtype: str, arr: str, whole: bool, hint: str, hi: str = "D") -> list[str]:
        """Loads of one vector: whole (a 16-byte access with ``hint`` where the type allows)
        or element by element with the row's end checked."""
        kind = cuda.ctype(dtype)
        if whole and cuda.vector_ok(dtype):
            return [f"{ind}load_{cuda.storage(dtype)[1]}_hint<VEC, {hint}>({ptr} + base, {arr});"]
        if whole:
            return [f"{ind}RULES_LANES {arr}[u] = {cuda.widen(dtype, f'{ptr}[base + u]')};"]
        return [f"{ind}RULES_LANES {arr}[u] = base + u < {hi} ? {cuda.widen(dtype, f'{ptr}[base + u]')} : ({kind})0;"]

    @staticmethod
    def lanes(ind: str, lane: cuda.Env, nodes: list[Node], update: list[str], stores: list[Node],
              guard: str | None) -> list[str]:
        """One vector's lanes: compute ``nodes``, apply the ``update`` lines (``@id@`` is node
        ``id``'s value), keep each stored value in ``r<id>[u]``; ``guard`` skips lanes past the
        row's end (None: every lane is inside)."""
        lines = [f"{ind}{cuda.ctype(out.dtype)} r{out.id}[VEC];" for out in stores]
        lines.append(f"{ind}RULES_LANES {{")
        lines.append(f"{ind}    const long long j = base + u;")
        lines.append(f"{ind}    {{" if guard is None else f"{ind}    if ({guard}) {{")
        inner = ind + " " * 8
        lines += cuda.compute_all(lane, nodes, inner)
        lines += [inner + re.sub(r"@(\d+)@", lambda m: lane.code[int(m.group(1))], u) for u in update]
        lines += [f"{inner}r{out.id}[u] = {lane.value(out)};" for out in stores]
        lines += [f"{ind}    }}", f"{ind}}}"]
        return lines

    @staticmethod
    def vec_load(ind: str, ptr: str, dtype: str, arr: str) -> list[str]:
        kind = cuda.ctype(dtype)
        scalar = (f"RULES_LANES {arr}[u] = base + u < D ? "
                  f"{cuda.widen(dtype, f'{ptr}[base + u]')} : ({kind})0;")
        if not cuda.vector_ok(dtype):
            return [f"{ind}{scalar}"]
        suffix = cuda.storage(dtype)[1]
        return [f"{ind}if (full) load_{suffix}<VEC>({ptr} + base, {arr});", f"{ind}else {scalar}"]

    @staticmethod
    def vec_store(ind: str, ptr: str, dtype: str, arr: str) -> list[str]:
        scalar = f"RULES_LANES if (base + u < D) {ptr}[base + u] = {cuda.narrow(dtype, f'{arr}[u]')};"
        if not cuda.vector_ok(dtype):
            return [f"{ind}{scalar}"]
        suffix = cuda.storage(dtype)[1]
        return [f"{ind}if (full) store_{suffix}<VEC>({ptr} + base, {arr});", f"{ind}else {scalar}"]

    # -- reductions ---------------------------------------------------------------------------
    def accumulators(self, reds: list[Node], env: cuda.Env) -> tuple[list[str], list[str], list[Node]]:
        """(declarations, per-element updates, operand nodes) for the reductions of a phase."""
        decl, update, operands = [], [], []
        fused_max = {m for s, m in self.plan.fused.items()}
        for red in reds:
            kind, x, i = red.args["kind"], red.args["self"], red.id
            if red.id in fused_max:
                continue
            if red.id in self.plan.fused:
                X = _exp_of_diff(x)[0]
                decl.append(f"float lm{i} = RULES_NEG_INF, ls{i} = 0.0f;")
                update.append(f"lse_add(lm{i}, ls{i}, @{X.id}@);")
                operands.append(X)
                continue
            operands.append(x)
            v = f"@{x.id}@"
            if kind in ("sum", "mean"):
                decl.append(f"float acc{i} = 0.0f;")
                update.append(f"acc{i} += {v};")
            elif kind == "prod":
                decl.append(f"float acc{i} = 1.0f;")
                update.append(f"acc{i} *= {v};")
            elif kind in ("max", "min"):
                decl.append(f"float acc{i} = {'RULES_NEG_INF' if kind == 'max' else 'RULES_POS_INF'};")
                update.append(f"acc{i} = rules_{kind}(acc{i}, {v});")
            elif kind in ("argmax", "argmin"):
                decl.append(f"float av{i} = {'RULES_NEG_INF' if kind == 'argmax' else 'RULES_POS_INF'}; "
                            f"long long ai{i} = 0x7fffffffffffffffLL;")
                update.append(f"if (rules_argbetter({v}, j, av{i}, ai{i}, {'true' if kind == 'argmax' else 'false'})) "
                              f"{{ av{i} = {v}; ai{i} = j; }}")
            elif kind == "lse":
                decl.append(f"float lm{i} = RULES_NEG_INF, ls{i} = 0.0f;")
                update.append(f"lse_add(lm{i}, ls{i}, {v});")
            elif kind == "var" and red.id in self.plan.onepass_var:
                decl.append(f"float vs1_{i} = 0.0f, vs2_{i} = 0.0f;")
                update.append(f"{{ const float d_ = {v} - shift{i}; vs1_{i} += d_; vs2_{i} = fmaf(d_, d_, vs2_{i}); }}")
            elif kind == "var":
                mean = env.value(red.args["mean"])
                update.append(f"{{ const float d_ = {v} - {mean}; acc{i} = fmaf(d_, d_, acc{i}); }}")
                decl.append(f"float acc{i} = 0.0f;")
            else:
                raise Unsupported(f"a {kind} reduction", red.line)
        return decl, update, operands

    def finalize(self, reds: list[Node], env: cuda.Env) -> list[str]:
        """Merge the phase's per-thread states across the NT threads, then bind the row values."""
        return self.combine(reds) + self.values(reds, env)

    def combine(self, reds: list[Node]) -> list[str]:
        """Each reduction's accumulator state merged across the NT threads (in place)."""
        lines = []
        fused_max = {m for s, m in self.plan.fused.items()}
        for red in reds:
            kind, i = red.args["kind"], red.id
            if red.id in fused_max:
                continue
            if red.id in self.plan.fused or kind == "lse":
                lines.append(f"block_lse<NT>(lm{i}, ls{i});")
            elif kind in ("sum", "mean") or (kind == "var" and red.id not in self.plan.onepass_var):
                lines.append(f"acc{i} = block_sum<NT>(acc{i});")
            elif kind in ("max", "min", "prod"):
                lines.append(f"acc{i} = block_{kind}<NT>(acc{i});")
            elif kind in ("argmax", "argmin"):
                lines.append(f"block_arg<NT>(av{i}, ai{i}, {'true' if kind == 'argmax' else 'false'});")
            elif kind == "var":
                lines.append(f"vs1_{i} = block_sum<NT>(vs1_{i}); vs2_{i} = block_sum<NT>(vs2_{i});")
            else:
                raise Unsupported(f"a {kind} reduction", red.line)
        return [_I8 + line for line in lines]

    def values(self, reds: list[Node], env: cuda.Env) -> list[str]:
        """The row values of merged accumulator states (bound in ``env``)."""
        lines = []
        fused_max = {m for s, m in self.plan.fused.items()}
        for red in reds:
            i = red.id
            kt = cuda.ctype(red.dtype)
            name = f"r{i}"
            if red.id in fused_max:
                continue
            if red.id in self.plan.fused:
                m = self.plan.fused[red.id]
                lines.append(f"const float r{m} = lm{i};")
                lines.append(f"const float r{i} = ls{i};")
                env.bind(self.members[m], f"r{m}", "float")
                env.bind(red, f"r{i}", "float")
                continue
            value = reduced_value(red, red.id in self.plan.onepass_var, lambda n, i=i: f"{n}{i}", "D")
            if kt == "float":
                value = cuda.round_to(red.dtype, value)
            lines.append(f"const {kt} {name} = {value};")
            env.bind(red, name, kt)
        return [_I8 + line for line in lines]

    # -- the kernel body ----------------------------------------------------------------------
    def body(self, mode: dict[str, Any]) -> list[str]:
        self.loaded_cache = set()
        env = cuda.Env(self.scalars, "r")
        lines = self.setup(env)
        if mode["cached"]:
            for lf in self.leaves:
                if lf.kind == "full" and lf.node.op != "const":
                    lines.append(f"{_I8}{cuda.ctype(lf.node.dtype)} c{lf.node.id}[ITEMS][VEC];")
        plan = self.plan
        computed: set[int] = set()
        written: dict[int, Node] = {}
        for p in range(1, plan.phases + 1):
            reds = [r for r in plan.reds if plan.phase[r.id] == p]
            for red in reds:
                if red.id in plan.onepass_var:
                    pre, value = self.eval_at(env, red.args["self"], "0", f"k{red.id}")
                    lines.append(f"{_I8}float shift{red.id};")
                    lines.append(f"{_I8}{{ {' '.join(pre)} shift{red.id} = {value}; }}")
            decl, update, operands = self.accumulators(reds, env)
            lines += [_I8 + d for d in decl]
            stores = plan.early if p == 1 else []
            lines += self.loop(env, mode, operands, update, stores, {}, f"e{p}")
            for out in stores:
                written[out.id] = out
            lines += self.finalize(reds, env)
            lines += self.row_values(env, p, computed)
        late = plan.late
        if late:
            readback = {}
            if not mode["cached"]:
                for out in written.values():
                    if len([lf for lf in self.used_leaves(self.e_cone([out])) if lf.kind == "full"]) >= 2:
                        readback[out.id] = out
            lines += self.loop(env, mode, [], [], late, readback, "f")
        if plan.row_outputs:
            lines.append(f"{_I8}if (tid == 0) {{")
            for out in plan.row_outputs:
                lines.append(f"{_I12}o{out.id}[row] = {cuda.narrow(out.dtype, env.value(out))};")
            lines.append(f"{_I8}}}")
        return lines

    def row_values(self, env: cuda.Env, p: int, computed: set[int]) -> list[str]:
        """Per-row values (and gathers) whose reductions are all done after phase ``p``."""
        lines = []
        for node in self.region.nodes:
            if node.id in computed or env.has(node) or self.level(node) == "E" or node.op == "red":
                continue
            if not all(env.has(o) or (self.level(o) == "E" and node.op == "gather") for o in node.operands()):
                continue
            if node.op == "gather":
                x, idx = node.args["self"], node.args["index"]
                if not env.has(idx):
                    continue
                try:
                    pre, value = self.eval_at(env, x, "jx_", f"g{node.id}")
                except KeyError:
                    continue
                lines.append(f"{_I8}float r{node.id} = 0.0f;")
                lines.append(f"{_I8}{{ const long long jx_ = (long long)({env.value(idx)}); "
                             f"if (jx_ >= 0 && jx_ < D) {{ {' '.join(pre)} r{node.id} = {value}; }} }}")
                env.bind(node, f"r{node.id}", "float")
            else:
                stmt = env.compute(node)
                if stmt:
                    lines.append(_I8 + stmt)
            computed.add(node.id)
        return lines


def _signature(gen: RowGen) -> tuple[list[str], list[str]]:
    """(C pointer params, Python launch tensors), in launch order: inputs, then outputs."""
    params, tensors = [], []
    for lf in gen.leaves:
        node = lf.node
        if node.op == "const":
            continue
        params.append(pointer_param(node, f"p{node.id}"))
        tensors.append(gen.ctx.py(node))
    for out in gen.region.outputs:
        params.append(pointer_param(out, f"o{out.id}", const=False))
        tensors.append(gen.ctx.py(out))
    return params, tensors


def generate(ctx: Ctx, region: Region) -> KernelCode:
    variant = ctx.variant.get(region.index, {})
    mode_name = variant.get("mode", "block")
    if mode_name == "split":  # a few long rows, each split across blocks
        from evolution.proposers.rules import kern_rowsplit
        return kern_rowsplit.generate(ctx, region, variant)
    if mode_name == "cluster":  # rows cached in shared memory, split across a block cluster
        from evolution.proposers.rules import kern_rowcluster
        return kern_rowcluster.generate(ctx, region, variant)
    gen = RowGen(ctx, region, variant)
    gen.allow_unaligned = not MODES[mode_name]["cached"] and all(
        lf.kind in ("full", "row", "scalar") or lf.node.op == "const" for lf in gen.leaves)
    name = ctx.kernel_name(region)
    modes = [mode_name] + ([MODES[mode_name]["fallback"]] if MODES[mode_name]["fallback"] else [])
    bodies = {m: gen.body(MODES[m]) for m in modes}
    params, tensors = _signature(gen)
    params += gen.scalars.c_params()
    extra = "long long G, long long SEG, " if gen.group is not None else ""
    texts, kernels = [], []
    # Each mode twice where rows can take 16-byte vectors: the kernel for any row and one with the
    # vector path alone (``vec`` fixed at 1, which the host launches when every row is aligned).
    # ptxas allocates a kernel's registers for its heaviest path, and the element-by-element paths
    # for unaligned rows took more than twice the vector path's (nvcc 13, sm_90, BLOCK 1024, VEC 8:
    # softmax bf16 60 -> 27, fp32 63 -> 32, RMSNorm bf16 51 -> 38): at 60 a 1024-thread block is
    # alone on its SM, at 27 two fit, twice the bytes in flight. Where ptxas gives the vector
    # kernel more registers instead (LayerNorm at 256 threads: 56 against 47), the setup keeps
    # the one kernel (``rules_lean``).
    suffixes = ["", VEC_ONLY] if _vectorable(gen) else [""]
    for m in modes:
        mode = MODES[m]
        for suffix in suffixes:
            body = bodies[m] if not suffix else [f"{_I8}const int vec = 1;  // the 16-byte path alone"] + bodies[m]
            texts.append(fill("row.cu", NAME=name, MODE=m + suffix, PARAMS=join_params(params), EXTRA=extra,
                              NT=mode["NT"], TID=mode["TID"], ROW0=mode["ROW0"], RSTEP=mode["RSTEP"],
                              BODY="\n".join(body)))
            kernels.append(f"{name}_{m}{suffix}")
    setup = []
    if len(suffixes) > 1:  # the modes whose vector kernel takes no more registers than the general one
        names = ", ".join(repr(f"{name}_{m}") for m in modes)
        setup = [f"self.rules_lean{region.index} = {{k for k in ({names},) if rules_lean(self.rules_mod, k)}}"]
    return KernelCode("\n\n".join(texts), _forward(ctx, region, gen, name, modes, tensors, lean=bool(setup)),
                      kernels, setup=setup)


VEC_ONLY = "_v"  # the kernel name suffix of a mode's vector-path-only kernel


def _vectorable(gen: RowGen) -> bool:
    """Every per-element operand and output can take 16-byte vectors (the host's ``vec`` can be 1)."""
    return all(cuda.vector_ok(lf.node.dtype) for lf in gen.leaves if lf.kind in ("full", "col")) and \
        all(cuda.vector_ok(o.dtype) for o in gen.plan.early + gen.plan.late)


def _forward(ctx: Ctx, region: Region, gen: RowGen, name: str, modes: list[str], tensors: list[str],
             lean: bool = False) -> list[str]:
    """The launch lines; ``lean``: the modes have vector-path-only kernels (``generate``)."""
    i = region.index
    anchor = ctx.py(region.anchor)
    n, k = len(region.shape), region.k
    lines = []
    if gen.group is not None:
        groups = gen.group.args["groups"]
        g_expr = groups.ref.python() if isinstance(groups, Scalar) and groups.ref else repr(int(
            groups.value if isinstance(groups, Scalar) else groups))
        lines.append(f"G{i} = {g_expr}")
        lines.append(f"rows{i} = {anchor}.shape[0] * G{i}")
        lines.append(f"D{i} = {anchor}.numel() // rows{i} if rows{i} else 0")
        lines.append(f"SEG{i} = math.prod({anchor}.shape[2:])")
    else:
        lines.append(f"D{i} = {anchor}.shape[-1]" if k == 1 else f"D{i} = math.prod({anchor}.shape[{n - k}:])")
        lines.append(f"rows{i} = {anchor}.numel() // D{i} if D{i} else 0")
    for out in region.outputs:
        lines.append(ctx.alloc(region, out))
    lines.append(f"if rows{i} > 0 and D{i} > 0:")
    body = []
    wide = [ctx.py(lf.node) for lf in gen.leaves if lf.kind in ("full", "col") and lf.node.op != "const"]
    wide += [ctx.py(o) for o in gen.plan.early + gen.plan.late]
    vectorable = _vectorable(gen)
    conds = ["VEC > 1", f"D{i} % VEC == 0"] + ([f"rules_aligned(VEC, {', '.join(wide)})"] if wide else [])
    if gen.group is not None:
        conds.append(f"SEG{i} % VEC == 0")
    body.append(f"vec{i} = {' and '.join(conds) if vectorable else 'False'}")
    if vectorable and gen.allow_unaligned:  # any D: scalar head and tail around aligned vectors
        aligned = [c for c in conds if c != f"D{i} % VEC == 0"]
        body.append(f"vec{i} = 1 if vec{i} else 2 if {' and '.join(aligned)} and D{i} >= 4 * VEC else 0")
    first = modes[0]
    per_block = "1" if MODES[first]["NT"] == "BLOCK" else "BLOCK // 32"
    kernel = f'"{name}_{first}"'
    if len(modes) > 1:
        nt = "BLOCK" if MODES[first]["NT"] == "BLOCK" else "32"
        kernel = f'"{name}_{first}" if D{i} <= {nt} * ITEMS * VEC else "{name}_{modes[1]}"'
    body.append(f"kernel{i} = {kernel}")
    if lean:  # every row aligned: the vector path's own kernel where it takes no more registers
        body.append(f"kernel{i} = kernel{i} + '{VEC_ONLY}' if vec{i} == 1 and kernel{i} in self.rules_lean{i} "
                    f"else kernel{i}")
    body.append(f"grid{i} = rules_grid(rows{i}, {per_block}, self.rules_cap)")
    extra = [f"G{i}", f"SEG{i}"] if gen.group is not None else []
    args = tensors + list(gen.scalars.params.values()) + [f"rows{i}", f"D{i}"] + extra + [f"int(vec{i})"]
    body.append(f"self.rules_mod.launch(kernel{i}, grid=(grid{i},), block=(BLOCK,), args=({', '.join(args)},))")
    return lines + ["    " + b for b in body]
