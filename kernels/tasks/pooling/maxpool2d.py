"""2-d max pooling of a (B, C, H, W) fp32 tensor: a 3 x 3 window, stride 2, padding 1, dilation 2."""

# KernelBench level 1's MaxPool2d shape family. Each output reads a window of the input through
# L2 (windows of neighbours overlap); the floor is one read of the input and one write of the
# output: 16 x 32 x 512 x 512 fp32 in = 537 MB, out (255 x 255) = 133 MB, ~0.17 ms at 4 TB/s.

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, kernel_size: int, stride: int, padding: int, dilation: int):
        super().__init__()
        self.pool = nn.MaxPool2d(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


batch_size = 16
channels = 32
height = 512
width = 512
kernel_size = 3
stride = 2
padding = 1
dilation = 2


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return [kernel_size, stride, padding, dilation]


FAMILY = "pooling"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 2, "channels": 8, "height": 64, "width": 64},
    {"name": "odd", "batch_size": 3, "channels": 5, "height": 37, "width": 41, "hidden": True},
    {"name": "tall", "batch_size": 1, "channels": 3, "height": 301, "width": 7, "hidden": True},
]
