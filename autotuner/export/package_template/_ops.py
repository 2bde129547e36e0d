"""Run an op: the exported kernel where it is covered, the PyTorch reference everywhere else.

Covered means: every tensor on a CUDA device, CuPy importable, the GPU one the kernel was
verified on (``metadata.json``), floating tensors in the kernel's dtype, inputs of the ranks
it was verified with. Anything else runs the task's own PyTorch reference, which computes
the same function. ``explain(op, *args)`` says which path a call takes and why;
``stats`` counts the calls per path. The fake implementation runs the reference on fake
tensors, so torch.compile and AOT tracing see exact output shapes without running anything.
"""

from __future__ import annotations

import collections
import importlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

PACKAGE = __package__ or __name__.rpartition(".")[0]
METADATA: dict[str, Any] = json.loads((Path(__file__).with_name("metadata.json")).read_text())
DISABLE_ENV = f"{PACKAGE.upper()}_DISABLE_KERNELS"
ANY_GPU_ENV = f"{PACKAGE.upper()}_ANY_GPU"  # allow GPUs other than the verified ones (at your risk)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

log = logging.getLogger(PACKAGE)
stats: collections.Counter[tuple[str, str]] = collections.Counter()  # (op, "kernel" | "reference") -> calls
_modules: dict[tuple[Any, ...], torch.nn.Module] = {}
_refused: dict[tuple[str, str], bool] = {}
_cupy: list[bool] = []


def _has_cupy() -> bool:
    if not _cupy:
        try:
            import cupy  # noqa: F401

            _cupy.append(True)
        except ImportError:
            _cupy.append(False)
    return _cupy[0]


def why_not_kernel(op: str, inputs: tuple[Any, ...], weights: dict[str, torch.Tensor]) -> str | None:
    """None if the kernel covers this call, else the reason it runs the reference."""
    meta = METADATA["ops"][op]
    tensors = [t for t in (*inputs, *weights.values()) if isinstance(t, torch.Tensor)]
    if os.environ.get(DISABLE_ENV):
        return f"kernels disabled by ${DISABLE_ENV}"
    if not tensors or not all(t.is_cuda for t in tensors):
        return "not on a CUDA device"
    if not _has_cupy():
        return "CuPy is not installed (pip install cupy-cuda12x or cupy-cuda13x)"
    gpu = torch.cuda.get_device_name(tensors[0].device)
    if gpu.lower() not in {g.lower() for g in meta["gpus"]} and not os.environ.get(ANY_GPU_ENV):
        return f"GPU {gpu!r} is not one the kernel was verified on ({', '.join(meta['gpus'])})"
    want = DTYPES[meta["dtype"]]
    for t in tensors:
        if t.is_floating_point() and t.dtype != want:
            return f"dtype {str(t.dtype).removeprefix('torch.')} not covered (verified for {meta['dtype']})"
    for spec, value in zip(meta["inputs"], inputs):
        if spec["kind"] == "tensor" and value.dim() != spec["rank"]:
            return f"shape not covered: {spec['name']} has {value.dim()} dims, the kernel takes {spec['rank']}"
    return None


def explain(op: str, *args: Any) -> str:
    """'kernel' or 'reference: <reason>' for a call of ``op`` with these arguments."""
    inputs, weights, _ = split_args(op, args)
    why = why_not_kernel(op, inputs, weights)
    return "kernel" if why is None else f"reference: {why}"


def split_args(op: str, args: tuple[Any, ...]) -> tuple[tuple[Any, ...], dict[str, torch.Tensor], tuple[Any, ...]]:
    meta = METADATA["ops"][op]
    n_in, n_w = len(meta["inputs"]), len(meta["weights"])
    return tuple(args[:n_in]), dict(zip(meta["weights"], args[n_in:n_in + n_w])), tuple(args[n_in + n_w:])


def _reference(op: str, init_args: tuple[Any, ...], device: torch.device, dtype: torch.dtype | None) -> torch.nn.Module:
    key = ("reference", op, init_args, str(device), dtype)
    module = _modules.get(key)
    if module is None:
        task = importlib.import_module(f"{PACKAGE}.tasks.{op}")
        with torch.device("meta"):  # no random draws, no allocation: the weights are the op's arguments
            module = task.Model(*init_args)
        if device.type != "meta":
            module = module.to_empty(device=device)
        if dtype is not None:
            module = module.to(dtype)
        _modules[key] = module = module.eval()
    return module


def _kernel(op: str, init_args: tuple[Any, ...], device: torch.device) -> torch.nn.Module:
    key = ("kernel", op, init_args, str(device))
    module = _modules.get(key)
    if module is None:
        meta = METADATA["ops"][op]
        kernels = importlib.import_module(f"{PACKAGE}.kernels.{op}")
        with torch.cuda.device(device), torch.device(device):
            module = kernels.ModelNew(*init_args, **meta["params"])
        _modules[key] = module = module.to(device=device, dtype=DTYPES[meta["dtype"]]).eval()
    return module


def _with_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor]) -> torch.nn.Module:
    for name, tensor in weights.items():
        owner, _, leaf = name.rpartition(".")
        target = module.get_submodule(owner) if owner else module
        if leaf in target._parameters:
            target._parameters[leaf] = tensor
        elif leaf in target._buffers:
            target._buffers[leaf] = tensor
        else:
            raise KeyError(f"module {type(module).__name__} has no parameter {name!r}")
    return module


def _fresh(out: Any, args: tuple[Any, ...]) -> Any:
    """Outputs never alias the inputs (a custom op may not return an input or a view of one)."""
    storages = {a.untyped_storage().data_ptr() for a in args if isinstance(a, torch.Tensor) and a.device.type != "meta"}
    if isinstance(out, (tuple, list)):
        return tuple(_fresh(o, args) for o in out)
    if isinstance(out, torch.Tensor) and out.device.type != "meta" and out.untyped_storage().data_ptr() in storages:
        return out.clone()
    return out


def run(op: str, inputs: tuple[Any, ...], weights: dict[str, torch.Tensor], init_args: tuple[Any, ...]) -> Any:
    why = why_not_kernel(op, inputs, weights)
    if why is None:
        module = _kernel(op, init_args, inputs[0].device)
        try:
            _with_weights(module, weights)
        except KeyError as exc:
            why = f"the kernel module cannot take the weights: {exc}"
        else:
            stats[(op, "kernel")] += 1
            args = tuple(a.contiguous() if isinstance(a, torch.Tensor) else a for a in inputs)
            with torch.no_grad():
                return _fresh(module(*args), (*inputs, *weights.values()))
    if not _refused.get((op, why)):
        _refused[(op, why)] = True
        log.info("%s: PyTorch reference (%s)", op, why)
    stats[(op, "reference")] += 1
    device = next(a.device for a in (*inputs, *weights.values()) if isinstance(a, torch.Tensor))
    module = _with_weights(_reference(op, init_args, device, None), weights)
    with torch.no_grad():
        return _fresh(module(*inputs), (*inputs, *weights.values()))


def fake(op: str, inputs: tuple[Any, ...], weights: dict[str, torch.Tensor], init_args: tuple[Any, ...]) -> Any:
    """The reference run on fake tensors: exact output shapes and dtypes, nothing computed."""
    task = importlib.import_module(f"{PACKAGE}.tasks.{op}")
    with torch.device("meta"):  # built per call: under dynamic shapes the arguments may be SymInts
        module = _with_weights(task.Model(*init_args), weights)
    out = module(*inputs)
    if isinstance(out, (tuple, list)):
        return tuple(o.clone() if _aliases(o, inputs, weights) else o for o in out)
    return out.clone() if _aliases(out, inputs, weights) else out


def _aliases(out: torch.Tensor, inputs: tuple[Any, ...], weights: dict[str, torch.Tensor]) -> bool:
    return any(out is a or (isinstance(a, torch.Tensor) and out._base is a) for a in (*inputs, *weights.values()))
