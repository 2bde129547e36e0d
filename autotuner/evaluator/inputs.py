"""Fresh inputs and weights for every trial, drawn by the harness from seeds it keeps.

Inputs are created on the GPU by running the task's own ``get_inputs()`` with CUDA as the
default device; the extra laws (``signed``, ``wide``) replace floating inputs with normal
values of the same shape and dtype, so that "return the input" cannot pass an activation
whose own inputs are all positive.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from autotuner.tasks import Shape, Task

DTYPE_BY_NAME = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
WIDE_SCALE = 8.0


def _cast(value: Any, dtype: torch.dtype, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.to(device)
        if value.is_floating_point() and value.dtype != dtype:
            value = value.to(dtype)
        return value.contiguous()
    return value


def make_inputs(task: Task, shape: Shape, seed: int, law: str = "task", device: str = "cuda") -> list[Any]:
    """The task's inputs at ``shape`` for ``seed``, under input law ``law``."""
    dtype = DTYPE_BY_NAME[task.dtype]
    dev = torch.device(device)
    torch.manual_seed(seed)
    with task.shape(shape) as module, dev:
        raw = list(module.get_inputs())
    inputs = [_cast(v, dtype, dev) for v in raw]
    if law == "task":
        return inputs
    generator = torch.Generator(device=dev).manual_seed(seed ^ 0x5EED)
    scale = WIDE_SCALE if law == "wide" else 1.0
    out = []
    for value in inputs:
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            fresh = torch.randn(value.shape, generator=generator, device=dev, dtype=torch.float32)
            value = (fresh * scale).to(value.dtype)
        out.append(value)
    return out


def clone_inputs(inputs: list[Any]) -> list[Any]:
    """A private copy, at new addresses, for the candidate (the reference keeps the original)."""
    return [v.clone() if isinstance(v, torch.Tensor) else v for v in inputs]


def _bytes_as_words(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both tensors' bytes, as the widest integer words both can be viewed as: compared bit for
    bit either way, but ``torch.equal`` writes one bool per element, so 8-byte words move about
    half the memory of bytes (a 2 GiB input is checked after every timed call)."""
    x, y = a.contiguous().reshape(-1).view(torch.uint8), b.contiguous().reshape(-1).view(torch.uint8)
    for dtype, size in ((torch.int64, 8), (torch.int32, 4)):
        if x.numel() % size == 0 and x.storage_offset() % size == 0 and y.storage_offset() % size == 0:
            return x.view(dtype), y.view(dtype)
    return x, y


def inputs_unchanged(before: list[Any], after: list[Any]) -> list[int]:
    """Indices of tensor inputs whose contents changed (the candidate wrote into an input)."""
    changed = []
    for i, (a, b) in enumerate(zip(before, after)):
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            same = a.shape == b.shape and a.dtype == b.dtype and torch.equal(*_bytes_as_words(a, b))
            if not same:
                changed.append(i)
    return changed


def init_args(task: Task, shape: Shape) -> list[Any]:
    with task.shape(shape) as module:
        return list(module.get_init_inputs())


def make_reference(task: Task, shape: Shape, seed: int, device: str = "cuda") -> nn.Module:
    """The reference model with weights drawn from ``seed``, cast to the task dtype."""
    args = init_args(task, shape)
    torch.manual_seed(seed)
    with task.shape(shape) as module, torch.device(device):
        model = module.Model(*args)
    return model.to(device=device, dtype=DTYPE_BY_NAME[task.dtype]).eval()


def make_candidate(
    task: Task, shape: Shape, seed: int, model_new: type, params: dict[str, Any], reference: nn.Module,
    device: str = "cuda",
) -> tuple[nn.Module, str | None]:
    """``ModelNew`` built like the reference and given its weights.

    Returns the model and a warning when the reference's weights could not be loaded by name
    (then the seeded construction alone must reproduce them, as in KernelBench).
    """
    args = init_args(task, shape)
    torch.manual_seed(seed)
    with task.shape(shape), torch.device(device):
        model = model_new(*args, **params)
    model = model.to(device=device, dtype=DTYPE_BY_NAME[task.dtype]).eval()
    state = reference.state_dict()
    if not state:
        return model, None
    try:
        result = model.load_state_dict(state, strict=False)
        unexpected = list(result.unexpected_keys)
    except RuntimeError as exc:  # shape mismatch for a shared name
        return model, f"reference weights not loaded ({str(exc).splitlines()[0]}); relying on seeded init"
    if unexpected:
        return model, (f"ModelNew lacks the reference's parameters {unexpected[:4]}; "
                       "relying on seeded init to reproduce them")
    return model, None
