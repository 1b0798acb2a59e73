"""Tests of the shared GRPO objective (llmtheory.grpo): hand-computed cases, then the model side on tiny models."""

import copy
import math

import numpy as np
import pytest
import torch
import transformers

from llmtheory import grpo, zoo
from llmtheory import toyworld as tw
from llmtheory.params import ParameterError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

A = 1 / math.sqrt(2)  # the advantage ±1/√2 of a group of two with different rewards (sample std = |r1 − r2|/√2)


# ---------------------------------------------------------------------------------------------------------------
# The objective, by hand
# ---------------------------------------------------------------------------------------------------------------


def test_group_advantages_match_a_hand_computation():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0]])
    # group 1: mean 1/2, sample std √(4 · 1/4 / 3) = 1/√3; group 2: mean 3/4, sample std √(3/4 / 3) = 1/2
    expected = torch.tensor([[0.5, -0.5, -0.5, 0.5], [0.5, 0.5, 0.5, -1.5]]) * torch.tensor([[math.sqrt(3)], [1.0]])
    assert torch.allclose(grpo.group_advantages(rewards, eps=0.0), expected, atol=1e-6)
    # Dr. GRPO: centred, not scaled
    centred = torch.tensor([[0.5, -0.5, -0.5, 0.5], [0.25, 0.25, 0.25, -0.75]])
    assert torch.allclose(grpo.group_advantages(rewards, scale="none"), centred)


def test_a_group_with_equal_rewards_has_zero_advantage_and_advantages_ignore_the_reward_scale():
    advantages = grpo.group_advantages(torch.tensor([[3.0, 3.0, 3.0], [0.0, 10.0, 20.0]]))
    assert torch.equal(advantages[0], torch.zeros(3))
    assert torch.allclose(advantages[1], torch.tensor([-1.0, 0.0, 1.0]), atol=1e-4)


def test_clipped_surrogate_inside_and_outside_the_clip_range():
    ratios = torch.tensor([[0.5, 1.0, 1.3], [0.5, 1.0, 1.3]], requires_grad=True)
    advantages = torch.tensor([1.0, -1.0])
    surrogate = grpo.clipped_surrogate(ratios, advantages, clip_low=0.2)
    # Â > 0: min(ρ, clip(ρ)) = 0.5, 1, 1.2;  Â < 0: min(−ρ, −clip(ρ)) = −0.8, −1, −1.3
    assert torch.allclose(surrogate, torch.tensor([[0.5, 1.0, 1.2], [-0.8, -1.0, -1.3]]))
    surrogate.sum().backward()
    # the gradient vanishes exactly where the clipped term won: ρ = 1.3 with Â > 0 and ρ = 0.5 with Â < 0
    assert torch.equal(ratios.grad, torch.tensor([[1.0, 1.0, 0.0], [0.0, -1.0, -1.0]]))


def test_clip_high_widens_only_the_upper_side():
    ratios = torch.tensor([[0.7, 1.25, 1.4]])
    surrogate = grpo.clipped_surrogate(ratios, torch.tensor([1.0]), clip_low=0.2, clip_high=0.28)
    assert torch.allclose(surrogate, torch.tensor([[0.7, 1.25, 1.28]]))


def test_k3_kl_by_hand_nonnegative_and_zero_at_the_reference():
    # π = 1/2, π_ref = 1/4: π_ref/π − log(π_ref/π) − 1 = 1/2 + log 2 − 1
    value = grpo.k3_kl(torch.tensor(math.log(0.5)), torch.tensor(math.log(0.25)))
    assert float(value) == pytest.approx(0.5 + math.log(2) - 1)
    generator = torch.Generator().manual_seed(0)
    logps, ref = -5 * torch.rand(1000, generator=generator), -5 * torch.rand(1000, generator=generator)
    assert float(grpo.k3_kl(logps, ref).min()) >= 0
    assert torch.equal(grpo.k3_kl(logps, logps), torch.zeros(1000))


def test_the_three_aggregations_by_hand():
    per_token = torch.tensor([[1.0, 2.0, 9.0], [4.0, 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert float(grpo.aggregate(per_token, mask)) == pytest.approx((1.5 + 4) / 2)
    assert float(grpo.aggregate(per_token, mask, aggregation="token-mean")) == pytest.approx(7 / 3)
    constant = grpo.aggregate(per_token, mask, aggregation="constant", max_completion_length=3)
    assert float(constant) == pytest.approx(7 / 6)


def two_groups():
    """Two prompts × two completions; rewards (1, 0) and (2, 0), so Â = (+1/√2, −1/√2) in both groups.

    Completions 0 and 2 have two tokens, 1 and 3 one. Ratios: (1.1, 1.5), (0.7), (1.0, 0.9), (1.25).
    """
    rewards = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    mask = torch.tensor([[1, 1], [1, 0], [1, 1], [1, 0]])
    ratios = torch.tensor([[1.1, 1.5], [0.7, 1.0], [1.0, 0.9], [1.25, 1.0]])
    old = torch.log(torch.tensor([[0.5, 0.4], [0.3, 0.2], [0.6, 0.5], [0.2, 0.1]]))
    return rewards, mask, old + torch.log(ratios), old


def test_the_grpo_loss_of_two_groups_matches_a_hand_computation():
    rewards, mask, logps, old = two_groups()
    advantages = grpo.group_advantages(rewards, eps=0.0).reshape(-1)
    assert torch.allclose(advantages, torch.tensor([A, -A, A, -A]))
    loss, stats = grpo.grpo_loss(logps, old, advantages, mask, beta=0.0)
    # per completion, mean over its tokens of min(ρÂ, clip(ρ)Â), ε = 0.2:
    # (1.1 + 1.2)/2 · A,  −0.8 · A,  (1.0 + 0.9)/2 · A,  −1.25 · A   → J = 0.05 A / 4
    assert float(loss) == pytest.approx(-0.0125 * A, abs=1e-6)
    # two of six tokens clipped: ρ = 1.5 (Â > 0) and ρ = 0.7 (Â < 0)
    assert stats["clip_fraction"] == pytest.approx(2 / 6)
    # with β > 0 the token-mean of β·k3 is subtracted per completion; π_ref = π_old here
    loss_kl, stats_kl = grpo.grpo_loss(logps, old, advantages, mask, ref_logps=old, beta=0.1)
    kl = (1 / ratios_of(logps, old)) + torch.log(ratios_of(logps, old)) - 1
    per_sequence = (kl * mask).sum(1) / mask.sum(1)
    assert float(loss_kl) == pytest.approx(-0.0125 * A + 0.1 * float(per_sequence.mean()), abs=1e-6)
    assert stats_kl["kl"] == pytest.approx(float((kl * mask).sum() / mask.sum()), abs=1e-6)


def ratios_of(logps, old):
    return torch.exp(logps - old)


def test_grpo_loss_gradient_is_the_policy_gradient_at_ratio_one():
    logps = torch.log(torch.tensor([[0.5, 0.25]])).requires_grad_()
    loss, _ = grpo.grpo_loss(logps, logps.detach(), torch.tensor([2.0]), torch.ones(1, 2), beta=0.0)
    loss.backward()
    # −J = −mean_t ρ_t Â with ρ = e^{logπ − logπ_old}: ∂/∂logπ_t = −Â/|o| at ρ = 1
    assert torch.allclose(logps.grad, torch.tensor([[-1.0, -1.0]]))


# ---------------------------------------------------------------------------------------------------------------
# The model side on tiny models
# ---------------------------------------------------------------------------------------------------------------


def tiny_model(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    if kind == "llama":
        config = transformers.LlamaConfig(
            vocab_size=32,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=64,
            pad_token_id=0,
            eos_token_id=1,
            bos_token_id=2,
        )
        return transformers.LlamaForCausalLM(config).eval()
    config = transformers.GPT2Config(
        vocab_size=32, n_embd=16, n_layer=2, n_head=2, n_positions=64, eos_token_id=1, bos_token_id=2
    )
    return transformers.GPT2LMHeadModel(config).eval()


def padded_batch():
    prompts = [[2, 5, 6, 7], [2, 9], [2, 3, 4]]
    completions = [[8, 9, 1], [10], [11, 12]]
    prompt_ids, prompt_mask = grpo._pad(prompts, 0, left=True)
    completion_ids, completion_mask = grpo._pad(completions, 0, left=False)
    return prompts, completions, (prompt_ids, prompt_mask, completion_ids, completion_mask)


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_completion_log_probs_of_a_padded_batch_match_each_sequence_alone(kind):
    model = tiny_model(kind)
    prompts, completions, batch = padded_batch()
    with torch.no_grad():
        logps = grpo.completion_log_probs(model, *batch)
        for row, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            ids = torch.tensor([prompt + completion])
            log_softmax = torch.log_softmax(model(ids).logits[0], dim=-1)
            direct = [log_softmax[len(prompt) - 1 + t, token] for t, token in enumerate(completion)]
            assert torch.allclose(logps[row, : len(completion)], torch.stack(direct), atol=1e-5)
            assert torch.equal(logps[row, len(completion) :], torch.zeros(logps.shape[1] - len(completion)))


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_one_token_completions_of_shared_prompts_match_each_sequence_alone_with_their_gradients(kind):
    model = tiny_model(kind)
    prompts = [[2, 5, 6, 7], [2, 5, 6, 7], [2, 9], [2, 9], [2, 3, 4]]  # groups share their prompt
    completions = [[8], [10], [11], [8], [12]]
    prompt_ids, prompt_mask = grpo._pad(prompts, 0, left=True)
    completion_ids, completion_mask = grpo._pad(completions, 0, left=False)
    logps = grpo.completion_log_probs(model, prompt_ids, prompt_mask, completion_ids, completion_mask)
    logps.sum().backward()
    fast = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    direct = torch.stack(
        [
            torch.log_softmax(model(torch.tensor([p])).logits[0, -1], -1)[c[0]]
            for p, c in zip(prompts, completions, strict=True)
        ]
    )
    assert torch.allclose(logps[:, 0], direct, atol=1e-5)
    direct.sum().backward()
    for got, expected in zip(fast, (p.grad for p in model.parameters()), strict=True):
        assert torch.allclose(got, expected, atol=1e-5)


def test_completion_log_probs_apply_the_temperature():
    model = tiny_model("llama")
    _, _, batch = padded_batch()
    with torch.no_grad():
        hot = grpo.completion_log_probs(model, *batch, temperature=2.0)
        ids = torch.cat([batch[0], batch[2]], 1)
        logits = model(ids, attention_mask=torch.cat([batch[1], batch[3]], 1)).logits
    # row 0 has the longest prompt (no padding): its first completion token is predicted at position 3
    expected = torch.log_softmax(logits[0, 3] / 2.0, -1)[8]
    assert float(hot[0, 0]) == pytest.approx(float(expected), abs=1e-5)


def test_mask_until_eos_keeps_the_first_eos_and_drops_what_follows():
    ids = torch.tensor([[5, 1, 0, 0], [5, 6, 7, 8], [1, 1, 5, 5]])
    mask = grpo.mask_until_eos(ids, [1])
    assert torch.equal(mask, torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]))


def test_a_policy_gradient_step_raises_the_rewarded_completion_and_lowers_the_other():
    model = tiny_model("llama")
    prompt_ids, prompt_mask = grpo._pad([[2, 5, 6]] * 2, 0, left=True)
    completion_ids, completion_mask = grpo._pad([[8, 9, 1], [10, 11, 1]], 0, left=False)
    rollouts = grpo.Rollouts(["q", "q"], ["good", "bad"], prompt_ids, prompt_mask, completion_ids, completion_mask, 2)

    def sequence_logps():
        with torch.no_grad():
            return grpo.completion_log_probs(model, prompt_ids, prompt_mask, completion_ids, completion_mask).sum(1)

    before = sequence_logps()
    model.train()  # the update runs in eval mode (no dropout) and gives the caller's mode back
    config = grpo.GRPOConfig(group_size=2, beta=0.0, max_grad_norm=None)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    step = grpo.grpo_update(model, None, optimizer, rollouts, torch.tensor([[1.0, 0.0]]), config)
    change = sequence_logps() - before
    assert change[0] > 0 > change[1], change
    assert model.training
    assert step.stats["ratio"] == pytest.approx(1.0) and step.stats["clip_fraction"] == 0


def test_more_inner_updates_move_the_ratio_away_from_one():
    model = tiny_model("llama")
    prompt_ids, prompt_mask = grpo._pad([[2, 5, 6]] * 2, 0, left=True)
    completion_ids, completion_mask = grpo._pad([[8, 9, 1], [10, 11, 1]], 0, left=False)
    rollouts = grpo.Rollouts(["q", "q"], ["a", "b"], prompt_ids, prompt_mask, completion_ids, completion_mask, 2)
    reference = copy.deepcopy(model)
    config = grpo.GRPOConfig(group_size=2, inner_updates=3)
    step = grpo.grpo_update(
        model, reference, torch.optim.SGD(model.parameters(), lr=0.5), rollouts, torch.tensor([[1.0, 0.0]]), config
    )
    assert len(step.losses) == 3 and step.stats["ratio"] != pytest.approx(1.0, abs=1e-4)
    assert step.stats["kl"] > 0


# ---------------------------------------------------------------------------------------------------------------
# Sampling and a whole step on a zoo model
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zoo_model():
    return zoo.load("fact-llama-h48")


def arithmetic_prompts(count: int, seed: int = 0) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    dialogues = [tw.arithmetic_dialogue(rng, wrong_turns=int(rng.integers(0, 2))) for _ in range(count)]
    return {d.prompt: d.answer for d in dialogues}


def test_log_probs_of_sampled_completions_equal_the_samplers_own(zoo_model):
    model, tokenizer = zoo_model
    prompts = list(arithmetic_prompts(3))  # prompts of different lengths: left padding is exercised
    rollouts = grpo.sample_groups(model, tokenizer, prompts, group_size=2, max_new_tokens=6, seed=3)
    with torch.no_grad(), grpo._rng_context(model, 3):
        out = model.generate(
            input_ids=rollouts.prompt_ids[::2],
            attention_mask=rollouts.prompt_mask[::2],
            do_sample=True,
            top_k=0,
            top_p=1.0,
            max_new_tokens=6,
            num_return_sequences=2,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=grpo.eos_token_ids(model, tokenizer),
            output_logits=True,
            return_dict_in_generate=True,
        )
        logps = grpo.completion_log_probs(
            model, rollouts.prompt_ids, rollouts.prompt_mask, rollouts.completion_ids, rollouts.completion_mask
        )
    sampler = torch.log_softmax(torch.stack(out.logits, dim=1), dim=-1)
    sampler = sampler.gather(-1, rollouts.completion_ids.unsqueeze(-1)).squeeze(-1) * rollouts.completion_mask
    assert torch.equal(out.sequences[:, rollouts.prompt_ids.shape[1] :], rollouts.completion_ids)
    assert torch.allclose(logps, sampler, atol=1e-4)


def test_sampling_is_reproducible_and_leaves_the_global_generator_alone(zoo_model):
    model, tokenizer = zoo_model
    prompts = list(arithmetic_prompts(2))
    torch.manual_seed(123)
    first = grpo.sample_groups(model, tokenizer, prompts, group_size=4, max_new_tokens=6, seed=0)
    after = torch.rand(1)
    torch.manual_seed(123)
    again = grpo.sample_groups(model, tokenizer, prompts, group_size=4, max_new_tokens=6, seed=0)
    assert torch.equal(first.completion_ids, again.completion_ids) and torch.equal(after, torch.rand(1))
    other = grpo.sample_groups(model, tokenizer, prompts, group_size=4, max_new_tokens=6, seed=1)
    assert not torch.equal(first.completion_ids, other.completion_ids)
    assert first.prompts == [p for p in prompts for _ in range(4)] and first.num_groups == 2
    assert all(text.split()[:1] == ["Sure"] for text in first.completions), first.completions
    # the mask ends at the first eos, which the decoded text leaves out
    assert (first.completion_ids[first.completion_mask.bool()] == tokenizer.eos_token_id).sum() <= 8


def test_encode_rollouts_appends_eos_and_pads_on_the_right_sides(zoo_model):
    _, tokenizer = zoo_model
    prompts = list(arithmetic_prompts(2))
    rollouts = grpo.encode_rollouts(
        tokenizer,
        [prompts[0]] * 2 + [prompts[1]] * 2,
        ["Sure , 7 .", "Sure , 8 . x", "no", "Sure , 1 ."],
        group_size=2,
    )
    lengths = rollouts.completion_mask.sum(1).tolist()
    assert lengths == [5, 6, 2, 5] and rollouts.num_completion_tokens == 18
    last = rollouts.completion_ids[torch.arange(4), torch.tensor(lengths) - 1]
    assert torch.equal(last, torch.full((4,), tokenizer.eos_token_id))
    assert (rollouts.prompt_mask[:, -1] == 1).all()  # prompts end flush right (left padding)


def test_completion_logits_hold_the_whole_next_token_distribution(zoo_model):
    model, tokenizer = zoo_model
    rollouts = grpo.sample_groups(model, tokenizer, list(arithmetic_prompts(2)), group_size=2, max_new_tokens=5, seed=0)
    batch = (rollouts.prompt_ids, rollouts.prompt_mask, rollouts.completion_ids, rollouts.completion_mask)
    with torch.no_grad():
        log_softmax = torch.log_softmax(grpo.completion_logits(model, *batch, temperature=0.7), dim=-1)
        logps = grpo.completion_log_probs(model, *batch, temperature=0.7)
    assert log_softmax.shape == (*rollouts.completion_ids.shape, len(tokenizer))
    chosen = log_softmax.gather(-1, rollouts.completion_ids.unsqueeze(-1)).squeeze(-1) * rollouts.completion_mask
    assert torch.allclose(chosen, logps, atol=1e-5)


def test_merged_groups_keep_each_prompts_rows_together_and_their_log_probs(zoo_model):
    model, tokenizer = zoo_model
    answers = arithmetic_prompts(2, seed=2)
    sampled = grpo.sample_groups(model, tokenizer, list(answers), group_size=2, max_new_tokens=6, seed=0)
    teacher = grpo.encode_rollouts(tokenizer, list(answers), [f"Sure , {a} ." for a in answers.values()], group_size=1)
    mixed = grpo.merge_groups(sampled, teacher)
    assert mixed.group_size == 3 and mixed.num_groups == 2
    assert mixed.completions == [
        *sampled.completions[:2],
        teacher.completions[0],
        *sampled.completions[2:],
        teacher.completions[1],
    ]
    assert mixed.num_completion_tokens == sampled.num_completion_tokens + teacher.num_completion_tokens

    def logps(r):
        with torch.no_grad():
            lp = grpo.completion_log_probs(model, r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask)
        return lp.sum(1)

    separate = torch.cat([logps(sampled).view(2, 2), logps(teacher).view(2, 1)], dim=1).reshape(-1)
    assert torch.allclose(logps(mixed), separate, atol=1e-4)
    with pytest.raises(ParameterError, match="same prompts"):
        grpo.merge_groups(sampled, grpo.encode_rollouts(tokenizer, list(answers)[::-1], ["a", "b"], group_size=1))


def reward_exact_answer(answers: dict[str, str]):
    def reward(prompts, completions):
        return [float(tw.parse_answer(c) == answers[p]) for p, c in zip(prompts, completions, strict=True)]

    return reward


def test_a_grpo_step_is_deterministic_under_a_seed(zoo_model):
    model, tokenizer = zoo_model
    answers = arithmetic_prompts(2, seed=1)
    config = grpo.GRPOConfig(group_size=4, max_new_tokens=6)
    results = []
    for _ in range(2):
        policy = copy.deepcopy(model)
        optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3)
        step = grpo.grpo_step(
            policy, model, optimizer, tokenizer, list(answers), reward_exact_answer(answers), seed=7, config=config
        )
        results.append((step, torch.cat([p.detach().flatten() for p in policy.parameters()])))
    (first, weights), (second, weights_again) = results
    assert torch.equal(weights, weights_again) and first.losses == second.losses
    assert torch.equal(first.rewards, second.rewards) and first.rewards.shape == (2, 4)
    assert not torch.equal(weights, torch.cat([p.detach().flatten() for p in model.parameters()]))


# ---------------------------------------------------------------------------------------------------------------
# Bad parameters
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"group_size": 1}, "group_size"),
        ({"aggregation": "mean"}, "aggregation"),
        ({"advantage_scale": "batch"}, "advantage_scale"),
        ({"clip_low": -0.1}, "clip_low"),
        ({"beta": -1.0}, "beta"),
        ({"inner_updates": 0}, "inner_updates"),
        ({"temperature": 0.0}, "temperature"),
    ],
)
def test_bad_config_values_raise_errors_naming_the_parameter(settings, named):
    with pytest.raises(ParameterError, match=named):
        grpo.GRPOConfig(**settings)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ParameterError, match="group_size ≥ 2"):
        grpo.group_advantages(torch.tensor([1.0, 0.0]))
    with pytest.raises(ParameterError, match="max_completion_length"):
        grpo.aggregate(torch.ones(1, 2), torch.ones(1, 2), aggregation="constant")
    with pytest.raises(ParameterError, match="ref_logps"):
        grpo.grpo_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1), torch.ones(1, 2), beta=0.1)
    model = tiny_model("llama")
    _, _, (prompt_ids, prompt_mask, completion_ids, completion_mask) = padded_batch()
    rollouts = grpo.Rollouts(["q"] * 3, ["a"] * 3, prompt_ids, prompt_mask, completion_ids, completion_mask, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ParameterError, match="reference"):
        grpo.grpo_update(model, None, optimizer, rollouts, torch.zeros(1, 3), grpo.GRPOConfig(group_size=3))
    with pytest.raises(ParameterError, match="one per completion"):
        grpo.score(rollouts, lambda prompts, completions: [1.0])
    with pytest.raises(ParameterError, match="prompts"):
        grpo.encode_rollouts(None, "one prompt", ["a"], group_size=1)
