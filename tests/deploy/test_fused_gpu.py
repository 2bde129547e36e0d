"""The decode seeds and the fused path on the GPU.

* every decode seed against its task's reference at every shape of the task (fresh inputs,
  poisoned outputs), launched plainly and with programmatic dependent launch inside a CUDA
  graph (same bits);
* the fused path with the seeds bound, for Llama, Qwen and Granite shapes (small widths, the
  real head layouts and multipliers): the issue's parity contract against an fp32 run
  (``bench.check_parity_fp32``), with and without PDL.
"""

from __future__ import annotations


import pytest
import torch

from autotuner.deploy import GRANITE_3_2_2B, LLAMA_3_2_1B, QWEN_2_5_1_5B, Slots, build_model, tiny_config
from autotuner.deploy.slots import SlotBinding
from engine_support import ATTENTION_O_SEED, GEMV_SEEDS
from evolution.proposers.seeds import seed_model

pytestmark = [pytest.mark.gpu]
SEEDS = {  # task -> the seed that serves it (one plain GEMV seed serves the five projections)
    "decode/gemv_qkv_bf16.py": "decode_gemv_bf16",
    "decode/gemv_o_bf16.py": "decode_gemv_bf16",
    "decode/gemv_gate_up_bf16.py": "decode_gemv_bf16",
    "decode/gemv_down_bf16.py": "decode_gemv_bf16",
    "decode/gemv_lm_head_bf16.py": "decode_gemv_bf16",
    "decode/o_residual_bf16.py": "decode_gemv_residual_bf16",
    "decode/down_residual_bf16.py": "decode_gemv_residual_bf16",
    "decode/gate_up_silu_bf16.py": "decode_gate_up_silu_bf16",
    "decode/qkv_rope_append_bf16.py": "decode_qkv_rope_append_bf16",
    "decode/lm_head_argmax_bf16.py": "decode_lm_head_argmax_bf16",
    "decode/attention_o_residual_bf16.py": "attention_o_residual_bf16",
}
SLOT_SEEDS = GEMV_SEEDS
seed_class = seed_model


def seed_slots(attention_o: bool = False, variant: str = "") -> Slots:
    """The fused slots bound to the seeds at their default parameters (no archive); with
    ``attention_o`` the attention + O-projection seed too (it replaces attention and o_residual);
    with a ``variant`` (VARIANTS) its parameters on every seed that has them."""
    seeds = {**SLOT_SEEDS, **(ATTENTION_O_SEED if attention_o else {})}
    return Slots({slot: SlotBinding(slot, "seed, bound directly by the test", task=seed, model_new=seed_class(seed),
                                    params=variant_params(seed, variant))
                  for slot, seed in seeds.items()})


# Code paths of the GEMV seeds that their defaults do not take everywhere: the activations in
# shared memory at every shape; the weights through the shared-memory ring (above 48 KB a block
# for gate/up: the kernel's opt-in to more dynamic shared memory); the next kernel launched
# before the PDL wait (TRIGGER)
VARIANTS = {"": {}, "xsmem": {"XSMEM": 1}, "ring": {"RING": 8}, "trigger": {"TRIGGER": 1}}
# ... and for a seed alone: the epilogue's inputs read before the PDL wait (EARLY; in the engine
# the slots set it per call, so the fused-path tests above cover it at their defaults)
SEED_VARIANTS = {**VARIANTS, "early": {"EARLY": 1}}


def variant_params(seed: str, variant: str) -> dict:
    """The variant's parameters where the seed's ModelNew takes them all (the GEMV seeds: searched
    PARAMS, or knobs only the step sweep sets, as TRIGGER), else {}."""
    import inspect

    wanted = SEED_VARIANTS[variant]
    taken = inspect.signature(seed_model(seed).__init__).parameters
    return dict(wanted) if all(k in taken for k in wanted) else {}


CONFIGS = {
    "llama": tiny_config(LLAMA_3_2_1B, hidden_size=512, num_layers=3, num_heads=8, num_kv_heads=2, head_dim=64,
                         intermediate_size=1536, vocab_size=4096),
    "qwen": tiny_config(QWEN_2_5_1_5B, hidden_size=384, num_layers=3, num_heads=3, num_kv_heads=1, head_dim=128,
                        intermediate_size=1120, vocab_size=4099),
    "granite": tiny_config(GRANITE_3_2_2B, hidden_size=512, num_layers=3, num_heads=8, num_kv_heads=2, head_dim=64,
                           intermediate_size=1536, vocab_size=3001, attention_multiplier=0.125),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("attention_o", [False, True], ids=["", "attention_o"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fused_path_parity_against_fp32(name: str, attention_o: bool, variant: str) -> None:
    from autotuner.deploy.bench import check_parity_fp32, parity_fp32_line

    slots = seed_slots(attention_o, variant)
    model = build_model(CONFIGS[name], dtype=torch.bfloat16, device="cuda", slots=slots)
    model.setup_caches(1, 128)
    report = check_parity_fp32(model, slots, paths=("fused", "fused+graph", "fused+graph+pdl"), steps=24)
    lines = [parity_fp32_line(name, p, report[p], report["bf16"]["max_err"]) for p in ("fused", "fused+graph",
                                                                                      "fused+graph+pdl")]
    print("\n".join(lines))
    for path in ("fused", "fused+graph", "fused+graph+pdl"):
        assert report[path]["ok_error"] and report[path]["ok_tokens"], lines
    assert all(slots.bound(s) for s in SLOT_SEEDS)
    if attention_o:  # the fused kernel ran in place of attention_decode and o_residual
        assert any(k[0] == "attention_o_residual" for k in slots._instances)
        assert not any(k[0] == "o_residual" for k in slots._instances)


@pytest.mark.parametrize("variant", sorted(SEED_VARIANTS))
@pytest.mark.parametrize("task_rel", sorted(SEEDS))
def test_decode_seed_matches_its_task_on_every_shape(task_rel: str, variant: str) -> None:
    from autotuner.evaluator.compare import compare_outputs, tolerances_for
    from autotuner.evaluator.inputs import clone_inputs, make_candidate, make_inputs, make_reference
    from autotuner.evaluator.watch import OpWatch
    from autotuner.runtime import pdl_enabled
    from autotuner.tasks import load_task, suite_dir

    task = load_task(suite_dir() / task_rel)
    cls = seed_class(SEEDS[task_rel])
    params = variant_params(SEEDS[task_rel], variant)
    if variant and not params:
        pytest.skip(f"{SEEDS[task_rel]} has no {'/'.join(SEED_VARIANTS[variant])} parameter")
    tol = tolerances_for(task.dtype, task.tolerance)
    for shape in task.shapes:
        for law in ("task", "signed"):
            reference = make_reference(task, shape, 7, device="cuda")
            candidate, _ = make_candidate(task, shape, 7, cls, params, reference, device="cuda")
            inputs = make_inputs(task, shape, 11, law, device="cuda")
            with torch.no_grad():
                ref = reference(*inputs)
                copies = clone_inputs(inputs)  # outside the watch: the copies are the test's, not the seed's
                with OpWatch(task.policy) as watch:
                    out = candidate(*copies)
                assert not watch.forbidden, watch.forbidden
                verdict = compare_outputs(out, ref, tol)
                assert verdict.ok, f"{shape.name} ({law}): {verdict.reason}"
                # the same call captured in a graph with PDL on: same bits
                mine = clone_inputs(inputs)
                graph = torch.cuda.CUDAGraph()
                candidate(*mine)
                torch.cuda.synchronize()
                with pdl_enabled(True), torch.cuda.graph(graph):
                    again = candidate(*mine)
                graph.replay()
                torch.cuda.synchronize()
                outs = out if isinstance(out, tuple) else (out,)
                agains = again if isinstance(again, tuple) else (again,)
                for a, b in zip(outs, agains):
                    assert torch.equal(a, b), f"{shape.name}: PDL graph replay differs"


@pytest.mark.parametrize("pdl", [False, True], ids=["graph", "graph+pdl"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_greedy_graph_feeds_back_the_head_kernels_token(name: str, pdl: bool) -> None:
    """Greedy decoding from the graph alone (the head kernel's argmax written back as the next
    input, the position advanced on the device) gives the tokens of decoding through logits
    with the argmax on the host side, step for step; a position jump is honoured."""
    from autotuner.deploy.fused import FusedGraphDecoder
    from autotuner.deploy.generate import prefill

    slots = seed_slots()
    model = build_model(CONFIGS[name], dtype=torch.bfloat16, device="cuda", slots=slots)
    model.setup_caches(1, 128)
    prompt = torch.randint(0, CONFIGS[name].vocab_size, (1, 9), device="cuda", generator=torch.Generator("cuda").manual_seed(1))
    first = prefill(model, prompt).argmax(dim=-1, keepdim=True)
    logits_step = FusedGraphDecoder(model, pdl=pdl).step
    expected, token = [], first
    for i in range(20):
        token = logits_step(token, 9 + i).argmax(dim=-1, keepdim=True)
        expected.append(int(token))

    prefill(model, prompt)  # the same cache again
    greedy = FusedGraphDecoder(model, pdl=pdl, greedy=True)
    got, token = [], first
    for i in range(20):
        token = greedy.greedy_step(token, 9 + i)
        got.append(int(token))
    assert got == expected
    again = greedy.greedy_step(first, 9)  # back to the first position: the buffers are set again
    assert int(again) == expected[0]


@pytest.mark.parametrize("pdl", [False, True], ids=["graph", "graph+pdl"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_unrolled_greedy_graph_decodes_the_same_tokens(name: str, pdl: bool) -> None:
    """A graph of 2 or 4 greedy steps gives, chunk by chunk, the tokens of one step a replay;
    the chunk's last column fed back launches nothing else; a position jump is honoured."""
    from autotuner.deploy.fused import FusedGraphDecoder
    from autotuner.deploy.generate import prefill

    cfg = CONFIGS[name]
    model = build_model(cfg, dtype=torch.bfloat16, device="cuda", slots=seed_slots())
    model.setup_caches(2, 128)
    prompt = torch.randint(0, cfg.vocab_size, (2, 9), device="cuda", generator=torch.Generator("cuda").manual_seed(2))
    first = prefill(model, prompt).argmax(dim=-1, keepdim=True)
    one = FusedGraphDecoder(model, pdl=pdl, greedy=True)
    expected, token = [], first
    for i in range(16):
        token = one.greedy_step(token, 9 + i).clone()
        expected.append(token)
    expected = torch.cat(expected, dim=1)  # [2, 16]
    for unroll in (2, 4):
        prefill(model, prompt)  # the same cache again
        graph = FusedGraphDecoder(model, pdl=pdl, greedy=True, unroll=unroll)
        chunks, token = [], first
        for i in range(0, 16, unroll):
            out = graph.greedy_step(token, 9 + i)
            assert out.shape == (2, unroll)
            chunks.append(out.clone())
            token = out[:, -1:]
        assert torch.equal(torch.cat(chunks, dim=1), expected), f"unroll {unroll}"
        again = graph.greedy_step(first, 9)  # back to the first position
        assert torch.equal(again, expected[:, :unroll])


@pytest.mark.parametrize("variant", ["", "trigger"], ids=["early_inputs", "trigger"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_pdl_graph_gives_the_bits_of_plain_launches(name: str, variant: str) -> None:
    """The PDL graph's logits are, step for step, bit for bit those of the same kernels launched
    one after another from Python: at the defaults, where the O and down projections read their
    residual and q/k/v (after the first layer) its position and rotary rows before the PDL wait
    (Slots.settled); and with every GEMV seed letting its successor start before its own wait
    (TRIGGER 1: two kernels of the step in flight ahead of the one computing; the engine then
    lets only O read early, after the attention kernel, which waits first)."""
    from autotuner.deploy.fused import FusedGraphDecoder, fused_step
    from autotuner.deploy.generate import prefill

    cfg = CONFIGS[name]
    model = build_model(cfg, dtype=torch.bfloat16, device="cuda", slots=seed_slots(variant=variant))
    model.setup_caches(1, 128)
    prompt = torch.randint(0, cfg.vocab_size, (1, 11), device="cuda", generator=torch.Generator("cuda").manual_seed(3))
    tokens = torch.randint(0, cfg.vocab_size, (12, 1, 1), device="cuda", generator=torch.Generator("cuda").manual_seed(4))
    prefill(model, prompt)
    plain = fused_step(model)
    expected = [plain(tokens[i], 11 + i).clone() for i in range(12)]
    prefill(model, prompt)
    graph = FusedGraphDecoder(model, pdl=True)
    for i in range(12):
        got = graph.step(tokens[i], 11 + i)
        assert torch.equal(got, expected[i]), f"step {i}: max diff {(got.float() - expected[i].float()).abs().max()}"
    # the graph's O projections did read their residual early (the last call set each instance's flag)
    assert any(getattr(m, "early_inputs", False) for _, m in model.slots._instances.values())
