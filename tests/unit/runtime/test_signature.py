import numpy as np

from autotuner.runtime.signature import parse_kernels

SOURCE = r"""
// a comment with __global__ void fake(int x)
extern "C" __global__ void __launch_bounds__(256) scale(const float* __restrict__ x, float* out,
                                                       float alpha, long long n, int flag) {}
extern "C" __global__ void noargs() {}
/* __global__ void hidden(int) */
extern "C" __global__ void halfs(const __nv_bfloat16* a, unsigned int m, size_t k) {}
"""


def test_parses_every_kernel_and_skips_comments():
    kernels = parse_kernels(SOURCE)
    assert sorted(kernels) == ["halfs", "noargs", "scale"]
    assert kernels["noargs"].params == ()


def test_parameter_types_map_to_exact_widths():
    scale = parse_kernels(SOURCE)["scale"].params
    assert [p.name for p in scale] == ["x", "out", "alpha", "n", "flag"]
    assert [p.pointer for p in scale] == [True, True, False, False, False]
    assert [p.numpy_type for p in scale] == [np.uint64, np.uint64, np.float32, np.int64, np.int32]
    halfs = parse_kernels(SOURCE)["halfs"].params
    assert halfs[0].ctype == "__nv_bfloat16" and halfs[0].pointer
    assert halfs[1].numpy_type is np.uint32 and halfs[2].numpy_type is np.uint64
