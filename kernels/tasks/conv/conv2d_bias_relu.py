"""2-D convolution (3x3, stride 1, padding 1, with bias) followed by ReLU, fp32 NCHW."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


# Default: N=32, 128 -> 128 channels, 128x128, 3x3: 2*32*128*128*128*128*9 = 155 GFLOP
# -> ~3 ms at 50 TFLOP/s (fp32, no TF32; cuDNN fp32 is often nearer 5 ms); 540 MB moved.
batch_size = 32
in_channels = 128
out_channels = 128
height = 128
width = 128
kernel_size = 3


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size]


FAMILY = "conv"
DTYPE = "float32"
POLICY = "hybrid"
SHAPES = [
    {"name": "small", "batch_size": 8, "in_channels": 64, "out_channels": 64, "height": 64, "width": 64},
    {"name": "odd", "batch_size": 3, "in_channels": 5, "out_channels": 7, "height": 37, "width": 29,
     "hidden": True},
    {"name": "thin", "batch_size": 1, "in_channels": 3, "out_channels": 17, "height": 13, "width": 51,
     "hidden": True},
]
