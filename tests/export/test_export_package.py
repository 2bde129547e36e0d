"""``autotuner export``: a package of torch.library ops built from archive kernels, installed
into a fresh virtual environment and tested there (the reference path on CPU)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from export_support import GPU, REPO, AcceptingVerifier

import autotuner
from autotuner.errors import ExportError
from autotuner.export import build_wheel, export_package
from autotuner.export.build import rewrite_imports
from autotuner.export.introspect import introspect
from autotuner.tasks import load_task

TASKS = ["rmsnorm", "silu_mul_bf16", "rope_bf16", "residual_rmsnorm_bf16"]


def test_schema_of_a_task_with_weights_and_two_outputs() -> None:
    schema = introspect(load_task(REPO / "kernels/tasks/decode/residual_rmsnorm_bf16.py"))
    assert schema.op == "residual_rmsnorm_bf16"
    assert schema.python_args() == ("x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, "
                                    "hidden_size: int, eps: float = 1e-06")
    assert schema.returns() == "tuple[torch.Tensor, torch.Tensor]"
    assert [a.rank for a in schema.inputs] == [2, 2]
    assert schema.test_shape == {"tokens": 1, "hidden_size": 4097}  # the smallest shape


def test_imports_are_rewritten_and_other_autotuner_imports_refused() -> None:
    src = "import torch\nfrom autotuner.runtime import compile_module\n"
    assert rewrite_imports(src, "pkg", "k") == "import torch\nfrom pkg._runtime import compile_module\n"
    with pytest.raises(ExportError, match="autotuner.evaluator"):
        rewrite_imports("from autotuner.evaluator import evaluate\n", "pkg", "k")


def test_export_writes_the_package_with_provenance(archive, four_ops, tmp_path: Path) -> None:
    verifier = AcceptingVerifier()
    out = export_package(archive, TASKS, tmp_path / "pkg", "tuned_ops", gpu=GPU, verifier=verifier)
    pkg = out / "tuned_ops"
    for rel in ("pyproject.toml", "README.md", "bench.py", "tests/test_ops.py", "tests/conftest.py",
                "tuned_ops/__init__.py", "tuned_ops/_ops.py", "tuned_ops/_runtime.py", "tuned_ops/metadata.json"):
        assert (out / rel).is_file(), rel
    assert len(verifier.calls) == 4  # every kernel re-verified before it was written
    meta = json.loads((pkg / "metadata.json").read_text())
    assert meta["namespace"] == "tuned_ops" and meta["gpu"] == GPU
    assert meta["harness_version"] == autotuner.HARNESS_VERSION
    for op, kernel_id in four_ops.items():
        m = meta["ops"][op]
        assert m["kernel_id"] == kernel_id and m["gpus"] == [GPU]
        assert len(m["task_hash"]) == 64 and m["evaluation_id"] and m["speedup_eager"] == pytest.approx(2.0)
        assert m["reverification"]["reverified"] is True and m["reverification"]["evaluation_id"]
        assert m["evaluated_with"]["gpu_name"] == GPU and m["evaluated_with"]["torch_version"]
        source = (pkg / "kernels" / f"{op}.py").read_text()
        assert "from autotuner" not in source and "import autotuner" not in source
        assert "from tuned_ops._runtime import compile_module" in source
        task_text = (pkg / "tasks" / f"{op}.py").read_text()
        assert hashlib.sha256(task_text.encode()).hexdigest() == m["task_hash"]  # the task it was verified against
    assert meta["ops"]["rmsnorm"]["params"] == {"BLOCK": 256}
    assert 'custom_op("tuned_ops::rope_bf16"' in (pkg / "__init__.py").read_text()


def test_reverification_is_required(archive, four_ops, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="re-verification needs a GPU"):
        export_package(archive, ["silu_mul_bf16"], tmp_path / "a", "ops", gpu=GPU)  # the real evaluator, on CPU
    out = export_package(archive, ["silu_mul_bf16"], tmp_path / "b", "ops", gpu=GPU, skip_reverify=True)
    meta = json.loads((out / "ops" / "metadata.json").read_text())
    assert meta["ops"]["silu_mul_bf16"]["reverification"] == {"reverified": False,
                                                               "reason": "skipped on request (--skip-reverify)"}


def test_refusals_say_why(archive, record, tmp_path: Path) -> None:
    record("decode/rope_bf16.py", "x = 1\n", harness="0")
    with pytest.raises(ExportError, match="no verified, current kernel for task 'rope_bf16'"):
        export_package(archive, ["rope_bf16"], tmp_path / "a", "ops", gpu=GPU, verifier=AcceptingVerifier())
    with pytest.raises(ExportError, match="no task 'nope'"):
        export_package(archive, ["nope"], tmp_path / "a", "ops", gpu=GPU, verifier=AcceptingVerifier())
    with pytest.raises(ExportError, match="lowercase Python identifier"):
        export_package(archive, ["rope_bf16"], tmp_path / "a", "Bad-Name", gpu=GPU)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(ExportError, match="not empty"):
        export_package(archive, ["rope_bf16"], tmp_path / "full", "ops", gpu=GPU)


def test_cli_export(db_url, four_ops, tmp_path: Path, capsys) -> None:
    from autotuner.cli.main import main

    code = main(["export", "--task", "silu_mul_bf16", "rope_bf16", "--out", str(tmp_path / "pkg"), "--name", "my_ops",
                 "--db", db_url, "--gpu-name", GPU, "--skip-reverify"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "exported 2 ops" in out and "torch.ops.my_ops" in out and "NOT re-verified" in out


def _venv(tmp_path: Path) -> Path:
    """A fresh virtual environment that sees this interpreter's packages (torch, CuPy), not ours.

    ``--system-site-packages`` alone reaches the base interpreter's packages; where this
    interpreter is itself a virtual environment (torch installed there), a ``.pth`` file adds
    its site-packages too.
    """
    import site

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    own = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         check=True, capture_output=True, text=True).stdout.strip()
    (Path(own) / "_parent_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_its_tests_pass(archive, four_ops, tmp_path: Path) -> None:
    out = export_package(archive, TASKS, tmp_path / "pkg", "tuned_ops", gpu=GPU, verifier=AcceptingVerifier())
    wheel = build_wheel(out)
    assert wheel.name.startswith("tuned_ops-0.1.0") and not (out / "build").exists()
    python = _venv(tmp_path)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    elsewhere = tmp_path / "elsewhere"  # not the package source folder: the installed copy is imported
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    probe = subprocess.run(
        [str(python), "-c", "import sys, torch, tuned_ops; x = torch.randn(3, 8); w = torch.ones(8); "
         "torch.ops.tuned_ops.rmsnorm(x, w, 8); print(tuned_ops.__file__); "
         "print(any(m == 'autotuner' or m.startswith('autotuner.') for m in sys.modules))"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    where, imported_autotuner = probe.stdout.split()
    assert str(tmp_path / "venv") in where and imported_autotuner == "False"
    run = subprocess.run([str(python), "-m", "pytest", str(out / "tests"), "-q", "-p", "no:cacheprovider"],
                         cwd=elsewhere, env=env, capture_output=True, text=True)
    print(run.stdout[-3000:])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "16 passed" in run.stdout


@pytest.mark.gpu
@pytest.mark.slow
def test_exported_kernels_run_on_the_gpu(archive, tmp_path: Path) -> None:
    """Real verdicts (the evaluator on this GPU), a real export, the package's GPU tests."""
    from archive import KernelSpec
    from autotuner.evaluator import EvalConfig, evaluate
    from export_support import rules_source

    cases = [("normalization/rmsnorm.py", (REPO / "tests/candidates/rmsnorm.py").read_text()),
             ("decode/silu_mul_bf16.py", (REPO / "tests/candidates/silu_mul_bf16.py").read_text()),
             ("decode/rope_bf16.py", rules_source("decode/rope_bf16.py")),
             ("decode/residual_rmsnorm_bf16.py", rules_source("decode/residual_rmsnorm_bf16.py"))]
    for rel, source in cases:
        path = tmp_path / Path(rel).name
        path.write_text(source)
        task = load_task(REPO / "kernels/tasks" / rel)
        result = evaluate(task.path, path, config=EvalConfig(baselines=False))
        assert result.accepted, f"{rel}: {result.reason}"
        archive.record(task, KernelSpec(source), result)
    out = export_package(archive, TASKS, tmp_path / "pkg", "tuned_ops")  # this GPU, re-verified for real
    python = _venv(tmp_path)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(build_wheel(out))],
                   check=True)
    run = subprocess.run([str(python), "-m", "pytest", str(out / "tests"), "-q", "-p", "no:cacheprovider", "-rs"],
                         cwd=tmp_path, capture_output=True, text=True)
    print(run.stdout[-4000:])
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "32 passed" in run.stdout  # CPU and GPU tests alike, none skipped
    bench = subprocess.run([str(python), str(out / "bench.py"), "--calls", "10"], cwd=tmp_path, capture_output=True,
                           text=True)
    print(bench.stdout)
    assert bench.returncode == 0, bench.stderr[-2000:]
