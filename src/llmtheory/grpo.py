"""Group Relative Policy Optimization (GRPO): RL with a verifiable reward on any ``transformers`` causal LM.

Shared by the chapters that train a model with RL (pigeonholing, sgpo). The method is DeepSeekMath's (Shao et al.
2024, arXiv 2402.03300, §4.1): for each prompt q sample a *group* of G completions o_1..o_G from the old policy,
score them with a reward r_i, and maximise (their eq. 3)

    J(θ) = E[ 1/G Σ_i 1/|o_i| Σ_t { min(ρ_{i,t} Â_{i,t}, clip(ρ_{i,t}, 1−ε, 1+ε) Â_{i,t}) − β D_KL[π_θ ‖ π_ref] } ],

    ρ_{i,t} = π_θ(o_{i,t} | q, o_{i,<t}) / π_θold(o_{i,t} | q, o_{i,<t}),

with the group-relative advantage of outcome supervision (§4.1.2) Â_{i,t} = (r_i − mean(r)) / std(r) for every
token of o_i, and the unbiased per-token KL estimator (their eq. 4, Schulman's "k3")

    D_KL[π_θ ‖ π_ref] ≈ π_ref/π_θ − log(π_ref/π_θ) − 1   (≥ 0, and = 0 where π_θ = π_ref).

Two later variants are options, because they change only the normalisation: DAPO's token-level mean over all tokens of
the batch (Yu et al. 2025, arXiv 2503.14476, with a separate upper clip ε_high) and "Dr. GRPO" (Liu et al. 2025,
arXiv 2503.20783), which drops the division by std(r) and replaces 1/|o_i| by a constant 1/L_max.

The module reads top to bottom as the algorithm: advantages → ratios → clipped surrogate → KL → aggregation →
loss; then the model side: per-token log-probabilities of completions, group sampling with a seed, and one
update. Choices that are ours, not the paper's: std is the sample (Bessel) std with ε_std = 1e-4 added, as TRL's
``GRPOTrainer`` does; the completion mask keeps tokens up to and including the first end-of-sequence token; sampling
is from π itself (temperature only, no top-k/top-p), so the log-probabilities below are those of the sampler.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .params import ParameterError, check_choice, check_float, check_int

AGGREGATIONS = ("sequence-mean", "token-mean", "constant")
"""How per-token terms become one number: GRPO's 1/G Σ_i 1/|o_i| Σ_t, DAPO's 1/Σ_i|o_i| Σ_i Σ_t, or Dr. GRPO's
1/(G·L_max) Σ_i Σ_t."""

ADVANTAGE_SCALES = ("group-std", "none")
"""Divide r_i − mean(r) by the group's std (GRPO) or not (Dr. GRPO)."""


# --------------------------------------------------------------------------------------------------------------
# The objective, term by term (tensors in, tensors out; no model)
# --------------------------------------------------------------------------------------------------------------


def group_advantages(rewards: torch.Tensor, *, scale: str = "group-std", eps: float = 1e-4) -> torch.Tensor:
    """Group-relative advantages Â_i, shape ``(prompts, group_size)`` like ``rewards``.

    DeepSeekMath §4.1.2 (outcome supervision): Â_i = (r_i − mean(r)) / (std(r) + ε), mean and std over the G
    completions of the same prompt (the sample std, Bessel-corrected). ``scale="none"`` is Dr. GRPO's
    Â_i = r_i − mean(r). A group whose rewards are all equal gets Â = 0: it teaches nothing.
    """
    check_choice("scale", scale, ADVANTAGE_SCALES)
    check_float("eps", eps, minimum=0.0)
    if rewards.ndim != 2 or rewards.shape[1] < 2:
        raise ParameterError(f"rewards has shape {tuple(rewards.shape)}; expected (prompts, group_size ≥ 2)")
    rewards = rewards.float()
    # r_i − mean(r) over the group
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if scale == "none":
        return centred
    # ÷ (std(r) + ε)
    return centred / (rewards.std(dim=1, keepdim=True) + eps)


def token_ratios(logps: torch.Tensor, old_logps: torch.Tensor) -> torch.Tensor:
    """ρ_{i,t} = π_θ(o_{i,t} | q, o_{i,<t}) / π_θold(o_{i,t} | q, o_{i,<t}) = exp(log π_θ − log π_θold)."""
    return torch.exp(logps - old_logps)


def clipped_surrogate(
    ratios: torch.Tensor, advantages: torch.Tensor, *, clip_low: float = 0.2, clip_high: float | None = None
) -> torch.Tensor:
    """Per-token min(ρ Â, clip(ρ, 1 − ε_low, 1 + ε_high) Â) (DeepSeekMath eq. 3; ε_high = ε_low unless given, DAPO).

    ``advantages`` has one value per sequence, shape ``(batch,)``; ``ratios`` is ``(batch, tokens)``. The min makes
    the objective pessimistic: once a ratio has moved past the clip range in the direction the advantage favours,
    that token's gradient is zero.
    """
    check_float("clip_low", clip_low, minimum=0.0, maximum=1.0)
    clip_high = clip_low if clip_high is None else check_float("clip_high", clip_high, minimum=0.0)
    advantages = advantages.reshape(-1, 1)
    unclipped = ratios * advantages
    clipped = torch.clamp(ratios, 1.0 - clip_low, 1.0 + clip_high) * advantages
    return torch.minimum(unclipped, clipped)


def k3_kl(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """Per-token estimate of D_KL[π_θ ‖ π_ref] (DeepSeekMath eq. 4): π_ref/π_θ − log(π_ref/π_θ) − 1.

    Computed from log-probabilities: with d = log π_ref − log π_θ it is e^d − d − 1 ≥ 0, zero iff d = 0.
    """
    log_ratio = ref_logps - logps
    return torch.exp(log_ratio) - log_ratio - 1.0


def aggregate(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    *,
    aggregation: str = "sequence-mean",
    max_completion_length: int | None = None,
) -> torch.Tensor:
    """Average masked per-token terms ``(batch, tokens)`` into a scalar.

    ``"sequence-mean"`` (GRPO, eq. 3): 1/B Σ_i 1/|o_i| Σ_t x_{i,t} — every completion weighs the same, so a token of
    a long completion weighs less. ``"token-mean"`` (DAPO): Σ_i Σ_t x_{i,t} / Σ_i |o_i| — every token weighs the
    same. ``"constant"`` (Dr. GRPO): Σ_i Σ_t x_{i,t} / (B · L_max), with ``max_completion_length`` = L_max, which
    removes GRPO's length bias.
    """
    check_choice("aggregation", aggregation, AGGREGATIONS)
    mask = mask.to(per_token.dtype)
    masked = per_token * mask
    if aggregation == "sequence-mean":
        return (masked.sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)).mean()
    if aggregation == "token-mean":
        return masked.sum() / mask.sum().clamp(min=1.0)
    if max_completion_length is None:
        raise ParameterError('aggregation="constant" (Dr. GRPO) needs max_completion_length (L_max)')
    check_int("max_completion_length", max_completion_length, minimum=1)
    return masked.sum() / (per_token.shape[0] * max_completion_length)


def grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    ref_logps: torch.Tensor | None = None,
    beta: float = 0.04,
    clip_low: float = 0.2,
    clip_high: float | None = None,
    aggregation: str = "sequence-mean",
    max_completion_length: int | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss −J(θ) of DeepSeekMath eq. 3 and a few diagnostics.

    All tensors are ``(batch, tokens)`` except ``advantages`` ``(batch,)``; ``mask`` marks completion tokens.
    Returns ``(loss, stats)`` with ``stats`` = token-mean KL estimate, the fraction of tokens whose ratio was
    clipped (the min picked the clipped term and it differed), and the token-mean ratio.
    """
    check_float("beta", beta, minimum=0.0)
    if beta > 0 and ref_logps is None:
        raise ParameterError(f"beta={beta} > 0 needs ref_logps (the reference policy's log-probabilities)")
    ratios = token_ratios(logps, old_logps)
    # min(ρ Â, clip(ρ, 1−ε, 1+ε) Â)
    surrogate = clipped_surrogate(ratios, advantages, clip_low=clip_low, clip_high=clip_high)
    per_token = surrogate
    kl = torch.zeros_like(logps) if ref_logps is None else k3_kl(logps, ref_logps)
    if beta > 0:
        # − β D_KL[π_θ ‖ π_ref]
        per_token = surrogate - beta * kl
    # J = aggregate over tokens and completions; the loss is −J
    loss = -aggregate(per_token, mask, aggregation=aggregation, max_completion_length=max_completion_length)
    with torch.no_grad():
        token_mean = {"aggregation": "token-mean"}
        unclipped = ratios * advantages.reshape(-1, 1)
        stats = {
            "kl": float(aggregate(kl, mask, **token_mean)),
            "clip_fraction": float(aggregate((surrogate != unclipped).to(logps.dtype), mask, **token_mean)),
            "ratio": float(aggregate(ratios, mask, **token_mean)),
        }
    return loss, stats


# --------------------------------------------------------------------------------------------------------------
# The model side: completions, their log-probabilities, group sampling
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Rollouts:
    """A batch of prompt/completion pairs, ``group_size`` consecutive rows per prompt.

    ``prompt_ids`` are left-padded, ``completion_ids`` right-padded; the masks are 1 on real tokens. ``prompts``
    and ``completions`` are the texts (one entry per row; a prompt repeats ``group_size`` times).
    """

    prompts: list[str]
    completions: list[str]
    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    group_size: int

    @property
    def num_groups(self) -> int:
        return len(self.prompts) // self.group_size

    @property
    def num_completion_tokens(self) -> int:
        """Completion tokens that count (up to and including end-of-sequence): the compute a chapter reports."""
        return int(self.completion_mask.sum())


def _pad(sequences: Sequence[Sequence[int]], pad_id: int, *, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        span = slice(width - len(seq), width) if left else slice(0, len(seq))
        ids[row, span] = torch.tensor(list(seq), dtype=torch.long)
        mask[row, span] = 1
    return ids, mask


def eos_token_ids(model, tokenizer) -> list[int]:
    """The token ids that end a completion: the tokenizer's and the model's generation config's."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, list | tuple) else [configured])
    ids.discard(None)
    if not ids:
        raise ParameterError("neither the tokenizer nor the model's generation config names an eos token")
    return sorted(ids)


def mask_until_eos(completion_ids: torch.Tensor, eos_ids: Sequence[int]) -> torch.Tensor:
    """1 on each row's tokens up to and including its first eos token (all tokens if it has none), else 0."""
    is_eos = torch.isin(completion_ids, torch.tensor(list(eos_ids), device=completion_ids.device))
    length = completion_ids.shape[1]
    none = torch.full((completion_ids.shape[0],), length, dtype=torch.long, device=completion_ids.device)
    first = torch.where(is_eos.any(dim=1), is_eos.int().argmax(dim=1), none)
    return (torch.arange(length, device=completion_ids.device) <= first.unsqueeze(1)).long()


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def encode_prompts(tokenizer, prompts: Sequence[str], add_special_tokens: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompt ids and mask (decoder-only generation appends to the right end of every row)."""
    if isinstance(prompts, str) or not prompts:
        raise ParameterError("prompts must be a non-empty list of strings")
    ids = tokenizer(list(prompts), add_special_tokens=add_special_tokens)["input_ids"]
    return _pad(ids, _pad_id(tokenizer), left=True)


def encode_rollouts(
    tokenizer,
    prompts: Sequence[str],
    completions: Sequence[str],
    *,
    group_size: int,
    add_eos: bool = True,
    add_special_tokens: bool = True,
) -> Rollouts:
    """Rollouts from texts (teacher traces mixed into a group, hand-made cases): one completion per prompt row.

    ``prompts`` has one entry per row (repeat each prompt ``group_size`` times). Completions are tokenized without
    special tokens; ``add_eos`` appends the eos token, as a sampled completion that stopped would end.
    """
    check_int("group_size", group_size, minimum=1)
    if isinstance(prompts, str) or isinstance(completions, str):
        raise ParameterError("prompts and completions must be lists of strings, one entry per row")
    if len(prompts) != len(completions) or len(prompts) % group_size:
        raise ParameterError(
            f"{len(prompts)} prompts and {len(completions)} completions: expected equal numbers, a multiple of "
            f"group_size={group_size}"
        )
    prompt_ids, prompt_mask = encode_prompts(tokenizer, prompts, add_special_tokens)
    tokens = tokenizer(list(completions), add_special_tokens=False)["input_ids"]
    tokens = [t + [tokenizer.eos_token_id] if add_eos else t for t in tokens]
    completion_ids, completion_mask = _pad(tokens, _pad_id(tokenizer), left=False)
    return Rollouts(
        list(prompts), list(completions), prompt_ids, prompt_mask, completion_ids, completion_mask, group_size
    )


def merge_groups(first: Rollouts, second: Rollouts) -> Rollouts:
    """Groups of ``first.group_size + second.group_size`` rows: each prompt's rows of ``first``, then its rows of
    ``second`` (for instance G − k sampled completions and k teacher traces, LUFFY's mixed groups).

    Both must hold the same prompts in the same order. Rows are re-padded to the wider of the two (with id 0, under
    a zero mask, so the pad id never reaches a log-probability).
    """
    same_prompts = first.prompts[:: first.group_size] == second.prompts[:: second.group_size]
    if first.num_groups != second.num_groups or not same_prompts:
        raise ParameterError("merge_groups needs the same prompts, in the same order, in both rollouts")
    order = [
        (source, row)
        for group in range(first.num_groups)
        for source in (first, second)
        for row in range(group * source.group_size, (group + 1) * source.group_size)
    ]

    def tokens(ids: torch.Tensor, mask: torch.Tensor) -> list[int]:
        return ids[mask.bool()].tolist()

    prompt_ids, prompt_mask = _pad([tokens(s.prompt_ids[r], s.prompt_mask[r]) for s, r in order], 0, left=True)
    completion_ids, completion_mask = _pad(
        [tokens(s.completion_ids[r], s.completion_mask[r]) for s, r in order], 0, left=False
    )
    return Rollouts(
        [s.prompts[r] for s, r in order],
        [s.completions[r] for s, r in order],
        prompt_ids,
        prompt_mask,
        completion_ids,
        completion_mask,
        first.group_size + second.group_size,
    )


def _forward_accepts(model, name: str) -> bool:
    return name in inspect.signature(model.forward).parameters


def completion_logits(
    model,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    *,
    temperature: float = 1.0,
) -> torch.Tensor:
    """The logits (÷ ``temperature``) that predict each completion token, shape ``(batch, completion tokens,
    vocabulary)``, float32: row i, column t holds the next-token logits after q_i, o_{i,<t}.

    Works for any ``transformers`` causal LM. Prompts are left-padded, so positions are counted from each row's
    first real token (``position_ids`` = cumsum(mask) − 1, as ``generate`` does); for RoPE models this changes
    nothing, for absolute positions (GPT-2) it is what makes the numbers match generation. Only the completion
    positions' logits are computed where the model supports ``logits_to_keep``. The same completions after two
    different prompts (a strategy-guided and an unguided context, say) give two aligned tensors.
    """
    check_float("temperature", temperature, minimum=1e-6)
    if completion_ids.shape[1] == 1:
        # a one-token completion is predicted from its prompt alone: run each distinct prompt once (the G rows of a
        # group share theirs) and index its logits back to every row; gradients flow through the index
        distinct, row_of = torch.unique(torch.cat([prompt_ids, prompt_mask], dim=1), dim=0, return_inverse=True)
        if len(distinct) < len(prompt_ids):
            width, token = prompt_ids.shape[1], torch.zeros_like(completion_ids[: len(distinct)])  # any token will do
            logits = completion_logits(model, distinct[:, :width], distinct[:, width:], token, torch.ones_like(token),
                                       temperature=temperature)  # fmt: skip
            return logits[row_of.to(logits.device)]
    device = next(model.parameters()).device
    ids = torch.cat([prompt_ids, completion_ids], dim=1).to(device)
    mask = torch.cat([prompt_mask, completion_mask], dim=1).to(device)
    n_completion = completion_ids.shape[1]
    inputs = {"input_ids": ids, "attention_mask": mask, "use_cache": False}
    if _forward_accepts(model, "position_ids"):
        inputs["position_ids"] = (mask.cumsum(dim=1) - 1).clamp(min=0)
    if _forward_accepts(model, "logits_to_keep"):
        # only the positions that predict completion tokens (and the last one, dropped below): no prompt logits
        inputs["logits_to_keep"] = n_completion + 1
    logits = model(**inputs).logits[:, -(n_completion + 1) : -1, :].float()
    return logits if temperature == 1.0 else logits / temperature


def completion_log_probs(
    model,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    *,
    temperature: float = 1.0,
) -> torch.Tensor:
    """log π(o_{i,t} | q_i, o_{i,<t}) for every completion token, shape ``(batch, completion tokens)``, 0 where
    masked. Logits are divided by ``temperature``, the sampler's (see :func:`completion_logits`). Gradients flow
    unless called under ``torch.no_grad()``.
    """
    logits = completion_logits(model, prompt_ids, prompt_mask, completion_ids, completion_mask, temperature=temperature)
    # log softmax at the chosen token: logit − logsumexp(logits), without a second vocabulary-sized tensor
    chosen = logits.gather(-1, completion_ids.to(logits.device).unsqueeze(-1)).squeeze(-1)
    logps = chosen - torch.logsumexp(logits, dim=-1)
    return logps * completion_mask.to(logits.device)


@contextlib.contextmanager
def in_eval_mode(*models):
    """Dropout off while sampling and scoring (so ρ = 1 exactly before the first update); modes restored after."""
    models = [m for m in models if m is not None]
    modes = [m.training for m in models]
    for m in models:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(models, modes, strict=True):
            m.train(mode)


def _rng_context(model, seed: int):
    """Fork torch's global generator(s) and seed them, so sampling is reproducible and leaves no trace outside."""
    device = next(model.parameters()).device
    devices = [device.index or 0] if device.type == "cuda" else []
    stack = contextlib.ExitStack()
    stack.enter_context(torch.random.fork_rng(devices=devices))
    torch.manual_seed(seed)
    return stack


def sample_groups(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    group_size: int,
    max_new_tokens: int,
    seed: int,
    temperature: float = 1.0,
    add_special_tokens: bool = True,
) -> Rollouts:
    """Sample ``group_size`` completions of each prompt from the model, reproducibly under ``seed``.

    GRPO's "sample a group of outputs {o_i} from π_θold(·|q)": ``generate`` with ``num_return_sequences`` =
    G, pure sampling at ``temperature`` (top-k and top-p off). The G completions of a prompt are consecutive rows.
    """
    check_int("group_size", group_size, minimum=1)
    check_int("max_new_tokens", max_new_tokens, minimum=1)
    check_int("seed", seed, minimum=0)
    check_float("temperature", temperature, minimum=1e-6)
    prompt_ids, prompt_mask = encode_prompts(tokenizer, prompts, add_special_tokens)
    device = next(model.parameters()).device
    eos_ids = eos_token_ids(model, tokenizer)
    with torch.no_grad(), _rng_context(model, seed):
        out = model.generate(
            input_ids=prompt_ids.to(device),
            attention_mask=prompt_mask.to(device),
            do_sample=True,
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            num_return_sequences=group_size,
            pad_token_id=_pad_id(tokenizer),
            eos_token_id=eos_ids,
        )
    completion_ids = out[:, prompt_ids.shape[1] :].cpu()
    completion_mask = mask_until_eos(completion_ids, eos_ids)
    completions = tokenizer.batch_decode(
        [ids[mask.bool()] for ids, mask in zip(completion_ids, completion_mask, strict=True)], skip_special_tokens=True
    )
    return Rollouts(
        [p for p in prompts for _ in range(group_size)],
        completions,
        prompt_ids.repeat_interleave(group_size, dim=0),
        prompt_mask.repeat_interleave(group_size, dim=0),
        completion_ids,
        completion_mask,
        group_size,
    )


# --------------------------------------------------------------------------------------------------------------
# One GRPO update
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GRPOConfig:
    """Every size of a GRPO run in one place (defaults: DeepSeekMath's ε = 0.2 and TRL's β = 0.04)."""

    group_size: int = 8  # G completions per prompt
    max_new_tokens: int = 16  # L_max, the longest completion
    beta: float = 0.04  # weight of the KL penalty to the reference policy
    clip_low: float = 0.2  # ε: ratios are clipped to [1 − ε_low, 1 + ε_high]
    clip_high: float | None = None  # ε_high (DAPO's clip-higher); None means ε_low
    temperature: float = 1.0  # sampling temperature, also applied to the log-probabilities
    aggregation: str = "sequence-mean"  # one of AGGREGATIONS
    advantage_scale: str = "group-std"  # one of ADVANTAGE_SCALES; "none" with "constant" is Dr. GRPO
    inner_updates: int = 1  # μ: gradient steps on one batch of rollouts (ratios ≠ 1 from the second on)
    max_grad_norm: float | None = 1.0  # gradient clipping; None for none
    add_special_tokens: bool = True  # False for prompts a chat template already prefixed with bos

    def __post_init__(self):
        check_int("group_size", self.group_size, minimum=2)
        check_int("max_new_tokens", self.max_new_tokens, minimum=1)
        check_float("beta", self.beta, minimum=0.0)
        check_float("clip_low", self.clip_low, minimum=0.0, maximum=1.0)
        if self.clip_high is not None:
            check_float("clip_high", self.clip_high, minimum=0.0)
        check_float("temperature", self.temperature, minimum=1e-6)
        check_choice("aggregation", self.aggregation, AGGREGATIONS)
        check_choice("advantage_scale", self.advantage_scale, ADVANTAGE_SCALES)
        check_int("inner_updates", self.inner_updates, minimum=1)
        if self.max_grad_norm is not None:
            check_float("max_grad_norm", self.max_grad_norm, minimum=0.0)


@dataclass
class GRPOStep:
    """What one update saw and did: the rollouts, their rewards and advantages ``(prompts, G)``, the loss of each
    inner update, and the diagnostics of the last one (``kl``, ``clip_fraction``, ``ratio``)."""

    rollouts: Rollouts
    rewards: torch.Tensor
    advantages: torch.Tensor
    losses: list[float]
    stats: dict[str, float]

    @property
    def mean_reward(self) -> float:
        return float(self.rewards.mean())


RewardFn = Callable[[list[str], list[str]], Sequence[float]]
"""``reward_fn(prompts, completions) -> rewards``: one reward per row; ``prompts[i]`` is row i's prompt text."""


def score(rollouts: Rollouts, reward_fn: RewardFn) -> torch.Tensor:
    """Rewards r_i of every row, shape ``(prompts, group_size)``."""
    rewards = torch.as_tensor(list(reward_fn(rollouts.prompts, rollouts.completions)), dtype=torch.float32)
    if rewards.shape != (len(rollouts.prompts),):
        raise ParameterError(
            f"reward_fn returned {tuple(rewards.shape)} rewards; expected one per completion ({len(rollouts.prompts)})"
        )
    return rewards.view(rollouts.num_groups, rollouts.group_size)


def grpo_update(
    policy, reference, optimizer, rollouts: Rollouts, rewards: torch.Tensor, config: GRPOConfig
) -> GRPOStep:
    """Advantages from ``rewards`` ``(prompts, G)``, then ``config.inner_updates`` gradient steps on −J(θ).

    π_θold is the policy as it was when this is called (its log-probabilities are frozen); π_ref is ``reference``
    (may be ``None`` when β = 0). Models stay in eval mode (no dropout), so with one inner update ρ = 1 exactly
    and the gradient is the policy gradient Â ∇log π. Rollouts need not come from the policy (mixed groups).
    """
    if config.beta > 0 and reference is None:
        raise ParameterError(f"beta={config.beta} > 0 needs a reference model; pass one or set beta=0")
    if rewards.shape != (rollouts.num_groups, rollouts.group_size):
        raise ParameterError(
            f"rewards has shape {tuple(rewards.shape)}; expected {(rollouts.num_groups, rollouts.group_size)}"
        )
    advantages = group_advantages(rewards, scale=config.advantage_scale)
    batch = (rollouts.prompt_ids, rollouts.prompt_mask, rollouts.completion_ids, rollouts.completion_mask)
    device = next(policy.parameters()).device
    mask, advantages_per_row = rollouts.completion_mask.to(device), advantages.reshape(-1).to(device)
    losses = []
    with in_eval_mode(policy, reference):
        with torch.no_grad():
            # π_θold (frozen before the first update) and π_ref
            old = (
                completion_log_probs(policy, *batch, temperature=config.temperature)
                if config.inner_updates > 1
                else None
            )
            ref = None if config.beta == 0 else completion_log_probs(reference, *batch, temperature=config.temperature)
        for _ in range(config.inner_updates):
            logps = completion_log_probs(policy, *batch, temperature=config.temperature)
            loss, stats = grpo_loss(
                logps,
                logps.detach() if old is None else old,
                advantages_per_row,
                mask,
                ref_logps=None if ref is None else ref.to(device),
                beta=config.beta,
                clip_low=config.clip_low,
                clip_high=config.clip_high,
                aggregation=config.aggregation,
                max_completion_length=config.max_new_tokens,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
            optimizer.step()
            losses.append(float(loss.detach()))
    return GRPOStep(rollouts, rewards, advantages, losses, stats)


def grpo_step(
    policy,
    reference,
    optimizer,
    tokenizer,
    prompts: Sequence[str],
    reward_fn: RewardFn,
    *,
    seed: int,
    config: GRPOConfig | None = None,
) -> GRPOStep:
    """One GRPO iteration (DeepSeekMath Algorithm 1, inner loop): sample G completions per prompt from the current
    policy, score them with ``reward_fn``, and update the policy on the clipped, KL-penalised objective."""
    config = GRPOConfig() if config is None else config
    with in_eval_mode(policy):
        rollouts = sample_groups(
            policy,
            tokenizer,
            prompts,
            group_size=config.group_size,
            max_new_tokens=config.max_new_tokens,
            seed=seed,
            temperature=config.temperature,
            add_special_tokens=config.add_special_tokens,
        )
    return grpo_update(policy, reference, optimizer, rollouts, score(rollouts, reward_fn), config)
