"""The task loader: errors name the file and the fault; plain KernelBench files load."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from autotuner.errors import TaskLoadError
from autotuner.tasks import discover_tasks, load_task

GOOD = textwrap.dedent(
    """\
    import torch
    import torch.nn as nn


    class Model(nn.Module):
        def __init__(self):
            super().__init__()

        def forward(self, x):
            return torch.relu(x)


    batch_size = 16
    dim = 64


    def get_inputs():
        return [torch.randn(batch_size, dim)]


    def get_init_inputs():
        return []
    """
)


def _write(tmp_path: Path, text: str, name: str = "task.py") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _load_error(path: Path) -> TaskLoadError:
    with pytest.raises(TaskLoadError) as info:
        load_task(path)
    assert str(path.name) in str(info.value)
    return info.value


def test_plain_kernelbench_file_loads_with_one_default_shape(tmp_path: Path) -> None:
    task = load_task(_write(tmp_path, GOOD, "relu_plain.py"))
    assert task.name == "relu_plain"
    assert [s.name for s in task.shapes] == ["default"]
    assert task.default_shape.overrides == {}
    assert task.visible_shapes == task.shapes
    assert task.dtype == "float32"
    assert task.policy == "strict"
    assert task.family == tmp_path.name  # the folder name when FAMILY is absent
    assert task.distributions == ["signed", "wide"]
    assert len(task.content_hash) == 64


def test_shapes_override_globals_and_restore(tmp_path: Path) -> None:
    text = GOOD + 'SHAPES = [{"batch_size": 2, "dim": 3}, {"batch_size": 5, "dim": 7, "hidden": True}]\n'
    task = load_task(_write(tmp_path, text))
    assert [s.name for s in task.shapes] == ["default", "shape1", "shape2"]
    assert [s.name for s in task.visible_shapes] == ["default", "shape1"]
    with task.shape(task.shapes[2]) as mod:
        assert mod.get_inputs()[0].shape == (5, 7)
    assert task.module.batch_size == 16 and task.module.dim == 64


def test_syntax_error_names_line(tmp_path: Path) -> None:
    text = GOOD.replace("return torch.relu(x)", "return torch.relu(x")
    line = GOOD.splitlines().index("        return torch.relu(x)") + 1
    err = _load_error(_write(tmp_path, text))
    assert "syntax error" in err.fault
    # Python reports an unclosed bracket at the line it opens or the first line after it.
    assert any(f"line {n}" in err.fault for n in (line, line + 1, line + 2, line + 3))


def test_missing_model(tmp_path: Path) -> None:
    text = GOOD.replace("class Model(nn.Module):", "class NotModel(nn.Module):")
    err = _load_error(_write(tmp_path, text))
    assert "Model" in err.fault


def test_model_not_a_module(tmp_path: Path) -> None:
    text = GOOD + "\nModel = 3\n"
    err = _load_error(_write(tmp_path, text))
    assert "Model" in err.fault


@pytest.mark.parametrize("fn", ["get_inputs", "get_init_inputs"])
def test_missing_input_functions(tmp_path: Path, fn: str) -> None:
    text = GOOD.replace(f"def {fn}():", f"def _{fn}_renamed():")
    err = _load_error(_write(tmp_path, text))
    assert fn in err.fault


def test_shapes_naming_unknown_global(tmp_path: Path) -> None:
    text = GOOD + 'SHAPES = [{"batch_size": 2, "hidden_dim": 3}]\n'
    err = _load_error(_write(tmp_path, text))
    assert "hidden_dim" in err.fault


def test_shapes_not_dicts(tmp_path: Path) -> None:
    err = _load_error(_write(tmp_path, GOOD + "SHAPES = [(2, 3)]\n"))
    assert "SHAPES[0]" in err.fault


def test_repeated_shape_names(tmp_path: Path) -> None:
    text = GOOD + 'SHAPES = [{"name": "a", "dim": 3}, {"name": "a", "dim": 5}]\n'
    err = _load_error(_write(tmp_path, text))
    assert "repeat" in err.fault


def test_bad_dtype(tmp_path: Path) -> None:
    err = _load_error(_write(tmp_path, GOOD + 'DTYPE = "float64"\n'))
    assert "DTYPE" in err.fault and "float64" in err.fault


def test_bad_policy(tmp_path: Path) -> None:
    err = _load_error(_write(tmp_path, GOOD + 'POLICY = "anything"\n'))
    assert "POLICY" in err.fault


def test_bad_input_distribution(tmp_path: Path) -> None:
    err = _load_error(_write(tmp_path, GOOD + 'INPUT_DISTRIBUTIONS = ["uniform"]\n'))
    assert "uniform" in err.fault


def test_bad_tolerance(tmp_path: Path) -> None:
    err = _load_error(_write(tmp_path, GOOD + 'TOLERANCE = {"rtoll": 1e-3}\n'))
    assert "TOLERANCE" in err.fault


def test_exception_at_import_names_line(tmp_path: Path) -> None:
    text = GOOD + "\n\nvalue = 1 / 0\n"
    line = len(text.splitlines())
    err = _load_error(_write(tmp_path, text))
    assert "ZeroDivisionError" in err.fault
    assert f"line {line}" in err.fault


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TaskLoadError):
        load_task(tmp_path / "nope.py")


def test_discover_skips_underscore_files_and_sorts(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    _write(tmp_path / "b", GOOD, "z.py")
    _write(tmp_path, GOOD, "a.py")
    _write(tmp_path, GOOD, "_helper.py")
    found = [p.relative_to(tmp_path).as_posix() for p in discover_tasks(tmp_path)]
    assert found == ["a.py", "b/z.py"]
    with pytest.raises(TaskLoadError):
        discover_tasks(tmp_path / "missing")
