from autotuner.evaluator.verdict import EvalResult, Stage, Verdict
from evolution.novelty import NoveltyFilter
from evolution.population import Member, Population, niche


def member(kid, speedup, source="__global__ void k(){}", accepted=True):
    result = EvalResult(Verdict.ACCEPTED if accepted else Verdict.REJECTED,
                        Stage.DONE if accepted else Stage.CORRECTNESS, "", speedup_eager=speedup)
    return Member(kid, source, {}, result)


def test_elites_keep_one_best_per_structural_niche():
    pop = Population(islands=2, seed=0)
    pop.add(member(1, 1.0, "__global__ void a(){ float4 v; }"))
    pop.add(member(2, 2.0, "__global__ void a(){ float4 v; }"))
    pop.add(member(3, 0.5, "__global__ void a(){ __shared__ float s[32]; }"))
    assert len(pop.elites) == 2
    assert pop.elites[niche("__global__ void a(){ float4 v; }")].kernel_id == 2
    assert pop.best.kernel_id == 2


def test_selection_prefers_fitter_and_failures_are_offered_for_fixing():
    pop = Population(islands=1, seed=3)
    for kid, s in enumerate([0.5, 1.0, 3.0, 0.8]):
        pop.add(member(kid, s, f"__global__ void k{kid}(){{}}"))
    pop.add(member(99, None, accepted=False))
    picks = [pop.select(0, k=4).kernel_id for _ in range(10)]
    assert picks == [2] * 10
    assert pop.failed(0).kernel_id == 99


def test_migration_moves_the_best_to_the_next_island():
    pop = Population(islands=3, seed=0)
    pop.add(member(7, 5.0), island=0)
    pop.migrate()
    assert any(m.kernel_id == 7 for m in pop.islands[1].members)


def test_novelty_rejects_copies_that_differ_in_comments_and_spacing():
    src = 'S = r"""\nextern "C" __global__ void k(float* x) { x[0] = 1.0f; }\n"""\nclass ModelNew: pass\n'
    copy = src.replace("{ x[0]", "{  // hi\n x[0]") + "# trailing comment\n"
    novelty = NoveltyFilter()
    assert novelty.admit(src)[0]
    ok, why = novelty.admit(copy)
    assert not ok and "identical" in why
    different = src.replace("x[0] = 1.0f", "for (int i = 0; i < 100; ++i) x[i] = sqrtf((float)i) * 2.0f")
    assert novelty.admit(different)[0]
