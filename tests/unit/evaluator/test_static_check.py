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
        ("torch.cuda.set_stream(s)\nreturn x", "torch-global"),
        ("torch.cuda.graph(g)\nreturn x", "torch-global"),
        ("import cupy\nreturn cupy.cuda.runtime.memcpy(0, 0, 0, 0)", "restricted"),
        ("import triton\nreturn triton.runtime.driver", "restricted"),
        ("try:\n    return x\nexcept Exception:\n    return torch.relu(x)", "try"),
        ("return Model()(x)", "reference"),
        ("global CACHE\nreturn x", "global"),
        ("import cupy\nreturn cupy.exp(x)", "restricted"),
        ("from torch.utils.cpp_extension import load\nreturn x", "import"),
        ("from autotuner.runtime import dry\nreturn x", "import"),  # the evaluator's dry-run recording
        ("import autotuner.runtime\nwith autotuner.runtime.dry.recording():\n    return x", "restricted"),
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


@pytest.mark.parametrize(
    "code",
    [
        # CuPy on PyTorch's stream, every documented way: the kernel trace judges the stream.
        "import cupy as cp\nwith cp.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream):\n    pass\nreturn x",
        "import cupy as cp\ns = cp.cuda.Stream.from_external(torch.cuda.current_stream())\nreturn x",
        "import cupy as cp\nK = cp.RawKernel('', 'k')\nK((1,), (1,), (x,), stream=cp.cuda.get_current_stream())\nreturn x",
        "from cupy.cuda import ExternalStream\ns = ExternalStream(torch.cuda.current_stream().cuda_stream, 0)\nreturn x",
        # Streams and events are visible at run time: allowed here, judged there.
        "s = torch.cuda.Stream()\nreturn x",
        "torch.cuda.synchronize()\nreturn x",
    ],
)
def test_stream_styles_pass(code):
    assert check_source(body(code)) == [], check_source(body(code))


def test_triton_kernel_passes_and_is_declared():
    from autotuner.candidate import declared_kernel_names

    source = (
        "import torch\nimport torch.nn as nn\nimport triton\nimport triton.language as tl\n\n"
        "@triton.jit\ndef relu_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):\n"
        "    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)\n"
        "    tl.store(y_ptr + offs, tl.maximum(tl.load(x_ptr + offs, mask=offs < n), 0.0), mask=offs < n)\n\n"
        "class ModelNew(nn.Module):\n    def forward(self, x):\n        y = torch.empty_like(x)\n"
        "        relu_kernel[(triton.cdiv(x.numel(), 1024),)](x, y, x.numel(), BLOCK=1024)\n        return y\n"
    )
    assert check_source(source) == [], check_source(source)
    assert declared_kernel_names(source) == {"relu_kernel"}


def test_the_runtime_a_candidate_may_use_is_its_public_api():
    import autotuner.runtime
    from autotuner.evaluator.static_check import RESTRICTED_ATTRS

    assert RESTRICTED_ATTRS["autotuner.runtime"] == set(autotuner.runtime.__all__)
