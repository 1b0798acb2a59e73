"""Sentence-level entrainment: the measure, head masks through hooks on the zoo's four families, the head search
and its controls."""

import numpy as np
import pandas as pd
import pytest
import torch

from llmtheory import entrainment as en
from llmtheory import entrainment_experiment as ex
from llmtheory import toyworld as tw
from llmtheory import zoo
from llmtheory.claims import Estimate
from llmtheory.params import ParameterError

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAMILIES = ["fact-llama-h48", "fact-gpt2-h64", "fact-neox-h64", "fact-qwen2-h64"]


@pytest.fixture(scope="module")
def world():
    return tw.make_world(0)


@pytest.fixture(scope="module")
def llama():
    return zoo.load("fact-llama-h48")


def assert_mask_parity(model, tokenizer) -> None:
    """Mask of ones = the unhooked logits; mask zeroing a head = that head's W_O slice zeroed by hand; mask zeroing
    a key-value group's query heads = that group's V rows zeroed by hand (independent of the hook's W_O slicing)."""
    ids = torch.tensor([tokenizer("the capital of x is y . people in z speak q .")["input_ids"]])
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        layout = en.head_layout(model)
        with en.HeadMasker(model) as masker:
            masker.mask = torch.ones(layout.layers, layout.heads)
            ones = model(input_ids=ids).logits
            masker.mask = en.heads_off(layout, [(1, 2)])
            hooked = model(input_ids=ids).logits
        after = model(input_ids=ids).logits
    assert torch.allclose(ones, plain, atol=1e-6) and torch.equal(after, plain)  # hooks removed on exit
    assert (hooked - plain).abs().max() > 1e-4  # the head mattered, so the next comparison can fail
    errors = en.mask_parity_errors(model, ids, (1, 2))  # on copies: the model is left as it was
    assert set(errors) == {"ones", "W_O", "V"} and max(errors.values()) < 1e-5
    assert torch.equal(model(input_ids=ids).logits, plain)
    en.zero_head_weights(model, 1, 2)
    with torch.no_grad():
        by_hand = model(input_ids=ids).logits
    assert torch.allclose(hooked, by_hand, atol=1e-5)


@pytest.mark.parametrize("name", FAMILIES)
def test_head_mask_parity_on_every_zoo_family(name):
    model, tokenizer = zoo.load(name)
    assert en.head_layout(model) == en.HeadLayout(8, 8, model.config.hidden_size // 8)
    assert_mask_parity(model, tokenizer)


@pytest.mark.parametrize("name", ["fact-llama-h48", "fact-gpt2-h64"])
def test_value_zeroing_matches_the_hook_on_its_group_only(name):
    """The V check is independent of the hook's W_O slicing: zeroing key-value head 1's V rows equals the hook on
    that group's query heads (two per group in the GQA Llama, one in GPT-2's fused c_attn), and not on the
    neighbouring group's, so a hook that sliced the wrong head would fail it."""
    model, tokenizer = zoo.load(name)
    ids = torch.tensor([tokenizer("the capital of x is y . people in z speak q .")["input_ids"]])
    layout = en.head_layout(model)
    group = layout.heads // en.key_value_heads(model)
    assert en.query_heads_of(model, 1) == list(range(group, 2 * group)) and group == (2 if "llama" in name else 1)
    with torch.no_grad(), en.HeadMasker(model) as masker:
        masker.mask = en.heads_off(layout, [(3, h) for h in en.query_heads_of(model, 1)])
        right = model(input_ids=ids).logits
        masker.mask = en.heads_off(layout, [(3, h) for h in en.query_heads_of(model, 2)])
        wrong = model(input_ids=ids).logits
    assert en.zero_value_head(model, 3, 1)
    with torch.no_grad():
        by_hand = model(input_ids=ids).logits
    assert torch.allclose(right, by_hand, atol=1e-5) and (wrong - by_hand).abs().max() > 1e-3


def test_unknown_layout_names_the_architecture():
    model = torch.nn.Linear(2, 2)
    model.config = type("Config", (), {"model_type": "mystery", "num_hidden_layers": 1})()
    with pytest.raises(ParameterError, match="mystery"):
        en.output_projections(model)
    assert not en.zero_value_head(model, 0, 0)  # no V projection it knows: nothing zeroed, the V check is left out


def test_sentence_logprob_ignores_right_padding_and_counts_only_the_sentence(llama):
    model, tokenizer = llama
    contexts, sentences = ["the capital of x is y .", "a ."], ["people in z speak q .", "x ."]
    batch = en.sentence_batch(tokenizer, contexts, sentences)
    assert batch.sentence_mask.sum(1).tolist() == [6, 2]
    together = en.sentence_logprobs(model, tokenizer, contexts, sentences)
    alone = [en.sentence_logprobs(model, tokenizer, [c], [s])[0] for c, s in zip(contexts, sentences, strict=True)]
    assert np.allclose(together, alone, atol=1e-5)
    ids = batch.input_ids[:1, : int(batch.attention_mask[0].sum())]
    with torch.no_grad():
        logprobs = model(input_ids=ids).logits.log_softmax(-1)[0]
    start = len(tokenizer(contexts[0])["input_ids"])
    by_hand = np.mean([logprobs[t - 1, ids[0, t]].item() for t in range(start, ids.shape[1])])
    assert together[0] == pytest.approx(by_hand, abs=1e-5)


def test_items_put_the_sentence_in_the_with_context_only(world):
    items = ex.make_items(world, 10, seed=0)
    assert [it.kind for it in items[:3]] == list(ex.KINDS) and len(items) == 30
    for it in items:
        assert it.with_context.startswith(it.sentence)
        assert it.sentence not in it.without_context and it.sentence not in it.unrelated_context
        assert len(it.with_context.split()) > len(it.sentence.split())
    true, counterfactual = items[0].sentence, items[1].sentence
    assert true != counterfactual and len(true.split()) == len(counterfactual.split())
    assert items[2].sentence.split()[-2] in ex.QUALITIES
    for true, counterfactual in zip(items[::3], items[1::3], strict=True):
        # the counterfactual's control: the true item's unrelated sentence with another wrong answer than s's, and
        # neither entity's true answer
        (answer, wrong), *same = [(a, b) for a, b in zip(true.sentence.split(), counterfactual.sentence.split(),
                                                         strict=True) if a != b]  # fmt: skip
        (other_answer, other_wrong), *rest = [
            (a, b)
            for a, b in zip(true.unrelated_context.split(), counterfactual.unrelated_context.split(), strict=True)
            if a != b
        ]
        assert not same and not rest and other_wrong not in (answer, wrong, other_answer)
    search, test = ex.split_groups(items, seed=0)
    assert not {it.group for it in search} & {it.group for it in test} and len(search) + len(test) == 30
    with pytest.raises(ParameterError, match="n_topics"):
        ex.make_items(world, 1, seed=0)


def test_gumbel_sigmoid_is_hard_forward_with_the_soft_gradient():
    logits = torch.tensor([3.0, -3.0, 0.0] * 2000, requires_grad=True)
    sample = en.gumbel_sigmoid(logits, torch.Generator().manual_seed(0))
    assert set(sample.unique().tolist()) <= {0.0, 1.0}
    rates = sample.detach().reshape(-1, 3).mean(0)
    assert np.allclose(rates.numpy(), torch.sigmoid(torch.tensor([3.0, -3.0, 0.0])).numpy(), atol=0.03)
    sample.sum().backward()
    assert (logits.grad > 0).all()


def test_controls_are_derangements_and_random_sets_of_equal_size():
    contexts = [f"c{i}" for i in range(7)]
    null = en.null_contexts(contexts, seed=0)
    assert sorted(null) == contexts and all(a != b for a, b in zip(null, contexts, strict=True))
    with pytest.raises(ParameterError, match="null objective"):
        en.null_contexts(["c", "c"], seed=0)
    layout = en.HeadLayout(8, 8, 8)
    sets = en.random_head_sets(layout, 3, 50, seed=0)
    assert all(len(set(s)) == 3 for s in sets) and len({tuple(s) for s in sets}) > 40
    assert sets == en.random_head_sets(layout, 3, 50, seed=0)
    with pytest.raises(ParameterError, match="size"):
        en.random_head_sets(layout, 65, 1, seed=0)


def test_search_keeps_every_head_when_the_keep_term_dominates(llama, world):
    model, tokenizer = llama
    items = ex.of_kind(ex.make_items(world, 4, seed=0), "true")
    args = ([it.sentence for it in items], [it.with_context for it in items], [it.without_context for it in items])
    result = en.search_heads(model, tokenizer, *args, steps=5, seed=0, keep_weight=100.0)
    assert result.logits.shape == (8, 8) and result.off == [] and result.loss[-1] < result.loss[0]
    assert all(p.requires_grad for p in model.parameters())  # the model's weights are left as they were


def test_the_null_objective_has_nothing_to_remove(world):
    """On the copying model, s in its own context gains over a nat per token; on the null objective (another
    item's context without s) the gain is 0 within its interval, and far smaller."""
    model, tokenizer = zoo.load("needle-llama-gqa")
    items = ex.needle_items(world, 24, seed=0)
    sentences, without = [it.sentence for it in items], [it.without_context for it in items]
    real = Estimate.mean_of(en.deltas(model, tokenizer, sentences, [it.with_context for it in items], without))
    null = Estimate.mean_of(en.deltas(model, tokenizer, sentences, en.null_contexts(without, seed=0), without))
    assert real.low > 1.0 and null.low < 0 < null.high and abs(null.value) < 0.1 * real.value


def test_search_finds_heads_on_the_copying_model_that_beat_random_sets(world):
    """On the needle model (retrieval heads) the search turns heads off whose removal takes away far more of the
    held-out Δ than random sets of the same size: the search can find a mechanism that exists."""
    model, tokenizer = zoo.load("needle-llama-gqa")
    search, test = ex.split_groups(ex.needle_items(world, 16, seed=0), seed=0)

    def fields(items):
        return [it.sentence for it in items], [it.with_context for it in items], [it.without_context for it in items]

    result = en.search_heads(model, tokenizer, *fields(search), steps=15, seed=0)
    layout = en.head_layout(model)
    assert 0 < len(result.off) < layout.total
    full = en.masked_deltas(model, tokenizer, None, *fields(test))
    found = ex.reduction(full, en.masked_deltas(model, tokenizer, en.heads_off(layout, result.off), *fields(test)))
    randoms = [ex.reduction(full, en.masked_deltas(model, tokenizer, en.heads_off(layout, heads), *fields(test)))
               for heads in en.random_head_sets(layout, len(result.off), 5, seed=0)]  # fmt: skip
    assert found > 0.3 and found > np.median(randoms) + 0.3


def test_gains_are_clustered_by_topic_and_gate_the_head_rows():
    frame = pd.DataFrame({"kind": ["true", "counterfactual", "opinion"] * 3, "group": list("aaabbbccc"),
                          "with": [1.0, 3.0, 9.0, 2.0, 2.0, 9.0, 0.5, 1.5, 9.0], "unrelated": [0.0] * 9,
                          "logprob_without": [-1.0] * 9})  # fmt: skip
    assert ex.topic_gains(frame).tolist() == [2.0, 2.0, 1.0]  # one value per topic, opinions left out
    assert ex.sentence_gain(frame).value == pytest.approx(5 / 3)
    assert ex.head_rows_untestable(frame, 100) == ""
    primed = frame.assign(unrelated=frame["with"])  # an unrelated sentence gives as much: template priming only
    assert ex.head_rows_untestable(primed, 100).startswith("no sentence entrainment")
    assert ex.head_rows_untestable(frame.assign(logprob_without=-5.0), 100).startswith("the model predicts")
    assert ex.no_sentence_entrainment(primed, kinds=("opinion",)).startswith("no sentence")
    assert ex.paired_difference(frame, primed).value == pytest.approx(-5 / 3)
    with pytest.raises(ParameterError, match="same items"):
        ex.paired_difference(frame, frame.assign(group=list("xxxbbbccc")))


def test_reduction_and_its_bootstrap_interval():
    full, masked = np.array([1.0, 2.0, 3.0, 2.0]), np.array([0.5, 1.0, 1.5, 1.0])
    assert ex.reduction(full, masked) == pytest.approx(0.5)
    e = ex.reduction_estimate(full, masked, seed=0)
    assert e.low <= 0.5 <= e.high and e.value == pytest.approx(0.5)


def test_answer_accuracy_and_deltas_on_a_zoo_model(llama, world):
    model, tokenizer = llama
    prompts, answers = ex.answer_prompts(world)
    hits = ex.answer_hits(model, tokenizer, prompts[:60], answers[:60])
    assert 0.2 < hits.mean() <= 1.0  # the zoo card: frequent facts known, rare ones guessed
    frame = ex.item_deltas(model, tokenizer, ex.make_items(world, 6, seed=0))
    assert set(frame["kind"]) == set(ex.KINDS) and ex.predicts_sentences(frame, len(tokenizer))
    assert np.isfinite(frame[["with", "unrelated"]].to_numpy()).all()


def _ablation(off, delta_found, hits_found):
    layout = en.HeadLayout(2, 4, 8)
    logits = torch.ones(2, 4)
    for layer, head in off:
        logits[layer, head] = -1.0
    result = en.SearchResult(logits, off, np.zeros(3), np.zeros(3, dtype=int))
    full = np.array([1.0, 1.2, 0.8, 1.0])
    return ex.Ablation(layout, result, result, full, delta_found, full * 0.9, np.stack([full * 0.9, full * 0.8, full]),
                       gain_full=full / 2, gain_found=delta_found - full / 2, gain_null=full * 0.4,
                       hits_full=np.ones(10), hits_found=hits_found, hits_null=np.r_[np.ones(5), np.zeros(5)],
                       hits_random=np.stack([np.ones(10), np.r_[np.ones(8), 0, 0], np.r_[np.ones(7), 0, 0, 0]]),
                       random_sets=[])  # fmt: skip


def test_ablation_estimates_decide_what_is_testable():
    none = ex.ablation_estimates(_ablation([], np.array([1.0, 1.2, 0.8, 1.0]), np.ones(10)), seed=0)
    assert none.untestable == "the search turned no head off"
    assert ex.halving_rule(none)["testable"] is False and not ex.fraction_rule(none)["holds"]  # 0 heads: not 2–4%
    assert _ablation([], np.ones(4), np.ones(10)).compared_size == 1  # 3% of 8 heads, at least one
    skipped = ex.ablation_estimates(None, seed=0, untestable="no sentence entrainment")
    assert all(rule(skipped)["ours"] == "no sentence entrainment" for rule in (ex.fraction_rule, ex.accuracy_rule))
    with pytest.raises(ParameterError, match="untestable"):
        ex.ablation_estimates(None, seed=0)
    halved = ex.ablation_estimates(_ablation([(1, 2)], np.array([0.5, 0.6, 0.4, 0.5]), np.r_[np.ones(9), 0]), seed=0)
    assert not halved.untestable and halved.found.value == pytest.approx(0.5)
    assert halved.random_median == pytest.approx(0.1) and halved.random_p95 < 0.5
    assert halved.accuracy_drop.value == pytest.approx(0.1) and halved.fraction == pytest.approx(1 / 8)
    assert halved.null.value == pytest.approx(0.1)  # the null objective's heads remove what their Δ says
    assert halved.gain_removed.value == pytest.approx(1.0)  # Δ halved, all of it the gain: the gain is gone
    assert "of the gain over the unrelated sentence: 100%" in ex.halving_rule(halved)["ours"]
    no_gain = _ablation([(1, 2)], np.array([0.5, 0.6, 0.4, 0.5]), np.ones(10))
    no_gain.gain_full = np.array([0.1, -0.1, 0.1, -0.1])
    assert ex.ablation_estimates(no_gain, seed=0).gain_removed is None  # no gain: no ratio of noise
    halving = ex.halving_rule(halved)
    assert halving["holds"].holds and not halving["control"].holds.holds  # found halves Δ, the null heads do not
    specific = ex.specificity_rule(halved)
    assert specific["holds"] == (halved.found.low > halved.random_p95) and not specific["control"].holds
    accuracy = ex.accuracy_rule(halved)
    assert not accuracy["holds"].holds  # a 10-point drop
    assert not accuracy["control"].holds.holds  # the null heads drop 50 points
    assert "median 0.200, 33% of them drop less" in accuracy["ours"]  # random drops 0, 0.2, 0.3 against 0.1
    unasked = _ablation([(1, 2)], np.array([0.5, 0.6, 0.4, 0.5]), np.zeros(0))
    unasked.hits_full, unasked.hits_null, unasked.hits_random = np.zeros(0), np.zeros(0), np.zeros((3, 0))
    row = ex.accuracy_rule(ex.ablation_estimates(unasked, seed=0))  # no question the tokenizer can spell
    assert row["testable"] is False and "unknown token" in row["ours"]
    assert not ex.beats_random(Estimate(0.6, 0.2, 0.9), 0.5)  # the point estimate alone does not count


def test_accuracy_questions_are_the_toy_facts_for_zoo_models_and_capitals_otherwise(world):
    tokenizer = zoo.load("fact-llama-h64")[1]
    zoo_prompts, zoo_answers = ex.accuracy_questions("fact-llama-h64", world, 5, tokenizer)
    assert (zoo_prompts, zoo_answers) == tuple(part[:5] for part in ex.answer_prompts(world))
    # the zoo's toy-world tokenizer spells no capital but as its unknown token: no question to score
    assert ex.accuracy_questions("Qwen/Qwen2.5-0.5B", world, 100, tokenizer) == ([], [])
    words = _word_tokenizer()
    prompts, answers = ex.accuracy_questions("Qwen/Qwen2.5-0.5B", world, 100, words)
    assert len(prompts) == len(ex.CAPITALS) and prompts[0] == "The capital of France is" and answers[0] == "Paris"
    assert ex.accuracy_questions("/tmp/some-folder", world, 0, words) == ([], [])


def _word_tokenizer():
    """A word-level tokenizer that knows every word of the capital questions (and nothing else)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for c, a in ex.CAPITALS for w in f"The capital of {c} is {a}".split()})
    core = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(["[UNK]", *words])}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]")


def test_answer_token_is_the_answers_first_piece_after_the_prompt(world):
    tokenizer = zoo.load("fact-llama-h64")[1]
    for prompt, answer in zip(*(part[:50] for part in ex.answer_prompts(world)), strict=True):
        # on the zoo's tokenizer, the same token as the answer spelt alone after a space
        assert (
            ex.answer_token(tokenizer, prompt, answer)
            == tokenizer(" " + answer, add_special_tokens=False)["input_ids"][0]
        )
    assert ex.answer_token(tokenizer, "The capital of France is", "Paris") is None  # only its unknown token
    words = _word_tokenizer()
    assert words.convert_ids_to_tokens(ex.answer_token(words, "The capital of France is", "Paris")) == "Paris"


def test_head_band_is_two_to_four_percent_widened_by_half_a_head():
    middle, half = ex.head_band(64)
    assert (middle - half, middle + half) == pytest.approx((0.0121875, 0.0478125))
    assert (
        all(middle - half <= k / 64 <= middle + half for k in (1, 2, 3))
        and not middle - half <= 4 / 64 <= middle + half
    )
    middle, half = ex.head_band(8)
    assert middle - half > 0  # zero heads are never "2–4%", however few heads the model has
    middle, half = ex.head_band(1024)
    assert (round((middle - half) * 1024), round((middle + half) * 1024)) == (20, 41)  # Llama-3.1-8B: 20 to 41 heads


def test_search_minibatches_are_even():
    sizes = [len(part) for part in en.minibatches(98, 64)]
    assert sizes == [49, 49] and [len(p) for p in en.minibatches(98, 128)] == [98]
    assert np.concatenate(en.minibatches(10, 3)).tolist() == list(range(10))  # every item once, in order
    assert [len(p) for p in en.minibatches(10, 3)] == [3, 3, 2, 2]


def test_needle_items_and_the_least_predictable_token(world):
    items = ex.needle_items(world, 6, seed=0)
    assert len({it.group for it in items}) == 6 and all(it.kind == "needle" for it in items)
    for it in items:
        assert it.sentence in it.with_context and it.sentence not in it.without_context
        assert it.unrelated_context.count("the secret") == 1 and it.sentence not in it.unrelated_context
    model, tokenizer = zoo.load("needle-llama-gqa")
    frame = ex.item_deltas(model, tokenizer, items)
    assert frame["with_surprising"].mean() > 1.0  # a retrieval model copies what it has read
    assert frame["with_surprising"].mean() > frame["with"].mean()  # the gain sits on the surprising token
    scores = ex.induction_scores(model, tokenizer, world, seed=0, n_sequences=8)
    assert scores["key and value words"].low > 3.0  # induction heads: a repeated random sequence is copied
    with pytest.raises(ParameterError, match="length"):
        ex.induction_score(model, tokenizer, ["a", "b"], n_sequences=2, length=3, seed=0)


def test_induction_score_is_near_zero_for_a_model_without_induction_heads(llama, world):
    model, tokenizer = llama  # a fact model: trained on facts, with few repeated sentences
    score = ex.induction_scores(model, tokenizer, world, seed=0, n_sequences=8)["key and value words"]
    assert abs(score.value) < 0.5


def test_the_copying_fact_recipe_starts_with_repeated_sequences(world):
    """The unshipped fact-copy-llama-h64 spec: repeated sequences (loss on the copy) before the usual fact mix."""
    from dataclasses import replace

    from llmtheory.seeding import make_rng
    from llmtheory.zoo.train import training_texts

    assert zoo.SPECS["fact-copy-llama-h64"].induction_steps > 0 and not zoo.SPECS["fact-copy-llama-h64"].shipped
    spec = replace(zoo.SPECS["micro-facts"], induction_steps=2)
    rng = make_rng(0, "test")
    first, after = training_texts(spec, world, rng, 1), training_texts(spec, world, rng, 2)
    assert all(any(tw.needle_training_targets(world, text)) for text in first)  # a second copy to predict
    pool = set(world.haystack_keys + world.haystack_values)
    assert all(set(text.split()) <= pool for text in first) and not any(set(t.split()) <= pool for t in after)
