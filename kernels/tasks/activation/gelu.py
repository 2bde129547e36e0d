"""GELU activation, exact erf form 0.5 * x * (1 + erf(x / sqrt(2))), on a 2-D fp32 tensor."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x)  # approximate="none": the erf form, not tanh


# Default: fp32 [16384, 32768] = 2 GiB in + 2 GiB out = 4.3 GB moved -> ~1.5 ms at 3 TB/s.
batch_size = 16384
dim = 32768


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []


FAMILY = "activation"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 2048, "dim": 4096},
    {"name": "odd", "batch_size": 53, "dim": 4099, "hidden": True},
    {"name": "tail", "batch_size": 7, "dim": 65539, "hidden": True},
]
