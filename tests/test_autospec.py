"""Tests of the AutoSpec chapter's library: grammar, semantics, the ILP scorer, the edits, the loop."""

import numpy as np
import pandas as pd
import pytest

from llmtheory import autospec_experiment as ex
from llmtheory.autospec import (
    DOMAINS,
    EDIT_KINDS,
    ENFORCEMENTS,
    INDEPENDENT_DOMAINS,
    REGIME_DOMAINS,
    Domain,
    Edit,
    Literal,
    Rule,
    RuleSyntaxError,
    ScenarioOracle,
    Traces,
    best_single_edit,
    cegis,
    check_rules,
    clingo_counterexample,
    covered_hazards,
    evaluate,
    fires,
    flags,
    foil_gain,
    format_rules,
    generate_traces,
    hazard_rule,
    held_out_mask,
    ilp_candidates,
    objective,
    parse_rules,
    random_candidates,
    rank_literals,
    score_predictions,
    single_literal_edits,
    split,
    verify,
)
from llmtheory.params import ParameterError
from llmtheory.seeding import make_rng
from llmtheory.stats import mean_ci

ALL_DOMAINS = [d for regime in REGIME_DOMAINS.values() for d in regime.values()]
DOMAIN_IDS = [f"{d.regime}-{d.name}" for d in ALL_DOMAINS]


def random_rules(rng: np.random.Generator, domain) -> tuple[Rule, ...]:
    rules = []
    for k in range(int(rng.integers(0, 6))):
        chosen = rng.choice(len(domain.predicates), size=int(rng.integers(0, 5)), replace=False)
        checks = tuple(Literal(domain.predicates[j], bool(rng.integers(2))) for j in chosen)
        trigger = ([*domain.triggers, "any"])[rng.integers(len(domain.triggers) + 1)]
        rules.append(Rule(f"r{k}_{rng.integers(1000)}", trigger, checks, ENFORCEMENTS[rng.integers(4)]))
    return tuple(rules)


@pytest.mark.parametrize("domain", list(DOMAINS.values()), ids=list(DOMAINS))
def test_round_trip_over_random_rule_sets(domain):
    rng = make_rng(0, "round-trip", domain.name)
    for _ in range(300):
        rules = random_rules(rng, domain)
        text = format_rules(rules)
        assert parse_rules(text) == rules
        assert format_rules(parse_rules(text)) == text
        # the parser ignores layout and comments: one line per rule, comments between
        squashed = "# header\n" + " ".join(text.split()).replace(" end ", " end  # note\n")
        assert parse_rules(squashed) == rules


def test_parse_known_rule_and_errors():
    text = "rule @r trigger PythonREPL check involve_system_file !in_sandbox enforce stop end"
    (rule,) = parse_rules(text)
    assert rule == Rule("r", "PythonREPL", (Literal("involve_system_file"), Literal("in_sandbox", False)), "stop")
    for bad, where in [
        ("rule r trigger t check p enforce stop end", "rule name"),
        ("rule @r trigger t check p enforce halt end", "enforcement"),
        ("rule @r trigger t check enforce stop end", "checks nothing"),
        ("rule @r trigger t check p enforce stop", "end of text"),
        ("rule @r trigger t check p enforce stop end\nrule @r trigger t check q enforce stop end", "twice"),
        ("rule @r trigger t check p$ enforce stop end", "unexpected character"),
    ]:
        with pytest.raises(RuleSyntaxError, match=where):
            parse_rules(bad)


def test_rules_side_by_side_shows_only_the_rules_a_loop_changed():
    kept, changed, new = parse_rules(
        "rule @kept trigger t check p enforce stop end\n"
        "rule @changed trigger t check p enforce stop end\n"
        "rule @new trigger t check q enforce stop end"
    )
    edited = Rule("changed", "t", (*changed.checks, Literal("r", False)), "stop")
    text = ex.rules_side_by_side((kept, changed), (kept, edited, new))
    assert "@kept" not in text and "@changed" in text and "@new" in text and "(none)" in text and "!r" in text
    assert "(dropped)" in ex.rules_side_by_side((kept, changed), (kept,))
    assert len(ex.rules_side_by_side((kept,), (kept,)).splitlines()) == 1  # the header only


def hand_made_traces():
    domain = DOMAINS["code"]
    j = domain.index
    facts = np.zeros((4, len(domain.predicates)), bool)
    facts[0, [j("involve_system_file"), j("write_to_io")]] = True  # unsafe write
    facts[1, [j("involve_system_file"), j("write_to_io"), j("in_sandbox")]] = True  # sandboxed: safe
    facts[2, [j("involve_system_file")]] = True  # only reads a system file: safe
    facts[3, [j("involve_system_file"), j("write_to_io")]] = True  # same facts, other trigger
    trigger = np.array([0, 0, 0, 1])
    label = np.array([True, False, False, False])
    return Traces(domain, trigger, facts, label, label.copy())


def test_rule_evaluation_on_hand_made_traces():
    traces = hand_made_traces()
    domain = traces.domain
    truth = domain.ground_truth[0]  # @system_write of the hidden policy
    assert fires(truth, domain, traces.trigger, traces.facts).tolist() == [True, False, False, False]
    broad = parse_rules("rule @b trigger PythonREPL check involve_system_file enforce stop end")
    assert fires(broad[0], domain, traces.trigger, traces.facts).tolist() == [True, True, True, False]
    s = evaluate(broad, traces)
    assert (s.tp, s.fp, s.fn, s.tn) == (1, 2, 0, 1)
    assert s.precision == pytest.approx(1 / 3) and s.recall == 1 and s.f1 == pytest.approx(0.5)
    anywhere = parse_rules("rule @a trigger any check write_to_io enforce stop end")
    assert fires(anywhere[0], domain, traces.trigger, traces.facts).tolist() == [True, True, False, True]


def test_foil_gain_closed_form():
    # 8+/8- → 6+/1-: 6·(log2(6/7) − log2(1/2))
    assert foil_gain(8, 8, 6, 1) == pytest.approx(6 * (np.log2(6 / 7) + 1))
    assert foil_gain(5, 5, 0, 3) == 0.0
    assert foil_gain(4, 4, 4, 4) == 0.0  # a literal that changes nothing gains nothing


def test_ilp_scorer_ranks_planted_predicate_first():
    domain = DOMAINS["embodied"]
    for seed in range(20):
        rng = make_rng(seed, "planted")
        pos = rng.random((30, len(domain.predicates))) < 0.4
        neg = rng.random((30, len(domain.predicates))) < 0.4
        planted = int(rng.integers(len(domain.predicates)))
        pos[:, planted] = rng.random(30) < 0.95
        neg[:, planted] = rng.random(30) < 0.05
        (best, gain), (_, runner_up) = rank_literals(pos, neg, domain.predicates)[:2]
        assert best == Literal(domain.predicates[planted], True) and gain > runner_up


@pytest.mark.parametrize("name", list(DOMAINS))
def test_every_edit_keeps_rules_well_formed(name):
    domain = DOMAINS[name]
    traces = generate_traces(domain, 150, make_rng(1, "edits", name))
    for start in (domain.expert, (), domain.ground_truth):
        edits = ilp_candidates(start, traces) + random_candidates(start, traces, make_rng(2, "random", name))
        assert edits and {e.kind for e in edits} <= set(EDIT_KINDS)
        for edit in edits:
            check_rules(edit.rules, domain)
            assert parse_rules(format_rules(edit.rules)) == edit.rules


@pytest.mark.parametrize("domain", ALL_DOMAINS, ids=DOMAIN_IDS)
def test_loop_never_lowers_its_objective(domain):
    for seed in range(3):
        traces = generate_traces(domain, 150, make_rng(seed, "loop", domain.name), region="train")
        fit, validation = split(traces, 2 / 3, make_rng(seed, "s"))
        for proposer, rng in (("ilp", None), ("random", make_rng(seed, "heuristic"))):
            result = cegis(domain.expert, fit, validation=validation, proposer=proposer, rng=rng)
            curve = [objective(rules, fit, validation) for rules in result.history]
            assert all(b > a for a, b in zip(curve, curve[1:], strict=False))
            assert result.converged or result.iterations == 10
            # a round is counted for every pass, including the last one that accepted nothing
            assert result.rounds == result.iterations + (1 if result.converged else 0)


def test_verifier_decides_on_the_validation_pool():
    domain = DOMAINS["code"]
    traces = hand_made_traces()
    broad = parse_rules("rule @b trigger PythonREPL check involve_system_file enforce stop end")
    narrow = parse_rules(
        "rule @b trigger PythonREPL check involve_system_file write_to_io !in_sandbox enforce stop end"
    )
    fit = traces  # on these labels the narrow rule is perfect
    validation = Traces(domain, traces.trigger, traces.facts, np.array([True, True, True, False]), traces.truth)
    a, b = Edit("specialise", "narrow", narrow), Edit("generalise", "broad", broad)
    assert verify([a, b], fit).description == "narrow"
    assert verify([a, b], fit, validation).description == "broad"  # validation labels flag all three REPL traces


def test_loop_recovers_the_hidden_policy_without_noise():
    domain = DOMAINS["code"]
    traces = generate_traces(domain, 400, make_rng(3, "clean"), label_noise=0.0)
    result = cegis(domain.expert, traces, max_iterations=15)
    assert evaluate(result.rules, traces).f1 > 0.97 > evaluate(domain.expert, traces).f1


def test_ground_truth_is_consistent_with_noise_free_labels_and_experiment_is_deterministic():
    domain = DOMAINS["embodied"]
    traces = generate_traces(domain, 200, make_rng(0, "gt"), label_noise=0.0)
    assert evaluate(domain.ground_truth, traces).f1 == 1.0
    a, b = (ex.run_seed(domain, 5, n_traces=90, n_unseen=50, ripper_grid=((0.33, 2),)) for _ in range(2))
    for method in ex.LOOPS:
        assert format_rules(a["loops"][method].rules) == format_rules(b["loops"][method].rules)
    assert a["scores"] == b["scores"]


def test_mean_ci_matches_t_interval():
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 * 1 / np.sqrt(3), rel=1e-5)


def test_check_rules_rejects_malformed_rules():
    domain = DOMAINS["code"]
    good = Rule("ok", "Terminal", (Literal("kill_process"),))
    check_rules((good,), domain)
    for bad in [
        (good, good),  # duplicate name
        (Rule("t", "Browser", ()),),  # unknown trigger
        (Rule("p", "Terminal", (Literal("is_candle"),)),),  # predicate of the other domain
        (Rule("d", "Terminal", (Literal("kill_process"), Literal("kill_process", False))),),  # checked twice
        (Rule("e", "Terminal", (), "halt"),),  # unknown enforcement
    ]:
        with pytest.raises(ValueError):
            check_rules(bad, domain)


@pytest.mark.parametrize("domain", ALL_DOMAINS, ids=DOMAIN_IDS)
def test_held_out_combinations_never_reach_training(domain):
    train = generate_traces(domain, 300, make_rng(0, "region"), region="train")
    unseen = generate_traces(domain, 300, make_rng(0, "region"), region="unseen", label_noise=0.0)
    assert not held_out_mask(domain, train.facts).any() and held_out_mask(domain, unseen.facts).all()
    assert np.array_equal(unseen.label, flags(domain.ground_truth, domain, unseen.trigger, unseen.facts))
    with pytest.raises(ParameterError, match="region"):
        generate_traces(domain, 10, make_rng(0, "x"), region="test")


def literal_distance(a: Rule, b: Rule) -> int:
    return len(set(a.checks) ^ set(b.checks))


@pytest.mark.parametrize("domain", list(INDEPENDENT_DOMAINS.values()), ids=list(INDEPENDENT_DOMAINS))
def test_independent_regime_flaws_need_two_literal_edits(domain):
    truth, expert = {r.name: r for r in domain.ground_truth}, {r.name: r for r in domain.expert}
    flawed = [name for name in truth if name in expert and truth[name] != expert[name]]
    assert flawed and all(literal_distance(truth[n], expert[n]) >= 2 for n in flawed)
    assert set(truth) - set(expert) and set(expert) - set(truth)  # a missing rule and a spurious one
    # the generator knows no rule: two domains with the same predicates and different rules draw the same facts
    other = Domain(
        domain.name, domain.triggers, domain.predicates, (), (), regime="independent", held_out=domain.held_out
    )
    a = generate_traces(domain, 50, make_rng(1, "same"))
    b = generate_traces(other, 50, make_rng(1, "same"))
    assert np.array_equal(a.facts, b.facts) and np.array_equal(a.trigger, b.trigger)


@pytest.mark.parametrize("domain", ALL_DOMAINS, ids=DOMAIN_IDS)
def test_oracle_returns_true_counterexamples_and_stops_at_the_policy(domain):
    oracle = ScenarioOracle(domain, make_rng(0, "oracle"), per_round=6)
    found = oracle(domain.expert)
    assert len(found) == 6 and not held_out_mask(domain, found.facts).any()
    flagged = flags(domain.expert, domain, found.trigger, found.facts)
    assert np.array_equal(found.label, flags(domain.ground_truth, domain, found.trigger, found.facts))
    assert np.all(flagged != found.label)  # every one is a counterexample
    assert found.label.any() and (~found.label).any()  # both kinds: false negatives and false positives
    assert len(oracle(domain.ground_truth)) == 0 and oracle.disagreement_mass(domain.ground_truth) == 0.0
    assert oracle.disagreement_mass(domain.expert) > 0
    control = ScenarioOracle(domain, make_rng(0, "oracle"), per_round=50, targeted=False)(domain.expert)
    assert len(control) == 50 and not held_out_mask(domain, control.facts).any()


@pytest.mark.parametrize("domain", list(INDEPENDENT_DOMAINS.values()), ids=list(INDEPENDENT_DOMAINS))
def test_noisy_oracle_flips_labels_at_its_rate_and_keeps_the_truth(domain):
    found = ScenarioOracle(domain, make_rng(0, "noisy"), per_round=400, targeted=False, label_noise=0.2)(())
    assert np.array_equal(found.truth, flags(domain.ground_truth, domain, found.trigger, found.facts))
    flipped = np.mean(found.label != found.truth)
    assert 0.14 < flipped < 0.26  # 0.2 ± 3 binomial standard errors (0.02)
    clean = ScenarioOracle(domain, make_rng(0, "noisy"), per_round=400, targeted=False)(())
    assert np.array_equal(clean.label, clean.truth)
    with pytest.raises(ParameterError, match="label_noise"):
        ScenarioOracle(domain, make_rng(0, "x"), label_noise=0.7)


@pytest.mark.parametrize("domain", ALL_DOMAINS, ids=DOMAIN_IDS)
def test_clingo_search_agrees_with_enumeration(domain):
    rng = make_rng(4, "clingo", domain.name)
    oracle = ScenarioOracle(domain, rng)
    for rules in (domain.expert, domain.ground_truth, *(random_rules(rng, domain) for _ in range(5))):
        false_pos, false_neg = oracle.disagreements(rules)
        answer = clingo_counterexample(rules, domain)
        assert (answer is None) == (not (false_pos | false_neg).any())
        if answer is not None:
            trigger, facts = answer
            assert not held_out_mask(domain, facts[None]).any()
            t, f = np.array([trigger]), facts[None]
            assert flags(rules, domain, t, f)[0] != flags(domain.ground_truth, domain, t, f)[0]


@pytest.mark.parametrize("domain", ALL_DOMAINS, ids=DOMAIN_IDS)
def test_fit_validation_and_test_are_disjoint_and_cover_the_pool(domain):
    for seed in range(3):
        splits = ex.make_splits(domain, seed, n_traces=150, n_unseen=20)
        rows = splits.rows
        assert not set(rows["fit"]) & set(rows["validation"])
        assert not set(rows["fit"]) & set(rows["test"]) and not set(rows["validation"]) & set(rows["test"])
        assert sorted(np.concatenate(list(rows.values()))) == list(range(150))
        assert (len(rows["fit"]), len(rows["validation"]), len(rows["test"])) == (67, 33, 50)
        assert len(splits.fit) == 67 and len(splits.validation) == 33 and len(splits.test) == 50


@pytest.mark.parametrize("domain", list(INDEPENDENT_DOMAINS.values()), ids=list(INDEPENDENT_DOMAINS))
def test_every_independent_flaw_has_a_single_literal_edit_that_raises_population_f1(domain):
    # The chapter's claim about the independent regime: greedy repair has a first step for every flawed rule
    # (the obstacle is rare hazards in small pools), checked on a large noise-free sample of the distribution.
    population = generate_traces(domain, 50_000, make_rng(0, "population", domain.name), label_noise=0.0)
    truth = {r.name: r for r in domain.ground_truth}
    before = evaluate(domain.expert, population, clean=True).f1
    flawed = [i for i, r in enumerate(domain.expert) if r.name in truth and truth[r.name] != r]
    assert len(flawed) == 4
    for i in flawed:
        edits = single_literal_edits(domain.expert, i, domain)
        assert len(edits) == 2 * (len(domain.predicates) - len(domain.expert[i].checks)) + len(domain.expert[i].checks)
        edit, after = best_single_edit(domain.expert, i, population)
        assert after > before + 0.005, (edit.description, before, after)


def test_baselines_run_on_the_same_splits():
    domain = INDEPENDENT_DOMAINS["code"]
    splits = ex.make_splits(domain, 0, n_traces=150, n_unseen=60)
    assert len(splits.fit) + len(splits.validation) + len(splits.test) == 150
    tree = ex.fit_tuned_tree(splits.learning, 0)
    assert tree.max_depth in ex.TREE_DEPTHS and tree.min_samples_leaf in ex.TREE_LEAVES
    ripper = ex.fit_tuned_ripper(splits.learning, 0)
    assert ripper.prune_size in ex.RIPPER_PRUNE and ripper.k in ex.RIPPER_K
    for model in (tree, ripper, domain.expert):
        guess = ex.predict(model, splits.test)
        assert guess.shape == (len(splits.test),) and guess.dtype == bool
    learned = score_predictions(ex.predict(ripper, splits.learning), splits.learning.label)
    assert learned.f1 > evaluate(domain.expert, splits.learning).f1  # RIPPER fits its data better than the expert


def test_a_withheld_hazard_is_absent_from_every_annotated_pool_and_is_all_of_the_unseen_one():
    domain = DOMAINS["code"]
    rule = hazard_rule(domain, "destroy")
    splits = ex.make_splits(domain, 0, n_traces=150, n_unseen=40, withhold="destroy")
    for pool in (splits.fit, splits.validation, splits.test):
        assert not fires(rule, domain, pool.trigger, pool.facts).any()
        assert not held_out_mask(domain, pool.facts).any()
    assert fires(rule, domain, splits.unseen.trigger, splits.unseen.facts).all() and splits.unseen.truth.all()
    with pytest.raises(ParameterError, match="withhold"):
        generate_traces(domain, 10, make_rng(0, "x"), region="hazard")
    with pytest.raises(ParameterError, match="hazard="):
        generate_traces(domain, 10, make_rng(0, "x"), region="hazard", withhold="no_such_rule")


def test_covered_hazards_are_those_the_expert_rules_flag():
    # planted code: @privilege is the expert's rule verbatim, @destroy and @system_write are broader than the
    # truth; no expert rule covers @remote_code or @kill_system, and @exfiltrate's expert rule is too narrow
    assert covered_hazards(DOMAINS["code"]) == ("system_write", "destroy", "privilege")
    for domain in ALL_DOMAINS:
        population = generate_traces(domain, 5_000, make_rng(1, "cover", domain.name), label_noise=0.0)
        for name in covered_hazards(domain):
            hit = fires(hazard_rule(domain, name), domain, population.trigger, population.facts)
            assert flags(domain.expert, domain, population.trigger[hit], population.facts[hit]).mean() > 0.7


def test_an_exact_expert_rule_survives_withholding_its_hazard_and_a_broad_one_can_be_lost():
    # @privilege is exact: once its hazard is withheld it fires on no annotated trace, so no edit of it can
    # raise the verifier's objective and repair keeps it. @destroy is broader than the truth: in training it
    # fires only where the action is safe (up to label noise), so the verifier sees a pure source of false alarms.
    domain = DOMAINS["code"]
    for seed in range(3):
        rows = {r["method"]: r for r in ex.run_hazard(domain, "privilege", seed, n_traces=150, n_hazard=50)}
        assert rows["AutoSpec (ILP CEGIS)"]["fate"] == "kept" and rows["AutoSpec (ILP CEGIS)"]["recall"] == 1.0
        assert rows["expert rules"]["recall"] == 1.0 and rows["CEGIS from scratch"]["fate"] == ""
    fates = [
        {r["method"]: r for r in ex.run_hazard(domain, "destroy", seed, n_traces=150, n_hazard=50)} for seed in range(6)
    ]
    assert any(f["AutoSpec (ILP CEGIS)"]["fate"] != "kept" for f in fates)
    assert all(f["AutoSpec (ILP CEGIS)"]["covering rules"] == "@destroy" for f in fates)


def test_hazard_evidence_follows_recall_and_its_control():
    rows = [
        {"regime": r, "domain": d, "hazard": "h", "seed": s, "method": m, "recall": value, "exact": False}
        for r, d in ex.CELLS
        for s in range(4)
        for m, value in (("AutoSpec (ILP CEGIS)", 0.95 + 0.01 * s), ("CEGIS from scratch", 0.1 * s))
    ]
    frame = pd.DataFrame(rows)
    evidence = ex.hazard_evidence(frame)
    assert evidence.holds.holds and evidence.holds.decisive and not evidence.control.holds.holds
    low = frame.assign(recall=np.where(frame.method == "AutoSpec (ILP CEGIS)", 0.5, frame.recall))
    assert not ex.hazard_evidence(low).holds.holds
    # a hazard the expert wrote exactly keeps recall 1 by construction: it must not lift a failing mean over the bar
    exact = low.assign(hazard="exact", exact=True, recall=1.0)
    assert not ex.hazard_evidence(pd.concat([low, exact, exact.assign(hazard="exact2")])).holds.holds


def test_the_exact_expert_rules_are_the_ones_the_chapter_excludes_from_the_withheld_hazard_row():
    exact = {
        (regime, name): tuple(h for h in covered_hazards(domain) if ex.expert_knows_exactly(domain, h))
        for regime, domains in REGIME_DOMAINS.items()
        for name, domain in domains.items()
    }
    assert exact[("planted", "code")] == ("privilege",) and not ex.expert_knows_exactly(DOMAINS["code"], "destroy")
    assert all(len(h) == 1 for h in exact.values()), exact  # every cell keeps a hazard the row can judge
    assert all(len(h) < len(covered_hazards(REGIME_DOMAINS[r][d])) for (r, d), h in exact.items())


def test_ripper_tuning_uses_its_grid():
    splits = ex.make_splits(DOMAINS["code"], 0, n_traces=90, n_unseen=10)
    one = ex.fit_tuned_ripper(splits.learning, 0, grid=((0.5, 1),))
    assert (one.prune_size, one.k) == (0.5, 1)
    with pytest.raises(ParameterError, match="grid"):
        ex.fit_tuned_ripper(splits.learning, 0, grid=())


def test_hazard_fates_is_one_text_column_in_run_order():
    """The withheld-hazard fates table: one row per hazard in the order run, one column of fates with counts (most
    frequent first; a pair of covering rules' fates in parentheses), and a clear error for a method not run."""

    def row(hazard, covering, seed, fate, method="AutoSpec (ILP CEGIS)"):
        return {
            "regime": "planted",
            "domain": "code",
            "hazard": hazard,
            "seed": seed,
            "method": method,
            "recall": 1.0,
            "covering rules": covering,
            "fate": fate,
            "exact": False,
        }

    hazards = pd.DataFrame(
        [
            row("system_write", "@system_write", 0, "kept"),
            row("system_write", "@system_write", 1, "dropped"),
            row("destroy", "@destroy", 0, "dropped"),
            row("destroy", "@destroy", 1, "dropped"),
            row("scan", "@scan, @network", 0, "kept, dropped"),
            row("scan", "@scan, @network", 1, "kept, kept"),
            row("scan", "@scan, @network", 2, "kept, dropped"),
            row("scan", "@scan, @network", 3, "dropped, edited"),
            row("destroy", "@destroy", 0, "", "CEGIS from scratch"),
        ]
    )
    fates = ex.hazard_fates(hazards).data
    assert list(fates.columns) == ["fate over 4 seeds"]
    assert list(fates.index.get_level_values("hazard")) == ["system_write", "destroy", "scan"]
    scan = "(kept, dropped) ×2 · (kept, kept) ×1 · (dropped, edited) ×1"  # over pandas' 50 characters a cell
    assert list(fates.iloc[:, 0]) == ["kept ×1 · dropped ×1", "dropped ×2", scan]
    assert f">{scan}<" in ex.hazard_fates(hazards)._repr_html_() and f">{scan}<" not in fates._repr_html_()
    with pytest.raises(ParameterError, match="method="):
        ex.hazard_fates(hazards, "no such method")
