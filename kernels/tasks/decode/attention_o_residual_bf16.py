"""Decode attention with its output projection and residual add, in one step, in bf16."""

# A Llama-family attention sublayer after q/k/v are written: grouped-query attention of one
# query per head over a static cache with per-sequence lengths (as decode/attention_decode_gqa_bf16:
# fp32 scores, softmax and weighted sum, the output rounded once to bf16), then the output
# projection in bf16 (fp32 accumulation), scaled where the model has a residual multiplier
# (Granite), added to the residual stream. A kernel for it saves the round trip of the
# attention output through memory and one kernel boundary per layer.
# Default: Llama-3.2-1B (32 heads over 8 KV heads, head_dim 64, hidden 2048; 8.4 MB of weights)
# with a 768-position cache about three quarters written.

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int, multiplier: float):
        super().__init__()
        self.multiplier = multiplier
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * in_features ** -0.5)

    def forward(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, cache_len: torch.Tensor,
                residual: torch.Tensor) -> torch.Tensor:
        # q: [batch, heads, head_dim] with heads * head_dim == in_features; k_cache / v_cache:
        # [batch, kv_heads, max_len, head_dim]; cache_len: [batch] int64 in 1..max_len;
        # residual: [batch, out_features] -> the new residual stream [batch, out_features]
        b, h, d = q.shape
        kv_heads, max_len = k_cache.shape[1], k_cache.shape[2]
        qf = q.to(torch.float32).view(b, kv_heads, h // kv_heads, d)
        scores = torch.matmul(qf, k_cache.to(torch.float32).transpose(-1, -2)) / math.sqrt(d)
        written = torch.arange(max_len, device=q.device)[None, :] < cache_len[:, None]
        scores = scores.masked_fill(~written[:, None, None, :], float("-inf"))
        y = torch.matmul(torch.softmax(scores, dim=-1), v_cache.to(torch.float32)).reshape(b, h * d).to(q.dtype)
        a = F.linear(y, self.weight)
        if self.multiplier != 1.0:
            a = a * self.multiplier
        return residual + a


batch_size = 1
num_heads = 32
num_kv_heads = 8
head_dim = 64
hidden_size = 2048
max_len = 768
multiplier = 1.0


def get_inputs():
    q = torch.randn(batch_size, num_heads, head_dim, dtype=torch.bfloat16)
    k_cache = torch.randn(batch_size, num_kv_heads, max_len, head_dim, dtype=torch.bfloat16)
    v_cache = torch.randn(batch_size, num_kv_heads, max_len, head_dim, dtype=torch.bfloat16)
    cache_len = torch.randint(max(1, max_len // 2), max_len + 1, (batch_size,))
    if batch_size > 1:
        cache_len[0] = max_len  # one full sequence and one that has written a single position
        cache_len[-1] = 1
    residual = torch.randn(batch_size, hidden_size, dtype=torch.bfloat16)
    return [q, k_cache, v_cache, cache_len, residual]


def get_init_inputs():
    return [num_heads * head_dim, hidden_size, multiplier]


def bytes_moved(inputs, outputs):
    """q, the written part of K and V, the lengths, the weight once, the residual in and out."""
    q, k_cache, _, cache_len, residual = inputs
    row = k_cache.shape[1] * k_cache.shape[3] * k_cache.element_size()
    written = int(cache_len.clamp(max=k_cache.shape[2]).sum())
    weight = hidden_size * num_heads * head_dim * 2
    return (q.numel() * q.element_size() + 2 * written * row + cache_len.numel() * cache_len.element_size()
            + weight + 2 * residual.numel() * residual.element_size())


FAMILY = "decode"
DTYPE = "bfloat16"
POLICY = "strict"
TIMING = "graph"  # microseconds of work: launched from Python, the launch would be timed
SHAPES = [
    {"name": "qwen2.5_1.5b", "num_heads": 12, "num_kv_heads": 2, "head_dim": 128, "hidden_size": 1536,
     "max_len": 640},
    {"name": "mha_odd", "batch_size": 2, "num_heads": 5, "num_kv_heads": 5, "head_dim": 72, "hidden_size": 203,
     "max_len": 37, "multiplier": 0.5, "hidden": True},
    {"name": "long_cache_granite", "batch_size": 3, "num_heads": 8, "num_kv_heads": 2, "head_dim": 64,
     "hidden_size": 520, "max_len": 3000, "multiplier": 0.22, "hidden": True},
]
