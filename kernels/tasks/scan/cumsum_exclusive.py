"""Exclusive cumulative sum, written as KernelBench level 1 #92 does: a zero column
concatenated in front, the last row dropped (``[:-1]`` slices dim 0, as there), then cumsum:
the output is [batch - 1, dim + 1], each row 0 followed by the inclusive sums."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        zeros = torch.zeros_like(x.select(1, 0).unsqueeze(1))
        return torch.cumsum(torch.cat((zeros, x), dim=1)[:-1], dim=1)


# Default: fp32 [32768, 32768] = 4.3 GB in + 4.3 GB out -> ~2.2 ms at 3.9 TB/s (eager writes the
# concatenation first).
batch_size = 32768
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
