"""3-d average pooling of a (B, C, D, H, W) fp32 tensor: a 3 x 3 x 3 window, stride 2, padding 1."""

# KernelBench level 1's AvgPool3d shape family; count_include_pad (the default) divides every
# window by 27. The floor is one read of the input and one write of the output: 16 x 32 x
# 64 x 128 x 128 fp32 in = 1.07 GB, out (32 x 64 x 64) = 134 MB, ~0.3 ms at 4 TB/s.

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, kernel_size: int, stride: int, padding: int):
        super().__init__()
        self.pool = nn.AvgPool3d(kernel_size=kernel_size, stride=stride, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


batch_size = 16
channels = 32
depth = 64
height = 128
width = 128
kernel_size = 3
stride = 2
padding = 1


def get_inputs():
    return [torch.randn(batch_size, channels, depth, height, width)]


def get_init_inputs():
    return [kernel_size, stride, padding]


FAMILY = "pooling"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 2, "channels": 4, "depth": 16, "height": 32, "width": 32},
    {"name": "odd", "batch_size": 3, "channels": 5, "depth": 9, "height": 17, "width": 23, "hidden": True},
]
