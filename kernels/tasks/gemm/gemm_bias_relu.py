"""Linear layer (x @ W^T + b) followed by ReLU, fp32."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(x))


# Default: [4096, 4096] @ [4096, 8192] = 2*4096*4096*8192 = 275 GFLOP -> ~5.5 ms at
# 50 TFLOP/s (fp32, no TF32); 270 MB moved.
batch_size = 4096
in_features = 4096
out_features = 8192


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features]


FAMILY = "gemm"
DTYPE = "float32"
POLICY = "hybrid"
SHAPES = [
    {"name": "small", "batch_size": 1024, "in_features": 1024, "out_features": 2048},
    {"name": "odd", "batch_size": 37, "in_features": 301, "out_features": 523, "hidden": True},
    {"name": "skinny", "batch_size": 3, "in_features": 1000, "out_features": 257, "hidden": True},
]
