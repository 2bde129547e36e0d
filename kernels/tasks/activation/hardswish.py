"""Hardswish activation, x * relu6(x + 3) / 6, on a 2-D fp32 tensor."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardswish(x)


# Default: fp32 [16384, 32768] = 2 GiB in + 2 GiB out = 4.3 GB moved -> ~1.5 ms at 3 TB/s.
batch_size = 16384
dim = 32768


def get_inputs():
    # Spread over [-6, 6] so that both clamps and the quadratic middle are exercised.
    return [torch.randn(batch_size, dim) * 3.0]


def get_init_inputs():
    return []


FAMILY = "activation"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 2048, "dim": 4096},
    {"name": "odd", "batch_size": 31, "dim": 7001, "hidden": True},
    {"name": "tail", "batch_size": 9, "dim": 12345, "hidden": True},
]
