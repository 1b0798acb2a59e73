"""Strategy-Guided Policy Optimization (SGPO): distil what a strategy changes, not the trajectory it produced.

Shi et al. 2026 (arXiv 2606.24064). Only the abstract and introduction are known, so the loss below is
*reconstructed* from them (``../shared/research/sgpo.md``): for each problem x the policy samples an **autonomous**
group from π(·|x) and a **strategy-guided** group from π(·|x, s), where s is a short strategy description. SGPO then

* trains the autonomous group with GRPO (:mod:`llmtheory.grpo`), and
* moves the shift that s causes into the unguided policy with a token-level **forward KL**, over the whole
  vocabulary, on the guided rollouts' tokens, under a proximal mask, with an adaptive per-instance weight
  (sgpo-eq-sgpo-loss):

      L(θ) = L_GRPO(autonomous group)
             + λ Σ_i w_i · 1/|y_i| Σ_t m_{i,t} KL( SG[π_θold(·|x_i, s_i, y_{i,<t})] ‖ π_θ(·|x_i, y_{i,<t}) ),

  with y_i ~ π_θold(·|x_i, s_i) a guided rollout.

The baselines the paper names are SFT, on-policy RL (GRPO) and a hybrid (LUFFY, Yan et al. 2025, arXiv 2504.14945:
teacher traces mixed into the groups, off-policy tokens reshaped by f(π) = π/(π+γ)); the control for "beyond
trajectory imitation" is SFT on the strategy-guided samples themselves. Every arm is one function
(:func:`sft_step`, :func:`grpo_arm_step`, :func:`luffy_step`, :func:`sgpo_step`, :func:`imitation_step`) that counts
its compute (:class:`Compute`), so a chapter compares arms at an equal number of generated tokens.

**The task family.** A problem is a short digit sequence (the query) and one of K procedures (reverse, sort, running
sum mod 10, every second digit; optionally rotate left). The prompt never names the procedure: it shows ``n_demos``
input → output demonstrations of it, then the query, so the policy must *infer* the procedure from the
demonstrations (the demonstrations are drawn so that no other procedure of the family fits them). We chose
demonstrations over an ambiguous instruction word because the procedure is then a property of the problem that
the unguided policy can learn to read off its own input, which is what SGPO's distillation into π(·|x) needs; an
ambiguous word would either be memorisable (no inference) or undecidable from x (nothing to distil). The strategy s
names the procedure and adds one hint. Its source is a **privileged policy**: the generator, which knows each
problem's procedure. The paper extracts s from a strong model's responses; at toy scale a stronger zoo model would
only reproduce the procedure name with some noise, so the privileged source isolates what the chapter measures (how
s is distilled), at the cost of s being always right.

The abstract says "forward KL"; which distribution that puts first (here the strategy-conditioned one, the
mass-covering direction) is our reading. Also ours, not the paper's (its equations are unknown): the normaliser
1/|y_i|, the symmetric proximal mask on the unguided ratio, the two instance-weight rules, and the labelling of
strategy-critical tokens (:func:`label_tokens`). The default family has four procedures (:data:`FAMILY`); ``rotate``
is a fifth for exercises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from . import grpo
from .params import Choice, Model, ParameterError, Real, check_choice, check_float, check_int
from .seeding import make_rng

# --------------------------------------------------------------------------------------------------------------
# The task family: procedures, problems, splits, verifier
# --------------------------------------------------------------------------------------------------------------

MODULUS = 10
"""Digits are 0..9; the running sum is taken mod 10 so that every output is a digit."""


def _running_sum(digits: tuple[int, ...]) -> tuple[int, ...]:
    total, out = 0, []
    for d in digits:
        total = (total + d) % MODULUS
        out.append(total)
    return tuple(out)


PROCEDURES: dict[str, Callable[[tuple[int, ...]], tuple[int, ...]]] = {
    "reverse": lambda xs: tuple(xs[::-1]),
    "sort": lambda xs: tuple(sorted(xs)),
    "cumsum": _running_sum,
    "alternate": lambda xs: tuple(xs[::2]),
    "rotate": lambda xs: tuple(xs[1:]) + tuple(xs[:1]),
}
"""The K procedures: digits → digits. ``alternate`` keeps positions 0, 2, 4, …; ``rotate`` moves the first digit
to the end."""

HINTS: dict[str, str] = {
    "reverse": "start from the last digit",
    "sort": "put the smallest digit first",
    "cumsum": "add each digit to the total mod 10",
    "alternate": "keep one digit then skip one",
    "rotate": "move the first digit to the end",
}
"""One hint per procedure, the second half of a strategy description."""

FAMILY: tuple[str, ...] = ("reverse", "sort", "cumsum", "alternate")
"""The default family (K = 4): the four procedures of the small-scale design in the research notes."""

LENGTHS: tuple[int, ...] = (3, 4, 5)
"""Query lengths of the training distribution."""

OOD_LENGTHS: tuple[int, ...] = (6, 7)
"""Query lengths of the longer-input split (never seen in training, by a query or a demonstration)."""

HELD_OUT: tuple[tuple[str, int], ...] = (("reverse", 5), ("sort", 3), ("cumsum", 4), ("alternate", 5))
"""(procedure, query length) pairs never shown in training, as a query or a demonstration: the unseen-combination
split. Every procedure and every length still occurs in training, only not together."""

SPLITS = ("train", "test", "ood-length", "ood-combination")
"""``test``: the training distribution, queries unseen in training; ``ood-length``: queries of
:data:`OOD_LENGTHS`; ``ood-combination``: the :data:`HELD_OUT` pairs."""

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
ARROW, SEPARATOR = "->", ";"


def apply_procedure(name: str, digits: Sequence[int]) -> tuple[int, ...]:
    """The output of procedure ``name`` on ``digits``."""
    check_choice("procedure", name, PROCEDURES)
    return PROCEDURES[name](tuple(int(d) for d in digits))


def strategy_text(procedure: str) -> str:
    """The strategy description s: the procedure's name plus one hint, e.g. ``strategy : reverse , start from the
    last digit``. Written by the privileged policy (the generator, which knows the procedure)."""
    check_choice("procedure", procedure, PROCEDURES)
    return f"strategy : {procedure} , {HINTS[procedure]}"


def _words(digits: Sequence[int]) -> str:
    return " ".join(str(d) for d in digits)


@dataclass(frozen=True)
class Problem:
    """One problem: a hidden ``procedure``, its ``demos`` (input, output) pairs and the ``query``; ``family`` is
    the set of procedures the problem was drawn from (what :func:`label_tokens` compares against); ``shown``, when
    set, the procedure whose strategy the guided prompt shows instead of the problem's own (the permuted-strategy
    control: a wrong s, the answer unchanged)."""

    procedure: str
    demos: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]
    query: tuple[int, ...]
    family: tuple[str, ...] = FAMILY
    shown: str | None = None

    @property
    def answer(self) -> tuple[int, ...]:
        return apply_procedure(self.procedure, self.query)

    @property
    def answer_text(self) -> str:
        """The correct completion (without ``<eos>``), e.g. ``8 7 2 5``."""
        return _words(self.answer)

    @property
    def strategy(self) -> str:
        """s: the strategy of the problem's procedure (or of ``shown``, when set)."""
        return strategy_text(self.shown or self.procedure)

    def prompt(self, guided: bool = False) -> str:
        """``3 1 4 -> 4 1 3 ; 5 2 7 8 ->`` (x), or with ``guided`` the strategy first: ``strategy : reverse , start
        from the last digit ; 3 1 4 -> …`` (x, s). The procedure's name occurs only in the guided prompt."""
        shown = " ; ".join(f"{_words(i)} {ARROW} {_words(o)}" for i, o in self.demos)
        unguided = f"{shown} {SEPARATOR} {_words(self.query)} {ARROW}"
        return f"{self.strategy} {SEPARATOR} {unguided}" if guided else unguided


def identifiable(procedure: str, demos: Sequence[tuple[Sequence[int], Sequence[int]]], family: Sequence[str]) -> bool:
    """Whether ``demos`` rule out every other procedure of ``family`` (each one disagrees with some demo)."""
    return all(any(apply_procedure(other, i) != tuple(o) for i, o in demos) for other in family if other != procedure)


def _pick(rng: np.random.Generator, values: Sequence):
    """One of ``values`` uniformly: the draw of ``rng.choice(values)`` (the same stream), without its overhead (the
    20,000 problems of a chapter's train split were 6 s of ``choice``)."""
    return values[int(rng.integers(len(values)))]


def make_problem(
    rng: np.random.Generator,
    procedure: str,
    length: int,
    *,
    demo_lengths: Sequence[int] = LENGTHS,
    n_demos: int = 1,
    family: Sequence[str] = FAMILY,
) -> Problem:
    """A problem of ``procedure`` with a random query of ``length`` digits and ``n_demos`` demonstrations (lengths
    drawn from ``demo_lengths``), redrawn until the demonstrations identify the procedure within ``family``."""
    family = tuple(check_choice("family", name, PROCEDURES) for name in family)
    check_choice("procedure", procedure, family)
    check_int("length", length, minimum=2, maximum=16)
    check_int("n_demos", n_demos, minimum=1, maximum=4)
    if not demo_lengths:
        raise ParameterError("demo_lengths must name at least one length")
    query = tuple(int(d) for d in rng.integers(MODULUS, size=length))
    for _ in range(100):
        inputs = [tuple(int(d) for d in rng.integers(MODULUS, size=_pick(rng, demo_lengths))) for _ in range(n_demos)]
        demos = tuple((i, apply_procedure(procedure, i)) for i in inputs)
        if identifiable(procedure, demos, family):
            return Problem(procedure, demos, query, family)
    raise ParameterError(f"no identifying demonstrations of {procedure!r} within family={family} in 100 draws")


def _check_held_out(family: tuple[str, ...], lengths: tuple[int, ...], held_out: tuple[tuple[str, int], ...]):
    for procedure, length in held_out:
        if procedure not in family or length not in lengths:
            raise ParameterError(f"held_out pair {(procedure, length)} is not in family × lengths {family} × {lengths}")
    for procedure in family:
        if all((procedure, n) in held_out for n in lengths):
            raise ParameterError(f"held_out removes every length of {procedure!r}: it would never be trained")


def make_splits(
    seed: int,
    *,
    n_train: int,
    n_test: int,
    n_ood: int,
    family: Sequence[str] = FAMILY,
    lengths: Sequence[int] = LENGTHS,
    ood_lengths: Sequence[int] = OOD_LENGTHS,
    held_out: Sequence[tuple[str, int]] = HELD_OUT,
    n_demos: int = 1,
) -> dict[str, list[Problem]]:
    """The four :data:`SPLITS` as lists of problems, reproducible under ``seed``.

    Train and test draw a procedure uniformly from ``family`` and a query length from those not held out for it;
    demonstrations use only trained (procedure, length) pairs, in every split. Test queries are never training
    queries; ``ood-length`` queries have a length of ``ood_lengths`` (disjoint from ``lengths``);
    ``ood-combination`` queries are the ``held_out`` pairs.
    """
    for name, value in (("n_train", n_train), ("n_test", n_test), ("n_ood", n_ood)):
        check_int(name, value, minimum=1)
    family = tuple(check_choice("family", name, PROCEDURES) for name in family)
    lengths, ood_lengths = tuple(lengths), tuple(ood_lengths)
    held_out = tuple((p, int(n)) for p, n in held_out)
    if set(lengths) & set(ood_lengths) or not lengths or not ood_lengths:
        raise ParameterError(f"ood_lengths={ood_lengths} must be non-empty and disjoint from lengths={lengths}")
    _check_held_out(family, lengths, held_out)
    trained = {p: tuple(n for n in lengths if (p, n) not in held_out) for p in family}

    def draw(rng, procedure: str, length: int) -> Problem:
        return make_problem(rng, procedure, length, demo_lengths=trained[procedure], n_demos=n_demos, family=family)

    def in_distribution(rng) -> Problem:
        procedure = _pick(rng, family)
        return draw(rng, procedure, _pick(rng, trained[procedure]))

    rng = make_rng(seed, "sgpo", "train")
    train = [in_distribution(rng) for _ in range(n_train)]
    seen = {p.query for p in train}
    rng, test = make_rng(seed, "sgpo", "test"), []
    for _ in range(100 * n_test):
        if len(test) == n_test:
            break
        problem = in_distribution(rng)
        if problem.query not in seen:
            test.append(problem)
            seen.add(problem.query)
    if len(test) < n_test:
        raise ParameterError(f"n_test={n_test}: too few queries left outside the training set")
    rng = make_rng(seed, "sgpo", "ood-length")
    longer = [draw(rng, _pick(rng, family), _pick(rng, ood_lengths)) for _ in range(n_ood)]
    rng = make_rng(seed, "sgpo", "ood-combination")
    unseen = [draw(rng, *held_out[int(rng.integers(len(held_out)))]) for _ in range(n_ood)] if held_out else []
    return {"train": train, "test": test, "ood-length": longer, "ood-combination": unseen}


def verify(problem: Problem, completion: str) -> float:
    """The verifier: reward 1.0 for an exact match of the answer's digits (whitespace-separated), else 0.0."""
    return float(completion.split() == problem.answer_text.split())


def reward_function(problems: Sequence[Problem]) -> grpo.RewardFn:
    """A :data:`llmtheory.grpo.RewardFn` for ``problems``: it finds each row's problem by its prompt text (guided
    or not) and applies :func:`verify`."""
    by_prompt = {p.prompt(guided): p for p in problems for guided in (False, True)}

    def reward(prompts: list[str], completions: list[str]) -> list[float]:
        missing = [q for q in prompts if q not in by_prompt]
        if missing:
            raise ParameterError(f"reward for a prompt of no known problem: {missing[0]!r}")
        return [verify(by_prompt[q], c) for q, c in zip(prompts, completions, strict=True)]

    return reward


CRITICAL, ROUTINE, OFF_PATH = "critical", "routine", "off-path"
TOKEN_LABELS = (CRITICAL, ROUTINE, OFF_PATH)


def label_tokens(problem: Problem, tokens: Sequence[str]) -> list[str]:
    """Label each token of a completion (words, ``<eos>`` included) from the problem alone, fixed before any run.

    At position t, take the procedures of ``problem.family`` whose answer on the query (followed by ``<eos>``)
    starts with the completion's tokens y_<t. The token is **critical** when those procedures disagree on the
    token at t (the procedure decides it: typically the first output token, and wherever the answers of
    procedures that agreed so far part), **routine** when they all agree (executing a procedure already chosen:
    copying, the end of the answer), and **off-path** when no procedure fits y_<t any more (the completion already
    left every procedure's answer). Which procedure is *correct* plays no role, so the labels of a wrong completion
    mean the same as those of a right one.
    """
    answers = [tuple(str(d) for d in apply_procedure(k, problem.query)) + (EOS,) for k in problem.family]
    labels = []
    for t in range(len(tokens)):
        prefix = tuple(tokens[:t])
        following = {a[t] for a in answers if len(a) > t and a[:t] == prefix}
        labels.append(OFF_PATH if not following else CRITICAL if len(following) > 1 else ROUTINE)
    return labels


# --------------------------------------------------------------------------------------------------------------
# Tokenizer, prompt texts and a tiny policy
# --------------------------------------------------------------------------------------------------------------


def vocabulary() -> list[str]:
    """Special tokens, digits, punctuation, then every word of the strategies (about 45 tokens)."""
    words = [PAD, UNK, BOS, EOS, *(str(d) for d in range(MODULUS)), ARROW, SEPARATOR, ":", ","]
    for procedure in PROCEDURES:
        for word in strategy_text(procedure).split():
            if word not in words:
                words.append(word)
    return words


def build_tokenizer(model_max_length: int = 256):
    """A word-level ``PreTrainedTokenizerFast`` over :func:`vocabulary` that adds ``<bos>`` and pads on the left."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(vocabulary())}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, vocab[BOS])])
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token=UNK, pad_token=PAD, bos_token=BOS,
                                   eos_token=EOS, padding_side="left", model_max_length=model_max_length)  # fmt: skip


def training_text(problem: Problem, guided: bool) -> str:
    """A whole example for pre-training the base policy: the prompt (with or without s), the answer, ``<eos>``."""
    return f"{problem.prompt(guided)} {problem.answer_text} {EOS}"


def build_policy(tokenizer, *, seed: int, n_layer: int = 2, n_embd: int = 64, n_head: int = 2, n_positions: int = 128):
    """A randomly initialised GPT-2 over ``tokenizer`` (dropout off, so sampling and scoring agree)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    check_int("seed", seed, minimum=0)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_positions=n_positions,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config).eval()


# --------------------------------------------------------------------------------------------------------------
# The losses, term by term (tensors in, tensors out)
# --------------------------------------------------------------------------------------------------------------


def sft_loss(logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token NLL of teacher (or imitated) trajectories (sgpo-eq-sft):

        L_SFT(θ) = −1/Σ_i|y_i| Σ_i Σ_t log π_θ(y_{i,t} | x_i, y_{i,<t}).

    ``logps`` and ``mask`` are ``(batch, tokens)``; every token weighs the same (token mean).
    """
    # −log π_θ(y_t | x, y_<t), averaged over all tokens of the batch
    return grpo.aggregate(-logps, mask, aggregation="token-mean")


def policy_shaping(probs: torch.Tensor, gamma: float) -> torch.Tensor:
    """LUFFY's policy shaping f(π) = π / (π + γ) (sgpo-eq-luffy-shaping), applied to π_θ of an off-policy token.

    Its gradient with respect to log π is γπ/(π+γ)²: small both for tokens the policy already predicts (π ≫ γ) and
    for tokens it finds very unlikely (π ≪ γ), largest at π = γ, which keeps low-probability teacher tokens learning
    without the unbounded 1/π weight of an importance ratio.
    """
    check_float("gamma", gamma, minimum=1e-9)
    return probs / (probs + gamma)


def luffy_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    off_policy: torch.Tensor,
    *,
    gamma: float = 0.1,
    clip_low: float = 0.2,
    clip_high: float | None = None,
    aggregation: str = "token-mean",
    max_completion_length: int | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The mixed-policy objective of LUFFY with policy shaping (sgpo-eq-luffy), Yan et al. 2025:

        J(θ) = 1/Z [ Σ_{j ∈ off} Σ_t f(π_θ(τ_{j,t} | x, τ_{j,<t})) Â_j + Σ_{i ∈ on} Σ_t min(ρ_{i,t} Â_i,
                      clip(ρ_{i,t}, 1−ε, 1+ε) Â_i) ],     Z = Σ_j |τ_j| + Σ_i |o_i|,

    with Â from the mixed group's rewards (teacher traces included), f = :func:`policy_shaping`, and the teacher's
    own probability π_φ taken as 1 (so its "ratio" is π_θ itself, and it is not clipped). ``off_policy`` is a
    ``(batch,)`` boolean marking the teacher rows. π_φ = 1, γ = 0.1 and the unclipped teacher term are as in the
    LUFFY code's ``compute_token_on_off_policy_loss`` (``off_policy_reshape="p_div_p_0.1"``, read 2026-12-06); its
    released training scripts also drop the on-policy clip, the std in Â and the token mean (Σ ÷ L_max, Dr. GRPO):
    ``aggregation="constant"`` with ``max_completion_length`` gives that normaliser, ``clip_low=1.0`` and a large
    ``clip_high`` remove the clip. Returns ``(−J, stats)``.
    """
    off = off_policy.to(logps.device).bool().reshape(-1, 1)
    # on-policy rows: GRPO's clipped surrogate
    on_terms = grpo.clipped_surrogate(
        grpo.token_ratios(logps, old_logps), advantages, clip_low=clip_low, clip_high=clip_high
    )
    # off-policy rows: f(π_θ) Â, no ratio to the teacher, no clip
    off_terms = policy_shaping(torch.exp(logps), gamma) * advantages.reshape(-1, 1)
    per_token = torch.where(off, off_terms, on_terms)
    # 1/Z over every token of the mixed batch
    loss = -grpo.aggregate(per_token, mask, aggregation=aggregation, max_completion_length=max_completion_length)
    with torch.no_grad():
        off_mask = mask.bool() & off
        stats = {"off_policy_prob": float(torch.exp(logps)[off_mask].mean()) if off_mask.any() else float("nan")}
    return loss, stats


def forward_kl(target_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """Per-token forward KL over the whole vocabulary (sgpo-eq-forward-kl), shape ``(batch, tokens)``:

        KL(p ‖ q_θ) = Σ_v p(v) [log p(v) − log q_θ(v)],   p = softmax(target), q_θ = softmax(student).

    The target is detached (SG[·]). Forward KL is mass-covering: it is large where p puts mass that q_θ lacks, and
    a token where guided and unguided contexts already agree contributes nothing, whatever was sampled there.
    *Reconstructed*: the abstract says "forward KL"; that the guided distribution comes first (p = guided target,
    q_θ = unguided student) is our reading.
    """
    target = torch.log_softmax(target_logits.detach().float(), dim=-1)
    student = torch.log_softmax(student_logits.float(), dim=-1)
    return (target.exp() * (target - student)).sum(dim=-1)


def proximal_mask(logps: torch.Tensor, old_logps: torch.Tensor, eps: float) -> torch.Tensor:
    """m_t (sgpo-eq-proximal-mask, *reconstructed*): 1 where the unguided ratio π_θ(y_t|x,y_<t)/π_θold(y_t|x,y_<t)
    of the guided rollout's token lies in [1 − ε, 1 + ε], else 0 (no gradient). Computed without gradient."""
    check_float("proximal_clip", eps, minimum=0.0)
    with torch.no_grad():
        ratio = torch.exp(logps.detach() - old_logps.detach())
        return ((ratio >= 1.0 - eps) & (ratio <= 1.0 + eps)).to(logps.dtype)


INSTANCE_WEIGHTS = ("gain", "deficit", "constant")
"""``gain``: w_i = clip(acc_guided − acc_auto, 0, 1); ``deficit``: w_i = 1 − acc_auto; ``constant``: w_i = 1 (the
ablation without "when to distil")."""

PARAMETERS = {"MODEL": Model(), "KL_WEIGHT": Real(0.0, 10.0), "INSTANCE_WEIGHT": Choice(*INSTANCE_WEIGHTS)}
"""The chapter's parameters besides ``SCALE`` and ``SEED``: the base policy (a zoo name, a local folder or a hub id),
SGPO's λ (``SGPOConfig.kl_weight``) and its instance-weight rule (:data:`INSTANCE_WEIGHTS`)."""


def instance_weights(acc_guided: torch.Tensor, acc_auto: torch.Tensor, rule: str = "gain") -> torch.Tensor:
    """The adaptive per-instance weight w_i (sgpo-eq-instance-weight, *reconstructed*), one per problem.

    ``gain``: w_i = clip(acc_guided,i − acc_auto,i, 0, 1), the marginal benefit of the strategy on problem i;
    ``deficit``: w_i = 1 − acc_auto,i, how far autonomous exploration falls short. Both shrink to 0 as the unguided
    policy masters problem i. Accuracies are the fractions of correct rollouts in each group.
    """
    check_choice("instance_weight", rule, INSTANCE_WEIGHTS)
    if acc_guided.shape != acc_auto.shape:
        raise ParameterError(f"acc_guided {tuple(acc_guided.shape)} and acc_auto {tuple(acc_auto.shape)} differ")
    if rule == "gain":
        return (acc_guided.float() - acc_auto.float()).clamp(0.0, 1.0)
    if rule == "deficit":
        return 1.0 - acc_auto.float()
    return torch.ones_like(acc_auto, dtype=torch.float32)


def sgpo_distillation_term(
    target_logits: torch.Tensor,
    student_logits: torch.Tensor,
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    mask: torch.Tensor,
    weights: torch.Tensor,
    *,
    proximal_clip: float = 0.2,
    aggregation: str = "sequence-mean",
) -> tuple[torch.Tensor, dict[str, float]]:
    """The distillation term of sgpo-eq-sgpo-loss, Σ_i w_i · 1/|y_i| Σ_t m_{i,t} KL_{i,t} averaged over rows.

    ``target_logits`` are π_θold's after (x, s, y_<t), ``student_logits`` π_θ's after (x, y_<t), both
    ``(batch, tokens, vocabulary)`` on the same guided completions; ``logps``/``old_logps`` are the unguided
    log-probabilities of the sampled tokens now and before the update (for m_t); ``weights`` is one w_i per row.
    The aggregation is GRPO's (``"sequence-mean"`` gives the 1/|y_i| above). *Reconstructed*.
    """
    # KL(SG[π_old(·|x,s,y<t)] ‖ π_θ(·|x,y<t)) per token
    kl = forward_kl(target_logits, student_logits)
    # m_t: the proximal mask on the unguided ratio
    m = proximal_mask(logps, old_logps, proximal_clip)
    # w_i · m_t · KL_t, then 1/|y_i| Σ_t and the mean over rows
    term = grpo.aggregate(weights.to(kl.device).reshape(-1, 1) * m * kl, mask, aggregation=aggregation)
    with torch.no_grad():
        token_mean = {"aggregation": "token-mean"}
        stats = {
            "distill_kl": float(grpo.aggregate(kl, mask, **token_mean)),
            "proximal_kept": float(grpo.aggregate(m, mask, **token_mean)),
        }
    return term, stats


# --------------------------------------------------------------------------------------------------------------
# Compute accounting and the arms' configuration
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Compute:
    """What an arm spent: sampled ``rollouts`` and their ``generated_tokens`` (up to and including ``<eos>``),
    ``teacher_traces`` and their ``teacher_tokens`` (given, not generated), and optimizer ``updates``."""

    rollouts: int = 0
    generated_tokens: int = 0
    teacher_traces: int = 0
    teacher_tokens: int = 0
    updates: int = 0

    def __add__(self, other: Compute) -> Compute:
        return Compute(**{k: getattr(self, k) + getattr(other, k) for k in self.__dataclass_fields__})

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _default_grpo() -> grpo.GRPOConfig:
    return grpo.GRPOConfig(group_size=4, max_new_tokens=10, beta=0.0)


@dataclass(frozen=True)
class SGPOConfig:
    """Every size of every arm in one place. ``grpo`` holds the group size G, L_max, β, ε, temperature,
    aggregation and inner updates shared by GRPO, LUFFY and SGPO (β = 0 by default: no reference model)."""

    grpo: grpo.GRPOConfig = field(default_factory=_default_grpo)
    kl_weight: float = 1.0  # λ, weight of the distillation term
    proximal_clip: float = 0.2  # ε of the proximal mask m_t
    instance_weight: str = "gain"  # one of INSTANCE_WEIGHTS
    teacher_traces: int = 1  # LUFFY: k teacher traces per group, G − k sampled
    shaping_gamma: float = 0.1  # LUFFY's γ in f(π) = π/(π+γ)
    imitate_only_correct: bool = True  # imitation arm: keep only the guided samples the verifier accepts

    def __post_init__(self):
        if not isinstance(self.grpo, grpo.GRPOConfig):
            raise ParameterError(f"grpo={self.grpo!r} must be a llmtheory.grpo.GRPOConfig")
        check_float("kl_weight", self.kl_weight, minimum=0.0)
        check_float("proximal_clip", self.proximal_clip, minimum=0.0)
        check_choice("instance_weight", self.instance_weight, INSTANCE_WEIGHTS)
        check_int("teacher_traces", self.teacher_traces, minimum=1, maximum=self.grpo.group_size - 1)
        check_float("shaping_gamma", self.shaping_gamma, minimum=1e-9)
        check_choice("imitate_only_correct", self.imitate_only_correct, (True, False))


@dataclass
class ArmStep:
    """One update of one arm: its ``loss`` (of the last inner update), diagnostics, the ``compute`` it spent, and
    where the arm sampled them, the rewards ``(problems, group)`` of the autonomous and guided groups and the
    instance weights (SGPO)."""

    arm: str
    loss: float
    stats: dict[str, float]
    compute: Compute
    rewards_auto: torch.Tensor | None = None
    rewards_guided: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    rollouts: dict[str, grpo.Rollouts] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------------------
# The model side: one update of each arm
# --------------------------------------------------------------------------------------------------------------


def _check_problems(problems: Sequence[Problem]) -> list[Problem]:
    if isinstance(problems, Problem) or not problems or not all(isinstance(p, Problem) for p in problems):
        raise ParameterError("problems must be a non-empty list of sgpo.Problem")
    return list(problems)


def _batch(rollouts: grpo.Rollouts) -> tuple[torch.Tensor, ...]:
    return rollouts.prompt_ids, rollouts.prompt_mask, rollouts.completion_ids, rollouts.completion_mask


def sample(policy, tokenizer, problems: Sequence[Problem], *, guided: bool, group_size: int, seed: int,
           config: grpo.GRPOConfig) -> grpo.Rollouts:  # fmt: skip
    """``group_size`` completions per problem from π(·|x) or, with ``guided``, π(·|x, s), reproducibly under
    ``seed`` (:func:`llmtheory.grpo.sample_groups` with ``config``'s length and temperature)."""
    with grpo.in_eval_mode(policy):
        return grpo.sample_groups(
            policy, tokenizer, [p.prompt(guided) for p in problems], group_size=group_size,
            max_new_tokens=config.max_new_tokens, seed=seed, temperature=config.temperature,
            add_special_tokens=config.add_special_tokens,
        )  # fmt: skip


def _sub_seed(seed: int, key: str) -> int:
    return int(make_rng(seed, "sgpo", key).integers(2**31))


def with_prompts(rollouts: grpo.Rollouts, tokenizer, prompts: Sequence[str], add_special_tokens: bool = True):
    """The same completions (ids and mask unchanged) after other prompts, one per row: guided rollouts scored in
    the unguided context π(·|x, y_<t)."""
    if len(prompts) != len(rollouts.prompts):
        raise ParameterError(f"{len(prompts)} prompts for {len(rollouts.prompts)} rows")
    prompt_ids, prompt_mask = grpo.encode_prompts(tokenizer, list(prompts), add_special_tokens)
    return grpo.Rollouts(
        list(prompts), rollouts.completions, prompt_ids, prompt_mask, rollouts.completion_ids,
        rollouts.completion_mask, rollouts.group_size,
    )  # fmt: skip


def _optimise(policy, optimizer, loss: torch.Tensor, max_grad_norm: float | None) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
    optimizer.step()


def _sft_update(policy, optimizer, rollouts: grpo.Rollouts, config: grpo.GRPOConfig) -> float:
    with grpo.in_eval_mode(policy):
        logps = grpo.completion_log_probs(policy, *_batch(rollouts), temperature=1.0)
        loss = sft_loss(logps, rollouts.completion_mask.to(logps.device))
        _optimise(policy, optimizer, loss, config.max_grad_norm)
    return float(loss.detach())


def sft_step(policy, optimizer, tokenizer, problems: Sequence[Problem], *, config: SGPOConfig | None = None) -> ArmStep:
    """SFT on teacher trajectories: one correct answer per problem after the unguided prompt, one NLL step
    (sgpo-eq-sft). Costs teacher tokens, no rollouts."""
    config, problems = config or SGPOConfig(), _check_problems(problems)
    teacher = grpo.encode_rollouts(
        tokenizer, [p.prompt() for p in problems], [p.answer_text for p in problems], group_size=1,
        add_special_tokens=config.grpo.add_special_tokens,
    )  # fmt: skip
    loss = _sft_update(policy, optimizer, teacher, config.grpo)
    compute = Compute(teacher_traces=len(problems), teacher_tokens=teacher.num_completion_tokens, updates=1)
    return ArmStep("sft", loss, {}, compute, rollouts={"teacher": teacher})


def grpo_arm_step(
    policy, optimizer, tokenizer, problems: Sequence[Problem], *, seed: int, config: SGPOConfig | None = None,
    reference=None,
) -> ArmStep:  # fmt: skip
    """On-policy RL: one :func:`llmtheory.grpo.grpo_step` on the unguided prompts with the verifier's reward."""
    config, problems = config or SGPOConfig(), _check_problems(problems)
    step = grpo.grpo_step(
        policy, reference, optimizer, tokenizer, [p.prompt() for p in problems], reward_function(problems),
        seed=seed, config=config.grpo,
    )  # fmt: skip
    compute = Compute(
        rollouts=len(step.rollouts.prompts),
        generated_tokens=step.rollouts.num_completion_tokens,
        updates=config.grpo.inner_updates,
    )
    return ArmStep("grpo", step.losses[-1], step.stats, compute, rewards_auto=step.rewards,
                   rollouts={"auto": step.rollouts})  # fmt: skip


def luffy_step(
    policy, optimizer, tokenizer, problems: Sequence[Problem], *, seed: int, config: SGPOConfig | None = None
) -> ArmStep:
    """LUFFY-style hybrid: G − k sampled completions and k teacher traces per group (``merge_groups``), advantages
    over the mixed group, and :func:`luffy_loss` (clipped surrogate on-policy, f(π)Â off-policy)."""
    config, problems = config or SGPOConfig(), _check_problems(problems)
    settings, k = config.grpo, config.teacher_traces
    sampled = sample(policy, tokenizer, problems, guided=False, group_size=settings.group_size - k, seed=seed,
                      config=settings)  # fmt: skip
    teacher = grpo.encode_rollouts(
        tokenizer, [p.prompt() for p in problems for _ in range(k)],
        [p.answer_text for p in problems for _ in range(k)], group_size=k,
        add_special_tokens=settings.add_special_tokens,
    )  # fmt: skip
    mixed = grpo.merge_groups(sampled, teacher)
    rewards = grpo.score(mixed, reward_function(problems))
    advantages = grpo.group_advantages(rewards, scale=settings.advantage_scale).reshape(-1)
    off_policy = torch.tensor([row % mixed.group_size >= settings.group_size - k for row in range(len(mixed.prompts))])
    device = next(policy.parameters()).device
    mask = mixed.completion_mask.to(device)
    with grpo.in_eval_mode(policy):
        with torch.no_grad():  # π_θold, needed only before a second inner update (as in grpo_update)
            old = (grpo.completion_log_probs(policy, *_batch(mixed), temperature=settings.temperature)
                   if settings.inner_updates > 1 else None)  # fmt: skip
        for _ in range(settings.inner_updates):
            logps = grpo.completion_log_probs(policy, *_batch(mixed), temperature=settings.temperature)
            loss, stats = luffy_loss(
                logps, logps.detach() if old is None else old, advantages.to(device), mask, off_policy,
                gamma=config.shaping_gamma,
                clip_low=settings.clip_low, clip_high=settings.clip_high,
            )  # fmt: skip
            _optimise(policy, optimizer, loss, settings.max_grad_norm)
    compute = Compute(
        rollouts=len(sampled.prompts), generated_tokens=sampled.num_completion_tokens,
        teacher_traces=len(teacher.prompts), teacher_tokens=teacher.num_completion_tokens,
        updates=settings.inner_updates,
    )  # fmt: skip
    rewards_auto = rewards[:, : settings.group_size - k]
    rollouts = {"auto": sampled, "teacher": teacher}
    return ArmStep("luffy", float(loss.detach()), stats, compute, rewards_auto=rewards_auto, rollouts=rollouts)


def sgpo_step(
    policy, optimizer, tokenizer, problems: Sequence[Problem], *, seed: int, config: SGPOConfig | None = None,
    reference=None,
) -> ArmStep:  # fmt: skip
    """One SGPO update (sgpo-eq-sgpo-loss, *reconstructed*).

    1. Sample G autonomous completions from π_θold(·|x) and G guided ones from π_θold(·|x, s); score both.
    2. w_i from the two groups' accuracies (:func:`instance_weights`).
    3. Freeze π_θold's full next-token distributions after (x, s, y_<t) on the guided completions (the target) and
       its unguided log-probabilities of the same tokens (for m_t).
    4. ``inner_updates`` gradient steps on L = L_GRPO(autonomous) + λ · :func:`sgpo_distillation_term`.
    """
    config, problems = config or SGPOConfig(), _check_problems(problems)
    settings = config.grpo
    if settings.beta > 0 and reference is None:
        raise ParameterError(f"beta={settings.beta} > 0 needs a reference model; pass one or set beta=0")
    g = settings.group_size
    auto = sample(policy, tokenizer, problems, guided=False, group_size=g, seed=seed, config=settings)
    guided = sample(policy, tokenizer, problems, guided=True, group_size=g, seed=_sub_seed(seed, "guided"),
                     config=settings)  # fmt: skip
    rewards = reward_function(problems)
    rewards_auto, rewards_guided = grpo.score(auto, rewards), grpo.score(guided, rewards)
    weights = instance_weights(rewards_guided.mean(dim=1), rewards_auto.mean(dim=1), config.instance_weight)
    advantages = grpo.group_advantages(rewards_auto, scale=settings.advantage_scale).reshape(-1)
    student = with_prompts(guided, tokenizer, [p.prompt() for p in problems for _ in range(g)],
                           settings.add_special_tokens)  # fmt: skip
    device = next(policy.parameters()).device
    auto_mask, guided_mask = auto.completion_mask.to(device), guided.completion_mask.to(device)
    row_weights = weights.repeat_interleave(g).to(device)
    t = settings.temperature
    with grpo.in_eval_mode(policy, reference):
        with torch.no_grad():
            # SG[π_θold(·|x, s, y_<t)] and, before a second inner update, π_θold(y_t|x, y_<t) (with one inner update
            # π_θ = π_θold at the only gradient step, so the detached current values are used, as in grpo_update)
            target = grpo.completion_logits(policy, *_batch(guided), temperature=t)
            frozen = settings.inner_updates > 1
            old_student = grpo.completion_log_probs(policy, *_batch(student), temperature=t) if frozen else None
            old_auto = grpo.completion_log_probs(policy, *_batch(auto), temperature=t) if frozen else None
            ref = None if settings.beta == 0 else grpo.completion_log_probs(reference, *_batch(auto), temperature=t)
        for _ in range(settings.inner_updates):
            logps = grpo.completion_log_probs(policy, *_batch(auto), temperature=t)
            rl_loss, stats = grpo.grpo_loss(
                logps, logps.detach() if old_auto is None else old_auto, advantages.to(device), auto_mask,
                ref_logps=ref, beta=settings.beta,
                clip_low=settings.clip_low, clip_high=settings.clip_high, aggregation=settings.aggregation,
                max_completion_length=settings.max_new_tokens,
            )  # fmt: skip
            logits = grpo.completion_logits(policy, *_batch(student), temperature=t)
            chosen = logits.gather(-1, student.completion_ids.to(device).unsqueeze(-1)).squeeze(-1)
            student_logps = (chosen - torch.logsumexp(logits, dim=-1)) * guided_mask
            distill, distill_stats = sgpo_distillation_term(
                target, logits, student_logps, student_logps.detach() if old_student is None else old_student,
                guided_mask, row_weights,
                proximal_clip=config.proximal_clip, aggregation=settings.aggregation,
            )  # fmt: skip
            # L = L_GRPO + λ Σ_i w_i Σ_t m_t KL
            loss = rl_loss + config.kl_weight * distill
            _optimise(policy, optimizer, loss, settings.max_grad_norm)
    stats = {**stats, **distill_stats, "rl_loss": float(rl_loss.detach()), "distill": float(distill.detach()),
             "mean_weight": float(weights.mean())}  # fmt: skip
    compute = Compute(
        rollouts=len(auto.prompts) + len(guided.prompts),
        generated_tokens=auto.num_completion_tokens + guided.num_completion_tokens,
        updates=settings.inner_updates,
    )
    rollouts = {"auto": auto, "guided": guided}
    return ArmStep("sgpo", float(loss.detach()), stats, compute, rewards_auto, rewards_guided, weights, rollouts)


def imitation_step(
    policy, optimizer, tokenizer, problems: Sequence[Problem], *, seed: int, config: SGPOConfig | None = None
) -> ArmStep:
    """The "trajectory imitation" control: sample G completions from π_θold(·|x, s), keep those the verifier accepts
    (all, if ``imitate_only_correct`` is False), and take one NLL step on them after the *unguided* prompt
    (sgpo-eq-sft on y ~ π(·|x, s)). It is the sampled-token version of SGPO's distillation: the same targets, one
    sampled token per position instead of the full guided distribution, and no instance weight."""
    config, problems = config or SGPOConfig(), _check_problems(problems)
    settings, g = config.grpo, config.grpo.group_size
    guided = sample(policy, tokenizer, problems, guided=True, group_size=g, seed=_sub_seed(seed, "guided"),
                     config=settings)  # fmt: skip
    rewards = grpo.score(guided, reward_function(problems))
    student = with_prompts(guided, tokenizer, [p.prompt() for p in problems for _ in range(g)],
                           settings.add_special_tokens)  # fmt: skip
    keep = rewards.reshape(-1) > 0 if config.imitate_only_correct else torch.ones(len(guided.prompts), dtype=bool)
    compute = Compute(rollouts=len(guided.prompts), generated_tokens=guided.num_completion_tokens)
    stats = {"kept": float(keep.float().mean())}
    if not keep.any():
        return ArmStep("imitation", float("nan"), stats, compute, rewards_guided=rewards, rollouts={"guided": guided})
    kept = grpo.Rollouts(
        [q for q, k in zip(student.prompts, keep, strict=True) if k],
        [c for c, k in zip(student.completions, keep, strict=True) if k],
        student.prompt_ids[keep], student.prompt_mask[keep], student.completion_ids[keep],
        student.completion_mask[keep], 1,
    )  # fmt: skip
    loss = _sft_update(policy, optimizer, kept, settings)
    compute.updates = 1
    return ArmStep("imitation", loss, stats, compute, rewards_guided=rewards, rollouts={"guided": guided})


ARMS: dict[str, Callable[..., ArmStep]] = {
    "sft": sft_step,
    "grpo": grpo_arm_step,
    "luffy": luffy_step,
    "sgpo": sgpo_step,
    "imitation": imitation_step,
}
"""Every arm's update, called as ``ARMS[arm](policy, optimizer, tokenizer, problems, seed=…, config=…)``."""


def rollouts_per_problem(arm: str, config: SGPOConfig | None = None) -> tuple[int, int]:
    """``(sampled, teacher)`` completions that one update of ``arm`` spends per problem: SFT (0, 1), GRPO (G, 0),
    LUFFY (G − k, k), SGPO (2G, 0: an autonomous and a guided group), imitation (G, 0). At equal sampled compute,
    SGPO therefore sees half as many problems per update as GRPO."""
    check_choice("arm", arm, ARMS)
    config = config or SGPOConfig()
    g, k = config.grpo.group_size, config.teacher_traces
    return {"sft": (0, 1), "grpo": (g, 0), "luffy": (g - k, k), "sgpo": (2 * g, 0), "imitation": (g, 0)}[arm]


def arm_step(arm: str, policy, optimizer, tokenizer, problems: Sequence[Problem], *, seed: int,
             config: SGPOConfig | None = None) -> ArmStep:  # fmt: skip
    """One update of ``arm`` (one of :data:`ARMS`); ``seed`` drives its sampling (SFT samples nothing)."""
    check_choice("arm", arm, ARMS)
    check_int("seed", seed, minimum=0)
    if arm == "sft":
        return sft_step(policy, optimizer, tokenizer, problems, config=config)
    return ARMS[arm](policy, optimizer, tokenizer, problems, seed=seed, config=config)


# --------------------------------------------------------------------------------------------------------------
# Where the KL mass sits
# --------------------------------------------------------------------------------------------------------------


@dataclass
class TokenKL:
    """Per-token forward KL(π(·|x,s,y_<t) ‖ π(·|x,y_<t)) on guided completions ``(rows, tokens)``, their mask and
    each token's :func:`label_tokens` label (``labels[row][t]``, only for real tokens); ``group_size`` consecutive
    rows belong to one problem; ``eos[row][t]`` says whether the token is an end-of-sequence token (``None``: not
    recorded, no token is)."""

    kl: torch.Tensor
    mask: torch.Tensor
    labels: list[list[str]]
    group_size: int = 1  # completions per problem (consecutive rows)
    eos: list[list[bool]] | None = None

    def is_eos(self, row: int, t: int) -> bool:
        return bool(self.eos is not None and self.eos[row][t])

    def values(self, label: str) -> list[float]:
        """The KL of every token with ``label``."""
        check_choice("label", label, TOKEN_LABELS)
        return [float(self.kl[r, t]) for r, row in enumerate(self.labels) for t, lab in enumerate(row) if lab == label]

    def share(self, label: str) -> float:
        """The fraction of the total KL mass on tokens with ``label``."""
        total = float((self.kl * self.mask).sum())
        return sum(self.values(label)) / total if total > 0 else float("nan")

    def count(self, label: str) -> int:
        return len(self.values(label))


def token_kl_record(policy, tokenizer, problems: Sequence[Problem], guided: grpo.Rollouts, *,
                    temperature: float = 1.0, add_special_tokens: bool = True) -> TokenKL:  # fmt: skip
    """The per-token KL between the guided and unguided policy on guided rollouts (one group of
    ``guided.group_size`` rows per problem, in order), with the labels of :func:`label_tokens`."""
    problems = _check_problems(problems)
    if guided.num_groups != len(problems):
        raise ParameterError(f"{guided.num_groups} groups of rollouts for {len(problems)} problems")
    g = guided.group_size
    student = with_prompts(guided, tokenizer, [p.prompt() for p in problems for _ in range(g)], add_special_tokens)
    with torch.no_grad(), grpo.in_eval_mode(policy):
        target = grpo.completion_logits(policy, *_batch(guided), temperature=temperature)
        logits = grpo.completion_logits(policy, *_batch(student), temperature=temperature)
    mask = guided.completion_mask.to(target.device)
    kl = forward_kl(target, logits) * mask
    eos_ids = grpo.eos_token_ids(policy, tokenizer)
    labels, eos = [], []
    for row in range(len(guided.prompts)):
        ids = guided.completion_ids[row][guided.completion_mask[row].bool()].tolist()
        labels.append(label_token_ids(problems[row // g], tokenizer, ids, eos_ids))
        eos.append([i in eos_ids for i in ids])
    return TokenKL(kl.cpu(), mask.cpu(), labels, g, eos)


def label_token_ids(problem: Problem, tokenizer, ids: Sequence[int], eos_ids: Sequence[int]) -> list[str]:
    """:func:`label_tokens` for token ids of any tokenizer: each id becomes its decoded text without surrounding
    whitespace (an id of ``eos_ids`` becomes ``<eos>``). A token that is whitespace only (a subword tokenizer's space)
    is routine formatting; the others are labelled as words, so a token spanning two digits is off-path."""
    words = [EOS if i in eos_ids else tokenizer.decode([i]).strip() for i in ids]
    spoken = [w for w in words if w]
    labels = iter(label_tokens(problem, spoken))
    return [next(labels) if w else ROUTINE for w in words]
