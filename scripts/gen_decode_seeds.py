"""Write the decode seeds (kernels/seeds/decode_*.py) from one CUDA core.

A candidate is one self-contained module (it may import only torch and the runtime), so every
decode seed carries the matrix-vector core of ``kernels/seeds/decode_gemv_core.cu`` in its
source, with the entry kernel and the launch code of its task. Edit the core or the templates
here, then run ``python scripts/gen_decode_seeds.py``; ``tests/unit/test_decode_seeds.py``
fails while a seed is out of date (``--check`` says which).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "kernels" / "seeds"
CORE = SEEDS / "decode_gemv_core.cu"

# The entry kernels (extern "C": the runtime reads their signatures from the source).
ENTRIES = {
    "plain": r'''
extern "C" __global__ void __launch_bounds__(GEMV_BOUNDS)
dec_gemv(const unsigned short* __restrict__ x, const unsigned short* __restrict__ w,
         const unsigned short* __restrict__ bias, unsigned short* __restrict__ y, float* __restrict__ part,
         int* __restrict__ counters, long long K, long long N, int splits, int has_bias, int vec, const unsigned short* __restrict__ pf0, long long pf0_bytes,
         const unsigned short* __restrict__ pf1, long long pf1_bytes)
{
    GemvArgs a = gemv_args();
    a.pf0 = pf0; a.pf0_bytes = pf0_bytes; a.pf1 = pf1; a.pf1_bytes = pf1_bytes;
    a.x = x; a.w = w; a.bias = has_bias ? bias : 0; a.y = y; a.part = part; a.counters = counters;
    a.K = K; a.units = N; a.splits = splits;
    gemv_entry<M_PLAIN, 0>(a, vec);
}
''',
    "resid": r'''
extern "C" __global__ void __launch_bounds__(GEMV_BOUNDS)
dec_gemv_residual(const unsigned short* __restrict__ x, const unsigned short* __restrict__ w,
                  const unsigned short* __restrict__ res, unsigned short* __restrict__ y, float* __restrict__ part,
                  int* __restrict__ counters, long long K, long long N, int splits, float mult, int vec, int early,
                  const unsigned short* __restrict__ pf0, long long pf0_bytes,
         const unsigned short* __restrict__ pf1, long long pf1_bytes)
{
    GemvArgs a = gemv_args();
    a.pf0 = pf0; a.pf0_bytes = pf0_bytes; a.pf1 = pf1; a.pf1_bytes = pf1_bytes; a.early = early;
    a.x = x; a.w = w; a.res = res; a.y = y; a.part = part; a.counters = counters;
    a.K = K; a.units = N; a.splits = splits; a.mult = mult;
    gemv_entry<M_RESID, 0>(a, vec);
}
''',
    "silu": r'''
extern "C" __global__ void __launch_bounds__(GEMV_BOUNDS)
dec_norm_gate_up_silu(const unsigned short* __restrict__ x, const unsigned short* __restrict__ nw,
                      const unsigned short* __restrict__ w, unsigned short* __restrict__ y, float* __restrict__ part,
                      int* __restrict__ counters, float eps, long long K, long long I, int splits, int vec, const unsigned short* __restrict__ pf0, long long pf0_bytes,
         const unsigned short* __restrict__ pf1, long long pf1_bytes)
{
    GemvArgs a = gemv_args();
    a.pf0 = pf0; a.pf0_bytes = pf0_bytes; a.pf1 = pf1; a.pf1_bytes = pf1_bytes;
    a.x = x; a.nw = nw; a.eps = eps; a.w = w; a.y = y; a.part = part; a.counters = counters;
    a.K = K; a.units = I; a.splits = splits;
    gemv_entry<M_SILU, 1>(a, vec);
}
''',
    "qkv": r'''
extern "C" __global__ void __launch_bounds__(GEMV_BOUNDS)
dec_norm_qkv_rope_append(const unsigned short* __restrict__ x, const unsigned short* __restrict__ nw,
                         const unsigned short* __restrict__ w, const unsigned short* __restrict__ bias,
                         const unsigned short* __restrict__ cos, const unsigned short* __restrict__ sin,
                         const long long* __restrict__ pos, unsigned short* __restrict__ q,
                         unsigned short* __restrict__ kc, unsigned short* __restrict__ vc, float* __restrict__ part,
                         int* __restrict__ counters, float eps, long long K, int H, int KVH, int D, long long L,
                         int splits, int has_bias, int vec, int early, const unsigned short* __restrict__ pf0,
                         long long pf0_bytes, const unsigned short* __restrict__ pf1, long long pf1_bytes)
{
    GemvArgs a = gemv_args();
    a.pf0 = pf0; a.pf0_bytes = pf0_bytes; a.pf1 = pf1; a.pf1_bytes = pf1_bytes; a.early = early;
    a.x = x; a.nw = nw; a.eps = eps; a.w = w; a.bias = has_bias ? bias : 0; a.cos = cos; a.sin = sin; a.pos = pos;
    a.q = q; a.kc = kc; a.vc = vc; a.part = part; a.counters = counters;
    a.K = K; a.H = H; a.KVH = KVH; a.D = D; a.L = L; a.units = (long long)(H + 2 * KVH) * (D / 2); a.splits = splits;
    gemv_entry<M_QKV, 1>(a, vec);
}
''',
    "lmhead": r'''
extern "C" __global__ void __launch_bounds__(GEMV_BOUNDS)
dec_norm_lm_head_argmax(const unsigned short* __restrict__ x, const unsigned short* __restrict__ nw,
                        const unsigned short* __restrict__ w, unsigned short* __restrict__ y, float* __restrict__ part,
                        int* __restrict__ counters, float* __restrict__ amax_v, int* __restrict__ amax_i,
                        long long* __restrict__ token, float eps, long long K, long long V, int splits, float scaling,
                        int vec, const unsigned short* __restrict__ pf0, long long pf0_bytes,
         const unsigned short* __restrict__ pf1, long long pf1_bytes)
{
    GemvArgs a = gemv_args();
    a.pf0 = pf0; a.pf0_bytes = pf0_bytes; a.pf1 = pf1; a.pf1_bytes = pf1_bytes;
    a.x = x; a.nw = nw; a.eps = eps; a.w = w; a.y = y; a.part = part; a.counters = counters;
    a.amax_v = amax_v; a.amax_i = amax_i; a.token = token;
    a.K = K; a.units = V; a.splits = splits; a.mult = scaling;
    gemv_entry<M_LMHEAD, 1>(a, vec);
}
''',
}

# Launch code shared by every decode seed (the part of ModelNew that is not the task's).
HOST = r'''
PARAMS = {"UPW": [0, 1, 2, 4], "UNROLL": [0, 2, 4, 8], "BLOCK": [64, 128, 256], "OCC": [2, 3, 4, 6, 8],
          "SPLITK": [0, 1, 2, 4], "PREFETCH": [0, 1, 2], "PIPE": [-1, 0, 1],
          "XSMEM": [-1, 0, 1], "RING": [0, 4, 8, 16]}
SWEEP_KNOBS = @SWEEP_KNOBS@
# TRIGGER (the successor launched before this kernel's PDL wait) is a constructor knob for the
# step sweep, not searched: a kernel timed alone cannot show its effect, and on the whole step
# (H200, 2026-12-03, interleaved A/B) it gained nothing: Llama-3.2-1B 0.862 ms default, 0.862 on
# gate/up, 0.866 on down, 0.889 on O (successor's blocks spinning beside the attention kernel),
# 0.904 everywhere; Qwen2.5-1.5B and Granite-3.2-2B within +-0.7%.
# MINB (a register cap through __launch_bounds__, see the core) is a constructor knob for the
# step sweep too: what it buys is room for the next kernel's blocks beside this one's, which a
# kernel timed alone cannot show. On the whole step it lost (H200, 2026-12-03, interleaved A/B,
# Llama-3.2-1B): 0.8435 ms default, 0.8479 with MINB 4 on q/k/v (128 registers), 0.8703 with
# OCC 2 there, 0.8803 with both; so it stays 0.@EARLY_DOC@


def _auto(units, k, upw, unroll, pipe, rpu):
    """UPW / UNROLL of 0 and PIPE of -1: chosen from the shape (measured on the H200 over the whole
    decode step, scripts/decode_step_sweep.py's search and interleaved A/B, 2026-12-02). Units per
    warp: one below 8M weights per activation row (the 3-8 MB q/k/v and O projections) and for
    long rows (K >= 8192: a row is 16 KB already), two up to 64M (gate/up: Qwen2.5-1.5B's 13.8M
    at one unit per warp ran its step 4.5% slower), four beyond (the LM head).
    Steps in flight: 8 for long rows and for a warp streaming a pair of rows (q/k/v's rotary
    pairs), else 4 (one short row: 4 and 8 measured alike; four rows: 8 lost 3% of the step).
    The next batch's loads ahead of the multiplies (PIPE) for long rows only: it lost 7% of the
    step on gate/up and gained 9% on the down projection."""
    if upw == 0:
        size = units * k
        upw = 1 if size < (1 << 23) or k >= 8192 else (2 if size < (1 << 26) else 4)
    if unroll == 0:
        unroll = 8 if k >= 8192 or upw * rpu == 2 else 4
    if pipe < 0:
        pipe = int(k >= 8192)
    return upw, unroll, pipe


def _plan(units, k, vec, upw, warps, occ, splitk, sms):
    """(K ranges, blocks, unit groups): groups of UPW units, SPLITK ranges of K (0: enough to
    fill every resident warp while each range keeps >= 4 steps), a grid of at most OCC blocks
    per SM whose warps stride over the (group, range) tasks."""
    step = 256 if vec else 32
    steps = max(1, -(-k // step))
    groups = -(-units // upw)
    cap = sms * occ * warps
    if splitk == 0:
        splits = 1
        while groups * splits * 2 <= cap and steps >= 8 * splits:
            splits *= 2
    else:
        splits = max(1, min(splitk, steps))
    per = -(-steps // splits)
    splits = -(-steps // per)  # no empty ranges
    blocks = max(1, min(-(-groups * splits // warps), sms * occ))
    return splits, blocks, groups


class _Launcher:
    """Compiled modules per batch size, the arrival counters and the launch plan."""

    def __init__(self, UPW, UNROLL, BLOCK, OCC, SPLITK, PREFETCH, PIPE=-1, XSMEM=-1, RING=0, TRIGGER=0, MINB=0, rpu=1):
        assert BLOCK % 32 == 0
        self.upw, self.unroll, self.warps, self.occ, self.splitk, self.prefetch = UPW, UNROLL, BLOCK // 32, OCC, SPLITK, PREFETCH
        self.pipe, self.xsmem, self.rpu = PIPE, XSMEM, rpu  # rpu: weight rows per output unit (2: gate/up, rotary pairs)
        self.ring = RING if RING > 1 else 0  # steps per lane in the shared-memory ring (the 16-byte path)
        self.trigger = TRIGGER  # 1: the next kernel launched before this one's PDL wait (see the core's TRIGGER)
        self.minb = MINB  # > 0: a register cap, room for the next kernel's blocks beside this one's (the core's MINB)
        self.smem_set = {}                   # (module key, kernel) -> dynamic shared memory allowed so far
        self.modules = {}
        self.counters = None
        self.sms, self.smem_limit, self.device = None, None, None
        self.shape = (UPW or 1, UNROLL or 4, max(PIPE, 0))  # (UPW, UNROLL, PIPE) of the last plan
        self.k, self.vec = 0, 0                # K and the 16-byte path of the last plan

    def xs_bytes(self, nb):
        """Shared memory for the activations (XSMEM: the 16-byte path, up to 48 KB a block), else 0.
        XSMEM -1: where the block fills it in at most four 16-byte loads a thread (batch 1 up to
        K = 4096 at 128 threads); the down projection's 16 KB fill, after the PDL wait, cost more
        than its loads saved (H200 step A/B, 2026-12-02)."""
        size = 2 * nb * self.k
        want = self.xsmem > 0 or (self.xsmem < 0 and size <= 64 * 32 * self.warps)
        return size if want and self.vec and size <= 48 * 1024 else 0

    def ring_bytes(self):
        """The weight ring (RING: each warp RING steps of its rows, 512 bytes a row and step), else 0."""
        return self.warps * self.ring * self.shape[0] * self.rpu * 512 if self.ring and self.vec else 0

    def module(self, nb):
        """The module for batch size ``nb`` and the last plan: its shape and its load path alone
        (the core's VPATH: 8 for the 16-byte path, 1 for any alignment), so a call passes the vec
        that ``plan`` was given; NVRTC then takes about half the time. Batch 1 on the 16-byte path
        keeps both bodies (VPATH 0): that build is the one the decode step was measured and tuned
        on, and the scalar body shapes ptxas's allocation of the whole kernel (Llama's q/k/v: 168
        registers with both, 127 alone; its 128-register build under MINB 4 lost 0.5% of the step,
        H200, 2026-12-03). An A/B of the step decides whether batch 1 follows."""
        xs = int(self.xs_bytes(nb) > 0)
        vpath = 0 if nb == 1 and self.vec else 8 if self.vec else 1
        key = (nb, xs, vpath) + self.shape
        if key not in self.modules:
            upw, unroll, pipe = self.shape
            self.modules[key] = compile_module(SOURCE, defines={"NB": nb, "UPW": upw, "UNROLL": unroll,
                                                                "WARPS": self.warps, "PREFETCH": self.prefetch,
                                                                "PIPE": pipe, "XS": xs, "RING": self.ring,
                                                                "TRIGGER": self.trigger, "MINB": self.minb,
                                                                "VPATH": vpath})
        return self.modules[key]

    def plan(self, units, k, vec, device):
        if self.sms is None:
            self.sms = torch.cuda.get_device_properties(device).multi_processor_count
        self.device = device
        self.shape = _auto(units, k, self.upw, self.unroll, self.pipe, self.rpu)
        self.k, self.vec = k, vec
        splits, blocks, groups = _plan(units, k, vec, self.shape[0], self.warps, self.occ, self.splitk, self.sms)
        if self.counters is None or self.counters.numel() < groups + 1 or self.counters.device != device:
            self.counters = torch.zeros(groups + 1, dtype=torch.int32, device=device)  # reset by the kernel
        return splits, blocks

    def part(self, splits, nb, rows, device):
        return torch.empty(splits * nb * rows if splits > 1 else 1, dtype=torch.float32, device=device)

    def launch(self, nb, name, blocks, args):
        smem = self.xs_bytes(nb) + self.ring_bytes()
        if smem > 48 * 1024 and self.smem_limit is None:  # above the default: what this GPU allows a block
            self.smem_limit = torch.cuda.get_device_properties(self.device).shared_memory_per_block_optin
        if smem > 48 * 1024 and smem > self.smem_limit:
            raise ValueError(f"RING {self.ring} with {self.warps * 32} threads and {self.shape[0] * self.rpu} rows a "
                             f"warp needs {smem} bytes of shared memory a block; this GPU allows "
                             f"{self.smem_limit}: fewer RING stages, threads (BLOCK) or units per warp (UPW)")
        module = self.module(nb)
        key = (id(module), name)
        if smem > 48 * 1024 and self.smem_set.get(key, 0) < smem:  # above the default: opted in per kernel
            module.kernel(name).function.max_dynamic_shared_size_bytes = smem
            self.smem_set[key] = smem
        pdl_launch(module, name, grid=(blocks,), block=(self.warps * 32,), args=args, shared_mem=smem)


def _vec(k, *tensors):
    return int(k % 8 == 0 and all(t.data_ptr() % 16 == 0 for t in tensors))


def _hints(ranges, like):
    """The kernel's last four arguments from ``prefetch_next``: up to two (tensor, bytes) ranges
    the next kernel will read, prefetched into L2 as this one drains (a hint: values unchanged)."""
    out = []
    for t, nbytes in list(ranges)[:2]:
        ok = t.device == like.device and t.data_ptr() % 16 == 0
        out += [t, min(int(nbytes), t.numel() * t.element_size()) if ok else 0]
    while len(out) < 4:
        out += [like, 0]
    return tuple(out)


class PdlOrder:
    """What an engine asks a decode kernel about its PDL order (autotuner/deploy/slots.py)."""

    @property
    def waits_before_trigger(self):
        """True where the kernel lets its successor start only after its own PDL wait (TRIGGER 0),
        so everything before it is complete when the successor starts."""
        return not self.run.trigger

'''

MODELS = {
    "plain": r'''
class ModelNew(PdlOrder, nn.Module):
    prefetch_next = ()  # set by an engine: [(tensor, bytes)] the next kernel reads (see _hints)

    def __init__(self, in_features, out_features, bias, UPW=0, UNROLL=0, BLOCK=128, OCC=4, SPLITK=0, PREFETCH=0, PIPE=-1, XSMEM=-1, RING=0, TRIGGER=0, MINB=0):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.run = _Launcher(UPW, UNROLL, BLOCK, OCC, SPLITK, PREFETCH, PIPE, XSMEM, RING, TRIGGER, MINB)

    def forward(self, x):
        nb, k = x.shape
        n = self.weight.shape[0]
        assert x.is_contiguous() and self.weight.is_contiguous() and 1 <= nb <= 8 and self.weight.shape[1] == k
        y = torch.empty(nb, n, dtype=x.dtype, device=x.device)
        vec = _vec(k, x, self.weight)
        splits, blocks = self.run.plan(n, k, vec, x.device)
        bias = self.bias if self.bias is not None else self.weight
        self.run.launch(nb, "dec_gemv", blocks, (x, self.weight, bias, y, self.run.part(splits, nb, n, x.device),
                                                  self.run.counters, k, n, splits, int(self.bias is not None), vec) + _hints(self.prefetch_next, x))
        return y
''',
    "resid": r'''
class ModelNew(PdlOrder, nn.Module):
    prefetch_next = ()  # set by an engine: [(tensor, bytes)] the next kernel reads (see _hints)

    def __init__(self, in_features, out_features, multiplier, UPW=0, UNROLL=0, BLOCK=128, OCC=4, SPLITK=0, PREFETCH=0, PIPE=-1, XSMEM=-1, RING=0, TRIGGER=0, MINB=0,
                 EARLY=0):
        super().__init__()
        self.multiplier = float(multiplier)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.run = _Launcher(UPW, UNROLL, BLOCK, OCC, SPLITK, PREFETCH, PIPE, XSMEM, RING, TRIGGER, MINB)
        self.early_inputs = bool(EARLY)  # the residual read before the PDL wait (an engine sets it per call)

    def forward(self, x, residual):
        nb, k = x.shape
        n = self.weight.shape[0]
        assert x.is_contiguous() and residual.is_contiguous() and self.weight.is_contiguous()
        assert 1 <= nb <= 8 and self.weight.shape[1] == k and residual.shape == (nb, n)
        y = torch.empty(nb, n, dtype=x.dtype, device=x.device)
        vec = _vec(k, x, self.weight)
        splits, blocks = self.run.plan(n, k, vec, x.device)
        self.run.launch(nb, "dec_gemv_residual", blocks, (x, self.weight, residual, y,
                                                           self.run.part(splits, nb, n, x.device), self.run.counters,
                                                           k, n, splits, self.multiplier, vec, int(self.early_inputs))
                        + _hints(self.prefetch_next, x))
        return y
''',
    "silu": r'''
class ModelNew(PdlOrder, nn.Module):
    prefetch_next = ()  # set by an engine: [(tensor, bytes)] the next kernel reads (see _hints)

    def __init__(self, hidden, intermediate, eps, UPW=0, UNROLL=0, BLOCK=256, OCC=4, SPLITK=0, PREFETCH=0, PIPE=-1, XSMEM=-1, RING=0, TRIGGER=0, MINB=0):
        super().__init__()
        self.intermediate, self.eps = intermediate, float(eps)
        self.norm_weight = nn.Parameter(torch.empty(hidden))
        self.weight = nn.Parameter(torch.empty(2 * intermediate, hidden))
        self.run = _Launcher(UPW, UNROLL, BLOCK, OCC, SPLITK, PREFETCH, PIPE, XSMEM, RING, TRIGGER, MINB, rpu=2)

    def forward(self, x):
        nb, k = x.shape
        inter = self.intermediate
        assert x.is_contiguous() and self.weight.is_contiguous() and 1 <= nb <= 8
        assert self.weight.shape == (2 * inter, k) and self.norm_weight.shape == (k,)
        y = torch.empty(nb, inter, dtype=x.dtype, device=x.device)
        vec = _vec(k, x, self.weight, self.norm_weight)
        splits, blocks = self.run.plan(inter, k, vec, x.device)
        self.run.launch(nb, "dec_norm_gate_up_silu", blocks, (x, self.norm_weight, self.weight, y,
                                                               self.run.part(splits, nb, 2 * inter, x.device),
                                                               self.run.counters, self.eps, k, inter, splits, vec) + _hints(self.prefetch_next, x))
        return y
''',
    "qkv": r'''
class ModelNew(PdlOrder, nn.Module):
    prefetch_next = ()  # set by an engine: [(tensor, bytes)] the next kernel reads (see _hints)
    waits_before_trigger = True  # it never lets its successor start before its own wait (TRIGGER or not)

    def __init__(self, hidden, heads, kv_heads, head_dim, bias, eps, UPW=0, UNROLL=0, BLOCK=128, OCC=4, SPLITK=0,
                 PREFETCH=0, PIPE=-1, XSMEM=-1, RING=0, TRIGGER=0, MINB=0, EARLY=0):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim, self.eps = heads, kv_heads, head_dim, float(eps)
        self.early_inputs = bool(EARLY)  # the position and its rotary rows read before the PDL wait (see above)
        rows = (heads + 2 * kv_heads) * head_dim
        self.norm_weight = nn.Parameter(torch.empty(hidden))
        self.weight = nn.Parameter(torch.empty(rows, hidden))
        self.bias = nn.Parameter(torch.empty(rows)) if bias else None
        self.run = _Launcher(UPW, UNROLL, BLOCK, OCC, SPLITK, PREFETCH, PIPE, XSMEM, RING, TRIGGER, MINB, rpu=2)

    def forward(self, x, cos, sin, k_cache, v_cache, pos, inplace=False):
        """q [b, heads, head_dim] and the caches with position ``pos`` written: new tensors (the
        task's functional form), or ``k_cache`` / ``v_cache`` themselves with ``inplace``."""
        nb, k = x.shape
        h, kvh, d = self.heads, self.kv_heads, self.head_dim
        length = k_cache.shape[2]
        assert all(t.is_contiguous() for t in (x, cos, sin, k_cache, v_cache, pos)) and 1 <= nb <= 8
        assert k_cache.shape == v_cache.shape == (nb, kvh, length, d) and cos.shape == sin.shape == (length, d)
        assert pos.dtype == torch.int64 and pos.numel() == 1 and d % 2 == 0
        q = torch.empty(nb, h, d, dtype=x.dtype, device=x.device)
        units = (h + 2 * kvh) * (d // 2)
        vec = _vec(k, x, self.weight, self.norm_weight)
        splits, blocks = self.run.plan(units, k, vec, x.device)  # before the copy: its module is this plan's
        if inplace:
            kc, vc = k_cache, v_cache
        else:
            kc, vc = torch.empty_like(k_cache), torch.empty_like(v_cache)
            copy = self.run.module(nb)
            for src, dst in ((k_cache, kc), (v_cache, vc)):
                n = src.numel()
                copy.launch("copy_u16", grid=(max(1, min(-(-n // 2048), 1024)),), block=(256,), args=(src, dst, n))
        bias = self.bias if self.bias is not None else self.weight
        self.run.launch(nb, "dec_norm_qkv_rope_append", blocks,
                        (x, self.norm_weight, self.weight, bias, cos, sin, pos, q, kc, vc,
                         self.run.part(splits, nb, 2 * units, x.device), self.run.counters, self.eps, k, h, kvh, d,
                         length, splits, int(self.bias is not None), vec, int(self.early_inputs))
                        + _hints(self.prefetch_next, x))
        return q, kc, vc
''',
    "lmhead": r'''
class ModelNew(PdlOrder, nn.Module):
    prefetch_next = ()  # set by an engine: [(tensor, bytes)] the next kernel reads (see _hints)

    def __init__(self, hidden, vocab, eps, logits_scaling, UPW=0, UNROLL=0, BLOCK=128, OCC=4, SPLITK=0, PREFETCH=0, PIPE=-1, XSMEM=-1, RING=0, TRIGGER=0, MINB=0):
        super().__init__()
        self.eps, self.scaling = float(eps), float(logits_scaling)
        self.norm_weight = nn.Parameter(torch.empty(hidden))
        self.weight = nn.Parameter(torch.empty(vocab, hidden))
        self.run = _Launcher(UPW, UNROLL, BLOCK, OCC, SPLITK, PREFETCH, PIPE, XSMEM, RING, TRIGGER, MINB)

    def forward(self, x):
        nb, k = x.shape
        vocab = self.weight.shape[0]
        assert x.is_contiguous() and self.weight.is_contiguous() and 1 <= nb <= 8 and self.weight.shape[1] == k
        logits = torch.empty(nb, vocab, dtype=x.dtype, device=x.device)
        token = torch.empty(nb, dtype=torch.int64, device=x.device)
        vec = _vec(k, x, self.weight, self.norm_weight)
        splits, blocks = self.run.plan(vocab, k, vec, x.device)
        warps = blocks * self.run.warps
        amax_v = torch.empty(nb * warps, dtype=torch.float32, device=x.device)
        amax_i = torch.empty(nb * warps, dtype=torch.int32, device=x.device)
        self.run.launch(nb, "dec_norm_lm_head_argmax", blocks,
                        (x, self.norm_weight, self.weight, logits, self.run.part(splits, nb, vocab, x.device),
                         self.run.counters, amax_v, amax_i, token, self.eps, k, vocab, splits, self.scaling, vec) + _hints(self.prefetch_next, x))
        return logits, token
''',
}

DOCS = {
    "plain": "y = x W^T (+ b) for bf16 W [N, K] at decode batch sizes (1 to 8)",
    "resid": "the new residual stream, residual + (x W^T) * multiplier, in one pass over W",
    "silu": "RMSNorm, the fused gate/up projection and SiLU(gate) * up in one pass over W",
    "qkv": "RMSNorm, the fused q/k/v projection, the rotary embedding and the KV-cache append in one pass",
    "lmhead": "the final RMSNorm, the LM head and the greedy token (argmax) in one pass over the head",
}

# seed file -> (tasks, kind): one kernel serves tasks that differ only in shapes (the five plain
# projections; O and down projections with the residual add)
SEED_TASKS = {
    "decode_gemv_bf16": (("decode/gemv_qkv_bf16.py", "decode/gemv_o_bf16.py", "decode/gemv_gate_up_bf16.py",
                          "decode/gemv_down_bf16.py", "decode/gemv_lm_head_bf16.py"), "plain"),
    "decode_gemv_residual_bf16": (("decode/o_residual_bf16.py", "decode/down_residual_bf16.py"), "resid"),
    "decode_gate_up_silu_bf16": (("decode/gate_up_silu_bf16.py",), "silu"),
    "decode_qkv_rope_append_bf16": (("decode/qkv_rope_append_bf16.py",), "qkv"),
    "decode_lm_head_argmax_bf16": (("decode/lm_head_argmax_bf16.py",), "lmhead"),
}


def render(name: str) -> str:
    tasks, kind = SEED_TASKS[name]
    core = CORE.read_text()
    source = core + ENTRIES[kind]
    assert "'''" not in source
    return (f'"""Decode seed: {DOCS[kind]}.\n\n'
            "Generated by scripts/gen_decode_seeds.py from kernels/seeds/decode_gemv_core.cu (edit those,\n"
            "not this file). Weight rows are streamed in 16-byte vectors with several in flight per lane,\n"
            "fp32 accumulation, the epilogue fused; PARAMS: units per warp, steps in flight, threads per\n"
            "block, blocks per SM, K ranges (0: chosen from the shapes) and L2 prefetch depth before\n"
            'the programmatic-dependent-launch wait.\n"""\n'
            + "".join(f"# TASK: kernels/tasks/{task}\n" for task in tasks) + "\n"
            "import torch\nimport torch.nn as nn\nfrom autotuner.runtime import compile_module, pdl_launch\n\n"
            f"SOURCE = r'''\n{source}'''\n" + host(kind) + MODELS[kind])


# The kinds whose epilogue reads something another kernel wrote (the residual; q/k/v's position):
# their EARLY knob reads it before the PDL wait (the core's "Early epilogue inputs").
EARLY_KINDS = ("resid", "qkv")
EARLY_DOC = '''
# EARLY (the epilogue's inputs read before the PDL wait, see the core) is set per call by an engine
# (``early_inputs``) where the kernel before this one waits before it lets this one start: off PDL
# it changes nothing, and a kernel timed alone cannot show its effect.'''


def host(kind: str) -> str:
    knobs = {"TRIGGER": [0, 1], "MINB": [0, 4]} | ({"EARLY": [0, 1]} if kind in EARLY_KINDS else {})
    return HOST.replace("@SWEEP_KNOBS@", repr(knobs)).replace("@EARLY_DOC@", EARLY_DOC if kind in EARLY_KINDS else "")


# Seeds whose CUDA is another seed's, verbatim (a fused kernel compiled from the same source with
# other kernels enabled): name -> (source seed, task, header and host code in this folder).
COPIED_SEEDS = {
    "attention_o_residual_bf16": ("attention_decode_gqa_bf16", "decode/attention_o_residual_bf16.py",
                                  "attention_o_residual.py.in"),
}
HOST_DIR = Path(__file__).resolve().parent / "seed_hosts"


def seed_source(name: str) -> str:
    """The SOURCE literal of seed ``name`` (kernels/seeds/NAME.py)."""
    import ast

    tree = ast.parse((SEEDS / f"{name}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SOURCE":
            return node.value.value
    raise ValueError(f"{name}.py has no SOURCE")


def render_copied(name: str) -> str:
    origin, task, host = COPIED_SEEDS[name]
    doc, code = (HOST_DIR / host).read_text().split("\n# ---- host code ----\n", 1)
    return (doc.rstrip() + f"\n# TASK: kernels/tasks/{task}\n\n"
            "import torch\nimport torch.nn as nn\nfrom autotuner.runtime import compile_module, pdl_launch\n\n"
            f"# generated by scripts/gen_decode_seeds.py: SOURCE is {origin}.py's, the rest\n"
            f"# scripts/seed_hosts/{host} (edit those, not this file)\n"
            f"SOURCE = r'''{seed_source(origin)}'''\n" + code)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name in [*SEED_TASKS, *COPIED_SEEDS]:
        path = SEEDS / f"{name}.py"
        text = render(name) if name in SEED_TASKS else render_copied(name)
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(path.name)
        if not check:
            path.write_text(text)
    if check and stale:
        print("out of date: " + ", ".join(stale) + " (run python scripts/gen_decode_seeds.py)")
        return 1
    if not check:
        print(f"wrote {len(stale)} seed(s)" if stale else "seeds up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
