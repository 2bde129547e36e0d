"""The built-in task suite (kernels/tasks): every file loads, is well formed, and its
reference runs on CPU at its smallest shape."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest
import torch

from autotuner.tasks import Task, discover_tasks, load_task, suite_dir

SUITE = suite_dir()
PATHS = discover_tasks(SUITE)
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_HYBRID_FAMILIES = {"gemm", "conv"}
# Default (timed) inputs + parameters stay under 7 GB (KernelBench level 1's widest, [4096,
# 393216] fp32, is 6.4 GB): the evaluator's timing pool holds two copies, the reference's and
# the candidate's outputs come on top, and an 80 GB GPU must still fit it all; extra shapes
# stay well under 100 MB so that verification is cheap.
_DEFAULT_MAX_BYTES = 7.0e9
_EXTRA_MAX_BYTES = 100e6


def _rel(path: Path) -> str:
    return path.relative_to(SUITE).as_posix()


@pytest.fixture(scope="module")
def tasks() -> dict[str, Task]:
    return {_rel(p): load_task(p) for p in PATHS}


def _meta_sizes(task: Task, shape) -> tuple[int, int]:
    """(elements, bytes) of a shape's inputs plus parameters, built on the meta device."""
    dtype = _DTYPES[task.dtype]
    with task.shape(shape) as mod, torch.device("meta"):
        inputs = mod.get_inputs()
        model = mod.Model(*mod.get_init_inputs())
    tensors = [t for t in inputs if isinstance(t, torch.Tensor)]
    elems = sum(t.numel() for t in tensors)
    nbytes = sum(t.numel() * t.element_size() for t in tensors)
    for p in model.parameters():
        elems += p.numel()
        nbytes += p.numel() * (dtype.itemsize if p.is_floating_point() else p.element_size())
    return elems, nbytes


def _smallest_shape(task: Task):
    return min(task.shapes, key=lambda s: _meta_sizes(task, s)[0])


def _flatten(out) -> list:
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in _flatten(o)]
    return [out]


def test_suite_size() -> None:
    assert len(PATHS) >= 30, f"only {len(PATHS)} task files under {SUITE}"


def test_no_init_files() -> None:
    root = SUITE.parent
    assert not list(root.rglob("__init__.py")), "kernels/ must hold no __init__.py files"


def test_family_coverage(tasks: dict[str, Task]) -> None:
    families = Counter(t.family for t in tasks.values())
    names = {rel.rsplit(".", 1)[0] for rel in tasks}
    assert families["activation"] >= 6
    assert families["gemm"] >= 4
    assert families["conv"] >= 2
    assert families["decode"] >= 4
    required = [
        "reduction/sum_dim", "reduction/argmax_dim",
        "softmax/softmax", "softmax/log_softmax", "softmax/softmax_bf16",
        "normalization/layernorm", "normalization/rmsnorm", "normalization/groupnorm",
        "normalization/rmsnorm_bf16",
        "loss/mse_loss", "loss/cross_entropy",
        "scan/cumsum",
        "activation/relu", "activation/silu",
        "decode/silu_mul_bf16", "decode/rope_bf16", "decode/residual_rmsnorm_bf16",
        "decode/attention_decode_bf16", "decode/attention_decode_gqa_bf16",
    ]
    missing = [r for r in required if r not in names]
    assert not missing, f"missing tasks: {missing}"


def test_content_hashes_distinct(tasks: dict[str, Task]) -> None:
    hashes = Counter(t.content_hash for t in tasks.values())
    dupes = [rel for rel, t in tasks.items() if hashes[t.content_hash] > 1]
    assert not dupes, f"tasks with identical content: {dupes}"


@pytest.mark.parametrize("path", PATHS, ids=_rel)
def test_metadata(path: Path, tasks: dict[str, Task]) -> None:
    task = tasks[_rel(path)]
    mod = task.module
    # Declared explicitly, not left to defaults.
    for attr in ("FAMILY", "DTYPE", "POLICY", "SHAPES"):
        assert hasattr(mod, attr), f"{attr} missing"
    assert task.family == path.parent.name
    expected_policy = "hybrid" if task.family in _HYBRID_FAMILIES else "strict"
    assert task.policy == expected_policy
    if task.family == "decode":
        assert task.dtype == "bfloat16"
    doc = ast.get_docstring(ast.parse(task.source))
    assert doc and "\n" not in doc.strip(), "needs a one-line module docstring"

    extras = task.shapes[1:]
    assert 2 <= len(extras) <= 3
    assert any(s.hidden for s in extras), "needs a hidden shape"
    assert any(not s.hidden for s in extras), "needs a visible extra shape"
    # At least one hidden shape has a size that is not a multiple of 4.
    awkward = [
        s for s in extras if s.hidden
        and any(isinstance(v, int) and not isinstance(v, bool) and v % 4 for v in s.overrides.values())
    ]
    assert awkward, "hidden shapes should carry sizes that are not multiples of 4"

    _, default_bytes = _meta_sizes(task, task.default_shape)
    assert default_bytes < _DEFAULT_MAX_BYTES, f"default inputs {default_bytes / 1e9:.2f} GB"
    for s in extras:
        _, nbytes = _meta_sizes(task, s)
        assert nbytes < _EXTRA_MAX_BYTES, f"shape {s.name}: {nbytes / 1e6:.1f} MB"
        assert nbytes < default_bytes


@pytest.mark.parametrize("path", PATHS, ids=_rel)
def test_reference_runs_on_cpu(path: Path, tasks: dict[str, Task]) -> None:
    task = tasks[_rel(path)]
    dtype = _DTYPES[task.dtype]
    shape = _smallest_shape(task)
    elems, _ = _meta_sizes(task, shape)
    assert elems < 5_000_000, f"smallest shape {shape.name} has {elems} elements: too big for CPU"

    torch.manual_seed(0)
    with task.shape(shape) as mod:
        model = mod.Model(*mod.get_init_inputs()).to(dtype)
        inputs = mod.get_inputs()
    for t in inputs:
        if isinstance(t, torch.Tensor):
            assert t.device.type == "cpu"
            if t.is_floating_point():
                assert t.dtype == dtype, f"input of {t.dtype}, task is {task.dtype}"
            else:
                assert t.dtype == torch.int64, f"index input of {t.dtype}"
    snapshot = [t.clone() if isinstance(t, torch.Tensor) else t for t in inputs]
    with torch.no_grad():
        out = model(*inputs)

    outs = _flatten(out)
    assert outs, "forward returned nothing"
    for o in outs:
        assert isinstance(o, torch.Tensor), f"output of type {type(o).__name__}"
        if o.is_floating_point():
            assert o.dtype == dtype, f"output of {o.dtype}, task is {task.dtype}"
            assert torch.isfinite(o).all(), "non-finite output"
        else:
            assert o.dtype == torch.int64
        assert o.numel() > 0 or o.dim() == 0
    # forward is pure: inputs unchanged
    for before, after in zip(snapshot, inputs):
        if isinstance(before, torch.Tensor):
            assert torch.equal(before, after), "forward modified an input in place"
