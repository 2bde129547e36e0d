"""Checks every rules test file runs on a set of translated cases: every structural variant on
the CPU emulator, every CUDA source through nvcc for sm_90."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import cuda_emu
from autotuner.candidate import cuda_sources
from autotuner.errors import CompileError
from autotuner.runtime import nvcc_ptx, parse_kernels
from autotuner.runtime.compile import define_options


def emulate_variants(translations: dict[str, tuple[Path, Any]], tmp_path: Path,
                     pick: Callable[[Any], bool] = lambda p: True,
                     params: Callable[[Any], dict] | None = None) -> tuple[dict[str, str], list, list[str]]:
    """Run the proposals ``pick`` accepts on the CPU emulator, each at ``params(proposal)``
    (default: its defaults, BLOCK at most 128): ({'case [variant]': why} for each that does not
    match PyTorch, every report, every label)."""
    specs, names = [], []
    for name, (task, t) in translations.items():
        for p in t.proposals:
            if not pick(p):
                continue
            cand = tmp_path / f"{name}__{p.variant.replace('/', '_')}.py"
            cand.write_text(p.source)
            if params is not None:
                setting = params(p)
            else:
                setting = dict(p.default_params)
                if "BLOCK" in setting:
                    setting["BLOCK"] = min(setting["BLOCK"], 128)
            specs.append((task, cand, setting, 3_000_000))
            names.append(f"{name} [{p.variant}]")
    reports = cuda_emu.run_candidates(specs, workers=max(2, os.cpu_count() or 2))
    return {n: r["reason"] for n, r in zip(names, reports) if not r["ok"]}, reports, names


def emulate_every_variant(translations: dict[str, tuple[Path, Any]], tmp_path: Path) -> tuple[dict[str, str], list]:
    """({'case [variant]': why} for each variant that does not match PyTorch, every report)."""
    bad, reports, _ = emulate_variants(translations, tmp_path)
    return bad, reports


def _nvcc(src: str, params: dict) -> str | None:
    try:
        ptx = nvcc_ptx(src, "sm_90", options=("-std=c++17", *define_options(params)))
    except CompileError as exc:
        return str(exc)[:2000]
    missing = [k for k in parse_kernels(src) if f".entry {k}" not in ptx]
    return f"kernels missing from the PTX: {missing}" if missing else None


def nvcc_errors(translations: dict[str, tuple[Path, Any]]) -> dict[str, str]:
    """{'case [variant]': error} for each source (at its default defines) nvcc refuses."""
    jobs = {(src, tuple(sorted(p.default_params.items()))): f"{name} [{p.variant}]"
            for name, (_, t) in translations.items() for p in t.proposals for src in cuda_sources(p.source)}
    with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
        errors = dict(zip(jobs.values(), pool.map(lambda key: _nvcc(key[0], dict(key[1])), jobs)))
    return {k: e for k, e in errors.items() if e}
