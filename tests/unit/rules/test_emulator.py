"""The CPU emulator used by test_emulated catches what it claims to (a checker of the checker)."""

from __future__ import annotations

import pytest
import torch

import cuda_emu
from evolution.proposers.rules.codegen import template_text

pytestmark = pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))

HEAD = "#define VEC 4\n" + template_text("common.cu")
GOOD = HEAD + r'''
extern "C" __global__ void sums(const float* __restrict__ x, float* __restrict__ out, long long n) {
    float acc = 0.0f;
    for (long long i = threadIdx.x; i < n; i += BLOCK) acc += x[i];
    acc = block_sum<BLOCK>(acc);
    if (threadIdx.x == 0) out[blockIdx.x] = acc + blockIdx.y * 1000.0f;
}
extern "C" __global__ void divergent_sync(float* out) {
    if (threadIdx.x < 32) __syncthreads();
    out[threadIdx.x] = 1.0f;
}
extern "C" __global__ void misaligned(const float* x, float* out) {
    float v[4];
    load_f32<4>(x + 1, v);
    out[0] = v[0];
}
'''


@pytest.fixture(scope="module")
def module():  # noqa: ANN201
    return cuda_emu.EmuModule(GOOD, {"BLOCK": 128})


def test_block_reduction_and_grid(module) -> None:  # noqa: ANN001
    x = torch.arange(1000, dtype=torch.float32)
    out = torch.zeros(3)
    module.launch("sums", grid=(3, 2), block=(128,), args=(x, out, 1000))
    assert out.tolist() == [499500.0 + 1000.0] * 3  # the last grid row (blockIdx.y == 1) wins


def test_barrier_not_reached_by_every_thread_is_a_deadlock(module) -> None:  # noqa: ANN001
    with pytest.raises(RuntimeError, match="deadlock"):
        module.launch("divergent_sync", grid=(1,), block=(64,), args=(torch.zeros(64),))


def test_argument_types_are_checked(module) -> None:  # noqa: ANN001
    with pytest.raises(RuntimeError, match="given a torch.int64"):
        module.launch("sums", grid=(1,), block=(128,), args=(torch.zeros(4, dtype=torch.int64), torch.zeros(1), 4))


def test_misaligned_vector_access_is_reported(tmp_path) -> None:  # noqa: ANN001
    cand = tmp_path / "cand.py"
    cand.write_text(
        "import torch\nimport torch.nn as nn\nfrom autotuner.runtime import compile_module\n"
        f"SOURCE = r'''{GOOD}'''\n"
        "class ModelNew(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.mod = compile_module(SOURCE, defines={'BLOCK': 64})\n"
        "    def forward(self, x):\n"
        "        out = torch.empty(x.shape, dtype=x.dtype, device=x.device)\n"
        "        self.mod.launch('misaligned', grid=(1,), block=(64,), args=(x, out))\n"
        "        return out\n"
    )
    from conftest import SUITE

    report = cuda_emu.run_candidates([(SUITE / "activation" / "relu.py", cand, {}, 600_000)], workers=1)[0]
    assert not report["ok"] and "misaligned" in report["reason"]
