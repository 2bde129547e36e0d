"""The pieces every operator's prompt is built from: the format, the rules, the task, parents.

The rules are rendered from the evaluator's own tables (the static checker's import list,
the tolerances per dtype) so that what the model is told and what is enforced cannot drift.
Hidden shapes never reach a prompt: the task source is shown with them removed.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from autotuner import pyast
from autotuner.evaluator.static_check import ALLOWED_IMPORTS, RESTRICTED_ATTRS
from autotuner.tasks import Task
from evolution.llm.feedback import feedback_section, measurement_summary
from evolution.proposers.base import Parent

# fp32 relative-L2 bounds of the evaluator (autotuner/evaluator/compare.py), quoted in words.
_PRECISION = {
    "float32": "fp32 with tight tolerances (relative L2 error 5e-5): compute in fp32; no fp16/bf16 "
    "arithmetic, no TF32 tensor cores, no fast-math intrinsics that lose accuracy (__expf, __fdividef)",
    "float16": "fp16 inputs and outputs; accumulate in fp32 (relative L2 error 2e-3)",
    "bfloat16": "bf16 inputs and outputs; accumulate in fp32 (relative L2 error 1e-2)",
}


@dataclass(frozen=True)
class PromptContext:
    """What an operator may know beyond the request."""

    gpu_name: str = ""  # e.g. "NVIDIA H100 80GB HBM3"; "" when unknown
    max_example_chars: int = 12_000  # examples beyond this are left out


EXAMPLE_CANDIDATE = '''\
import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r\'\'\'
#ifndef BLOCK
#define BLOCK 256
#endif
extern "C" __global__ void relu_f32(const float* __restrict__ x, float* __restrict__ y, long long n) {
    const long long stride = (long long)gridDim.x * BLOCK;
    for (long long i = (long long)blockIdx.x * BLOCK + threadIdx.x; i < n; i += stride)
        y[i] = fmaxf(x[i], 0.0f);
}
\'\'\'
PARAMS = {"BLOCK": [128, 256, 512]}   # tunables: each is a keyword of __init__ and a -D define


class ModelNew(nn.Module):
    def __init__(self, BLOCK: int = 256):   # the reference Model's arguments first, then tunables
        super().__init__()
        self.block = BLOCK
        self.module = compile_module(SOURCE, defines={"BLOCK": BLOCK})

    def forward(self, x):                      # same arguments as Model.forward
        y = torch.empty_like(x)
        n = x.numel()                          # sizes come from the tensors, never constants
        grid = max(1, min((n + self.block - 1) // self.block, 65535 * 8))
        self.module.launch("relu_f32", grid=(grid,), block=(self.block,), args=(x, y, n))
        return y
'''

RESPONSE_FORMAT = """\
## Response format
Answer with exactly ONE ```python code block that holds the complete candidate module:
imports, the CUDA source as Python string constants, PARAMS (optional), and class ModelNew.
Keep the CUDA inside the module (no separate ```cuda blocks). A few sentences before the
block saying what you changed are welcome; write nothing after it."""


def system_prompt(task: Task, ctx: PromptContext) -> str:
    gpu = ctx.gpu_name or "an NVIDIA GPU"
    return f"""\
You are an expert CUDA performance engineer. You replace a PyTorch reference with CUDA
kernels that compute the same function and run faster on {gpu}. Every answer is a
complete Python module in the candidate format below; an automatic evaluator compiles it,
checks it against the reference and times it.

## The candidate format
- `class ModelNew(nn.Module)`: `__init__` takes the same arguments as the reference
  `Model.__init__` (same names, order and defaults), then the tunables as keyword arguments
  with defaults. Parameters and buffers keep the reference's names and shapes: the
  reference's weights are loaded into ModelNew by name. `forward` takes the same arguments
  as `Model.forward` and returns the same outputs (shapes, dtype {task.dtype}, device).
- CUDA C lives in Python string constants (r'''...'''); every kernel is declared
  `extern "C" __global__`.
- Compile once in `__init__` with `from autotuner.runtime import compile_module`:
  `self.module = compile_module(SOURCE, defines={{"BLOCK": BLOCK}})`; launch in `forward`
  with `self.module.launch("kernel_name", grid=(gx,), block=(bx,), args=(x, y, n))`
  (grid and block: tuples of 1 to 3 ints). Tensors are passed as device pointers,
  zero-copy (inputs arrive contiguous); allocate outputs with torch.empty / empty_like.
  Python ints and floats are cast to the kernel's parameter types (use `long long` for
  sizes and indices). Launches run on the current stream.
- Optional `PARAMS = {{"BLOCK": [128, 256, 512], ...}}`: tunable integers, each also a keyword
  argument of `ModelNew.__init__` (its default one of the choices), injected into the CUDA
  source as `-DNAME=value` (guard with `#ifndef NAME` / `#define NAME default` / `#endif`).

Example, for a ReLU task:
```python
{EXAMPLE_CANDIDATE}```

## Rules the evaluator enforces (breaking one rejects the candidate)
- {_policy_rule(task.policy)}
- At least one of your own kernels must run in every forward, on the current stream.
- Every output element must be written by your code: fresh allocations are filled with NaN
  before your kernels run. Inputs must not be modified.
- It is checked at several shapes, some never shown to you, with fresh random inputs: read
  every size from the tensors at run time, never hard-code one; handle tails (sizes that are
  not multiples of the block, the vector width or the tile) and unaligned sizes.
- Precision: {_PRECISION.get(task.dtype, _PRECISION["float32"])}.
- No races: the first forward runs twice and both results must agree.
- Imports: only {", ".join(sorted(m for m in ALLOWED_IMPORTS if m != "__future__"))}
  ({_restricted_text()}).
- Not allowed: try/except, exec, eval, open, getattr/setattr, type(), globals, `global`
  statements, dunder or private (`_name`) attributes, assigning into modules,
  torch.backends, torch.set_*, streams, events, torch.cuda.synchronize, torch.compile,
  torch.jit, torch.ops, torch.library, and any use of Model, get_inputs or get_init_inputs.
- Timing uses fresh inputs every call with L2 flushed; results cached across calls are
  caught, and a time below the hardware's roofline is rejected as impossible.

{RESPONSE_FORMAT}"""


def _policy_rule(policy: str) -> str:
    if policy == "hybrid":
        return ("Policy hybrid: in forward, PyTorch may allocate (torch.empty...), fill, take "
                "views (view, reshape, transpose...) and run matrix multiplication or convolution "
                "(torch.mm / matmul / F.linear / F.conv2d, which stay in cuBLAS / cuDNN); every other "
                "computation (bias, activation, scaling, residual, normalization) runs in your own "
                "kernels, best fused into one epilogue kernel.")  # fmt: skip
    return ("Policy strict: in forward, PyTorch may only allocate (torch.empty / empty_like / "
            "zeros), fill and take views (view, reshape, transpose, contiguous...). All computation, "
            "including any matmul, runs in your own kernels; torch.relu, torch.sum, F.softmax, "
            "torch.mm and the like in forward are rejected.")  # fmt: skip


def _restricted_text() -> str:
    parts = [f"from {m} only {', '.join(sorted(names))}" for m, names in sorted(RESTRICTED_ATTRS.items())]
    return "; ".join(parts)


# -- the task ----------------------------------------------------------------------------------
def visible_task_source(task: Task) -> str:
    """The task file with hidden entries of ``SHAPES`` removed (proposers never see them)."""
    source = task.source
    try:
        tree = pyast.parse(source)
    except SyntaxError:
        return source
    lines = source.splitlines(keepends=True)
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == "SHAPES" for t in targets):
            try:
                shapes = ast.literal_eval(node.value)  # type: ignore[union-attr]
                shown = [s for s in shapes if isinstance(s, dict) and not s.get("hidden")]
                text = "SHAPES = [\n" + "".join(f"    {s!r},\n" for s in shown) + "]  # more shapes are hidden\n"
            except (ValueError, TypeError, SyntaxError):
                text = "# SHAPES: several shapes are checked; some are hidden\n"
            start, end = node.lineno - 1, node.end_lineno or node.lineno
            return "".join(lines[:start]) + text + "".join(lines[end:])
    return source


def task_section(task: Task) -> str:
    shown = ", ".join(_shape_text(s.name, s.overrides) for s in task.visible_shapes)
    return (f"## The task: {task.name} (family {task.family}, dtype {task.dtype}, policy {task.policy})\n"
            f"The PyTorch reference (a KernelBench task file):\n```python\n{visible_task_source(task).rstrip()}\n```\n"
            f"Shapes you may know: {shown}. Other shapes are checked too. The `default` shape "
            "(the module's globals) is the one timed.")  # fmt: skip


def _shape_text(name: str, overrides: dict[str, Any]) -> str:
    if not overrides:
        return f"{name} (the module's globals)"
    return f"{name} ({', '.join(f'{k}={v}' for k, v in overrides.items())})"


# -- parents and examples ----------------------------------------------------------------------
def parent_section(parent: Parent, title: str) -> str:
    params = f"\nEvaluated with params {parent.params}." if parent.params else ""
    return (f"## {title}{_made_by(parent)}\n```python\n{parent.source.rstrip()}\n```{params}\n"
            f"What the evaluator said:\n{feedback_section(parent.result, parent.source)}")  # fmt: skip


def _made_by(parent: Parent) -> str:
    who = {"rules": "the rule-based generator"}.get(parent.origin.split(":")[0], "")
    if parent.origin.startswith("llm:"):
        who = f"a model ({parent.origin[4:]})"
    parts = [f"kernel {parent.kernel_id}" if parent.kernel_id is not None else "", f"written by {who}" if who else ""]
    text = ", ".join(p for p in parts if p)
    return f" ({text})" if text else ""


def incumbent_section(incumbent: Parent | None, parents: tuple[Parent, ...] = ()) -> str:
    """The fastest verified kernel so far for this task: the one a new candidate must beat."""
    if incumbent is None or incumbent.result is None:
        return ""
    shown = any(p.kernel_id is not None and p.kernel_id == incumbent.kernel_id for p in parents)
    where = " It is the kernel shown above." if shown else ""
    return (f"## The kernel to beat\nThe fastest verified kernel so far for this task{_made_by(incumbent)}: "
            f"{measurement_summary(incumbent.result)}.{where} Your candidate must be correct and faster than it.")


def notes_section(notes: tuple[str, ...]) -> str:
    """Why the previous answer to this search could not be used (unparseable, cut off, a copy)."""
    if not notes:
        return ""
    return ("## Your previous answer could not be used\n" + "\n".join(f"- {n}" for n in notes[:5])
            + "\nAnswer with one complete ```python block (keep it short enough to finish), and make it "
            "differ in substance from the kernels shown.")


def examples_section(examples: tuple[str, ...], max_chars: int) -> str:
    if not examples:
        return ""
    shown, used = [], 0
    for source in examples:
        if used + len(source) > max_chars and shown:
            break
        shown.append(f"```python\n{source.rstrip()}\n```")
        used += len(source)
    return ("## Examples: verified fast candidates for related tasks (for the format and the "
            "techniques; your task differs)\n" + "\n\n".join(shown))  # fmt: skip


def messages(system: str, *sections: str) -> list[dict[str, str]]:
    user = "\n\n".join(s.strip() for s in sections if s and s.strip())
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


__all__ = ["EXAMPLE_CANDIDATE", "PromptContext", "examples_section", "feedback_section", "incumbent_section",
           "messages", "notes_section", "parent_section", "system_prompt", "task_section", "visible_task_source"]
