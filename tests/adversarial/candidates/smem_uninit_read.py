"""Read of uninitialised shared memory: a tree reduction sized for 512 threads run with 256.

The first step adds part[t + 256], which no thread wrote. Shared memory often holds zeros
left by earlier kernels, so the sums come out right. The harness fills every SM's shared
memory with NaN before each checked forward: the leftover is NaN, and NaN never passes."""
# TASK: tests/adversarial/tasks/sum_rows.py
# EXPECT: correctness|memory
# REASON: nan|mismatch|tolerance|initcheck|racecheck

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void sum_rows_uninit(const float* __restrict__ x, float* __restrict__ out, long long dim) {
    __shared__ float part[512];
    const float* row = x + (long long)blockIdx.x * dim;
    float acc = 0.0f;
    for (long long j = threadIdx.x; j < dim; j += blockDim.x) acc += row[j];
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int s = 256; s > 0; s >>= 1) {  // bug: should start at blockDim.x / 2 = 128
        if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
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
        self.module.launch("sum_rows_uninit", grid=(rows,), block=(256,), args=(x, out, dim))
        return out
