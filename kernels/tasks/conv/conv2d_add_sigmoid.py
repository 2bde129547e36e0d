"""3x3 conv with bias, plus an elementwise addend of the output's shape, then sigmoid, fp32."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=True)

    def forward(self, x: torch.Tensor, addend: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x) + addend)


# Default: N=16, 96 -> 192 channels, 128x128, 3x3: 2*16*192*128*128*96*9 = 87 GFLOP
# -> ~1.7 ms at 50 TFLOP/s (fp32, no TF32), plus ~0.6 ms of eager add and sigmoid passes.
batch_size = 16
in_channels = 96
out_channels = 192
height = 128
width = 128
kernel_size = 3


def get_inputs():
    x = torch.randn(batch_size, in_channels, height, width)
    addend = torch.randn(batch_size, out_channels, height, width)
    return [x, addend]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size]


FAMILY = "conv"
DTYPE = "float32"
POLICY = "hybrid"
SHAPES = [
    {"name": "small", "batch_size": 4, "in_channels": 48, "out_channels": 96, "height": 64, "width": 64},
    {"name": "odd", "batch_size": 3, "in_channels": 5, "out_channels": 7, "height": 37, "width": 29,
     "hidden": True},
    {"name": "thin", "batch_size": 1, "in_channels": 9, "out_channels": 3, "height": 11, "width": 45,
     "hidden": True},
]
