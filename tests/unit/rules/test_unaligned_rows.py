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


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
def test_the_vector_path_alone_takes_half_the_registers(tmp_path) -> None:
    """A row mode's kernel with ``vec`` fixed at 1 (``_v``), launched where every row is aligned:
    the element-by-element paths for unaligned rows set the general kernel's registers. bf16
    softmax at 1024 threads, 8-element vectors: two blocks an SM fit (32 registers or fewer)
    only with the vector path alone (nvcc 13, sm_90, -ftz)."""
    t = translate(load_task(suite_dir() / "softmax/softmax_bf16.py"))
    p = next(p for p in t.proposals if p.variant == "row/block")
    assert "rules_row0_block_v" in p.source and "self.rules_lean0 = " in p.source
    (src,) = cuda_sources(p.source)
    cu = tmp_path / "k.cu"
    cu.write_text(src)
    params = dict(p.default_params, BLOCK=1024, ITEMS=1, VEC=8)
    proc = subprocess.run(["nvcc", "-std=c++17", "-arch=sm_90", "-cubin", "-ftz=true", "-Xptxas", "-v",
                           *define_options(params), str(cu), "-o", str(tmp_path / "k.cubin")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    regs = {m.group(1): int(m.group(2)) for m in re.finditer(
        r"Compiling entry function '(\w+)'.*?Used (\d+) registers", proc.stderr, re.S)}
    assert regs["rules_row0_block_v"] <= 32 < regs["rules_row0_block"], regs


def test_the_vector_kernel_is_kept_only_where_it_takes_no_more_registers() -> None:
    from types import SimpleNamespace

    from evolution.proposers.rules.codegen import PY_HELPERS

    scope: dict = {}
    exec(PY_HELPERS, scope)  # the helper as a candidate defines it
    rules_lean = scope["rules_lean"]

    def module(lean, full):  # noqa: ANN001, ANN202
        regs = {"k_v": lean, "k": full}
        return SimpleNamespace(kernel=lambda name: SimpleNamespace(
            function=SimpleNamespace(num_regs=regs[name]) if regs[name] is not None else SimpleNamespace()))

    assert rules_lean(module(27, 60), "k") and rules_lean(module(47, 47), "k")
    assert not rules_lean(module(56, 47), "k")
    assert rules_lean(module(None, None), "k")  # an emulator: the count is unknown


@pytest.mark.skipif(cuda_emu.compiler_missing() is not None, reason=str(cuda_emu.compiler_missing()))
def test_aligned_rows_launch_the_vector_kernel_and_others_the_general_one(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import types

    import torch

    import autotuner.runtime
    from autotuner.candidate import import_candidate

    cases = {"softmax_rows": dict(body="return torch.softmax(x, dim=-1)", inputs="[torch.randn(5, 2048)]")}
    task, t = translate_cases(tmp_path, cases)["softmax_rows"]
    p = next(p for p in t.proposals if p.variant == "row/block")
    cand = tmp_path / "cand.py"
    cand.write_text(p.source)
    monkeypatch.setattr(autotuner.runtime, "compile_module", cuda_emu.compile_module)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda *a, **k: types.SimpleNamespace(
        multi_processor_count=2, major=9, minor=0, shared_memory_per_multiprocessor=228 * 1024))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    net = import_candidate(cand).ModelNew(**dict(p.default_params, BLOCK=64))
    for cols, expected in ((2048, "rules_row0_block_v"), (2049, "rules_row0_block")):
        x = torch.randn(5, cols)
        cuda_emu.LAUNCHED.clear()
        with torch.no_grad():
            out = net(x)
        assert cuda_emu.LAUNCHED == {expected}, cuda_emu.LAUNCHED
        torch.testing.assert_close(out, torch.softmax(x, dim=-1), atol=1e-5, rtol=1e-4)
