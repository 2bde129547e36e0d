"""3x3 conv without bias, then per-channel scale and shift (a folded batch-norm), then ReLU, fp32."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.scale = nn.Parameter(1.0 + 0.1 * torch.randn(out_channels))
        self.shift = nn.Parameter(0.1 * torch.randn(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        y = y * self.scale.view(1, -1, 1, 1) + self.shift.view(1, -1, 1, 1)
        return torch.relu(y)


# Default: N=32, 64 -> 256 channels, 112x112, 3x3: 2*32*256*112*112*64*9 = 118 GFLOP
# -> ~2.4 ms at 50 TFLOP/s (fp32, no TF32), plus ~0.8 ms of eager elementwise passes over the
# 411 MB output.
batch_size = 32
in_channels = 64
out_channels = 256
height = 112
width = 112
kernel_size = 3


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size]


FAMILY = "conv"
DTYPE = "float32"
POLICY = "hybrid"
SHAPES = [
    {"name": "small", "batch_size": 8, "in_channels": 32, "out_channels": 64, "height": 56, "width": 56},
    {"name": "odd", "batch_size": 3, "in_channels": 7, "out_channels": 11, "height": 29, "width": 37,
     "hidden": True},
    {"name": "thin", "batch_size": 2, "in_channels": 3, "out_channels": 5, "height": 61, "width": 7,
     "hidden": True},
]
