"""A ReLU whose parameter HANG=1 makes the kernel spin forever: one bad setting in a batch."""

import torch
import torch.nn as nn

from autotuner.runtime import compile_module

SOURCE = r"""
extern "C" __global__ void relu_maybe_hang(const float* x, float* y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (HANG) { while (true) { __nanosleep(1000); } }
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
}
"""
PARAMS = {"HANG": [0, 1]}


class ModelNew(nn.Module):
    def __init__(self, HANG: int = 0):
        super().__init__()
        self.module = compile_module(SOURCE, defines={"HANG": HANG})

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        self.module.launch("relu_maybe_hang", ((n + 255) // 256,), (256,), (x, y, n))
        return y
