"""The engine's op slots: each a PyTorch implementation, replaced by a verified kernel if bound.

A slot is one of the ops a decoder layer spends its non-GEMM time in. Its PyTorch
implementation is the numerics the engine is checked against (Hugging Face's, op for op); a
bound kernel is the ``ModelNew`` of the archive's best verified kernel for the slot's task,
called with tensors shaped like that task's inputs (the engine's tensors are reshaped to
them as views, and made contiguous only where they are not). ``Slots`` holds one binding per
slot; ``report()`` says which slot runs which kernel, or PyTorch and why.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

# slot -> dtype -> task file in the built-in suite (kernels/tasks/...). The task fixes the
# signature: a kernel for it computes exactly what the slot's PyTorch implementation does.
SLOT_TASKS: dict[str, dict[str, str]] = {
    "rmsnorm": {"bfloat16": "normalization/rmsnorm_bf16.py", "float32": "normalization/rmsnorm.py"},
    "residual_rmsnorm": {"bfloat16": "decode/residual_rmsnorm_bf16.py"},
    "rope": {"bfloat16": "decode/rope_bf16.py"},
    "silu_mul": {"bfloat16": "decode/silu_mul_bf16.py"},
    "attention_decode": {"bfloat16": "decode/attention_decode_gqa_bf16.py"},
    # The fused decode path (autotuner/deploy/fused.py): one kernel per projection, with the ops
    # around it. Each falls back to the op-by-op slots above, so an unbound one changes nothing.
    "qkv_rope_append": {"bfloat16": "decode/qkv_rope_append_bf16.py"},
    "o_residual": {"bfloat16": "decode/o_residual_bf16.py"},
    # attention + o_residual in one kernel; unbound, the two slots above run
    "attention_o_residual": {"bfloat16": "decode/attention_o_residual_bf16.py"},
    "gate_up_silu": {"bfloat16": "decode/gate_up_silu_bf16.py"},
    "down_residual": {"bfloat16": "decode/down_residual_bf16.py"},
    "lm_head_argmax": {"bfloat16": "decode/lm_head_argmax_bf16.py"},
}
SLOT_NAMES: tuple[str, ...] = tuple(SLOT_TASKS)
OP_SLOTS: tuple[str, ...] = ("rmsnorm", "residual_rmsnorm", "rope", "silu_mul", "attention_decode")
FUSED_SLOTS: tuple[str, ...] = ("qkv_rope_append", "attention_o_residual", "o_residual", "gate_up_silu", "down_residual",
                                 "lm_head_argmax")
# Slots an engine binds only when asked (``resolve_slots(slots=...)``, ``deploy ... --with-slot``),
# each with why. attention_o_residual is faster than attention_decode + o_residual alone (H200,
# Llama-3.2-1B shapes, ncu: 13.1 us against 7.5 + 7.7) but made the CUDA-graph decode step with
# programmatic dependent launch slower (scripts/decode_step_sweep.py A/B, 2026-12-02: 0.979 ms
# against 0.937): it streams W_o through the 64 SMs of the attention clusters only, where the
# separate O kernel streams it on every SM, overlapped with attention's tail under PDL.
OPT_IN_SLOTS: dict[str, str] = {
    "attention_o_residual": "off by default (slower in the PDL decode step on an H200: 0.979 against 0.937 ms "
                            "a step); bind it with --with-slot attention_o_residual",
}
DEFAULT_SLOTS: tuple[str, ...] = tuple(s for s in SLOT_NAMES if s not in OPT_IN_SLOTS)


# ---- the PyTorch implementations (Hugging Face Llama numerics) ------------------------------

def rmsnorm_torch(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """LlamaRMSNorm: statistics in fp32, the normalized value cast back, then the weight."""
    h = x.to(torch.float32)
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def rope_torch(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """apply_rotary_pos_emb (rotate_half). q: [tokens, heads, d], k: [tokens, kv_heads, d], cos/sin: [tokens, d]."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    half = q.shape[-1] // 2

    def rotate_half(t: torch.Tensor) -> torch.Tensor:
        return torch.cat((-t[..., half:], t[..., :half]), dim=-1)

    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def silu_mul_torch(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return F.silu(gate) * up


def attention_decode_torch(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
                           cache_len: torch.Tensor | None = None) -> torch.Tensor:
    """One query per head against the cache. q: [b, h, d]; k, v: [b, kv_heads, len, d] -> [b, h, d].

    The task's numerics: scores, softmax and the weighted sum in fp32, the output rounded
    once (as flash-decoding kernels do; fused SDPA in bf16 rounds the probabilities first).
    The h / kv_heads query heads that share a KV head are that head's query rows, so
    grouped-query attention needs no copy of the cache. ``cache_len`` [b] int64: positions
    at or past it are not attended (None: all are).
    """
    b, h, d = q.shape
    kv, length = k.shape[1], k.shape[2]
    qf = q.float().view(b, kv, h // kv, d)  # [b, kv_heads, group, d]
    scores = torch.matmul(qf, k.float().transpose(-1, -2)) * scale  # [b, kv_heads, group, len]
    if cache_len is not None:
        written = torch.arange(length, device=q.device)[None, :] < cache_len[:, None]  # [b, len]
        scores = scores.masked_fill(~written[:, None, None, :], float("-inf"))
    out = torch.matmul(torch.softmax(scores, dim=-1), v.float())  # [b, kv_heads, group, d]
    return out.reshape(b, h, d).to(q.dtype)


# ---- bindings -------------------------------------------------------------------------------

@dataclass
class SlotBinding:
    """What one slot runs: a verified kernel (``model_new`` set) or PyTorch, with the reason."""

    slot: str
    reason: str = ""
    task: str | None = None
    kernel_id: int | None = None
    evaluation_id: int | None = None
    reverify_evaluation_id: int | None = None
    model_new: type | None = None
    params: dict[str, Any] = field(default_factory=dict)
    speedup_eager: float | None = None
    gpu: str | None = None

    @property
    def bound(self) -> bool:
        return self.model_new is not None

    def describe(self) -> str:
        if not self.bound:
            return f"pytorch ({self.reason})"
        speed = f", {self.speedup_eager:.2f}x vs eager" if self.speedup_eager else ""
        note = f"; {self.reason}" if self.reason else ""
        return f"kernel {self.kernel_id} ({self.task}, evaluation {self.evaluation_id}{speed}{note})"


def _contig(t: torch.Tensor) -> torch.Tensor:
    return t if t.is_contiguous() else t.contiguous()


# What the next kernel of a decode step will stream: (tensor, bytes) ranges a kernel may prefetch
# into L2 as it drains (a hint; kernels without a ``prefetch_next`` attribute ignore it).
Prefetch = tuple[tuple[torch.Tensor, int], ...]


def _hinted(kernel: nn.Module, prefetch: Prefetch) -> nn.Module:
    if hasattr(kernel, "prefetch_next"):
        kernel.prefetch_next = prefetch
    return kernel


def waits_before_trigger(kernel: nn.Module) -> bool:
    """Whether ``kernel`` lets a programmatic-dependent successor start only after its own
    ``griddepcontrol.wait`` (a kernel that does not say so is assumed not to)."""
    return bool(getattr(kernel, "waits_before_trigger", False))


def query_rescale(scale: float, head_dim: int) -> float | None:
    """The power of two q is multiplied by so that the kernels' fixed 1/sqrt(head_dim) gives
    ``scale`` (1.0: none), or None if no power of two does. ``scale`` is compared to within
    1e-9 relative: ``128 ** -0.5 * sqrt(128)`` is 1.0000000000000002 in floating point."""
    ratio = scale * math.sqrt(head_dim)
    if not ratio > 0:
        return None
    power = 2.0 ** round(math.log2(ratio))
    return power if abs(ratio / power - 1.0) < 1e-9 else None


def _rescaled_query(slot: str, q: torch.Tensor, scale: float) -> torch.Tensor:
    """q scaled so that the attention kernels' fixed 1/sqrt(head_dim) gives ``scale`` (exact: a
    power of two); a scale no power of two reaches is refused."""
    d = q.shape[-1]
    ratio = query_rescale(scale, d)
    if ratio is None:
        raise ValueError(f"{slot}: softmax scale {scale:g} is not 1/sqrt({d}) times a power of two")
    return q * ratio if ratio != 1.0 else q


class Slots:
    """The engine's op slots. Thread-compatible, not thread-safe (one engine, one thread)."""

    def __init__(self, bindings: dict[str, SlotBinding] | None = None) -> None:
        given = bindings or {}
        self.bindings = {s: given.get(s) or SlotBinding(s, "not resolved: pure PyTorch engine") for s in SLOT_NAMES}
        self._instances: dict[tuple[Any, ...], tuple[Any, nn.Module]] = {}
        # Whether everything launched before the last slot's kernel has completed by the time the
        # next kernel can start, even under programmatic dependent launch: true after PyTorch's
        # kernels (never launched programmatically) and after a kernel that waits before it lets
        # its successor start. A kernel with ``early_inputs`` (the decode seeds' EARLY) then reads
        # its epilogue's inputs that the last kernel does not write before its own PDL wait.
        # Whoever launches a kernel between slots says what it does (``after_foreign_kernel``).
        self.settled = False
        self.early = True  # False: no kernel reads early (a measuring switch: scripts/decode_step_sweep.py)

    def after_foreign_kernel(self, waits_before_trigger: bool) -> None:
        """A kernel that is not a slot ran since the last slot (the decode step's input kernel)."""
        self.settled = waits_before_trigger

    def _call(self, kernel: nn.Module, *args: Any, **kwargs: Any) -> Any:
        """Run a slot's kernel, told first whether it may read its epilogue's inputs early."""
        if hasattr(kernel, "early_inputs"):
            kernel.early_inputs = self.early and self.settled
        out = kernel(*args, **kwargs)
        self.settled = waits_before_trigger(kernel)
        return out

    def _torch(self, out: Any) -> Any:
        """A slot's result computed by PyTorch's kernels (ordinary launches)."""
        self.settled = True
        return out

    @classmethod
    def pytorch(cls, reason: str = "pure PyTorch engine") -> Slots:
        return cls({s: SlotBinding(s, reason) for s in SLOT_NAMES})

    def report(self) -> dict[str, str]:
        return {s: b.describe() for s, b in self.bindings.items()}

    def bound(self, slot: str) -> bool:
        return self.bindings[slot].bound

    def instance(self, slot: str, init_args: tuple[Any, ...] = (), weights: dict[str, torch.Tensor] | None = None,
                 like: torch.Tensor | None = None) -> nn.Module:
        """The kernel module for ``slot``, one per (weights, constructor arguments).

        Weights are shared with the engine, not copied: the kernel reads the engine's own
        parameters, so reloading them in place reaches the kernel too.
        """
        weights = weights or {}
        key = (slot, init_args, tuple((n, id(w)) for n, w in sorted(weights.items())))
        cached = self._instances.get(key)
        if cached is not None:
            return cached[1]
        binding = self.bindings[slot]
        assert binding.model_new is not None
        device = like.device if like is not None else None
        with torch.device(device) if device is not None else nullcontext():
            module = binding.model_new(*init_args, **binding.params)
        if like is not None:
            module = module.to(device=like.device, dtype=like.dtype)
        module.eval()
        for name, tensor in weights.items():
            setattr(module, name, nn.Parameter(tensor.detach(), requires_grad=False))
        self._instances[key] = (list(weights.values()), module)
        return module

    # ---- the slots, as the engine calls them ---------------------------------------------

    def rmsnorm(self, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        """x: [..., hidden] -> [..., hidden]."""
        if not self.bindings["rmsnorm"].bound:
            return self._torch(rmsnorm_torch(x, weight, eps))
        dim = x.shape[-1]
        kernel = self.instance("rmsnorm", (dim, eps), {"weight": weight}, like=x)
        return self._call(kernel, _contig(x).view(-1, dim)).view(x.shape)

    def residual_rmsnorm(self, x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor,
                         eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(rmsnorm(residual + x), residual + x); x, residual: [..., hidden]."""
        if not self.bindings["residual_rmsnorm"].bound:
            new_residual = residual + x
            return self.rmsnorm(new_residual, weight, eps), new_residual  # the rmsnorm kernel, if bound
        dim = x.shape[-1]
        kernel = self.instance("residual_rmsnorm", (dim, eps), {"weight": weight}, like=x)
        normed, new_residual = self._call(kernel, _contig(x).view(-1, dim), _contig(residual).view(-1, dim))
        return normed.view(x.shape), new_residual.view(x.shape)

    def rope(self, q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q: [tokens, heads, d], k: [tokens, kv_heads, d], cos / sin: [tokens, d]."""
        if not self.bindings["rope"].bound:
            return self._torch(rope_torch(q, k, cos, sin))
        kernel = self.instance("rope", like=q)
        return self._call(kernel, _contig(q), _contig(k), _contig(cos), _contig(sin))

    def silu_mul(self, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        """gate, up: [tokens, intermediate]."""
        if not self.bindings["silu_mul"].bound:
            return self._torch(silu_mul_torch(gate, up))
        kernel = self.instance("silu_mul", like=gate)
        return self._call(kernel, _contig(gate), _contig(up))

    def attention_decode(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                         cache_len: torch.Tensor, scale: float, kv_len: int | None = None,
                         prefetch: Prefetch = ()) -> torch.Tensor:
        """q: [b, h, d]; k_cache, v_cache: [b, kv_heads, max_seq, d]; cache_len: [b] int64 -> [b, h, d].

        ``kv_len`` (eager decode: the host knows how much is written) lets the PyTorch
        implementation read only that much; a kernel reads ``cache_len`` on the device, so
        the same call works inside a CUDA graph.
        """
        if not self.bindings["attention_decode"].bound:
            if kv_len is not None:
                return self._torch(attention_decode_torch(q, k_cache[:, :, :kv_len], v_cache[:, :, :kv_len], scale))
            return self._torch(attention_decode_torch(q, k_cache, v_cache, scale, cache_len))
        q = _rescaled_query("attention_decode", q, scale)
        kernel = _hinted(self.instance("attention_decode", like=q), prefetch)
        return self._call(kernel, _contig(q), _contig(k_cache), _contig(v_cache), _contig(cache_len))

    # ---- the fused decode slots (one activation row per sequence: x [b, features]) -------

    def qkv_rope_append(self, x: torch.Tensor, norm_weight: torch.Tensor, weight: torch.Tensor,
                        bias: torch.Tensor | None, cos_table: torch.Tensor, sin_table: torch.Tensor,
                        k_cache: torch.Tensor, v_cache: torch.Tensor, pos: torch.Tensor, heads: int, kv_heads: int,
                        head_dim: int, eps: float, prefetch: Prefetch = ()) -> torch.Tensor:
        """RMSNorm, q/k/v projection, rotary embedding at ``pos`` ([1] int64 on the device) and
        the caches' append (in place). x: [b, hidden]; tables [max_seq, head_dim] in the model
        dtype -> q [b, heads, head_dim]."""
        if not self.bindings["qkv_rope_append"].bound:
            b = x.shape[0]
            h = self.rmsnorm(x, norm_weight, eps)
            q, k, v = F.linear(h, weight, bias).split([heads * head_dim, kv_heads * head_dim, kv_heads * head_dim], -1)
            cos, sin = cos_table[pos].expand(b, head_dim), sin_table[pos].expand(b, head_dim)
            q, k = self.rope(q.reshape(b, heads, head_dim), k.reshape(b, kv_heads, head_dim), cos, sin)
            k_cache.index_copy_(2, pos, k.unsqueeze(2))
            v_cache.index_copy_(2, pos, v.reshape(b, kv_heads, 1, head_dim))
            return self._torch(q)
        weights = {"norm_weight": norm_weight, "weight": weight}
        if bias is not None:
            weights["bias"] = bias
        kernel = _hinted(self.instance("qkv_rope_append", (x.shape[-1], heads, kv_heads, head_dim, bias is not None,
                                                           eps), weights, like=x), prefetch)
        q, _, _ = self._call(kernel, _contig(x), cos_table, sin_table, k_cache, v_cache, pos, inplace=True)
        return q

    def _residual_slot(self, slot: str, x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor,
                       multiplier: float, prefetch: Prefetch = ()) -> torch.Tensor:
        if not self.bindings[slot].bound:
            a = F.linear(x, weight)
            return self._torch(residual + (a * multiplier if multiplier != 1.0 else a))
        kernel = _hinted(self.instance(slot, (weight.shape[1], weight.shape[0], multiplier), {"weight": weight}, like=x),
                         prefetch)
        return self._call(kernel, _contig(x), _contig(residual))

    def attention_o_residual(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                             cache_len: torch.Tensor, scale: float, residual: torch.Tensor, weight: torch.Tensor,
                             multiplier: float, prefetch: Prefetch = ()) -> torch.Tensor:
        """residual + (attention(q) W^T) * multiplier: the attention_decode slot's arguments, then
        o_residual's. Unbound: those two slots (each a kernel where bound)."""
        if not self.bindings["attention_o_residual"].bound:
            y = self.attention_decode(q, k_cache, v_cache, cache_len, scale, prefetch=prefetch)
            return self.o_residual(y.reshape(q.shape[0], -1), residual, weight, multiplier, prefetch=prefetch)
        q = _rescaled_query("attention_o_residual", q, scale)
        kernel = _hinted(self.instance("attention_o_residual", (weight.shape[1], weight.shape[0], multiplier),
                                       {"weight": weight}, like=q), prefetch)
        return self._call(kernel, _contig(q), _contig(k_cache), _contig(v_cache), _contig(cache_len), _contig(residual))

    def o_residual(self, y: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, multiplier: float,
                   prefetch: Prefetch = ()) -> torch.Tensor:
        """residual + (y W^T) * multiplier. y: [b, q_size], residual: [b, hidden]."""
        return self._residual_slot("o_residual", y, residual, weight, multiplier, prefetch)

    def down_residual(self, act: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor,
                      multiplier: float, prefetch: Prefetch = ()) -> torch.Tensor:
        """residual + (act W^T) * multiplier. act: [b, intermediate], residual: [b, hidden]."""
        return self._residual_slot("down_residual", act, residual, weight, multiplier, prefetch)

    def gate_up_silu(self, x: torch.Tensor, norm_weight: torch.Tensor, weight: torch.Tensor, eps: float,
                     prefetch: Prefetch = ()) -> torch.Tensor:
        """SiLU(gate) * up of RMSNorm(x); weight [2 * intermediate, hidden] -> [b, intermediate]."""
        inter = weight.shape[0] // 2
        if not self.bindings["gate_up_silu"].bound:
            gate, up = F.linear(self.rmsnorm(x, norm_weight, eps), weight).split(inter, dim=-1)
            return self.silu_mul(gate, up)
        kernel = _hinted(self.instance("gate_up_silu", (x.shape[-1], inter, eps),
                                       {"norm_weight": norm_weight, "weight": weight}, like=x), prefetch)
        return self._call(kernel, _contig(x))

    def lm_head_argmax(self, x: torch.Tensor, norm_weight: torch.Tensor, weight: torch.Tensor, eps: float,
                       logits_scaling: float, prefetch: Prefetch = ()) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits [b, vocab], greedy token [b]) of RMSNorm(x) through the head."""
        if not self.bindings["lm_head_argmax"].bound:
            logits = F.linear(self.rmsnorm(x, norm_weight, eps), weight)
            if logits_scaling != 1.0:
                logits = logits / logits_scaling
            return self._torch((logits, logits.argmax(dim=-1)))
        kernel = _hinted(self.instance("lm_head_argmax", (x.shape[-1], weight.shape[0], eps, logits_scaling),
                                       {"norm_weight": norm_weight, "weight": weight}, like=x), prefetch)
        return self._call(kernel, _contig(x))


def attention_not_covered(head_dim: int, scale: float) -> str | None:
    """Why the attention-decode task's kernels cannot serve this model, or None if they can."""
    if query_rescale(scale, head_dim) is None:
        return f"shape not covered: softmax scale {scale:g} is not 1/sqrt({head_dim}) times a power of two"
    return None


PROBE_TOKENS = (1, 7)


def probe_inputs(slot: str, cfg: Any, tokens: int, dtype: torch.dtype, device: torch.device,
                 generator: torch.Generator) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """(kernel call, PyTorch call) for ``slot`` at the engine's own dims, on fresh random inputs.

    The evaluator verified the kernel at the task's shapes; this checks it at the model's
    (hidden size, eps, heads, head_dim), where a kernel that hard-codes a constant would show.
    """
    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, device=device, dtype=torch.float32).to(dtype)

    d, eps = cfg.hidden_size, cfg.rms_norm_eps
    if slot == "rmsnorm":
        x, w = randn(tokens, d), 1 + 0.1 * randn(d)
        return (lambda s: s.rmsnorm(x, w, eps)), (lambda: rmsnorm_torch(x, w, eps))
    if slot == "residual_rmsnorm":
        x, r, w = randn(tokens, d), randn(tokens, d), 1 + 0.1 * randn(d)
        return (lambda s: s.residual_rmsnorm(x, r, w, eps)), (lambda: (rmsnorm_torch(r + x, w, eps), r + x))
    if slot == "rope":
        hd = cfg.head_dim
        q, k = randn(tokens, cfg.num_heads, hd), randn(tokens, cfg.num_kv_heads, hd)
        ang = torch.rand(tokens, hd // 2, generator=generator, device=device) * 100
        ang = torch.cat((ang, ang), -1)
        cos, sin = ang.cos().to(dtype), ang.sin().to(dtype)
        return (lambda s: s.rope(q, k, cos, sin)), (lambda: rope_torch(q, k, cos, sin))
    if slot == "silu_mul":
        g, u = randn(tokens, cfg.intermediate_size), randn(tokens, cfg.intermediate_size)
        return (lambda s: s.silu_mul(g, u)), (lambda: silu_mul_torch(g, u))
    if slot in FUSED_SLOTS:
        return _fused_probe(slot, cfg, tokens, dtype, device, randn)
    if slot == "attention_decode":
        hd, max_seq = cfg.head_dim, 37 * tokens + 64
        q = randn(2, cfg.num_heads, hd)
        k, v = randn(2, cfg.num_kv_heads, max_seq, hd), randn(2, cfg.num_kv_heads, max_seq, hd)
        cache_len = torch.tensor([max_seq - 64, 1 + tokens], dtype=torch.long, device=device)
        scale = cfg.attention_scale
        return ((lambda s: s.attention_decode(q, k, v, cache_len, scale)),
                (lambda: attention_decode_torch(q, k, v, scale, cache_len)))
    raise KeyError(slot)


def _fused_probe(slot: str, cfg: Any, batch: int, dtype: torch.dtype, device: torch.device,
                 randn: Callable[..., torch.Tensor]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The fused slots at the engine's dims, ``batch`` sequences (1 and 7: PROBE_TOKENS), against
    the op-by-op PyTorch slots. Weights are random at the engine's scale."""
    d, eps = cfg.hidden_size, cfg.rms_norm_eps
    ref = Slots.pytorch("probe reference")
    norm = 1 + 0.1 * randn(d)
    mult = cfg.residual_multiplier
    if slot == "qkv_rope_append":
        hd, h, kvh, max_seq = cfg.head_dim, cfg.num_heads, cfg.num_kv_heads, 48
        x, w = randn(batch, d), randn(cfg.q_size + 2 * cfg.kv_size, d) * d ** -0.5
        bias = 0.1 * randn(cfg.q_size + 2 * cfg.kv_size) if cfg.qkv_bias else None
        ang = torch.rand(max_seq, hd // 2, device=device) * 100
        ang = torch.cat((ang, ang), -1)
        cos, sin = ang.cos().to(dtype), ang.sin().to(dtype)
        kc, vc = randn(batch, kvh, max_seq, hd), randn(batch, kvh, max_seq, hd)
        caches = [kc, vc, kc.clone(), vc.clone()]
        pos = torch.tensor([max_seq - 7], dtype=torch.long, device=device)

        def run(slots: Slots, kc: torch.Tensor, vc: torch.Tensor) -> tuple[torch.Tensor, ...]:
            q = slots.qkv_rope_append(x, norm, w, bias, cos, sin, kc, vc, pos, h, kvh, hd, eps)
            return q, kc, vc

        return (lambda s: run(s, caches[0], caches[1])), (lambda: run(ref, caches[2], caches[3]))
    if slot == "attention_o_residual":
        hd, h, kvh, max_seq = cfg.head_dim, cfg.num_heads, cfg.num_kv_heads, 37 * batch + 64
        q, r, w = randn(batch, h, hd), randn(batch, d), randn(d, cfg.q_size) * cfg.q_size ** -0.5
        k, v = randn(batch, kvh, max_seq, hd), randn(batch, kvh, max_seq, hd)
        cache_len = torch.arange(batch, device=device) * 37 % max_seq + 1  # 1, 38, ...: short and long
        cache_len[0] = max_seq - 64
        scale = cfg.attention_scale
        return ((lambda s: s.attention_o_residual(q, k, v, cache_len, scale, r, w, mult)),
                (lambda: ref.attention_o_residual(q, k, v, cache_len, scale, r, w, mult)))
    if slot in ("o_residual", "down_residual"):
        k = cfg.q_size if slot == "o_residual" else cfg.intermediate_size
        x, r, w = randn(batch, k), randn(batch, d), randn(d, k) * k ** -0.5
        fn = Slots.o_residual if slot == "o_residual" else Slots.down_residual
        return (lambda s: fn(s, x, r, w, mult)), (lambda: fn(ref, x, r, w, mult))
    if slot == "gate_up_silu":
        x, w = randn(batch, d), randn(2 * cfg.intermediate_size, d) * d ** -0.5
        return (lambda s: s.gate_up_silu(x, norm, w, eps)), (lambda: ref.gate_up_silu(x, norm, w, eps))
    if slot == "lm_head_argmax":
        x, w = randn(batch, d), randn(cfg.vocab_size, d) * d ** -0.5
        scaling = cfg.logits_scaling
        return ((lambda s: s.lm_head_argmax(x, norm, w, eps, scaling)[0]),
                (lambda: ref.lm_head_argmax(x, norm, w, eps, scaling)[0]))
    raise KeyError(slot)
