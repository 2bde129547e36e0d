"""Control for the red-team task tiny_scale: an honest x * 1e-6 (proves the tolerances are not too tight for tiny outputs)."""
# TASK: tests/adversarial/tasks/tiny_scale.py

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
__device__ __forceinline__ float op(float v) { return v * 1e-6f; }

extern "C" __global__ void control_scale_f32(const float* __restrict__ x, float* __restrict__ y, long long n) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = op(x[i]);
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        grid = max(1, min((n + 255) // 256, 1 << 16))
        self.module.launch("control_scale_f32", grid=(grid,), block=(256,), args=(x, y, n))
        return y
