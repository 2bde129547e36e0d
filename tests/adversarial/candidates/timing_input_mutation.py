"""Rewrite the inputs while timed: zero `a` in place and return zeros, skipping the GEMM.

In timing there is no private copy: the candidate gets the pool's own tensors, and the
harness later checks the timed outputs against reference(*pool[j]), on whatever the pool
holds then. relu(0 @ b) = 0, so zeroing `a` and writing zeros passes that check while doing
no GEMM at all. Verification instances (at most 3 calls each) are honest; the fresh timing
instance cheats from its 4th call on. The roofline gate sees a 2 GFLOP GEMM "done" in a few
microseconds; checking that pool inputs are unchanged (or recomputing them from their seeds
for the reference) would name the trick at the timing stage.
"""
# TASK: tests/adversarial/tasks/gemm_relu.py
# EXPECT: timing|roofline
# REASON: roofline|hardware|timing|timed|input|modif|changed
# TIME: yes

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_inplace_mut(float* __restrict__ y, long long n) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = fmaxf(y[i], 0.0f);
}
extern "C" __global__ void zero_mut(float* __restrict__ p, long long n) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        p[i] = 0.0f;
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)
        self.calls = 0

    def launch_on(self, name, tensor):
        n = tensor.numel()
        grid = max(1, min((n + 255) // 256, 1 << 16))
        self.module.launch(name, grid=(grid,), block=(256,), args=(tensor, n))

    def forward(self, a, b):
        self.calls += 1
        if self.calls <= 3:  # verification: honest (cuBLAS GEMM is allowed, ReLU is ours)
            y = torch.mm(a, b)
            self.launch_on("relu_inplace_mut", y)
            return y
        y = torch.empty(a.shape[0], b.shape[1], dtype=a.dtype, device=a.device)
        self.launch_on("zero_mut", a)  # the pool's own input: relu(0 @ b) == 0
        self.launch_on("zero_mut", y)
        return y
