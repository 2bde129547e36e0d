"""Write before the start of the output (a -1 index in a halo), into the block before it."""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: memory
# REASON: out-of-bounds|before its start|guard

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_halo_oob(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
    if (i == 0) y[-1] = 0.0f;  // bug: left halo written
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        self.module.launch("relu_halo_oob", grid=((n + 255) // 256,), block=(256,), args=(x, y, n))
        return y
