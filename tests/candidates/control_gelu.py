"""Control for the red-team task gelu: an honest fp32 erf GELU (proves fp32 tolerances admit a correct kernel)."""
# TASK: tests/adversarial/tasks/gelu.py

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
__device__ __forceinline__ float op(float v) { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); }

extern "C" __global__ void control_gelu_f32(const float* __restrict__ x, float* __restrict__ y, long long n) {
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
        self.module.launch("control_gelu_f32", grid=(grid,), block=(256,), args=(x, y, n))
        return y
