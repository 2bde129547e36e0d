"""Row sum, fp32: one block per row, float4 loads, fp32 accumulation, warp-shuffle tree.

Deterministic (no atomics): the same input gives the same bits on every run.
"""
# TASK: kernels/tasks/reduction/sum_dim.py

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
#ifndef BLOCK
#define BLOCK 256
#endif

__device__ __forceinline__ float warp_sum(float v) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Every thread gets the block's sum. BLOCK is a multiple of 32.
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float warp_part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    __syncthreads();                       // warp_part may still be read from the last row
    if (lane == 0) warp_part[warp] = v;
    __syncthreads();
    v = lane < BLOCK / 32 ? warp_part[lane] : 0.0f;
    return warp_sum(v);                    // every warp reduces the partials the same way
}

extern "C" __global__ void __launch_bounds__(BLOCK)
sum_rows_f32(const float* __restrict__ x, float* __restrict__ out, long long rows, long long dim, int vec)
{
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* __restrict__ xr = x + row * dim;
        float a0 = 0.0f, a1 = 0.0f;        // two chains: more loads in flight
        long long done = 0;
        if (vec) {                         // dim % 4 == 0 and x 16-byte aligned
            const float4* __restrict__ x4 = reinterpret_cast<const float4*>(xr);
            const long long d4 = dim >> 2;
            long long i = threadIdx.x;
            for (; i + BLOCK < d4; i += 2 * BLOCK) {
                const float4 p = __ldg(x4 + i), q = __ldg(x4 + i + BLOCK);
                a0 += (p.x + p.y) + (p.z + p.w);
                a1 += (q.x + q.y) + (q.z + q.w);
            }
            if (i < d4) {
                const float4 p = __ldg(x4 + i);
                a0 += (p.x + p.y) + (p.z + p.w);
            }
            done = d4 << 2;
        }
        for (long long i = done + threadIdx.x; i < dim; i += BLOCK) a0 += __ldg(xr + i);
        const float s = block_sum(a0 + a1);
        if (threadIdx.x == 0) out[row] = s;
    }
}
'''
PARAMS = {"BLOCK": [128, 256, 512, 1024]}


class ModelNew(nn.Module):
    def __init__(self, BLOCK: int = 256):
        super().__init__()
        self.block = BLOCK
        self.module = compile_module(SOURCE, defines={"BLOCK": BLOCK})

    def forward(self, x):
        assert x.is_contiguous() and x.dim() == 2
        rows, dim = x.shape
        out = torch.empty(rows, dtype=x.dtype, device=x.device)
        if rows == 0:
            return out
        vec = int(dim % 4 == 0 and x.data_ptr() % 16 == 0)
        grid = min(rows, 1 << 30)
        self.module.launch("sum_rows_f32", grid=(grid,), block=(self.block,), args=(x, out, rows, dim, vec))
        return out
