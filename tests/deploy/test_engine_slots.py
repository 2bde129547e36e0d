"""Slot resolution from a temp archive: which kernel each slot takes, and why PyTorch otherwise."""

from __future__ import annotations

import pytest
import torch
from engine_support import GPU, FakeVerifier
from engine_cpu_kernels import SOURCES

from autotuner.deploy import Slots, build_model, generate, resolve_slots, tiny_config
from autotuner.deploy.slots import OP_SLOTS, SLOT_NAMES
from autotuner.evaluator.verdict import Verdict

CFG = tiny_config()  # 4 heads over 2 KV heads
MHA = tiny_config(num_kv_heads=4)  # one KV head per query head
CPU = torch.device("cpu")


def _resolve(archive, verifier=None, cfg=CFG, dtype="bfloat16", **kw) -> Slots:
    return resolve_slots(archive, dtype, cfg, gpu=GPU, verifier=verifier, device=CPU, **kw)


def test_nothing_recorded_every_slot_says_why(archive) -> None:
    report = _resolve(archive).report()
    assert set(report) == set(SLOT_NAMES)
    assert report["rmsnorm"] == "pytorch (no kernel for task rmsnorm_bf16 in the archive)"
    assert report["attention_decode"] == "pytorch (no kernel for task attention_decode_gqa_bf16 in the archive)"


def test_no_gpu_and_no_archive() -> None:
    assert resolve_slots(None, "bfloat16", CFG).report()["silu_mul"] == "pytorch (no archive given)"
    from autotuner.deploy.resolve import bind_slot

    assert bind_slot("silu_mul", object(), "bfloat16", None).reason == "no CUDA GPU: kernels need one"
    assert bind_slot("silu_mul", object(), "float16", GPU).reason == "no task for silu_mul in float16"


def test_recorded_kernel_is_reverified_bound_and_reported(archive, record, verifier) -> None:
    kid = record("silu_mul", SOURCES["silu_mul"], params={"BLOCK": 128})
    slots = _resolve(archive, verifier)
    binding = slots.bindings["silu_mul"]
    assert binding.bound and binding.kernel_id == kid and binding.params == {"BLOCK": 128}
    assert slots.report()["silu_mul"].startswith(f"kernel {kid} (silu_mul_bf16, evaluation ")
    ((task_path, cand_path, params),) = verifier.calls  # re-verified once, on the archived task and source
    assert task_path.name == "silu_mul_bf16.py" and cand_path.read_text() == SOURCES["silu_mul"]
    assert params == {"BLOCK": 128}
    assert binding.reverify_evaluation_id is not None  # the re-verification is kept in the archive
    assert len(archive.kernel(kid).evaluations) == 2


def test_on_cpu_the_real_evaluator_refuses_so_the_slot_stays_pytorch(archive, record) -> None:
    record("silu_mul", SOURCES["silu_mul"])
    report = _resolve(archive).report()  # verifier=None: autotuner.evaluator.evaluate
    assert "re-verification needs a GPU" in report["silu_mul"]
    assert not _resolve(archive).bound("silu_mul")


def test_stale_kernel_is_ignored_and_named(archive, record, verifier) -> None:
    record("rope", SOURCES["rope"], harness="0")
    slots = _resolve(archive, verifier)
    assert not slots.bound("rope")
    assert "only stale kernels for rope_bf16" in slots.report()["rope"]
    assert verifier.calls == []


def test_other_gpu_and_other_dtype_do_not_count(archive, record, verifier) -> None:
    record("silu_mul", SOURCES["silu_mul"], gpu="NVIDIA A100-SXM4-80GB")
    assert "no verified kernel for silu_mul_bf16" in _resolve(archive, verifier).report()["silu_mul"]
    record("rmsnorm", SOURCES["rmsnorm"], dtype="float32")
    assert not _resolve(archive, verifier).bound("rmsnorm")  # an fp32 kernel for a bf16 engine
    assert _resolve(archive, verifier, dtype="float32").bound("rmsnorm")


def test_failed_reverification_falls_back_to_the_next_winner(archive, record) -> None:
    slow = record("rmsnorm", SOURCES["rmsnorm"], ms=0.9)
    fast = record("rmsnorm", SOURCES["rmsnorm"] + "\n# variant\n", ms=0.3)
    verifier = FakeVerifier(reject=(SOURCES["rmsnorm"] + "\n# variant\n",))
    slots = _resolve(archive, verifier)
    assert slots.bindings["rmsnorm"].kernel_id == slow
    # The rejection is recorded: the fast kernel is no longer a winner anywhere.
    assert [r.kernel_id for r in archive.best(task="rmsnorm_bf16", gpu=GPU)] == [slow]
    assert archive.kernel(fast).evaluations[0].verdict in ("accepted", "rejected")


def test_all_winners_rejected_gives_every_reason(archive, record) -> None:
    kid = record("silu_mul", SOURCES["silu_mul"])
    slots = _resolve(archive, FakeVerifier(reject=(SOURCES["silu_mul"],)))
    text = slots.report()["silu_mul"]
    assert text.startswith(f"pytorch (kernel {kid}: re-verification rejected at correctness")


def test_kernel_that_differs_at_the_engine_dims_is_refused(archive, record, verifier) -> None:
    record("rmsnorm", SOURCES["rmsnorm_no_weight"])
    text = _resolve(archive, verifier).report()["rmsnorm"]
    assert "differs from PyTorch at the engine's dims" in text


@pytest.mark.parametrize("cfg", [CFG, MHA], ids=["gqa", "mha"])
def test_attention_decode_binds_for_grouped_and_plain_heads(archive, record, verifier, cfg) -> None:
    record("attention_decode", SOURCES["attention_decode"])
    assert _resolve(archive, verifier, cfg=cfg).bound("attention_decode")


def test_attention_kernel_that_attends_stale_positions_is_refused(archive, record, verifier) -> None:
    """The probe gives sequences of different lengths in a longer cache; ignoring cache_len shows."""
    record("attention_decode", SOURCES["attention_decode_ignores_length"])
    text = _resolve(archive, verifier).report()["attention_decode"]
    assert "differs from PyTorch at the engine's dims" in text


def test_attention_scale_that_is_not_exact_is_not_covered(archive, record, verifier) -> None:
    record("attention_decode", SOURCES["attention_decode"])
    odd = CFG.replace(attention_multiplier=0.3)
    assert "softmax scale 0.3 is not 1/sqrt(16)" in _resolve(archive, verifier, cfg=odd).report()["attention_decode"]


def test_engine_with_bound_slots_matches_pure_pytorch(archive, record, verifier) -> None:
    """The slot adapters (reshapes, contiguity, shared weights) on every slot, on CPU."""
    for slot in ("rmsnorm", "residual_rmsnorm", "rope", "silu_mul", "attention_decode"):
        record(slot, SOURCES[slot])
    tuned = _resolve(archive, verifier)
    assert all(tuned.bound(s) for s in OP_SLOTS), tuned.report()
    prompt = torch.randint(0, 256, (2, 9), generator=torch.Generator().manual_seed(0))
    outs = []
    for slots in (Slots.pytorch(), tuned):
        model = build_model(CFG, dtype=torch.bfloat16, device="cpu", slots=slots)
        model.setup_caches(2, 96)
        logits = model(prompt, torch.arange(9), kv_len=9)
        outs.append((logits.float(), generate(model, prompt, 64).tokens))
    assert torch.equal(outs[0][0], outs[1][0])
    assert torch.equal(outs[0][1], outs[1][1])
    # The kernels really ran, and read the engine's own weights (not copies).
    instances = [m for _, m in tuned._instances.values()]
    norms = [m for m in instances if hasattr(m, "calls")]
    assert norms and all(m.calls > 0 for m in norms)
    assert len(tuned._instances) >= 1 + 2 * CFG.num_layers


def test_recorded_rejection_is_never_a_winner(archive, record, verifier) -> None:
    kid = record("silu_mul", SOURCES["silu_mul"])
    record("silu_mul", SOURCES["silu_mul"], verdict=Verdict.REJECTED)
    assert f"kernel {kid}" not in _resolve(archive, verifier).report()["silu_mul"]


@pytest.mark.parametrize("head_dim", [64, 72, 128, 256])
def test_every_model_scale_of_one_over_sqrt_head_dim_is_covered(head_dim: int) -> None:
    # 128 ** -0.5 * sqrt(128) is 1.0000000000000002: Qwen2.5's default scale must not fall back
    from autotuner.deploy import QWEN_2_5_1_5B
    from autotuner.deploy.slots import attention_not_covered, query_rescale

    assert query_rescale(head_dim**-0.5, head_dim) == 1.0
    assert query_rescale(2 * head_dim**-0.5, head_dim) == 2.0
    assert query_rescale(0.3 * head_dim**-0.5, head_dim) is None
    assert attention_not_covered(QWEN_2_5_1_5B.head_dim, QWEN_2_5_1_5B.attention_scale) is None
    assert "not 1/sqrt" in attention_not_covered(head_dim, 0.3 * head_dim**-0.5)


def test_slots_are_reverified_side_by_side(archive, record) -> None:
    """Re-verification is a child process (and three sanitizer runs) per slot: several at once."""
    import threading
    import time

    lock, active, peak = threading.Lock(), [0], [0]
    inner = FakeVerifier()

    def slow(task_path, candidate_path, params):  # noqa: ANN001, ANN202
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.3)
        with lock:
            active[0] -= 1
        return inner(task_path, candidate_path, params)

    for slot in ("silu_mul", "rope", "rmsnorm", "residual_rmsnorm"):
        record(slot, SOURCES[slot])
    slots = _resolve(archive, slow, jobs=4)
    assert peak[0] >= 2, "the slots were verified one after another"
    assert all(slots.bound(s) for s in ("silu_mul", "rope", "rmsnorm", "residual_rmsnorm")), slots.report()
    assert list(slots.report()) == list(SLOT_NAMES)  # reported in slot order whatever finished first
