"""LayerNorm over the last three dims (nn.LayerNorm([C, H, W]), affine) of a few long fp32 rows."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, channels: int, height: int, width: int):
        super().__init__()
        self.norm = nn.LayerNorm([channels, height, width], eps=1e-5, elementwise_affine=True)
        # Non-trivial affine parameters, so that a kernel that ignores them fails.
        with torch.no_grad():
            self.norm.weight.copy_(1.0 + 0.1 * torch.randn(channels, height, width))
            self.norm.bias.copy_(0.1 * torch.randn(channels, height, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


# Default: fp32 [16, 64, 256, 256] = 256 MiB in + 256 MiB out (+ 32 MiB of weights) = 0.57 GB
# moved -> ~0.19 ms at 3 TB/s. A block per row would use 16 blocks of a 132-SM GPU.
batch_size = 16
channels = 64
height = 256
width = 256


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return [channels, height, width]


FAMILY = "normalization"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 4, "channels": 32, "height": 64, "width": 64},
    {"name": "odd", "batch_size": 3, "channels": 7, "height": 61, "width": 53, "hidden": True},
    {"name": "one_row", "batch_size": 1, "channels": 5, "height": 127, "width": 255, "hidden": True},
]
