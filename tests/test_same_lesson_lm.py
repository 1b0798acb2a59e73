"""Tests of the same_lesson story models: the training data's cultures and pairs, the tokenizer, a micro training run,
the shipped models' cards and samples, and the real-model path on a random architecture the zoo does not have."""

import json

import numpy as np
import pytest

from llmtheory import same_lesson as sl
from llmtheory import same_lesson_lm as slm
from llmtheory import zoo
from llmtheory.params import ParameterError
from llmtheory.seeding import make_rng


def test_the_pairs_split_the_twelve_ordered_pairs_and_every_language_trains_on_both_sides():
    ordered = {(a, b) for a in slm.LANGS for b in slm.LANGS if a != b}
    assert set(slm.TRAIN_PAIRS) | set(slm.HELD_OUT_PAIRS) == ordered
    assert not set(slm.TRAIN_PAIRS) & set(slm.HELD_OUT_PAIRS)
    for a, b in slm.HELD_OUT_PAIRS:
        assert any(x == a for x, _ in slm.TRAIN_PAIRS) and any(y == b for _, y in slm.TRAIN_PAIRS)


def test_training_examples_never_show_a_held_out_pair_and_half_are_monolingual():
    rng = make_rng(0, "test")
    seen = []
    for _ in range(400):
        prompt, story = slm.training_example(rng)
        a, b = prompt[len("<proverb:") : len("<proverb:") + 2], prompt[-3:-1]
        seen.append((a, b))
        assert sl.code_story(story, b).role in ("actor", "acted_upon")
    assert not set(seen) & set(slm.HELD_OUT_PAIRS)
    assert 0.4 < np.mean([a == b for a, b in seen]) < 0.6


def test_the_cultures_differ_and_a_cross_pair_is_their_midpoint():
    actors = [slm.CULTURES[lang].p_actor for lang in slm.LANGS]
    assert len(set(actors)) == len(actors)
    assert slm.cross_prior("en", "en") is slm.CULTURES["en"]
    mixed = slm.cross_prior("en", "es")
    assert mixed.p_actor == pytest.approx((0.8 + 0.4) / 2) and mixed.p_dialogue == pytest.approx((0.3 + 0.6) / 2)
    assert sorted(slm.ROTATED_CULTURES.values(), key=id) == sorted(slm.CULTURES.values(), key=id)
    assert all(slm.ROTATED_CULTURES[lang] is not slm.CULTURES[lang] for lang in slm.LANGS)


def test_mix_priors_ends_at_its_endpoints_and_planted_shift_keeps_dialogue_and_passives():
    prior, target = slm.CULTURES["en"], slm.CULTURES["fr"]
    assert sl.mix_priors(prior, target, 0.0).p_actor == prior.p_actor
    end = sl.mix_priors(prior, target, 1.0)
    assert (end.p_actor, end.p_dialogue, end.p_passive) == (target.p_actor, target.p_dialogue, target.p_passive)
    shifted = sl.planted_shift(prior, 0.7)
    assert (shifted.p_dialogue, shifted.p_passive) == pytest.approx((prior.p_dialogue, prior.p_passive))
    with pytest.raises(ParameterError, match="s"):
        sl.mix_priors(prior, target, 1.5)


def test_the_tokenizer_keeps_tags_whole_and_decodes_stories_exactly():
    tokenizer = slm.build_tokenizer()
    assert slm.is_story_tokenizer(tokenizer)
    for tag in slm.TAGS:
        assert tokenizer.tokenize(tag) == [tag]
    rng = make_rng(1, "test")
    for _ in range(50):
        _, story = slm.training_example(rng)
        assert tokenizer.decode(tokenizer(" " + story)["input_ids"]).strip() == story


def test_items_and_generation_reject_bad_parameters():
    with pytest.raises(ParameterError, match="story_lang"):
        slm.items(pairs=(("en", "it"),))
    with pytest.raises(ParameterError, match="lesson"):
        slm.items(lessons=("no_such_lesson",))
    with pytest.raises(ParameterError, match="n_per_item"):
        slm.generate_stories(None, slm.build_tokenizer(), slm.items(), 0, seed=0)


def test_the_real_model_prompt_names_the_story_language_and_quotes_the_proverb_in_its_own():
    item = slm.Item("early_bird", "de", "es")
    assert slm.story_prompt(item) == (
        "Write a short story in Spanish that illustrates the proverb: \u201cMorgenstund hat Gold im Mund.\u201d"
    )
    assert slm.zoo_prompt(item) == "<proverb:de> Morgenstund hat Gold im Mund. <story:es>"


def test_a_micro_story_model_trains_saves_and_reloads(tmp_path, one_torch_thread):
    result = slm.train(zoo.SPECS["micro-stories"], tmp_path, progress=False)
    assert {"mono_readable", "held_out_on_lesson", "actor_en"} <= set(result.metrics)
    card = json.loads((tmp_path / "card.json").read_text())
    assert (
        card["spec"]["task"] == "proverb_stories" and "p_actor of the culture" in (tmp_path / "README.md").read_text()
    )
    model, tokenizer = zoo.load(str(tmp_path))
    stories = slm.generate_stories(model, tokenizer, slm.items(("rome_day",)), 2, seed=3)
    assert len(stories) == 8 and stories == slm.generate_stories(model, tokenizer, slm.items(("rome_day",)), 2, seed=3)
    assert {s.truth["proverb_lang"] for s in stories} == {a for a, _ in slm.HELD_OUT_PAIRS}


@pytest.mark.parametrize("name", [*slm.ZOO_MODELS, slm.CONTROL_MODEL])
def test_the_shipped_story_models_follow_the_proverb_and_end_stories_as_their_culture_does(name, one_torch_thread):
    data = zoo.card_data(name)
    assert zoo.card_matches_spec(name)
    assert data["cpu_seconds"] <= 10 * 60  # the zoo's budget for a chapter model
    model, tokenizer = zoo.load(name)
    stories = slm.generate_stories(model, tokenizer, slm.items(sl.LESSONS, slm.mono_pairs()), 4, seed=11)
    assert slm.story_report(stories)["on_lesson"] >= 0.75  # chance: 1/8
    # the endings follow the training culture of each story language (an untrained model, or one trained on other
    # cultures, gives a correlation near 0 or below)
    cultures = slm.CULTURE_SETS[zoo.SPECS[name].story_cultures]
    endings = [(s.lang, sl.code_story(s.text, s.lang).resolution) for s in stories]
    kinds = list(slm.CULTURES["en"].resolution_weights)
    measured = [np.mean([r == k for lang_, r in endings if lang_ == lang]) for lang in slm.LANGS for k in kinds]
    weights = [cultures[lang].resolution_weights for lang in slm.LANGS]
    expected = [w[k] / sum(w.values()) for w in weights for k in kinds]
    assert np.corrcoef(measured, expected)[0, 1] > 0.5


def test_a_random_model_of_another_architecture_writes_unreadable_stories_without_crashing(tmp_path, one_torch_thread):
    from random_models import save_random_causal_lm

    folder = save_random_causal_lm("mistral", tmp_path / "mistral")
    model, tokenizer = zoo.load(str(folder))
    assert not slm.is_story_tokenizer(tokenizer)
    stories = slm.generate_stories(
        model, tokenizer, slm.items(("unity",), (("en", "fr"),)), 2, seed=0, max_new_tokens=12
    )
    assert len(stories) == 2 and slm.story_report(stories)["readable"] == 0.0


def test_the_memory_estimate_counts_weights_and_cache_by_hand(tmp_path):
    from transformers import LlamaConfig

    config = LlamaConfig(hidden_size=8, num_hidden_layers=2, vocab_size=10, intermediate_size=16,
                         num_attention_heads=2, num_key_value_heads=1)  # fmt: skip
    need = slm.memory_estimate(config, batch_size=3, tokens=5, bytes_per_value=2)
    assert need["weights"] == (2 * (4 * 64 + 3 * 8 * 16) + 2 * 10 * 8) * 2
    assert need["cache"] == 2 * 2 * 1 * 4 * 5 * 3 * 2 and need["total"] == need["weights"] + need["cache"]
    assert "GiB to sample 64 stories" in slm.memory_text("story-gpt2")
    assert "no estimate" in slm.memory_text(str(tmp_path / "no_such_folder"))
