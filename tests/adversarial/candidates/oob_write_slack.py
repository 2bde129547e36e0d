"""Write past the end into the allocator's slack: one float after the output (an off-by-one tail).

PyTorch's caching allocator rounds blocks up, so the stray write corrupts nothing the harness
compares, and the output is right. Guard bytes after every buffer the candidate makes see it."""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: memory
# REASON: out-of-bounds|after its end|guard

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_tail_oob(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
    if (i == n - 1) y[n] = 0.0f;  // bug: "clear the padding" one past the end
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        self.module.launch("relu_tail_oob", grid=((n + 255) // 256,), block=(256,), args=(x, y, n))
        return y
