"""Scaled-dot-product attention as a flash kernel (kern_flash, flash_attention.cu): which source
forms are recognized (causal offset, scale), emulated runs on small awkward shapes (the bf16
path's mma / ldmatrix fragments through their portable fallbacks), and nvcc's resource report
for head dims 64 / 128 / 192 / 256 (no spills; fp32 in 48 KB of static shared memory, bf16 in
dynamic shared memory that every sm_80+ GPU can give a block)."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from autotuner.candidate import cuda_sources
from autotuner.tasks import load_task
from evolution.proposers.rules import translate
from evolution.proposers.rules.kern_flash import DYN_SMEM_LIMIT, SMEM_LIMIT, _space, smem_bytes
from evolution.proposers.rules.lower import lower
from evolution.proposers.rules.plan import make_plan
from evolution.proposers.rules.trace import trace_task

import cuda_emu

FORMS = {
    "sdpa": ("F.scaled_dot_product_attention(q, k, v)", False, 0),
    "sdpa_causal": ("F.scaled_dot_product_attention(q, k, v, is_causal=True)", True, 0),
    "sdpa_scale": ("F.scaled_dot_product_attention(q, k, v, scale=0.3)", False, 0),
    "explicit": ("torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v", False, 0),
    "masked_fill": ("s = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5\n"
                    "        m = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()\n"
                    "        return torch.softmax(s.masked_fill(~m, float('-inf')), dim=-1) @ v", True, 0),
    "triu": ("s = q @ k.transpose(-2, -1)\n"
             "        m = torch.triu(torch.ones(q.shape[-2], k.shape[-2], device=q.device), diagonal=1).bool()\n"
             "        return torch.softmax(s.masked_fill(m, float('-inf')) * 0.125, dim=-1) @ v", True, 0),
    "tril_eq0_offset": ("s = q @ k.transpose(-2, -1) * 0.125\n"
                        "        m = torch.tril(torch.ones(q.shape[-2], k.shape[-2], device=q.device), diagonal=2)\n"
                        "        return F.softmax(s.masked_fill(m == 0, float('-inf')), dim=-1) @ v", True, 2),
}


def _task(tmp_path: Path, body: str, dtype: str, sq: int = 33, sk: int = 45, d: int = 64,
          shapes: str = "[]") -> Path:
    body = body if body.startswith("s = ") else "return " + body
    path = tmp_path / "task.py"
    path.write_text(
        "import math\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n"
        "class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n\n"
        f"    def forward(self, q, k, v):\n        {body}\n\n\n"
        f"sq, sk, d = {sq}, {sk}, {d}\n\n\n"
        "def get_inputs():\n"
        "    return [torch.randn(2, 3, sq, d), torch.randn(2, 3, sk, d), torch.randn(2, 3, sk, d)]\n\n\n"
        "def get_init_inputs():\n    return []\n\n\n"
        f'DTYPE = "{dtype}"\nPOLICY = "strict"\nFAMILY = "attention"\nSHAPES = {shapes}\n'
    )
    return path


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("form", sorted(FORMS))
def test_attention_forms_become_one_flash_region(form: str, dtype: str, tmp_path: Path) -> None:
    body, causal, off = FORMS[form]
    task = load_task(_task(tmp_path, body, dtype))
    plan = make_plan(lower(trace_task(task), task.policy))
    assert [r.kind for r in plan.regions] == ["flash"], plan.describe()
    node = plan.regions[0].nodes[0]
    assert node.args["causal"] == causal and node.args["off"] == off
    assert node.dtype == dtype and node.args["q"].op == "input"
    scale = 0.3 if form == "sdpa_scale" else 0.125
    assert math.isclose(node.args["scale"], scale, rel_tol=1e-5)
    assert node.args["scale_is_rsqrt_d"] == (form != "sdpa_scale")


def test_strictly_lower_mask_is_causal_with_offset_minus_one(tmp_path: Path) -> None:
    body = ("s = q @ k.transpose(-2, -1)\n"
            "        m = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).triu()\n"
            "        return torch.softmax(s.masked_fill(m, float('-inf')), dim=-1) @ v")  # keeps j < i
    task = load_task(_task(tmp_path, body, "float32"))
    plan = make_plan(lower(trace_task(task), task.policy))
    node = plan.regions[0].nodes[0]
    assert node.op == "flash" and node.args["causal"] and node.args["off"] == -1


def test_a_data_dependent_mask_is_not_flash(tmp_path: Path) -> None:
    body = ("s = q @ k.transpose(-2, -1)\n"
            "        return torch.softmax(s.masked_fill(s > 3, float('-inf')), dim=-1) @ v")
    task = load_task(_task(tmp_path, body, "float32"))
    result = translate(task)
    assert result.plan is None or not any(r.kind == "flash" for r in result.plan.regions)


def test_tile_spaces_fit_shared_memory() -> None:
    for mma in (True, False):
        for hd in (16, 48, 64, 80, 128, 192, 256):
            space = _space(mma, hd)
            worst = smem_bytes(mma, max(space["WARPS"]), max(space["BLOCK_N"]), hd, max(space.get("MTILES", [1])))
            assert worst <= (DYN_SMEM_LIMIT if mma else SMEM_LIMIT), (mma, hd)


@pytest.mark.parametrize("hd", [48, 64, 128, 256])
def test_candidate_asks_for_the_shared_memory_its_tiles_take(hd: int, tmp_path: Path) -> None:
    """The candidate's launch size (Python) against smem_bytes, the template's _SMEM mirror, on
    every setting of the space and two m-tiles (q apart from v's buffer, or not in registers)."""
    task = load_task(_task(tmp_path, FORMS["sdpa"][0], "bfloat16", d=hd))
    source = translate(task).proposals[0].source
    line = next(s.strip() for s in source.splitlines() if s.strip().startswith("self.rules_flash_smem0 = "))
    expr = line.split("=", 1)[1]
    space = _space(True, hd)
    for warps in space["WARPS"]:
        for mtiles in sorted(set(space["MTILES"]) | {2}):
            env = {"WARPS": warps, "MTILES": mtiles, "BLOCK_N": space["BLOCK_N"][0], "HEAD_DIM": hd}
            assert eval(expr, {}, env) == smem_bytes(True, warps, space["BLOCK_N"][0], hd, mtiles), env
    assert "max_dynamic_shared_size_bytes = self.rules_flash_smem0" in source
    assert "shared_mem=self.rules_flash_smem0" in source


# Emulated: small shapes with seq 1, 17, 64 + odd, seq_q != seq_k, head_dim 48, 64, 72, 80, 128
# and 256 (48 and 80: 16-byte chunks per row that do not divide the block's threads).
EMU = [
    ("sdpa", "bfloat16", 1, 17, 64),
    ("sdpa_causal", "bfloat16", 67, 67, 128),
    ("sdpa_causal", "bfloat16", 17, 70, 64),
    ("tril_eq0_offset", "float32", 33, 20, 64),
    ("explicit", "float32", 67, 17, 128),
    ("masked_fill", "float32", 70, 33, 64),
    ("sdpa_causal", "float32", 1, 17, 64),
    ("sdpa_causal", "bfloat16", 40, 40, 256),
    ("sdpa", "bfloat16", 33, 70, 72),  # D < HEAD_DIM (80), 16-byte rows: the checked copy of every chunk
    ("sdpa", "bfloat16", 20, 150, 48),  # one full chunk and a partial one; 6 chunks per row
]


@pytest.mark.slow
def test_flash_candidates_match_reference_on_cpu_emulator(tmp_path: Path) -> None:
    reason = cuda_emu.compiler_missing()
    if reason:
        pytest.skip(reason)
    tasks = {}
    for i, (form, dtype, sq, sk, d) in enumerate(EMU):
        sub = tmp_path / f"t{i}"
        sub.mkdir()
        tasks[f"{form} {dtype} sq={sq} sk={sk} d={d}"] = _task(sub, FORMS[form][0], dtype, sq, sk, d)
    _emulate(tasks)


@pytest.mark.slow
def test_two_m_tiles_a_warp_match_reference_on_cpu_emulator(tmp_path: Path) -> None:
    """MTILES 2 (searched for head dim 64): q from shared memory, each k / v fragment feeding two
    m-tiles; causal and not, a partial last chunk, 2 and 4 warps."""
    reason = cuda_emu.compiler_missing()
    if reason:
        pytest.skip(reason)
    jobs, labels = [], []
    for i, (form, sq, sk) in enumerate([("sdpa", 33, 150), ("sdpa_causal", 70, 70), ("sdpa_causal", 17, 140)]):
        sub = tmp_path / f"t{i}"
        sub.mkdir()
        path = _task(sub, FORMS[form][0], "bfloat16", sq, sk, 64)
        proposal = translate(load_task(path)).proposals[0]
        assert proposal.params_space["MTILES"] == [1, 2]
        cand = sub / "cand.py"
        cand.write_text(proposal.source)
        for warps in (2, 4):
            jobs.append((path, cand, dict(proposal.default_params, WARPS=warps, MTILES=2), 1_000_000))
            labels.append(f"{form} sq={sq} sk={sk} WARPS={warps}")
    reports = cuda_emu.run_candidates(jobs, workers=2)
    bad = [f"{label}: {r.get('reason')}" for label, r in zip(labels, reports) if not r.get("ok")]
    assert not bad, "\n".join(bad)


def _emulate(tasks: dict[str, Path], first_only: bool = False) -> None:
    """Every proposal (or each task's first) of each task on the CPU emulator at its defaults."""
    jobs, labels = [], []
    for label, path in tasks.items():
        result = translate(load_task(path))
        assert result.proposals, result.notes
        for p in result.proposals[:1] if first_only else result.proposals:
            cand = path.parent / f"cand_{path.stem}_{p.variant.replace('/', '_')}.py"
            cand.write_text(p.source)
            jobs.append((path, cand, dict(p.default_params), 1_000_000))
            labels.append(f"{label} {p.variant}")
    reports = cuda_emu.run_candidates(jobs, workers=2)
    bad = [f"{label}: {r.get('reason')}" for label, r in zip(labels, reports) if not r.get("ok")]
    assert not bad, "\n".join(bad)


# nvcc: registers, spills and shared memory per configuration (sm_90): the corners of each space.
CONFIGS = [("bfloat16", 64, 4, 128), ("bfloat16", 64, 8, 128), ("bfloat16", 128, 4, 128), ("bfloat16", 128, 8, 128),
           ("bfloat16", 192, 4, 64), ("bfloat16", 256, 2, 64),
           ("float32", 64, 4, 64), ("float32", 128, 4, 16), ("float32", 256, 1, 16)]


@pytest.mark.parametrize("dtype,hd,warps,block_n", CONFIGS)
def test_flash_compiles_without_spills_on_sm90(dtype: str, hd: int, warps: int, block_n: int, tmp_path: Path) -> None:
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is not on PATH")
    task = load_task(_task(tmp_path, FORMS["sdpa_causal"][0], dtype, d=hd))
    src = cuda_sources(translate(task).proposals[0].source)[0]
    cu = tmp_path / "k.cu"
    cu.write_text(src)
    run = subprocess.run(["nvcc", "-arch=sm_90", "-cubin", "-std=c++17", "-Xptxas", "-v", f"-DHEAD_DIM={hd}",
                          f"-DWARPS={warps}", f"-DBLOCK_N={block_n}", "-DMTILES=1", "-o", str(tmp_path / "k.cubin"), str(cu)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    report = run.stderr
    assert re.search(r"0 bytes spill stores, 0 bytes spill loads", report), report
    found = re.search(r"(\d+) bytes smem", report)
    smem = int(found.group(1)) if found else 0  # ptxas says nothing of shared memory where none is static
    if dtype == "bfloat16":  # tiles in dynamic shared memory: none static
        assert smem == 0 and smem_bytes(True, warps, block_n, hd) <= DYN_SMEM_LIMIT
    else:
        assert smem <= SMEM_LIMIT


@pytest.mark.parametrize("hd, searched", [(64, True), (128, False)])
def test_bf16_register_cap_is_searched_for_head_dim_64_only(hd: int, searched: bool, tmp_path: Path) -> None:
    task = load_task(_task(tmp_path, FORMS["sdpa"][0], "bfloat16", d=hd))
    for proposal in translate(task).proposals:
        assert proposal.default_params["MINB"] == 1
        assert (proposal.params_space.get("MINB") == [1, 3]) is searched, proposal.params_space


@pytest.mark.parametrize("warps, mtiles, minb, max_registers, max_spill", [
    (4, 1, 3, 168, 128),  # three blocks an SM: ~10 local accesses a chunk
    (8, 2, 1, 255, 0),    # two m-tiles, one block of 8 warps: no spill
    (4, 2, 1, 255, 256),  # two m-tiles, two blocks of 4 warps: a small spill
])
def test_bf16_head_dim_64_searched_settings_registers(warps: int, mtiles: int, minb: int, max_registers: int,
                                                      max_spill: int, tmp_path: Path) -> None:
    """What the searched register cap (MINB) and m-tiles (MTILES) cost in registers and spills,
    as the space's comments say (-ftz, as NVRTC compiles for the runtime)."""
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is not on PATH")
    task = load_task(_task(tmp_path, FORMS["sdpa_causal"][0], "bfloat16", d=64))
    cu = tmp_path / "k.cu"
    cu.write_text(cuda_sources(translate(task).proposals[0].source)[0])
    run = subprocess.run(["nvcc", "-arch=sm_90", "-cubin", "-std=c++17", "-ftz=true", "-Xptxas", "-v", "-DHEAD_DIM=64",
                          f"-DWARPS={warps}", "-DBLOCK_N=128", f"-DMTILES={mtiles}", f"-DMINB={minb}",
                          "-o", str(tmp_path / "k.cubin"), str(cu)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    registers = int(re.search(r"Used (\d+) registers", run.stderr).group(1))
    spilled = int(re.search(r"(\d+) bytes spill stores", run.stderr).group(1))
    assert registers <= max_registers and spilled <= max_spill, run.stderr


# q, k, v computed in the forward (scaled, activated, head-split views, unbound from one tensor):
# a kernel writes them first, the flash kernel reads what it wrote.
_COMPUTED = {
    "pointwise_qkv": ("def forward(self, q, k, v):\n"
                      "        return F.scaled_dot_product_attention(q * 0.7, F.silu(k), v + 1.0, is_causal=True)",
                      "[torch.randn(2, 3, 41, 64, dtype=D), torch.randn(2, 3, 41, 64, dtype=D), "
                      "torch.randn(2, 3, 41, 64, dtype=D)]", ["pointwise", "flash"]),  # one kernel writes all three
    "head_split_views": ("def forward(self, q, k, v):\n"
                         "        t = lambda x: x.transpose(1, 2)\n"
                         "        return F.scaled_dot_product_attention(t(q), t(k), t(v))",
                         "[torch.randn(2, 37, 3, 64, dtype=D), torch.randn(2, 23, 3, 64, dtype=D), "
                         "torch.randn(2, 23, 3, 64, dtype=D)]", ["copy", "copy", "copy", "flash"]),
    "unbind_qkv": ("def forward(self, qkv):\n"
                   "        q, k, v = qkv.unbind(1)\n"
                   "        return F.scaled_dot_product_attention(q, k, v, is_causal=True)",
                   "[torch.randn(2, 3, 4, 37, 64, dtype=D)]", ["copy", "copy", "copy", "flash"]),
}


def _computed_task(tmp_path: Path, name: str, dtype: str) -> Path:
    forward, inputs, _ = _COMPUTED[name]
    path = tmp_path / f"{name}_{dtype}.py"
    path.write_text(
        "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\nD = torch." + dtype + "\n\n\n"
        "class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n\n"
        f"    {forward}\n\n\ndef get_inputs():\n    return {inputs}\n\n\n"
        "def get_init_inputs():\n    return []\n\n\n"
        f'DTYPE = "{dtype}"\nPOLICY = "strict"\nFAMILY = "attention"\n')
    return path


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", sorted(_COMPUTED))
def test_computed_qkv_are_written_first_then_read_by_flash(name: str, dtype: str, tmp_path: Path) -> None:
    task = load_task(_computed_task(tmp_path, name, dtype))
    plan = make_plan(lower(trace_task(task), task.policy))
    assert sorted(r.kind for r in plan.regions) == sorted(_COMPUTED[name][2]), plan.describe()
    flash = next(r for r in plan.regions if r.kind == "flash").nodes[0]
    assert all(flash.args[x].op != "input" for x in ("q", "k", "v"))


@pytest.mark.slow
def test_computed_qkv_match_reference_on_cpu_emulator(tmp_path: Path) -> None:
    reason = cuda_emu.compiler_missing()
    if reason:
        pytest.skip(reason)
    _emulate({f"{name} {dtype}": _computed_task(tmp_path, name, dtype)
              for name in sorted(_COMPUTED) for dtype in ("float32", "bfloat16")}, first_only=True)


def test_wgmma_probe_compiles_for_sm90a(tmp_path: Path) -> None:
    """scripts/wgmma_probe.py (the descriptor check a Hopper flash kernel needs first) keeps
    compiling: 4 wgmma for q k^T and 8 for p v."""
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is not on PATH")
    import importlib.util

    spec = importlib.util.spec_from_file_location("wgmma_probe", Path(__file__).resolve().parents[3] / "scripts" / "wgmma_probe.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    cu = tmp_path / "probe.cu"
    cu.write_text(probe.SOURCE)
    run = subprocess.run(["nvcc", "-arch=sm_90a", "-cubin", "-std=c++17", "-o", str(tmp_path / "p.cubin"), str(cu)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    cuobjdump = shutil.which("cuobjdump")
    if cuobjdump:
        dump = subprocess.run([cuobjdump, "-sass", str(tmp_path / "p.cubin")], capture_output=True, text=True)
        assert dump.stdout.count("HGMMA") == 12, dump.stdout[-2000:]


@pytest.mark.slow
def test_wgmma_form_matches_reference_on_cpu_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wgmma form (FLASH_MMA 2, not yet a searched variant: kern_flash.WGMMA_VARIANT) on the
    emulator, whose wgmma is four mma.sync a warp reading the swizzled tiles through flash_swz:
    the kernel's layout model, schedule, masks and 1024-byte alignment; head dims 64 and 128,
    1 and 2 warpgroups, causal and not, short and ragged sequences."""
    reason = cuda_emu.compiler_missing()
    if reason:
        pytest.skip(reason)
    from evolution.proposers.rules import kern_flash

    monkeypatch.setattr(kern_flash, "WGMMA_VARIANT", True)
    cases = [("sdpa", 1, 17, 64, 8, 1), ("sdpa_causal", 67, 67, 128, 8, 2), ("sdpa_causal", 130, 150, 64, 4, 1),
             ("sdpa", 40, 301, 128, 4, 2), ("sdpa_scale", 70, 33, 64, 8, 2), ("sdpa_causal", 200, 520, 64, 8, 2),
             ("sdpa", 33, 301, 64, 4, 1), ("sdpa_causal", 200, 520, 64, 8, 3), ("sdpa", 1, 17, 64, 4, 3),
             ("sdpa_scale", 70, 333, 64, 4, 3)]  # STAGES 2: the ring over 1 to 5 chunks; 3 (head dim 64): overlapped
    jobs, labels = [], []
    for i, (form, sq, sk, d, warps, stages) in enumerate(cases):
        sub = tmp_path / f"t{i}"
        sub.mkdir()
        path = _task(sub, FORMS[form][0], "bfloat16", sq, sk, d)
        proposals = [p for p in translate(load_task(path)).proposals if p.variant == "flash/wgmma"]
        assert proposals, f"{form} d={d}: no wgmma variant"
        cand = sub / "cand_wgmma.py"
        cand.write_text(proposals[0].source)
        overlap = int(stages > 2)
        jobs.append((path, cand, dict(proposals[0].default_params, WARPS=warps, STAGES=stages, OVERLAP=overlap),
                     1_000_000))
        labels.append(f"{form} sq={sq} sk={sk} d={d} warps={warps} stages={stages} overlap={overlap}")
    reports = cuda_emu.run_candidates(jobs, workers=2)
    bad = [f"{label}: {r.get('reason')}" for label, r in zip(labels, reports) if not r.get("ok")]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("hd,stages,overlap", [(64, 1, 0), (64, 2, 0), (64, 3, 1), (128, 1, 0), (128, 2, 0)])
def test_wgmma_form_compiles_for_sm90a_without_spills_or_serialized_wgmma(hd: int, stages: int, overlap: int,
                                                                         tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """ptxas serializes every wgmma of a kernel that issues one under a branch it cannot prove
    uniform, and fences each one whose register operands were written since the last (both
    C7519): the form issues them unconditionally, p packed before the fence."""
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc is not on PATH")
    from evolution.proposers.rules import kern_flash

    monkeypatch.setattr(kern_flash, "WGMMA_VARIANT", True)
    task = load_task(_task(tmp_path, FORMS["sdpa_causal"][0], "bfloat16", d=hd))
    proposals = translate(task).proposals
    proposal = next(p for p in proposals if p.variant == "flash/wgmma")
    # built for sm_90a (compile_module's arch path), declared so that compile-ahead builds the same
    from autotuner.candidate import ahead_arch
    assert "compile_module(SOURCE, defines=self.rules_cfg, arch='sm_90a')" in proposal.source
    assert ahead_arch(proposal.source) == "sm_90a"
    assert all(ahead_arch(p.source) is None for p in proposals if p.variant != "flash/wgmma")
    cu = tmp_path / "k.cu"
    cu.write_text(cuda_sources(proposal.source)[0])
    defines = [f"-D{k}={v}" for k, v in dict(proposal.default_params, STAGES=stages, OVERLAP=overlap).items()]
    run = subprocess.run(["nvcc", "-arch=sm_90a", "-cubin", "-std=c++17", "-Xptxas", "-v", *defines,
                          "-o", str(tmp_path / "k.cubin"), str(cu)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "0 bytes spill stores, 0 bytes spill loads" in run.stderr, run.stderr
    assert "serialized" not in run.stderr and "warpgroup.arrive is injected" not in run.stderr, run.stderr
