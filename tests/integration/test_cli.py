"""The CLI as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autotuner.cli.main import main

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.integration


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "eval" in out and "doctor" in out


def test_broken_task_file_gets_one_clear_error(tmp_path, capsys):
    task = tmp_path / "broken.py"
    task.write_text("import torch\nclass Model(:\n")
    code = main(["eval", str(task), str(ROOT / "examples/relu_candidate.py")])
    err = capsys.readouterr().err
    assert code == 1 and "broken.py" in err and "line 2" in err


def test_missing_candidate_file(tmp_path, capsys):
    code = main(["eval", str(ROOT / "kernels/tasks/activation/relu.py"), str(tmp_path / "nope.py")])
    assert code == 1 and "nope.py" in capsys.readouterr().err


def test_static_rejection_works_without_a_gpu(tmp_path, capsys):
    bad = tmp_path / "cheat.py"
    bad.write_text("import torch\nimport torch.nn as nn\nclass ModelNew(nn.Module):\n"
                   "    def forward(self, x):\n        try:\n            return x\n        except Exception:\n"
                   "            return torch.relu(x)\n")
    db = f"sqlite:///{tmp_path / 'archive.db'}"
    code = main(["eval", str(ROOT / "kernels/tasks/activation/relu.py"), str(bad), "--json", "--db", db])
    data = json.loads(capsys.readouterr().out)
    assert code == 3 and data["verdict"] == "rejected" and data["stage"] == "static_check"
    assert "line 5" in data["reason"]
    assert any("recorded as kernel" in w for w in data["warnings"])  # rejections are kept too
    assert main(["archive", "kernels", "relu", "--db", db, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 1 and listed[0]["proposer"] == "manual"


def test_doctor_without_gpu_says_so_and_fails():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the GPU doctor test covers it")
    proc = subprocess.run([sys.executable, "-m", "autotuner.cli.main", "doctor"], capture_output=True, text=True)
    assert proc.returncode == 1 and "no CUDA GPU" in proc.stdout


@pytest.mark.gpu
def test_doctor_on_gpu_reports_peaks_and_compile_latency():
    proc = subprocess.run([sys.executable, "-m", "autotuner.cli.main", "doctor", "--json", "--compiles", "5"],
                          capture_output=True, text=True, check=True)
    report = json.loads(proc.stdout)
    assert report["peaks"]["copy_gbps"] > 100 and report["compile_ms"]["cold"]["p50_ms"] > 0


@pytest.mark.gpu
def test_eval_prints_verdict_times_speedups_and_roofline():
    proc = subprocess.run(
        [sys.executable, "-m", "autotuner.cli.main", "eval", str(ROOT / "kernels/tasks/activation/relu.py"),
         str(ROOT / "examples/relu_candidate.py"), "--no-compile-baseline"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for word in ("ACCEPTED", "candidate", "eager", "speedup", "roofline", "max abs err"):
        assert word in proc.stdout
