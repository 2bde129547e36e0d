"""GroupNorm (nn.GroupNorm with affine weight and bias) on an fp32 [N, C, H, W] tensor."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, num_groups: int, channels: int):
        super().__init__()
        self.norm = nn.GroupNorm(num_groups, channels, eps=1e-5, affine=True)
        with torch.no_grad():
            self.norm.weight.copy_(1.0 + 0.1 * torch.randn(channels))
            self.norm.bias.copy_(0.1 * torch.randn(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


# Default: fp32 [32, 256, 256, 256] = 2 GiB in + 2 GiB out = 4.3 GB moved -> ~1.5 ms at
# 3 TB/s (eager reads the input twice: ~2 ms).
batch_size = 32
channels = 256
num_groups = 32
height = 256
width = 256


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return [num_groups, channels]


FAMILY = "normalization"
DTYPE = "float32"
POLICY = "strict"
SHAPES = [
    {"name": "small", "batch_size": 8, "channels": 128, "num_groups": 32, "height": 64, "width": 64},
    {"name": "odd", "batch_size": 3, "channels": 45, "num_groups": 15, "height": 17, "width": 23,
     "hidden": True},
    {"name": "one_group", "batch_size": 2, "channels": 7, "num_groups": 1, "height": 31, "width": 9,
     "hidden": True},
]
