"""Tests of the Grad Detect module: probe loss, per-item layer gradients, references, features, splits, baselines."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from llmtheory import grad_detect as gd
from llmtheory import toyworld as tw
from llmtheory import zoo
from llmtheory.params import ParameterError
from llmtheory.zoo.evaluate import greedy_replies

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world():
    return tw.make_world(0)


@pytest.fixture(scope="module", params=["fact-llama-h48", "fact-gpt2-h64"])
def loaded(request):
    return zoo.load(request.param)


def _prompts(tokenizer, world, n=6):
    items = gd.toy_items(world)[:: len(world.facts) // n][:n]
    return [gd.prompt_ids(tokenizer, it.question) for it in items]


def test_prompt_matches_toy_chat_format(world):
    _, tokenizer = zoo.load("fact-llama-h48")
    fact = world.facts[3]
    expected = tokenizer(tw.fact_prompt(fact, instruction=True))["input_ids"]
    assert gd.prompt_ids(tokenizer, fact.question()) == expected


def test_probe_loss_counts_only_probe_tokens():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 11, requires_grad=True)
    ids = torch.randint(11, (2, 6))
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[0, 4:] = True  # a two-token probe at positions 4 and 5
    mask[1, 3] = True  # a one-token probe at position 3
    loss = gd.probe_loss(logits, ids, mask)
    logp = logits.log_softmax(-1)
    expected0 = -(logp[0, 3, ids[0, 4]] + logp[0, 4, ids[0, 5]]) / 2
    assert torch.allclose(loss, torch.stack([expected0, -logp[1, 2, ids[1, 3]]]))
    loss.sum().backward()
    used = torch.zeros(2, 6, dtype=torch.bool)
    used[0, 3:5], used[1, 2] = True, True
    assert logits.grad[~used].abs().max() == 0  # no other position moves the loss
    assert logits.grad[used].abs().amin(-1).max() > 0


def test_feature_shapes_per_layer(loaded, world):
    model, tokenizer = loaded
    prompts = _prompts(tokenizer, world)
    grads = gd.layer_gradients(model, gd.probe_batch(tokenizer, prompts, tw.PROBE_POSITIVE))
    modules = gd.down_projections(model)
    assert grads.shape == (len(prompts), len(modules), modules[0].weight.numel())
    references = gd.cosine_features(grads, grads[:3])  # any (C, L, P) tensor serves as references
    assert references.shape == (len(prompts), len(modules), 3)
    top = gd.layer_gradients(model, gd.probe_batch(tokenizer, prompts, tw.PROBE_POSITIVE), [5, 6, 7])
    assert torch.allclose(top, grads[:, 5:], atol=1e-6)


def test_batched_gradients_equal_autograd_item_by_item(loaded, world):
    model, tokenizer = loaded
    prompts = _prompts(tokenizer, world, 4)
    prompts[1] = prompts[1][:-3] + prompts[1][-1:]  # unequal lengths: right padding must not change anything
    grads = gd.layer_gradients(model, gd.probe_batch(tokenizer, prompts, tw.PROBE_NEGATIVE))
    modules = gd.down_projections(model)
    for b, prompt in enumerate(prompts):
        model.zero_grad()
        batch = gd.probe_batch(tokenizer, [prompt], tw.PROBE_NEGATIVE)
        gd.probe_loss(model(input_ids=batch.input_ids).logits, batch.input_ids, batch.probe_mask).sum().backward()
        for layer, module in enumerate(modules):
            expected = module.weight.grad.flatten()
            assert torch.allclose(grads[b, layer], expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))
    model.zero_grad()


def test_vmap_gradients_agree_with_batched(world):
    model, tokenizer = zoo.load("fact-llama-h48")
    prompts = [p for p in _prompts(tokenizer, world, 8) if len(p) == 13][:3]
    batch = gd.probe_batch(tokenizer, prompts, tw.PROBE_POSITIVE)
    assert torch.allclose(gd.layer_gradients_vmap(model, batch), gd.layer_gradients(model, batch), atol=1e-6)


def test_reference_cosine_with_itself_is_one():
    grads, labels = gd.planted_gradients(40, 5, 30, signal=0.5, seed=1)
    means = torch.stack([grads[labels == c].mean(0) for c in (0, 1)])
    references = means / means.norm(dim=-1, keepdim=True)
    features = gd.cosine_features(means, references)
    assert torch.allclose(features[:, :, 0][0], torch.ones(5)) and torch.allclose(features[1, :, 1], torch.ones(5))
    assert features.abs().max() <= 1 + 1e-6


def test_detection_beats_chance_on_a_planted_signal_and_not_without_one():
    assert gd.planted_detection_auroc(0.3, seed=2) > 0.9
    assert abs(gd.planted_detection_auroc(0.0, seed=2) - 0.5) < 0.15


def test_qa_items_and_hub_style_labels():
    items = gd.qa_items(["Who wrote Hamlet?"], [["William Shakespeare", "Shakespeare"]])
    assert items[0].answers == ("William Shakespeare", "Shakespeare") and items[0].group == "Who wrote Hamlet?"
    replies = ["It was Shakespeare.", "Christopher Marlowe", "Unfortunately, I cannot say."]
    assert list(gd.label_replies(items * 3, replies, gd.alias_judge)) == [gd.CORRECT, gd.INCORRECT, gd.DNA]


def test_auroc_agrees_with_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(2, size=200).astype(bool)
    s = rng.normal(size=200) + y + np.round(rng.normal(size=200))  # with ties
    assert gd.auroc(y, s) == pytest.approx(roc_auc_score(y, s))


def test_split_is_balanced_disjoint_and_grouped():
    rng = np.random.default_rng(0)
    groups = [f"e{i // 3}" for i in range(300)]
    labels = rng.choice(["a", "b", ""], size=300, p=[0.5, 0.3, 0.2])
    split = gd.split_items(groups, labels, seed=0)
    for part in (split.reference, split.test, np.concatenate([split.reference, split.training])):
        assert (labels[part] == "a").sum() == (labels[part] == "b").sum() and "" not in labels[part]
    dev = np.concatenate([split.reference, split.training])
    assert not set(dev) & set(split.test) and not set(split.reference) & set(split.training)
    assert not {groups[i] for i in dev} & {groups[i] for i in split.test}
    assert abs(len(split.reference) - len(split.training)) <= 2


def test_judges_and_sampling_scores():
    item = tw.Fact("hicokou", "capital", "vodi", 1, "frequent")
    qa = gd.QAItem(item.question(), ("vodi",), item.entity, "frequent")
    assert gd.toy_judge("Sure , vodi .", qa) == gd.CORRECT
    assert gd.toy_judge("Sure , kethic .", qa) == gd.INCORRECT
    assert gd.toy_judge(tw.ABSTENTION, qa) == gd.DNA
    assert gd.alias_judge("The answer is Vodi.", qa) == gd.CORRECT
    assert gd.alias_judge("I don't know.", qa) == gd.DNA
    assert gd.semantic_entropy(["Sure , a .", "sure, a"]) == 0
    assert gd.semantic_entropy(["x", "y", "x", "y"]) == pytest.approx(np.log(2))
    assert gd.self_consistency("Sure , a .", ["Sure , a .", "Sure , b ."]) == 0.5


def test_greedy_answers_match_the_zoo_decoder(world):
    model, tokenizer = zoo.load("fact-neox-h64")
    items = gd.toy_items(world)[::50]
    prompts = [gd.prompt_ids(tokenizer, it.question) for it in items]
    greedy = gd.greedy_answers(model, tokenizer, prompts, max_new_tokens=6)
    texts = [tw.fact_prompt(f, instruction=True) for f in (world.facts + world.unknown_queries)[::50]]
    assert greedy.replies == greedy_replies(model, tokenizer, texts)
    assert np.all((greedy.max_softmax > 0) & (greedy.max_softmax <= 1)) and np.all(greedy.perplexity >= 1)


def test_focal_loss_with_gamma_zero_is_cross_entropy():
    logits, targets = torch.randn(7, 3), torch.randint(3, (7,))
    assert torch.allclose(gd.focal_loss(logits, targets, 0.0), torch.nn.functional.cross_entropy(logits, targets))
    assert gd.focal_loss(logits, targets, 2.0) < gd.focal_loss(logits, targets, 0.0)


def test_unsupported_model_has_a_clear_error():
    with pytest.raises(ParameterError, match="down-projections"):
        gd.down_projections(torch.nn.Linear(2, 2))


def test_forward_equivalents_between_one_and_three():
    model, _ = zoo.load("fact-llama-h48")
    full, top = gd.forward_equivalents(model), gd.forward_equivalents(model, 5)
    assert 1 < top < full < 3
