"""Softmax over the last dimension of a 2-D bf16 tensor, computed in fp32 and cast back."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # As Hugging Face attention does: softmax(..., dtype=torch.float32).to(input dtype).
        return torch.softmax(x, dim=-1, dtype=torch.float32).to(x.dtype)


# Default: bf16 [16384, 65536] = 2 GiB in + 2 GiB out = 4.3 GB moved -> ~1.5 ms at 3 TB/s
# (eager writes an fp32 intermediate and re-reads it: ~10 GB, ~3.5 ms).
batch_size = 16384
dim = 65536


def get_inputs():
    return [torch.randn(batch_size, dim, dtype=torch.bfloat16)]


def get_init_inputs():
    return []


FAMILY = "softmax"
DTYPE = "bfloat16"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 2048, "dim": 8192},
    {"name": "odd", "batch_size": 37, "dim": 5003, "hidden": True},
    {"name": "long_row", "batch_size": 3, "dim": 128257, "hidden": True},
]
