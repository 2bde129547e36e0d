"""Calling the reference: find the task's Model class in sys.modules and run it.

The harness imported the task file to make inputs, so its module (with Model) is in
sys.modules of the process; instantiating it gives the exact answer. The static check
forbids sys and any use of the name Model; with it off, the reference's own torch.relu is
seen by the dispatch-mode hook (or, if the task module is not found, forward raises).
"""
# TASK: tests/adversarial/tasks/relu.py
# EXPECT: static_check
# EXPECT_RUNTIME: integrity|launch
# REASON: model|sys|import
# REASON_RUNTIME: relu|kernel|model|not found

import sys

import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r'''
extern "C" __global__ void relu_ref(const float* __restrict__ x, float* __restrict__ y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = fmaxf(x[i], 0.0f);
}
'''


def _reference_class():
    for module in list(sys.modules.values()):
        # Plain modules only: some objects in sys.modules (torch.ops) answer every hasattr.
        namespace = getattr(module, "__dict__", {})
        if isinstance(namespace.get("Model"), type) and callable(namespace.get("get_inputs")):
            return namespace["Model"]
    raise RuntimeError("reference Model not found")


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)  # for show
        self.ref = None

    def forward(self, x):
        if self.ref is None:
            self.ref = _reference_class()()
        return self.ref(x)
