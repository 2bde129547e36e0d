"""Causal attention written out, fp32: softmax(q k^T / sqrt(d), masked) v."""

import math

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        # q: [batch, heads, q_len, head_dim]; k, v: [batch, heads, kv_len, head_dim]
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
        return torch.softmax(scores, dim=-1) @ v


# Default: 8 x 16 heads x 1024 x 1024 x 64, fp32, causal: 17 GFLOP (2 b h s^2 d); eager writes and reads
# the 0.5 GB score matrix several times.
batch_size = 8
num_heads = 16
q_len = 1024
kv_len = 1024
head_dim = 64


def get_inputs():
    q = torch.randn(batch_size, num_heads, q_len, head_dim)
    k = torch.randn(batch_size, num_heads, kv_len, head_dim)
    v = torch.randn(batch_size, num_heads, kv_len, head_dim)
    return [q, k, v]


def get_init_inputs():
    return []


def flops(inputs, outputs):
    """4 b h sq sk d, halved for the causal mask."""
    q, k = inputs[0], inputs[1]
    b_h = q.numel() // (q.shape[-2] * q.shape[-1])
    return 2 * b_h * q.shape[-2] * k.shape[-2] * q.shape[-1]


FAMILY = "attention"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 2, "num_heads": 2, "q_len": 128, "kv_len": 128},
    {"name": "odd", "batch_size": 1, "num_heads": 3, "q_len": 71, "kv_len": 71, "hidden": True},
    {"name": "ragged", "batch_size": 2, "num_heads": 1, "q_len": 17, "kv_len": 45, "head_dim": 40, "hidden": True},
]
