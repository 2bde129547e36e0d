"""Inclusive cumsum over dim 0 (a strided dim) of a 2-D fp32 tensor."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.cumsum(x, dim=0)


# Default: fp32 [16384, 32768] = 2.1 GB in + 2.1 GB out -> ~1.1 ms at 3.9 TB/s (eager: one thread
# per column walking 16384 rows, latency-bound).
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
    {"name": "small", "batch_size": 4096, "dim": 2048},
    {"name": "odd", "batch_size": 5003, "dim": 37, "hidden": True},
    {"name": "tall", "batch_size": 100003, "dim": 3, "hidden": True}
]
