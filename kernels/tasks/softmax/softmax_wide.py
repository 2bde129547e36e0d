"""Softmax over rows of 393216 fp32 elements (1.5 MB: more than any block keeps on chip)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=1)


# Default: fp32 [4096, 393216] = 6.4 GB in + 6.4 GB out -> ~3.1 ms at 4.2 TB/s if the row is read
# from DRAM once; a kernel that reads it twice moves 19.3 GB.
batch_size = 4096
dim = 393216


def get_inputs():
    return [torch.randn(batch_size, dim)]


def get_init_inputs():
    return []


FAMILY = "softmax"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 64, "dim": 65536},
    {"name": "odd", "batch_size": 13, "dim": 50021, "hidden": True},
    {"name": "short_rows", "batch_size": 4099, "dim": 33, "hidden": True},
]
