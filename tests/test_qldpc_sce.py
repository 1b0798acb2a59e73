"""Unit tests of the qldpc_sce module: constructions, GF(2) algebra, distances, noise, grammar, proposers."""

from dataclasses import replace

import numpy as np
import pytest
from ldpc.mod2 import rank as ldpc_rank

from llmtheory.qldpc_sce import (
    KNOWN_BB_CODES,
    Distance,
    Evaluation,
    GrammarProposer,
    Group,
    Limits,
    LLMProposer,
    Spec,
    bivariate_bicycle,
    clopper_pearson,
    commutes,
    css_code,
    css_dimension,
    decoding_failures,
    depolarizing_errors,
    distance_upper_bound,
    dual_permutation,
    evaluate_matrices,
    evolve,
    exact_distance,
    gf2_rank,
    hypergraph_product,
    lifted_product,
    logical_error_rate,
    make_concept,
    matches_known,
    milp_min_logical,
    parse_proposal,
    proved_distance,
    quick_ler,
    random_classical_ldpc,
    random_hgp,
    random_spec,
    realise,
    refine,
    regular_representation,
    search_score,
    selection_key,
    spec_problems,
    toric_seed,
    trust_cap,
)
from llmtheory.qldpc_sce_experiment import family_over
from llmtheory.seeding import make_rng


def known(name):
    c = KNOWN_BB_CODES[name]
    return bivariate_bicycle(c["l"], c["m"], c["A"], c["B"])


def test_bb72_has_n72_k12_and_commuting_checks():
    hx, hz = known("[[72,12,6]]")
    assert hx.shape == (36, 72) and hz.shape == (36, 72)
    assert commutes(hx, hz)
    assert css_dimension(hx, hz) == 12
    code = css_code(hx, hz)
    assert code.k == 12
    # X and Z logicals pair up: the k×k matrix of their overlaps is invertible over GF(2)
    assert gf2_rank((code.lx.astype(int) @ code.lz.T.astype(int)) % 2) == 12


@pytest.mark.parametrize("name", list(KNOWN_BB_CODES))
def test_table_codes_have_their_n_and_k(name):
    n, k, _ = (int(x) for x in name.strip("[]").split(","))
    hx, hz = known(name)
    assert hx.shape[1] == n and commutes(hx, hz) and css_dimension(hx, hz) == k


def test_nonabelian_lifted_product_commutes_and_needs_left_right_lifts():
    group = Group(7, 3, 2)  # Z_7 ⋊ Z_3, order 21, non-abelian
    assert group.is_valid() and not group.is_abelian
    a = ((((0, 0), (1, 0), (0, 1)), ((2, 1),)),)
    b = ((((0, 0), (3, 1)),), (((1, 2), (0, 1)),))
    hx, hz = lifted_product(group, a, b)
    assert hx.shape[1] == 21 * (2 * 2 + 1 * 1)
    assert commutes(hx, hz) and css_dimension(hx, hz) > 0
    # With left lifts on both sides the checks stop commuting: the left/right choice matters.
    assert not commutes(*lifted_product(group, a, b, b_side="left"))
    assert commutes(*lifted_product(Group(7, 3, 1), a, b, b_side="left"))  # abelian: either side works


def test_dihedral_group_and_regular_representations_commute():
    group = Group(5, 2, 4)  # dihedral group of order 10
    assert group.is_valid() and not group.is_abelian
    left = regular_representation(group, ((1, 0), (0, 1)), "left")
    right = regular_representation(group, ((2, 1), (3, 0)), "right")
    assert np.array_equal((left @ right) % 2, (right @ left) % 2)
    table = group.multiplication_table()
    assert all(sorted(row) == list(range(10)) for row in table)  # a Latin square: a group table


def test_invalid_twist_is_rejected():
    assert not Group(7, 2, 2).is_valid()  # 2^2 = 4 != 1 mod 7
    assert Group(7, 3, 2).is_valid()  # 2^3 = 8 = 1 mod 7


def test_gf2_rank_agrees_with_ldpc():
    rng = make_rng(0, "rank")
    for _ in range(30):
        rows, cols = rng.integers(1, 40, size=2)
        m = (rng.random((rows, cols)) < rng.uniform(0.05, 0.6)).astype(np.uint8)
        assert gf2_rank(m) == ldpc_rank(m)


def test_exact_distance_of_toric_codes_and_bound_is_above_it():
    rng = make_rng(0, "distance")
    for size in (3, 4):
        spec = toric_seed(size, size)
        code = css_code(*lifted_product(spec.group, spec.a, spec.b))
        assert (code.n, code.k) == (2 * size * size, 2)
        assert exact_distance(code) == size
        assert distance_upper_bound(code, 3, rng) >= size


def test_bb72_distance_bound_reaches_six():
    code = css_code(*known("[[72,12,6]]"))
    assert distance_upper_bound(code, 5, make_rng(0, "bb72")) == 6
    assert "lifted_product" in make_concept(toric_seed(3, 3)).program  # shown, never executed


def test_depolarizing_marginals():
    u = make_rng(0, "noise").random((4000, 50))
    x, z = depolarizing_errors(u, 0.3)
    assert abs(x.mean() - 0.2) < 0.01 and abs(z.mean() - 0.2) < 0.01
    assert abs((x & z).mean() - 0.1) < 0.01  # Y errors


def test_logical_error_rate_is_zero_without_noise_and_interval_covers():
    code = css_code(*known("[[72,12,6]]"))
    u = make_rng(0, "ler").random((50, 72))
    assert logical_error_rate(code, 0.0, u) == (0, 50)
    low, high = clopper_pearson(7, 100)
    assert low < 0.07 < high and 0 < low and high < 1


def test_grammar_mutations_never_yield_malformed_specs():
    limits = Limits()
    rng = make_rng(0, "grammar")
    proposer = GrammarProposer(limits)
    concept = make_concept(random_spec(rng, limits))
    for _ in range(300):
        child = proposer.propose(concept, rng)
        if child is None:
            continue
        assert spec_problems(child.spec, limits) == []
        hx, hz = realise(child.spec)
        assert hx.shape[1] == child.spec.n and commutes(hx, hz)
        concept = child


def test_parser_rejects_bad_proposals_without_raising():
    limits = Limits()
    spec, reason = parse_proposal('ok: {"l":6,"m":6,"A":[[[[3,0],[0,1],[0,2]]]],"B":[[[[0,3],[1,0],[2,0]]]]}', limits)
    assert spec is not None and reason == "" and spec.n == 72
    assert parse_proposal("no idea", limits)[0] is None
    assert parse_proposal('{"l": 6, "m":', limits)[0] is None
    assert parse_proposal('{"l":7,"m":2,"twist":2,"A":[[[[0,0]]]],"B":[[[[0,1]]]]}', limits)[0] is None
    assert parse_proposal('{"l":4,"m":1,"A":[[[[9,0]]]],"B":[[[[0,0]]]]}', limits)[0] is None


def test_llm_proposer_counts_invalid_answers_and_never_crashes():
    limits = Limits()
    answers = iter(["garbage", "{broken", '{"l":3,"m":3,"A":[[[[0,0],[1,0]]]],"B":[[[[0,0],[0,1]]]]}'] * 10)

    def generate(prompt):
        answer = next(answers)
        if answer == "{broken":
            raise RuntimeError("model crashed")
        return answer

    proposer = LLMProposer(generate, limits)
    result = evolve([toric_seed(2, 2)], proposer, 13, make_rng(0, "llm"), limits=limits)
    assert len(result.evaluations) == 13
    assert proposer.stats.invalid == 8 and proposer.stats.proposed == 12


def test_evolution_is_deterministic_given_the_seed():
    limits = Limits(max_n=60)
    runs = []
    for _ in range(2):
        seeds = [random_spec(make_rng(0, "seed", i), limits) for i in range(3)]
        result = evolve(seeds, GrammarProposer(limits), 20, make_rng(0, "evolve"), limits=limits)
        runs.append([(e.stage, e.n, e.k, e.d) for e in result.evaluations])
    assert runs[0] == runs[1]


def test_staged_evaluator_stages_and_refinement_never_raise_the_bound():
    rng = make_rng(0, "stages")
    hx, hz = known("[[72,12,6]]")
    scored = evaluate_matrices(hx, hz, rng, 2)
    assert scored.valid and (scored.n, scored.k) == (72, 12) and scored.d >= 6
    assert refine(scored, 5, rng).d <= scored.d
    assert evaluate_matrices(hx, np.roll(hz, 1, axis=1), rng, 2).stage == "not CSS"
    with_ler = quick_ler(scored, rng, 16)
    assert 0.0 <= with_ler.ler <= 1.0
    assert selection_key(replace(with_ler, ler=0.0)) > selection_key(replace(with_ler, ler=0.5))


# ----- distances proved by integer programming ------------------------------------------------------------


def steane_code():
    hamming = np.array([[1, 0, 1, 0, 1, 0, 1], [0, 1, 1, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1, 1]], dtype=np.uint8)
    return css_code(hamming, hamming)


def test_milp_proves_steane_and_toric_distances():
    steane = steane_code()
    assert (steane.n, steane.k) == (7, 1)
    assert proved_distance(steane, 30) == Distance(3, 3, "MILP")
    for size in (3, 4):
        spec = toric_seed(size, size)
        code = css_code(*realise(spec))
        plain = proved_distance(code, 30)
        reduced = proved_distance(code, 30, orbit_size=size * size, dual=dual_permutation(spec.group))
        assert plain.exact and reduced.exact and plain.high == reduced.high == size == exact_distance(code)


def test_milp_proves_bb72_distance_six_with_verified_symmetry():
    spec = KNOWN_BB_CODES["[[72,12,6]]"]
    group = Group(spec["l"], spec["m"])
    code = css_code(*bivariate_bicycle(spec["l"], spec["m"], spec["A"], spec["B"]))
    perm = dual_permutation(group)
    assert sorted(perm) == list(range(72))
    assert gf2_rank(np.vstack([code.hz, code.hx[:, perm]])) == gf2_rank(code.hz)  # H_X ↔ H_Z under the map
    assert proved_distance(code, 120, orbit_size=36, dual=perm).high == 6
    assert proved_distance(code, 120, orbit_size=36, dual=perm).exact


def test_milp_at_a_tiny_node_limit_returns_bounds_around_d_and_the_same_ones_twice():
    spec = KNOWN_BB_CODES["[[90,8,10]]"]
    code = css_code(*bivariate_bicycle(spec["l"], spec["m"], spec["A"], spec["B"]))
    low, high = milp_min_logical(code.hx, code.lx, 1)
    assert 1 <= low <= 10 <= high
    assert milp_min_logical(code.hx, code.lx, 1) == (low, high)  # a work limit, not a clock: deterministic
    first = proved_distance(code, 20, orbit_size=45, dual=dual_permutation(Group(15, 3)))
    assert proved_distance(code, 20, orbit_size=45, dual=dual_permutation(Group(15, 3))) == first
    assert first.low <= 10 <= first.high


def test_an_infinite_or_missing_dual_bound_gives_the_trivial_lower_bound():
    from llmtheory.qldpc_sce import _ceil_bound

    assert _ceil_bound(float("-inf")) == 0 and _ceil_bound(float("inf")) == 0 and _ceil_bound(float("nan")) == 0
    assert _ceil_bound(3.2) == 4 and _ceil_bound(4.0 + 1e-9) == 4


def test_milp_agrees_with_enumeration_on_random_codes():
    rng, limits, checked = make_rng(0, "milp-vs-enumeration"), Limits(max_n=48), 0
    while checked < 8:
        spec = random_spec(rng, limits)
        code = css_code(*realise(spec))
        exact = exact_distance(code, max_kernel_dim=20) if code.k else None
        if exact is None:
            continue
        abelian = spec.group.is_abelian
        proof = proved_distance(code, 10_000, orbit_size=spec.group.order if abelian else None)
        assert proof.exact and proof.high == exact, (spec, proof, exact)
        low, weight, vector = milp_min_logical(code.hx, code.lx, 10_000, return_vector=True)
        assert vector.sum() == weight and not ((code.hx @ vector) % 2).any() and ((code.lx @ vector) % 2).any()
        checked += 1


def test_symmetry_reductions_are_not_applied_over_non_abelian_groups(monkeypatch):
    import llmtheory.qldpc_sce as module

    calls = []
    monkeypatch.setattr(module, "proved_distance", lambda code, nodes, **kw: calls.append(kw) or Distance(2, 2, "x"))
    group = Group(7, 3, 2)
    spec = Spec(group, ((((0, 0), (1, 0), (0, 1)),),), ((((0, 0), (3, 1)),),))
    assert not group.is_abelian
    hx, hz = realise(spec)
    evaluation = Evaluation(
        "scored", hx.shape[1], css_dimension(hx, hz), 4, "upper bound", 1.0, spec=spec, matrices=(hx, hz)
    )
    module.prove(evaluation, 10, 10**6)
    assert calls == [{"orbit_size": None, "dual": None, "upper": 4}]


def test_a_false_symmetry_is_refused():
    # the 3-qubit repetition code: d_Z = 3 but d_X = 1; a claimed X↔Z symmetry must be checked, not trusted
    code = css_code(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.uint8), np.zeros((1, 3), dtype=np.uint8))
    assert proved_distance(code, 30, dual=np.arange(3)).high == 1
    assert milp_min_logical(code.hx, code.lx, 30) == (3, 3)


def test_matches_known_needs_a_proved_distance_and_the_score_caps_bounds():
    bound = Evaluation("scored", 72, 12, 6, "upper bound", 0.0)
    assert matches_known(bound) is None  # an upper bound ≥ the table's d proves nothing
    assert matches_known(replace(bound, distance_kind="exact", d_low=6)) == "[[72,12,6]]"
    assert matches_known(replace(bound, distance_kind="bounds", d_low=5)) is None
    assert search_score(72, 12, 20, exact=False) == pytest.approx(12 * trust_cap(72) ** 2 / 72)
    assert search_score(72, 12, 20, exact=True) == pytest.approx(12 * 400 / 72)


# ----- the unstructured control that is valid by construction ---------------------------------------------


def test_hypergraph_product_of_cycles_is_the_toric_code():
    cycle = (np.eye(3, dtype=np.uint8) + np.roll(np.eye(3, dtype=np.uint8), 1, axis=1)) % 2
    hx, hz = hypergraph_product(cycle, cycle)
    code = css_code(hx, hz)
    assert (code.n, code.k, exact_distance(code)) == (18, 2, 3)


def test_random_hgp_is_css_within_the_grammar_bounds():
    rng, limits = make_rng(0, "hgp"), Limits()
    for _ in range(20):
        hx, hz = random_hgp(rng, limits)
        assert commutes(hx, hz) and 24 <= hx.shape[1] <= limits.max_n
        assert max(hx.sum(axis=1).max(), hz.sum(axis=1).max()) <= limits.max_check_weight
    h = random_classical_ldpc(12, 8, 3, rng)
    assert (h.sum(axis=0) == 3).all() and h.sum(axis=1).max() - h.sum(axis=1).min() <= 1


# ----- decoding ------------------------------------------------------------------------------------------


def test_a_logical_operator_as_the_error_makes_the_decoder_fail():
    code = css_code(*known("[[72,12,6]]"))
    zero = np.zeros((1, code.n), dtype=np.uint8)
    # a Z logical has a zero syndrome, so the decoder corrects nothing and the logical survives
    assert decoding_failures(code, zero, code.lz[:1], 0.05).all()
    assert decoding_failures(code, code.lx[:1], zero, 0.05).all()
    stabiliser = code.hx[:1]  # an X stabiliser as the X error is harmless
    assert not decoding_failures(code, stabiliser, zero, 0.05).any()


def test_logical_error_rate_increases_with_p():
    spec = toric_seed(4, 4)
    code = css_code(*realise(spec))
    uniforms = make_rng(0, "ler-p").random((400, code.n))
    failures = [logical_error_rate(code, p, uniforms, osd_order=0)[0] for p in (0.02, 0.08, 0.16)]
    assert failures[0] < failures[1] < failures[2]


def test_family_over_keeps_the_protographs_and_grows_n():
    spec = KNOWN_BB_CODES["[[144,12,12]]"]
    bb = Spec(Group(12, 6), ((tuple(sorted(spec["A"])),),), ((tuple(sorted(spec["B"])),),))
    members = family_over(bb, range(3, 13), Limits())
    assert [m.n for m in members] == sorted(m.n for m in members) and {72, 144} <= {m.n for m in members}
    assert all(css_dimension(*realise(m)) > 0 for m in members)


def comparison_table(rows):
    import pandas as pd

    columns = ["replicate", "search", "k·d²/n", "proved k·d²/n", "upper k·d²/n"]
    return pd.DataFrame([dict(zip(columns, row, strict=True)) for row in rows])


def test_search_comparison_is_decisive_only_on_proved_against_upper_scores():
    from llmtheory.claims import MEASURED, decide
    from llmtheory.qldpc_sce_experiment import comparison

    rows = []
    for r, (a, b) in enumerate([(5.0, 2.0), (6.0, 2.5), (5.5, 2.0)]):
        rows += [(r, "a", a, a, a), (r, "a2", a + 0.1 * r, a, a + 0.2), (r, "b", b, b, b)]
    proved = comparison(comparison_table(rows), "a", "b", ("a2", "a"))
    assert proved.pop("rule").startswith("paired difference") and proved.pop("ours")
    assert decide(MEASURED, **proved) == "reproduced"
    # the same scores, but a's distances unproved (proved score 0.5) and b's upper bounds high: the pass is not
    # decided, and neither is the A/A control's failure, so the ledger cannot tell them apart
    loose = [(r, s, v, 0.5 if s == "a" else lo, hi + 3 if s == "b" else hi) for r, s, v, lo, hi in rows]
    arguments = comparison(comparison_table(loose), "a", "b", ("a2", "a"))
    del arguments["rule"], arguments["ours"]
    assert arguments["holds"].holds and not arguments["holds"].decisive
    assert decide(MEASURED, **arguments) == "rule does not discriminate"
    # the control's failure is undecided above because a's distances are unproved: proofs could still make a2 − a
    # pass. With both runs of a proved (only b's upper bounds loose), no proof can make the control pass: its failure
    # is decided, and the undecided pass counts qualitatively
    proved_a = [(r, s, v, v if s in ("a", "a2") else lo, v if s in ("a", "a2") else hi) for r, s, v, lo, hi in loose]
    arguments = comparison(comparison_table(proved_a), "a", "b", ("a2", "a"))
    del arguments["rule"], arguments["ours"]
    assert arguments["holds"].holds and not arguments["holds"].decisive and arguments["control"].holds.decisive
    assert decide(MEASURED, **arguments) == "reproduced (qualitatively)"
    # a control that passes the rule (its second run is far better) makes the rule non-discriminating
    rows_bad = [(r, s, v + (5 if s == "a2" else 0), lo, hi) for r, s, v, lo, hi in rows]
    arguments = comparison(comparison_table(rows_bad), "a", "b", ("a2", "b"))
    del arguments["rule"], arguments["ours"]
    assert decide(MEASURED, **arguments) == "rule does not discriminate"


def family(rows):
    import pandas as pd

    return pd.DataFrame(rows, columns=["n", "d low", "d high", "distance"])


def test_family_growth_counts_only_proved_growth():
    from llmtheory.qldpc_sce_experiment import family_growth

    stalled = family(
        [
            (20, 2, 2, "exact"),
            (50, 3, 3, "exact"),
            (80, 4, 4, "exact"),
            (110, 0, 4, "upper bound"),
            (140, 0, 4, "upper bound"),
        ]
    )
    assert not family_growth(stalled).holds  # the referee's case: upper bounds show d stops at 4
    grows = family([(20, 2, 2, "exact"), (80, 5, 7, "bounds")])
    assert family_growth(grows).holds and family_growth(grows).decisive
    open_ = family([(20, 0, 4, "upper bound"), (80, 0, 7, "upper bound")])
    assert family_growth(open_).holds and not family_growth(open_).decisive


def test_paired_ler_difference_and_the_competitive_rule():
    from llmtheory.qldpc_sce_experiment import competitive_test, paired_ler

    rng = make_rng(0, "paired")
    same = rng.random(500) < 0.1
    tie = paired_ler(same, 4, same, 4, rng)
    assert tie.value == tie.low == tie.high == 0
    worse = paired_ler(same | (rng.random(500) < 0.2), 4, same, 4, rng)
    assert worse.low > 0
    better = paired_ler(same, 4, same | (rng.random(500) < 0.2), 4, rng)
    assert competitive_test({0.02: tie, 0.04: better}).decisive and competitive_test({0.02: better}).holds
    assert not competitive_test({0.02: better, 0.04: worse}).holds  # judged at every p
