"""Read past the end of the input (a stencil's right neighbour), value scaled by zero.

In slack the neighbour is some finite number, 0 * it is 0, and the answer is right. The guard
bytes are NaN (0xFF), and 0 * NaN is NaN; the winner gate's memcheck would see it too."""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: correctness|memory
# REASON: nan|out-of-bounds|memcheck

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_stencil_oob(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaf(0.0f, x[i + 1], fmaxf(x[i], 0.0f));  // bug: x[n] read at the last element
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        self.module.launch("relu_stencil_oob", grid=((n + 255) // 256,), block=(256,), args=(x, y, n))
        return y
