"""Every CUDA source in every candidate (red-team and correct) compiles to PTX with nvcc for
sm_80 and sm_90, without a GPU. Sources are read with ast, never by importing the file.

Broken tricks must still be valid CUDA: the hang and the illegal address happen at run time.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import redteam_lib as rt  # noqa: E402

from autotuner.runtime import nvcc_ptx, parse_kernels  # noqa: E402

ARCHS = ("sm_80", "sm_90")
FILES = [c.path for c in rt.adversarial_candidates() + rt.correct_candidates()]
SOURCES = [(path, name, src) for path in FILES for name, src in rt.cuda_sources(path)]


def _id(item) -> str:
    path, name, _ = item
    return f"{path.parent.name}/{path.stem}:{name}"


def test_every_candidate_has_cuda() -> None:
    """Every candidate carries CUDA C this test can compile, except Triton ones (Python kernels)."""
    from autotuner.candidate import triton_kernel_names

    with_source = {path for path, _, _ in SOURCES}
    missing = [p.name for p in FILES if p not in with_source and not triton_kernel_names(p.read_text())]
    assert not missing, f"candidates without a module-level CUDA source string: {missing}"


@pytest.mark.parametrize("item", SOURCES, ids=_id)
def test_kernels_are_extern_c(item) -> None:
    path, name, src = item
    assert 'extern "C"' in src, f"{path.name}:{name}: kernels should be extern \"C\" __global__"
    assert parse_kernels(src), f"{path.name}:{name}: no kernel signature found"


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("item", SOURCES, ids=_id)
def test_compiles_to_ptx(item, arch: str) -> None:
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is not on PATH: install the CUDA toolkit to check CUDA sources on CPU")
    path, name, src = item
    ptx = nvcc_ptx(src, arch)
    for kernel in parse_kernels(src):
        assert f".entry {kernel}" in ptx, f"{path.name}:{name}: kernel {kernel} missing from the PTX"
