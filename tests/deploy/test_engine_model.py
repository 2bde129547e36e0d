"""The engine on CPU with PyTorch slots: shapes, KV cache, static vs dynamic paths, greedy decode."""

from __future__ import annotations

import pytest
import torch

from autotuner.deploy import GRANITE_3_2_2B, LLAMA_3_2_1B, MODELS, QWEN_2_5_1_5B, build_model, generate, get_config, tiny_config
from autotuner.deploy.generate import eager_step, prefill, static_step
from autotuner.deploy.rope import inv_freq
from autotuner.errors import ConfigError


def test_real_shapes() -> None:
    llama = get_config("Llama-3.2-1B")
    assert (llama.hidden_size, llama.num_layers, llama.num_heads, llama.num_kv_heads, llama.head_dim) == (2048, 16, 32, 8, 64)
    assert (llama.intermediate_size, llama.vocab_size, llama.rope_theta, llama.tie_embeddings) == (8192, 128256, 500000.0, True)
    assert llama.rope_scaling is not None and llama.rope_scaling.factor == 32.0
    qwen = QWEN_2_5_1_5B
    assert (qwen.hidden_size, qwen.num_layers, qwen.num_heads, qwen.num_kv_heads, qwen.head_dim) == (1536, 28, 12, 2, 128)
    assert (qwen.intermediate_size, qwen.vocab_size, qwen.qkv_bias, qwen.rope_theta) == (8960, 151936, True, 1e6)
    granite = GRANITE_3_2_2B
    assert (granite.hidden_size, granite.num_layers, granite.vocab_size) == (2048, 40, 49155)
    assert (granite.embedding_multiplier, granite.residual_multiplier, granite.logits_scaling) == (12.0, 0.22, 8.0)
    assert granite.attention_scale == 0.015625 and llama.attention_scale == 64**-0.5
    assert set(MODELS) == {"llama-3.2-1b", "qwen2.5-1.5b", "granite-3.2-2b"}
    with pytest.raises(ConfigError, match="known: llama-3.2-1b"):
        get_config("gpt2")


def test_llama3_rope_scaling_keeps_high_frequencies_and_divides_low_ones() -> None:
    scaled, plain = inv_freq(LLAMA_3_2_1B), inv_freq(LLAMA_3_2_1B.replace(rope_scaling=None))
    assert torch.equal(scaled[:4], plain[:4])  # short wavelengths untouched
    assert torch.allclose(scaled[-4:], plain[-4:] / 32)  # long ones divided by the factor


def _model(cfg=None, dtype=torch.float32, batch=1, max_seq=128, seed=0):
    model = build_model(cfg or tiny_config(), dtype=dtype, device="cpu", seed=seed)
    model.setup_caches(batch, max_seq)
    return model


@pytest.mark.parametrize("base", [LLAMA_3_2_1B, QWEN_2_5_1_5B, GRANITE_3_2_2B], ids=lambda c: c.name)
def test_decode_after_prefill_equals_full_forward(base) -> None:
    cfg = tiny_config(base)
    prompt = torch.randint(0, cfg.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))
    full = _model(cfg, batch=2)(prompt, torch.arange(12), kv_len=12)  # [2, 12, vocab]
    model = _model(cfg, batch=2)
    last = prefill(model, prompt[:, :8])
    assert torch.allclose(last, full[:, 7], atol=1e-5)
    step = eager_step(model)
    for i in range(8, 12):
        assert torch.allclose(step(prompt[:, i : i + 1], i), full[:, i], atol=1e-5), f"position {i}"


def test_static_path_equals_dynamic_path() -> None:
    """What CUDA graphs and torch.compile run (masked attention over the whole cache)."""
    prompt = torch.randint(0, 256, (1, 10), generator=torch.Generator().manual_seed(2))
    a, b = _model(), _model()
    assert torch.allclose(prefill(a, prompt[:, :6]), a(prompt[:, :6], torch.arange(6), kv_len=None)[:, -1], atol=1e-5)
    prefill(b, prompt[:, :6])
    dyn, stat = eager_step(a), static_step(b)
    for i in range(6, 10):
        assert torch.allclose(dyn(prompt[:, i : i + 1], i), stat(prompt[:, i : i + 1], i), atol=1e-5)


def test_chunked_prefill_matches_one_prefill() -> None:
    prompt = torch.randint(0, 256, (1, 12), generator=torch.Generator().manual_seed(3))
    model = _model()
    full = model(prompt, torch.arange(12), kv_len=12)
    model2 = _model()
    model2(prompt[:, :5], torch.arange(5), kv_len=5)
    rest = model2(prompt[:, 5:], torch.arange(5, 12), kv_len=12)
    assert torch.allclose(rest, full[:, 5:], atol=1e-5)


def test_greedy_64_steps_is_deterministic_in_bf16() -> None:
    prompt = torch.randint(0, 256, (1, 8), generator=torch.Generator().manual_seed(4))
    runs = [generate(_model(dtype=torch.bfloat16), prompt, 64).tokens for _ in range(2)]
    assert runs[0].shape == (1, 64)
    assert torch.equal(runs[0], runs[1])
    static = generate(_model(dtype=torch.bfloat16), prompt, 64, step=None).tokens
    assert torch.equal(static, runs[0])


def test_generate_refuses_to_overrun_the_cache() -> None:
    with pytest.raises(ValueError, match="exceeds the cache"):
        generate(_model(max_seq=16), torch.zeros(1, 10, dtype=torch.long), 10)


def test_weight_bytes_counts_a_tied_table_once() -> None:
    tied = _model(tiny_config(tie_embeddings=True))
    untied = _model(tiny_config(tie_embeddings=False))
    table = 256 * 64 * 4
    assert untied.weight_bytes() == tied.weight_bytes()  # the untied lm_head replaces the table
    assert tied.weight_bytes() == sum(p.numel() * 4 for p in tied.parameters())
    assert table > 0


def test_parity_divergence_reports_the_reference_margin() -> None:
    from autotuner.deploy.bench import _divergence
    from autotuner.deploy.generate import Generation

    ref_logits = [torch.tensor([[3.0, 1.0, 0.0]]), torch.tensor([[2.0, 1.99, 0.0]]), torch.tensor([[0.0, 5.0, 1.0]])]
    out_logits = [torch.tensor([[3.01, 1.0, 0.0]]), torch.tensor([[1.98, 2.0, 0.0]]), torch.tensor([[0.0, 5.0, 1.0]])]
    ref = Generation(torch.tensor([[0, 0, 1]]), ref_logits)
    same = Generation(torch.tensor([[0, 0, 1]]), ref_logits)
    out = Generation(torch.tensor([[0, 1, 1]]), out_logits)
    assert _divergence(ref, same) == (None, 0.0, None)
    first, err, margin = _divergence(ref, out)
    assert first == 1 and abs(err - 0.01) < 1e-6 and abs(margin - 0.01) < 1e-6


def test_parity_line_says_identical_or_where_and_whether_a_tie() -> None:
    from autotuner.deploy.bench import parity_line

    same = {"same_tokens": True, "first_divergence": None, "max_logit_err": 0.0, "margin_at_divergence": None}
    assert parity_line("m", "tuned", 64, same) == "parity m tuned vs pure PyTorch: 64 greedy tokens identical; max |logit error| 0"
    tie = {"same_tokens": False, "first_divergence": 15, "max_logit_err": 0.07, "margin_at_divergence": 0.0}
    assert "DIFFER, first different token at step 15 (the reference's top two logits there were 0 apart: a near-tie" \
        in parity_line("m", "tuned+graph", 64, tie)
    wrong = tie | {"margin_at_divergence": 2.5}
    line = parity_line("m", "tuned", 64, wrong)
    assert "2.5 apart)" in line and "near-tie" not in line


def test_cache_positions_round_up_to_128() -> None:
    from autotuner.deploy.bench import cache_positions

    assert [cache_positions(n) for n in (1, 128, 129, 641)] == [128, 128, 256, 768]


def test_profile_report_names_the_gemm_bandwidth_and_the_gaps() -> None:
    from autotuner.deploy.profile import DecodeProfile, KernelTime, _kind, format_profile

    assert [_kind(n) for n in ("nvjet_sm90_tst_64x8", "void cublasLt::splitKreduce_kernel<>", "gqa_decode_g4",
                               "void at::native::index_elementwise_kernel<>")] == ["gemm", "gemm", "slot", "other"]
    p = DecodeProfile("m", 512, 16, graph_ms=1.5, busy_ms=1.3, kernels_per_step=3, weight_bytes=2_000_000_000,
                      kernels=[KernelTime("nvjet_x", "gemm", 1, 1000.0), KernelTime("gqa_decode_g4", "slot", 1, 250.0),
                               KernelTime("void at::native::k", "other", 1, 50.0)])
    text = format_profile(p, copy_gbps=4000.0, top=2)
    assert "launches and gaps cost 0.200 ms" in text
    assert "GEMMs read 2.00 GB in 1.000 ms: 2,000 GB/s (50% of the 4,000 GB/s copy bandwidth)" in text
    assert "gqa_decode_g4" in text and "void at::native::k" not in text  # top 2 only


def test_profile_gives_each_fused_kernel_its_bytes_and_bandwidth() -> None:
    """The fused path's kernels, named as the seeds declare them, with the bytes their slots
    read a step: the O and down projections share one kernel, so its bytes are both."""
    from autotuner.deploy import Slots, build_model, tiny_config
    from autotuner.deploy.profile import DecodeProfile, KernelTime, format_profile, fused_slot_bytes, slot_traffic
    from autotuner.deploy.slots import SlotBinding
    from engine_support import FUSED_SEEDS
    from evolution.proposers.seeds import seed_model

    model = build_model(tiny_config(), dtype=torch.bfloat16, device="cpu", slots=Slots(
        {slot: SlotBinding(slot, model_new=seed_model(name)) for slot, name in FUSED_SEEDS.items()}))
    model.setup_caches(1, 64)
    need = fused_slot_bytes(model, 40)
    traffic = slot_traffic(model, 40)
    assert traffic["dec_gemv_residual"] == need["o_residual"] + need["down_residual"]
    assert traffic["dec_norm_gate_up_silu"] == need["gate_up_silu"] > 0
    assert traffic["dec_norm_qkv_rope_append"] == need["qkv_rope_append"] > 0
    assert traffic["dec_norm_lm_head_argmax"] == need["lm_head_argmax"] > 0
    cfg = model.cfg
    assert traffic["gqa_decode_g4"] == 2 * cfg.num_kv_heads * 40 * cfg.head_dim * 2 * cfg.num_layers
    assert not any(name.startswith("copy_") for name in traffic)
    # the attention + O kernel bound: its slot's bytes (cache and W_o); the O slot's kernel idle
    model.slots.bindings["attention_o_residual"] = SlotBinding("attention_o_residual",
                                                               model_new=seed_model("attention_o_residual_bf16"))
    fused = slot_traffic(model, 40)
    assert fused["gqa_cluster_o_g2"] == need["attention_o_residual"] == need["attention_decode"] + need["o_residual"]
    assert fused["dec_gemv_residual"] == need["down_residual"]
    p = DecodeProfile("m", 512, 16, graph_ms=1.0, busy_ms=0.9, kernels_per_step=1, weight_bytes=10**9,
                      kernels=[KernelTime("dec_norm_gate_up_silu", "slot", 16, 250.0, 800_000_000)])
    assert "800.0  3,200     80" in format_profile(p, copy_gbps=4000.0)  # 800 MB in 250 us: 3,200 GB/s, 80%


@pytest.mark.parametrize("length", [5, 9, 16])
def test_padded_prefill_with_a_last_index_equals_the_unpadded_prefill(length) -> None:
    """What a bucketed prefill graph computes: the prompt padded to 16 tokens, logits taken at
    the last real token; then decode steps overwrite the padding's cache positions first."""
    prompt = torch.randint(0, 256, (1, 20), generator=torch.Generator().manual_seed(5))
    exact, padded = _model(), _model()
    want = prefill(exact, prompt[:, :length])
    tokens = torch.zeros(1, 16, dtype=torch.long)
    tokens[:, :length] = prompt[:, :length]
    got = padded(tokens, torch.arange(16), kv_len=16, last_index=torch.tensor([length - 1]))[:, 0]
    assert torch.allclose(got, want, atol=1e-5)
    a, b = eager_step(exact), eager_step(padded)
    for i in range(length, 20):
        assert torch.allclose(b(prompt[:, i : i + 1], i), a(prompt[:, i : i + 1], i), atol=1e-5), f"position {i}"


class _NoKernels:
    """Slots that fail if called: a compiled prefill must run PyTorch's ops, not the model's slots."""

    def __getattr__(self, name):
        raise AssertionError(f"the compiled prefill called the model's {name} slot")


@pytest.mark.parametrize("form", ["slots", "compiled"])
def test_a_prefill_form_gives_the_padded_prefills_logits(form) -> None:
    """Both forms a bucket's graph can run compute the padded prefill at the last real token; the
    compiled one traces as one graph (fullgraph: a break would raise) with PyTorch's ops even
    where the model's slots hold kernels (its decode keeps them)."""
    from autotuner.deploy.prefill import prefill_forward

    torch._dynamo.reset()
    prompt = torch.randint(0, 256, (1, 11), generator=torch.Generator().manual_seed(3))
    want = prefill(_model(), prompt)
    model = _model()
    tokens = torch.zeros(1, 16, dtype=torch.long)
    tokens[:, :11] = prompt
    if form == "compiled":
        model.slots = _NoKernels()
    forward = prefill_forward(model, 16, form, backend="eager")
    got = forward(tokens, torch.arange(16), torch.tensor([10]))
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5)


def test_prefill_forms_are_checked_before_anything_runs() -> None:
    from autotuner.deploy.prefill import BucketChoice, GraphPrefill, prefill_forward

    with pytest.raises(ValueError, match="expected 'auto' or one of"):
        GraphPrefill(_model(), form="fastest")
    with pytest.raises(ValueError, match="expected one of"):
        prefill_forward(_model(), 16, "auto")
    choice = BucketChoice(512, "compiled", {"slots": 2.95, "compiled": 2.61}, {})
    assert choice.describe() == "bucket 512: compiled (compiled 2.610 ms, slots 2.950 ms)"
    failed = BucketChoice(32, "slots", {}, {"compiled": "BackendCompilerFailed: no compiler"})
    assert failed.describe() == "bucket 32: slots; compiled not used: BackendCompilerFailed: no compiler"


def test_prefill_buckets_round_up() -> None:
    from autotuner.deploy.prefill import bucket_for

    assert [bucket_for(n, (32, 128, 512)) for n in (1, 32, 33, 128, 500, 513, 1100)] == [32, 32, 128, 128, 512, 1024, 1536]


def test_profile_splits_a_kernel_two_slots_share_by_slot() -> None:
    """The O and down projections run one kernel: the profile's per-slot lines match each kernel
    event (in start order) with the launch log's k-th launch of that name; host ranges and
    kernels launched outside any slot (or outside the runtime) count for no slot."""
    from types import SimpleNamespace as E

    from autotuner.deploy.profile import DecodeProfile, KernelTime, format_profile, slot_times

    def kernel(name: str, start: float, us: float) -> E:
        return E(name=name, device_type="DeviceType.CUDA", self_device_time_total=us,
                 time_range=E(start=start, end=start + us))

    log, events, t = [], [], 0.0
    for _ in range(16):  # two steps of 8 layers: O (5 us), then down (10 us), one kernel name
        log += [("o_residual", "dec_gemv_residual"), ("down_residual", "dec_gemv_residual")]
        events += [kernel("dec_gemv_residual", t, 5.0), kernel("dec_gemv_residual", t + 20, 10.0)]
        events += [kernel("elementwise_kernel", t + 40, 3.0)]  # PyTorch's: never logged
        t += 100
    log.append((None, "dec_gemv_residual"))  # a launch outside every slot call
    events.append(kernel("dec_gemv_residual", t, 50.0))
    events.append(E(name="slot:down_residual", device_type="DeviceType.CPU", self_device_time_total=0.0,
                    time_range=E(start=0.0, end=1.0)))  # the host range: not a kernel
    events.reverse()  # the profiler's order is not the start order
    found = slot_times(events, log, steps=2, slot_bytes={"o_residual": 8_000_000, "down_residual": 32_000_000})
    assert [(k.name, k.calls_per_step, k.us_per_step, k.bytes_per_step) for k in found] == [
        ("down_residual", 8.0, 80.0, 32_000_000), ("o_residual", 8.0, 40.0, 8_000_000)]
    p = DecodeProfile("m", 512, 2, graph_ms=1.0, busy_ms=0.9, kernels_per_step=32, weight_bytes=10**9,
                      kernels=[KernelTime("dec_gemv_residual", "slot", 32, 240.0, 40_000_000)], slots=found)
    text = format_profile(p, copy_gbps=4000.0)
    assert "by fused slot" in text
    assert "o_residual" in text and "    8.0    200      5" in text  # 8 MB in 40 us: 200 GB/s, 5% of copy


def test_graph_step_shares_charge_each_slot_what_it_adds_to_the_step() -> None:
    """Under PDL kernels overlap: a kernel is charged only the time its end passes the latest end
    before it (the shares sum to the step, not to the device times); the k-th kernel of a name
    that two slots share belongs to the (k mod 2)-th launch of it in one step's log; kernels the
    runtime did not launch are charged by name."""
    from types import SimpleNamespace as E

    from autotuner.deploy.profile import DecodeProfile, format_profile, step_shares

    def kernel(name: str, start: float, end: float) -> E:
        return E(name=name, device_type="DeviceType.CUDA", self_device_time_total=end - start,
                 time_range=E(start=start, end=end))

    step_log = [("o_residual", "dec_gemv_residual"), ("gate_up_silu", "gate_up"),
                ("down_residual", "dec_gemv_residual")]
    events, t = [], 1000.0
    for _ in range(2):  # a step: copy 2 us, O 5 us, gate/up starts 3 us early (PDL), down ends 4 us after gate/up
        events += [kernel("copy_kernel", t, t + 2), kernel("dec_gemv_residual", t + 2, t + 7),
                   kernel("gate_up", t + 4, t + 20), kernel("dec_gemv_residual", t + 18, t + 24)]
        t += 24
    events.reverse()
    ms, shares = step_shares(events, step_log, steps=2)
    assert ms == 0.024
    got = {x.name: (x.calls_per_step, x.step_us, x.busy_us) for x in shares}
    assert got == {"copy_kernel": (1.0, 2.0, 2.0), "o_residual": (1.0, 5.0, 5.0), "gate_up_silu": (1.0, 13.0, 16.0),
                   "down_residual": (1.0, 4.0, 6.0)}
    assert sum(x.step_us for x in shares) == 24.0
    p = DecodeProfile("m", 512, 2, graph_ms=0.025, busy_ms=0.029, kernels_per_step=4, weight_bytes=10**9,
                      graph_profiled_ms=ms, shares=shares)
    text = format_profile(p, copy_gbps=4000.0)
    assert "in the CUDA-graph step, profiled (0.024 ms a step)" in text
    assert "gate_up_silu" in text and "13.0   54.2" in text


def test_slot_ranges_wrap_the_slot_calls_and_give_the_methods_back() -> None:
    from torch.profiler import ProfilerActivity, profile

    from autotuner.deploy.profile import slot_ranges

    class Fake:
        def o_residual(self, x):  # noqa: ANN001, ANN202
            return x + 1

    from autotuner.runtime import usage

    slots = Fake()
    log: list = []
    with slot_ranges(slots, ("o_residual",), log), profile(activities=[ProfilerActivity.CPU]) as prof:
        assert slots.o_residual(torch.ones(2)).tolist() == [2.0, 2.0]
        for watcher in list(usage.WATCHERS):  # what Kernel.note_launch does at a launch, outside a slot call
            watcher("dec_gemv")
    assert "o_residual" not in vars(slots)  # the class's method again
    assert not usage.WATCHERS  # the watcher is gone
    names = [e.name for e in prof.events()]
    assert names.count("slot:o_residual") == 1
    assert log == [(None, "dec_gemv")]


def test_a_slot_call_logs_the_kernels_it_launches() -> None:
    from autotuner.deploy.profile import slot_ranges
    from autotuner.runtime import usage

    class Fake:
        def o_residual(self, x):  # noqa: ANN001, ANN202
            for watcher in list(usage.WATCHERS):  # the runtime's launch hook, as Kernel.note_launch calls it
                watcher("dec_gemv_residual")
            return x

        def down_residual(self, x):  # noqa: ANN001, ANN202
            return self.o_residual(x)  # a slot calling another: the inner call owns the launch

    slots, log = Fake(), []
    with slot_ranges(slots, ("o_residual", "down_residual"), log):
        slots.o_residual(1)
        slots.down_residual(2)
    assert log == [("o_residual", "dec_gemv_residual"), ("o_residual", "dec_gemv_residual")]
