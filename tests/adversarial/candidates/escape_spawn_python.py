"""Start a process (here `id`; could be `nvidia-smi --lock-gpu-clocks` or a shell)."""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: static_check
# EXPECT_RUNTIME: isolation
# REASON: import|subprocess
# REASON_RUNTIME: starting a process|sandbox
# SECRETS: yes

import subprocess
import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_spawn_python_f32(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
}
'''


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)
        subprocess.run(["id"], check=True)

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        self.module.launch("relu_spawn_python_f32", grid=((n + 255) // 256,), block=(256,), args=(x, y, n))
        return y
