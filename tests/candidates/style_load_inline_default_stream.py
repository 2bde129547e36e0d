"""Honest style: load_inline, kernel launched with <<<grid, block>>> on the default stream (PyTorch's current stream here)."""
# TASK: tests/adversarial/tasks/relu.py
# SLOW: yes

import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

KERNEL = r'''
extern "C" __global__ void relu_inline_default_f32(const float* __restrict__ x, float* __restrict__ y, long long n) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = fmaxf(x[i], 0.0f);
}
'''

WRAPPER = r'''
#include <torch/extension.h>
#include <c10/cuda/CUDAException.h>

torch::Tensor relu_default_stream(torch::Tensor x) {
    TORCH_CHECK(x.is_cuda() && x.is_contiguous() && x.scalar_type() == torch::kFloat32);
    auto y = torch::empty_like(x);
    const long long n = x.numel();
    const unsigned grid = (unsigned)std::max(1LL, std::min((n + 255) / 256, 65535LL));
    relu_inline_default_f32<<<grid, 256>>>(x.data_ptr<float>(), y.data_ptr<float>(), n);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return y;
}
'''
CPP = "torch::Tensor relu_default_stream(torch::Tensor x);"


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.ext = load_inline(name="autotuner_style_relu_default_stream", cpp_sources=CPP, cuda_sources=KERNEL + WRAPPER, functions=["relu_default_stream"],
                               extra_cuda_cflags=["-O3"], verbose=False)

    def forward(self, x):
        return self.ext.relu_default_stream(x)
