"""Tests of the scaletot method (entropy rule, bounded ToT, segment rewards, OSIPO loss) and its experiment."""

import numpy as np
import pytest
import torch

from llmtheory import scaletot as st
from llmtheory import scaletot_experiment as ex
from llmtheory.params import ParameterError, check_values
from llmtheory.seeding import make_rng


def joint_from(first, second_given_first, third_given_second):
    """A chain-structured joint p(z1) p(z2 | z1) p(z3 | z2) as a (3, 3, 3) array."""
    return (
        np.asarray(first)[:, None, None]
        * np.asarray(second_given_first)[:, :, None]
        * np.asarray(third_given_second)[None, :, :]
    )


CERTAIN = np.eye(3)  # segment value = previous value, with certainty


def bare_teacher():
    teacher = st.BayesTeacher(
        log_prior=np.log(np.full((3, 3, 3), 1 / 27)),
        means=np.zeros((0, 3)),
        feature_segment=np.zeros(0, int),
        noise=np.ones((0, 2)),
        ltv_intercept=1.0,
        ltv_effects=np.array([[-1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [-0.5, 0.0, 0.5]]),
        ltv_noise=1.0,
    )
    return teacher


def test_entropy_of_hand_computed_distributions():
    assert st.entropy([1 / 3, 1 / 3, 1 / 3]) == pytest.approx(np.log(3))
    assert st.entropy([0.5, 0.5, 0.0]) == pytest.approx(np.log(2))
    assert st.entropy([1.0, 0.0, 0.0]) == 0.0
    assert st.entropy([0.5, 0.25, 0.25]) == pytest.approx(1.5 * np.log(2))


def test_entropy_rule_expands_strictly_above_the_threshold():
    half = [0.5, 0.5, 0.0]  # H = ln 2 ≈ 0.693
    assert st.expands(half, 0.6)
    assert not st.expands(half, 0.7)
    assert not st.expands(half, np.log(2))  # strictly above
    assert not st.expands([1.0, 0.0, 0.0], 0.0)


def test_hand_computed_tree_branches_only_on_the_uncertain_first_segment():
    # segment 1 is a coin between values 0 and 1; segments 2 and 3 copy it with certainty
    joint = joint_from([0.5, 0.5, 0.0], CERTAIN, CERTAIN)
    teacher = bare_teacher()
    leaves, log_probs, calls = st.expand_tree(teacher, joint, st.ToTBounds(threshold=0.5, width=2, depth=1))
    assert leaves == [(0, 0, 0), (1, 1, 1)]
    assert calls == 1 + 2 + 2  # the root, then one call per branch at each later segment
    assert teacher.calls == calls
    assert np.allclose(log_probs, np.log(0.5))
    assert st.count_calls(joint[None], st.ToTBounds(0.5, 2, 1)).tolist() == [5]


def test_a_value_of_probability_zero_is_never_a_branch():
    joint = joint_from([0.5, 0.5, 0.0], CERTAIN, CERTAIN)
    leaves, _, calls = st.expand_tree(bare_teacher(), joint, st.ToTBounds(threshold=0.5, width=3, depth=3))
    assert leaves == [(0, 0, 0), (1, 1, 1)] and calls == 5
    assert st.count_calls(joint[None], st.ToTBounds(0.5, 3, 3)).tolist() == [5]


def test_depth_zero_is_the_greedy_chain_at_three_calls():
    joint = joint_from([0.2, 0.5, 0.3], np.full((3, 3), 1 / 3), CERTAIN)
    leaves, _, calls = st.expand_tree(bare_teacher(), joint, st.ToTBounds(threshold=0.0, width=3, depth=0))
    assert calls == 3 and leaves == [st.greedy_chain(joint)] == [(1, 0, 0)]


def test_tree_respects_its_width_and_depth_bounds_and_the_vectorised_count():
    rng = np.random.default_rng(0)
    joints = rng.dirichlet(np.full(27, 0.5), size=200).reshape(200, 3, 3, 3)
    for bounds in (st.ToTBounds(0.3, 2, 2), st.ToTBounds(0.0, 3, 3), st.ToTBounds(0.9, 2, 1)):
        counted = st.count_calls(joints, bounds)
        for k in range(len(joints)):
            leaves, _, calls = st.expand_tree(bare_teacher(), joints[k], bounds)
            assert calls == counted[k] <= bounds.max_calls()
            assert len(leaves) <= bounds.max_leaves() and len(set(leaves)) == len(leaves)
    # threshold 0 and full width: every path branches until the depth bound
    assert st.ToTBounds(0.0, 3, 3).max_calls() == 1 + 3 + 9


def test_bounds_refuse_values_outside_their_range():
    with pytest.raises(ParameterError, match="TOT_WIDTH"):
        st.ToTBounds(width=4)
    with pytest.raises(ParameterError, match="TOT_DEPTH"):
        st.ToTBounds(depth=4)


def test_selection_follows_the_outcome_and_falls_back_to_the_teacher():
    teacher = bare_teacher()  # μ(c) = 1 + intent effect (−1, 0, 1) + engagement effect
    leaves = [(0, 0, 0), (2, 0, 2)]
    log_probs = [np.log(0.7), np.log(0.3)]
    assert st.select_chain(leaves, log_probs, None, teacher.implied_ltv, 1.0) == (0, 0, 0)
    # μ = −0.5 and 2.5; y = 2.5 agrees with the second by 3 s.d., which outweighs log(0.7 / 0.3)
    assert st.select_chain(leaves, log_probs, 2.5, teacher.implied_ltv, 1.0) == (2, 0, 2)


def test_segment_rewards_telescope_to_the_chain_agreement():
    teacher = bare_teacher()
    chains = np.array([[2, 1, 2], [0, 0, 0]])
    y = np.array([2.0, 0.0])
    rewards = st.segment_rewards(chains, y, teacher)
    mu_full = np.array([teacher.implied_ltv(c) for c in chains])  # 2.5, −0.5
    mu_prior = teacher.ltv_intercept + teacher.prior_segment_means().sum()  # uniform prior: 1.0
    expected = -((y - mu_full) ** 2) / 2 + (y - mu_prior) ** 2 / 2
    assert np.allclose(rewards.sum(axis=1), expected)
    # the spend segment has no effect: it earns nothing
    assert np.allclose(rewards[:, 1], 0.0)
    # first user: intent = buy moves μ from 1.0 to 2.0 = y, reward 0 − (−0.5) = 0.5
    assert rewards[0, 0] == pytest.approx(0.5)


def test_osipo_loss_is_log_two_at_the_reference_and_hand_computed_otherwise():
    rewards = torch.tensor([[[1.0], [0.0]]])  # one user, two samples, one segment
    same = torch.tensor([[[-1.0], [-2.0]]])
    assert float(st.osipo_loss(same, same, rewards, beta=0.5)) == pytest.approx(np.log(2))
    # ρ¹ − ρ² = 1 with β = 1: each ordered pair costs −log σ(1)
    log_probs = torch.tensor([[[-0.5], [-1.5]]])
    reference = torch.tensor([[[-1.0], [-1.0]]])
    assert float(st.osipo_loss(log_probs, reference, rewards, beta=1.0)) == pytest.approx(np.log1p(np.exp(-1.0)))


def test_osipo_loss_ignores_ties_and_its_gradient_favours_the_better_segment():
    tied = torch.zeros((1, 2, 3))
    theta = torch.zeros((1, 2, 3), requires_grad=True)
    assert float(st.osipo_loss(theta, torch.zeros_like(theta), tied, beta=1.0).detach()) == 0.0
    rewards = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    loss = st.osipo_loss(theta, torch.zeros_like(theta), rewards, beta=1.0)
    loss.backward()
    assert theta.grad[0, 0, 0] < 0 < theta.grad[0, 1, 0]  # descent raises the better sample's log-probability
    assert torch.all(theta.grad[..., 1:] == 0)


def test_sft_loss_of_a_uniform_policy_is_log_three():
    uniform = torch.full((4, 3, 3), np.log(1 / 3))
    assert float(st.sft_loss(uniform, torch.zeros((4, 3), dtype=torch.long))) == pytest.approx(np.log(3))


def test_posterior_is_normalised_and_is_the_prior_without_evidence():
    world = ex.World()
    teacher = ex.make_teacher(world, 0.0, make_rng(0, "test"))
    population = ex.simulate(world, 50, make_rng(0, "test-population"))
    joint = teacher.joint_posterior(population.profile, population.activity)
    assert np.allclose(joint.sum(axis=(1, 2, 3)), 1.0)
    blank = np.full((1, world.n_features), np.nan)
    assert np.allclose(teacher.joint_posterior(blank, [0])[0], np.exp(world.log_prior()))


def test_an_exact_teacher_recovers_high_activity_users_better_than_low():
    world = ex.World()
    teacher = ex.make_teacher(world, 0.0, make_rng(0, "test"))
    population = ex.simulate(world, 2000, make_rng(1, "test-population"))
    joint = teacher.joint_posterior(population.profile, population.activity)
    greedy = np.array([st.greedy_chain(j) for j in joint])
    accuracy = ex.chain_accuracy(greedy, population.latent)
    assert accuracy[population.activity == ex.HIGH].mean() > accuracy[population.activity == ex.LOW].mean() + 0.1


def test_simulated_profiles_are_sparser_for_low_activity_users():
    population = ex.simulate(ex.World(), 3000, make_rng(0, "test"))
    low = population.activity == ex.LOW
    missing = np.isnan(population.profile[:, :-2]).mean(axis=1)
    assert missing[low].mean() == pytest.approx(0.7, abs=0.03)
    assert missing[~low].mean() == pytest.approx(0.2, abs=0.03)
    assert np.isnan(population.profile[low, -2:]).all() and not np.isnan(population.profile[~low, -2:]).any()


def test_tokens_and_the_student_policy_have_the_declared_shapes():
    world = ex.World()
    population = ex.simulate(world, 40, make_rng(0, "test"))
    vocab = st.Vocabulary(world.n_features)
    tokens = ex.tokenize(population, vocab, ex.bin_edges(population.profile, vocab.bins))
    assert tokens.shape == (40, vocab.length) and int(tokens.max()) < vocab.size
    model = ex.build_student(vocab, width=16, layers=1, seed=0)
    log_probs = st.segment_log_probs(model, tokens, vocab)
    assert log_probs.shape == (40, 3, 3)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(40, 3), atol=1e-5)
    chains = ex.decode(model, tokens, vocab)
    assert torch.equal(chains, ex.decode(model, tokens, vocab))  # greedy decoding is deterministic
    assert torch.equal(
        ex.with_chains(tokens, chains, vocab)[:, : vocab.sep_position + 1], tokens[:, : vocab.sep_position + 1]
    )


def test_sft_learns_a_chain_that_the_profile_determines():
    world = ex.World()
    population = ex.simulate(world, 200, make_rng(0, "test"))
    vocab = st.Vocabulary(world.n_features)
    tokens = ex.tokenize(population, vocab, ex.bin_edges(population.profile, vocab.bins))
    target = np.stack([population.activity] * 3, axis=1)  # the activity token decides the chain
    model = ex.build_student(vocab, width=16, layers=1, seed=0)
    losses = ex.train_sft(model, tokens, target, vocab, steps=60, batch=64, lr=1e-2, seed=0)
    assert losses[-1] < 0.1 < losses[0]
    assert (ex.decode(model, tokens, vocab).numpy() == target).all()


def test_parameters_reject_values_outside_their_range():
    with pytest.raises(ParameterError, match="TOT_WIDTH"):
        check_values({"TOT_WIDTH": 5}, st.PARAMETERS)
    with pytest.raises(ParameterError, match="REASONED_SHARE"):
        check_values({"REASONED_SHARE": 0.9}, st.PARAMETERS)


def test_offline_ab_of_a_model_against_itself_has_an_interval_around_zero():
    class Run:
        pass

    rng = make_rng(0, "test")
    run = Run()
    run.test_log_ltv = rng.normal(size=4000)
    run.test_predictions = {"m": run.test_log_ltv + rng.normal(size=4000)}
    lift = ex.offline_ab([run], "m", "m", seed=0, draws=200)
    assert lift.low < 0 < lift.high


def test_a_language_model_teacher_runs_the_same_tree():
    from llmtheory import scaletot_lm, zoo

    world = ex.World()
    population = ex.simulate(world, 40, make_rng(0, "test"))
    model, tokenizer = zoo.load("fact-llama-h64")  # a zoo model that knows nothing of users: plumbing only
    teacher = scaletot_lm.LMTeacher(model, tokenizer, ex.make_teacher(world, 0.0, make_rng(0, "test")))
    edges = ex.bin_edges(population.profile, 4)
    text = scaletot_lm.profile_text(
        population.profile[0], population.activity[0], edges, scaletot_lm.feature_names(world)
    )
    assert text.startswith("activity: ")
    p = teacher.segment_distribution(text, ())
    assert p.shape == (3,) and p.sum() == pytest.approx(1.0) and teacher.calls == 1
    result = st.bounded_tot(teacher, text, float(population.log_ltv[0]), st.ToTBounds(0.5, 2, 1))
    assert len(result.chain) == 3 and result.calls == teacher.calls - 1
    comparison = scaletot_lm.compare_with_bayes(teacher, teacher.ltv, world, 2, st.ToTBounds(0.5, 2, 1), seed=0)
    assert list(comparison.table.index) == ["Bayes", "LM"] and comparison.table.loc["LM", "calls per user"] >= 3
    own, other, contrast = scaletot_lm.accuracy_estimates(comparison)
    assert 0 <= own.low <= own.value <= own.high <= 1 and 0 <= other.value <= 1
    assert contrast.low <= contrast.value <= contrast.high
    assert comparison.lm_greedy.shape == comparison.lm_chains.shape == (2, 3)


def test_a_profile_blind_teacher_fails_the_lm_teacher_rule():
    from llmtheory import scaletot_lm
    from llmtheory.claims import at_least

    rng = np.random.default_rng(0)
    latent = rng.integers(0, 3, size=(300, 3))
    blind = scaletot_lm.Comparison(
        table=None, lm_chains=latent.copy(), latent=latent, lm_greedy=rng.integers(0, 3, size=(300, 3))
    )  # refined chains chosen with the outcome can match; greedy chains never saw the profile
    own, _, contrast = scaletot_lm.accuracy_estimates(blind)
    rule = at_least(contrast, 1e-9)
    assert not (rule.holds and rule.decisive) and contrast.low < 0 < contrast.high
    informed = scaletot_lm.Comparison(None, latent, latent, latent)
    assert at_least(scaletot_lm.accuracy_estimates(informed)[2], 1e-9).decisive
    control = scaletot_lm.accuracy_estimates(scaletot_lm.shuffled(informed, seed=0))[2]
    assert control.low < 0 < control.high


def test_the_first_leaf_is_the_greedy_chain():
    rng = np.random.default_rng(1)
    for joint in rng.dirichlet(np.full(27, 0.5), size=50).reshape(50, 3, 3, 3):
        result = st.bounded_tot(bare_teacher(), joint, 0.0, st.ToTBounds(0.3, 2, 2))
        assert result.greedy == st.greedy_chain(joint)


def test_random_branching_keeps_the_bounds_and_its_vectorised_count_matches_the_tree():
    rng = np.random.default_rng(2)
    joints = rng.dirichlet(np.full(27, 0.5), size=150).reshape(150, 3, 3, 3)
    coins = rng.random((150, st.N_NODES))
    assert [st.node_index(p) for p in [(), (0,), (2,), (0, 0), (1, 0), (2, 2)]] == [0, 1, 3, 4, 7, 12]
    for bounds in (st.ToTBounds(0.8, 2, 2), st.ToTBounds(0.5, 3, 3), st.ToTBounds(0.5, 2, 1)):
        for rate in (0.0, 0.4, 1.0):
            rule = st.RandomBranching(coins, rate)
            counted = st.count_calls(joints, bounds, rule)
            for k in range(len(joints)):
                leaves, _, calls = st.expand_tree(bare_teacher(), joints[k], bounds, rule.user(k))
                assert calls == counted[k] <= bounds.max_calls() and len(leaves) <= bounds.max_leaves()
    # rate 0 never branches: the greedy chain at three calls
    assert (st.count_calls(joints, st.ToTBounds(0.8, 2, 2), st.RandomBranching(coins, 0.0)) == 3).all()


def test_matched_rate_spends_the_entropy_rules_calls():
    rng = np.random.default_rng(3)
    joints = rng.dirichlet(np.full(27, 0.5), size=400).reshape(400, 3, 3, 3)
    coins = rng.random((400, st.N_NODES))
    bounds = st.ToTBounds(0.8, 2, 2)
    target = int(st.count_calls(joints, bounds).sum())
    rate = st.match_branching_rate(joints, bounds, coins, target)
    spent = int(st.count_calls(joints, bounds, st.RandomBranching(coins, rate)).sum())
    assert abs(spent - target) <= 2  # one branching more or less moves the total by one or two calls
    totals = [int(st.count_calls(joints, bounds, st.RandomBranching(coins, r)).sum()) for r in (0.1, 0.3, 0.6, 0.9)]
    assert totals == sorted(totals)  # a higher rate only adds branchings


def test_cached_decoding_gives_the_teacher_forced_readings():
    world = ex.World()
    population = ex.simulate(world, 60, make_rng(0, "test"))
    vocab = st.Vocabulary(world.n_features)
    tokens = ex.tokenize(population, vocab, ex.bin_edges(population.profile, vocab.bins))
    model = ex.build_student(vocab, width=16, layers=2, seed=0)
    chains, readings = ex.representations(model, tokens, vocab)
    with torch.no_grad():
        forced = ex.with_chains(tokens, torch.as_tensor(chains), vocab)
        log_probs, hidden = st.segment_log_probs(model, forced, vocab, hidden=True)
    assert np.allclose(readings["segments"], log_probs.exp().flatten(1).numpy(), atol=1e-5)
    start = vocab.sep_position
    assert np.allclose(readings["pooled"], hidden[:, start : start + 4].mean(dim=1).numpy(), atol=1e-5)
    assert (chains == log_probs.argmax(-1).numpy()).all()  # each segment's value is its greedy choice


def test_paired_ab_of_a_model_against_itself_is_zero_and_a_better_model_gains():
    class Run:
        pass

    rng = make_rng(0, "test")
    run = Run()
    run.test_log_ltv = rng.normal(size=3000)
    run.test_predictions = {"noisy": run.test_log_ltv + 2 * rng.normal(size=3000), "exact": run.test_log_ltv}
    same = ex.paired_ab([run], "noisy", "noisy", seed=0, draws=100)
    assert same.value == same.low == same.high == 0
    better = ex.paired_ab([run], "noisy", "exact", seed=0, draws=200)
    assert better.low > 0


def test_per_seed_paired_lifts_and_the_top_share_of_an_activity_level():
    class Run:
        pass

    rng = make_rng(0, "test")
    runs = []
    for _ in range(2):
        run = Run()
        run.test_log_ltv = rng.normal(size=1000)
        run.test_activity = (np.arange(1000) < 300).astype(int)  # the first 300 users are high activity
        run.test_predictions = {"noisy": run.test_log_ltv + rng.normal(size=1000), "exact": run.test_log_ltv,
                                "high-first": -np.arange(1000.0)}  # fmt: skip
        runs.append(run)
    assert ex.paired_lifts(runs, "noisy", "noisy") == [0.0, 0.0]
    assert all(lift > 0 for lift in ex.paired_lifts(runs, "noisy", "exact"))
    one = ex.paired_ab(runs[:1], "noisy", "exact", seed=0, draws=10)
    assert ex.paired_lifts(runs[:1], "noisy", "exact")[0] == pytest.approx(one.value)
    shares, overall = ex.top_share_of_activity(runs, "high-first", ex.HIGH)
    assert shares == [1.0, 1.0] and overall == pytest.approx(0.3)


def test_chain_changes_and_the_edge_that_needs_the_outcome_by_hand():
    from types import SimpleNamespace

    latent = np.array([[0, 0, 0], [1, 1, 1]])
    reasoning = SimpleNamespace(
        greedy=np.array([[0, 0, 1], [1, 1, 1]]), tot=np.array([[0, 0, 0], [1, 1, 1]]),
        shuffled_outcome=np.array([[0, 0, 1], [1, 1, 1]]), random_tot=np.array([[0, 0, 1], [1, 1, 1]]),
        random_shuffled_outcome=np.array([[0, 2, 1], [1, 1, 0]]),
    )  # fmt: skip
    run = SimpleNamespace(reasoning=reasoning, latent_subset=latent, activity_subset=np.array([ex.HIGH, ex.HIGH]))
    table = ex.chain_changes([run], ex.HIGH)
    assert table.loc["random_tot", "chains changed"] == 0.0
    assert table.loc["random_shuffled_outcome", "chains changed"] == 1.0
    assert table.loc["random_tot", "greedy accuracy"] == pytest.approx(5 / 6)
    assert table.loc["random_shuffled_outcome", "accuracy"] == pytest.approx(3 / 6)
    # user 0: (1 − 2/3) − (2/3 − 1/3) = 0; user 1: (1 − 1) − (1 − 2/3) = −1/3
    edge = ex.entropy_edge_needing_outcome([run], seed=0)
    assert edge.value == pytest.approx(-1 / 6)


def test_sizes_refuse_distilled_users_that_overlap_the_test_users():
    sizes = ex.Sizes(
        users=200, labelled_share=0.1, reasoned_share=0.05, distilled_share=0.65, test_share=0.3, student_width=8,
        student_layers=1, sft_steps=1, osipo_rounds=1, osipo_samples=2, batch=8, encoder_components=2,
        encoder_iterations=1, trees=2,
    )  # fmt: skip
    with pytest.raises(ValueError, match="distilled_share"):
        ex.run_seed(0, sizes, st.ToTBounds(), beta=0.5)


def test_per_seed_table_and_the_decisive_ratio():
    from scipy import stats

    assert ex.decisive_ratio(3) == pytest.approx(stats.t.ppf(0.975, 2) / np.sqrt(3))
    assert ex.decisive_ratio(3) == pytest.approx(2.48, abs=0.01)

    class Run:
        def __init__(self, seed, gap):
            import pandas as pd

            self.seed = seed
            columns = pd.MultiIndex.from_tuples([("low", "rmse")])
            self.metrics = pd.DataFrame([[1.0], [1.0 - gap]], index=["profile", "m"], columns=columns)

    table = ex.per_seed_table([Run(0, 0.1), Run(1, 0.2), Run(2, 0.3)], {"gain": ("m", "profile", "low")})
    assert table.loc["gain", "seed 1"] == pytest.approx(0.2) and table.loc["gain", "mean"] == pytest.approx(0.2)
    assert table.loc["gain", "s.d."] == pytest.approx(0.1)
