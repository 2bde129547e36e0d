"""load_inline C++ reads a file outside the candidate's folder with fopen().

The static check cannot read C++; the sandbox's kernel-level layers (allow-listed
environment, Landlock, network namespace, process census) stop it at run time.
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: launch|isolation
# REASON: permission denied|cannot read
# SECRETS: yes
# SLOW: yes

import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

KERNEL = r'''
extern "C" __global__ void relu_read_cpp_f32(const float* __restrict__ x, float* __restrict__ y, long long n) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = fmaxf(x[i], 0.0f);
}
'''

WRAPPER = r'''
#include <torch/extension.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

torch::Tensor relu_read_cpp(torch::Tensor x) {
    FILE* f = std::fopen("/tmp/autotuner-redteam/secret.txt", "r");
    TORCH_CHECK(f != nullptr, "cannot read the secret: ", std::strerror(errno));
    std::fclose(f);
    auto y = torch::empty_like(x);
    const long long n = x.numel();
    const unsigned grid = (unsigned)std::max(1LL, std::min((n + 255) / 256, 65535LL));
    relu_read_cpp_f32<<<grid, 256, 0, c10::cuda::getCurrentCUDAStream()>>>(x.data_ptr<float>(), y.data_ptr<float>(), n);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return y;
}
'''
CPP = "torch::Tensor relu_read_cpp(torch::Tensor x);"


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.ext = load_inline(name="autotuner_redteam_relu_read_cpp", cpp_sources=CPP, cuda_sources=KERNEL + WRAPPER,
                               functions=["relu_read_cpp"], extra_cuda_cflags=["-O3"], verbose=False)

    def forward(self, x):
        return self.ext.relu_read_cpp(x)
