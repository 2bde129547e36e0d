"""Rule translations first checked on the CPU emulator, through the real evaluator on the GPU.

The emulator checks numerics; only the GPU shows that a translation compiles with NVRTC for
the device, passes every trust layer (op watch, guard bytes, the timed-call checks, the
unwatched replay) and is accepted. The cases: the strided views (``test_strided_views``), the
activations, norms, losses and reductions added after them (``test_extra_tasks``,
``test_col_tasks``), pooling (``test_pooling``), direct convolution (``test_conv``) and the GEMM
(``test_gemm``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from autotuner.evaluator import EvalConfig, evaluate
from autotuner.tasks import load_task
from evolution.proposers.rules import translate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "rules"))
from test_col_tasks import CASES as COL_CASES  # noqa: E402
from test_conv import CASES as CONV_CASES  # noqa: E402
from test_extra_tasks import CASES as EXTRA_CASES  # noqa: E402
from test_extra_tasks import write  # noqa: E402
from test_gemm import CASES as GEMM_CASES  # noqa: E402
from test_pooling import CASES as POOL_CASES  # noqa: E402
from test_strided_views import CASES as STRIDED_CASES  # noqa: E402

pytestmark = pytest.mark.gpu

CASES = {**{f"strided_{name}": fields for name, (fields, _) in STRIDED_CASES.items()},
         **{name: EXTRA_CASES[name] for name in ("shrink_celu_logsigmoid", "prelu_rrelu", "logsigmoid_bf16")},
         **{name: COL_CASES[name] for name in ("instancenorm_affine", "batchnorm_module", "batch_stats_norm",
                                               "sum_dims02")},
         **{name: EXTRA_CASES[name] for name in ("std_all", "prod_all", "bce_mean", "bce_none_bf16",
                                                 "bce_logits_pos_weight", "glu_mid", "softmax_rows_of_one",
                                                 "reductions_over_one_keepdim")},
         **{f"pool_{name}": fields for name, (fields, kinds) in POOL_CASES.items() if kinds is not None},
         **{f"conv_{name}": CONV_CASES[name][0] for name in ("conv2d_asymmetric", "conv2d_odd_channels",
                                                             "conv2d_depthwise", "depthwise_separable", "conv3d",
                                                             "conv_transpose2d", "conv_transpose2d_groups",
                                                             "conv2d_bf16", "conv2d_relu", "conv2d_same_even")},
         **{f"gemm_{name}": GEMM_CASES[name][0] for name in ("square", "odd_333x129x77", "transposed_both", "bmm",
                                                             "einsum4d", "matrix_vector", "small_k", "large_k",
                                                             "decode_linear_bf16", "linear_bias_relu", "bf16",
                                                             "triu_of_product", "diag_times_matrix")}}


@pytest.mark.parametrize("name", sorted(CASES))
def test_first_variant_is_accepted_on_the_gpu(name: str, tmp_path: Path) -> None:
    task_path = write(tmp_path, name, CASES[name])
    translation = translate(load_task(task_path))
    assert translation.proposals, translation.notes
    candidate = tmp_path / "candidate.py"
    candidate.write_text(translation.proposals[0].source)
    result = evaluate(task_path, candidate, config=EvalConfig(baselines=False))
    if not result.accepted and "fastest plain call" in (result.reason or ""):
        # The unwatched check's timing comparison on a task of a few microseconds, with the
        # GPU shared by this file's other workers (pytest -n 6): replays of these honest,
        # deterministic kernels measured 25-34 us slower than plain calls, past MIN_GAP_MS, on
        # 2 of 92 cases in each of two runs and on none when run alone (H200, 2026-12-02). The
        # check itself is pinned by the trust suite; here a second evaluation must accept.
        result = evaluate(task_path, candidate, config=EvalConfig(baselines=False))
    assert result.accepted, f"{translation.proposals[0].variant}: {result.stage.value}: {result.reason}"


@pytest.mark.parametrize("form,hd,stages", [("sdpa", 64, 1), ("sdpa", 64, 2), ("sdpa_causal", 64, 3),
                                             ("sdpa_causal", 128, 1), ("sdpa", 128, 2)])
def test_wgmma_flash_variant_is_accepted_on_hopper(form: str, hd: int, stages: int, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The wgmma form (sm_90a, built through compile_module's arch path) through the real
    evaluator, ragged sequences with hidden shapes: its descriptors, swizzle, ring and (STAGES 3,
    head dim 64) the overlapped softmax are what the GPU computes, not only what the emulator
    models."""
    import torch

    if torch.cuda.get_device_capability() != (9, 0):
        pytest.skip("the wgmma form runs on sm_90 (Hopper) only")
    from test_flash import FORMS, _task

    from evolution.proposers.rules import kern_flash

    monkeypatch.setattr(kern_flash, "WGMMA_VARIANT", True)
    shapes = ('[{"name": "ragged", "sq": 77, "sk": 301, "d": %d, "hidden": True}]' % hd)
    task_path = _task(tmp_path, FORMS[form][0], "bfloat16", sq=200, sk=333, d=hd, shapes=shapes)
    proposal = next(p for p in translate(load_task(task_path)).proposals if p.variant == "flash/wgmma")
    assert "arch='sm_90a'" in proposal.source
    candidate = tmp_path / "candidate.py"
    candidate.write_text(proposal.source)
    result = evaluate(task_path, candidate, config=EvalConfig(baselines=False),
                      params={"STAGES": stages, "OVERLAP": int(stages > 2)})
    assert result.accepted, f"{result.stage.value}: {result.reason}"


@pytest.mark.parametrize("form", ["sdpa", "sdpa_causal"])
@pytest.mark.parametrize("warps,mtiles,minb", [(8, 2, 1), (4, 2, 1), (4, 1, 3)])
def test_flash_searched_tiles_are_accepted(form: str, warps: int, mtiles: int, minb: int, tmp_path: Path) -> None:
    """The mma.sync form's searched settings at head dim 64 (two m-tiles a warp, the MINB 3
    register cap with its small spill) through the real evaluator, ragged hidden shapes included."""
    from test_flash import FORMS, _task

    shapes = '[{"name": "ragged", "sq": 77, "sk": 301, "d": 64, "hidden": True}]'
    task_path = _task(tmp_path, FORMS[form][0], "bfloat16", sq=200, sk=333, d=64, shapes=shapes)
    proposal = translate(load_task(task_path)).proposals[0]
    assert proposal.variant.startswith("flash/") and proposal.params_space["MTILES"] == [1, 2]
    candidate = tmp_path / "candidate.py"
    candidate.write_text(proposal.source)
    result = evaluate(task_path, candidate, config=EvalConfig(baselines=False),
                      params={"WARPS": warps, "MTILES": mtiles, "MINB": minb})
    assert result.accepted, f"{result.stage.value}: {result.reason}"
