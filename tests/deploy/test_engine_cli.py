"""``autotuner deploy`` on CPU: the slot report with reasons; bench and profile refuse without a GPU."""

from __future__ import annotations

import json

import pytest
from engine_support import GPU
from engine_cpu_kernels import SOURCES

from autotuner.cli.main import main


def test_deploy_slots_reports_reasons(archive, record, capsys, tmp_path) -> None:
    kid = record("silu_mul", SOURCES["silu_mul"])
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    assert main(["deploy", "slots", "--db", url, "--gpu-name", GPU, "--model", "llama-3.2-1b", "qwen2.5-1.5b"]) == 0
    out = capsys.readouterr().out
    assert "llama-3.2-1b (bfloat16)" in out and "qwen2.5-1.5b (bfloat16)" in out
    assert f"kernel {kid}: re-verification needs a GPU" in out
    assert "no kernel for task rope_bf16 in the archive" in out
    assert main(["deploy", "slots", "--db", url, "--gpu-name", GPU, "--json"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["model"] == "llama-3.2-1b" and set(data["slots"]) >= {"rmsnorm", "rope", "silu_mul"}
    # the opt-in slot: off, and why, unless asked for; asked for, it is resolved like the others
    assert data["slots"]["attention_o_residual"].startswith("pytorch (off by default")
    assert main(["deploy", "slots", "--db", url, "--gpu-name", GPU, "--json", "--with-slot", "attention_o_residual"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["slots"]["attention_o_residual"] == "pytorch (no kernel for task attention_o_residual_bf16 in the archive)"


def test_deploy_bench_needs_a_gpu(capsys, tmp_path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the refusal is what is under test")
    assert main(["deploy", "bench", "--db", f"sqlite:///{tmp_path / 'a.db'}"]) == 1
    assert "no CUDA GPU" in capsys.readouterr().err


def test_deploy_profile_needs_a_gpu(capsys, tmp_path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the refusal is what is under test")
    assert main(["deploy", "profile", "--db", f"sqlite:///{tmp_path / 'a.db'}", "--json"]) == 1
    assert "no CUDA GPU" in capsys.readouterr().err
