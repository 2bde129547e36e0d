"""The fused decode path (autotuner/deploy/fused.py) on the CPU.

* with every fused slot unbound it computes exactly what the op-by-op engine computes
  (Llama, Qwen with q/k/v biases, Granite with its multipliers), writing the same caches;
* with the decode seeds bound (run on the CPU emulator), its logits stay within bf16
  tolerance of the PyTorch path and the kernels read the engine's own weights and caches; the
  attention seed too, both of its paths (split kernel, thread-block cluster);
* the probes of the fused slots at the engine's dims;
* the bench's fused modes and the CLI's choices.
"""

from __future__ import annotations

import threading

import sys
import types
from pathlib import Path

import pytest
import torch

from autotuner.deploy import GRANITE_3_2_2B, LLAMA_3_2_1B, QWEN_2_5_1_5B, Slots, build_model, generate, tiny_config
from autotuner.deploy.fused import fused_forward, fused_step
from autotuner.deploy.generate import eager_step, static_step
from autotuner.deploy.slots import FUSED_SLOTS, SLOT_NAMES, SlotBinding, probe_inputs
from autotuner.evaluator.compare import compare_outputs, tolerances_for
from engine_support import GEMV_SEEDS
from evolution.proposers.seeds import seed_model

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = {
    "llama": tiny_config(LLAMA_3_2_1B),
    "qwen": tiny_config(QWEN_2_5_1_5B),
    "granite": tiny_config(GRANITE_3_2_2B, attention_multiplier=0.25),
}


def _model(cfg, slots=None, batch=2, max_seq=64):
    model = build_model(cfg, dtype=torch.bfloat16, device="cpu", slots=slots)
    model.setup_caches(batch, max_seq)
    return model


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_unbound_fused_path_is_the_op_by_op_engine(name: str) -> None:
    cfg = CONFIGS[name]
    prompt = torch.randint(0, cfg.vocab_size, (2, 7), generator=torch.Generator().manual_seed(3))
    ref_model, fused_model = _model(cfg), _model(cfg)
    ref = generate(ref_model, prompt, 12, step=static_step(ref_model), keep_logits=True)
    out = generate(fused_model, prompt, 12, step=fused_step(fused_model), keep_logits=True)
    assert torch.equal(ref.tokens, out.tokens)
    for a, b in zip(ref.logits, out.logits):
        assert torch.equal(a, b)
    for la, lb in zip(ref_model.layers, fused_model.layers):
        assert torch.equal(la.attention.kv_cache.k_cache, lb.attention.kv_cache.k_cache)
        assert torch.equal(la.attention.kv_cache.v_cache, lb.attention.kv_cache.v_cache)


def test_fused_forward_returns_the_greedy_token() -> None:
    cfg = CONFIGS["llama"]
    model = _model(cfg)
    logits, token = fused_forward(model, torch.tensor([[5], [9]]), torch.tensor([0]))
    assert logits.shape == (2, cfg.vocab_size) and torch.equal(token, logits.argmax(-1))


def test_the_fused_slots_are_slots_with_tasks() -> None:
    from autotuner.deploy.resolve import suite_task
    from autotuner.deploy.slots import SLOT_TASKS

    assert set(FUSED_SLOTS) <= set(SLOT_NAMES)
    for slot in FUSED_SLOTS:
        assert suite_task(SLOT_TASKS[slot]["bfloat16"]).is_file()
    report = Slots.pytorch().report()
    assert all(report[s].startswith("pytorch") for s in FUSED_SLOTS)


# ---- the seeds bound, on the CPU emulator ---------------------------------------------------

# XSMEM 1: the activations in shared memory, RING 4: the weights through the shared-memory ring
# (neither is every seed's default: test_decode_seeds runs those)
EMU_PARAMS = {"UPW": 2, "UNROLL": 2, "BLOCK": 64, "OCC": 2, "SPLITK": 0, "PREFETCH": 1, "XSMEM": 1, "RING": 4}
SEED_FOR_SLOT = GEMV_SEEDS


@pytest.fixture
def emulated_seeds(monkeypatch: pytest.MonkeyPatch):
    sys.path.insert(0, str(ROOT / "tests" / "unit" / "rules"))
    import cuda_emu

    reason = cuda_emu.compiler_missing()
    if reason:
        pytest.skip(reason)
    import autotuner.runtime

    monkeypatch.setattr(autotuner.runtime, "compile_module", cuda_emu.compile_module)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda *a, **k: types.SimpleNamespace(multi_processor_count=2))
    return {slot: seed_model(seed) for slot, seed in SEED_FOR_SLOT.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["llama", "qwen", "granite"])
def test_fused_path_with_emulated_seeds_matches_pytorch(name: str, emulated_seeds) -> None:
    cfg = CONFIGS[name]
    bindings = {slot: SlotBinding(slot, model_new=cls, params=dict(EMU_PARAMS)) for slot, cls in emulated_seeds.items()}
    tuned = Slots(bindings)
    prompt = torch.randint(0, cfg.vocab_size, (2, 5), generator=torch.Generator().manual_seed(11))
    ref_model, model = _model(cfg, max_seq=32), _model(cfg, slots=tuned, max_seq=32)
    ref = generate(ref_model, prompt, 4, step=eager_step(ref_model), keep_logits=True)
    out = generate(model, prompt, 4, step=fused_step(model), keep_logits=True)
    tol = tolerances_for("bfloat16")
    for step, (a, b) in enumerate(zip(ref.logits, out.logits)):
        verdict = compare_outputs(b, a, tol)
        assert verdict.ok, f"step {step}: {verdict.reason}"
    assert torch.equal(ref.tokens[:, :2], out.tokens[:, :2])
    # one kernel module per layer and slot, holding the engine's own tensors (no copies)
    instances = [m for _, m in tuned._instances.values()]
    assert len(instances) == 4 * cfg.num_layers + 1
    wqkv = model.layers[0].attention.wqkv.weight
    assert any(getattr(m, "weight", None) is not None and m.weight.data_ptr() == wqkv.data_ptr() for m in instances)
    # the caches were appended in place by the kernel, as PyTorch appends them
    written = 5 + 3  # prompt positions, then one per decode step that ran
    for la, lb in zip(ref_model.layers, model.layers):
        ka, kb = la.attention.kv_cache.k_cache[:, :, :written], lb.attention.kv_cache.k_cache[:, :, :written]
        assert compare_outputs(kb, ka, tol).ok


@pytest.mark.slow
@pytest.mark.parametrize("attention", [{"CLUSTER": 0, "BLOCK": 64}, {"CLUSTER": 8, "BLOCK": 64, "KP": 2},
                                       {"CLUSTER": 2, "BLOCK": 128, "KP": 4}], ids=["split", "cluster8", "cluster2"])
def test_fused_path_with_the_emulated_attention_seed_bound(attention: dict, emulated_seeds) -> None:
    """The attention seed (both of its paths) in the step, after the kernel that appends the newest
    K/V row: a whole (tiny) Llama and Qwen (q/k/v biases) decode."""
    import cuda_emu  # on the path: the emulated_seeds fixture put it there

    attention_seed = seed_model("attention_decode_gqa_bf16")
    tol = tolerances_for("bfloat16")
    for name in ("llama", "qwen"):
        cfg = CONFIGS[name]
        bindings = {slot: SlotBinding(slot, model_new=cls, params=dict(EMU_PARAMS)) for slot, cls in emulated_seeds.items()}
        bindings["attention_decode"] = SlotBinding("attention_decode", model_new=attention_seed, params=dict(attention))
        prompt = torch.randint(0, cfg.vocab_size, (2, 5), generator=torch.Generator().manual_seed(12))
        ref_model, model = _model(cfg, max_seq=40), _model(cfg, slots=Slots(bindings), max_seq=40)
        ref = generate(ref_model, prompt, 4, step=eager_step(ref_model), keep_logits=True)
        cuda_emu.LAUNCHED.clear()
        out = generate(model, prompt, 4, step=fused_step(model), keep_logits=True)
        family = "gqa_decode_g" if attention["CLUSTER"] == 0 else "gqa_cluster_g"
        assert {k for k in cuda_emu.LAUNCHED if k.startswith("gqa_")} == {f"{family}2"}, cuda_emu.LAUNCHED
        for step, (a, b) in enumerate(zip(ref.logits, out.logits)):
            verdict = compare_outputs(b, a, tol)
            assert verdict.ok, f"{name} step {step}: {verdict.reason}"
        assert torch.equal(ref.tokens[:, :2], out.tokens[:, :2])


@pytest.mark.slow
@pytest.mark.parametrize("params", [{"CLUSTER": 8, "BLOCK": 64, "KP": 2}, {"CLUSTER": 0, "BLOCK": 64},
                                    {"CLUSTER": 2, "BLOCK": 128, "WSMEM_KB": 1}],
                         ids=["cluster8", "split", "cluster2-streamed"])
def test_fused_path_with_the_emulated_attention_o_seed_bound(params: dict, emulated_seeds) -> None:
    """Attention + O projection + residual in one kernel (or the split kernel and gqa_oproj), in
    the step in place of attention_decode and o_residual: a whole (tiny) Llama, Qwen and Granite
    (its residual multiplier) decode; WSMEM_KB 1 leaves W's rows in global memory."""
    import cuda_emu  # on the path: the emulated_seeds fixture put it there

    seed = seed_model("attention_o_residual_bf16")
    tol = tolerances_for("bfloat16")
    for name in ("llama", "qwen", "granite"):
        cfg = CONFIGS[name]
        bindings = {slot: SlotBinding(slot, model_new=cls, params=dict(EMU_PARAMS)) for slot, cls in emulated_seeds.items()}
        bindings["attention_o_residual"] = SlotBinding("attention_o_residual", model_new=seed, params=dict(params))
        tuned = Slots(bindings)
        prompt = torch.randint(0, cfg.vocab_size, (2, 5), generator=torch.Generator().manual_seed(13))
        ref_model, model = _model(cfg, max_seq=40), _model(cfg, slots=tuned, max_seq=40)
        ref = generate(ref_model, prompt, 4, step=eager_step(ref_model), keep_logits=True)
        cuda_emu.LAUNCHED.clear()
        out = generate(model, prompt, 4, step=fused_step(model), keep_logits=True)
        launched = {k for k in cuda_emu.LAUNCHED if k.startswith("gqa_")}
        g = cfg.num_heads // cfg.num_kv_heads
        expected = {f"gqa_decode_g{g}", "gqa_oproj"} if params["CLUSTER"] == 0 else {f"gqa_cluster_o_g{g}"}
        assert launched == expected, launched
        for step, (a, b) in enumerate(zip(ref.logits, out.logits)):
            verdict = compare_outputs(b, a, tol)
            assert verdict.ok, f"{name} step {step}: {verdict.reason}"
        assert torch.equal(ref.tokens[:, :2], out.tokens[:, :2])
        # the O projection's own kernel did not run: one module per layer for the fused slot
        assert sum(1 for k in tuned._instances if k[0] == "attention_o_residual") == cfg.num_layers
        assert not any(k[0] == "o_residual" for k in tuned._instances)


@pytest.mark.parametrize("slot", FUSED_SLOTS)
def test_fused_probes_run_at_the_engine_dims(slot: str) -> None:
    cfg = CONFIGS["qwen"]
    gen = torch.Generator().manual_seed(0)
    for tokens in (1, 7):
        run, reference = probe_inputs(slot, cfg, tokens, torch.bfloat16, torch.device("cpu"), gen)
        out, ref = run(Slots.pytorch()), reference()
        assert compare_outputs(out, ref, tolerances_for("bfloat16")).ok


def test_bench_knows_the_fused_modes() -> None:
    from autotuner.cli.deploy_cmd import BENCH_MODES
    from autotuner.deploy.bench import ALL_MODES, FUSED_MODES, MODES, _Mode

    assert BENCH_MODES == MODES and set(FUSED_MODES) <= set(ALL_MODES)
    from autotuner.cli.deploy_cmd import OPT_IN_SLOT_NAMES
    from autotuner.deploy.slots import DEFAULT_SLOTS, OPT_IN_SLOTS

    assert OPT_IN_SLOT_NAMES == tuple(OPT_IN_SLOTS) and not set(OPT_IN_SLOTS) & set(DEFAULT_SLOTS)
    model = _model(CONFIGS["llama"])
    step = _Mode(model, Slots.pytorch(), "fused").step()
    assert step(torch.tensor([[1], [2]]), 0).shape == (2, CONFIGS["llama"].vocab_size)


def test_parity_contract_check_on_cpu() -> None:
    from autotuner.deploy.bench import check_parity_fp32, parity_fp32_line

    model = _model(CONFIGS["granite"], batch=1, max_seq=64)
    model.slots._launcher_state = threading.local()  # what a bound kernel's launcher holds: not copyable
    report = check_parity_fp32(model, Slots.pytorch(), paths=("fused",), steps=8)
    assert report["fused"]["max_err"] == report["bf16"]["max_err"]  # unbound: the same arithmetic
    assert report["fused"]["ok_error"] and report["fused"]["ok_tokens"]
    assert parity_fp32_line("g", "fused", report["fused"], report["bf16"]["max_err"]).endswith(": OK")


@pytest.mark.parametrize("mode", ["eager", "tuned", "fused"])
def test_bench_greedy_steps_give_the_argmax_of_the_logits_step(mode: str) -> None:
    from autotuner.deploy.bench import _Mode

    model = _model(CONFIGS["llama"], batch=2)
    token = torch.tensor([[1], [2]])
    greedy = _Mode(model, Slots.pytorch(), mode).greedy_step()(token, 0)
    assert greedy.shape == (2, 1) and greedy.dtype == torch.long
    model.setup_caches(2, 64)
    logits = _Mode(model, Slots.pytorch(), mode).step()(token, 0)
    assert torch.equal(greedy, logits.argmax(dim=-1, keepdim=True))


# ---- early epilogue inputs: who may read before its PDL wait --------------------------------

class _Recorder(torch.nn.Module):
    """A stand-in slot kernel: the right shapes, zeros, and a log of ``early_inputs`` per call."""

    log: list[tuple[str, bool]] = []
    slot = ""
    waits = True
    early_inputs = False

    def __init__(self, *args: object) -> None:
        super().__init__()
        self.args = args

    @property
    def waits_before_trigger(self) -> bool:
        return self.waits

    def forward(self, x: torch.Tensor, *rest: torch.Tensor, **_: object):  # noqa: ANN201
        self.log.append((self.slot, self.early_inputs))
        b = x.shape[0]
        if self.slot == "qkv_rope_append":
            heads, head_dim = self.args[1], self.args[3]
            return torch.zeros(b, heads, head_dim, dtype=x.dtype), rest[2], rest[3]
        if self.slot == "attention_decode":
            return torch.zeros_like(x)
        if self.slot in ("o_residual", "down_residual"):
            return torch.zeros(b, self.args[1], dtype=x.dtype)
        if self.slot == "gate_up_silu":
            return torch.zeros(b, self.args[1], dtype=x.dtype)
        vocab = self.args[1]
        return torch.zeros(b, vocab, dtype=x.dtype), torch.zeros(b, dtype=torch.long)


def _recorders(waits: dict[str, bool]) -> dict[str, SlotBinding]:
    out = {}
    for slot in ("qkv_rope_append", "attention_decode", "o_residual", "gate_up_silu", "down_residual", "lm_head_argmax"):
        attrs = {"slot": slot, "waits": waits.get(slot, True)}
        out[slot] = SlotBinding(slot, model_new=type(f"Rec_{slot}", (_Recorder,), attrs))
    return out


@pytest.mark.parametrize("case", ["all_wait", "gate_up_triggers_first", "attention_unknown"])
def test_early_inputs_only_where_the_kernel_before_waits_first(case: str) -> None:
    """A kernel reads its epilogue's inputs before its PDL wait only where the kernel before it
    waits before it lets it start: never the first q/k/v (the step's input kernel launches its
    dependents first), never down after a gate/up kernel that triggers early, never O after an
    attention kernel that does not say it waits first."""
    waits = {"all_wait": {}, "gate_up_triggers_first": {"gate_up_silu": False},
             "attention_unknown": {"attention_decode": False}}[case]
    _Recorder.log = []
    model = _model(CONFIGS["llama"], slots=Slots(_recorders(waits)), batch=1)
    fused_forward(model, torch.tensor([[3]]), torch.tensor([0]))
    early = {}
    for slot, flag in _Recorder.log:
        early.setdefault(slot, []).append(flag)
    layers = CONFIGS["llama"].num_layers
    assert layers >= 2 and early["qkv_rope_append"] == [False] + [True] * (layers - 1)
    assert early["o_residual"] == [case != "attention_unknown"] * layers
    assert early["down_residual"] == [case != "gate_up_triggers_first"] * layers
    # a slot that ran PyTorch's kernels counts as waiting first (they are never launched programmatically)
    slots = Slots(_recorders({}))
    slots.settled = False
    slots.rmsnorm(torch.ones(1, 8), torch.ones(8), 1e-6)
    assert slots.settled


def test_decode_seeds_say_whether_they_wait_before_they_trigger() -> None:
    from engine_support import FUSED_SEEDS

    resid = seed_model(FUSED_SEEDS["o_residual"])
    assert resid(8, 8, 1.0).waits_before_trigger and not resid(8, 8, 1.0, TRIGGER=1).waits_before_trigger
    assert not resid(8, 8, 1.0).early_inputs and resid(8, 8, 1.0, EARLY=1).early_inputs
    qkv = seed_model(FUSED_SEEDS["qkv_rope_append"])
    assert qkv(16, 2, 1, 8, False, 1e-6, TRIGGER=1).waits_before_trigger  # q/k/v never triggers first
    assert seed_model(FUSED_SEEDS["attention_decode"]).waits_before_trigger is True  # every kernel of it
    gate_up = seed_model(FUSED_SEEDS["gate_up_silu"])
    assert not hasattr(gate_up(8, 4, 1e-6), "early_inputs")  # its epilogue reads nothing another kernel wrote
