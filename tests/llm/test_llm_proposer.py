"""The LLM proposer and its operators, always through the real HTTP server."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from autotuner.errors import LLMUnavailableError
from autotuner.evaluator.static_check import check_source
from autotuner.evaluator.verdict import EvalResult, Provenance, ShapeResult, Stage, TimingStats, Verdict
from evolution.budget import Budget
from evolution.llm.cache import ResponseCache
from evolution.llm.llm_config import LLMConfig, ModelChoice
from evolution.llm.prompts import EXAMPLE_CANDIDATE, PromptContext
from autotuner.tasks import load_task
from evolution.operators import REGISTRY, operator
from evolution.proposers.base import Parent, Proposal, ProposalBatch, ProposalRequest, Proposer
from evolution.proposers.llm import LLMProposer

from .fake_openai_server import Reply, response_text
from .support import make_config

TASKS = Path(__file__).resolve().parents[2] / "kernels" / "tasks"


@pytest.fixture(scope="module")
def relu_task():
    return load_task(TASKS / "activation" / "relu.py")


def timing(median_ms: float) -> TimingStats:
    return TimingStats.from_samples([median_ms * f for f in (0.98, 1.0, 1.0, 1.03)])


def accepted(median_ms: float, speedup: float, roofline: float) -> EvalResult:
    timed = ShapeResult("default", hidden=False, trials=3, max_abs_err=0.0, max_rel_l2=0.0, passed=True,
                        candidate=timing(median_ms), eager=timing(median_ms * speedup),
                        compiled=timing(median_ms * speedup * 0.9), bytes_moved=4_294_967_296,
                        roofline_ms=median_ms * roofline)  # fmt: skip
    hidden = ShapeResult("odd", hidden=True, trials=3, max_abs_err=0.0, max_rel_l2=0.0, passed=True)
    return EvalResult(Verdict.ACCEPTED, Stage.DONE, "correct on 4 shapes", shapes=[timed, hidden],
                      max_abs_err=0.0, speedup_eager=speedup, speedup_compile=speedup * 0.9,
                      roofline_fraction=roofline, compile_ms=42.0,
                      provenance=Provenance(harness_version="1", gpu_name="NVIDIA H200"))  # fmt: skip


GOOD = response_text("good_relu")
GOOD_SOURCE = GOOD.split("```python\n", 1)[1].split("```", 1)[0]


def request(task, op="translate", **kw) -> ProposalRequest:
    return ProposalRequest(task=task, operator=op, **kw)


# -- operators -------------------------------------------------------------------------------
def user_text(messages) -> str:
    assert [m["role"] for m in messages] == ["system", "user"]
    return messages[1]["content"]


def test_every_operator_file_has_one_entry_point_and_its_parent_count():
    assert set(REGISTRY) == {"translate", "optimize", "crossover", "fix"}
    assert {name: operator(name).PARENTS for name in REGISTRY} == {"translate": 0, "optimize": 1, "crossover": 2, "fix": 1}
    with pytest.raises(KeyError, match="known"):
        operator("mutate-everything")


def test_the_example_in_the_system_prompt_passes_the_static_check():
    assert check_source(EXAMPLE_CANDIDATE) == []


def test_translate_states_format_rules_task_and_examples_but_no_hidden_shape(relu_task):
    example = "# EXAMPLE-KERNEL for gelu\nclass ModelNew: ..."
    msgs = operator("translate").build_messages(request(relu_task, examples=(example,)), PromptContext("NVIDIA H100"))
    system, user = msgs[0]["content"], user_text(msgs)
    for must in ('extern "C" __global__', "from autotuner.runtime import compile_module", "module.launch(",
                 "PARAMS", "Policy strict", "try/except", "torch.nn.functional", "hard-code", "NaN",
                 "TF32", "NVIDIA H100", "exactly ONE ```python code block"):  # fmt: skip
        assert must in system, must
    assert "return torch.relu(x)" in user and "EXAMPLE-KERNEL for gelu" in user
    assert "'small'" in user
    hidden = [shape for shape in relu_task.shapes if shape.hidden]
    assert hidden
    for shape in hidden:
        assert repr(shape.name) not in system + user
        for value in shape.overrides.values():
            if value >= 10:  # small numbers occur anyway
                assert re.search(rf"\b{value}\b", system + user) is None, value


def test_hybrid_tasks_are_told_gemm_may_stay_in_pytorch():
    task = load_task(TASKS / "gemm" / "gemm_bias_relu.py")
    system = operator("translate").build_messages(request(task), PromptContext())[0]["content"]
    assert task.policy == "hybrid" and "Policy hybrid" in system and "cuBLAS" in system


def test_optimize_shows_the_parent_and_its_measurements(relu_task):
    parent = Parent(source=GOOD_SOURCE, params={"BLOCK": 256, "WAVES": 4}, result=accepted(1.5, 1.25, 0.62), kernel_id=7)
    user = user_text(operator("optimize").build_messages(request(relu_task, "optimize", parents=(parent,)), PromptContext()))
    assert GOOD_SOURCE.strip() in user
    for must in ("1.25x vs eager", "1.12x vs torch.compile", "62.0% of the roofline", "median 1.5 ms",
                 "Roofline floor 0.93 ms", "4,294,967,296 bytes", "odd (hidden) ok", "'BLOCK': 256", "faster"):  # fmt: skip
        assert must in user, must


def test_fix_shows_the_failure_and_quotes_the_compiler_line(relu_task):
    broken = GOOD_SOURCE.replace("v.w = fmaxf(v.w, 0.0f);", "v.w = fmaxf(v.q, 0.0f);")
    cuda = broken.split("r'''", 1)[1]  # the string starts right after the quotes: line 1 is empty
    cuda_line = next(n for n, line in enumerate(cuda.splitlines(), start=1) if "v.q" in line)
    reason = f'CUDA compile failed (relu_f32): line {cuda_line}: error: class "float4" has no member "q"'
    result = EvalResult(Verdict.REJECTED, Stage.COMPILE, reason)
    parent = Parent(source=broken, result=result, kernel_id=3)
    user = user_text(operator("fix").build_messages(request(relu_task, "fix", parents=(parent,)), PromptContext()))
    assert "rejected (stage compile)" in user and 'has no member "q"' in user
    assert f"CUDA line {cuda_line}: v.w = fmaxf(v.q, 0.0f);" in user
    assert "v.q" in user and "Find the cause" in user


def test_crossover_shows_both_parents_with_their_timings(relu_task):
    a = Parent(source=GOOD_SOURCE.replace("relu_f32", "relu_a"), result=accepted(2.0, 1.1, 0.5), kernel_id=1)
    b = Parent(source=GOOD_SOURCE.replace("relu_f32", "relu_b"), result=accepted(1.7, 1.3, 0.58), kernel_id=2)
    user = user_text(operator("crossover").build_messages(request(relu_task, "crossover", parents=(a, b)), PromptContext()))
    assert "Parent A" in user and "Parent B" in user and "relu_a" in user and "relu_b" in user
    assert "median 2 ms" in user and "median 1.7 ms" in user and "50.0% of the roofline" in user


# -- the proposer ----------------------------------------------------------------------------
def test_llm_proposer_satisfies_the_protocol(fake_server, env):
    with LLMProposer(make_config(fake_server), env=env) as proposer:
        assert isinstance(proposer, Proposer) and proposer.name == "llm"


def test_translate_returns_a_proposal_with_params_and_the_call(fake_server, env, relu_task):
    fake_server.script(Reply.answer(GOOD, prompt_tokens=3000, completion_tokens=900))
    budget = Budget()
    with LLMProposer(make_config(fake_server), budget, env=env, gpu_name="NVIDIA H200") as proposer:
        batch = proposer.propose(request(relu_task))
    assert isinstance(batch, ProposalBatch) and batch.notes == []
    (proposal,) = batch.proposals
    assert isinstance(proposal, Proposal)
    assert proposal.source == GOOD_SOURCE and proposal.operator == "translate"
    assert proposal.proposer == "llm:fake-model" and proposal.parents == ()
    assert proposal.params_space == {"BLOCK": [128, 256, 512], "WAVES": [2, 4, 8]}
    assert proposal.default_params == {"BLOCK": 256, "WAVES": 4}
    assert proposal.notes.startswith("Here is a ReLU for the task.")
    assert batch.llm_calls == [proposal.llm_call] and proposal.llm_call.tokens_in == 3000
    assert budget.spent()["llm_tokens"] == 3900 and budget.spent()["llm_usd"] > 0
    assert "NVIDIA H200" in fake_server.completions[0].body["messages"][0]["content"]


def test_optimize_records_parent_ids_and_takes_the_gpu_from_the_parent(fake_server, env, relu_task):
    fake_server.script(Reply.answer(GOOD))
    parent = Parent(source=GOOD_SOURCE, result=accepted(1.5, 1.2, 0.6), kernel_id=41)
    with LLMProposer(make_config(fake_server), env=env) as proposer:
        batch = proposer.propose(request(relu_task, "optimize", parents=(parent,)))
    assert batch.proposals[0].parents == (41,) and batch.proposals[0].operator == "optimize"
    assert "NVIDIA H200" in fake_server.completions[0].body["messages"][0]["content"]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply.answer(response_text("no_code")), "unparseable response: no ```python code block"),
        (Reply.answer(response_text("truncated")), "unparseable response: response truncated at line"),
        (Reply.answer(""), "unparseable response: empty response"),
        (Reply.status(500, retry_after=0.01), "HTTP 500"),
        (Reply.malformed(), "malformed response"),
    ],
)
def test_failures_are_recorded_calls_and_notes_never_exceptions(fake_server, env, relu_task, reply, error):
    fake_server.script(reply)
    budget = Budget()
    with LLMProposer(make_config(fake_server, max_retries=0), budget, env=env) as proposer:
        batch = proposer.propose(request(relu_task))
    assert batch.proposals == []
    (call,) = batch.llm_calls
    assert call.error is not None and error in call.error
    assert len(batch.notes) == 1 and error in batch.notes[0] and "llm:fake-model translate" in batch.notes[0]
    assert budget.spent()["llm_calls"] == 1


def test_mixed_batch_keeps_every_call(fake_server, env, relu_task):
    fake_server.script(Reply.answer(GOOD), Reply.answer(response_text("no_code")),
                       Reply.answer(response_text("think")))  # fmt: skip
    with LLMProposer(make_config(fake_server, concurrency=1), env=env) as proposer:
        batch = proposer.propose(request(relu_task, n=3))
    assert len(batch.proposals) == 2 and len(batch.llm_calls) == 3
    assert sum(c.error is not None for c in batch.llm_calls) == 1


def test_operator_misuse_is_a_note(fake_server, env, relu_task):
    with LLMProposer(make_config(fake_server), env=env) as proposer:
        tune = proposer.propose(request(relu_task, "tune"))
        orphan = proposer.propose(request(relu_task, "crossover", parents=(Parent(source=GOOD_SOURCE),)))
    assert tune.proposals == [] and "no operator 'tune'" in tune.notes[0]
    assert orphan.proposals == [] and "needs 2 parent(s), got 1" in orphan.notes[0]
    assert fake_server.completions == []


def test_models_are_chosen_by_weight_reproducibly(fake_server, env, relu_task):
    models = (ModelChoice("fake-model", 3.0), ModelChoice("fake-big", 1.0))
    config = make_config(fake_server, models=models)
    with LLMProposer(config, env=env, seed=1) as one, LLMProposer(config, env=env, seed=1) as two:
        draws = [one.choose_model() for _ in range(2000)]
        assert draws == [two.choose_model() for _ in range(2000)]
        assert 0.70 < draws.count("fake-model") / len(draws) < 0.80
        fake_server.responder = lambda body: Reply.answer(GOOD)
        batch = one.propose(request(relu_task, n=12))
    seen = {r.model for r in fake_server.completions}
    assert seen == {"fake-model", "fake-big"}
    assert sorted(p.proposer for p in batch.proposals) == sorted(f"llm:{r.model}" for r in fake_server.completions)


def test_requests_are_in_flight_together(fake_server, env, relu_task):
    fake_server.responder = lambda body: Reply.slow(GOOD, delay_s=0.3)
    with LLMProposer(make_config(fake_server, concurrency=4), env=env) as proposer:
        started = time.monotonic()
        batch = proposer.propose(request(relu_task, n=4))
        elapsed = time.monotonic() - started
    assert len(batch.proposals) == 4
    assert fake_server.max_in_flight == 4 and elapsed < 1.0


def test_background_batches_share_the_concurrency_limit(fake_server, env, relu_task):
    fake_server.responder = lambda body: Reply.slow(GOOD, delay_s=0.15)
    with LLMProposer(make_config(fake_server, concurrency=3), env=env) as proposer:
        futures = [proposer.submit(request(relu_task, n=2)) for _ in range(4)]
        batches = [f.result(timeout=10) for f in futures]
    assert sum(len(b.proposals) for b in batches) == 8
    assert fake_server.max_in_flight == 3


def test_propose_is_safe_from_several_threads(fake_server, env, relu_task):
    fake_server.responder = lambda body: Reply.answer(GOOD)
    budget = Budget()
    results: list[ProposalBatch] = []
    with LLMProposer(make_config(fake_server), budget, env=env) as proposer:
        threads = [threading.Thread(target=lambda: results.append(proposer.propose(request(relu_task, n=2))))
                   for _ in range(6)]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sum(len(b.proposals) for b in results) == 12 and budget.spent()["llm_calls"] == 12


def test_a_spent_budget_sends_nothing(fake_server, env, relu_task):
    budget = Budget(max_candidates=1)
    budget.count_candidate()
    with LLMProposer(make_config(fake_server), budget, env=env) as proposer:
        batch = proposer.propose(request(relu_task, n=3))
    assert batch.proposals == [] and fake_server.completions == []
    assert "budget exhausted (max_candidates" in batch.notes[0] and "3 request(s) not sent" in batch.notes[0]


def test_token_cap_stops_further_requests(fake_server, env, relu_task):
    fake_server.responder = lambda body: Reply.answer(GOOD, prompt_tokens=600, completion_tokens=600)
    budget = Budget(max_tokens=1000)
    with LLMProposer(make_config(fake_server, concurrency=1), budget, env=env) as proposer:
        first = proposer.propose(request(relu_task))
        second = proposer.propose(request(relu_task))
    assert len(first.proposals) == 1 and second.proposals == []
    assert len(fake_server.completions) == 1 and "max_tokens" in second.notes[0]


def test_samples_are_distinct_and_a_rerun_replays_from_the_cache(fake_server, env, relu_task, tmp_path):
    fake_server.script(Reply.answer(GOOD), Reply.answer(response_text("think")))
    config = make_config(fake_server, cache=True, concurrency=1)
    with LLMProposer(config, cache=ResponseCache(tmp_path), env=env) as proposer:
        first = proposer.propose(request(relu_task, n=2))
    assert len(fake_server.completions) == 2  # n=2: two requests, not one cached twice
    with LLMProposer(config, cache=ResponseCache(tmp_path), env=env) as proposer:
        again = proposer.propose(request(relu_task, n=2))
    assert len(fake_server.completions) == 2
    assert all(c.cached and c.cost_usd == 0 for c in again.llm_calls)
    assert sorted(p.source for p in again.proposals) == sorted(p.source for p in first.proposals)


def test_unreachable_endpoint_raises_unavailable(env, relu_task):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", models=(ModelChoice("m"),), max_retries=0, cache=False)
    with LLMProposer(config, env=env) as proposer, pytest.raises(LLMUnavailableError, match=str(port)):
        proposer.propose(request(relu_task, n=2))
