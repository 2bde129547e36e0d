"""The static layer: each rule, with the line it names; the README's example passes."""

from pathlib import Path

import pytest

from autotuner.evaluator.static_check import check_source

HEADER = "import torch\nimport torch.nn as nn\nfrom autotuner.runtime import compile_module\n"


def body(forward: str) -> str:
    return HEADER + "class ModelNew(nn.Module):\n    def forward(self, x):\n" + "".join(
        f"        {line}\n" for line in forward.splitlines())


def rules(source: str) -> set[str]:
    return {v.rule for v in check_source(source)}


def test_readme_and_example_candidates_pass():
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    example = readme.split("## Candidate format")[1].split("```python")[1].split("```")[0]
    assert check_source(example) == []
    assert check_source((Path(__file__).parents[3] / "examples" / "relu_candidate.py").read_text()) == []


@pytest.mark.parametrize(
    "code, rule",
    [
        ("import os\nreturn x", "import"),
        ("import subprocess\nreturn x", "import"),
        ("import ctypes\nreturn x", "import"),
        ("from time import perf_counter\nreturn x", "import"),
        ("return open('/etc/passwd')", "builtin"),
        ("return eval('x')", "builtin"),
        ("return getattr(x, 'relu')()", "builtin"),
        ("return x.__class__", "dunder"),
        ("return x._base", "private"),
        ("torch.backends.cuda.matmul.allow_tf32 = True\nreturn x", "patch"),
        ("torch.cuda.Event.elapsed_time = None\nreturn x", "patch"),
        ("torch.set_float32_matmul_precision('high')\nreturn x", "torch-global"),
        ("s = torch.cuda.Stream()\nreturn x", "torch-global"),
        ("torch.cuda.synchronize()\nreturn x", "torch-global"),
        ("try:\n    return x\nexcept Exception:\n    return torch.relu(x)", "try"),
        ("return Model()(x)", "reference"),
        ("global CACHE\nreturn x", "global"),
        ("import cupy\nreturn cupy.exp(x)", "restricted"),
        ("from torch.utils.cpp_extension import load\nreturn x", "import"),
    ],
)
def test_each_rule_fires(code, rule):
    assert rule in rules(body(code)), check_source(body(code))


def test_violation_names_its_line():
    source = body("y = x\nimport os\nreturn y")
    (violation,) = check_source(source)
    assert violation.line == 7 and "os" in violation.message


def test_subclassing_the_reference_is_refused():
    source = HEADER + "class ModelNew(Model):\n    pass\n"
    assert "reference" in rules(source)


def test_missing_model_new_and_syntax_errors():
    assert "format" in rules("import torch\n")
    (violation,) = check_source("def broken(:\n")
    assert violation.rule == "syntax" and violation.line == 1


def test_allowed_runtime_and_cupy_raw_kernels():
    source = HEADER + (
        "import cupy\nimport numpy as np\nimport math\n"
        "K = cupy.RawKernel('extern \"C\" __global__ void k(){}', 'k')\n"
        "class ModelNew(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "    def forward(self, x):\n        y = torch.empty_like(x)\n"
        "        K((1,), (1,), (cupy.asarray(y),))\n        return y.view(-1)\n"
    )
    assert check_source(source) == []
