"""Rotary position embedding (Llama rotate_half convention) applied to bf16 q and k."""

import torch
import torch.nn as nn


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        # q: [tokens, heads, head_dim], k: [tokens, kv_heads, head_dim],
        # cos / sin: [tokens, head_dim]. As Hugging Face apply_rotary_pos_emb, in bf16.
        cos = cos.unsqueeze(1)
        sin = sin.unsqueeze(1)
        q_embed = (q * cos) + (rotate_half(q) * sin)
        k_embed = (k * cos) + (rotate_half(k) * sin)
        return q_embed, k_embed


# Default: 131072 tokens, 32 q heads, 8 kv heads, head_dim 128, bf16: q 1.07 GB + k 0.27 GB
# + cos/sin 0.07 GB read, 1.34 GB written = 2.75 GB -> ~0.9 ms at 3 TB/s
# (eager: ~10 passes through slices, cat, mul and add, ~5 ms).
tokens = 131072
num_heads = 32
num_kv_heads = 8
head_dim = 128
rope_theta = 500000.0


def get_inputs():
    q = torch.randn(tokens, num_heads, head_dim, dtype=torch.bfloat16)
    k = torch.randn(tokens, num_kv_heads, head_dim, dtype=torch.bfloat16)
    # The tables a Llama rotary embedding builds: fp32 angles, cast to the model dtype.
    positions = torch.arange(tokens, dtype=torch.float32)
    inv_freq = 1.0 / (rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    freqs = positions[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return [q, k, emb.cos().to(torch.bfloat16), emb.sin().to(torch.bfloat16)]


def get_init_inputs():
    return []


FAMILY = "decode"
DTYPE = "bfloat16"
POLICY = "strict"
SHAPES = [
    {"name": "small", "tokens": 4096},
    {"name": "odd", "tokens": 37, "num_heads": 7, "num_kv_heads": 1, "head_dim": 72, "hidden": True},
    {"name": "single_token", "tokens": 1, "num_heads": 5, "num_kv_heads": 5, "head_dim": 18,
     "hidden": True},
]
