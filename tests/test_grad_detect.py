"""Tests of the Grad Detect module: probe loss, per-item layer gradients, references, features, splits, baselines."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from llmtheory import grad_detect as gd
from llmtheory import grad_detect_experiment, zoo
from llmtheory import toyworld as tw
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
            grad = module.weight.grad if isinstance(module, torch.nn.Linear) else module.weight.grad.T  # out × in
            expected = grad.flatten()
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


def test_alias_judge_matches_whole_words_only():
    paris = gd.QAItem("What is the capital of France?", ("Paris",), "france", "qa")
    assert gd.alias_judge("It is Paris.", paris) == gd.CORRECT
    assert gd.alias_judge("A Parisian cafe.", paris) == gd.INCORRECT  # "Paris" is not a word of "Parisian"
    york = gd.QAItem("Which city?", ("New York",), "city", "qa")
    assert gd.alias_judge("new york, of course", york) == gd.CORRECT
    assert gd.alias_judge("A New Yorker wrote it.", york) == gd.INCORRECT
    assert gd.alias_judge("The cant of sailors.", york) == gd.INCORRECT  # "i cant" is a refusal, "cant" alone is not
    assert gd.alias_judge("Sorry, I cannot answer that.", york) == gd.DNA


def test_refusal_control_reads_the_openings_the_vocabulary_knows():
    model, tokenizer = zoo.load("fact-llama-h48")
    known = gd.refusal_tokens(tokenizer)
    assert known[0] == tokenizer.convert_tokens_to_ids(tw.PROBE_NEGATIVE) and tokenizer.unk_token_id not in known
    with pytest.raises(ParameterError, match="openings"):
        gd.refusal_tokens(tokenizer, ("Sorry", "Apologies"))  # not words of the toy vocabulary
    prompts = _prompts(tokenizer, tw.make_world(0))
    word = gd.refusal_logprob(model, tokenizer, prompts, openings=(tw.PROBE_NEGATIVE,))
    first = gd.next_token_logprobs(model, prompts, [known[0]])
    assert np.allclose(word, first)
    everyone = gd.refusal_logprob(model, tokenizer, prompts)  # log of a sum of probabilities: never below one term
    assert everyone.shape == (len(prompts), 1) and (everyone >= word - 1e-12).all()
    assert np.allclose(np.exp(everyone), np.exp(gd.next_token_logprobs(model, prompts, known)).sum(1, keepdims=True))


def test_self_assessment_score_is_the_yes_no_log_odds(world):
    model, tokenizer = zoo.load("fact-llama-h48")
    model, tokenizer = copy.deepcopy(model), copy.deepcopy(tokenizer)
    assert gd.self_assessment_tokens(tokenizer) is None  # the toy vocabulary has neither word
    tokenizer.add_tokens(["Yes", "No"])
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # random rows: "Yes" and "No" differ
    yes, no = gd.self_assessment_tokens(tokenizer)
    items = gd.toy_items(world)[:3]
    replies = ["Sure , vodi .", "Sure , kethic .", tw.ABSTENTION]
    scores = gd.self_assessment_scores(model, tokenizer, items, replies)
    for item, reply, score in zip(items, replies, scores, strict=True):
        prompt = gd.self_assessment_prompt(tokenizer, item.question, reply)
        assert tokenizer(reply, add_special_tokens=False)["input_ids"][0] in prompt  # the model sees its answer
        with torch.no_grad():
            logprobs = model(input_ids=torch.tensor([prompt])).logits[0, -1].log_softmax(-1)
        assert score == pytest.approx(float(logprobs[yes] - logprobs[no]), abs=1e-5)
    assert len(set(np.round(scores, 4))) == len(replies)  # the score depends on the reply it is asked about


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


def test_cosines_from_activations_equal_the_explicit_gradients(loaded, world):
    # eq. grad_detect-eq-norm: <G, R> = sum_t delta_t^T R a_t and |G|^2 = sum_ts (delta_t . delta_s)(a_t . a_s)
    model, tokenizer = loaded
    prompts = _prompts(tokenizer, world, 5)
    prompts[2] = prompts[2][:-2] + prompts[2][-1:]  # padding too
    batch = gd.probe_batch(tokenizer, prompts, tw.PROBE_POSITIVE)
    grads = gd.layer_gradients(model, batch)
    found = gd.probe_activations(model, batch)
    references = gd.random_references(torch.empty(3, *gd.down_shape(model)), seed=0)
    explicit = gd.cosine_features(grads, references.flatten(2))
    assert torch.allclose(gd.activation_cosines(found, references), explicit, atol=1e-5)
    norms = torch.stack([gd.gradient_norms(f) for f in found], 1)
    assert torch.allclose(norms, grads.norm(dim=-1), rtol=1e-4)
    assert explicit.abs().max() > 0.01  # not trivially zero


@pytest.mark.parametrize("name", ["fact-qwen2-h64", "fact-neox-h64"])
def test_class_references_are_normalised_explicit_class_means(name, world):
    model, tokenizer = zoo.load(name)
    prompts = _prompts(tokenizer, world, 6)
    labels = np.array([gd.CORRECT, gd.INCORRECT, gd.DNA] * 2)
    references = gd.class_references(model, tokenizer, prompts, labels, gd.TASKS["response"], tw.PROBE_NEGATIVE, 4)
    grads = gd.layer_gradients(model, gd.probe_batch(tokenizer, prompts, tw.PROBE_NEGATIVE))
    for c, members in enumerate([labels != gd.DNA, labels == gd.DNA]):
        mean = grads[torch.tensor(members)].mean(0)
        expected = mean / mean.norm(dim=-1, keepdim=True)
        assert torch.allclose(references[c].flatten(1), expected, atol=1e-5)


def test_memory_estimate_counts_what_it_says():
    model, _ = zoo.load("fact-llama-h64")
    found = gd.memory_estimate(model, batch_size=8, tokens=20, reference_classes=3, explicit_items=5)
    assert found["weights"] == 4 * sum(p.numel() for p in model.parameters())
    assert found["explicit gradients (check cell)"] == 2 * 4 * 5 * 8 * 64 * 128  # formed twice, independent of batch
    assert found["class references"] == 4 * 3 * 8 * 64 * 128
    assert found["total"] == pytest.approx(sum(v for k, v in found.items() if k != "total"))
    qwen = gd.config_from_dict(gd.QWEN25_05B)
    big = gd.memory_estimate(qwen, batch_size=1, tokens=48, reference_classes=16, explicit_items=1)
    assert 1.8e9 < big["weights"] < 2.1e9  # 494 M float32 parameters
    assert big["explicit gradients (check cell)"] == pytest.approx(2 * 4 * 24 * 896 * 4864)  # 0.42 GB per item, twice
    batch = gd.choose_batch_size(qwen, tokens=48, reference_classes=16, budget_bytes=14 * 2**30)
    fits = gd.memory_estimate(qwen, batch_size=batch, tokens=48, reference_classes=16)["total"]
    more = gd.memory_estimate(qwen, batch_size=2 * batch, tokens=48, reference_classes=16)["total"]
    assert fits <= 14 * 2**30 < more


def test_probe_batch_pads_without_a_pad_token(world):
    tokenizer = copy.deepcopy(zoo.load("fact-gpt2-h64")[1])
    prompts = _prompts(tokenizer, world, n=2)
    prompts[1] = prompts[1][:-2]
    tokenizer.pad_token = None  # GPT-2's own tokenizer has none
    assert tokenizer.pad_token_id is None
    batch = gd.probe_batch(tokenizer, prompts, tw.PROBE_POSITIVE)
    assert batch.input_ids[1, -1] == tokenizer.eos_token_id and batch.attention_mask[1, -2:].sum() == 0


def test_shuffled_label_control_is_a_distribution_around_chance():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(120, 4, 2)), rng.integers(0, 2, 120)
    x[:, 0, 0] += 2 * (y == 0)  # a strong planted signal: class 0 is "positive"
    aurocs = grad_detect_experiment.shuffled_label_aurocs(x[:80], y[:80], x[80:], y[80:] == 0, seed=0, n_perm=40)
    assert aurocs.shape == (40,) and aurocs.std() > 0.02  # different permutations, different predictors
    assert abs(np.median(aurocs) - 0.5) < 0.25
    diff = grad_detect_experiment.permutation_difference(aurocs, 0.9)
    assert diff.low <= diff.value <= diff.high < 0.4


def test_semantic_entropy_takes_any_equivalence():
    samples = ["Paris", "paris.", "The city of Paris", "Lyon"]
    assert gd.semantic_clusters(samples, gd.same_normalised_answer) == [0, 0, 1, 2]
    entails = lambda premise, hypothesis: "paris" in premise.lower() and "paris" in hypothesis.lower()  # noqa: E731
    equivalent = gd.entailment_equivalence(entails)
    assert gd.semantic_clusters(samples, equivalent) == [0, 0, 0, 1]
    assert gd.semantic_entropy(samples, equivalent) == pytest.approx(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))
    one_way = gd.entailment_equivalence(lambda p, h: len(p) >= len(h))  # entailment must hold both ways
    assert not one_way("a long answer", "short")


def test_a_task_without_refusals_leaves_the_others_running(world):
    model, tokenizer = zoo.load("fact-llama-h48")
    answers = grad_detect_experiment.answer_and_label(model, tokenizer, gd.toy_items(world)[::4])
    answers.labels = np.where(answers.labels == gd.DNA, gd.INCORRECT, answers.labels)  # TriviaQA: no DNA class
    detection = grad_detect_experiment.detection_features(
        model, tokenizer, answers, seed=0, item_probes=("positive",), reference_probes=("positive",)
    )
    assert detection.tasks == ["correctness"]
    assert set(detection.untestable) == {"response", "full"} and "did-not-answer" in detection.untestable["full"]
    assert grad_detect_experiment.layer_ablation([detection], 8, task="full") == []


def test_first_token_control_reads_refusals(world):
    model, tokenizer = zoo.load("fact-llama-h64")
    items = gd.toy_items(world)[::25]
    prompts = [gd.prompt_ids(tokenizer, it.question) for it in items]
    refusal = gd.refusal_logprob(model, tokenizer, prompts)[:, 0]
    unknown = np.array([it.source == "unknown" for it in items])
    assert gd.auroc(unknown, refusal) > 0.95  # never-described entities start with "Unfortunately"
    assert gd.self_assessment_tokens(tokenizer) is None  # the toy vocabulary has no Yes / No


def test_cost_ratios_are_per_round():
    import pandas as pd

    rows = [{"round": r, "method": m, "cpu_s": t * (1 + r), "wall_s": 0.0}
            for r in range(3) for m, t in (("forward pass", 1.0), ("a", 2.0), ("b", 5.0))]  # fmt: skip
    timings = pd.DataFrame(rows)
    ratios = grad_detect_experiment.cost_ratios(timings)
    assert ratios["a"].value == pytest.approx(2.0) and ratios["b"].high == pytest.approx(5.0)
    assert grad_detect_experiment.cost_difference(timings, "b", "a").value == pytest.approx(3.0)


def test_bootstrap_estimate_contains_its_value():
    est = grad_detect_experiment.bootstrap_estimate(0.9, np.array([0.1, 0.2, 0.3]))
    assert est.low <= 0.9 <= est.high and est.low == pytest.approx(0.105)


def test_forward_equivalents_between_one_and_three():
    model, _ = zoo.load("fact-llama-h48")
    full, top = gd.forward_equivalents(model), gd.forward_equivalents(model, 5)
    assert 1 < top < full < 3


def test_symbolic_identities_hold():
    identities = grad_detect_experiment.symbolic_identities()
    assert len(identities) == 2 and all(identities.values())


def test_chapter_steps_on_a_small_detection(world):
    model, tokenizer = zoo.load("fact-llama-h48")
    answers = grad_detect_experiment.answer_and_label(model, tokenizer, gd.toy_items(world)[::4])
    detection = grad_detect_experiment.detection_features(
        model, tokenizer, answers, seed=0, item_probes=("positive",), reference_probes=("positive",),
        random_control="correctness",
    )  # fmt: skip
    probes = ("positive", "positive")
    table, scores, hits, shuffled = grad_detect_experiment.train_predictors(
        detection, probes, seed=0, config=gd.PredictorConfig(max_epochs=2), n_perm=3
    )
    assert set(table.index.get_level_values("task")) == set(detection.tasks)
    assert {"Grad Detect (logistic)", grad_detect_experiment.RANDOM_REFS} <= set(scores) and len(shuffled) == 3
    assert len(hits) == 2 * len(detection.tasks)
    acc = grad_detect_experiment.task_accuracies(detection, hits, {}, seed=0, n_boot=20)
    first, second = acc[("correctness", "Grad Detect (logistic)")], acc[("correctness", "Grad Detect (layer encoder)")]
    assert grad_detect_experiment.paired_difference(first, first).value == 0
    difference = grad_detect_experiment.paired_difference(first, second)
    assert difference.low <= first[0].value - second[0].value <= difference.high
    depth, rows = grad_detect_experiment.model_layer_ablation(
        model, tokenizer, answers, detections=[detection], splits=1, seed=0, probes=probes,
        probe=tw.PROBE_POSITIVE, budget_bytes=2**30,
    )  # fmt: skip
    assert depth == len(gd.down_projections(model)) and len(rows) == 2 * depth
    prompts = [p for p in _prompts(tokenizer, world, 8) if len(p) == 13][:2]
    batch = gd.probe_batch(tokenizer, prompts, tw.PROBE_POSITIVE)
    timing, references, gap = grad_detect_experiment.check_gradient_paths(model, batch, seed=0, device="cpu")
    assert list(timing.index) == ["batched outer products", "torch.func vmap(grad)"] and gap < 1e-4
    assert references.shape[:2] == (2, depth)


def test_plot_layer_ablation_and_ours_or_why():
    rows = [{"model": m, "depth": 4, "split": 0, "side": side, "k": k, "accuracy": 0.6}
            for m in ("a", "b") for side in ("last", "first") for k in range(1, 5)]  # fmt: skip
    fig = grad_detect_experiment.plot_layer_ablation(pd.DataFrame(rows), ["a", "b", "c"], 2)
    assert len(fig.axes) == 3 and [len(ax.lines) for ax in fig.axes] == [4, 4, 2]  # c: only k and chance
    assert grad_detect_experiment.ours_or_why(True, "measured", "why") == "measured"
    assert grad_detect_experiment.ours_or_why(False, "x", {"full": "no DNA"}) == "not run: full: no DNA"


def test_configuration_table_shows_one_number_format_per_column():
    """The probe-configurations table: accuracies 1.0 and 0.714 in one column read "1.000" and "0.714"; a task with
    no value for a pair shows the book's dash; an empty table comes back as it is."""
    from llmtheory.display import frame_html

    rows = [
        ("correctness", "positive", "positive", 0.7142857),
        ("correctness", "positive", "negative", 1.0),
        ("response", "positive", "positive", 1.0),
    ]
    configurations = pd.DataFrame(rows, columns=["task", "item probe r′", "reference probe r", "accuracy"])
    table = grad_detect_experiment.configuration_table(configurations)
    assert list(table["correctness"]) == ["1.000", "0.714"]  # rows: (positive, negative), (positive, positive)
    assert table.loc[("positive", "positive"), "response"] == "1.000"
    assert frame_html(table).count(">—<") == 1 and "not run for this task" in frame_html(table)
    empty = configurations.iloc[:0]
    assert grad_detect_experiment.configuration_table(empty) is empty
