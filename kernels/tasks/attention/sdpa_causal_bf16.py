"""Causal scaled-dot-product attention, bf16: F.scaled_dot_product_attention(q, k, v, is_causal=True)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        # q: [batch, heads, q_len, head_dim]; k, v: [batch, heads, kv_len, head_dim]. With
        # q_len != kv_len the mask is PyTorch's: query i sees keys 0..i (top-left aligned).
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)


# Default: 16 x 32 heads x 1024 x 1024 x 128, causal: 137 GFLOP (2 b h s^2 d).
batch_size = 16
num_heads = 32
q_len = 1024
kv_len = 1024
head_dim = 128


def get_inputs():
    q = torch.randn(batch_size, num_heads, q_len, head_dim, dtype=torch.bfloat16)
    k = torch.randn(batch_size, num_heads, kv_len, head_dim, dtype=torch.bfloat16)
    v = torch.randn(batch_size, num_heads, kv_len, head_dim, dtype=torch.bfloat16)
    return [q, k, v]


def get_init_inputs():
    return []


def flops(inputs, outputs):
    """4 b h sq sk d, halved for the causal mask (about half the scores are computed)."""
    q, k = inputs[0], inputs[1]
    b_h = q.numel() // (q.shape[-2] * q.shape[-1])
    return 2 * b_h * q.shape[-2] * k.shape[-2] * q.shape[-1]


FAMILY = "attention"
DTYPE = "bfloat16"
POLICY = "strict"
# A bf16 attention output is itself up to ~0.019 x its RMS away from the fp64 truth (the output's
# rounding, and P rounded to bf16 before P @ V as flash kernels and PyTorch's own do; measured on
# a 2 x 16 x 512 x 512 x 64 case), so two correct kernels can differ by about twice that. The
# default bf16 elementwise bound (0.01 x RMS) rejected a correct kernel on 1 element of 33.5M
# (H200, 2026-12-02); the whole-tensor bound (rel_l2 0.01, 4x what correct kernels show) stays.
TOLERANCE = {"atol": 2.5e-2}
SHAPES = [
    {"name": "small", "batch_size": 2, "num_heads": 4, "q_len": 256, "kv_len": 256},
    {"name": "odd", "batch_size": 1, "num_heads": 2, "q_len": 79, "kv_len": 79, "hidden": True},
    {"name": "ragged", "batch_size": 1, "num_heads": 2, "q_len": 33, "kv_len": 70, "hidden": True},
]
