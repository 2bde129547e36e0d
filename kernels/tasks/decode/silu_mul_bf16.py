"""SwiGLU gate of an LLM MLP: silu(gate) * up on two bf16 [tokens, intermediate] tensors."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        # As in Hugging Face LlamaMLP: act_fn(gate_proj(x)) * up_proj(x), in the model dtype.
        return F.silu(gate) * up


# Default: bf16 2 x [32768, 14336] in (1.88 GB) + 1 out (0.94 GB) = 2.8 GB moved
# -> ~1 ms at 3 TB/s (eager: two kernels, ~4.7 GB, ~1.8 ms).
tokens = 32768
intermediate = 14336


def get_inputs():
    gate = torch.randn(tokens, intermediate, dtype=torch.bfloat16)
    up = torch.randn(tokens, intermediate, dtype=torch.bfloat16)
    return [gate, up]


def get_init_inputs():
    return []


FAMILY = "decode"
DTYPE = "bfloat16"
POLICY = "strict"
SHAPES = [
    {"name": "small", "tokens": 512, "intermediate": 14336},
    {"name": "odd", "tokens": 37, "intermediate": 5003, "hidden": True},
    {"name": "single_token", "tokens": 1, "intermediate": 11007, "hidden": True},
]
