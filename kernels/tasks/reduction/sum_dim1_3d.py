"""Sum over the middle dimension of a 3-D fp32 tensor (keepdim=False): a column reduction."""

# Element j of column (b, k) is at b * dim1 * dim2 + j * dim2 + k. KernelBench's (128, 4096, 4095)
# is 8.6 GB of input, over this suite's 3 GB cap: the default halves the batch and the last dim.

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sum(x, dim=1)


# Default: fp32 [64, 4096, 2047] = 2.1 GB read, 0.5 MB written -> ~0.55 ms at 4 TB/s.
batch_size = 64
dim1 = 4096
dim2 = 2047


def get_inputs():
    return [torch.randn(batch_size, dim1, dim2)]


def get_init_inputs():
    return []


FAMILY = "reduction"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 16, "dim1": 1024, "dim2": 1023},
    {"name": "odd", "batch_size": 7, "dim1": 333, "dim2": 129, "hidden": True},
    {"name": "long_reduced", "batch_size": 2, "dim1": 20011, "dim2": 13, "hidden": True},
]
