"""Linear layer (x @ W^T + b) followed by exact (erf) GELU, fp32."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.linear(x))


# Default: [8192, 2048] @ [2048, 8192] = 2*8192*2048*8192 = 275 GFLOP -> ~5.5 ms at
# 50 TFLOP/s (fp32, no TF32); 340 MB moved.
batch_size = 8192
in_features = 2048
out_features = 8192


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features]


FAMILY = "gemm"
DTYPE = "float32"
POLICY = "hybrid"
SHAPES = [
    {"name": "small", "batch_size": 2048, "in_features": 512, "out_features": 2048},
    {"name": "odd", "batch_size": 53, "in_features": 211, "out_features": 397, "hidden": True},
    {"name": "skinny", "batch_size": 1, "in_features": 777, "out_features": 1001, "hidden": True},
]
