"""Parsing real model output: the response zoo in tests/llm/responses/ and edge cases."""

from __future__ import annotations

import ast

import pytest

from autotuner.errors import ParseError, ProposerError
from autotuner.evaluator.static_check import check_source
from evolution.llm.parse import extract_candidate, params_of, prose

from .fake_openai_server import response_text

CANDIDATE = '''import torch
import torch.nn as nn
from autotuner.runtime import compile_module

SOURCE = r"""
extern "C" __global__ void k(const float* x, float* y, long long n) { }
"""


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = compile_module(SOURCE)

    def forward(self, x):
        y = torch.empty_like(x)
        self.module.launch("k", grid=(1,), block=(1,), args=(x, y, x.numel()))
        return y
'''


@pytest.mark.parametrize("name", ["good_relu", "wrong_sigmoid", "cheating_torch_relu", "two_blocks", "revised", "think"])
def test_zoo_answers_give_a_module_the_static_check_accepts(name):
    source = extract_candidate(response_text(name))
    ast.parse(source)
    assert check_source(source) == []  # cheating and wrong ones are the evaluator's to catch at run time


def test_good_relu_is_the_code_block_with_its_params():
    source = extract_candidate(response_text("good_relu"))
    assert source.startswith("import torch") and "Here is" not in source
    space, defaults = params_of(source)
    assert space == {"BLOCK": [128, 256, 512], "WAVES": [2, 4, 8]}
    assert defaults == {"BLOCK": 256, "WAVES": 4}


def test_separate_cuda_block_is_stitched_in_as_source():
    source = extract_candidate(response_text("two_blocks"))
    assert "SOURCE = r'''" in source and "relu_split" in source
    tree = ast.parse(source)
    assigned = [n.targets[0].id for n in tree.body if isinstance(n, ast.Assign)]
    assert assigned.index("SOURCE") == 0  # defined before ModelNew uses it
    assert params_of(source)[0] == {"BLOCK": [128, 256, 512]}


def test_the_last_complete_version_wins():
    source = extract_candidate(response_text("revised"))
    assert "relu_v2" in source and "relu_v1" not in source


def test_reasoning_is_stripped_with_the_decoy_inside_it():
    source = extract_candidate(response_text("think"))
    assert "relu_think" in source and "torch.relu" not in source


def test_truncated_code_names_the_line():
    text = response_text("truncated")
    with pytest.raises(ParseError) as info:
        extract_candidate(text)
    assert f"response truncated at line {len(text.splitlines())}" in info.value.reason
    assert isinstance(info.value, ProposerError)


def test_missing_closing_fence_is_fine_when_the_code_is_complete():
    assert extract_candidate("Here:\n```python\n" + CANDIDATE) == CANDIDATE


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty response"),
        ("   \n", "empty response"),
        (response_text("no_code"), "no ```python code block"),
        ("```python\nimport torch\nx = 1\n```", "defines no class ModelNew"),
        ("```python\nclass ModelNew(:\n    pass\n```", "not valid Python: line 1"),
        ("<think>\nlet me think about this for a long", "inside a <think> block"),
        ("```python\n# class ModelNew is below\ndef f(): pass\n```", "no top-level class ModelNew"),
    ],
)
def test_unusable_answers_raise_parse_error_with_a_reason(text, reason):
    with pytest.raises(ParseError) as info:
        extract_candidate(text)
    assert reason in info.value.reason


@pytest.mark.parametrize(
    "wrap",
    [
        lambda c: c,  # bare code, no fences
        lambda c: f"Sure.\n```\n{c}```\nDone.",  # unlabeled fence
        lambda c: f"~~~py\n{c}~~~",  # tildes
        lambda c: f"````python\n{c}````",  # longer fence
        lambda c: f"reasoning the template opened\n</think>\n```python\n{c}```",  # lone closing tag
        lambda c: f"```python\nimport math\n```\n\nand the module:\n\n```python\n{c}```",  # sketch first
        lambda c: f"```cpp\n// notes\n```\n```python\n{c}```",  # an unrelated C++ block
    ],
)
def test_formats_real_models_use(wrap):
    assert extract_candidate(wrap(CANDIDATE)).strip() == CANDIDATE.strip()


def test_cuda_block_with_triple_quotes_inside_uses_the_other_quote():
    text = ("```cuda\n// a ''' in a comment\nextern \"C\" __global__ void k() {}\n```\n"
            "```python\nimport torch.nn as nn\nclass ModelNew(nn.Module):\n    code = KERNEL_SRC\n```")
    source = extract_candidate(text)
    assert 'KERNEL_SRC = r"""' in source
    ast.parse(source)


def test_prose_is_what_lies_outside_the_code():
    said = prose(response_text("wrong_sigmoid"))
    assert said == "Sure! Below is an optimized elementwise kernel. This should be a drop-in replacement."


def test_params_of_reads_keyword_only_defaults_and_ignores_computed_params():
    source = 'PARAMS = {"TILE": [16, 32]}\nclass ModelNew:\n    def __init__(self, *, TILE=32):\n        pass\n'
    assert params_of(source) == ({"TILE": [16, 32]}, {"TILE": 32})
    assert params_of("PARAMS = dict(TILE=[16])\nclass ModelNew: pass\n") == ({}, {})
    assert params_of('PARAMS = {"V": [1, 2]}\nclass ModelNew: pass\n') == ({"V": [1, 2]}, {"V": 1})


def test_source_in_its_own_python_block_is_stitched_in():
    text = ("The kernel source:\n```python\nSOURCE = r'''\nextern \"C\" __global__ void k() {}\n'''\n```\n"
            "The module:\n```python\nimport torch.nn as nn\nfrom autotuner.runtime import compile_module\n\n"
            "class ModelNew(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.module = compile_module(SOURCE)\n```")
    source = extract_candidate(text)
    tree = ast.parse(source)
    assert [type(n).__name__ for n in tree.body] == ["Import", "ImportFrom", "Assign", "ClassDef"]
