"""SiLU with CuPy directly: a cupy.RawKernel, tensors passed as raw device pointers.

Launched on CuPy's default stream, which is the legacy default stream: PyTorch's default
stream, where the harness runs. (A candidate may not create CuPy streams.)
"""
# TASK: kernels/tasks/activation/silu.py

import cupy
import numpy as np
import torch
import torch.nn as nn

SOURCE = r'''
__device__ __forceinline__ float silu(float v) { return v / (1.0f + expf(-v)); }

extern "C" __global__ void silu_cupy_f32(const float* __restrict__ x, float* __restrict__ y, long long n, int vec)
{
    const long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long n4 = vec ? (n >> 2) : 0;
    const float4* __restrict__ x4 = reinterpret_cast<const float4*>(x);
    float4* __restrict__ y4 = reinterpret_cast<float4*>(y);
    for (long long i = tid; i < n4; i += stride) {
        float4 v = __ldg(x4 + i);
        v.x = silu(v.x); v.y = silu(v.y); v.z = silu(v.z); v.w = silu(v.w);
        y4[i] = v;
    }
    for (long long i = (n4 << 2) + tid; i < n; i += stride) y[i] = silu(x[i]);
}
'''
PARAMS = {"BLOCK": [128, 256, 512]}


class ModelNew(nn.Module):
    def __init__(self, BLOCK: int = 256):
        super().__init__()
        self.block = BLOCK
        self.kernel = cupy.RawKernel(SOURCE, "silu_cupy_f32", options=("-std=c++17",))
        self.max_blocks = None

    def forward(self, x):
        assert x.is_contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        if n == 0:
            return y
        if self.max_blocks is None:
            sms = torch.cuda.get_device_properties(x.device).multi_processor_count
            self.max_blocks = sms * (2048 // self.block) * 4
        vec = int(x.data_ptr() % 16 == 0 and y.data_ptr() % 16 == 0)
        work = n // 4 if vec else n
        grid = max(1, min((work + self.block - 1) // self.block, self.max_blocks))
        args = (np.uint64(x.data_ptr()), np.uint64(y.data_ptr()), np.int64(n), np.int32(vec))
        self.kernel((grid,), (self.block,), args)
        return y
