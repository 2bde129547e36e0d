"""Row regions cached in shared memory across a thread-block cluster (``row_cluster.cu``).

For multi-pass rows (softmax, log-softmax, LayerNorm, RMSNorm, GroupNorm...) too long for a
block's registers: the streaming kernels read such a row twice from device memory (stats,
then normalize), so they top out near two thirds of the copy bandwidth. Here each of the
CLUSTER blocks of a cluster (Hopper, sm_90; CLUSTER 1 runs anywhere) copies its slice of the
row into shared memory once (cp.async, every copy in flight at once), runs every phase of
``kern_row.schedule`` over shared memory, exchanges the phase's partial states through
distributed shared memory, and writes its slice of the outputs: 1 read + 1 write per element.

With PIPE 1 the grid is persistent (as many clusters as the driver says are resident at once,
``runtime.max_active_clusters``; each loops over rows) and every slice has two buffers: the
next row's copies are issued into one while the current row is merged, exchanged and written
from the other, so a block's loads no longer wait for its own barriers and stores (the cause
named when this kernel measured 70-76% of copy bandwidth on an H200 for softmax).

``RowGen`` supplies the phases, accumulators, per-element arithmetic and row values; this
module replaces the passes (shared memory instead of device memory, bounds [lo_, hi_)) and
the merge of each phase's states (warps, then cluster ranks, in a fixed order). The forward
falls back to the streaming block kernel when the slices do not fit the device's shared
memory, or on a GPU without clusters (compute capability under 9.0) when CLUSTER > 1.
"""

from __future__ import annotations

from typing import Any

from evolution.proposers.rules import cuda
from evolution.proposers.rules.codegen import Ctx, KernelCode, fill, join_params
from evolution.proposers.rules.ir import Node, Unsupported
from evolution.proposers.rules.kern_row import MODES, RowGen, _forward as _row_forward, _signature
from evolution.proposers.rules.kern_rowsplit import states
from evolution.proposers.rules.plan import Region

_I8, _I12, _I16 = " " * 8, " " * 12, " " * 16
_FOLD = {"sum": "{a} += {b};", "prod": "{a} *= {b};", "max": "{a} = rules_max({a}, {b});",
         "min": "{a} = rules_min({a}, {b});"}


class ClusterGen(RowGen):
    """A ``RowGen`` whose passes read the block's slice of the row from shared memory."""

    def __init__(self, ctx: Ctx, region: Region, variant: dict[str, Any]) -> None:
        super().__init__(ctx, region, variant)
        self.lo, self.hi = "lo_", "hi_"
        fused_max = set(self.plan.fused.values())
        self.nstate = 1
        for p in range(1, self.plan.phases + 1):
            n = 0
            for red in self.plan.reds:
                if self.plan.phase[red.id] != p or red.id in fused_max:
                    continue
                st = states(self, red)
                if any(m in ("arg_v", "arg_i") for _, m in st):
                    raise Unsupported("argmax / argmin in a cluster-cached row")
                n += len(st)
            self.nstate = max(self.nstate, n)
        self.cached_leaves = [lf for lf in self.leaves if lf.kind == "full" and lf.node.op != "const"]
        if not self.cached_leaves:
            raise Unsupported("no whole-row operand to cache")

    # -- shared memory ------------------------------------------------------------------------
    def slices(self) -> list[str]:
        """Pointers to each cached operand's slice buffers (after the merge scratch, 16-byte
        aligned): buffer 0, and with PIPE a buffer 1 for the next row (else the same)."""
        lines = [f"{_I4}long long soff_ = ((2LL * {self.nstate} * NWARP + {self.nstate}) * 4 + 15) / 16 * 16;"]
        for buf in (0, 1):
            for lf in self.cached_leaves:
                ptr, _, size = cuda.storage(lf.node.dtype)
                i = lf.node.id
                at = f"reinterpret_cast<{ptr}*>(smem_ + soff_)"
                lines.append(f"{_I4}{ptr}* const sm{i}_{buf} = {at if buf == 0 else f'PIPE ? {at} : sm{i}_0'};")
                step = f"(chunk * {size} + 15) / 16 * 16"
                lines.append(f"{_I4}soff_ += {step if buf == 0 else f'PIPE ? {step} : 0'};")
        lines.append(f"{_I4}(void)soff_;")
        return lines

    def prologue(self) -> list[str]:
        """PIPE: the first row's slices start copying before the row loop."""
        lines = [f"{_I4}if (PIPE && vec) {{",
                 f"{_I8}const long long row0_ = (long long)(blockIdx.x / CLUSTER);",
                 f"{_I8}if (row0_ < rows) {{"]
        lines += self._copies(_I12, "sm", "_0", "row0_")
        lines += [f"{_I8}}}", f"{_I8}rules_cp_commit();", f"{_I4}}}"]
        return lines

    def _copies(self, ind: str, buf: str, suffix: str, row: str) -> list[str]:
        """cp.async of this thread's vectors of row ``row`` into the slices ``<buf><id><suffix>``."""
        lines = [f"{ind}for (long long base = lo_ + (long long)tid * VEC; base < hi_; base += (long long)NT * VEC) {{"]
        for lf in self.cached_leaves:
            size = cuda.storage(lf.node.dtype)[2]
            i = lf.node.id
            lines.append(f"{ind}    rules_cp_async<VEC * {size}>({buf}{i}{suffix} + (base - lo_), p{i} + {row} * D + base);")
        return lines + [f"{ind}}}"]

    def smem_bytes(self, chunk: str) -> str:
        """Python expression of the dynamic shared memory a block needs."""
        slices = [f"-(-{chunk} * {cuda.storage(lf.node.dtype)[2]} // 16) * 16" for lf in self.cached_leaves]
        return (f"-(-(2 * {self.nstate} * (BLOCK // 32) + {self.nstate}) * 4 // 16) * 16"
                f" + (1 + PIPE) * ({' + '.join(slices)})")

    def fill(self) -> list[str]:
        """The block's slice of every cached operand in shared memory: with PIPE, the next
        row's copies issued into the other buffer, then this row's (a group earlier) awaited;
        else this row's copied and awaited; element by element for rows that are not ``vec``.
        Each thread reads back only the vectors it copied: no barrier, and a buffer's old
        values were used (stored) by the same thread before its next copy is issued."""
        lines = []
        for lf in self.cached_leaves:
            ptr = cuda.storage(lf.node.dtype)[0]
            i = lf.node.id
            lines.append(f"{_I8}{ptr}* const sm{i} = pbuf_ ? sm{i}_1 : sm{i}_0;")
            lines.append(f"{_I8}{ptr}* const sn{i} = pbuf_ ? sm{i}_0 : sm{i}_1;")
            lines.append(f"{_I8}(void)sn{i};")
        lines += [f"{_I8}if (vec && PIPE) {{", f"{_I12}if (row + rstep_ < rows) {{"]
        lines += self._copies(_I16, "sn", "", "(row + rstep_)")
        lines += [f"{_I12}}}", f"{_I12}rules_cp_commit();", f"{_I12}rules_cp_wait_group<1>();",
                  f"{_I8}}} else if (vec) {{"]
        lines += self._copies(_I12, "sm", "", "row")
        lines += [f"{_I12}rules_cp_wait();", f"{_I8}}} else {{",
                  f"{_I12}for (long long base = lo_ + (long long)tid * VEC; base < hi_; base += (long long)NT * VEC) {{"]
        for lf in self.cached_leaves:
            lines.append(f"{_I16}RULES_LANES if (base + u < hi_) sm{lf.node.id}[base - lo_ + u] = p{lf.node.id}r[base + u];")
        lines += [f"{_I12}}}", f"{_I8}}}"]
        return lines

    # -- one pass over the slice --------------------------------------------------------------
    def loop(self, env: cuda.Env, mode: dict[str, Any], roots: list[Node], update: list[str],
             stores: list[Node], readback: dict[int, Node], tag: str) -> list[str]:
        """One pass over the slice, written twice: for ``vec`` rows (every vector whole: no
        per-element guards, 16-byte shared and global accesses) and element by element."""
        whole = self._loop(env, roots, update, stores, tag, True)
        part = self._loop(env, roots, update, stores, tag, False)
        return [f"{_I8}if (vec) {{"] + whole + [f"{_I8}}} else {{"] + part + [f"{_I8}}}"]

    def _loop(self, env: cuda.Env, roots: list[Node], update: list[str], stores: list[Node], tag: str,
              whole: bool) -> list[str]:
        nodes = self.e_cone(roots + stores)
        lane = env.child(f"{tag}{'v' if whole else 's'}_")
        lines = [f"{_I8}#pragma unroll 2",
                 f"{_I8}for (long long base = lo_ + (long long)tid * VEC; base < hi_; base += (long long)NT * VEC) {{"]
        ind = _I12
        cached = {lf.node.id for lf in self.cached_leaves}
        for lf in self.used_leaves(nodes, roots):
            node = lf.node
            if lane.has(node):
                continue
            kind = cuda.ctype(node.dtype)
            lines.append(f"{ind}{kind} a{node.id}[VEC];")
            if node.id in cached:  # the slice: VEC-aligned in shared memory, lanes past hi_ unused
                if cuda.vector_ok(node.dtype):
                    lines.append(f"{ind}load_{cuda.storage(node.dtype)[1]}<VEC>(sm{node.id} + (base - lo_), a{node.id});")
                else:
                    lines.append(f"{ind}RULES_LANES a{node.id}[u] = "
                                 f"{cuda.widen(node.dtype, f'sm{node.id}[base - lo_ + u]')};")
            elif lf.kind == "gchan":
                lines.append(f"{ind}RULES_LANES a{node.id}[u] = base + u < hi_ ? "
                             f"{cuda.widen(node.dtype, f'p{node.id}[gbase + (base + u) / SEG]')} : ({kind})0;")
            else:  # along the row, shared by every row (weights): device memory, mostly L2
                lines += self.stream_load(ind, f"p{node.id}", node.dtype, f"a{node.id}", whole,
                                          "RULES_EVICT_LAST", None if whole else "hi_")
            lane.bind(node, f"a{node.id}[u]", kind)
        lines += self.lanes(ind, lane, nodes, update, stores, None if whole else "j < hi_")
        for out in stores:
            if whole and cuda.vector_ok(out.dtype):
                lines.append(f"{ind}store_{cuda.storage(out.dtype)[1]}<VEC>(o{out.id}r + base, r{out.id});")
            else:
                lines.append(f"{ind}RULES_LANES if (base + u < hi_) "
                             f"o{out.id}r[base + u] = {cuda.narrow(out.dtype, f'r{out.id}[u]')};")
        lines.append(f"{_I8}}}")
        self.last_lane = lane
        return lines

    # -- merging a phase's states: warps, then cluster ranks ----------------------------------
    def combine(self, reds: list[Node]) -> list[str]:
        fused_max = set(self.plan.fused.values())
        comps: list[tuple[str, str]] = []  # (state variable, merge kind), in slot order
        warp_lines = []
        for red in reds:
            if red.id in fused_max:
                continue
            st = states(self, red)
            if st[0][1] == "lse_m":
                warp_lines.append(f"warp_lse({st[0][0]}, {st[1][0]});")
            else:
                warp_lines += [f"{n} = warp_{m}({n});" for n, m in st]
            comps += st
        if not comps:
            return []

        def folds(src: str) -> list[str]:
            """Merge slot values at ``src.format(k=slot)`` into the state variables."""
            out, k = [], 0
            while k < len(comps):
                name, merge = comps[k]
                if merge == "lse_m":
                    out.append(f"lse_merge({name}, {comps[k + 1][0]}, {src.format(k=k)}, {src.format(k=k + 1)});")
                    k += 2
                else:
                    out.append(_FOLD[merge].format(a=name, b=src.format(k=k)))
                    k += 1
            return out

        lines = warp_lines + ["{"]
        lines.append(f"float* const wb_ = wsc_ + cbuf_ * ({self.nstate} * NWARP);")
        lines.append("cbuf_ ^= 1;")
        lines.append("if (lane_ == 0) {")
        lines += [f"    wb_[{k} * NWARP + warp_] = {name};" for k, (name, _) in enumerate(comps)]
        lines.append("}")
        lines.append("__syncthreads();")
        lines += [f"{name} = wb_[{k} * NWARP];" for k, (name, _) in enumerate(comps)]
        lines.append("for (int w_ = 1; w_ < NWARP; ++w_) {")
        lines += ["    " + f for f in folds("wb_[{k} * NWARP + w_]")]
        lines.append("}")
        lines.append("if (CLUSTER > 1) {")
        lines.append("    if (pend_) rules_cluster_wait();  // every rank has read the previous states")
        lines.append("    if (tid == 0) {")
        lines += [f"        csc_[{k}] = {name};" for k, (name, _) in enumerate(comps)]
        lines.append("    }")
        lines.append("    rules_cluster_arrive();")
        lines.append("    rules_cluster_wait();")
        lines.append("    {")
        lines.append("        const float* const c0_ = rules_map_rank(csc_, 0u);")
        lines += [f"        {name} = c0_[{k}];" for k, (name, _) in enumerate(comps)]
        lines.append("    }")
        lines.append("    for (unsigned r_ = 1; r_ < CLUSTER; ++r_) {")
        lines.append("        const float* const cr_ = rules_map_rank(csc_, r_);")
        lines += ["        " + f for f in folds("cr_[{k}]")]
        lines.append("    }")
        lines.append("    rules_cluster_arrive();")
        lines.append("    pend_ = true;")
        lines.append("}")
        lines.append("}")
        return [_I8 + line for line in lines]

    # -- the kernel body ----------------------------------------------------------------------
    def body(self, mode: dict[str, Any]) -> list[str]:
        env = cuda.Env(self.scalars, "r")
        lines = self.setup(env)
        lines += self.fill()
        plan = self.plan
        computed: set[int] = set()
        for p in range(1, plan.phases + 1):
            reds = [r for r in plan.reds if plan.phase[r.id] == p]
            for red in reds:
                if red.id in plan.onepass_var:  # the row's first element: the same shift in every rank
                    pre, value = self.eval_at(env, red.args["self"], "0", f"k{red.id}")
                    lines.append(f"{_I8}float shift{red.id};")
                    lines.append(f"{_I8}{{ {' '.join(pre)} shift{red.id} = {value}; }}")
            decl, update, operands = self.accumulators(reds, env)
            lines += [_I8 + d for d in decl]
            stores = plan.early if p == 1 else []
            lines += self.loop(env, mode, operands, update, stores, {}, f"e{p}")
            lines += self.finalize(reds, env)
            lines += self.row_values(env, p, computed)
        if plan.late:
            lines += self.loop(env, mode, [], [], plan.late, {}, "f")
        if plan.row_outputs:
            lines.append(f"{_I8}if (tid == 0 && crank_ == 0) {{")
            for out in plan.row_outputs:
                lines.append(f"{_I12}o{out.id}[row] = {cuda.narrow(out.dtype, env.value(out))};")
            lines.append(f"{_I8}}}")
        lines.append(f"{_I8}pbuf_ ^= PIPE;")
        return lines


_I4 = " " * 4


def can_cluster(region: Region) -> bool:
    """Whether the region has a cluster-cached kernel (multi-pass rows, no argmax)."""
    try:
        gen = ClusterGen(Ctx(None, {}, {}), region, {})  # type: ignore[arg-type]
    except Unsupported:
        return False
    return gen.plan.phases + (1 if gen.plan.late else 0) > 1


def generate(ctx: Ctx, region: Region, variant: dict[str, Any]) -> KernelCode:
    """The cluster kernel and the streaming block kernel (the fallback), the forward choosing."""
    gen = ClusterGen(ctx, region, variant)
    fallback = RowGen(ctx, region, variant)
    name = ctx.kernel_name(region)
    fallback.scalars = gen.scalars
    body = gen.body(MODES["block"])
    block = fallback.body(MODES["block"])
    params, tensors = _signature(gen)
    params += gen.scalars.c_params()
    extra = "long long G, long long SEG, " if gen.group is not None else ""
    mode = MODES["block"]
    texts = [fill("row.cu", NAME=name, MODE="block", PARAMS=join_params(params), EXTRA=extra, NT=mode["NT"],
                  TID=mode["TID"], ROW0=mode["ROW0"], RSTEP=mode["RSTEP"], BODY="\n".join(block)),
             fill("row_cluster.cu", NAME=name, MODE="cluster", PARAMS=join_params(params), EXTRA=extra,
                  NSTATE=gen.nstate, SCRATCH=f"2 x {gen.nstate} x warps + {gen.nstate}",
                  SLICES="\n".join(gen.slices()), PROLOGUE="\n".join(gen.prologue()), BODY="\n".join(body))]
    setup = [f'self.rules_mod.kernel("{name}_cluster").function.max_dynamic_shared_size_bytes = self.rules_smem',
             "self.rules_slots = {}  # PIPE: resident clusters by (kernel, shared memory)",
             # over 8 blocks a cluster is a non-portable size (16 on an H100 / H200): the driver
             # must allow it per kernel; where it refuses, the rows take the block kernel
             f'self.rules_cluster_ok{region.index} = CLUSTER <= 8 or allow_nonportable_clusters('
             f'self.rules_mod.kernel("{name}_cluster")) is not False']
    return KernelCode("\n\n".join(texts), _forward(ctx, region, gen, name, tensors),
                      [f"{name}_block", f"{name}_cluster"], setup=setup)


def _forward(ctx: Ctx, region: Region, gen: ClusterGen, name: str, tensors: list[str]) -> list[str]:
    i = region.index
    base = _row_forward(ctx, region, gen, name, ["block"], tensors)
    guard = base.index(f"if rows{i} > 0 and D{i} > 0:")
    head, body = base[: guard + 1], [b[4:] for b in base[guard + 1:]]
    vec_line, fallback = body[0], body[1:]
    extra = [f"G{i}", f"SEG{i}"] if gen.group is not None else []
    args = tensors + list(gen.scalars.params.values()) + [f"rows{i}", f"D{i}"] + extra + [f"chunk{i}", f"int(vec{i})"]
    out = [vec_line,
           f"chunk{i} = -(-(-(-D{i} // CLUSTER)) // VEC) * VEC  # each rank's slice: whole vectors",
           f"smem{i} = {gen.smem_bytes(f'chunk{i}')}",
           f"if smem{i} <= self.rules_smem and (CLUSTER == 1 or self.rules_cc >= 90) and self.rules_cluster_ok{i}:",
           f"    slots{i} = max(1, self.rules_cap // CLUSTER)",
           f"    if PIPE:  # persistent: exactly the clusters that are resident at once",
           f'        key{i} = ("{name}_cluster", smem{i})',
           f"        slots{i} = self.rules_slots.get(key{i})",
           f"        if slots{i} is None:",
           f'            slots{i} = max_active_clusters(self.rules_mod.kernel("{name}_cluster"), BLOCK, smem{i}, CLUSTER) or '
           f"max(1, self.rules_sms * min(2048 // BLOCK, (self.rules_smem + 1024) // (smem{i} + 1024)) // CLUSTER)",
           f"            self.rules_slots[key{i}] = slots{i}",
           f"    grid{i} = min(rows{i}, slots{i}) * CLUSTER",
           f'    self.rules_mod.launch("{name}_cluster", grid=(grid{i},), block=(BLOCK,), '
           f"args=({', '.join(args)},), shared_mem=smem{i})",
           "else:"]
    out += ["    " + f for f in fallback]
    return head + ["    " + o for o in out]
