"""ScaleToT, the method: typed user-state chains, a teacher with a cost per call, bounded entropy-guided
Tree-of-Thought (ToT) refinement, the student's SFT and OSIPO losses, and the pooled representation that a light
profile encoder learns to reproduce.

Only the paper's abstract is known (Ma … Li, Gai, arXiv 2606.24605). What the abstract states: typed user-state
chains built by an LLM teacher for a small subset of users, refined by a *bounded entropy-guided* ToT; a student
trained on static profiles by SFT and then by *OSIPO* (Outcome-Driven Segment-Aware Implicit Reward Policy
Optimization); the student's reasoning representations transferred to a lightweight profile encoder for every other
user. Everything below that goes further is **our reconstruction** and is marked as such: the chain schema, the
entropy rule and its bounds, the chain selection by outcome agreement, the segment rewards and the OSIPO loss, the
pooled representation. Each reconstructed equation has a label ``scaletot-eq-<name>`` in the chapter and is cited
in the docstring of the function that computes it.

The simulation, the training loops and the downstream LTV models live in :mod:`llmtheory.scaletot_experiment`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import torch

from .params import Int, ParameterError, Real, Text

# ---------------------------------------------------------------------------------------------------------
# The chain schema (reconstructed): three typed segments, three values each, in this order

SEGMENTS: tuple[str, ...] = ("intent", "spend", "engagement")
VALUES: dict[str, tuple[str, ...]] = {
    "intent": ("browse", "compare", "buy"),
    "spend": ("low", "mid", "high"),
    "engagement": ("lapsing", "steady", "growing"),
}
N_VALUES = 3

PARAMETERS = {
    "TEACHER": Text(what='"bayes" (the explicit probabilistic reasoner) or a hub id / local folder of a causal LM'),
    "REASONED_SHARE": Real(minimum=0.01, maximum=0.5),
    "ENTROPY_THRESHOLD": Real(minimum=0.0, maximum=float(np.log(N_VALUES))),
    "TOT_WIDTH": Int(minimum=1, maximum=N_VALUES),
    "TOT_DEPTH": Int(minimum=0, maximum=len(SEGMENTS)),
    "BETA": Real(minimum=0.01, maximum=10.0),
}
"""The chapter's parameters besides ``SCALE`` and ``SEED`` (its notebook's ``parameters`` cell)."""


def chain_text(values) -> str:
    """A chain as words: ``intent=buy → spend=high → engagement=steady``."""
    return " → ".join(f"{s}={VALUES[s][int(v)]}" for s, v in zip(SEGMENTS, values, strict=False))


# ---------------------------------------------------------------------------------------------------------
# Entropy and the expansion rule


def entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats of the distributions along ``axis``, as in eq. ``scaletot-eq-entropy``:
    H(p) = −Σ_v p_v log p_v (0 log 0 = 0)."""
    p = np.asarray(p, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis=axis)


def expands(p: np.ndarray, threshold: float) -> bool:
    """The entropy rule of eq. ``scaletot-eq-expand`` (reconstructed): branch on a segment only when the
    teacher's distribution over its values has entropy strictly above ``threshold``."""
    return bool(entropy(p) > threshold)


@dataclass(frozen=True)
class ToTBounds:
    """The bounds of the refinement: the entropy ``threshold`` (nats), the ``width`` (values kept when a segment
    branches) and the ``depth`` (how many segments along one path may branch)."""

    threshold: float = 0.8
    width: int = 2
    depth: int = 2

    def __post_init__(self):
        if not 1 <= self.width <= N_VALUES:
            raise ParameterError(f"TOT_WIDTH={self.width!r} must be between 1 and {N_VALUES}")
        if not 0 <= self.depth <= len(SEGMENTS):
            raise ParameterError(f"TOT_DEPTH={self.depth!r} must be between 0 and {len(SEGMENTS)}")
        if self.threshold < 0:
            raise ParameterError(f"ENTROPY_THRESHOLD={self.threshold!r} must be ≥ 0")

    def max_calls(self) -> int:
        """The most teacher calls one user can cost: every segment of every path branches while depth allows."""
        return sum(self.width ** min(level, self.depth) for level in range(len(SEGMENTS)))

    def max_leaves(self) -> int:
        return self.width ** min(self.depth, len(SEGMENTS))


# ---------------------------------------------------------------------------------------------------------
# The teacher: an explicit probabilistic reasoner over the latent types, with a cost per call


@dataclass
class BayesTeacher:
    """The CPU teacher: Bayes' rule over the 27 joint user states under the teacher's *belief* about the world
    (its prior, the profile likelihood and an additive LTV model; all possibly misspecified).

    ``joint_posterior`` is computed once per user from the profile (eq. ``scaletot-eq-posterior``); each
    :meth:`segment_distribution` is one *call*, the distribution over one segment's values given the profile and the
    values already chosen for the earlier segments. ``calls`` counts them, the cost the chapter reports.
    """

    log_prior: np.ndarray  # (3, 3, 3): log p(intent, spend, engagement)
    means: np.ndarray  # (F, 3): the teacher's belief of feature f's mean for each value of its segment
    feature_segment: np.ndarray  # (F,): which segment feature f reports on
    noise: np.ndarray  # (F, 2): the teacher's noise s.d. of feature f for low (0) / high (1) activity
    ltv_intercept: float
    ltv_effects: np.ndarray  # (3, 3): additive effect of each segment's value on log LTV
    ltv_noise: float
    calls: int = field(default=0)

    def joint_posterior(self, profile: np.ndarray, activity: np.ndarray) -> np.ndarray:
        """p(z | x) for each user over the joint states z = (intent, spend, engagement), eq.
        ``scaletot-eq-posterior``: log p(z) + Σ_{f observed} log N(x_f; μ_f[z_{s(f)}], σ_f²), normalised. Missing
        features drop out of the sum (missing at random). Returns (n, 3, 3, 3)."""
        profile = np.atleast_2d(np.asarray(profile, float))
        activity = np.atleast_1d(np.asarray(activity, int))
        log_post = np.broadcast_to(self.log_prior, (len(profile), N_VALUES, N_VALUES, N_VALUES)).copy()
        for f, segment in enumerate(self.feature_segment):
            x = profile[:, f]
            seen = ~np.isnan(x)
            sd = self.noise[f, activity]
            # log N(x; μ_v, σ²) for each value v of this feature's segment, 0 where x is missing
            ll = -0.5 * ((np.where(seen, x, 0.0)[:, None] - self.means[f][None, :]) / sd[:, None]) ** 2
            ll = np.where(seen[:, None], ll - np.log(sd)[:, None], 0.0)
            shape = [len(profile), 1, 1, 1]
            shape[1 + segment] = N_VALUES
            log_post += ll.reshape(shape)
        log_post -= log_post.max(axis=(1, 2, 3), keepdims=True)
        post = np.exp(log_post)
        return post / post.sum(axis=(1, 2, 3), keepdims=True)

    def segment_distribution(self, joint: np.ndarray, prefix: tuple[int, ...]) -> np.ndarray:
        """One teacher call: p(z_s | x, z_<s = prefix) for the next segment s = len(prefix), from one user's joint
        posterior (3, 3, 3)."""
        self.calls += 1
        conditional = joint[prefix] if prefix else joint
        marginal = conditional.reshape(N_VALUES, -1).sum(axis=1)
        return marginal / marginal.sum()

    def implied_ltv(self, chain) -> float:
        """The teacher's expected log LTV of a complete chain (its additive model)."""
        return float(self.ltv_intercept + sum(self.ltv_effects[s, int(v)] for s, v in enumerate(chain)))

    def prior_segment_means(self) -> np.ndarray:
        """E[effect_s] under the teacher's prior marginal of each segment: the expected contribution of a segment
        whose value is not chosen yet."""
        prior = np.exp(self.log_prior)
        marginals = [prior.sum(axis=tuple(a for a in range(3) if a != s)) for s in range(3)]
        return np.array([float(m @ self.ltv_effects[s]) for s, m in enumerate(marginals)])


# ---------------------------------------------------------------------------------------------------------
# Bounded entropy-guided Tree-of-Thought


@dataclass(frozen=True)
class ToTResult:
    """One user's refinement: the chain chosen, the greedy chain, the leaves explored and the calls it cost."""

    chain: tuple[int, ...]
    greedy: tuple[int, ...]
    leaves: tuple[tuple[int, ...], ...]
    leaf_log_probs: tuple[float, ...]
    calls: int


def node_index(prefix: tuple[int, ...]) -> int:
    """The position of the tree node after ``prefix`` in level order (root 0, then the three nodes after one
    value, then the nine after two): where :class:`RandomBranching` reads the node's coin."""
    before = sum(N_VALUES**level for level in range(len(prefix)))
    return before + sum(int(v) * N_VALUES ** (len(prefix) - 1 - k) for k, v in enumerate(prefix))


N_NODES = sum(N_VALUES**level for level in range(len(SEGMENTS)))  # nodes a full tree can ask about (13)


@dataclass(frozen=True)
class RandomBranching:
    """A branching rule that ignores the teacher's entropy (a control added after review): the node after prefix
    c_<s branches when its coin ``uniforms[..., node_index(c_<s)]`` is below ``rate``. One row of ``uniforms``
    (13 numbers) per user, drawn once, so that a higher ``rate`` only adds branchings
    (:func:`match_branching_rate` relies on it). The width and depth bounds apply as for the entropy rule."""

    uniforms: np.ndarray  # (N_NODES,) for one user or (n, N_NODES) for many
    rate: float

    def __call__(self, p: np.ndarray, nodes) -> np.ndarray | bool:
        coins = np.asarray(self.uniforms)
        if coins.ndim == 1:
            return bool(coins[int(nodes)] < self.rate)
        return np.take_along_axis(coins, np.asarray(nodes)[:, None], axis=1)[:, 0] < self.rate

    def user(self, k: int) -> RandomBranching:
        return RandomBranching(np.asarray(self.uniforms)[k], self.rate)


def expand_tree(
    teacher, joint: np.ndarray, bounds: ToTBounds, branching=None
) -> tuple[list[tuple[int, ...]], list[float], int]:
    """Grow the bounded tree of eq. ``scaletot-eq-expand`` (reconstructed) for one user: at each segment ask the
    teacher for its distribution (one call per node); if its entropy exceeds ``bounds.threshold`` and fewer than
    ``bounds.depth`` segments on this path have branched, keep the ``bounds.width`` most probable values, otherwise
    only the most probable one. Returns the complete chains (leaves), their log-probabilities under the teacher and
    the number of calls. ``branching`` (p, node) → bool replaces the entropy test (e.g. :class:`RandomBranching`);
    the bounds still apply."""
    frontier: list[tuple[tuple[int, ...], float, int]] = [((), 0.0, 0)]  # prefix, log p(prefix), branchings used
    calls = 0
    for _ in SEGMENTS:
        grown = []
        for prefix, log_p, used in frontier:
            p = teacher.segment_distribution(joint, prefix)
            calls += 1
            wants = expands(p, bounds.threshold) if branching is None else branching(p, node_index(prefix))
            branch = used < bounds.depth and wants
            # ties broken by the lower value index, so the tree is deterministic
            order = np.argsort(-p, kind="stable")[: bounds.width if branch else 1]
            order = [v for v in order if p[v] > 0] or order[:1]  # never a branch of probability zero
            grown += [(prefix + (int(v),), log_p + float(np.log(max(p[v], 1e-300))), used + int(branch)) for v in order]
        frontier = grown
    return [f[0] for f in frontier], [f[1] for f in frontier], calls


def select_chain(leaves, leaf_log_probs, outcome: float | None, implied_ltv, ltv_noise: float) -> tuple[int, ...]:
    """Pick one leaf by outcome agreement, eq. ``scaletot-eq-select`` (reconstructed): the leaf that maximises
    log p_teacher(c | x) − (y − μ(c))² / (2σ_y²), i.e. the teacher's posterior given the realised outcome y,
    restricted to the explored leaves. With no outcome (``None``), the teacher's most probable leaf."""
    scores = np.asarray(leaf_log_probs, float)
    if outcome is not None:
        mu = np.array([implied_ltv(c) for c in leaves])
        scores = scores - (outcome - mu) ** 2 / (2 * ltv_noise**2)
    return tuple(leaves[int(np.argmax(scores))])


def bounded_tot(teacher, joint: np.ndarray, outcome: float | None, bounds: ToTBounds, branching=None) -> ToTResult:
    """Bounded entropy-guided ToT for one user: :func:`expand_tree`, then :func:`select_chain` by the outcome. The
    greedy chain (the most probable value of each segment given the earlier ones, what a teacher without refinement
    writes) is the tree's first leaf: every node keeps its most probable value first. ``branching``: as in
    :func:`expand_tree`."""
    leaves, log_probs, calls = expand_tree(teacher, joint, bounds, branching)
    chain = select_chain(leaves, log_probs, outcome, teacher.implied_ltv, teacher.ltv_noise)
    return ToTResult(chain, leaves[0], tuple(leaves), tuple(log_probs), calls)


def greedy_chain(joint: np.ndarray) -> tuple[int, ...]:
    """The most probable value of each segment given the earlier ones, from a joint posterior (3, 3, 3), without
    counting calls: the first leaf of :func:`expand_tree`."""
    prefix: tuple[int, ...] = ()
    for _ in SEGMENTS:
        conditional = joint[prefix] if prefix else joint
        prefix += (int(np.argmax(conditional.reshape(N_VALUES, -1).sum(axis=1))),)
    return prefix


def every_chain() -> list[tuple[int, ...]]:
    """All 27 chains, in index order."""
    return list(itertools.product(range(N_VALUES), repeat=len(SEGMENTS)))


# ---------------------------------------------------------------------------------------------------------
# The student: profile tokens → chain tokens, its segment policy, SFT and OSIPO


@dataclass(frozen=True)
class Vocabulary:
    """Token ids of the student's sequences: ``<bos> <act> f₁ … f_F <sep> c₁ c₂ c₃``; each profile feature has
    ``bins`` value tokens and a missing token; each chain segment has its three value tokens."""

    n_features: int
    bins: int = 4
    BOS: int = 0
    SEP: int = 1
    PAD: int = 2

    @property
    def activity_offset(self) -> int:
        return 3

    @property
    def feature_offset(self) -> int:
        return 5

    def feature_token(self, feature: int, bin_or_missing: np.ndarray) -> np.ndarray:
        """``bin_or_missing`` in 0..bins−1, or ``bins`` for a missing value."""
        return self.feature_offset + feature * (self.bins + 1) + bin_or_missing

    @property
    def chain_offset(self) -> int:
        return self.feature_offset + self.n_features * (self.bins + 1)

    def chain_token(self, segment: int, value) -> np.ndarray:
        return self.chain_offset + segment * N_VALUES + np.asarray(value)

    @property
    def size(self) -> int:
        return self.chain_offset + len(SEGMENTS) * N_VALUES

    @property
    def length(self) -> int:
        return 3 + self.n_features + len(SEGMENTS)

    @property
    def sep_position(self) -> int:
        return 2 + self.n_features


def segment_log_probs(model, tokens: torch.Tensor, vocab: Vocabulary, hidden: bool = False):
    """log π(v | x, c_<s) for each segment s and value v, teacher-forced on ``tokens`` (n, L): the next-token logits
    at the positions before each chain token, restricted to that segment's three value tokens and renormalised.
    Returns (n, 3, 3), and the last layer's hidden states too when ``hidden``."""
    out = model(input_ids=tokens, output_hidden_states=hidden)
    positions = vocab.sep_position + torch.arange(len(SEGMENTS))
    rows = []
    for s, position in enumerate(positions):
        ids = torch.as_tensor(vocab.chain_token(s, np.arange(N_VALUES)))
        rows.append(torch.log_softmax(out.logits[:, position, ids], dim=-1))
    log_probs = torch.stack(rows, dim=1)
    return (log_probs, out.hidden_states[-1]) if hidden else log_probs


def chain_log_prob(log_probs: torch.Tensor, chains: torch.Tensor) -> torch.Tensor:
    """Gather log π(c_s | x, c_<s) for chains (n, 3) from segment log-probabilities (n, 3, 3): (n, 3)."""
    return log_probs.gather(2, chains.long().unsqueeze(-1)).squeeze(-1)


def sft_loss(log_probs: torch.Tensor, chains: torch.Tensor) -> torch.Tensor:
    """Supervised fine-tuning on the teacher's chains, eq. ``scaletot-eq-sft``: the mean over users and segments of
    −log π_θ(c_s | x, c_<s)."""
    return -chain_log_prob(log_probs, chains).mean()


def segment_rewards(chains: np.ndarray, outcome: np.ndarray, teacher) -> np.ndarray:
    """Outcome-driven segment rewards, eq. ``scaletot-eq-segment-reward`` (reconstructed). With the agreement
    A(μ) = −(y − μ)² / (2σ_y²) and μ_≤s the teacher's log LTV when segments 1..s take the chain's values and the
    later ones their prior mean effect, r_s = A(μ_≤s) − A(μ_≤s−1): the agreement each segment adds. The rewards of
    a chain telescope to A(μ(c)) − A(μ_≤0). ``chains`` (..., 3), ``outcome`` broadcastable to chains[..., 0]."""
    chains = np.asarray(chains, int)
    effects = teacher.ltv_effects[np.arange(len(SEGMENTS)), chains]  # (..., 3)
    prior = teacher.prior_segment_means()
    mu = [teacher.ltv_intercept + prior.sum() + np.zeros(chains.shape[:-1])]
    for s in range(len(SEGMENTS)):
        mu.append(mu[-1] + effects[..., s] - prior[s])
    agreement = np.stack([-((np.asarray(outcome) - m) ** 2) / (2 * teacher.ltv_noise**2) for m in mu], axis=-1)
    return np.diff(agreement, axis=-1)


def osipo_loss(
    log_probs: torch.Tensor, ref_log_probs: torch.Tensor, rewards: torch.Tensor, beta: float
) -> torch.Tensor:
    """The OSIPO loss as we reconstruct it, eq. ``scaletot-eq-osipo``. For each user, K sampled chains and each
    segment s, the implicit reward is ρ_s = β (log π_θ(c_s | x, c_<s) − log π_ref(c_s | x, c_<s)) against the frozen
    SFT reference; every pair (k, l) of samples is a preference at segment s decided by the outcome rewards
    r_s (eq. ``scaletot-eq-segment-reward``), weighted by their gap:

        L = Σ w_kls · −log σ(sign(r_s^k − r_s^l) · (ρ_s^k − ρ_s^l)) / Σ w_kls,   w_kls = |r_s^k − r_s^l|.

    ``log_probs``, ``ref_log_probs``, ``rewards``: (users, K, 3), the chosen values' log-probabilities. Pairs with
    equal rewards carry no weight; with π_θ = π_ref every weighted pair costs log 2."""
    implicit = beta * (log_probs - ref_log_probs)  # (n, K, 3)
    gap = rewards.unsqueeze(2) - rewards.unsqueeze(1)  # (n, K, K, 3): r^k − r^l
    margin = implicit.unsqueeze(2) - implicit.unsqueeze(1)
    weight = gap.abs()
    losses = -torch.nn.functional.logsigmoid(torch.sign(gap) * margin)
    total = weight.sum()
    if total <= 0:
        return (implicit * 0).sum()  # no preference in this batch: a zero with the graph kept
    return (weight * losses).sum() / total


def pooled_representation(chain_hidden: torch.Tensor) -> torch.Tensor:
    """The student's reasoning representation, eq. ``scaletot-eq-pool`` (reconstructed): the mean of the last
    layer's hidden states over the positions that write the chain (``<sep>`` and the first two chain tokens, which
    predict c₁, c₂, c₃) and the last chain token, teacher-forced on the student's own greedy chain.
    ``chain_hidden``: those four positions' states, (n, 4, width)."""
    return chain_hidden.mean(dim=1)


def count_calls(joint: np.ndarray, bounds: ToTBounds, branching=None) -> np.ndarray:
    """The number of teacher calls :func:`expand_tree` makes for each of many users (joint posteriors (n, 3, 3, 3)),
    computed for all users at once: the tree depends only on the profile, so the cost of reasoning about everyone
    can be counted without running it user by user. ``branching`` (p (n, 3), nodes (n,)) → (n,) bool replaces the
    entropy test, as in :func:`expand_tree`."""
    n = len(joint)
    # frontier: conditional joints of the remaining segments, with each path's branchings used, a mask and its node
    frontier = [(joint, np.zeros(n, int), np.ones(n, bool), np.zeros(n, int))]
    calls = np.zeros(n, int)
    for level in range(len(SEGMENTS)):
        grown = []
        for conditional, used, alive, code in frontier:  # code: the prefix as a base-3 number
            calls += alive
            marginal = conditional.reshape(n, N_VALUES, -1).sum(axis=2)
            total = marginal.sum(axis=1, keepdims=True)
            p = marginal / np.where(total > 0, total, 1.0)
            nodes = sum(N_VALUES**k for k in range(level)) + code
            wants = entropy(p) > bounds.threshold if branching is None else branching(p, nodes)
            branch = (used < bounds.depth) & wants
            order = np.argsort(-p, axis=1, kind="stable")
            for rank in range(bounds.width):
                keep = alive & ((branch & (p[np.arange(n), order[:, rank]] > 0)) | (rank == 0))
                if level + 1 < len(SEGMENTS):
                    child = conditional[np.arange(n), order[:, rank]]
                    grown.append((child, used + branch, keep, N_VALUES * code + order[:, rank]))
        frontier = grown
    return calls


def match_branching_rate(joint: np.ndarray, bounds: ToTBounds, uniforms: np.ndarray, target_calls: int) -> float:
    """The rate of :class:`RandomBranching` whose trees on these users (joints (n, 3, 3, 3), coins (n, 13)) cost
    the nearest total number of calls to ``target_calls`` (the entropy rule's, for a comparison at matched cost).
    The total only grows with the rate, in steps at the coins' values, so the candidates are the coins (and 0)."""
    candidates = np.concatenate([[0.0], np.unique(uniforms) + 1e-12])
    low, high = 0, len(candidates) - 1

    def total(k):
        return int(count_calls(joint, bounds, RandomBranching(uniforms, float(candidates[k]))).sum())

    while low < high:  # the first candidate whose total reaches the target
        mid = (low + high) // 2
        low, high = (mid + 1, high) if total(mid) < target_calls else (low, mid)
    best = min({max(low - 1, 0), low}, key=lambda k: (abs(total(k) - target_calls), k))
    return float(candidates[best])
