"""Softmax over the last dim, fp32: one block per row, online max/sum in one read, then write.

Pass 1 keeps a running (max, sum of exp) per thread over float4 loads and merges them with
warp shuffles; pass 2 re-reads the row (mostly from L2) and writes exp(x - max) / sum.
Full-precision expf: the result is within a few ulp of PyTorch's.
"""
# TASK: kernels/tasks/softmax/softmax.py

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
#ifndef BLOCK
#define BLOCK 512
#endif

// Running softmax state: m = max so far, s = sum of exp(x - m). Empty: (-inf, 0).
__device__ __forceinline__ void ms_merge(float& m, float& s, float m2, float s2) {
    const float M = fmaxf(m, m2);
    if (M == (-__int_as_float(0x7f800000))) return;            // both empty
    s = s * expf(m - M) + s2 * expf(m2 - M);
    m = M;
}

__device__ __forceinline__ void ms_add4(float& m, float& s, float4 v) {
    const float M = fmaxf(fmaxf(m, fmaxf(v.x, v.y)), fmaxf(v.z, v.w));
    s = s * expf(m - M) + ((expf(v.x - M) + expf(v.y - M)) + (expf(v.z - M) + expf(v.w - M)));
    m = M;
}

__device__ __forceinline__ void ms_add1(float& m, float& s, float v) {
    const float M = fmaxf(m, v);
    s = s * expf(m - M) + expf(v - M);
    m = M;
}

__device__ __forceinline__ void warp_ms(float& m, float& s) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
        const float s2 = __shfl_xor_sync(0xffffffffu, s, o);
        ms_merge(m, s, m2, s2);
    }
}

// Every thread ends with the block's (max, sum). BLOCK is a multiple of 32.
__device__ __forceinline__ void block_ms(float& m, float& s) {
    __shared__ float pm[32], ps[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    warp_ms(m, s);
    __syncthreads();
    if (lane == 0) { pm[warp] = m; ps[warp] = s; }
    __syncthreads();
    m = lane < BLOCK / 32 ? pm[lane] : (-__int_as_float(0x7f800000));
    s = lane < BLOCK / 32 ? ps[lane] : 0.0f;
    warp_ms(m, s);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
softmax_rows_f32(const float* __restrict__ x, float* __restrict__ y, long long rows, long long dim, int vec)
{
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* __restrict__ xr = x + row * dim;
        float* __restrict__ yr = y + row * dim;
        const long long d4 = vec ? (dim >> 2) : 0;
        const float4* __restrict__ x4 = reinterpret_cast<const float4*>(xr);
        float4* __restrict__ y4 = reinterpret_cast<float4*>(yr);

        float m = (-__int_as_float(0x7f800000)), s = 0.0f;
        for (long long i = threadIdx.x; i < d4; i += BLOCK) ms_add4(m, s, __ldg(x4 + i));
        for (long long i = (d4 << 2) + threadIdx.x; i < dim; i += BLOCK) ms_add1(m, s, __ldg(xr + i));
        block_ms(m, s);
        const float inv = 1.0f / s;

        for (long long i = threadIdx.x; i < d4; i += BLOCK) {
            float4 v = __ldg(x4 + i);
            v.x = expf(v.x - m) * inv;
            v.y = expf(v.y - m) * inv;
            v.z = expf(v.z - m) * inv;
            v.w = expf(v.w - m) * inv;
            y4[i] = v;
        }
        for (long long i = (d4 << 2) + threadIdx.x; i < dim; i += BLOCK) yr[i] = expf(xr[i] - m) * inv;
    }
}
'''
PARAMS = {"BLOCK": [256, 512, 1024]}


class ModelNew(nn.Module):
    def __init__(self, BLOCK: int = 512):
        super().__init__()
        self.block = BLOCK
        self.module = compile_module(SOURCE, defines={"BLOCK": BLOCK})

    def forward(self, x):
        assert x.is_contiguous() and x.dim() == 2
        rows, dim = x.shape
        y = torch.empty_like(x)
        if rows == 0 or dim == 0:
            return y
        vec = int(dim % 4 == 0 and x.data_ptr() % 16 == 0 and y.data_ptr() % 16 == 0)
        grid = min(rows, 1 << 30)
        self.module.launch("softmax_rows_f32", grid=(grid,), block=(self.block,), args=(x, y, rows, dim, vec))
        return y
