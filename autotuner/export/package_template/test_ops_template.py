"""Tests of the exported ops: the reference path and tracing (anywhere), the kernels (GPU)."""

from __future__ import annotations

import importlib

import pytest
import torch

import PACKAGE_NAME as pkg
from PACKAGE_NAME import METADATA

OPS = sorted(METADATA["ops"])
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
TOL = {torch.float32: {"rtol": 1e-4, "atol": 1e-4}, torch.float64: {"rtol": 1e-7, "atol": 1e-7},
       torch.bfloat16: {"rtol": 3e-2, "atol": 3e-2}, torch.float16: {"rtol": 5e-3, "atol": 5e-3}}
EXACT = {"rtol": 0.0, "atol": 0.0}


def make_case(op: str, device: str, dtype: torch.dtype | None = None, seed: int = 0):
    """(op arguments, reference output) at the op's test shape, from the task's own get_inputs."""
    meta = METADATA["ops"][op]
    task = importlib.import_module(f"PACKAGE_NAME.tasks.{op}")
    dtype = dtype or DTYPES[meta["dtype"]]
    saved = {k: getattr(task, k) for k in meta["test_shape"]}
    try:
        for key, value in meta["test_shape"].items():
            setattr(task, key, value)
        torch.manual_seed(seed)
        with torch.device(device):
            inputs = [x.to(dtype) if isinstance(x, torch.Tensor) and x.is_floating_point() else x
                      for x in task.get_inputs()]
            init = list(task.get_init_inputs())
            model = task.Model(*init).to(device=device, dtype=dtype).eval()
    finally:
        for key, value in saved.items():
            setattr(task, key, value)
    state = model.state_dict()
    init += [a["default"] for a in meta["init_args"][len(init):]]
    args = (*inputs, *(state[w] for w in meta["weights"]), *init)
    with torch.no_grad():
        expected = model(*inputs)
    return args, expected


def op_fn(op: str):
    return getattr(torch.ops.PACKAGE_NAME, op)


def assert_close(out, expected, tol) -> None:
    outs = out if isinstance(out, (tuple, list)) else (out,)
    exps = expected if isinstance(expected, (tuple, list)) else (expected,)
    assert len(outs) == len(exps)
    for o, e in zip(outs, exps):
        torch.testing.assert_close(o, e, **tol)


@pytest.mark.parametrize("op", OPS)
def test_reference_path_on_cpu(op: str) -> None:
    args, expected = make_case(op, "cpu")
    assert pkg.explain(op, *args) == "reference: not on a CUDA device"
    before = pkg.stats[(op, "reference")]
    assert_close(op_fn(op)(*args), expected, EXACT)
    assert_close(getattr(pkg, op)(*args), expected, EXACT)
    assert pkg.stats[(op, "reference")] == before + 2


@pytest.mark.parametrize("op", OPS)
def test_uncovered_dtype_runs_the_reference(op: str) -> None:
    args, expected = make_case(op, "cpu", dtype=torch.float64)
    assert_close(op_fn(op)(*args), expected, EXACT)


@pytest.mark.parametrize("op", OPS)
def test_opcheck(op: str) -> None:
    """Schema, fake implementation and AOT dispatch agree with the real implementation."""
    args, _ = make_case(op, "cpu")
    torch.library.opcheck(op_fn(op), args)


@pytest.mark.parametrize("op", OPS)
def test_torch_compile_fullgraph_on_cpu(op: str) -> None:
    args, expected = make_case(op, "cpu")
    fn = op_fn(op)
    compiled = torch.compile(lambda *a: fn(*a), fullgraph=True, backend="aot_eager")
    assert_close(compiled(*args), expected, EXACT)


@pytest.mark.gpu
@pytest.mark.parametrize("op", OPS)
def test_kernel_matches_reference_on_gpu(op: str) -> None:
    args, expected = make_case(op, "cuda")
    path = pkg.explain(op, *args)
    if path != "kernel":
        pytest.skip(path)
    before = pkg.stats[(op, "kernel")]
    out = op_fn(op)(*args)
    assert pkg.stats[(op, "kernel")] == before + 1
    assert_close(out, expected, TOL[DTYPES[METADATA["ops"][op]["dtype"]]])


@pytest.mark.gpu
@pytest.mark.parametrize("op", OPS)
def test_cuda_graph_capture(op: str) -> None:
    args, _ = make_case(op, "cuda")
    fn = op_fn(op)
    eager = fn(*args)  # the first call compiles the kernel: before capture
    graph = torch.cuda.CUDAGraph()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn(*args)
    torch.cuda.current_stream().wait_stream(stream)
    with torch.cuda.graph(graph):
        captured = fn(*args)
    graph.replay()
    torch.cuda.synchronize()
    assert_close(captured, eager, EXACT)


@pytest.mark.gpu
@pytest.mark.parametrize("op", OPS)
def test_torch_compile_fullgraph_on_gpu(op: str) -> None:
    args, expected = make_case(op, "cuda")
    fn = op_fn(op)
    compiled = torch.compile(lambda *a: fn(*a), fullgraph=True)
    assert_close(compiled(*args), expected, TOL[DTYPES[METADATA["ops"][op]["dtype"]]])


@pytest.mark.gpu
@pytest.mark.parametrize("op", OPS)
def test_other_dtype_on_gpu_runs_the_reference(op: str) -> None:
    args, expected = make_case(op, "cuda", dtype=torch.float64)
    assert pkg.explain(op, *args).startswith("reference: dtype float64 not covered")
    assert_close(op_fn(op)(*args), expected, EXACT)
