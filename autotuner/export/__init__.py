"""Export: the archive's verified kernels as a pip-installable package of torch.library ops.

    from archive import Archive
    from autotuner.export import export_package, build_wheel
    with Archive.open() as archive:
        out = export_package(archive, ["rmsnorm_bf16", "silu_mul_bf16"], "dist/tuned_ops", "tuned_ops")
    wheel = build_wheel(out)          # pip wheel --no-deps --no-build-isolation

Each kernel is re-verified by the evaluator before it is written (VERIFICATION.md point 19).
The package needs torch (and CuPy for the kernels), never the autotuner; see ``build`` for
its layout.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from autotuner.errors import ExportError
from autotuner.export.build import check_name, collect, metadata, write_package

__all__ = ["ExportError", "build_wheel", "export_package"]

log = logging.getLogger(__name__)


def export_package(archive: Any, tasks: list[str], out: str | Path, name: str = "tuned_kernels", *,
                   gpu: str | None = None, verifier: Any = None, skip_reverify: bool = False, record: bool = True,
                   force: bool = False, version: str = "0.1.0") -> Path:
    """Write the package for ``tasks`` (names, ids or hash prefixes) into ``out``; returns ``out``."""
    from autotuner.deploy.resolve import current_gpu

    check_name(name)
    if not tasks:
        raise ExportError("name at least one task to export (--task NAME ...)")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ExportError(f"{out} exists and is not empty; choose another --out or pass --force")
        shutil.rmtree(out)
    gpu = gpu or current_gpu()
    if gpu is None:
        raise ExportError("no CUDA GPU is visible: name the GPU whose kernels to export with --gpu "
                          "(re-verification still needs one, or --skip-reverify)")
    ops = collect(archive, tasks, name, gpu, verifier=verifier, skip_reverify=skip_reverify, record=record)
    meta = metadata(ops, name, archive.url, gpu)
    write_package(ops, out, name, meta, version=version)
    log.info("exported %d ops to %s", len(ops), out)
    return out


def build_wheel(package_dir: str | Path, dist: str | Path | None = None) -> Path:
    """``pip wheel --no-deps --no-build-isolation`` (no network); returns the wheel's path."""
    import tempfile

    package_dir = Path(package_dir)
    dist = Path(dist or package_dir / "dist").resolve()
    with tempfile.TemporaryDirectory(prefix="autotuner-wheel-") as tmp:  # setuptools writes build/ beside the source
        src = Path(tmp) / package_dir.name
        shutil.copytree(package_dir, src, ignore=shutil.ignore_patterns("dist", "build", "*.egg-info", "__pycache__"))
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ExportError(f"building the wheel failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
    wheels = sorted(dist.glob("*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        raise ExportError(f"pip wheel made no wheel in {dist}")
    return wheels[-1]
