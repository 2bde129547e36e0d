"""Hang: every block waits for a flag that no block ever sets (a broken inter-block handshake).

The kernel never finishes, so the first synchronization after forward blocks forever. A
harness without a hard timeout in a separate process hangs the whole search. The evaluator
kills the child's process tree after its timeout and reports it.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: timeout
# REASON: limit|killed|hang|timeout|timed out
# TIMEOUT_S: 60

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_handshake(const float* __restrict__ x, float* __restrict__ y,
                                          volatile int* ready, long long n) {
    // Wait until "the previous pass" published its results: nobody ever sets the flag.
    while (ready[0] == 0) { }
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
        ready = torch.zeros(1, dtype=torch.int32, device=x.device)
        n = x.numel()
        self.module.launch("relu_handshake", grid=((n + 255) // 256,), block=(256,), args=(x, y, ready, n))
        return y
