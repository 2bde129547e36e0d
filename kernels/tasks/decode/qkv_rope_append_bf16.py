"""Decode attention prologue: RMSNorm, fused q/k/v projection, rotary embedding, KV-cache append."""

# One decode step of a Llama-family attention block up to the attention itself, in bf16 as
# Hugging Face computes it: h = RMSNorm(x); q, k, v = h W^T (+ b); q, k rotated at position
# pos (rotate_half, bf16 tables); k and v written into the static caches at pos. The position
# is a device tensor (a CUDA graph replays with a new one). Functional form: the caches come
# back as new tensors (a kernel copies them; the engine appends in place instead).
# Default: Llama-3.2-1B (2048 -> 32 + 2 x 8 heads of 64, 12.6 MB of weights), 512 positions.

import torch
import torch.nn as nn
import torch.nn.functional as F


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Model(nn.Module):
    def __init__(self, hidden: int, heads: int, kv_heads: int, head_dim: int, bias: bool, eps: float):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim, self.eps = heads, kv_heads, head_dim, eps
        rows = (heads + 2 * kv_heads) * head_dim
        self.norm_weight = nn.Parameter(1.0 + 0.1 * torch.randn(hidden))
        self.weight = nn.Parameter(torch.randn(rows, hidden) * hidden ** -0.5)
        self.bias = nn.Parameter(0.1 * torch.randn(rows)) if bias else None

    def forward(self, x, cos, sin, k_cache, v_cache, pos):
        # x: [b, hidden]; cos / sin: [max_len, head_dim]; caches: [b, kv_heads, max_len, head_dim];
        # pos: [1] int64 -> q [b, heads, head_dim] and the caches with position pos written
        b = x.shape[0]
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        h = self.norm_weight * h.to(x.dtype)
        qkv = F.linear(h, self.weight, self.bias)
        q_size, kv_size = self.heads * self.head_dim, self.kv_heads * self.head_dim
        q, k, v = qkv.split([q_size, kv_size, kv_size], dim=-1)
        q = q.reshape(b, self.heads, self.head_dim)
        k = k.reshape(b, self.kv_heads, self.head_dim)
        v = v.reshape(b, self.kv_heads, self.head_dim)
        c, s = cos[pos], sin[pos]  # [1, head_dim], broadcast over batch and heads
        q = q * c + rotate_half(q) * s
        k = k * c + rotate_half(k) * s
        k_new = k_cache.index_copy(2, pos, k.unsqueeze(2))
        v_new = v_cache.index_copy(2, pos, v.unsqueeze(2))
        return q, k_new, v_new


batch_size = 1
hidden_size = 2048
heads = 32
kv_heads = 8
head_dim = 64
max_len = 512
bias = False
eps = 1e-5
rope_theta = 500000.0


def get_inputs():
    x = torch.randn(batch_size, hidden_size, dtype=torch.bfloat16)
    positions = torch.arange(max_len, dtype=torch.float32)
    inv_freq = 1.0 / (rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    freqs = positions[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    k_cache = torch.randn(batch_size, kv_heads, max_len, head_dim, dtype=torch.bfloat16)
    v_cache = torch.randn(batch_size, kv_heads, max_len, head_dim, dtype=torch.bfloat16)
    pos = torch.randint(0, max_len, (1,))
    return [x, emb.cos().to(torch.bfloat16), emb.sin().to(torch.bfloat16), k_cache, v_cache, pos]


def get_init_inputs():
    return [hidden_size, heads, kv_heads, head_dim, bias, eps]


def bytes_moved(inputs, outputs):
    """Weights once, x, the position's table rows, q out; the caches copied (functional form)."""
    x, _, _, k_cache, v_cache, _ = inputs
    rows = (heads + 2 * kv_heads) * head_dim
    weights = rows * hidden_size + hidden_size + (rows if bias else 0)
    return 2 * (weights + x.numel() + 2 * head_dim + outputs[0].numel() + 2 * (k_cache.numel() + v_cache.numel()))


FAMILY = "decode"
DTYPE = "bfloat16"
POLICY = "strict"
TIMING = "graph"  # microseconds of work: launched from Python, the launch would be timed
SHAPES = [
    {"name": "qwen2.5_1.5b", "hidden_size": 1536, "heads": 12, "kv_heads": 2, "head_dim": 128, "max_len": 300,
     "bias": True, "eps": 1e-6, "rope_theta": 1000000.0},
    {"name": "odd", "batch_size": 3, "hidden_size": 1003, "heads": 5, "kv_heads": 1, "head_dim": 18, "max_len": 37,
     "bias": True, "hidden": True},
    {"name": "batch4", "batch_size": 4, "hidden_size": 2056, "heads": 4, "kv_heads": 2, "head_dim": 64, "max_len": 64,
     "hidden": True},
]
