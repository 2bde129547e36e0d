"""Control for the red-team task gemm_relu (hybrid): fp32 cuBLAS GEMM, then an own ReLU kernel.

The hybrid policy allows aten.mm; the ReLU is done in place on the GEMM's result (a tensor
this candidate owns), without touching any TF32 flag.
"""
# TASK: tests/adversarial/tasks/gemm_relu.py

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void control_relu_inplace_f32(float* __restrict__ y, long long n) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = fmaxf(y[i], 0.0f);
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, a, b):
        y = torch.mm(a, b)
        n = y.numel()
        grid = max(1, min((n + 255) // 256, 1 << 16))
        self.module.launch("control_relu_inplace_f32", grid=(grid,), block=(256,), args=(y, n))
        return y
