"""The decode matrix-vector seeds (kernels/seeds/decode_*.py) and their tasks.

* generated from one core and up to date (scripts/gen_decode_seeds.py);
* numerics on the CPU emulator (tests/unit/rules/cuda_emu.py) against the task's PyTorch
  reference, on small copies of every task (same code, small shapes): the 16-byte path and
  the scalar one (K not a multiple of 8), batch 1 to 8, split-K with the last-range
  reduction, several units per warp, the fused epilogues (residual, SiLU, rotary + cache
  append at a device position, LM head + argmax across the grid), the residual and the
  position read ahead of the wait (EARLY);
* PTX for sm_90 through nvcc where it is installed (griddepcontrol, the bulk L2 prefetch).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from autotuner.tasks import load_task, suite_dir

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "unit" / "rules"))
sys.path.insert(0, str(ROOT / "scripts"))

import cuda_emu  # noqa: E402
import gen_decode_seeds  # noqa: E402

SEEDS = gen_decode_seeds.SEED_TASKS

# Small copies of each task: (module globals of the default shape, extra SHAPES), so the emulator
# runs in seconds; the shapes keep the awkward cases of the real tasks.
SMALL: dict[str, tuple[str, str]] = {
    "plain": ("in_features = 512\nout_features = 24\nbias = False\n",
              '[{"name": "tail", "batch_size": 3, "in_features": 600, "out_features": 7, "bias": True},'
              ' {"name": "odd", "batch_size": 2, "in_features": 203, "out_features": 9, "bias": True, "hidden": True},'
              ' {"name": "b8", "batch_size": 8, "in_features": 264, "out_features": 5, "hidden": True}]'),
    "resid": ("in_features = 512\nout_features = 20\nmultiplier = 1.0\n",
              '[{"name": "granite", "batch_size": 3, "in_features": 264, "out_features": 11, "multiplier": 0.22},'
              ' {"name": "odd", "batch_size": 2, "in_features": 203, "out_features": 9, "multiplier": 0.22,'
              ' "hidden": True}]'),
    "silu": ("hidden_size = 512\nintermediate = 12\n",
             '[{"name": "b4", "batch_size": 4, "hidden_size": 264, "intermediate": 9},'
             ' {"name": "odd", "batch_size": 3, "hidden_size": 203, "intermediate": 5, "hidden": True}]'),
    "qkv": ("hidden_size = 512\nheads = 4\nkv_heads = 2\nhead_dim = 8\nmax_len = 16\n",
            '[{"name": "bias", "batch_size": 2, "hidden_size": 264, "heads": 3, "kv_heads": 1, "head_dim": 16,'
            ' "max_len": 9, "bias": True},'
            ' {"name": "odd", "batch_size": 3, "hidden_size": 203, "heads": 2, "kv_heads": 2, "head_dim": 6,'
            ' "max_len": 5, "bias": True, "hidden": True}]'),
    "lmhead": ("hidden_size = 512\nvocab = 300\n",
               '[{"name": "scaled", "batch_size": 2, "hidden_size": 264, "vocab": 77, "logits_scaling": 8.0},'
               ' {"name": "odd", "batch_size": 3, "hidden_size": 203, "vocab": 131, "hidden": True},'
               ' {"name": "b8", "batch_size": 8, "hidden_size": 256, "vocab": 40, "hidden": True}]'),
}
# Emulated launch parameters: few threads, and each path of the kernel (split or not, 1 to 4
# units per warp, a step in flight or several, the next batch's loads ahead or not, the activations
# (normalized in place where the seed has a norm) in shared memory or not, the weights through the
# shared-memory ring (its producer running ahead across tasks) or registers: the first entry,
# which every seed runs, pipelines).
EMU_PARAMS = [
    {"UPW": 2, "UNROLL": 4, "BLOCK": 64, "OCC": 2, "SPLITK": 0, "PREFETCH": 1, "PIPE": 1},
    {"UPW": 1, "UNROLL": 2, "BLOCK": 64, "OCC": 2, "SPLITK": 2, "PREFETCH": 0, "PIPE": 0, "RING": 4},
    {"UPW": 4, "UNROLL": 2, "BLOCK": 64, "OCC": 1, "SPLITK": 4, "PREFETCH": 2, "PIPE": 1, "XSMEM": 1, "RING": 3},
    {"UPW": 0, "UNROLL": 0, "BLOCK": 64, "OCC": 2, "SPLITK": 0, "PREFETCH": 1, "PIPE": 0, "XSMEM": 1},  # from the shape
]
# The LM head's final argmax reads every warp's result eight at a time per lane: a grid of more
# than 256 warps (300 on the default small shape) so that path runs on the emulator's 2 SMs too.
WIDE_GRID = {"UPW": 1, "UNROLL": 2, "BLOCK": 128, "OCC": 64, "SPLITK": 1, "PREFETCH": 0}


def test_generated_seeds_are_up_to_date() -> None:
    assert gen_decode_seeds.main(["--check"]) == 0


def test_every_decode_task_has_its_seed() -> None:
    from evolution.proposers.seeds import seeds_for

    for name, (tasks, _) in SEEDS.items():
        for task in tasks:
            proposals = seeds_for(load_task(suite_dir() / task))
            assert [p.variant for p in proposals] == [f"seed/{name}"], task


def _small_task(tmp_path: Path, task_rel: str, kind: str) -> Path:
    globals_text, shapes = SMALL[kind]
    path = tmp_path / Path(task_rel).name
    path.write_text((suite_dir() / task_rel).read_text() + "\n\n# small copy for the CPU emulator\n"
                    + globals_text + f"SHAPES = {shapes}\n")
    return path


@pytest.mark.slow
def test_decode_seeds_match_their_references_on_cpu_emulator(tmp_path: Path) -> None:
    reason = cuda_emu.compiler_missing()
    if reason:
        pytest.skip(reason)
    specs, labels = [], []
    kinds_done: set[str] = set()
    for name, (task_rels, kind) in SEEDS.items():
        for task_rel in task_rels:
            params_list = EMU_PARAMS if kind not in kinds_done else EMU_PARAMS[:1]
            params_list = params_list + ([WIDE_GRID] if kind == "lmhead" else [])
            if kind in gen_decode_seeds.EARLY_KINDS:  # the epilogue's inputs read before the wait
                params_list = params_list + [dict(EMU_PARAMS[0], EARLY=1), dict(EMU_PARAMS[1], EARLY=1)]
            kinds_done.add(kind)
            task = _small_task(tmp_path, task_rel, kind)
            for params in params_list:
                specs.append((task, ROOT / "kernels" / "seeds" / f"{name}.py", params, 10_000_000))
                labels.append(f"{name} on {Path(task_rel).stem} {params}")
    reports = cuda_emu.run_candidates(specs, workers=4, timeout_s=600)
    bad = {label: r["reason"] for label, r in zip(labels, reports) if not r["ok"]}
    assert not bad, bad
    for report in reports:
        assert len({s["shape"] for s in report["shapes"]}) >= 3


def test_plan_fills_the_gpu_and_keeps_ranges_non_empty() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("seed_o", ROOT / "kernels" / "seeds" / "decode_gemv_bf16.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # compiles nothing: kernels are built at the first forward
    plan = module._plan
    # Llama-3.2-1B's o projection on 132 SMs: 1024 groups of 2 rows, split in two to fill 2112 warps
    splits, blocks, groups = plan(2048, 2048, 1, 2, 4, 4, 0, 132)
    assert (splits, groups) == (2, 1024) and blocks == 512
    # the LM head needs no split; the grid is capped at OCC blocks per SM (warps stride)
    splits, blocks, _ = plan(128256, 2048, 1, 2, 4, 4, 0, 132)
    assert splits == 1 and blocks == 528
    # a fixed split never leaves an empty range
    splits, _, _ = plan(16, 1000, 1, 2, 4, 4, 8, 132)
    assert splits == 4  # 4 steps of 256 columns
    splits, _, _ = plan(16, 1003, 0, 2, 4, 4, 0, 132)
    assert splits >= 2  # scalar path: 32-column steps


def _seed_module(name: str):  # noqa: ANN202
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"seed_{name}", ROOT / "kernels" / "seeds" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # compiles nothing: kernels are built at the first forward
    return module


# (units, K, weight rows per unit) of the three models' projections -> (UPW, UNROLL, PIPE) the shape
# rules pick: the settings the H200's whole-step search and A/B chose (2026-12-02, _auto's docstring)
AUTO_CASES = {
    "llama q/k/v": ((1536, 2048, 2), (1, 8, 0)), "llama o": ((2048, 2048, 1), (1, 4, 0)),
    "llama gate/up": ((8192, 2048, 2), (2, 4, 0)), "llama down": ((2048, 8192, 1), (1, 8, 1)),
    "llama lm head": ((128256, 2048, 1), (4, 4, 0)), "qwen gate/up": ((8960, 1536, 2), (2, 4, 0)),
    "qwen down": ((1536, 8960, 1), (1, 8, 1)), "qwen q/k/v": ((1024, 1536, 2), (1, 8, 0)),
}


@pytest.mark.parametrize("case", sorted(AUTO_CASES))
def test_shape_rules_pick_the_measured_settings(case: str) -> None:
    (units, k, rpu), expected = AUTO_CASES[case]
    module = _seed_module("decode_gemv_bf16")
    assert module._auto(units, k, 0, 0, -1, rpu) == expected
    assert module._auto(units, k, 2, 2, 0, rpu) == (2, 2, 0)  # explicit values are kept


def test_activations_go_to_shared_memory_where_the_fill_is_short() -> None:
    module = _seed_module("decode_gemv_residual_bf16")
    run = module._Launcher(0, 0, 128, 4, 0, 0)  # XSMEM -1: chosen from the shape
    run.k, run.vec = 2048, 1
    assert run.xs_bytes(1) == 4096 and run.xs_bytes(2) == 8192  # up to four 16-byte loads a thread
    assert run.xs_bytes(3) == 0
    run.k = 8192
    assert run.xs_bytes(1) == 0  # the down projection's 16 KB: global loads measured faster
    run.vec = 0
    assert run.xs_bytes(1) == 0  # the scalar path never uses it
    forced = module._Launcher(0, 0, 128, 4, 0, 0, XSMEM=1)
    forced.k, forced.vec = 8192, 1
    assert forced.xs_bytes(1) == 16384 and forced.xs_bytes(4) == 0  # asked for: up to 48 KB a block
    off = module._Launcher(0, 0, 256, 4, 0, 0, XSMEM=0)
    off.k, off.vec = 2048, 1
    assert off.xs_bytes(1) == 0


def test_a_ring_that_does_not_fit_says_what_to_change(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import torch

    module = _seed_module("decode_gate_up_silu_bf16")
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda *a, **k: types.SimpleNamespace(
        multi_processor_count=132, shared_memory_per_block_optin=227 * 1024))
    run = module._Launcher(2, 0, 256, 4, 0, 0, RING=16, rpu=2)  # 8 warps x 16 steps x 4 rows x 512 B = 256 KB
    run.plan(8192, 2048, 1, torch.device("cpu"))
    assert run.ring_bytes() == 256 * 1024
    with pytest.raises(ValueError, match="fewer RING stages"):
        run.launch(1, "dec_norm_gate_up_silu", 1, ())
    fits = module._Launcher(2, 0, 128, 4, 0, 0, RING=8, rpu=2)  # 4 x 8 x 4 x 512 = 64 KB (+ 4 KB of activations)
    fits.plan(8192, 2048, 1, torch.device("cpu"))
    function = types.SimpleNamespace(max_dynamic_shared_size_bytes=48 * 1024)
    fits.module = lambda nb: types.SimpleNamespace(kernel=lambda name: types.SimpleNamespace(function=function))
    launched = []
    monkeypatch.setattr(module, "pdl_launch", lambda *a, **k: launched.append(k["shared_mem"]))
    fits.launch(1, "dec_norm_gate_up_silu", 1, ())
    fits.launch(1, "dec_norm_gate_up_silu", 1, ())
    assert launched == [68 * 1024] * 2 and function.max_dynamic_shared_size_bytes == 68 * 1024  # opted in once


@pytest.mark.skipif(not __import__("shutil").which("nvcc"), reason="nvcc is not on PATH")
@pytest.mark.parametrize(("pipe", "xs", "ring"), [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 1, 8)],
                         ids=["", "pipe", "xs", "ring"])
@pytest.mark.parametrize("name", sorted(SEEDS))
def test_decode_seed_compiles_for_sm90_without_spills(name: str, pipe: int, xs: int, ring: int, tmp_path: Path) -> None:
    src = (ROOT / "kernels" / "seeds" / f"{name}.py").read_text().split("SOURCE = r'''")[1].split("'''")[0]
    cu = tmp_path / "k.cu"
    cu.write_text(src)
    proc = subprocess.run(["nvcc", "-arch=sm_90", "--resource-usage", "-cubin", "-std=c++17", "-DNB=1", f"-DPIPE={pipe}",
                           f"-DXS={xs}", f"-DRING={ring}", "-o", str(tmp_path / "k.cubin"), str(cu)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = proc.stdout + proc.stderr
    assert " 0 bytes spill stores" in log and "spill stores" in log
    assert all(" 0 bytes spill" in line for line in log.splitlines() if "spill" in line), log
    ptx = subprocess.run(["nvcc", "-arch=sm_90", "--ptx", "-std=c++17", f"-DRING={ring}", "-o", "-", str(cu)],
                         capture_output=True, text=True).stdout
    if ring:  # the weights' 16-byte copies go straight to shared memory; a step waits for its own group
        assert "cp.async.cg.shared.global" in ptx and f"cp.async.wait_group {ring - 1};" in ptx
    assert "griddepcontrol.wait" in ptx and "griddepcontrol.launch_dependents" in ptx
    assert "cp.async.bulk.prefetch.L2" in ptx
    if not ring:  # the register path's weight loads: read once, past L1
        assert "ld.global.nc.L1::no_allocate.L2::256B.v4.u32" in ptx


@pytest.mark.skipif(not __import__("shutil").which("nvcc"), reason="nvcc is not on PATH")
def test_minb_caps_the_registers_to_leave_room_for_the_next_kernel(tmp_path: Path) -> None:
    """MINB 4 on q/k/v (Llama's settings): at most 64K / (4 x 128) = 128 registers a thread and no
    spills, so two of its blocks and the attention kernel's 112 x 256 fit an SM; MINB 0 leaves
    nvcc its choice (above 128)."""
    src = (ROOT / "kernels" / "seeds" / "decode_qkv_rope_append_bf16.py").read_text().split("SOURCE = r'''")[1]
    cu = tmp_path / "k.cu"
    cu.write_text(src.split("'''")[0])
    used = {}
    for minb in (0, 4):
        proc = subprocess.run(["nvcc", "-arch=sm_90", "--resource-usage", "-cubin", "-std=c++17", "-DNB=1", "-DUPW=1",
                               "-DUNROLL=8", "-DWARPS=4", "-DXS=1", f"-DMINB={minb}", "-o", str(tmp_path / "k.cubin"),
                               str(cu)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "dec_norm_qkv_rope_append" in line
                 or "registers" in line or "spill" in line]
        regs = [int(line.split("Used ")[1].split(" registers")[0]) for line in lines if "Used " in line]
        used[minb] = max(regs)
        assert all(" 0 bytes spill" in line for line in lines if "spill" in line), lines
    assert used[4] <= 128 < used[0]


def test_the_launcher_passes_minb_to_the_kernel_build(monkeypatch: pytest.MonkeyPatch) -> None:
    module = _seed_module("decode_qkv_rope_append_bf16")
    built = []
    monkeypatch.setattr(module, "compile_module", lambda source, defines: built.append(defines) or object())
    module._Launcher(1, 8, 128, 2, 0, 0, MINB=4, rpu=2).module(1)
    module._Launcher(1, 8, 128, 4, 0, 0, rpu=2).module(1)
    assert [d["MINB"] for d in built] == [4, 0]
    assert module.ModelNew(64, 2, 1, 16, False, 1e-6, MINB=4).run.minb == 4


def test_a_module_holds_the_load_path_of_its_plan_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 16-byte path where ``plan`` was given vec 1 (VPATH 8), the any-alignment one where it
    was given 0 (VPATH 1): one body per module, each compiled once per (batch, path, shape); batch
    1 on the 16-byte path keeps both (VPATH 0, the build the decode step was measured on)."""
    import torch

    module = _seed_module("decode_gate_up_silu_bf16")
    built = []
    monkeypatch.setattr(module, "compile_module", lambda source, defines: built.append(defines) or object())
    run = module._Launcher(0, 0, 128, 4, 0, 0, rpu=2)
    run.sms = 132
    for vec in (1, 0, 1, 0):
        run.plan(8192, 2048, vec, torch.device("cpu"))
        run.module(1)
    run.plan(8192, 2048, 1, torch.device("cpu"))
    run.module(4)
    assert [(d["NB"], d["VPATH"]) for d in built] == [(1, 0), (1, 1), (4, 8)]


@pytest.mark.skipif(not __import__("shutil").which("nvcc"), reason="nvcc is not on PATH")
@pytest.mark.parametrize("name", sorted(SEEDS))
def test_one_load_path_compiles_alone_without_spills(name: str, tmp_path: Path) -> None:
    """VPATH 8 (what a launcher builds for aligned weights: every model's decode step at batch
    1) holds no spills and one body: a smaller cubin than both paths' (VPATH 0)."""
    src = (ROOT / "kernels" / "seeds" / f"{name}.py").read_text().split("SOURCE = r'''")[1].split("'''")[0]
    cu = tmp_path / "k.cu"
    cu.write_text(src)
    sizes = {}
    for vpath in (0, 8):
        cubin = tmp_path / f"k{vpath}.cubin"
        proc = subprocess.run(["nvcc", "-arch=sm_90", "--resource-usage", "-cubin", "-std=c++17", "-DNB=1", "-DXS=1",
                               f"-DVPATH={vpath}", "-o", str(cubin), str(cu)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        spills = [line for line in (proc.stdout + proc.stderr).splitlines() if "spill" in line]
        assert spills and all(" 0 bytes spill" in line for line in spills), spills
        sizes[vpath] = cubin.stat().st_size
    assert sizes[8] < 0.8 * sizes[0], sizes

