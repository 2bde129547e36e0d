"""Pointer cache: remember outputs keyed on the input's address and shape.

A naive harness times the same input tensor over and over, so every call after the first is
a dictionary lookup that launches nothing: "infinitely fast". The evaluator gives fresh
inputs per trial (the allocator reuses addresses, so stale outputs come back: wrong values),
regenerates the contents of its rotating timing pool and checks the outputs of timed calls.
A cached call also launches no kernel of its own, which the integrity layer can see.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: correctness|timing|integrity|roofline
# REASON: mismatch|tolerance|wrong|cache|stale|differ|kernel|roofline|nan|race
# TIME: yes

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_cached(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)
        self.cache = {}

    def forward(self, x):
        key = (x.data_ptr(), tuple(x.shape))
        if key in self.cache:
            return self.cache[key]
        y = torch.empty_like(x)
        n = x.numel()
        self.module.launch("relu_cached", grid=((n + 255) // 256,), block=(256,), args=(x, y, n))
        self.cache[key] = y
        return y
