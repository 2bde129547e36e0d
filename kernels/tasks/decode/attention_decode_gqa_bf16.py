"""Grouped-query decode attention over a static bf16 KV cache with per-sequence lengths."""

# What a decode step of a Llama-family model computes, in the layout a static cache (and a
# CUDA graph) needs: the cache has a fixed max_len and cache_len[b] says how many of its
# positions sequence b has written; the rest is stale and must not be attended.
# heads // kv_heads query heads share each KV head (grouped-query attention; 1 is plain
# multi-head attention).

import math

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                cache_len: torch.Tensor) -> torch.Tensor:
        # q: [batch, heads, head_dim]; k_cache / v_cache: [batch, kv_heads, max_len, head_dim];
        # cache_len: [batch] int64 in 1..max_len. Scores, softmax and the weighted sum in fp32
        # (as flash-decoding kernels keep them), output cast back to bf16.
        b, h, d = q.shape
        kv_heads, max_len = k_cache.shape[1], k_cache.shape[2]
        scale = 1.0 / math.sqrt(d)
        qf = q.to(torch.float32).view(b, kv_heads, h // kv_heads, d)        # [b, kv, group, d]
        scores = torch.matmul(qf, k_cache.to(torch.float32).transpose(-1, -2)) * scale
        written = torch.arange(max_len, device=q.device)[None, :] < cache_len[:, None]  # [b, max_len]
        scores = scores.masked_fill(~written[:, None, None, :], float("-inf"))
        probs = torch.softmax(scores, dim=-1)                               # [b, kv, group, max_len]
        out = torch.matmul(probs, v_cache.to(torch.float32))                # [b, kv, group, d]
        return out.reshape(b, h, d).to(q.dtype)


# Default: batch 16, 32 query heads over 8 KV heads, head_dim 128, a 4096-position cache
# about three quarters written: K + V read ~0.2 GB -> ~0.05 ms at 4 TB/s.
batch_size = 16
num_heads = 32
num_kv_heads = 8
max_len = 4096
head_dim = 128


def get_inputs():
    q = torch.randn(batch_size, num_heads, head_dim, dtype=torch.bfloat16)
    k_cache = torch.randn(batch_size, num_kv_heads, max_len, head_dim, dtype=torch.bfloat16)
    v_cache = torch.randn(batch_size, num_kv_heads, max_len, head_dim, dtype=torch.bfloat16)
    cache_len = torch.randint(max(1, max_len // 2), max_len + 1, (batch_size,))
    cache_len[0] = max_len  # one full sequence, and (below) one that has written a single position
    if batch_size > 1:
        cache_len[-1] = 1
    return [q, k_cache, v_cache, cache_len]


def get_init_inputs():
    return []


def bytes_moved(inputs, outputs):
    """What a kernel must read: q, the written part of K and V, the lengths; and write: out."""
    q, k_cache, _, cache_len = inputs
    row = k_cache.shape[1] * k_cache.shape[3] * k_cache.element_size()  # one position, every KV head
    written = int(cache_len.clamp(max=k_cache.shape[2]).sum())
    return 2 * q.numel() * q.element_size() + 2 * written * row + cache_len.numel() * cache_len.element_size()


FAMILY = "decode"
DTYPE = "bfloat16"
POLICY = "strict"
TIMING = "graph"  # microseconds of work: launched from Python, the launch would be timed
SHAPES = [
    {"name": "small", "batch_size": 2, "max_len": 1024, "head_dim": 64},
    {"name": "qwen_like", "batch_size": 3, "num_heads": 12, "num_kv_heads": 2, "max_len": 1037, "hidden": True},
    {"name": "mha_odd", "batch_size": 2, "num_heads": 5, "num_kv_heads": 5, "max_len": 17, "head_dim": 72,
     "hidden": True},
]
