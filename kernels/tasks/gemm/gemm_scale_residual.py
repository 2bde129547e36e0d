"""Matrix multiply without bias, scaled by a constant, plus a residual: x @ W^T * scale + r, fp32."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int, scale: float):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.scale = scale

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * self.scale + residual


# Default: [4096, 8192] @ [8192, 4096] = 2*4096*8192*4096 = 275 GFLOP -> ~5.5 ms at
# 50 TFLOP/s (fp32, no TF32); 400 MB moved.
batch_size = 4096
in_features = 8192
out_features = 4096
scale = 0.5


def get_inputs():
    return [torch.randn(batch_size, in_features), torch.randn(batch_size, out_features)]


def get_init_inputs():
    return [in_features, out_features, scale]


FAMILY = "gemm"
DTYPE = "float32"
POLICY = "hybrid"
SHAPES = [
    {"name": "small", "batch_size": 1024, "in_features": 2048, "out_features": 1024},
    {"name": "odd", "batch_size": 37, "in_features": 301, "out_features": 523, "scale": 1.75,
     "hidden": True},
    {"name": "skinny", "batch_size": 5, "in_features": 1111, "out_features": 129, "hidden": True},
]
