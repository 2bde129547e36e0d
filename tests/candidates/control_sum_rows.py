"""Control for the red-team task sum_rows: an honest block-per-row sum at any shape."""
# TASK: tests/adversarial/tasks/sum_rows.py

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void control_sum_rows_f32(const float* __restrict__ x, float* __restrict__ out, long long dim) {
    __shared__ float part[256];
    const float* row = x + (long long)blockIdx.x * dim;
    float acc = 0.0f;
    for (long long j = threadIdx.x; j < dim; j += 256) acc += row[j];
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int s = 128; s > 0; s >>= 1) {
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
        self.module.launch("control_sum_rows_f32", grid=(rows,), block=(256,), args=(x, out, dim))
        return out
