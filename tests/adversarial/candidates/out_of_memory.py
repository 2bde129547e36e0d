"""Out of memory: a workspace sized from a wrong formula asks for 10^12 floats (4 TB).

Not a cheat but an isolation test: torch raises OutOfMemoryError in forward. The evaluator
must report it as this candidate's launch failure with the message, and the run goes on.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: launch
# REASON: memory|oom|alloc

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_ws(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        workspace = torch.empty(10**12, dtype=torch.float32, device=x.device)  # bug: should be a few KB
        n = x.numel()
        self.module.launch("relu_ws", grid=((n + 255) // 256,), block=(256,), args=(x, workspace, n))
        return workspace[:n].view(x.shape)
