"""Sum over the last dimension of a 3-D fp32 tensor (keepdim=False): KernelBench's
(128, 4096, 4095) reduction over dim 2 (odd row length: no 16-byte vector path)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sum(x, dim=2)


# Default: fp32 [128, 4096, 4095] = 8.6 GB read, 2.1 MB written -> ~2.2 ms at 4 TB/s.
batch_size = 128
dim1 = 4096
dim2 = 4095


def get_inputs():
    return [torch.randn(batch_size, dim1, dim2)]


def get_init_inputs():
    return []


FAMILY = "reduction"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 16, "dim1": 1024, "dim2": 1023},
    {"name": "odd", "batch_size": 7, "dim1": 129, "dim2": 333, "hidden": True},
    {"name": "long_row", "batch_size": 1, "dim1": 3, "dim2": 150001, "hidden": True},
]
