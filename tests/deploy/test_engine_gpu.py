"""The engine on the GPU with real, verified kernels in its slots.

A module-scoped archive is filled the honest way (``engine_support.tuned_archive``): each slot
task's rule-based candidate, seed (and the hand-written silu_mul in tests/candidates) is verified
and timed by the evaluator and recorded; the engine then resolves, re-verifies and uses them.
The CLI's bench on Llama-3.2-1B shapes is in test_engine_cli_gpu.py, so that a run with a worker
per file builds its archive and compiles its torch.compile baselines beside this file's tests.
"""

from __future__ import annotations

import time

import pytest
import torch

from autotuner.deploy import GraphDecoder, Slots, build_model, generate, resolve_slots, tiny_config
from autotuner.deploy.generate import eager_step, prefill, static_step
from autotuner.deploy.slots import SLOT_TASKS
from autotuner.evaluator.compare import compare_outputs, tolerances_for

pytestmark = [pytest.mark.gpu, pytest.mark.slow]
# Llama-like proportions at a size that runs in seconds: GQA 8 over 2, head_dim 64.
CFG = tiny_config(hidden_size=512, num_layers=4, num_heads=8, num_kv_heads=2, head_dim=64, intermediate_size=1536,
                  vocab_size=1024, rms_norm_eps=1e-5)
MHA = CFG.replace(num_kv_heads=8)
TOL = tolerances_for("bfloat16")


def _model(cfg, slots, batch=1, max_seq=256, seed=0):
    model = build_model(cfg, dtype=torch.bfloat16, device="cuda", seed=seed, slots=slots)
    model.setup_caches(batch, max_seq)
    return model


def _fp32_twin(model, batch=1, max_seq=256):
    """The same (bf16-rounded) weights in fp32, PyTorch slots: the anchor both bf16 paths are measured from."""
    twin = build_model(model.cfg, dtype=torch.float32, device="cuda", seed=1, slots=Slots.pytorch())
    twin.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
    twin.setup_caches(batch, max_seq)
    return twin


def _rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-30))


def _model_logits_problem(out: torch.Tensor, ref: torch.Tensor, ref32: torch.Tensor) -> str:
    """'' if a bf16 network's logits with kernels are as good as with PyTorch's ops, else why not.

    Elementwise checks do not fit a whole network: a one-ulp bf16 difference in one layer
    moves a few of a thousand logits past an elementwise bound. Instead: within the dtype's
    relative-L2 tolerance of the PyTorch path, and no further from an fp32 run of the same
    weights than the PyTorch bf16 path is (twice its distance, plus 1e-3).
    """
    vs_ref, own, pytorch = _rel_l2(out, ref), _rel_l2(out, ref32), _rel_l2(ref, ref32)
    if vs_ref > TOL["rel_l2"]:
        return f"rel L2 {vs_ref:.4g} from the PyTorch path (tolerance {TOL['rel_l2']})"
    if own > 2 * pytorch + 1e-3:
        return f"rel L2 {own:.4g} from fp32, where PyTorch's bf16 path is {pytorch:.4g} from it"
    return ""


def _greedy_agrees(ref, out, tol_abs: float) -> str:
    """'' if the tokens agree, or diverge only where the reference's top two were within tol."""
    same = (ref.tokens == out.tokens).all(dim=0)
    if bool(same.all()):
        return ""
    i = int((~same).nonzero()[0, 0])
    top2 = ref.logits[i].topk(2, dim=-1).values
    margin = float((top2[:, 0] - top2[:, 1]).min())
    if margin <= tol_abs:
        return ""
    return f"tokens diverge at step {i} where the reference's margin {margin:.4f} exceeds {tol_abs:.4f}"


@pytest.fixture(scope="module")
def tuned_slots(tuned_archive) -> Slots:
    started = time.perf_counter()
    slots = resolve_slots(tuned_archive, "bfloat16", CFG)
    print(f"resolve_slots: {time.perf_counter() - started:.1f} s", flush=True)
    return slots


def test_slots_take_the_verified_kernels(tuned_slots) -> None:
    report = tuned_slots.report()
    print("\n".join(f"{k}: {v}" for k, v in report.items()))
    for slot in SLOT_TASKS:
        assert tuned_slots.bound(slot), f"{slot}: {report[slot]}"


def test_logits_match_pytorch_path(tuned_slots) -> None:
    prompt = torch.randint(0, CFG.vocab_size, (2, 40), device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    pos = torch.arange(40, device="cuda")
    ref_model = _model(CFG, Slots.pytorch(), batch=2)
    ref, ref32 = ref_model(prompt, pos, kv_len=40), _fp32_twin(ref_model, batch=2)(prompt, pos, kv_len=40)
    out = _model(CFG, tuned_slots, batch=2)(prompt, pos, kv_len=40)
    problem = _model_logits_problem(out, ref, ref32)
    assert not problem, problem


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "cuda_graph"])
def test_greedy_64_tokens_match_pytorch_path(tuned_slots, graph: bool) -> None:
    prompt = torch.randint(0, CFG.vocab_size, (1, 16), device="cuda", generator=torch.Generator("cuda").manual_seed(1))
    ref = generate(_model(CFG, Slots.pytorch()), prompt, 64, keep_logits=True)
    model = _model(CFG, tuned_slots)
    step = GraphDecoder(model).step if graph else eager_step(model)
    out = generate(model, prompt, 64, step=step, keep_logits=True)
    for i, (a, b) in enumerate(zip(ref.logits, out.logits)):
        if not torch.equal(ref.tokens[:, :i], out.tokens[:, :i]):
            break
        assert _rel_l2(b, a) <= TOL["rel_l2"], f"step {i}: rel L2 {_rel_l2(b, a):.4g} from the PyTorch path"
    problem = _greedy_agrees(ref, out, tol_abs=0.05 * float(ref.logits[0].abs().max()))
    assert not problem, problem


def test_cuda_graph_decode_equals_eager_decode(tuned_slots) -> None:
    prompt = torch.randint(0, CFG.vocab_size, (1, 24), device="cuda", generator=torch.Generator("cuda").manual_seed(2))
    runs = []
    for graph in (False, True):
        model = _model(CFG, tuned_slots)
        step = GraphDecoder(model).step if graph else eager_step(model)
        runs.append(generate(model, prompt, 64, step=step, keep_logits=True))
    assert torch.equal(runs[0].tokens, runs[1].tokens)
    for a, b in zip(runs[0].logits, runs[1].logits):
        assert compare_outputs(b, a, TOL).ok


@pytest.mark.parametrize("cfg", [CFG, MHA], ids=["gqa", "mha"])
def test_attention_decode_kernel_step_by_step(tuned_archive, cfg) -> None:
    """Decode steps with only the attention slot bound, eager and static (graph-ready) paths."""
    slots = resolve_slots(tuned_archive, "bfloat16", cfg, slots=("attention_decode",))
    assert slots.bound("attention_decode"), slots.report()["attention_decode"]
    prompt = torch.randint(0, cfg.vocab_size, (2, 20), device="cuda", generator=torch.Generator("cuda").manual_seed(3))
    ref, out = _model(cfg, Slots.pytorch(), batch=2), _model(cfg, slots, batch=2)
    ref32 = _fp32_twin(ref, batch=2)
    for model in (ref, out, ref32):
        prefill(model, prompt)
    token = prompt[:, -1:]
    for i in range(20, 28):
        for step in (eager_step, static_step):
            problem = _model_logits_problem(step(out)(token, i), step(ref)(token, i), step(ref32)(token, i))
            assert not problem, f"position {i}, {step.__name__}: {problem}"


def test_deploy_bench_runs_every_mode(tuned_slots) -> None:
    from autotuner.deploy.bench import MODES, bench_model

    model = build_model(CFG, dtype=torch.bfloat16, device="cuda", slots=tuned_slots)
    rows = bench_model(model, tuned_slots, [32], steps=16, batch=1, repeats=1, copy_gbps=2000.0)
    assert [r.mode for r in rows] == list(MODES)
    for r in rows:
        assert r.prefill_tok_s > 0 and r.decode_tok_s > 0 and r.total_tok_s > 0 and r.one_time_ms >= 0
        assert r.bandwidth_fraction is not None and 0 < r.bandwidth_fraction


def test_hf_adapter_parity_on_gpu(tuned_archive) -> None:
    transformers = pytest.importorskip("transformers")
    from autotuner.deploy.hf import patch_llama

    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=512, hidden_size=256, intermediate_size=768, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5)
    hf = transformers.LlamaForCausalLM(cfg).to("cuda", torch.bfloat16).eval()
    tokens = torch.randint(0, 512, (2, 33), device="cuda")
    with torch.no_grad():
        expected = hf(tokens).logits
        with patch_llama(hf, tuned_archive) as patch:
            print(patch.slots)
            assert "kernel" in patch.slots["rmsnorm"] and "kernel" in patch.slots["silu_mul"]
            got = hf(tokens).logits
    verdict = compare_outputs(got, expected, TOL)
    assert verdict.ok, verdict.reason


@pytest.mark.parametrize("length", [20, 32, 77])
def test_graph_prefill_matches_eager_prefill_and_decode_continues(length: int) -> None:
    """A bucket's graph (prompt padded to 32 or 128 tokens) gives the eager prefill's logits, and
    decoding after it gives the same tokens: the padding's cache rows are overwritten first."""
    from autotuner.deploy.prefill import GraphPrefill

    prompt = torch.randint(0, CFG.vocab_size, (1, length), device="cuda", generator=torch.Generator("cuda").manual_seed(7))
    eager_model, graph_model = _model(CFG, Slots.pytorch()), _model(CFG, Slots.pytorch())
    want = prefill(eager_model, prompt)
    graphed = GraphPrefill(graph_model, buckets=(32, 128), form="slots")
    got = graphed(prompt).clone()
    assert sorted(graphed.graphs) == [32 if length <= 32 else 128]
    assert compare_outputs(got, want, TOL).ok, f"prompt {length}: graph prefill logits differ from eager"
    again = graphed(prompt)  # a replay, not a new capture
    assert torch.equal(again, got) and len(graphed.graphs) == 1
    a, b = eager_step(eager_model), eager_step(graph_model)
    token = want.argmax(dim=-1, keepdim=True)
    for i in range(length, length + 16):
        la, lb = a(token, i), b(token, i)
        assert compare_outputs(lb, la, TOL).ok, f"decode position {i} after the graph prefill"
        token = la.argmax(dim=-1, keepdim=True)


@pytest.mark.parametrize("form", ["compiled", "auto"])
def test_compiled_and_auto_prefill_graphs_match_eager_prefill(form: str) -> None:
    """The compiled form (PyTorch's ops fused by torch.compile, captured in the bucket's graph)
    gives the eager prefill's logits, and decoding after it continues as after the eager one;
    ``auto`` captures both forms, times both and keeps the faster, and its choice says so. (That
    the compiled form never calls the model's slot kernels is pinned on the CPU.)"""
    from autotuner.deploy.prefill import GraphPrefill

    prompt = torch.randint(0, CFG.vocab_size, (1, 77), device="cuda", generator=torch.Generator("cuda").manual_seed(7))
    eager_model, model = _model(CFG, Slots.pytorch()), _model(CFG, Slots.pytorch())
    twin = _fp32_twin(eager_model)
    want, want32 = prefill(eager_model, prompt), prefill(twin, prompt)
    graphed = GraphPrefill(model, buckets=(32, 128), form=form)
    got = graphed(prompt).clone()
    # Inductor keeps fp32 between the ops it fuses where eager rounds each to bf16, so the two
    # bf16 results differ by more than an elementwise bound (rel L2 0.0165 on this model, H200):
    # the contract is issue 13's, no further from an fp32 run of the same weights than eager is
    own, eager = _rel_l2(got, want32), _rel_l2(want, want32)
    print(f"{form} prefill: rel L2 from fp32 {own:.4g}, eager bf16's {eager:.4g}, from eager {_rel_l2(got, want):.4g}")
    assert own <= 2 * eager + 1e-3, f"{form} prefill logits: rel L2 {own:.4g} from fp32, eager bf16's {eager:.4g}"
    assert torch.equal(graphed(prompt), got)  # a replay of the kept graph
    choice = graphed.choices[128]
    print(choice.describe())
    a, b, c = eager_step(eager_model), eager_step(model), eager_step(twin)
    token = want32.argmax(dim=-1, keepdim=True)
    for i in range(77, 77 + 8):  # the compiled graph wrote the cache rows the steps read
        la, lb, lc = a(token, i), b(token, i), c(token, i)
        own, eager = _rel_l2(lb, lc), _rel_l2(la, lc)
        assert own <= 2 * eager + 1e-3, f"decode position {i} after the {form} prefill: {own:.4g} from fp32, eager {eager:.4g}"
        token = lc.argmax(dim=-1, keepdim=True)
    if form == "auto":
        assert set(choice.replay_ms) == {"slots", "compiled"} and not choice.skipped, choice.describe()
        assert choice.form == min(choice.replay_ms, key=choice.replay_ms.__getitem__)
        assert graphed.graphs[128].form == choice.form
    else:
        assert choice.form == "compiled" and graphed.graphs[128].form == "compiled"
