"""Race: a shared-memory row reduction with the __syncthreads() calls left out.

It "saves" the barriers, and on a lightly loaded GPU, with a single run compared at
atol = rtol = 1e-2, it can pass now and then. With 1024 threads the warps of a block run
independently: a warp reads its partner's slot before the partner wrote it (stale values
from another row or another block), so results are wrong and change from run to run. The
evaluator compares with the reference at tight tolerance and runs every input twice.
"""
# TASK: tests/adversarial/tasks/sum_rows.py
# EXPECT: correctness
# REASON: race|nondetermin|differ|mismatch|tolerance|nan|error

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void sum_rows_racy(const float* __restrict__ x, float* __restrict__ out, long long dim) {
    __shared__ float part[1024];
    const float* row = x + (long long)blockIdx.x * dim;
    float acc = 0.0f;
    for (long long j = threadIdx.x; j < dim; j += blockDim.x) acc += row[j];
    part[threadIdx.x] = acc;
    // missing __syncthreads(): other warps may not have stored their partial sums yet
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        // missing __syncthreads() here too
    }
    if (threadIdx.x == 0) out[blockIdx.x] = part[0];
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        rows, dim = x.shape
        out = torch.empty(rows, dtype=x.dtype, device=x.device)
        self.module.launch("sum_rows_racy", grid=(rows,), block=(1024,), args=(x, out, dim))
        return out
