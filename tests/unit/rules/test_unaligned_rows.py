"""Rows of any length by whole vectors (``vec == 2`` in the plain row kernels: a scalar head
up to the first aligned element, 16-byte vectors, a scalar tail), dead reductions pruned
(``torch.max(x, dim)[0]`` traces an argmax nobody reads), and the column kernels' register
budget (the cached column softmax keeps two blocks per SM without spilling)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

import cuda_emu
from autotuner.candidate import cuda_sources
from autotuner.runtime.compile import define_options
from autotuner.tasks import load_task, suite_dir
from evolution.proposers.rules import translate
from test_extra_tasks import translate_cases

CASES = {
    "max_values_odd": dict(body="return torch.max(x, dim=2)[0]", inputs="[torch.randn(3, 37, 1001)]"),
    "argmax_odd": dict(body="return torch.argmax(x, dim=-1)", inputs="[torch.randn(41, 1003)]"),
    "sum_odd_short": dict(body="return x.sum(dim=-1)", inputs="[torch.randn(45, 13)]"),
    "softmax_odd": dict(body="return torch.softmax(x, dim=-1)", inputs="[torch.randn(23, 2049) * 3]"),
    "log_softmax_odd_warp": dict(body="return F.log_softmax(x, dim=-1)", inputs="[torch.randn(67, 301)]"),
}


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):  # noqa: ANN001, ANN201
    tmp = tmp_path_factory.mktemp("unaligned_rows")
    return translate_cases(tmp, CASES)


def test_unused_argmax_of_max_values_is_pruned() -> None:
    for name in ("reduction/max_dim1_3d", "reduction/max_dim2_3d"):
        t = translate(load_task(suite_dir() / f"{name}.py"))
        for p in t.proposals:
            assert "rules_argbetter(a" not in p.source and "av9" not in p.source, (name, p.variant)


def test_plain_row_kernels_take_unaligned_rows(tasks) -> None:  # noqa: ANN001
    p = tasks["max_values_odd"][1].proposals[0]
    assert p.variant in ("row/block", "row/warp")
    assert "vec0 = 1 if vec0 else 2 if" in p.source and "if (vec == 2) {" in p.source
    t = translate(load_task(suite_dir() / "normalization/layernorm.py"))  # weights along the row: no
    assert all("vec == 2" not in p.source for p in t.proposals)


@pytest.mark.slow
@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_unaligned_rows_match_reference_on_cpu_emulator(tasks, tmp_path) -> None:  # noqa: ANN001
    """Every row starts at a different misalignment (odd D); ITEMS 1 and 2, block and warp."""
    specs, labels = [], []
    for name, (task, t) in tasks.items():
        for p in t.proposals:
            if p.variant not in ("row/block", "row/warp"):
                continue
            cand = tmp_path / f"{name}_{p.variant.replace('/', '_')}.py"
            cand.write_text(p.source)
            for items in (1, 2):
                specs.append((task, cand, dict(p.default_params, BLOCK=64, ITEMS=items), 3_000_000))
                labels.append(f"{name} {p.variant} ITEMS={items}")
    assert len(specs) >= 16
    reports = cuda_emu.run_candidates(specs, workers=max(2, os.cpu_count() or 2))
    bad = {n: r["reason"] for n, r in zip(labels, reports) if not r["ok"]}
    assert not bad


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
def test_cached_column_softmax_keeps_two_blocks_per_sm(tmp_path) -> None:
    t = translate(load_task(suite_dir() / "softmax/softmax_dim1.py"))
    p = t.proposals[0]
    assert p.variant == "col/colsplit-cached-twopass" and p.default_params["OCC"] == 50  # cached: two passes over registers
    (src,) = cuda_sources(p.source)
    cu = tmp_path / "k.cu"
    cu.write_text(src)
    proc = subprocess.run(["nvcc", "-std=c++17", "-arch=sm_90", "-cubin", "--resource-usage",
                           *define_options(p.default_params), str(cu), "-o", str(tmp_path / "k.cubin")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = proc.stderr.split("Function properties for rules_col0_colsplit_cached")[1]
    assert re.search(r"0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads", report)
    regs = int(re.search(r"Used (\d+) registers", report).group(1))
    assert regs * p.default_params["BLOCK"] * 2 <= 65536, regs
