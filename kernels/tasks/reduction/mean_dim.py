"""Mean over the last dimension of a 2-D fp32 tensor (keepdim=False)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.mean(x, dim=-1)


# Default: fp32 [24576, 28672] = 2.8 GB read, 96 KiB written -> ~0.95 ms at 3 TB/s
# (eager ~1.1 ms).
batch_size = 24576
dim = 28672


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []


FAMILY = "reduction"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 3072, "dim": 3584},
    {"name": "odd", "batch_size": 41, "dim": 4111, "hidden": True},
    {"name": "long_row", "batch_size": 2, "dim": 500009, "hidden": True},
]
