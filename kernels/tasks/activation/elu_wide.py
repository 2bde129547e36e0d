"""ELU with alpha 1.0 on a KernelBench-wide fp32 tensor [4096, 393216]."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(x, alpha=self.alpha)


# Default: fp32 [4096, 393216] = 6.4 GB in + 6.4 GB out -> ~3.1 ms at 4.2 TB/s (an H200's copy rate).
batch_size = 4096
dim = 393216


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return [1.0]


FAMILY = "activation"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 256, "dim": 65536},
    {"name": "odd", "batch_size": 37, "dim": 10007, "hidden": True},
    {"name": "one_row", "batch_size": 1, "dim": 1000003, "hidden": True},
]
