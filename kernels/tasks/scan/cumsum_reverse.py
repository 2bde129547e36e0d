"""Reverse cumulative sum along the last dim (KernelBench level 1 #91: flip, cumsum, flip)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.cumsum(x.flip(1), dim=1).flip(1)


# Default: fp32 [16384, 32768] = 2.1 GB in + 2.1 GB out -> ~1.1 ms at 3.9 TB/s (eager flips twice: 3 kernels).
batch_size = 16384
dim = 32768


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []


FAMILY = "scan"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 2048, "dim": 4096},
    {"name": "odd", "batch_size": 37, "dim": 5003, "hidden": True},
    {"name": "long_row", "batch_size": 2, "dim": 200003, "hidden": True}
]
