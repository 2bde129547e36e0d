"""Single-query decode attention over a bf16 KV cache: softmax(q k^T / sqrt(d)) v per head."""

import math

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor) -> torch.Tensor:
        # q: [batch, heads, head_dim]; k_cache / v_cache: [batch, heads, kv_len, head_dim].
        # Scores, softmax and the weighted sum in fp32 (as fused SDPA / flash-decoding kernels
        # keep them), output cast back to bf16. A kernel that rounds the scores to bf16 first
        # (as HF "eager" attention does) loses accuracy on long contexts.
        scale = 1.0 / math.sqrt(q.shape[-1])
        qf = q.to(torch.float32).unsqueeze(2)                      # [b, h, 1, d]
        scores = torch.matmul(qf, k_cache.to(torch.float32).transpose(-1, -2)) * scale
        probs = torch.softmax(scores, dim=-1)                      # [b, h, 1, kv_len]
        out = torch.matmul(probs, v_cache.to(torch.float32))       # [b, h, 1, d]
        return out.squeeze(2).to(q.dtype)


# Default: batch 32, 32 heads, kv_len 4096, head_dim 128, bf16: K + V = 2.1 GB read
# -> ~0.7 ms at 3 TB/s (eager upcasts K and V to fp32 copies: ~10.7 GB, ~4 ms).
batch_size = 32
num_heads = 32
kv_len = 4096
head_dim = 128


def get_inputs():
    q = torch.randn(batch_size, num_heads, head_dim, dtype=torch.bfloat16)
    k_cache = torch.randn(batch_size, num_heads, kv_len, head_dim, dtype=torch.bfloat16)
    v_cache = torch.randn(batch_size, num_heads, kv_len, head_dim, dtype=torch.bfloat16)
    return [q, k_cache, v_cache]


def get_init_inputs():
    return []


FAMILY = "decode"
DTYPE = "bfloat16"
POLICY = "strict"
TIMING = "graph"  # microseconds of work: launched from Python, the launch would be timed
SHAPES = [
    {"name": "small", "batch_size": 2, "kv_len": 1024},
    {"name": "odd", "batch_size": 3, "num_heads": 5, "kv_len": 1037, "head_dim": 72, "hidden": True},
    {"name": "short", "batch_size": 2, "num_heads": 3, "kv_len": 17, "head_dim": 64, "hidden": True},
]
