"""Inclusive cumulative product along the last dim of a 2-D fp32 tensor (KernelBench level 1 #90)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.cumprod(x, dim=1)


# Default: fp32 [16384, 32768] = 2.1 GB in + 2.1 GB out -> ~1.1 ms at 3.9 TB/s.
# randn factors: the products shrink towards 0 as in KernelBench (the head of each row is what is checked).
batch_size = 16384
dim = 32768


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []


FAMILY = "scan"
DTYPE = "float32"
POLICY = "strict"
INPUT_DISTRIBUTIONS = ["signed"]  # "wide" inputs overflow a product within a few elements
SHAPES = [
    {"name": "small", "batch_size": 2048, "dim": 4096},
    {"name": "odd", "batch_size": 37, "dim": 5003, "hidden": True},
    {"name": "long_row", "batch_size": 3, "dim": 150001, "hidden": True}
]
