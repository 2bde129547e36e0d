"""torch.compile behind a decoy: an own kernel launches, a torch.compile'd function answers.

Inductor's generated code launches Triton kernels without going through the aten
dispatcher, so a hook that only watches aten ops would see nothing but allocations, and the
decoy satisfies "a kernel of its own ran". Expected: under an active (non-infra)
TorchDispatchMode, Dynamo does not compile and runs the function eagerly, so aten.relu is
seen; if the harness lets Inductor run, it must reject the foreign (triton_*) kernels under
the strict policy. Either way: integrity (or a static rule against torch.compile).
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: integrity|static_check
# EXPECT_RUNTIME: integrity|isolation
# REASON: relu|triton|kernel|compile|foreign
# REASON_RUNTIME: relu|triton|kernel|compile|foreign|audit hook

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_decoy_compile(float* __restrict__ scratch) {
    if (threadIdx.x == 0) scratch[0] = 0.0f;
}
'''


def _relu(t):
    return torch.relu(t)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)
        self.fast = torch.compile(_relu)

    def forward(self, x):
        scratch = torch.empty(1, dtype=x.dtype, device=x.device)
        self.module.launch("relu_decoy_compile", grid=(1,), block=(32,), args=(scratch,))
        return self.fast(x)
