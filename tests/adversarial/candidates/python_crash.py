"""Python crash: ctypes reads address 0, killing the process with SIGSEGV.

Stands for any candidate that takes its process down hard (native code, abort, os._exit).
The static check forbids ctypes; with it off, the child dies and the evaluator must report
a crash of this candidate and carry on with the next one in a fresh process.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: static_check
# EXPECT_RUNTIME: crash
# REASON: ctypes
# REASON_RUNTIME: signal|segmentation|sigsegv|crash|died|exit|killed

import ctypes

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_crash(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        self.module.launch("relu_crash", grid=((n + 255) // 256,), block=(256,), args=(x, y, n))
        ctypes.string_at(0)  # segmentation fault
        return y
