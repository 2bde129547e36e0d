"""Rotary embedding of q and k in one launch, bit-identical to Hugging Face's bf16 arithmetic.

Hand-written seed: the rule proposer emits one kernel per output (q, then k); at decode
time each is a few microseconds of launch for a few kilobytes, so one launch over the rows
of both saves a kernel per layer. Element i < half of a row: bf(bf(x_i c_i) + bf(-x_{i+half}
s_i)); element i + half: bf(bf(x_{i+half} c_{i+half}) + bf(x_i s_{i+half})), as the eager
mul / cat / add kernels round.
"""
# TASK: kernels/tasks/decode/rope_bf16.py

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
#ifndef BLOCK
#define BLOCK 256
#endif

__device__ __forceinline__ float bf(unsigned short h) { return __uint_as_float(((unsigned int)h) << 16); }
__device__ __forceinline__ unsigned short to_bf(float v) {  // round to nearest even
#if defined(__CUDA_ARCH__)
    unsigned short r;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r) : "f"(v));
    return r;
#else
    unsigned int u = __float_as_uint(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
    return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
#endif
}
__device__ __forceinline__ float rb(float v) { return bf(to_bf(v)); }

// Rows 0 .. T*H-1 are q's ([T, H, D]), then T*KH rows of k; every row of token t uses cos/sin row t.
extern "C" __global__ void __launch_bounds__(BLOCK)
rope_qk(const unsigned short* __restrict__ q, const unsigned short* __restrict__ k,
        const unsigned short* __restrict__ cos, const unsigned short* __restrict__ sin,
        unsigned short* __restrict__ q_out, unsigned short* __restrict__ k_out,
        long long T, long long H, long long KH, long long D)
{
    const long long half = D / 2;
    const long long pairs = T * (H + KH) * half;
    for (long long p = (long long)blockIdx.x * BLOCK + threadIdx.x; p < pairs; p += (long long)gridDim.x * BLOCK) {
        const long long row = p / half, i = p - row * half;
        const bool is_q = row < T * H;
        const long long r = is_q ? row : row - T * H;
        const long long t = is_q ? r / H : r / KH;
        const unsigned short* __restrict__ x = (is_q ? q : k) + r * D;
        unsigned short* __restrict__ o = (is_q ? q_out : k_out) + r * D;
        const unsigned short* __restrict__ c = cos + t * D;
        const unsigned short* __restrict__ s = sin + t * D;
        const float x1 = bf(x[i]), x2 = bf(x[i + half]);
        o[i] = to_bf(rb(x1 * bf(c[i])) + rb(-x2 * bf(s[i])));
        o[i + half] = to_bf(rb(x2 * bf(c[i + half])) + rb(x1 * bf(s[i + half])));
    }
}
'''
PARAMS = {"BLOCK": [128, 256, 512], "WAVES": [1, 2, 4]}


class ModelNew(nn.Module):
    def __init__(self, BLOCK: int = 256, WAVES: int = 2):
        super().__init__()
        self.block, self.waves = BLOCK, WAVES
        self.module = compile_module(SOURCE, defines={"BLOCK": BLOCK})
        self.max_blocks = None

    def forward(self, q, k, cos, sin):
        t, h, d = q.shape
        kh = k.shape[1]
        assert all(x.is_contiguous() for x in (q, k, cos, sin)) and d % 2 == 0
        assert k.shape == (t, kh, d) and cos.shape == sin.shape == (t, d)
        q_out, k_out = torch.empty_like(q), torch.empty_like(k)
        pairs = t * (h + kh) * (d // 2)
        if pairs == 0:
            return q_out, k_out
        if self.max_blocks is None:
            sms = torch.cuda.get_device_properties(q.device).multi_processor_count
            self.max_blocks = sms * (2048 // self.block) * self.waves
        grid = max(1, min(-(-pairs // self.block), self.max_blocks))
        self.module.launch("rope_qk", grid=(grid,), block=(self.block,), args=(q, k, cos, sin, q_out, k_out, t, h, kh, d))
        return q_out, k_out
