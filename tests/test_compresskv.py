"""CompressKV and its baselines on a small random GQA Llama: exactness of the cache surgery, budgets, windows."""

import numpy as np
import pandas as pd
import pytest
import torch

from llmtheory import compresskv as ckv
from llmtheory import compresskv_experiment as experiment

LENGTH = 120  # context tokens (the prompt has one more)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=512,
        attn_implementation="eager",
    )
    return ckv.use_ragged_attention(LlamaForCausalLM(config).eval())


@pytest.fixture(scope="module")
def prompt():
    return [int(t) for t in np.random.default_rng(1).integers(0, 64, LENGTH + 1)]


@pytest.fixture(scope="module")
def state(model, prompt):
    return ckv.prefill(model, prompt)


@pytest.fixture(scope="module")
def shape(model):
    return ckv.geometry(model)


def plan_for(method, state, shape, average):
    return ckv.select_positions(
        method,
        state,
        average,
        shape,
        semantic_heads=[[0, 3]] * shape.layers,
        random_heads=[[1, 5]] * shape.layers,
        layer_weights=[0.5, 0.2, 0.3][: shape.layers],
    )


def next_logits(model, cache, state):
    return ckv._step(model, cache, state.next_token, state.length)


def logits_seeing_only(model, state, shape, kept):
    """The next token's logits from the full cache, where in layer ``l`` KV head ``g`` sees only the context
    positions ``kept(l)[g]`` (and the token being fed): the reference a compressed cache must equal."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, eager_mask
    from transformers.models.llama.modeling_llama import eager_attention_forward

    def masked_attention(module, query, key, value, attention_mask, **kwargs):
        extra = torch.full((shape.kv_heads, key.shape[-2]), float("-inf"))
        extra[:, LENGTH:] = 0
        for head, positions in enumerate(kept(module.layer_idx)):
            extra[head, positions] = 0
        extra = extra.repeat_interleave(shape.group_size, dim=0)[None, :, None, :]
        return eager_attention_forward(module, query, key, value, extra, **kwargs)

    AttentionInterface.register("test_masked", masked_attention)
    if "test_masked" not in ALL_MASK_ATTENTION_FUNCTIONS:
        AttentionMaskInterface.register("test_masked", eager_mask)
    model.set_attn_implementation("test_masked")
    try:
        return next_logits(model, ckv.compress_cache(state.cache, ckv._all_kept(state)), state)
    finally:
        ckv.use_ragged_attention(model)


def test_geometry_reads_the_config(shape):
    assert (shape.layers, shape.heads, shape.kv_heads, shape.head_dim, shape.group_size) == (3, 6, 2, 8, 3)


def test_prefill_keeps_window_attention_that_sums_to_one(state, shape):
    assert state.length == LENGTH
    assert state.window_attention.shape == (shape.layers, shape.heads, ckv.WINDOW, LENGTH)
    torch.testing.assert_close(state.window_attention.sum(-1), torch.ones(shape.layers, shape.heads, ckv.WINDOW))
    # each query attends to itself and before: H2O's column sums add up to the number of queries
    torch.testing.assert_close(
        state.accumulated_attention.sum(-1), torch.full((shape.layers, shape.heads), LENGTH * 1.0)
    )


@pytest.mark.parametrize("method", ckv.METHODS)
def test_full_budget_reproduces_the_full_cache_logits_exactly(model, prompt, state, shape, method):
    plan = plan_for(method, state, shape, LENGTH)
    compressed = next_logits(model, ckv.compress_cache(state.cache, plan.positions), state)
    uncompressed = next_logits(model, ckv.compress_cache(state.cache, ckv._all_kept(state)), state)
    assert torch.equal(compressed, uncompressed)
    reference = model(input_ids=torch.tensor([prompt])).logits[0, -1]
    torch.testing.assert_close(compressed, reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", [m for m in ckv.METHODS if m not in ("full", "adakv")])
@pytest.mark.parametrize("average", [9, 13, 30])
def test_each_method_keeps_exactly_its_budget_and_always_the_window(state, shape, method, average):
    plan = plan_for(method, state, shape, average)
    assert sum(plan.budgets) == average * shape.layers  # layer budgets sum to the total
    window = set(range(LENGTH - ckv.WINDOW, LENGTH))
    for budget, positions in zip(plan.budgets, plan.positions, strict=True):
        assert positions.shape == (shape.kv_heads, budget)  # the same budget in every KV head group
        for row in positions.tolist():
            assert len(set(row)) == budget and 0 <= min(row) and max(row) < LENGTH
            assert window <= set(row)
    cache = ckv.compress_cache(state.cache, plan.positions)
    assert ckv.cache_lengths(cache) == plan.budgets
    full_bytes = ckv.cache_bytes(state.cache)
    assert ckv.cache_bytes(cache) == pytest.approx(full_bytes * plan.kv_fraction(LENGTH))


@pytest.mark.parametrize("average", [9, 13, 30])
def test_adakv_splits_each_layers_budget_over_its_kv_heads(state, shape, average):
    """AdaKV keeps G·B positions per layer in all, the window in every KV head, at least α(B − w) selected ones
    per head (the safeguard), and each head its own best-voted positions."""
    plan = plan_for("adakv", state, shape, average)
    assert plan.budgets == [average] * shape.layers
    for layer, positions in enumerate(plan.positions):
        counts = plan.head_counts(layer)
        assert int(counts.sum()) == shape.kv_heads * average
        votes = ckv.per_kv_head(ckv.snapkv_scores(state.window_attention[layer]), shape.kv_heads)
        selected_counts = ckv.adakv_head_budgets(votes, average - ckv.WINDOW)
        assert (counts - ckv.WINDOW).tolist() == selected_counts  # the allocation, not a uniform split
        for head, count in enumerate(counts.tolist()):
            kept = positions[head, :count].tolist()
            assert count - ckv.WINDOW >= int(ckv.ADAKV_FLOOR * (average - ckv.WINDOW))
            assert len(set(kept)) == count and set(range(LENGTH - ckv.WINDOW, LENGTH)) <= set(kept)
            selected = [p for p in kept if p < LENGTH - ckv.WINDOW]
            best = torch.topk(votes[head], len(selected)).indices.tolist() if selected else []
            assert sorted(selected) == sorted(best)
            assert set(positions[head, count:].tolist()) <= {kept[-1]}  # padding repeats the last position
    assert plan.kept_entries() == shape.layers * shape.kv_heads * average
    assert plan.kv_fraction(LENGTH) == pytest.approx(average / LENGTH)


def test_adakv_gives_more_positions_to_the_head_whose_votes_win():
    """Head 0's votes are larger everywhere: it wins all of the top G·(B − w), so it selects α(B − w) +
    (1 − α)·G(B − w) and head 1 the floor α(B − w); interleaved votes split evenly."""
    votes = torch.stack([torch.linspace(2, 1, 50), torch.linspace(0.5, 0, 50)])
    assert ckv.adakv_head_budgets(votes, 10) == [18, 2]
    assert ckv.adakv_head_budgets(torch.arange(100.0).reshape(50, 2).T, 10) == [10, 10]


def test_a_pruned_cache_equals_masking_the_dropped_keys(model, state, shape):
    """Decoding from a pruned cache at the original position = full cache with the dropped keys masked out
    (StreamingLLM keeps the same positions everywhere, so one 2D mask expresses it)."""
    plan = plan_for("streamingllm", state, shape, 20)
    pruned = next_logits(model, ckv.compress_cache(state.cache, plan.positions), state)
    mask = torch.zeros(LENGTH + 1, dtype=torch.long)
    mask[plan.positions[0][0]] = 1
    mask[LENGTH] = 1
    masked = model(
        input_ids=torch.tensor([[state.next_token]]),
        past_key_values=ckv.compress_cache(state.cache, ckv._all_kept(state)),
        attention_mask=mask[None],
        position_ids=torch.tensor([[LENGTH]]),
    ).logits[0, -1]
    torch.testing.assert_close(pruned, masked, atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", ["pyramidkv", "compresskv", "h2o"])
def test_ragged_per_layer_per_head_caches_equal_masking_each_layer_and_head(model, state, shape, method):
    """Layers of different lengths and KV heads keeping different positions: decoding from the pruned cache equals
    decoding from the full cache with, in each layer and KV head, the dropped keys masked out."""
    plan = plan_for(method, state, shape, 15)
    pruned = next_logits(model, ckv.compress_cache(state.cache, plan.positions), state)
    masked = logits_seeing_only(model, state, shape, lambda layer: plan.positions[layer])
    assert len(set(plan.budgets)) > 1 or method == "h2o"
    torch.testing.assert_close(pruned, masked, atol=1e-5, rtol=0)


def test_streaming_keeps_sinks_and_the_most_recent_tokens():
    kept = ckv.streaming_positions(20, 100, groups=2)
    assert kept.tolist()[0] == [0, 1, 2, 3] + list(range(84, 100))
    assert ckv.streaming_positions(10, 100, groups=1).tolist()[0] == [0, 1] + list(range(92, 100))


def test_snapkv_scores_sum_the_window_votes_then_average_pool():
    attention = torch.zeros(1, 3, 12)  # one head, window 3, length 12: prefix of 9
    attention[0, :, 4] = 1.0
    scores = ckv.snapkv_scores(attention, kernel=5)
    expected = torch.zeros(9)
    expected[2:7] = 3.0 / 5
    torch.testing.assert_close(scores[0], expected)


def test_top_positions_takes_the_best_prefix_scores_plus_the_window():
    scores = torch.tensor([[0.1, 0.9, 0.3, 0.8, 0.0, 0.2]])
    assert ckv.top_positions(scores, budget=4, length=8, window=2).tolist() == [[1, 3, 6, 7]]


def test_pyramid_budgets_decrease_with_depth_and_match_kvcache_factory():
    budgets = ckv.pyramid_budgets(48, layers=5, length=1000, window=8, beta=20)
    assert sum(budgets) == 5 * 48 and budgets == sorted(budgets, reverse=True)
    # KVCache-Factory: min = 40/20 = 2, max = 80 - 2 = 78, step 19: selected 78, 59, 40, 21, 2 (+ window 8)
    assert budgets == [86, 67, 48, 29, 10]
    capped = ckv.pyramid_budgets(400, layers=4, length=500)
    assert max(capped) <= 500 and sum(capped) == 1600


def test_error_aware_budgets_follow_the_errors_within_bounds():
    budgets = ckv.error_aware_budgets(40, [0.1, 0.6, 0.2, 0.1], length=1000, minimum=8)
    assert sum(budgets) == 160
    assert budgets[1] == max(budgets) and min(budgets) >= 8 and max(budgets) <= 120
    # B_l = m + round(w_l (L·B − m·L)): 8 + 0.6·128 = 84.8, 8 + 0.2·128 = 33.6, 8 + 0.1·128 = 20.8
    assert budgets == [21, 85, 34, 20]  # 161 after rounding: the least important layer gives one back
    flat = ckv.error_aware_budgets(40, [0.97, 0.01, 0.01, 0.01], length=1000)
    assert flat[0] == 120 and sum(flat) == 160  # clipped at 3·B, the rest redistributed


def test_round_budgets_refuses_an_impossible_total():
    with pytest.raises(ValueError):
        ckv.round_budgets([1.0, 1.0], total=50, floor=1, cap=10, importance=[1, 0])


def test_rouge1_recall_counts_tokens_with_multiplicity():
    assert ckv.rouge1_recall([5, 6, 7], [6, 7]) == 1.0
    assert ckv.rouge1_recall([6], [6, 6]) == 0.5
    assert ckv.rouge1_recall([], [1]) == 0.0


def test_masking_heads_zeroes_exactly_their_output(model, prompt):
    ids = torch.tensor([prompt])
    base = model(input_ids=ids).logits
    with experiment.masked_heads(model, []):
        assert torch.equal(model(input_ids=ids).logits, base)
    shape = ckv.geometry(model)
    with experiment.masked_heads(model, [(1, h) for h in range(shape.heads)]):
        all_masked = model(input_ids=ids).logits
    weight = model.model.layers[1].self_attn.o_proj.weight
    saved = weight.detach().clone()
    with torch.no_grad():
        weight.zero_()
        zeroed = model(input_ids=ids).logits
        weight.copy_(saved)
    torch.testing.assert_close(all_masked, zeroed)
    assert torch.equal(model(input_ids=ids).logits, base)  # hooks removed


def test_head_scores_are_attention_masses(model, prompt, state):
    generated = [prompt[10], prompt[11], 3]
    semantic, traditional = ckv.head_scores_one(model, prompt, state, (10, 14), generated)
    steps_in_needle = sum(t in prompt[10:14] for t in generated)
    assert semantic.shape == traditional.shape == (3, 6)
    assert (semantic >= 0).all() and (semantic <= steps_in_needle + 1e-6).all()
    assert (traditional >= 0).all() and (traditional <= steps_in_needle / 4 + 1e-9).all()


def test_eviction_errors_vanish_for_the_full_cache(model, state, shape):
    plan = plan_for("full", state, shape, LENGTH)
    assert np.allclose(ckv.eviction_errors(model, state, plan, [1, 2, 3]), 0.0, atol=1e-5)
    tight = plan_for("snapkv", state, shape, 9)
    errors = ckv.eviction_errors(model, state, tight, [1, 2, 3])
    assert errors.shape == (shape.layers,) and (errors > 0).all()
    weights = ckv.layer_weights_from_errors(np.stack([errors, 2 * errors]))
    assert weights.sum() == pytest.approx(1.0)


def test_a_layers_eviction_error_does_not_depend_on_the_other_layers(model, state, shape):
    """The official calibration measures each layer in isolation (full-cache inputs): compressing the other
    layers differently, or not at all, leaves layer 1's error unchanged."""
    tight = plan_for("snapkv", state, shape, 9)
    full = ckv._all_kept(state)
    mixed = ckv.Plan(
        "mixed",
        [LENGTH, tight.budgets[1], 30],
        [full[0], tight.positions[1], plan_for("h2o", state, shape, 30).positions[2]],
    )
    only_one = ckv.Plan("one", [LENGTH, tight.budgets[1], LENGTH], [full[0], tight.positions[1], full[2]])
    tokens = [1, 2, 3]
    reference = ckv.eviction_errors(model, state, tight, tokens)
    for plan in (mixed, only_one):
        errors = ckv.eviction_errors(model, state, plan, tokens)
        assert errors[1] == pytest.approx(reference[1], rel=1e-5)
    assert ckv.eviction_errors(model, state, only_one, tokens)[[0, 2]] == pytest.approx([0, 0], abs=1e-5)


def test_the_isolated_error_is_the_compressed_layer_output_from_full_cache_inputs(model, state, shape):
    """Layer 0's error equals the relative change of its attention output (after o_proj) when only its own cache
    is compressed: the inputs of layer 0 are the same either way."""
    tight = plan_for("snapkv", state, shape, 11)
    full = ckv._all_kept(state)
    only_first = [tight.positions[0], *full[1:]]
    captured = []
    hook = model.model.layers[0].self_attn.register_forward_hook(lambda m, a, out: captured.append(out[0][0]))
    try:
        for keep in (full, only_first):
            ckv.greedy_decode(model, ckv.compress_cache(state.cache, keep), [state.next_token], state.length, 1)
    finally:
        hook.remove()
    o_full, o_compressed = captured
    expected = float(((o_compressed - o_full).norm(dim=-1) / (o_full.norm(dim=-1) + 1e-6)).sum())
    assert ckv.eviction_errors(model, state, tight, [state.next_token])[0] == pytest.approx(expected, rel=1e-4)


def test_prefill_keeps_only_window_rows_and_column_sums_equal_to_eager_attention(model, prompt, state, shape):
    out = model(input_ids=torch.tensor([prompt[:-1]]), output_attentions=True, use_cache=True)
    attentions = torch.stack([a[0] for a in out.attentions])  # (layers, heads, T, T): today's full matrices
    torch.testing.assert_close(state.window_attention, attentions[:, :, -ckv.WINDOW :, :], atol=1e-6, rtol=0)
    torch.testing.assert_close(state.accumulated_attention, attentions.sum(dim=2), atol=1e-5, rtol=0)
    for ours, theirs in zip(state.cache.layers, out.past_key_values.layers, strict=True):
        torch.testing.assert_close(ours.keys, theirs.keys, atol=1e-6, rtol=0)
    assert model.config._attn_implementation == ckv.RAGGED_ATTENTION  # restored after the prefill


def test_prefill_blocks_of_queries_give_the_same_statistics(model, prompt, state, monkeypatch):
    monkeypatch.setattr(ckv, "PREFILL_CHUNK", 7)
    blocked = ckv.prefill(model, prompt)
    torch.testing.assert_close(blocked.window_attention, state.window_attention, atol=1e-6, rtol=0)
    torch.testing.assert_close(blocked.accumulated_attention, state.accumulated_attention, atol=1e-5, rtol=0)


def test_several_questions_from_one_full_cache_match_plain_greedy_decoding(model, prompt, state, shape):
    """answer_questions keeps positions right: with the full plan it agrees with greedy decoding from scratch."""
    sequence = list(prompt)

    def greedy(n):
        out = []
        for _ in range(n):
            token = int(model(input_ids=torch.tensor([sequence])).logits[0, -1].argmax())
            out.append(token)
            sequence.append(token)
        return out

    first = greedy(3)
    question = [7, 8, 9]
    sequence += question
    second = greedy(2)
    plan = plan_for("full", state, shape, LENGTH)
    assert ckv.answer_questions(model, state, [plan], first, [(question, second)]) == [[True, True]]
    wrong = [(second[0] + 1) % 64, second[1]]
    assert ckv.answer_questions(model, state, [plan, plan], first, [(question, wrong)]) == [[True, False]] * 2


BATCHED = ("full", "streamingllm", "snapkv", "pyramidkv", "cake", "compresskv", "random-heads")


def test_a_headwise_plan_decodes_as_its_kept_keys_masked_in_the_full_cache(model, state, shape):
    """AdaKV's KV heads keep different numbers of positions: decoding from its padded, masked cache (in a batch
    beside a uniform plan) equals decoding from the full cache with each head's dropped keys masked out."""
    plan = plan_for("adakv", state, shape, 15)
    assert plan.counts is not None  # the heads do differ here: the test can see a wrong mask
    with ckv._stacked_cache(model, state, [plan, plan_for("snapkv", state, shape, 15)]) as cache:
        batched = ckv._forward(model, cache, torch.tensor([[state.next_token]] * 2), state.length)[0]

    def kept(layer):
        counts = plan.head_counts(layer).tolist()
        return [plan.positions[layer][head, :count] for head, count in enumerate(counts)]

    torch.testing.assert_close(batched, logits_seeing_only(model, state, shape, kept), atol=1e-5, rtol=0)


def test_plans_decoded_in_one_batch_equal_each_plan_alone(model, state, shape):
    """Stacking differently compressed caches (ragged budgets, padding) changes no logit and no answer."""
    plans = [plan_for(m, state, shape, LENGTH if m == "full" else 20) for m in BATCHED]
    with ckv._stacked_cache(model, state, plans) as cache:
        batched = ckv._forward(model, cache, torch.tensor([[state.next_token]] * len(plans)), state.length)
    for row, plan in enumerate(plans):
        alone = next_logits(model, ckv.compress_cache(state.cache, plan.positions), state)
        torch.testing.assert_close(batched[row], alone, atol=1e-5, rtol=0)
    item = type("Item", (), {"expected": [1, 2, 3, 4, 5, 6], "value": "x"})()
    scorer = type("Scorer", (), {"new_tokens": lambda self, item: 6, "correct": lambda self, item, g: False})()
    answers = ckv.answers_from_plans(model, state, plans, item, scorer)
    for plan, answer in zip(plans, answers, strict=True):
        cache = ckv.compress_cache(state.cache, plan.positions)
        assert answer.kv_bytes == ckv.cache_bytes(cache)  # the compressed cache, before decoding grows it
        assert answer.generated == ckv.greedy_decode(model, cache, [state.next_token], state.length, 6)
    assert len({tuple(a.generated) for a in answers}) > 1  # the plans do differ: the test can see a mix-up


def test_several_questions_in_one_batch_equal_each_plan_alone(model, state, shape):
    plans = [plan_for(m, state, shape, 16) for m in ("snapkv", "pyramidkv", "compresskv")]
    first, followups = [1, 2, 3], [([7, 8, 9], [4, 5]), ([10, 11], [6, 7, 8])]
    alone = [ckv.answer_questions(model, state, [plan], first, followups)[0] for plan in plans]
    assert ckv.answer_questions(model, state, plans, first, followups) == alone


def test_needle_items_locate_the_needle_and_the_follow_up_answers():
    from llmtheory import toyworld as tw
    from llmtheory.seeding import make_rng

    world = tw.make_world(0)
    tokenizer = tw.build_tokenizer(world)
    items = experiment.needle_items(
        world, tokenizer, make_rng(0, "test"), n=3, n_words=120, depth=0.4, n_distractors=4, n_followups=2
    )
    for item in items:
        stack = item.stack
        start, end = item.needle
        assert tokenizer.decode(item.prompt[start:end]) == f"the secret {stack.key} {stack.answer} ."
        assert tokenizer.decode(item.expected) == f"Sure , {stack.key} {stack.answer}"
        assert len(item.followups) == 2
        for question, expected in item.followups:
            key, value = tokenizer.decode(expected).split()[2:]
            assert f"the secret {key} {value} ." in stack.context and key != stack.key
            assert tokenizer.decode(question).endswith(f"what is the secret of {key} ? <assistant>")


def test_budget_tokens_floor_at_the_window_and_cap_at_the_context():
    assert ckv.budget_tokens(0.01, 1000) == 10 and ckv.budget_tokens(0.03, 1000) == 30
    assert ckv.budget_tokens(0.001, 1000) == ckv.WINDOW + 2 and ckv.budget_tokens(1.0, 999) == 999


def test_top_heads_rank_within_layers_and_overall_always_k_heads():
    scores = np.array([[0.1, 0.5, 0.0], [0.0, 0.0, 0.9]])
    assert ckv.top_heads_per_layer(scores, 1) == [[1], [2]]
    assert ckv.top_heads_overall(scores, 2) == [(1, 2), (0, 1)]
    assert ckv.top_heads_overall(scores, 5) == [(1, 2), (0, 1), (0, 0), (0, 2), (1, 0)]


def test_masking_sets_have_equal_size_and_flag_counts_a_ranking_cannot_name(model, prompt):
    from types import SimpleNamespace

    item = SimpleNamespace(prompt=list(prompt), expected=[1, 2])
    scores = ckv.HeadScores(np.arange(18.0).reshape(3, 6), np.array([[0, 0, 0, 0, 0, 1.0]] + [[0] * 6] * 2), 1)
    rows = pd.DataFrame(experiment.masking_experiment(model, [item, item], scores, counts=(1, 2), seed=0, draws=3))
    assert set(rows.query("kind == 'random heads'")["draw"]) == {0, 1, 2}
    flags = rows.groupby(["kind", "heads"])["testable"].first()
    assert flags[("retrieval heads", 1)] and not flags[("retrieval heads", 2)] and flags[("SRHs", 2)]
    assert len(rows) == 2 * (1 + 2 * (2 + 3))
    # a set the ranking cannot name is not run
    assert rows.query("not testable")["correct"].isna().all() and rows.query("testable")["correct"].notna().all()


def test_longbench_scoring_finds_the_value_as_whole_words():
    assert ckv.contains_value("Sure , alpha-beta v7", "v7")
    assert ckv.contains_value("The secret is: V7.", "v7")
    assert not ckv.contains_value("Sure , key v71", "v7")
    assert ckv.contains_value("Sure , key big dog", "big dog") and not ckv.contains_value("big cat dog", "big dog")
    assert ckv.normalize_answer("The  Answer, an apple!") == "answer apple"


def test_wilson_interval_and_strict_rule():
    interval = experiment.wilson(9, 10)
    assert interval.low < 0.9 < interval.high <= 1.0 and experiment.wilson(0, 10).low == 0.0
    assert interval.low == pytest.approx(0.5958, abs=1e-3)  # the textbook value for 9 of 10
    from llmtheory.claims import Estimate

    assert not experiment.greater_than(Estimate(0.0, 0.0, 0.0), 0.0).holds  # a tie is no win
    assert experiment.greater_than(Estimate(0.2, 0.05, 0.3), 0.0).decisive
    assert not experiment.greater_than(Estimate(0.2, -0.05, 0.3), 0.0).decisive


def test_cake_prefers_layers_whose_window_attention_is_spread_and_shifting():
    sharp = torch.zeros(2, 4, 20)
    sharp[..., 0] = 1.0  # every window query looks at the first token: no dispersion, no shift
    spread = torch.softmax(torch.randn(2, 4, 20, generator=torch.Generator().manual_seed(0)), dim=-1)
    preferences = ckv.cake_preferences(torch.stack([sharp, spread]), window=4)
    assert preferences[0] == pytest.approx(0.0, abs=1e-6) and preferences[1] > 0
    budgets = ckv.cake_budgets(10, preferences, length=100, window=4)
    assert sum(budgets) == 20 and budgets[0] == 4  # the sharp layer keeps its window only


def test_resource_estimate_counts_the_kv_and_the_prefill_memory(model, shape, state):
    shapes = experiment.model_shapes(model)
    estimate = experiment.resources(shapes, tokens=LENGTH, decoded=10)
    assert estimate.kv == ckv.cache_bytes(state.cache)
    assert estimate.naive_attention == 4 * shape.layers * shape.heads * LENGTH**2
    big = experiment.resources(experiment.HUB_EXAMPLE, tokens=5000, decoded=0)
    assert big.naive_attention > 30e9 and big.prefill_peak < 0.2e9  # the issue's ~34 GB vs our blocks


def test_answer_focus_matches_the_attention_of_a_full_forward(model, prompt, state):
    from types import SimpleNamespace

    item = SimpleNamespace(expected=[5, 6, 7])
    focus = experiment.answer_focus(model, item, state, layer=1, head=4)
    attention = model(input_ids=torch.tensor([prompt + [5, 6]]), output_attentions=True).attentions[1]
    assert focus == int(attention[0, 4, -1].argmax())


def test_prefill_computes_one_position_of_logits_and_blocks_of_queries(model, prompt, monkeypatch):
    """The prefill's memory: logits for the last position only (not T × vocab), attention rows in blocks."""
    logits_shapes, query_counts = [], []
    hook = model.lm_head.register_forward_hook(lambda module, args, out: logits_shapes.append(tuple(out.shape)))
    rows = ckv.attention_rows

    def counted(query, *args, **kwargs):
        query_counts.append(query.shape[-2])
        return rows(query, *args, **kwargs)

    monkeypatch.setattr(ckv, "PREFILL_CHUNK", 16)
    monkeypatch.setattr(ckv, "attention_rows", counted)
    try:
        ckv.prefill(model, prompt)
    finally:
        hook.remove()
    assert logits_shapes == [(1, 1, model.config.vocab_size)]
    assert query_counts and max(query_counts) <= max(16, ckv.WINDOW)


def test_full_cache_correct_keeps_only_the_answers_logits(model, prompt):
    from types import SimpleNamespace

    shapes = []
    hook = model.lm_head.register_forward_hook(lambda module, args, out: shapes.append(out.shape[1]))
    try:
        greedy = int(model(input_ids=torch.tensor([prompt])).logits[0, -1].argmax())
        shapes.clear()
        assert experiment.full_cache_correct(model, SimpleNamespace(prompt=prompt, expected=[greedy]))
    finally:
        hook.remove()
    assert shapes == [1]


def test_resources_count_the_prefill_logits_and_the_cache_share_of_decoding():
    small, large = dict(experiment.HUB_EXAMPLE), dict(experiment.HUB_EXAMPLE, vocab=2 * experiment.HUB_EXAMPLE["vocab"])
    grown = experiment.resources(large, 1000, 0).prefill_peak - experiment.resources(small, 1000, 0).prefill_peak
    assert grown == 4 * experiment.HUB_EXAMPLE["vocab"]  # one position of float32 logits
    short, long = experiment.decode_cache_share(small, 1000), experiment.decode_cache_share(small, 100_000)
    assert 0 < short < long < 1 and short < 0.1


def test_random_head_draws_cycle_over_items(state, shape):
    draws = [[[0, 1]] * shape.layers, [[4, 5]] * shape.layers]
    calibration = ckv.Calibration([[2, 3]] * shape.layers, draws, {0.2: [0.4, 0.3, 0.3]})
    assert calibration.random_draw(3) == draws[1] and calibration.random_draw(2) == draws[0]
    one = ckv.Calibration([[2, 3]] * shape.layers, draws[0], {})
    assert one.random_draw(5) == draws[0]
    plans = [calibration.plan("random-compresskv", state, 0.2, shape, draw=d) for d in (0, 1)]
    assert plans[0].budgets == plans[1].budgets  # the same error-aware budgets, different heads vote
    expected = ckv.select_positions(
        "compresskv",
        state,
        ckv.budget_tokens(0.2, state.length),
        shape,
        semantic_heads=draws[1],
        layer_weights=[0.4, 0.3, 0.3],
    )
    assert all(torch.equal(a, b) for a, b in zip(plans[1].positions, expected.positions, strict=True))


def test_decode_timing_times_every_plan_once_per_repeat_in_a_seeded_shuffled_order(model, state, shape):
    plans = {name: plan_for(name, state, shape, 40) for name in ("full", "snapkv", "streamingllm", "h2o")}
    first = pd.DataFrame(experiment.decode_timing(model, state, plans, n_tokens=1, repeats=4, seed=3))
    again = pd.DataFrame(experiment.decode_timing(model, state, plans, n_tokens=1, repeats=4, seed=3))
    orders = [tuple(part["plan"]) for _, part in first.groupby("repeat", sort=True)]
    assert all(sorted(order) == sorted(plans) for order in orders)
    assert len(set(orders)) > 1  # the order changes between repeats
    assert list(again["plan"]) == list(first["plan"])  # and is seeded


def test_parameters_are_declared_with_messages_that_name_them():
    from llmtheory.params import ParameterError, check_values

    assert check_values({"MODEL": "", "N_WORDS": 0, "MASK_WORDS": 1024}, ckv.PARAMETERS)["MODEL"] == ""
    with pytest.raises(ParameterError, match=r"MODEL=3 must be a zoo name.*\"\""):
        check_values({"MODEL": 3}, ckv.PARAMETERS)
    with pytest.raises(ParameterError, match="N_WORDS=-1 must be ≥ 0"):
        check_values({"N_WORDS": -1}, ckv.PARAMETERS)
    with pytest.raises(ParameterError, match="MASK_WORDS=20000 must be ≤ 16384"):
        check_values({"MASK_WORDS": 20_000}, ckv.PARAMETERS)


def test_not_testable_reasons_follow_the_budget_the_needle_and_the_full_cache():
    from llmtheory.claims import Estimate

    heads = ckv.HeadScores(np.zeros((2, 4)), np.array([[0, 0.5, 0, 0], [0, 0, 0, 0]]), 1)
    e = dict(smallest=0.007, share_smallest=0.007, full=Estimate(0.9, 0.8, 1.0), retrieves=True)
    why = experiment.not_testable_reasons(e, "m", 4000, needle_need=10, heads=heads)
    assert why["untestable"] == why["too_coarse"] == "" and "(1 have one)" in why["no_copy_sets"]
    # 0.7% of 1,000 tokens is the window plus two: no room for the needle and the pooling kernel
    assert "2 positions beyond the window" in experiment.not_testable_reasons(e, "m", 1000, 10, heads)["too_coarse"]
    coarse = experiment.not_testable_reasons(e | dict(share_smallest=0.038), "m", 265, 10, heads)
    assert "3.8% > 1%" in coarse["too_coarse"]
    lost = experiment.not_testable_reasons(
        e | dict(full=Estimate(0.2, 0.1, 0.3), retrieves=False), "m", 4000, 10, heads
    )
    assert lost["untestable"] == "; not testable: m answers only 20% with its full cache"


def test_masking_accuracies_reports_each_mask_kind():
    rows = [dict(kind="none", heads=0, draw=0, item=i, correct=1.0, testable=True) for i in range(4)]
    for count, srh in ((1, [1, 1, 1, 1]), (2, [1, 0, 1, 0])):
        rows += [
            dict(kind="SRHs", heads=count, draw=0, item=i, correct=float(c), testable=True) for i, c in enumerate(srh)
        ]
        rows += [dict(kind="random heads", heads=count, draw=d, item=i, correct=float(d == 1 or i > 0), testable=True)
                 for d in (0, 1) for i in range(4)]  # fmt: skip
    text = experiment.masking_accuracies(experiment.masking_summary(pd.DataFrame(rows)))
    assert text == "accuracy with no mask 1.00; masked: SRHs 1.00 / 0.50; random heads 0.88 / 0.88 (1 / 2 heads)"
