"""RMSNorm, fp32: x * rsqrt(mean(x^2) + eps) * weight, one block per row (a warp per row
for rows of at most 1024), float4 loads, fp32 sums with warp shuffles.

Same operation order as the reference ((x * r) * w) so the result is within an ulp or two.
"""
# TASK: kernels/tasks/normalization/rmsnorm.py

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
#ifndef BLOCK
#define BLOCK 256
#endif
#define WARPS (BLOCK / 32)

__device__ __forceinline__ float warp_sum(float v) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float block_sum(float v) {
    __shared__ float warp_part[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) warp_part[warp] = v;
    __syncthreads();
    v = lane < WARPS ? warp_part[lane] : 0.0f;
    return warp_sum(v);
}

// Long rows: one block per row. vec: dim % 4 == 0 and x, w, y 16-byte aligned.
extern "C" __global__ void __launch_bounds__(BLOCK)
rmsnorm_block(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y,
              long long rows, long long dim, float eps, int vec)
{
    const long long d4 = vec ? (dim >> 2) : 0;
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* __restrict__ xr = x + row * dim;
        float* __restrict__ yr = y + row * dim;
        const float4* __restrict__ x4 = reinterpret_cast<const float4*>(xr);
        float ss = 0.0f;
        for (long long i = threadIdx.x; i < d4; i += BLOCK) {
            const float4 v = __ldg(x4 + i);
            ss += (v.x * v.x + v.y * v.y) + (v.z * v.z + v.w * v.w);
        }
        for (long long i = (d4 << 2) + threadIdx.x; i < dim; i += BLOCK) { const float v = xr[i]; ss += v * v; }
        const float r = rsqrtf(block_sum(ss) / (float)dim + eps);

        const float4* __restrict__ w4 = reinterpret_cast<const float4*>(w);
        float4* __restrict__ y4 = reinterpret_cast<float4*>(yr);
        for (long long i = threadIdx.x; i < d4; i += BLOCK) {
            const float4 v = __ldg(x4 + i), g = __ldg(w4 + i);
            y4[i] = make_float4(v.x * r * g.x, v.y * r * g.y, v.z * r * g.z, v.w * r * g.w);
        }
        for (long long i = (d4 << 2) + threadIdx.x; i < dim; i += BLOCK) yr[i] = xr[i] * r * w[i];
    }
}

// Short rows (dim <= 1024): one warp per row, WARPS rows per block; the row stays in L1.
extern "C" __global__ void __launch_bounds__(BLOCK)
rmsnorm_warp(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y,
             long long rows, long long dim, float eps)
{
    const int lane = threadIdx.x & 31;
    for (long long row = (long long)blockIdx.x * WARPS + (threadIdx.x >> 5); row < rows;
         row += (long long)gridDim.x * WARPS) {
        const float* __restrict__ xr = x + row * dim;
        float* __restrict__ yr = y + row * dim;
        float ss = 0.0f;
        for (long long i = lane; i < dim; i += 32) { const float v = xr[i]; ss += v * v; }
        const float r = rsqrtf(warp_sum(ss) / (float)dim + eps);
        for (long long i = lane; i < dim; i += 32) yr[i] = xr[i] * r * __ldg(w + i);
    }
}
'''
PARAMS = {"BLOCK": [128, 256, 512, 1024]}
WARP_ROW_MAX = 1024


class ModelNew(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6, BLOCK: int = 256):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))  # loaded from the reference's state_dict
        self.block = BLOCK
        self.module = compile_module(SOURCE, defines={"BLOCK": BLOCK})

    def forward(self, x):
        assert x.is_contiguous() and self.weight.is_contiguous()
        dim = x.shape[-1]
        rows = x.numel() // dim if dim else 0
        y = torch.empty_like(x)
        if rows == 0:
            return y
        w = self.weight
        if dim <= WARP_ROW_MAX:
            warps = self.block // 32
            grid = min((rows + warps - 1) // warps, 1 << 30)
            self.module.launch("rmsnorm_warp", grid=(grid,), block=(self.block,),
                               args=(x, w, y, rows, dim, self.eps))
        else:
            vec = int(dim % 4 == 0 and x.data_ptr() % 16 == 0 and w.data_ptr() % 16 == 0
                      and y.data_ptr() % 16 == 0)
            grid = min(rows, 1 << 30)
            self.module.launch("rmsnorm_block", grid=(grid,), block=(self.block,),
                               args=(x, w, y, rows, dim, self.eps, vec))
        return y
