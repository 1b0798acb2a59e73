"""Tests of the SGPO chapter's experiment loop (llmtheory.sgpo_experiment): equal compute per arm, paired problem
streams, SGPO's records, determinism, and errors, on an untrained micro base policy."""

import copy
import itertools
import math

import pytest
import torch

from llmtheory import grpo, sgpo, zoo
from llmtheory import sgpo_experiment as se
from llmtheory import sgpo_lm as sl
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
