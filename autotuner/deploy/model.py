"""A small Llama-family transformer: static KV cache, prefill and decode, slot-based ops.

In the spirit of gpt-fast: plain modules, a static KV cache so that decode has fixed shapes
(and can be captured in a CUDA graph), weights fused where a decode step reads them in one
pass (q/k/v in one GEMM, gate/up in one GEMM). The non-GEMM ops go through ``Slots``, so a
verified kernel replaces the PyTorch implementation without the model knowing.

Two ways to attend:
* ``kv_len`` given (eager): the cache is sliced to the positions written so far.
* ``kv_len=None`` (static shapes, for CUDA graphs and torch.compile): every position of the
  cache is attended, with a mask built on the device from ``input_pos``.
A single-token step goes through the attention-decode slot either way, with the written
length as a device tensor (``cache_len``), so a kernel there also serves a CUDA graph.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from autotuner.deploy.model_config import ModelConfig
from autotuner.deploy.rope import rope_tables
from autotuner.deploy.slots import Slots

_HAS_GQA = tuple(int(p) for p in torch.__version__.split(".")[:2]) >= (2, 5)


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, mask: torch.Tensor | None,
          causal: bool) -> torch.Tensor:
    """q: [b, h, t, d]; k, v: [b, kv_heads, len, d]; grouped heads without copying where torch can."""
    if q.shape[1] != k.shape[1]:
        if _HAS_GQA:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, scale=scale,
                                                  enable_gqa=True)
        group = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, scale=scale)


class KVCache(nn.Module):
    def __init__(self, batch: int, kv_heads: int, max_seq: int, head_dim: int, dtype: torch.dtype,
                 device: torch.device | str) -> None:
        super().__init__()
        shape = (batch, kv_heads, max_seq, head_dim)
        self.register_buffer("k_cache", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v_cache", torch.zeros(shape, dtype=dtype, device=device), persistent=False)

    def update(self, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # input_pos: [t]; k, v: [b, kv_heads, t, d] -> the whole caches [b, kv_heads, max_seq, d]
        self.k_cache.index_copy_(2, input_pos, k)
        self.v_cache.index_copy_(2, input_pos, v)
        return self.k_cache, self.v_cache


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wqkv = nn.Linear(cfg.hidden_size, cfg.q_size + 2 * cfg.kv_size, bias=cfg.qkv_bias)
        self.wo = nn.Linear(cfg.q_size, cfg.hidden_size, bias=False)
        self.kv_cache: KVCache | None = None

    def forward(self, x: torch.Tensor, slots: Slots, cos: torch.Tensor, sin: torch.Tensor, input_pos: torch.Tensor,
                kv_len: int | None, mask: torch.Tensor | None, cache_len: torch.Tensor | None) -> torch.Tensor:
        """``mask``: static path with t > 1 only, additive [t, max_seq] in the model dtype (0 = attend,
        -inf = not). ``cache_len``: decode steps only, [b] int64, the positions written after this one."""
        cfg = self.cfg
        b, t, _ = x.shape  # x: [b, t, hidden]
        q, k, v = self.wqkv(x).split([cfg.q_size, cfg.kv_size, cfg.kv_size], dim=-1)
        q, k = slots.rope(q.reshape(b * t, cfg.num_heads, cfg.head_dim), k.reshape(b * t, cfg.num_kv_heads, cfg.head_dim),
                          cos, sin)  # [b*t, heads, d], [b*t, kv_heads, d]
        q = q.view(b, t, cfg.num_heads, cfg.head_dim).transpose(1, 2)  # [b, heads, t, d]
        k = k.view(b, t, cfg.num_kv_heads, cfg.head_dim).transpose(1, 2)  # [b, kv_heads, t, d]
        v = v.view(b, t, cfg.num_kv_heads, cfg.head_dim).transpose(1, 2)
        assert self.kv_cache is not None, "call Transformer.setup_caches first"
        k_all, v_all = self.kv_cache.update(input_pos, k, v)  # [b, kv_heads, max_seq, d]
        scale = cfg.attention_scale
        if t == 1:  # a decode step: the attention-decode slot, reading cache_len on the device
            assert cache_len is not None
            y = slots.attention_decode(q[:, :, 0], k_all, v_all, cache_len, scale, kv_len=kv_len)
        elif kv_len is None:  # static shapes: the whole cache, masked
            assert mask is not None
            y = _sdpa(q, k_all, v_all, scale, mask, causal=False).transpose(1, 2)
        elif kv_len == t:  # a prompt from position 0: plain causal
            y = _sdpa(q, k_all[:, :, :t], v_all[:, :, :t], scale, None, causal=True).transpose(1, 2)
        else:  # a chunk after earlier tokens: query i sees cache positions <= its own
            visible = self.cache_pos_view(kv_len, input_pos)
            y = _sdpa(q, k_all[:, :, :kv_len], v_all[:, :, :kv_len], scale, visible, causal=False).transpose(1, 2)
        return self.wo(y.reshape(b, t, cfg.q_size))

    def cache_pos_view(self, kv_len: int, input_pos: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(kv_len, device=input_pos.device)
        return positions[None, :] <= input_pos[:, None]  # [t, kv_len] bool


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.intermediate = cfg.intermediate_size
        self.w_gate_up = nn.Linear(cfg.hidden_size, 2 * cfg.intermediate_size, bias=False)
        self.w_down = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor, slots: Slots) -> torch.Tensor:
        b, t, _ = x.shape
        gate, up = self.w_gate_up(x).view(b * t, 2 * self.intermediate).split(self.intermediate, dim=-1)
        return self.w_down(slots.silu_mul(gate, up).view(b, t, self.intermediate))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.attention_norm = nn.Parameter(torch.ones(cfg.hidden_size))
        self.attention = Attention(cfg)
        self.ffn_norm = nn.Parameter(torch.ones(cfg.hidden_size))
        self.feed_forward = FeedForward(cfg)


class Transformer(nn.Module):
    """Logits for ``tokens`` at ``input_pos``, writing their keys and values into the cache."""

    def __init__(self, cfg: ModelConfig, slots: Slots | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.slots = slots or Slots.pytorch()
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.norm = nn.Parameter(torch.ones(cfg.hidden_size))
        self.output = None if cfg.tie_embeddings else nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.max_seq = 0
        self.batch = 0

    def setup_caches(self, batch: int, max_seq: int) -> None:
        """Allocate the static KV cache [batch, kv_heads, max_seq, head_dim] and the rope tables."""
        param = self.tok_embeddings.weight
        cfg = self.cfg
        self.batch, self.max_seq = batch, max_seq
        for layer in self.layers:
            layer.attention.kv_cache = KVCache(batch, cfg.num_kv_heads, max_seq, cfg.head_dim, param.dtype, param.device)
        cos, sin = rope_tables(cfg, max_seq, param.device)
        self.register_buffer("rope_cos", cos, persistent=False)  # [max_seq, head_dim] fp32
        self.register_buffer("rope_sin", sin, persistent=False)
        self.register_buffer("cache_pos", torch.arange(max_seq, device=param.device), persistent=False)

    def kv_caches_ready(self) -> bool:
        return bool(self.layers) and self.layers[0].attention.kv_cache is not None

    def lm_head(self, h: torch.Tensor) -> torch.Tensor:
        weight = self.tok_embeddings.weight if self.output is None else self.output.weight
        logits = F.linear(h, weight)
        return logits / self.cfg.logits_scaling if self.cfg.logits_scaling != 1.0 else logits

    def forward(self, tokens: torch.Tensor, input_pos: torch.Tensor, kv_len: int | None = None,
                last_only: bool = False, last_index: torch.Tensor | None = None,
                slots: Slots | None = None) -> torch.Tensor:
        """tokens: [b, t] int64; input_pos: [t] int64 positions -> logits [b, t or 1, vocab] (model dtype).

        ``last_index`` ([1] int64 on the device): logits of that position only (a padded prompt's
        last real token, without a host sync); ``last_only``: of the last position. ``slots``:
        these ops instead of the model's own for this call (a compiled prefill runs PyTorch's
        while the decode path keeps its kernels)."""
        cfg, slots = self.cfg, self.slots if slots is None else slots
        b, t = tokens.shape
        dtype = self.tok_embeddings.weight.dtype
        cos = self.rope_cos[input_pos].to(dtype)  # [t, head_dim]
        sin = self.rope_sin[input_pos].to(dtype)
        if b > 1:
            cos, sin = cos.repeat(b, 1), sin.repeat(b, 1)  # [b*t, head_dim], rows as q's
        x = self.tok_embeddings(tokens)  # [b, t, hidden]
        if cfg.embedding_multiplier != 1.0:
            x = x * cfg.embedding_multiplier
        mask = cache_len = None
        if t == 1:  # one token per sequence: every sequence has written input_pos + 1 positions
            cache_len = (input_pos + 1).expand(b).contiguous()
        elif kv_len is None:  # one additive mask for every layer: [t, max_seq], 0 where visible
            visible = self.cache_pos[None, :] <= input_pos[:, None]
            mask = torch.zeros(visible.shape, dtype=dtype, device=tokens.device).masked_fill_(~visible, float("-inf"))
        eps, mult = cfg.rms_norm_eps, cfg.residual_multiplier
        h, residual = slots.rmsnorm(x, self.layers[0].attention_norm, eps), x
        for i, layer in enumerate(self.layers):
            a = layer.attention(h, slots, cos, sin, input_pos, kv_len, mask, cache_len)
            h, residual = slots.residual_rmsnorm(a * mult if mult != 1.0 else a, residual, layer.ffn_norm, eps)
            m = layer.feed_forward(h, slots)
            next_norm = self.layers[i + 1].attention_norm if i + 1 < len(self.layers) else self.norm
            h, residual = slots.residual_rmsnorm(m * mult if mult != 1.0 else m, residual, next_norm, eps)
        if last_index is not None:
            h = h.index_select(1, last_index)
        elif last_only:
            h = h[:, -1:]
        return self.lm_head(h)

    def weight_bytes(self) -> int:
        """Bytes of weights one decode step reads: every matrix once (an embedding row is negligible)."""
        total = sum(p.numel() * p.element_size() for p in self.parameters())
        if self.output is not None:  # untied: the embedding table is gathered, not read whole
            w = self.tok_embeddings.weight
            total -= w.numel() * w.element_size()
        return total
