"""Shape hard-coding: a row-sum kernel specialised for dim = 4096, the shapes it was shown.

DIM is a compile-time constant (fully unrolled, no bounds checks): correct and fast at the
default and the visible shapes (both have dim 4096), wrong anywhere else. The evaluator also
verifies hidden shapes (37 x 5003 here) that a proposer never sees.
"""
# TASK: tests/adversarial/tasks/sum_rows.py
# EXPECT: correctness
# REASON: mismatch|tolerance|wrong|error|odd|shape

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
#define DIM 4096          // "the" row length
#define THREADS 256

extern "C" __global__ void __launch_bounds__(THREADS) sum_rows_4096(const float* __restrict__ x, float* __restrict__ out) {
    __shared__ float warp_sums[THREADS / 32];
    const float4* row = reinterpret_cast<const float4*>(x + (long long)blockIdx.x * DIM);
    float acc = 0.0f;
    #pragma unroll
    for (int k = 0; k < DIM / 4 / THREADS; ++k) {
        float4 v = row[threadIdx.x + k * THREADS];
        acc += (v.x + v.y) + (v.z + v.w);
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
        float total = 0.0f;
        for (int w = 0; w < THREADS / 32; ++w) total += warp_sums[w];
        out[blockIdx.x] = total;
    }
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        rows = x.shape[0]
        out = torch.empty(rows, dtype=x.dtype, device=x.device)
        self.module.launch("sum_rows_4096", grid=(rows,), block=(256,), args=(x, out))
        return out
