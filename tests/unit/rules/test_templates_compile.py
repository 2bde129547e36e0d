"""Every CUDA source the rules emit for the suite compiles to PTX for sm_80 and sm_90 (nvcc, no
GPU): each variant with its default tunables, and a few variants at the corners of their
tunable space (what optuna may pick). Sources are read from the emitted module text with
``ast``; each distinct (source, defines, arch) is compiled once, in parallel.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from autotuner.errors import CompileError
from autotuner.candidate import cuda_sources
from autotuner.runtime import nvcc_ptx, parse_kernels
from autotuner.runtime.compile import define_options

from conftest import PATHS, rel

ARCHS = ("sm_80", "sm_90")
CORNER_ARCH = "sm_90"
NAMES = sorted(rel(p) for p in PATHS)


def _corner_settings(proposal) -> list[dict]:  # noqa: ANN001
    """The tunables all at their smallest and all at their largest choices."""
    out = []
    for pick in (min, max):
        params = dict(proposal.default_params)
        params.update({k: pick(v) for k, v in proposal.params_space.items()})
        out.append(params)
    return out


def _corner_tasks(translations) -> set[str]:  # noqa: ANN001
    """One task per (region kinds, dtype): enough to reach every template at its extremes."""
    seen, picked = set(), set()
    for name, t in sorted(translations.items()):
        if not t.proposals or t.plan is None:
            continue
        key = (tuple(r.kind for r in t.plan.regions), t.plan.graph.inputs[0].dtype)
        if key not in seen:
            seen.add(key)
            picked.add(name)
    return picked


def _jobs(translations) -> dict[tuple, list[str]]:  # noqa: ANN001
    jobs: dict[tuple, list[str]] = {}
    corners = _corner_tasks(translations)
    for name, t in translations.items():
        for i, p in enumerate(t.proposals):
            # a rules proposal's parameters are its CUDA defines; a seed's are its constructor's
            # arguments (0 there may mean "chosen from the shape" in Python), so its source
            # compiles with its own #ifndef defaults
            settings = [(p.default_params if p.proposer != "seed" else {}, ARCHS)]
            if name in corners and i == 0:
                settings += [(s, (CORNER_ARCH,)) for s in _corner_settings(p)]
            for params, archs in settings:
                for src in cuda_sources(p.source):
                    for arch in archs:
                        key = (src, define_options(params), arch)
                        jobs.setdefault(key, []).append(f"{name} [{p.variant}] {params}")
    return jobs


def _compile(src: str, options: tuple[str, ...], arch: str) -> str | None:
    try:
        ptx = nvcc_ptx(src, arch, options=("-std=c++17", *options))
    except CompileError as exc:
        return str(exc)[:2000]
    missing = [k for k in parse_kernels(src) if f".entry {k}" not in ptx]
    return f"kernels missing from the PTX: {missing}" if missing else None


@pytest.fixture(scope="session")
def compiled(translations):  # noqa: ANN001, ANN201 - {(source, options, arch): error or None}
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is not on PATH: install the CUDA toolkit to check the rules' CUDA on CPU")
    jobs = _jobs(translations)
    with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
        results = dict(zip(jobs, pool.map(lambda key: _compile(*key), jobs)))
    return {key: (results[key], jobs[key]) for key in jobs}


@pytest.mark.parametrize("name", NAMES)
def test_task_sources_compile(name: str, compiled) -> None:  # noqa: ANN001
    failures = [f"{arch}: {where[0]}: {error}" for (src, opts, arch), (error, where) in compiled.items()
                if error and any(w.startswith(name + " ") for w in where)]
    assert not failures, "\n".join(failures)


def test_every_arch_and_variant_was_compiled(compiled, translations) -> None:  # noqa: ANN001
    archs = {arch for (_, _, arch) in compiled}
    assert archs == set(ARCHS)
    n_variants = sum(len(t.proposals) for t in translations.values())
    labelled = {w.split(" {")[0] for _, where in compiled.values() for w in where}
    assert len(labelled) == n_variants
