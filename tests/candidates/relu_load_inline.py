"""ReLU the KernelBench way: torch.utils.cpp_extension.load_inline (nvcc, tens of seconds).

The kernel source is plain CUDA (checked by nvcc in CPU CI); the host wrapper allocates the
output with torch::empty_like and launches on PyTorch's current stream.
"""
# TASK: kernels/tasks/activation/relu.py
# SLOW: yes

import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

KERNEL = r'''
extern "C" __global__ void relu_inline_f32(const float* __restrict__ x, float* __restrict__ y, long long n, int vec)
{
    const long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long n4 = vec ? (n >> 2) : 0;
    const float4* __restrict__ x4 = reinterpret_cast<const float4*>(x);
    float4* __restrict__ y4 = reinterpret_cast<float4*>(y);
    for (long long i = tid; i < n4; i += stride) {
        float4 v = __ldg(x4 + i);
        v.x = fmaxf(v.x, 0.0f); v.y = fmaxf(v.y, 0.0f); v.z = fmaxf(v.z, 0.0f); v.w = fmaxf(v.w, 0.0f);
        y4[i] = v;
    }
    for (long long i = (n4 << 2) + tid; i < n; i += stride) y[i] = fmaxf(x[i], 0.0f);
}
'''

WRAPPER = r'''
#include <torch/extension.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>

torch::Tensor relu_forward(torch::Tensor x, int64_t block, int64_t max_blocks) {
    TORCH_CHECK(x.is_cuda() && x.is_contiguous() && x.scalar_type() == torch::kFloat32);
    auto y = torch::empty_like(x);
    const long long n = x.numel();
    if (n == 0) return y;
    const int vec = (reinterpret_cast<uintptr_t>(x.data_ptr()) % 16 == 0 &&
                     reinterpret_cast<uintptr_t>(y.data_ptr()) % 16 == 0);
    const long long work = vec ? n / 4 : n;
    const long long grid = std::max(1LL, std::min((work + block - 1) / block, (long long)max_blocks));
    relu_inline_f32<<<(unsigned)grid, (unsigned)block, 0, c10::cuda::getCurrentCUDAStream()>>>(
        x.data_ptr<float>(), y.data_ptr<float>(), n, vec);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return y;
}
'''

CPP = "torch::Tensor relu_forward(torch::Tensor x, int64_t block, int64_t max_blocks);"
PARAMS = {"BLOCK": [128, 256, 512]}


class ModelNew(nn.Module):
    def __init__(self, BLOCK: int = 256):
        super().__init__()
        self.block = BLOCK
        self.ext = load_inline(
            name="autotuner_relu_inline",
            cpp_sources=CPP,
            cuda_sources=KERNEL + WRAPPER,
            functions=["relu_forward"],
            extra_cuda_cflags=["-O3"],
            verbose=False,
        )
        self.max_blocks = None

    def forward(self, x):
        if self.max_blocks is None:
            sms = torch.cuda.get_device_properties(x.device).multi_processor_count
            self.max_blocks = sms * (2048 // self.block) * 4
        return self.ext.relu_forward(x, self.block, self.max_blocks)
