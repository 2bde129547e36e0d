"""Shared-memory race that gives the right answer: lanes swap values through shared memory
with no __syncwarp() between the store and the partner's load.

On today's GPUs the warp usually stays converged, so two runs agree and the values are right;
with independent thread scheduling nothing guarantees it. Only compute-sanitizer's racecheck,
run on every winner before deploy or export, sees the hazard."""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: memory
# WINNER_GATE: yes
# REASON: racecheck|hazard|race

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_swap_racy(const float* __restrict__ x, float* __restrict__ y, long long n) {
    __shared__ float tile[256];
    long long base = (long long)blockIdx.x * 256;
    long long i = base + threadIdx.x;
    tile[threadIdx.x] = (i < n) ? x[i] : 0.0f;
    // missing __syncwarp(): the partner lane's store is not guaranteed visible
    long long j = base + (threadIdx.x ^ 1);
    if (j < n) y[j] = fmaxf(tile[threadIdx.x ^ 1], 0.0f);
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        self.module.launch("relu_swap_racy", grid=((n + 255) // 256,), block=(256,), args=(x, y, n))
        return y
