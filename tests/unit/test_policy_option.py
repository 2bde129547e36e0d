"""``--policy`` for task files without POLICY, ``--no-static-check`` for red-team runs (CPU)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from autotuner.cli.eval_cmd import add_trust_options, trust_overrides
from autotuner.errors import TaskLoadError
from autotuner.evaluator.eval_config import EvalConfig
from autotuner.tasks import load_task

ROOT = Path(__file__).resolve().parents[2]
KERNELBENCH_STYLE = '''import torch
import torch.nn as nn

class Model(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.linear = nn.Linear(n, n)

    def forward(self, x):
        return torch.relu(self.linear(x))

def get_inputs():
    return [torch.randn(8, 16)]

def get_init_inputs():
    return [16]
'''


def test_kernelbench_file_is_strict_unless_told(tmp_path):
    path = tmp_path / "level2_gemm_relu.py"
    path.write_text(KERNELBENCH_STYLE)
    assert load_task(path).policy == "strict"
    assert load_task(path, "hybrid").policy == "hybrid"


def test_a_files_own_policy_wins():
    declared = ROOT / "tests" / "adversarial" / "tasks" / "relu.py"  # POLICY = "strict"
    assert load_task(declared, "hybrid").policy == "strict"


def test_unknown_policy_is_refused(tmp_path):
    path = tmp_path / "t.py"
    path.write_text(KERNELBENCH_STYLE)
    with pytest.raises(TaskLoadError, match="policy"):
        load_task(path, "lenient")
    with pytest.raises(ValueError, match="policy"):
        EvalConfig(policy="lenient")


@pytest.mark.parametrize("command", ["eval", "tune", "bench"])
def test_every_command_takes_the_options(command):
    from autotuner.cli.main import build_parser

    argv = {"eval": ["eval", "t.py", "c.py"], "tune": ["tune", "t.py"], "bench": ["bench", "suite", "t.py"]}[command]
    args = build_parser().parse_args([*argv, "--policy", "hybrid", "--no-static-check"])
    assert trust_overrides(args) == {"policy": "hybrid", "static_check": False}
    assert EvalConfig(**trust_overrides(args)).policy == "hybrid"


def test_no_options_no_overrides():
    parser = argparse.ArgumentParser()
    add_trust_options(parser)
    assert trust_overrides(parser.parse_args([])) == {}
