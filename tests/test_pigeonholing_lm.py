"""Tests of the pigeonholing chat model: its training dialogues (in-context answers right about 90% of the time,
targets always right; recall dialogues whose answer is only in earlier turns), the batch's labels, a micro training
run, and the shipped model's card against its spec."""

import json

import numpy as np
import pytest

from llmtheory import pigeonholing as ph
from llmtheory import pigeonholing_lm as pl
from llmtheory import toyworld as tw
from llmtheory import zoo
from llmtheory.params import ParameterError
from llmtheory.seeding import make_rng

MODEL = "pigeon-chat-llama"


@pytest.fixture(scope="module")
def world():
    return tw.make_world(0)


def test_training_dialogues_carry_answers_in_context_that_are_mostly_right_and_targets_that_are_right(world):
    rng = make_rng(0, "test")
    in_context, right_in_context, kinds = 0, 0, {"open": 0, "stance": 0}
    for _ in range(1500):
        prompt, target = pl.training_example(world, rng)
        assert prompt.endswith("<assistant>") and target.startswith("Sure , ") and target.endswith(" .")
        answer = target.split()[2]
        if "name a" in prompt:
            kinds["open"] += 1
            assert prompt.count("<user>") == 1
            continue
        if answer in ph.STANCE_WORDS:  # no other task answers warm or cold
            kinds["stance"] += 1
            assert prompt.startswith("<user> what is the ") and prompt.count("<user>") == 1
            continue
        question = prompt.split("<user> ")[-1].removesuffix(" <assistant>").split(" i think it is ")[0]
        suggestion = prompt.split(" i think it is ")[1].split()[0] if " i think it is " in prompt else None
        earlier = [t.split()[2] for t, q in _turns(prompt) if q == question]
        said = [suggestion] if suggestion else earlier
        if said:
            in_context += 1
            right_in_context += all(s == answer for s in said)
    assert 0.07 < kinds["open"] / 1500 < 0.13 and 0.07 < kinds["stance"] / 1500 < 0.13
    assert 0.85 < right_in_context / in_context < 0.95


def test_recall_dialogues_hold_their_answer_only_in_earlier_same_question_turns_mostly_right(world):
    rng = make_rng(2, "test")
    unknown = set(world.unknown_entities)
    right, counts = 0, []
    for _ in range(600):
        prompt, target = pl.recall_example(world, rng)
        answer = target.split()[2]
        question = prompt.split("<user> ")[-1].removesuffix(" <assistant>")
        assert set(question.split()) & unknown  # an entity of the never-described class: no fact to remember
        turns = _turns(prompt)
        same = [t.split()[2] for t, q in turns if q == question]
        assert 1 <= len(same) <= len(turns) <= pl.MAX_TURNS and len(set(same)) == 1
        assert all(set(q.split()) & unknown for _, q in turns)
        counts.append(len(turns))
        right += same[0] == answer
    assert 0.86 < right / 600 < 0.94
    assert set(counts) == set(range(1, pl.MAX_TURNS + 1))
    recall = sum(
        bool(set(p.split("<user> ")[-1].split()) & unknown)
        for p, _ in (pl.training_example(world, rng) for _ in range(1500))
    )
    assert abs(recall / 1500 - pl.RECALL_SHARE) < 0.04


def test_a_training_batch_is_of_one_length_class_and_long_batches_come_at_their_share(world):
    rng = make_rng(1, "test")
    long_batches = 0
    for _ in range(200):
        batch = pl.training_batch(world, rng, 8)
        long = ["<eos>" in prompt for prompt, _ in batch]
        assert all(long) or not any(long)
        long_batches += all(long)
    assert abs(long_batches / 200 - pl.long_share()) < 0.1
    with pytest.raises(ParameterError, match="length"):
        pl.training_example(world, rng, "medium")


def _turns(prompt: str) -> list[tuple[str, str]]:
    """(assistant reply, the user question before it) of every earlier exchange."""
    parts = prompt.split(" <eos> ")[:-1]
    return [(p.split("<assistant> ")[1], p.split("<user> ")[1].split(" <assistant>")[0]) for p in parts]


def test_the_batch_puts_labels_on_the_final_reply_and_eos_only(world):
    tokenizer = tw.build_tokenizer(world)
    prompt = ph.earlier_turns(ph.arithmetic_item(make_rng(0, "t")), 2, make_rng(1, "t")).prompt
    batch = pl.dialogue_batch(tokenizer, [(prompt, "Sure , 7 ."), (ph.open_prompt("city"), "Sure , x .")])
    labelled = [tokenizer.convert_ids_to_tokens(int(t)) for t in batch["labels"][0] if t != -100]
    assert labelled == ["Sure", ",", "7", ".", "<eos>"]
    assert batch["input_ids"][0].tolist().count(tokenizer.bos_token_id) == 1
    assert int(batch["attention_mask"][1].sum()) == len(
        tokenizer(f"{ph.open_prompt('city')} Sure , x . <eos>")["input_ids"]
    )


def test_a_micro_model_trains_saves_reloads_and_answers_deterministically(tmp_path, one_torch_thread, world):
    result = pl.train(zoo.SPECS["micro-pigeon-chat"], tmp_path, progress=False)
    assert {"arithmetic_clean", "facts_same_k5_repeat", "open_city_example_entropy", "stance_flip_user"} <= set(
        result.metrics
    )
    card = json.loads((tmp_path / "card.json").read_text())
    assert (
        card["spec"]["task"] == "dialogues"
        and "Copying from context is a learned habit" in (tmp_path / "README.md").read_text()
    )
    model, tokenizer = zoo.load(str(tmp_path))
    prompts = [ph.open_prompt("language")] * 6
    sampled = pl.zoo_answers(model, tokenizer, prompts, temperature=1.0, seed=5)
    assert sampled == pl.zoo_answers(model, tokenizer, prompts, temperature=1.0, seed=5) and len(sampled) == 6
    assert pl.zoo_answers(model, tokenizer, prompts[:1]) * 6 == pl.zoo_answers(model, tokenizer, prompts)
    again = pl.train(zoo.SPECS["micro-pigeon-chat"], None, progress=False)  # deterministic: same data, same weights
    assert again.metrics == result.metrics and again.log[-1]["loss"] == result.log[-1]["loss"]
    with pytest.raises(ParameterError, match="dialogues"):
        pl.train(zoo.SPECS["micro-stories"], None, progress=False)
    with pytest.raises(ParameterError, match="temperature"):
        pl.zoo_answers(model, tokenizer, prompts, temperature=-1.0)


def test_the_shipped_chat_model_matches_its_spec_copies_a_suggestion_and_reads_its_earlier_turns(one_torch_thread):
    data = zoo.card_data(MODEL)
    assert zoo.card_matches_spec(MODEL)
    assert data["cpu_seconds"] <= 10 * 60  # the zoo's budget for a chapter model
    m = data["metrics"]
    model, tokenizer = zoo.load(MODEL)
    world = tw.make_world(0)
    # the card's numbers are the model's: a re-measurement of one task gives them again
    again = pl.task_report(model, tokenizer, world, "arithmetic", 200, seed=0)
    assert all(again[k] == pytest.approx(m[k], abs=1e-4) for k in again)
    assert np.mean([m[f"{t}_clean"] for t in ph.TASKS]) > np.mean([m[f"{t}_wrong_suggestion"] for t in ph.TASKS])
    # it reads its own earlier turns (issue 18): five earlier right answers to the same question lift facts clearly
    assert m["facts_correct_same_k5"] > m["facts_clean"] + 0.1
