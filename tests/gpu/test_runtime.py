"""The NVRTC runtime on a real GPU: compile, launch, types, streams, errors, caches."""

import pytest
import torch

from autotuner.errors import CompileError, LaunchError
from autotuner.runtime import clear_memory_cache, compile_module

pytestmark = pytest.mark.gpu

AXPY = r"""
extern "C" __global__ void axpy(const float* __restrict__ x, float* __restrict__ y, float alpha, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] += alpha * x[i] * SCALE;
}
"""
BF16 = r"""
#include <cuda_bf16.h>
extern "C" __global__ void twice(const __nv_bfloat16* x, __nv_bfloat16* y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = __float2bfloat16(2.0f * __bfloat162float(x[i]));
}
"""


def test_launch_with_defines_and_typed_scalars():
    module = compile_module(AXPY, defines={"SCALE": 3})
    x = torch.randn(1000, device="cuda")
    y = torch.randn(1000, device="cuda")
    expected = y + 0.5 * x * 3
    module.launch("axpy", grid=(4,), block=(256,), args=(x, y, 0.5, 1000))
    torch.testing.assert_close(y, expected)


def test_bf16_header_compiles_through_nvrtc():
    module = compile_module(BF16)
    x = torch.randn(777, device="cuda", dtype=torch.bfloat16)
    y = torch.empty_like(x)
    module.launch("twice", grid=(4,), block=(256,), args=(x, y, x.numel()))
    assert torch.equal(y, x * 2)


def test_compile_error_is_structured_with_the_source_line():
    bad = "extern \"C\" __global__ void k(float* a) {\n    a[0] = nope;\n}\n"
    with pytest.raises(CompileError) as info:
        compile_module(bad)
    errors = [d for d in info.value.diagnostics if d.severity == "error"]
    assert errors and errors[0].line == 2 and "nope" in errors[0].message


def test_unknown_kernel_name_lists_the_known_ones():
    module = compile_module(AXPY, defines={"SCALE": 1})
    with pytest.raises(CompileError, match="axpy"):
        module.kernel("axpyy")


def test_wrong_arguments_are_refused_before_the_gpu_reads_garbage():
    module = compile_module(AXPY, defines={"SCALE": 1})
    x = torch.randn(8, device="cuda")
    with pytest.raises(LaunchError, match="takes 4 arguments"):
        module.launch("axpy", 1, 32, (x, x, 1.0))
    with pytest.raises(LaunchError, match="float64"):
        module.launch("axpy", 1, 32, (x.double(), x, 1.0, 8))
    with pytest.raises(LaunchError, match="not on a CUDA device"):
        module.launch("axpy", 1, 32, (x.cpu(), x, 1.0, 8))


def test_launch_goes_on_the_current_stream():
    module = compile_module(AXPY, defines={"SCALE": 1})
    side = torch.cuda.Stream()
    x = torch.ones(1 << 20, device="cuda")
    y = torch.zeros_like(x)
    with torch.cuda.stream(side):
        torch.cuda._sleep(10_000_000)  # keep the side stream busy so misordering would show
        module.launch("axpy", (1 << 20) // 256, 256, (x, y, 1.0, 1 << 20))
        y.mul_(2)  # ordered after the kernel only if the kernel is on this stream
    torch.cuda.synchronize()
    assert torch.all(y == 2)


def test_memory_and_disk_caches_return_without_recompiling():
    import time

    src = AXPY.replace("SCALE", "2.0f") + f"// {time.time_ns()}\n"
    start = time.perf_counter()
    compile_module(src)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    assert compile_module(src) is compile_module(src)
    memory = time.perf_counter() - start
    clear_memory_cache()
    start = time.perf_counter()
    compile_module(src).kernel("axpy")
    disk = time.perf_counter() - start
    assert memory < cold and disk < cold


CLUSTER16 = r"""
extern "C" __global__ void __cluster_dims__(16, 1, 1) ranks(int* out) {
    unsigned rank;
    asm("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
    if (threadIdx.x == 0) out[blockIdx.x] = (int)rank;
}
"""


def test_clusters_of_16_launch_once_the_driver_allows_them():
    """The rules' row kernels use clusters of 16 for rows of 1.7-3.4 MB (non-portable on sm_90:
    a kernel must opt in, ``allow_nonportable_clusters``)."""
    from autotuner.runtime import allow_nonportable_clusters, max_active_clusters

    if torch.cuda.get_device_capability() < (9, 0):
        pytest.skip("thread-block clusters need sm_90")
    module = compile_module(CLUSTER16)
    kernel = module.kernel("ranks")
    assert allow_nonportable_clusters(kernel) is True
    assert (max_active_clusters(kernel, 128, 0, 16) or 0) >= 1
    out = torch.full((64,), -1, dtype=torch.int32, device="cuda")
    module.launch("ranks", grid=(64,), block=(128,), args=(out,))
    torch.cuda.synchronize()
    assert out.tolist() == [i % 16 for i in range(64)]


MIXED = r"""
extern "C" __global__ void mixed(const float* x, float* y, float a, double b, long long n, int k, bool neg,
                                 unsigned char u) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = (neg ? -1.0f : 1.0f) * (x[i] * a + (float)b + (float)k + (float)u);
}
"""


def test_driver_launch_matches_cupys_on_every_parameter_kind():
    """The host-fast path (cuLaunchKernel on per-thread slots) and CuPy's launch write the same
    output for pointers, float, double, int64, int, bool and uint8 parameters, Python and numpy
    scalars alike, on the current stream and inside a captured graph."""
    import numpy as np

    module = compile_module(MIXED)
    kernel = module.kernel("mixed")
    assert kernel._plan is not None, "a parsed signature on the module's device takes the driver path"
    x = torch.randn(1000, device="cuda")
    args = [(x, 0.5, 2.0, 1000, 3, True, 7), (x, np.float32(0.25), np.float64(-1.0), np.int64(1000), np.int32(2), False, np.uint8(9))]
    for call in args:
        fast, slow = torch.empty_like(x), torch.empty_like(x)
        kernel(4, 256, call[0], fast, *call[1:])
        kernel._launch_cupy(4, 256, (call[0], slow, *call[1:]), 0)
        torch.cuda.synchronize()
        assert torch.equal(fast, slow)
    out = torch.zeros_like(x)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        kernel(4, 256, x, out, 2.0, 0.0, 1000, 0, False, 0)
    out.zero_()
    graph.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(out, x * 2)


def test_driver_launch_refuses_what_cupys_refuses():
    module = compile_module(MIXED)
    x = torch.randn(8, device="cuda")
    with pytest.raises(LaunchError, match="float64"):
        module.launch("mixed", 1, 32, (x.double(), x, 1.0, 1.0, 8, 0, False, 0))
    with pytest.raises(LaunchError, match="not on a CUDA device"):
        module.launch("mixed", 1, 32, (x, x.cpu(), 1.0, 1.0, 8, 0, False, 0))
    with pytest.raises(OverflowError):  # numpy's own refusal of an int out of the parameter's range
        module.launch("mixed", 1, 32, (x, x, 1.0, 1.0, 8, 1 << 40, False, 0))
    with pytest.raises(LaunchError, match="takes 8 arguments"):
        module.launch("mixed", 1, 32, (x, x, 1.0))


def test_a_launch_from_a_new_thread_runs():
    """A thread that never touched CUDA: the launch still lands (CuPy's path makes the device
    current where the driver has no context for the thread)."""
    import threading

    module = compile_module(AXPY, defines={"SCALE": 1})
    x = torch.ones(256, device="cuda")
    y = torch.zeros_like(x)
    errors = []

    def work():
        try:
            module.launch("axpy", 1, 256, (x, y, 2.0, 256))
            torch.cuda.synchronize()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert not errors, errors
    assert torch.all(y == 2)


# ---- arch-specific targets (sm_90a: wgmma), the runtime's and an exported package's -----------

WGMMA_FENCED = r"""
extern "C" __global__ void scaled(const float* __restrict__ x, float* __restrict__ y, int n) {
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");  // sm_90a only: proves the target
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] * SCALE;
}
"""


def _hopper() -> None:
    if torch.cuda.get_device_capability() != (9, 0):
        pytest.skip("sm_90a kernels need a Hopper GPU (compute capability 9.0)")


def test_compile_ahead_builds_an_arch_specific_candidate_for_its_target(tmp_path, monkeypatch):
    """The evaluator's compile-ahead of a candidate that declares an arch (a wgmma flash kernel):
    one cubin per setting on disk, then the candidate's own builds are in-memory hits that run."""
    from autotuner.runtime.compile import compile_ahead

    _hopper()
    monkeypatch.setenv("CUPY_CACHE_DIR", str(tmp_path))
    clear_memory_cache()
    assert compile_ahead([(WGMMA_FENCED, {"SCALE": s}) for s in (2, 3)], arch="sm_90a") == 2
    assert len(list(tmp_path.glob("*_sm_90a.cubin"))) == 2
    x = torch.randn(300, device="cuda")
    for s in (2, 3):
        module = compile_module(WGMMA_FENCED, defines={"SCALE": s}, arch="sm_90a")
        y = torch.empty_like(x)
        module.launch("scaled", (3,), (128,), (x, y, 300))
        torch.testing.assert_close(y, x * s)
    with pytest.raises(CompileError):  # without the arch-specific target NVRTC refuses wgmma
        compile_module(WGMMA_FENCED, defines={"SCALE": 2})


def test_exported_runtime_compiles_for_an_arch_specific_target():
    """An exported package's _runtime (the package's own copy, no autotuner import) builds a
    sm_90a module the same way: NVRTC to a cubin, cached on disk, loaded by CuPy."""
    import importlib.util
    from pathlib import Path

    import autotuner.export

    _hopper()
    path = Path(autotuner.export.__file__).parent / "package_template" / "_runtime.py"
    spec = importlib.util.spec_from_file_location("exported_runtime_under_test", path)
    runtime = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runtime)
    x = torch.randn(1000, device="cuda")
    for _ in range(2):  # the second build from a fresh in-memory cache reads the cubin from disk
        runtime._memo.clear()
        module = runtime.compile_module(WGMMA_FENCED, defines={"SCALE": 5}, arch="sm_90a")
        y = torch.empty_like(x)
        module.launch("scaled", (8,), (128,), (x, y, 1000))
        torch.testing.assert_close(y, x * 5)
