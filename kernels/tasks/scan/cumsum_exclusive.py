"""Exclusive cumulative sum as KernelBench level 1 #92 writes it (zero column in front, then cumsum)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        zeros = torch.zeros_like(x.select(1, 0).unsqueeze(1))
        return torch.cumsum(torch.cat((zeros, x), dim=1)[:-1], dim=1)


# As in KernelBench, ``[:-1]`` slices dim 0: the output is [batch - 1, dim + 1], each row 0
# followed by the inclusive sums.
# Default: fp32 [16384, 32768] = 2.1 GB in + 2.1 GB out -> ~1.1 ms at 3.9 TB/s (eager writes the
# concatenation first).
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
    {"name": "long_row", "batch_size": 3, "dim": 100003, "hidden": True}
]
