"""Softplus, log(1 + exp(x)) (beta=1, linear above threshold 20), on a 2-D fp32 tensor."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(x)


# Default: fp32 [4096, 131072] = 2 GiB in + 2 GiB out = 4.3 GB moved -> ~1.5 ms at 3 TB/s.
batch_size = 4096
dim = 131072


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []


FAMILY = "activation"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 512, "dim": 16384},
    {"name": "odd", "batch_size": 43, "dim": 4093, "hidden": True},
    {"name": "tail", "batch_size": 2, "dim": 300001, "hidden": True},
]
