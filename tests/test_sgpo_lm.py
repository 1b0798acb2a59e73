"""Tests of the SGPO chapter's base policy (llmtheory.sgpo_lm): its training labels and batches, a micro training run,
and the shipped model's card against its spec and a re-measurement."""

import json

import numpy as np
import pytest

from llmtheory import sgpo, zoo
from llmtheory import sgpo_lm as sl
from llmtheory.params import ParameterError
from llmtheory.seeding import make_rng

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tokenizer():
    return sgpo.build_tokenizer()


def test_labels_cover_the_demonstrated_output_and_the_answer_only(tokenizer):
    problem = sgpo.Problem("reverse", (((3, 1, 4), (4, 1, 3)),), (5, 2, 7))
    ids = tokenizer(sgpo.training_text(problem, guided=True))["input_ids"]
    labels = sl.output_labels(ids, tokenizer.convert_tokens_to_ids("->"),
                              [tokenizer.convert_tokens_to_ids(";"), tokenizer.eos_token_id])  # fmt: skip
    kept = tokenizer.convert_ids_to_tokens([t for t in labels if t != -100])
    assert kept == ["4", "1", "3", ";", "7", "2", "5", "<eos>"]


def test_a_batch_mixes_guided_and_unguided_texts_at_its_share(tokenizer):
    problems = sgpo.make_splits(0, n_train=50, n_test=5, n_ood=5)["train"]
    batch = sl.training_batch(tokenizer, problems, make_rng(0, "t"), 400, guided_share=0.5)
    strategy = tokenizer.convert_tokens_to_ids("strategy")
    guided = (batch["input_ids"] == strategy).any(dim=1).float().mean()
    assert 0.4 < float(guided) < 0.6
    assert int((batch["attention_mask"].sum(dim=1) == 0).sum()) == 0
    assert bool(((batch["labels"] != -100) <= batch["attention_mask"].bool()).all())
    with pytest.raises(ParameterError, match="guided_share"):
        sl.training_batch(tokenizer, problems, make_rng(0, "t"), 4, guided_share=1.5)


def test_a_micro_base_policy_trains_saves_reloads_and_answers_deterministically(tmp_path):
    spec = zoo.SPECS["micro-sgpo"]
    result = sl.train(spec, tmp_path, progress=False)
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["spec"]["task"] == "sgpo_procedures"
    assert {f"{s}_{m}" for s in sl.EVAL_SPLITS for m in sl.MODES} <= set(result.metrics)
    model, tokenizer = zoo.load(str(tmp_path))
    problems = sl.splits(spec)["test"][:4]
    first = sl.greedy_completions(model, tokenizer, problems, guided=True)
    assert first == sl.greedy_completions(model, tokenizer, problems, guided=True)
    with pytest.raises(ParameterError, match="task"):
        sl.train(zoo.SPECS["micro-pigeon-chat"], None, progress=False)


def test_the_shipped_base_policy_matches_its_card_and_is_better_with_the_strategy():
    data = zoo.card_data(sl.MODEL)
    assert zoo.card_matches_spec(sl.MODEL)
    assert data["cpu_seconds"] <= 10 * 60  # the zoo's budget for a chapter model
    m = data["metrics"]
    model, tokenizer = zoo.load(sl.MODEL)
    # the card's numbers are the model's: a re-measurement of the held-out split gives them again
    problems = sl.splits(zoo.SPECS[sl.MODEL])["test"][: sl.SPLIT_SIZES["n_test"]]
    for mode in sl.MODES:
        again = float(np.mean(sl.correct(model, tokenizer, problems, guided=mode == "guided")))
        assert again == pytest.approx(m[f"test_{mode}"], abs=1e-4)
    # the regime the chapter needs: room for RL without s, and a strategy that helps
    assert sl.interval(m, "test_guided", len(problems)).low > sl.interval(m, "test_auto", len(problems)).high
    assert 0.2 < m["test_auto"] < 0.7
    assert m["ood-length_auto"] <= m["test_auto"] and m["ood-combination_auto"] <= m["test_auto"]
