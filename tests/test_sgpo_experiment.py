"""Tests of the SGPO chapter's experiment loop (llmtheory.sgpo_experiment): equal compute per arm, paired problem
streams, SGPO's records, determinism, and errors, on an untrained micro base policy."""

import copy
import itertools
import math

import numpy as np
import pytest
import torch

from llmtheory import grpo, sgpo, zoo
from llmtheory import sgpo_experiment as se
from llmtheory import sgpo_lm as sl
from llmtheory.claims import Estimate
from llmtheory.params import ParameterError
from llmtheory.zoo.train import build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = se.RunConfig(
    token_budget=60, completions_per_update=8, n_eval=3, kl_every=1,
    sgpo=sgpo.SGPOConfig(grpo=grpo.GRPOConfig(group_size=2, max_new_tokens=4, beta=0.0)),
)  # fmt: skip


@pytest.fixture(scope="module")
def micro():
    spec = zoo.SPECS["micro-sgpo"]
    tokenizer = sgpo.build_tokenizer(model_max_length=spec.max_positions)
    return build_model(spec, tokenizer).eval(), tokenizer


@pytest.fixture(scope="module")
def splits():
    return sgpo.make_splits(0, n_train=40, n_test=3, n_ood=3)


def test_problems_per_update_equalise_completions_per_update():
    # G = 2, k = 1: SFT 1 completion per problem, GRPO / imitation 2, LUFFY 1 + 1, SGPO 2 + 2
    expected = {"sft": 8, "grpo": 4, "luffy": 4, "sgpo": 2, "imitation": 4}
    assert {arm: se.problems_per_update(arm, CONFIG) for arm in sgpo.ARMS} == expected


def test_a_seed_gives_every_arm_the_same_problem_stream(splits):
    first = list(itertools.islice(se.problem_stream(splits["train"], 3), 60))
    assert first == list(itertools.islice(se.problem_stream(splits["train"], 3), 60))
    assert first != list(itertools.islice(se.problem_stream(splits["train"], 4), 60))
    assert set(map(id, first[:40])) == set(map(id, splits["train"]))  # a permutation, then the next one


@pytest.mark.parametrize("arm", list(sgpo.ARMS))
def test_each_arm_spends_its_budget_and_leaves_the_base_unchanged(arm, micro, splits):
    base, tokenizer = micro
    before = [p.detach().clone() for p in base.parameters()]
    run = se.run_arm(arm, base, tokenizer, splits, seed=0, config=CONFIG)
    assert run.spent_tokens >= CONFIG.token_budget
    assert run.log[-2]["tokens"] < CONFIG.token_budget if len(run.log) > 1 else True
    assert run.log[-1]["tokens"] == run.spent_tokens
    # one optimizer step per update (μ = 1); the imitation arm skips it when no guided sample is right
    assert run.compute.updates == (0 if arm == "imitation" else len(run.log))
    assert set(run.accuracy) == set(sl.EVAL_SPLITS) and all(0 <= a <= 1 for a in run.accuracy.values())
    assert all(torch.equal(a, b) for a, b in zip(before, base.parameters(), strict=True))
    if arm == "sgpo":
        assert len(run.weights) == 2 * len(run.log)  # two problems per update
        assert len(run.token_kl) == len(run.log) and all(math.isfinite(float(r.kl.sum())) for _, r in run.token_kl)
    else:
        assert run.weights == [] and run.token_kl == []


def test_a_run_is_deterministic(micro, splits):
    base, tokenizer = micro
    first, second = (se.run_arm("sgpo", copy.deepcopy(base), tokenizer, splits, seed=1, config=CONFIG)
                     for _ in range(2))  # fmt: skip
    assert first.log == second.log and first.weights == second.weights and first.accuracy == second.accuracy


def test_run_all_pairs_arms_within_a_seed_and_tabulates_the_runs(micro, splits):
    base, tokenizer = micro
    runs = se.run_all(base, tokenizer, splits, arms=("sft", "grpo"), seeds=(0, 1), config=CONFIG)
    table = se.runs_table(runs)
    assert list(zip(table["seed"], table["arm"], strict=True)) == [(0, "sft"), (0, "grpo"), (1, "sft"), (1, "grpo")]
    assert (table["tokens"] >= CONFIG.token_budget).all() and set(sl.EVAL_SPLITS) <= set(table.columns)


def test_bad_parameters_raise_errors_naming_them(micro, splits):
    base, tokenizer = micro
    with pytest.raises(ParameterError, match="arm"):
        se.run_arm("ppo", base, tokenizer, splits, seed=0, config=CONFIG)
    with pytest.raises(ParameterError, match="token_budget"):
        se.RunConfig(token_budget=0)
    with pytest.raises(ParameterError, match="seeds"):
        se.run_all(base, tokenizer, splits, seeds=(), config=CONFIG)


# --------------------------------------------------------------------------------------------------------------
# Controls, paired statistics, gates and ledger rows


def test_permuted_strategies_show_another_procedure_and_keep_the_answer(splits):
    permuted = se.permute_strategies(splits["train"], 0)
    assert permuted == se.permute_strategies(splits["train"], 0)
    for before, after in zip(splits["train"], permuted, strict=True):
        assert after.shown != before.procedure and after.shown in before.family
        assert after.answer == before.answer and after.prompt() == before.prompt()
        assert after.prompt(guided=True).startswith(sgpo.strategy_text(after.shown))
        assert before.strategy not in after.prompt(guided=True)


def test_controls_run_as_arms(micro, splits):
    base, tokenizer = micro
    assert se.base_arm("sgpo-lambda0") == "sgpo" and se.base_arm("grpo") == "grpo"
    assert se.problems_per_update("sgpo-permuted", CONFIG) == se.problems_per_update("sgpo", CONFIG)
    runs = se.run_all(base, tokenizer, splits, arms=("grpo",), seeds=(0, 1), config=CONFIG,
                      controls=("sgpo-lambda0",), control_seeds=(0,))  # fmt: skip
    assert [(r.arm, r.seed) for r in runs] == [("grpo", 0), ("grpo", 1), ("sgpo-lambda0", 0)]
    assert runs[-1].weights and not runs[-1].token_kl  # weights recorded, the KL record is SGPO's only
    with pytest.raises(ParameterError, match="control"):
        se.run_all(base, tokenizer, splits, arms=("grpo",), seeds=(0,), config=CONFIG, controls=("sft",))


def test_lambda_zero_sgpo_updates_exactly_like_grpo(micro, splits):
    base, tokenizer = micro
    assert se.lambda_zero_gap(base, tokenizer, splits["train"][:4], seed=2, config=CONFIG) == 0.0
    assert se.identity_claim(0.0)["holds"] and not se.identity_claim(1e-3)["holds"]


def _fake_run(arm, seed, correct, rewards=(0.0,), weights=()):
    log = [{"update": i, "tokens": i, "loss": 0.0, "reward_auto": r, "reward_guided": r} for i, r in enumerate(rewards)]
    return se.ArmRun(arm, seed, sgpo.Compute(), log, list(weights), [], {s: np.asarray(c, float)
                     for s, c in correct.items()}, 0.0, 0.0)  # fmt: skip


def _correct(test, ood=(0, 0, 0, 0)):
    return {"test": test, "ood-length": (0, 0, 0, 0), "ood-combination": ood}


def test_paired_difference_pairs_by_seed_and_problem_and_shifts_seeds():
    runs = [_fake_run("sgpo", s, _correct((1, 1, 1, 0))) for s in (0, 1)]
    runs += [_fake_run("grpo", 0, _correct((1, 0, 1, 0))), _fake_run("grpo", 1, _correct((0, 0, 1, 0)))]
    diff = se.paired_difference(runs, "sgpo", "grpo", "test", 0)
    assert diff.value == pytest.approx((1 / 4 + 2 / 4) / 2) and diff.low <= diff.value <= diff.high
    # the A/A control: grpo seed 0 minus grpo seed 1, and seed 1 minus seed 0
    assert se.paired_difference(runs, "grpo", "grpo", "test", 0, shift=1).value == pytest.approx(0.0)
    assert se.strongest_baseline(runs + [_fake_run(a, 0, _correct((0, 0, 0, 0))) for a in ("sft", "luffy")],
                                 "test") == "grpo"  # fmt: skip


def test_two_level_bootstrap_contains_the_mean_and_refuses_bad_shapes():
    from llmtheory.seeding import make_rng
    from llmtheory.stats import bootstrap_two_level

    values = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    estimate = bootstrap_two_level(values, make_rng(0, "t"), 200)
    assert estimate.value == pytest.approx(5 / 6) and estimate.low <= 5 / 6 <= estimate.high <= 1.0
    assert bootstrap_two_level(np.ones((1, 4)), make_rng(0, "t"), 50).low == 1.0
    with pytest.raises(ValueError, match="replicates"):
        bootstrap_two_level(np.ones(3), make_rng(0, "t"))


def test_the_gates_decide_whether_a_comparison_is_read():
    gate = se.guided_gate({"test": np.array([1, 1, 0, 1.0]), "ood-combination": np.array([0, 0, 0, 1.0])})
    assert gate == {"test": (0.75, True), "ood-combination": (0.25, True)}
    assert se.guided_gate({"x": np.array([0, 0, 0, 0, 1.0, 0, 0, 0, 0, 0])})["x"] == (0.1, False)
    rising, flat = (0, 0, 0, 1, 1, 1), (0.5,) * 6
    runs = [_fake_run(arm, s, _correct((1, 0, 1, 0)), rising) for arm in se.RL_ARMS for s in (0, 1)]
    runs += [_fake_run(a, s, _correct((1, 0, 1, 0))) for a in ("sft", "imitation") for s in (0, 1)]
    gains = se.did_it_train(runs, 0)
    assert all(g.value == 1.0 and g.low == 1.0 for g in gains.values()) and se.trained(gains)
    why = se.comparison_why("ood-combination", {**gate, "ood-combination": (0.1, False)}, gains)
    assert "10.0%" in why["not testable at this scale"] and "did-it-train" not in why["not testable at this scale"]
    row = se.comparison_claim(runs, "test", 0, gate, gains, versus="imitation")
    assert row["testable"] and row["control"].name.startswith("imitation")
    closed = {**gate, "test": (0.1, False)}
    assert not se.comparison_claim(runs, "test", 0, closed, gains, versus="baseline")["testable"]
    runs[0] = _fake_run("grpo", 0, _correct((1, 0, 1, 0)), flat)
    runs[1] = _fake_run("grpo", 1, _correct((1, 0, 1, 0)), flat)
    failed = se.did_it_train(runs, 0)
    assert not se.trained(failed)
    row = se.comparison_claim(runs, "test", 0, gate, failed, versus="baseline")
    assert not row["testable"] and "did-it-train gate failed: grpo +0.000" in row["ours"]
    assert "grpo +0.000" in se.comparison_why("test", gate, failed)["not testable at this scale"]
    assert se.reward_window(3) == 1 and se.reward_window(100) == 10


def test_kl_ratio_on_hand_made_records_and_its_shuffled_control():
    # one problem, group of 2: critical tokens carry KL 2, routine tokens KL 0.5
    kl = torch.tensor([[2.0, 0.5, 0.5], [2.0, 0.5, 0.0]])
    mask = torch.tensor([[1.0, 1, 1], [1, 1, 0]])
    labels = [["critical", "routine", "routine"], ["critical", "routine"]]
    run = _fake_run("sgpo", 0, _correct((1, 1, 1, 1)))
    eos = [[False, False, True], [False, False]]  # the first completion ends with <eos> (KL 0.5)
    run.token_kl = [(0, sgpo.TokenKL(kl, mask, labels, group_size=2, eos=eos))]
    units = se.kl_units([run])
    assert units.tolist() == [[4.0, 2, 1.5, 3]]
    assert se.kl_ratio(units, 0, 50).value == pytest.approx((4 / 2) / (1.5 / 3))
    assert se.kl_units([run], eos="drop").tolist() == [[4.0, 2, 1.0, 2]]
    assert se.kl_units([run], eos="only").tolist() == [[0.0, 0, 0.5, 1]]
    with pytest.raises(ValueError, match="eos"):
        se.kl_units([run], eos="ignore")
    shuffled = se.kl_units([run], shuffle_seed=0)
    assert shuffled[:, [1, 3]].tolist() == [[2, 3]] and shuffled[:, [0, 2]].sum() == pytest.approx(5.5)
    assert se.kl_ratio(np.zeros((0, 4)), 0) is None
    # routine tokens without KL: no ratio (not an upper bound of 1e12)
    assert se.kl_ratio(np.array([[1.0, 1, 0.0, 3]]), 0, 50) is None
    shares = se.kl_shares([run])
    assert shares["mass critical"] == pytest.approx(4 / 5.5) and shares["mass routine <eos>"] == pytest.approx(
        0.5 / 5.5
    )
    assert shares["tokens routine digits"] == pytest.approx(2 / 5)
    row = se.selectivity_claim([run], 0)
    assert "without the end-of-sequence tokens" in row["ours"] and row["control"] is not None
    digits = se.selectivity_claim([run], 0, eos="drop")  # the row added after review: (4/2) / (1/2)
    assert digits["ours"].startswith("4.00") and "after review" in digits["claim"]
    assert "left out" in digits["rule"] and digits["control"] is not None
    with pytest.raises(ValueError, match="eos"):
        se.selectivity_claim([run], 0, eos="only")
    reading = (
        "the critical ÷ routine ratio of the per-token KL is 4.00 [4.00, 4.00] on the digits alone, an interval that "
        "lies above 1"
    )
    assert se.digits_reading([run], 0) == reading


def test_the_weight_identity_and_the_weight_trend_with_its_shuffled_control():
    records = [{"update": u, "weight": 1 - a, "acc_auto": a, "acc_guided": 1.0}
               for u, a in enumerate((0, 0.25, 0.5, 0.75, 1.0))]  # fmt: skip
    run = _fake_run("sgpo", 0, _correct((1, 1, 1, 1)), weights=records)
    frame = se.weight_records([run])
    assert se.weight_spearman(frame, 0, draws=50).value == pytest.approx(-1.0)
    assert se.weight_spearman(frame, 0, "constant") == Estimate(0.0, 0.0, 0.0)
    row = se.weight_claim([run], 0)
    assert row["holds"] is True and "ρ" in row["ours"] and "control" not in row
    assert se.weight_claim([run], 0, "deficit")["holds"] is True  # 1 − acc_auto is the deficit rule too
    broken = _fake_run("sgpo", 0, _correct((1, 1, 1, 1)), weights=[{**records[0], "weight": 0.5}])
    assert se.weight_claim([broken], 0)["holds"] is False
    assert se.weight_claim([_fake_run("sgpo", 0, _correct((1, 1, 1, 1)))], 0)["testable"] is False
    # the weights fall over 30 updates at two seeds while SGPO's reward rises
    falling = [{"update": u, "weight": 1 - u / 30, "acc_auto": u / 30, "acc_guided": 1.0} for u in range(30)]
    rising = tuple(u / 30 for u in range(30))
    runs = [_fake_run("sgpo", s, _correct((1, 1, 1, 1)), rising, falling) for s in (0, 1)]
    gains = {"sgpo": se.reward_gain(runs, "sgpo", 0)}
    trend = se.weight_trend_claim(runs, 0, gains)
    assert se.weight_trend(runs, 0).value == pytest.approx(-20 / 30)
    assert trend["holds"].holds and not trend["control"].holds.holds
    flat = [_fake_run("sgpo", s, _correct((1, 1, 1, 1)), (0.5,) * 30, falling) for s in (0, 1)]
    unread = se.weight_trend_claim(flat, 0, {"sgpo": se.reward_gain(flat, "sgpo", 0)})
    assert unread["testable"] is False and "not read" in unread["ours"]


def test_the_card_table_reads_the_card_and_the_memory_text_reads_the_config():
    card = zoo.card_data("sgpo-llama")
    table = se.card_table(card)
    assert list(table.columns) == ["without s", "with s"] and table.loc["test", "with s"].startswith(
        f"{card['metrics']['test_guided']:.0%}"
    )
    assert "MiB" in se.memory_text("sgpo-llama") and "cannot be read" in se.memory_text("/nonexistent/sgpo-model")


def test_check_budgets_rejects_a_run_that_spent_too_little_or_too_much():
    config = se.RunConfig(token_budget=100)
    run = _fake_run("grpo", 0, _correct((1, 1, 1, 1)), (0.0, 0.0))
    run.log[0]["tokens"], run.log[1]["tokens"], run.compute = 60, 120, sgpo.Compute(generated_tokens=120)
    assert "100" in se.check_budgets([run], config)
    run.compute = sgpo.Compute(generated_tokens=90)
    with pytest.raises(RuntimeError, match="grpo at seed 0 spent 90"):
        se.check_budgets([run], config)
    run.compute = sgpo.Compute(generated_tokens=200)
    with pytest.raises(RuntimeError, match="spent 200"):
        se.check_budgets([run], config)


def test_the_position_preserving_shuffle_keeps_each_positions_labels_and_the_ordering_text():
    kl = torch.tensor([[2.0, 0.5, 0.5], [1.0, 0.5, 0.0]])
    labels = [["critical", "routine", "routine"], ["routine", "critical"]]
    run = _fake_run("sgpo", 0, _correct((1, 1, 1, 1)))
    run.token_kl = [(0, sgpo.TokenKL(kl, torch.tensor([[1.0, 1, 1], [1, 1, 0]]), labels, group_size=1))]
    for seed in range(5):
        units = se.kl_units([run], shuffle_seed=seed, shuffle="position")
        assert units[:, [1, 3]].sum(axis=0).tolist() == [2, 3] and units[:, [0, 2]].sum() == pytest.approx(4.5)
        assert units[1].sum() == pytest.approx(units[1, 1] + units[1, 3] + 1.5)  # row 1's KL stays in row 1
    with pytest.raises(ValueError, match="shuffle"):
        se.kl_units([run], shuffle_seed=0, shuffle="all")
    runs = [_fake_run(a, 0, _correct(c)) for a, c in (("sft", (1, 1, 1, 0)), ("sgpo", (1, 0, 0, 0)))]
    text = se.ordering_text(runs, {"test": np.array([1.0, 1, 0, 0])}, "test")
    assert text == "sft 75.0%, base policy 50.0%, sgpo 25.0%"
