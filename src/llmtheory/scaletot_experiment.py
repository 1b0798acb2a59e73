"""The scaletot chapter's experiment: a simulated population with typed latent states, the teacher's chains on a
reasoned subset, the student's SFT and OSIPO training, the encoder transfer, and the downstream LTV models.

Everything here is our simulation design (the paper's data are a billion-scale advertising system's, not public):
the latent schema, the profile generator, the activity levels and the LTV law are assumptions, stated in
:class:`World`, that the chapter shows to the reader. The method itself is in :mod:`llmtheory.scaletot`.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from . import scaletot as st
from .claims import Estimate
from .seeding import make_rng
from .stats import bootstrap_mean

LOW, HIGH = 0, 1
ACTIVITY_NAMES = ("low", "high")


# ---------------------------------------------------------------------------------------------------------
# The world (assumed) and the population


@dataclass(frozen=True)
class World:
    """The simulation's ground truth (every number an assumption of ours).

    Latent states follow a chain: intent, spend given intent, engagement given spend. Static profile features
    (``features_per_segment`` = 8 per segment, 24 in all) report on one segment each with Gaussian noise;
    low-activity users have noisier profiles with more missing values, and only high-activity users have the two
    behaviour features (sessions, past spend).
    Log LTV is additive in the segments plus one interaction (intent = buy and spend = high) that the teacher's LTV
    model does not know, plus noise."""

    intent_prior: tuple = (0.5, 0.3, 0.2)
    spend_given_intent: tuple = ((0.6, 0.3, 0.1), (0.3, 0.5, 0.2), (0.15, 0.35, 0.5))
    engagement_given_spend: tuple = ((0.5, 0.35, 0.15), (0.25, 0.5, 0.25), (0.15, 0.35, 0.5))
    features_per_segment: int = 8  # static profile features reporting on each segment
    world_seed: int = 2606  # fixes the feature means below (the same world for every SEED)
    static_noise: tuple = (1.0, 0.6)  # s.d. for low, high activity
    missing_rate: tuple = (0.7, 0.2)  # share of static features missing for low, high activity
    high_activity_given_engagement: tuple = (0.15, 0.3, 0.5)
    sessions_means: tuple = (-1.0, 0.0, 1.0)  # behaviour feature 1, by engagement
    past_spend_means: tuple = (-1.0, 0.0, 1.2)  # behaviour feature 2, by spend (plus 0.3 × intent)
    behaviour_noise: float = 0.4
    ltv_intercept: float = 1.0
    ltv_effects: tuple = ((-0.4, 0.0, 0.6), (-0.8, 0.0, 0.9), (-0.6, 0.0, 0.5))
    ltv_interaction: float = 0.6  # intent = buy and spend = high
    ltv_noise: float = 0.5

    @property
    def static_means(self) -> np.ndarray:
        """(3 × features_per_segment, 3): each static feature's mean for each value of its segment; a random
        ordering of (−1, 0, 1) (so most features are not monotone in the value) times a strength in [0.4, 1]."""
        rng = np.random.default_rng(self.world_seed)
        n = 3 * self.features_per_segment
        order = np.array([rng.permutation([-1.0, 0.0, 1.0]) for _ in range(n)])
        return order * rng.uniform(0.4, 1.0, (n, 1))

    @property
    def n_features(self) -> int:
        return 3 * self.features_per_segment + 2

    def feature_segment(self) -> np.ndarray:
        return np.array([f // self.features_per_segment for f in range(3 * self.features_per_segment)] + [2, 1])

    def log_prior(self) -> np.ndarray:
        p = (
            np.array(self.intent_prior)[:, None, None]
            * np.array(self.spend_given_intent)[:, :, None]
            * np.array(self.engagement_given_spend)[None, :, :]
        )
        return np.log(p)


@dataclass
class Population:
    """Users: latent states (n, 3), activity (n,), profile (n, F) with NaN for missing values, log LTV (n,)."""

    latent: np.ndarray
    activity: np.ndarray
    profile: np.ndarray
    log_ltv: np.ndarray

    def __len__(self) -> int:
        return len(self.activity)


def simulate(world: World, n: int, rng: np.random.Generator) -> Population:
    """Draw ``n`` users from ``world``."""
    intent = rng.choice(3, size=n, p=world.intent_prior)
    spend = np.array([rng.choice(3, p=world.spend_given_intent[i]) for i in intent])
    engagement = np.array([rng.choice(3, p=world.engagement_given_spend[s]) for s in spend])
    latent = np.stack([intent, spend, engagement], axis=1)
    activity = (rng.random(n) < np.array(world.high_activity_given_engagement)[engagement]).astype(int)
    means = world.static_means
    segment = world.feature_segment()[: len(means)]
    static = means[np.arange(len(means)), latent[:, segment]]  # (n, 3 × features_per_segment)
    static = static + np.array(world.static_noise)[activity][:, None] * rng.standard_normal(static.shape)
    static[rng.random(static.shape) < np.array(world.missing_rate)[activity][:, None]] = np.nan
    sessions = np.array(world.sessions_means)[engagement] + world.behaviour_noise * rng.standard_normal(n)
    past_spend = np.array(world.past_spend_means)[spend] + 0.3 * intent + world.behaviour_noise * rng.standard_normal(n)
    behaviour = np.stack([sessions, past_spend], axis=1)
    behaviour[activity == LOW] = np.nan  # no interaction history for low-activity users
    effects = np.array(world.ltv_effects)
    log_ltv = (
        world.ltv_intercept
        + effects[0, intent]
        + effects[1, spend]
        + effects[2, engagement]
        + world.ltv_interaction * ((intent == 2) & (spend == 2))
        + world.ltv_noise * rng.standard_normal(n)
    )
    return Population(latent, activity, np.concatenate([static, behaviour], axis=1), log_ltv)


def make_teacher(world: World, knowledge_noise: float, rng: np.random.Generator) -> st.BayesTeacher:
    """The teacher's belief about ``world``: the true prior and noise levels, feature means off by
    N(0, knowledge_noise²) each (approximate world knowledge), past spend modelled without its intent term, and the
    additive LTV model without the interaction."""
    means = np.concatenate([world.static_means, [world.sessions_means, world.past_spend_means]])
    means = means + knowledge_noise * rng.standard_normal(means.shape)
    noise = np.array([world.static_noise] * (world.n_features - 2) + [[world.behaviour_noise] * 2] * 2, float)
    return st.BayesTeacher(
        log_prior=world.log_prior(),
        means=means,
        feature_segment=world.feature_segment(),
        noise=noise,
        ltv_intercept=world.ltv_intercept,
        ltv_effects=np.array(world.ltv_effects, float),
        ltv_noise=world.ltv_noise,
    )


# ---------------------------------------------------------------------------------------------------------
# The teacher's chains on the reasoned subset


@dataclass
class Reasoning:
    """The teacher's work on the reasoned subset: ToT chains, greedy chains, the same refinement with outcomes
    shuffled across users (a control), and the calls spent; and the same for a tree that branches at random nodes
    at matched total calls (a control added after review)."""

    users: np.ndarray
    tot: np.ndarray  # (m, 3)
    greedy: np.ndarray
    shuffled_outcome: np.ndarray
    calls: np.ndarray  # per reasoned user
    leaves: np.ndarray  # per reasoned user
    random_tot: np.ndarray  # (m, 3): the random-branching tree's chains, selected by the user's own outcome
    random_shuffled_outcome: np.ndarray  # … selected by the same shuffled outcomes
    random_calls: np.ndarray
    random_leaves: np.ndarray
    random_rate: float  # the branching probability that matches the entropy rule's total calls


def reason_on_subset(teacher, population: Population, users: np.ndarray, bounds, rng, coin_rng) -> Reasoning:
    """Run :func:`llmtheory.scaletot.bounded_tot` on ``users`` with their realised log LTV, and again with the
    outcomes of a random permutation of them (the tree is the same; only the selection changes). Then the same
    for a tree that branches at random nodes (:class:`llmtheory.scaletot.RandomBranching`, coins from
    ``coin_rng``) under the same bounds, at the rate whose total calls on these users match the entropy rule's."""
    joint = teacher.joint_posterior(population.profile[users], population.activity[users])
    permuted = population.log_ltv[users][rng.permutation(len(users))]
    coins = coin_rng.random((len(users), st.N_NODES))

    def grow(branching) -> dict[str, np.ndarray]:
        rows = {key: [] for key in ("tot", "greedy", "shuffled", "calls", "leaves")}
        for k in range(len(users)):
            result = st.bounded_tot(teacher, joint[k], float(population.log_ltv[users[k]]), bounds,
                                    None if branching is None else branching.user(k))  # fmt: skip
            rows["tot"].append(result.chain)
            rows["greedy"].append(result.greedy)
            rows["shuffled"].append(
                st.select_chain(
                    result.leaves, result.leaf_log_probs, float(permuted[k]), teacher.implied_ltv, teacher.ltv_noise
                )  # fmt: skip
            )
            rows["calls"].append(result.calls)
            rows["leaves"].append(len(result.leaves))
        return {key: np.array(values) for key, values in rows.items()}

    entropy_rule = grow(None)
    rate = st.match_branching_rate(joint, bounds, coins, int(entropy_rule["calls"].sum()))
    random_rule = grow(st.RandomBranching(coins, rate))  # its greedy chains are the same: every tree's first leaf
    return Reasoning(
        users, entropy_rule["tot"], entropy_rule["greedy"], entropy_rule["shuffled"], entropy_rule["calls"],
        entropy_rule["leaves"], random_rule["tot"], random_rule["shuffled"], random_rule["calls"],
        random_rule["leaves"], rate,
    )  # fmt: skip


def calls_for_everyone(teacher, population: Population, bounds) -> np.ndarray:
    """The teacher calls the same refinement would cost on every user (the tree does not depend on the outcome),
    counted by :func:`llmtheory.scaletot.count_calls` without running the tree user by user."""
    return st.count_calls(teacher.joint_posterior(population.profile, population.activity), bounds)


def teacher_features(teacher, population: Population, users: np.ndarray | None = None) -> np.ndarray:
    """The teacher's outcome-free features: the posterior marginal of each segment (9 numbers) and its expected log
    LTV; NaN for users it did not reason about (``users``; None: everyone)."""
    joint = teacher.joint_posterior(population.profile, population.activity)
    marginals = [joint.sum(axis=tuple(a for a in (1, 2, 3) if a != 1 + s)) for s in range(3)]
    chains = np.array(st.every_chain())
    mu = np.array([teacher.implied_ltv(c) for c in chains])
    expected = joint.reshape(len(population), -1) @ mu
    features = np.concatenate([*marginals, expected[:, None]], axis=1)
    if users is not None:
        keep = np.zeros(len(population), bool)
        keep[users] = True
        features[~keep] = np.nan
    return features


# ---------------------------------------------------------------------------------------------------------
# The student


def bin_edges(profile: np.ndarray, bins: int) -> list[np.ndarray]:
    """Each feature's inner quantile edges (over its observed values)."""
    qs = np.linspace(0, 1, bins + 1)[1:-1]
    return [np.quantile(col[~np.isnan(col)], qs) for col in profile.T]


def tokenize(population: Population, vocab: st.Vocabulary, edges, chains: np.ndarray | None = None) -> torch.Tensor:
    """``<bos> <act> f₁ … f_F <sep> c₁ c₂ c₃`` for every user; the chain positions hold ``chains`` (or the first
    value of each segment as a placeholder: the model is causal, so later positions never change earlier logits)."""
    n = len(population)
    columns = [np.full(n, vocab.BOS), vocab.activity_offset + population.activity]
    for f, col in enumerate(population.profile.T):
        code = np.where(np.isnan(col), vocab.bins, np.searchsorted(edges[f], np.nan_to_num(col)))
        columns.append(vocab.feature_token(f, code))
    columns.append(np.full(n, vocab.SEP))
    chains = np.zeros((n, len(st.SEGMENTS)), int) if chains is None else np.asarray(chains)
    columns += [vocab.chain_token(s, chains[:, s]) for s in range(len(st.SEGMENTS))]
    return torch.as_tensor(np.stack(columns, axis=1), dtype=torch.long)


def with_chains(tokens: torch.Tensor, chains: torch.Tensor, vocab: st.Vocabulary) -> torch.Tensor:
    """``tokens`` with their chain positions replaced by ``chains`` (n, 3)."""
    out = tokens.clone()
    offsets = torch.as_tensor(vocab.chain_token(np.arange(len(st.SEGMENTS)), 0))
    out[:, vocab.sep_position + 1 :] = offsets + chains
    return out


def build_student(vocab: st.Vocabulary, width: int, layers: int, seed: int):
    """A tiny ``GPT2LMHeadModel`` (no dropout) over the chapter's vocabulary, initialised from ``seed``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=vocab.size, n_positions=vocab.length, n_embd=width, n_layer=layers, n_head=4,
        n_inner=2 * width, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=vocab.BOS, eos_token_id=vocab.SEP, pad_token_id=vocab.PAD,
    )  # fmt: skip
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


def train_sft(model, tokens, chains, vocab, *, steps: int, batch: int, lr: float, seed: int) -> list[float]:
    """Minimise :func:`llmtheory.scaletot.sft_loss` on (profile, teacher chain) pairs with Adam; returns the
    losses."""
    generator = torch.Generator().manual_seed(seed)
    chains = torch.as_tensor(np.asarray(chains), dtype=torch.long)
    full = with_chains(tokens, chains, vocab)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        idx = torch.randint(len(full), (min(batch, len(full)),), generator=generator)
        loss = st.sft_loss(st.segment_log_probs(model, full[idx], vocab), chains[idx])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


@torch.no_grad()
def decode(model, tokens, vocab, generator: torch.Generator | None = None, readings: bool = False):
    """The student's chains, segment by segment: greedy without a ``generator``, sampled from π with one. One
    forward pass reads the profile up to ``<sep>``; each segment then costs one token with the cached keys and
    values. With ``readings``, also the segment log-probabilities (n, 3, 3) and the last layer's hidden states at
    the four positions that write the chain (``<sep>``, c₁, c₂, c₃; (n, 4, width))."""
    out = model(input_ids=tokens[:, : vocab.sep_position + 1], use_cache=True, output_hidden_states=readings)
    chains = torch.zeros((len(tokens), len(st.SEGMENTS)), dtype=torch.long)
    rows, hidden = [], []
    for s in range(len(st.SEGMENTS)):
        ids = torch.as_tensor(vocab.chain_token(s, np.arange(st.N_VALUES)))
        log_probs = torch.log_softmax(out.logits[:, -1, ids], dim=-1)
        chains[:, s] = (
            log_probs.argmax(dim=1) if generator is None
            else torch.multinomial(log_probs.exp(), 1, generator=generator).squeeze(1)
        )  # fmt: skip
        rows.append(log_probs)
        if readings:
            hidden.append(out.hidden_states[-1][:, -1])
        if readings or s + 1 < len(st.SEGMENTS):
            following = torch.as_tensor(vocab.chain_token(s, chains[:, s].numpy()))[:, None]
            out = model(input_ids=following, past_key_values=out.past_key_values, use_cache=True,
                        output_hidden_states=readings)  # fmt: skip
    if not readings:
        return chains
    hidden.append(out.hidden_states[-1][:, -1])
    return chains, torch.stack(rows, dim=1), torch.stack(hidden, dim=1)


def train_osipo(policy, tokens, outcome, teacher, vocab, *, rounds: int, batch: int, samples: int, beta: float,
                lr: float, seed: int) -> dict:  # fmt: skip
    """OSIPO after SFT: each round samples ``samples`` chains per user of a batch from the current policy, scores
    their segments (:func:`llmtheory.scaletot.segment_rewards`) and takes one Adam step on
    :func:`llmtheory.scaletot.osipo_loss` against the frozen SFT reference. Returns the mean outcome agreement of
    the sampled chains, the loss and the mean log-ratio Σ_s log π_θ(c_s | …) − log π_ref(c_s | …) of the sampled
    chains (an estimate of KL(π_θ ‖ π_ref): how far the policy has moved) per round."""
    reference = copy.deepcopy(policy).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(policy.parameters(), lr=lr)
    history = {"reward": [], "loss": [], "log_ratio": []}
    for _ in range(rounds):
        idx = torch.randint(len(tokens), (min(batch, len(tokens)),), generator=generator)
        repeated = tokens[idx].repeat_interleave(samples, dim=0)
        policy.eval()
        chains = decode(policy, repeated, vocab, generator)
        rewards = st.segment_rewards(chains.numpy(), np.repeat(np.asarray(outcome)[idx.numpy()], samples), teacher)
        full = with_chains(repeated, chains, vocab)
        with torch.no_grad():
            ref = st.chain_log_prob(st.segment_log_probs(reference, full, vocab), chains)
        policy.train()
        log_probs = st.chain_log_prob(st.segment_log_probs(policy, full, vocab), chains)
        shape = (len(idx), samples, len(st.SEGMENTS))
        loss = st.osipo_loss(log_probs.view(shape), ref.view(shape), torch.as_tensor(rewards).view(shape).float(),
                             beta)  # fmt: skip
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history["reward"].append(float(rewards.sum(axis=1).mean()))
        history["loss"].append(float(loss.detach()))
        history["log_ratio"].append(float((log_probs.detach() - ref).sum(dim=1).mean()))
    policy.eval()
    return history


@torch.no_grad()
def representations(model, tokens, vocab) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The student's greedy chains and two readings of its reasoning representation on them: ``"pooled"``, the
    mean hidden state over the chain positions (:func:`llmtheory.scaletot.pooled_representation`), and
    ``"segments"``, the student's distribution over each segment's values (9 numbers, the part of the hidden states
    that the chain reads out)."""
    chains, log_probs, hidden = decode(model, tokens, vocab, readings=True)
    readings = {
        "pooled": st.pooled_representation(hidden).numpy(),
        "segments": log_probs.exp().flatten(1).numpy(),
    }
    return chains.numpy(), readings


# ---------------------------------------------------------------------------------------------------------
# The encoder transfer and the downstream LTV models


def one_hot(tokens: torch.Tensor, vocab: st.Vocabulary) -> np.ndarray:
    """The profile part of the token sequences (activity and features) as one-hot columns: the encoder's input."""
    profile = tokens[:, 1 : vocab.sep_position].numpy()
    out = np.zeros((len(profile), vocab.chain_offset), np.float32)
    np.put_along_axis(out, profile, 1.0, axis=1)
    return out[:, vocab.activity_offset :]


def fit_encoder(inputs: np.ndarray, targets: np.ndarray, components: int | None, seed: int, iterations: int):
    """The light profile encoder, eq. ``scaletot-eq-encoder`` (reconstructed): an MLP regressing the student's
    representation (reduced to its leading ``components`` principal components when given, and standardised) from
    the one-hot profile. Returns the fitted MLP; its ``predict`` gives the encoder features of any user."""
    from sklearn.decomposition import PCA
    from sklearn.neural_network import MLPRegressor

    reduced = PCA(components, random_state=seed).fit_transform(targets) if components else targets
    reduced = (reduced - reduced.mean(axis=0)) / (reduced.std(axis=0) + 1e-8)
    mlp = MLPRegressor(hidden_layer_sizes=(64,), max_iter=iterations, random_state=seed, early_stopping=False, tol=1e-5)
    return mlp.fit(inputs, reduced)


def fit_ltv_model(features: np.ndarray, log_ltv: np.ndarray, seed: int, trees: int):
    """LightGBM regression of log LTV (single-threaded and deterministic)."""
    import lightgbm

    model = lightgbm.LGBMRegressor(
        n_estimators=trees, learning_rate=0.05, num_leaves=15, min_child_samples=20, subsample=0.8,
        subsample_freq=1, colsample_bytree=0.8, random_state=seed, n_jobs=1, deterministic=True,
        force_row_wise=True, verbose=-1,
    )  # fmt: skip
    return model.fit(features, log_ltv)


def scores(predicted: np.ndarray, log_ltv: np.ndarray, activity: np.ndarray, top_share: float = 0.1) -> dict:
    """RMSE of log LTV and AUC for the top ``top_share`` of LTV (threshold over all users given), per activity
    level and overall."""
    from sklearn.metrics import roc_auc_score

    top = log_ltv >= np.quantile(log_ltv, 1 - top_share)
    out = {}
    for name, mask in (("low", activity == LOW), ("high", activity == HIGH), ("all", np.ones_like(top))):
        out[(name, "rmse")] = float(np.sqrt(np.mean((predicted[mask] - log_ltv[mask]) ** 2)))
        out[(name, "auc")] = (
            float(roc_auc_score(top[mask], predicted[mask])) if 0 < top[mask].sum() < mask.sum() else np.nan
        )
    return out


# ---------------------------------------------------------------------------------------------------------
# One seed of the whole pipeline


@dataclass(frozen=True)
class Sizes:
    """Every size of a run (the notebook fills it from one commented block)."""

    users: int
    labelled_share: float  # users whose LTV has matured: the downstream model's training set
    reasoned_share: float  # users the teacher reasons about (drawn from the labelled ones: it needs their outcome)
    distilled_share: float  # users the student is run on to train the encoder (neither labelled nor test users)
    test_share: float  # users the downstream models are scored on (never labelled, reasoned or distilled)
    student_width: int
    student_layers: int
    sft_steps: int
    osipo_rounds: int
    osipo_samples: int
    batch: int
    encoder_components: int
    encoder_iterations: int
    trees: int
    knowledge_noise: float = 0.3
    bins: int = 4


VARIANTS: dict[str, str] = {
    "profile": "profile only",
    "teacher-subset": "+ teacher features (reasoned subset only)",
    "teacher-all": "+ teacher features (every user: full cost)",
    "sft": "+ SFT-student encoder (segment distributions)",
    "osipo": "+ OSIPO-student encoder (segment distributions)",
    "sft-pooled": "+ SFT-student encoder (pooled hidden states)",
    "osipo-pooled": "+ OSIPO-student encoder (pooled hidden states)",
    "shuffled-chains": "+ encoder of a student trained on shuffled chains",
    "osipo-shuffled-outcome": "+ encoder of OSIPO with shuffled outcomes",
}


@dataclass
class SeedRun:
    """What one seed of the pipeline produced."""

    seed: int
    reasoning: Reasoning
    latent_subset: np.ndarray
    activity_subset: np.ndarray
    calls_everyone: np.ndarray
    n_users: int
    sft_losses: list
    osipo_history: dict  # OSIPO on the users' own outcomes: reward, loss and log-ratio to π_ref per step
    osipo_shuffled_history: dict  # the same for OSIPO with shuffled outcomes
    student_accuracy: dict  # variant -> accuracy of the student's greedy chain against the latent truth (test users)
    metrics: pd.DataFrame  # variant × (activity, metric)
    test_predictions: dict  # variant -> predicted log LTV on the test users
    test_log_ltv: np.ndarray
    test_activity: np.ndarray
    timings: dict = field(default_factory=dict)


def run_seed(seed: int, sizes: Sizes, bounds: st.ToTBounds, beta: float, world: World | None = None) -> SeedRun:
    """The whole pipeline for one seed: simulate, reason on the subset, train the students (SFT, OSIPO and the two
    controls), distil their representations into encoders, and fit the downstream LTV models."""
    world = world or World()
    timings, clock = {}, time.perf_counter()

    def lap(name):
        nonlocal clock
        timings[name] = time.perf_counter() - clock
        clock = time.perf_counter()

    population = simulate(world, sizes.users, make_rng(seed, "scaletot", "population"))
    teacher = make_teacher(world, sizes.knowledge_noise, make_rng(seed, "scaletot", "teacher"))
    order = make_rng(seed, "scaletot", "split").permutation(len(population))
    n = len(population)
    train = np.sort(order[: int(round(sizes.labelled_share * n))])
    reasoned = np.sort(order[: int(round(sizes.reasoned_share * n))])
    # the encoder learns the student's behaviour on profiles that are in none of the downstream training rows, so
    # its features are out of sample on every labelled user as on the test users (changed after review, twice)
    distilled = np.sort(order[len(train) : len(train) + int(round(sizes.distilled_share * n))])
    test = np.sort(order[n - int(round(sizes.test_share * n)) :])
    if (
        sizes.labelled_share + sizes.distilled_share + sizes.test_share > 1
        or sizes.reasoned_share > sizes.labelled_share
    ):
        raise ValueError(
            "sizes: reasoned_share must be ≤ labelled_share, and labelled_share + distilled_share + test_share ≤ 1 "
            "(the reasoned users are labelled; the distilled users are neither labelled nor test users)"
        )
    reasoning = reason_on_subset(teacher, population, reasoned, bounds, make_rng(seed, "scaletot", "shuffle"),
                                 make_rng(seed, "scaletot", "random-tree"))  # fmt: skip
    calls_all = calls_for_everyone(teacher, population, bounds)
    lap("teacher")

    vocab = st.Vocabulary(world.n_features, sizes.bins)
    tokens = tokenize(population, vocab, bin_edges(population.profile, sizes.bins))
    chain_sets = {
        "sft": reasoning.tot,
        "shuffled-chains": reasoning.tot[make_rng(seed, "scaletot", "chains").permutation(len(reasoned))],
    }
    students, sft_losses = {}, []
    for name, chains in chain_sets.items():
        model = build_student(vocab, sizes.student_width, sizes.student_layers, seed)
        losses = train_sft(model, tokens[reasoned], chains, vocab, steps=sizes.sft_steps, batch=sizes.batch, lr=3e-3,
                           seed=seed)  # fmt: skip
        students[name] = model
        sft_losses = sft_losses or losses
    lap("sft")
    outcomes = {
        "osipo": population.log_ltv[reasoned],
        "osipo-shuffled-outcome": population.log_ltv[reasoned][
            make_rng(seed, "scaletot", "osipo").permutation(len(reasoned))
        ],
    }  # fmt: skip
    osipo_history = {}
    for name, outcome in outcomes.items():
        students[name] = copy.deepcopy(students["sft"])
        history = train_osipo(
            students[name], tokens[reasoned], outcome, teacher, vocab, rounds=sizes.osipo_rounds,
            batch=sizes.batch // 2, samples=sizes.osipo_samples, beta=beta, lr=1e-3, seed=seed,
        )  # fmt: skip
        osipo_history[name] = history
    lap("osipo")

    inputs = one_hot(tokens, vocab)
    extra, accuracy = {}, {}
    for name, model in students.items():
        _, readings = representations(model, tokens[distilled], vocab)
        encoder = fit_encoder(inputs[distilled], readings["segments"], None, seed, sizes.encoder_iterations)
        extra[name] = encoder.predict(inputs)
        if name in ("sft", "osipo"):
            pooled = fit_encoder(inputs[distilled], readings["pooled"], sizes.encoder_components, seed,
                                 sizes.encoder_iterations)  # fmt: skip
            extra[f"{name}-pooled"] = pooled.predict(inputs)
        checked = test[:2000]  # the student's chains against the latent truth, on test users
        test_chains, _ = representations(model, tokens[checked], vocab)
        accuracy[name] = float((test_chains == population.latent[checked]).mean())
    lap("encoders")
    extra["teacher-subset"] = teacher_features(teacher, population, reasoned)
    extra["teacher-all"] = teacher_features(teacher, population)
    base = np.concatenate([population.profile, population.activity[:, None]], axis=1)
    rows, predictions = {}, {}
    for variant in VARIANTS:
        features = base if variant == "profile" else np.concatenate([base, extra[variant]], axis=1)
        model = fit_ltv_model(features[train], population.log_ltv[train], seed, sizes.trees)
        predictions[variant] = model.predict(features[test])
        rows[variant] = scores(predictions[variant], population.log_ltv[test], population.activity[test])
    lap("downstream")
    metrics = pd.DataFrame(rows).T
    metrics.columns = pd.MultiIndex.from_tuples(metrics.columns, names=["activity", "metric"])
    return SeedRun(
        seed, reasoning, population.latent[reasoned], population.activity[reasoned], calls_all, len(population),
        sft_losses, osipo_history["osipo"], osipo_history["osipo-shuffled-outcome"], accuracy, metrics, predictions,
        population.log_ltv[test], population.activity[test], timings,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Summaries over seeds, and the offline A/B stand-in


def chain_accuracy(chains: np.ndarray, latent: np.ndarray) -> np.ndarray:
    """Per user, the share of segments whose value matches the latent truth."""
    return (np.asarray(chains) == np.asarray(latent)).mean(axis=1)


def gain_over_profile(runs: list[SeedRun], variant: str, activity: str, metric: str = "rmse") -> Estimate:
    """The reduction of RMSE (or the rise of AUC) of ``variant`` over the profile-only model, mean over seeds with a
    t interval."""
    sign = 1.0 if metric == "rmse" else -1.0
    values = [sign * (r.metrics.loc["profile", (activity, metric)] - r.metrics.loc[variant, (activity, metric)])
              for r in runs]  # fmt: skip
    return Estimate.mean_of(values)


def difference_over_seeds(runs: list[SeedRun], first: str, second: str, activity: str) -> Estimate:
    """RMSE(second) − RMSE(first) per seed (positive: ``first`` is better), mean with a t interval."""
    return Estimate.mean_of(
        [r.metrics.loc[second, (activity, "rmse")] - r.metrics.loc[first, (activity, "rmse")] for r in runs]
    )


def offline_ab(runs: list[SeedRun], control: str, treatment: str, seed: int, top_share: float = 0.1,
               draws: int = 1000) -> Estimate:  # fmt: skip
    """The offline stand-in for the online A/B test: in each seed the test users are split at random into two arms;
    arm A targets its top ``top_share`` by the ``control`` model's predicted LTV, arm B by the ``treatment`` model's.
    The lift is mean realised LTV of B's targeted users over A's, minus 1, pooled over seeds; the interval is a
    bootstrap over the users of each arm (targets re-chosen in every draw)."""
    rng = make_rng(seed, "scaletot", "ab")
    arms = []
    for run in runs:
        arm = rng.random(len(run.test_log_ltv)) < 0.5
        ltv = np.exp(run.test_log_ltv)
        arms.append(
            ((run.test_predictions[control][~arm], ltv[~arm]), (run.test_predictions[treatment][arm], ltv[arm]))
        )

    def lift(samples):
        totals = np.zeros(2)
        counts = np.zeros(2)
        for run_arms, picks in zip(arms, samples, strict=True):
            for a, ((predicted, value), pick) in enumerate(zip(run_arms, picks, strict=True)):
                predicted, value = predicted[pick], value[pick]
                k = max(1, int(round(top_share * len(predicted))))
                chosen = np.argpartition(-predicted, k - 1)[:k]
                totals[a] += value[chosen].sum()
                counts[a] += k
        means = totals / counts
        return means[1] / means[0] - 1

    identity = [[np.arange(len(a[0][0])), np.arange(len(a[1][0]))] for a in arms]
    point = lift(identity)
    boot = [
        lift([[rng.integers(0, len(a[0][0]), len(a[0][0])), rng.integers(0, len(a[1][0]), len(a[1][0]))] for a in arms])
        for _ in range(draws)
    ]
    low, high = np.quantile(boot, [0.025, 0.975])
    return Estimate(float(point), float(min(low, point)), float(max(high, point)))


def paired_ab(runs: list[SeedRun], control: str, treatment: str, seed: int, top_share: float = 0.1,
              draws: int = 1000) -> Estimate:  # fmt: skip
    """An offline paired comparison on the same test users (added after review): in each seed both models pick
    their top ``top_share`` of the *same* test users by predicted LTV; the lift is the mean realised LTV of the
    treatment's picks over the control's, minus 1, pooled over seeds; the interval is a bootstrap over the test
    users of each seed, resampled once for both models (targets re-chosen in every draw). Unlike
    :func:`offline_ab` it has no between-arm noise, so it is not what an online test can do; a model against itself
    gives exactly 0."""
    rng = make_rng(seed, "scaletot", "paired-ab", control, treatment)
    data = _paired_data(runs, control, treatment)
    point = _paired_lift(data, [np.arange(len(d[2])) for d in data], top_share)
    boot = [_paired_lift(data, [rng.integers(0, len(d[2]), len(d[2])) for d in data], top_share) for _ in range(draws)]
    low, high = np.quantile(boot, [0.025, 0.975])
    return Estimate(float(point), float(min(low, point)), float(max(high, point)))


def _paired_data(runs: list[SeedRun], control: str, treatment: str) -> list[tuple]:
    return [(r.test_predictions[control], r.test_predictions[treatment], np.exp(r.test_log_ltv)) for r in runs]


def _paired_lift(data: list[tuple], picks: list[np.ndarray], top_share: float) -> float:
    """Mean realised LTV of the treatment's top ``top_share`` of the users ``picks`` over the control's, minus 1,
    summed over seeds."""
    totals = np.zeros(2)
    for (first, second, value), pick in zip(data, picks, strict=True):
        k = max(1, int(round(top_share * len(pick))))
        for a, predicted in enumerate((first[pick], second[pick])):
            totals[a] += value[pick][np.argpartition(-predicted, k - 1)[:k]].sum()
    return float(totals[1] / totals[0] - 1)


def paired_lifts(runs: list[SeedRun], control: str, treatment: str, top_share: float = 0.1) -> list[float]:
    """The paired lift of :func:`paired_ab` in each seed separately (point values; added after the second review).
    :func:`paired_ab`'s bootstrap holds the fitted models fixed; these values show how much the lift moves when
    the whole pipeline is refitted."""
    return [_paired_lift(_paired_data([r], control, treatment), [np.arange(len(r.test_log_ltv))], top_share)
            for r in runs]  # fmt: skip


def top_share_of_activity(runs: list[SeedRun], variant: str, activity: int = HIGH, top_share: float = 0.1
                          ) -> tuple[list[float], float]:  # fmt: skip
    """The share of users of one ``activity`` level among ``variant``'s top ``top_share`` of the test users by
    predicted LTV, per seed; and their share among all test users (all seeds)."""
    shares = []
    for r in runs:
        k = max(1, int(round(top_share * len(r.test_log_ltv))))
        top = np.argpartition(-r.test_predictions[variant], k - 1)[:k]
        shares.append(float((r.test_activity[top] == activity).mean()))
    everyone = np.concatenate([r.test_activity for r in runs])
    return shares, float((everyone == activity).mean())


def chain_accuracy_table(runs: list[SeedRun]) -> pd.DataFrame:
    """Accuracy of the teacher's chains against the latent truth on the reasoned users (all seeds), by activity:
    greedy, bounded ToT, ToT selecting by shuffled outcomes, and the random-branching tree at matched total calls
    (added after review); with the mean calls and leaves per user of both trees, and the share of users whose
    entropy-guided tree branches at all."""
    rows = {}
    for name, mask_of in (("low", lambda r: r.activity_subset == LOW), ("high", lambda r: r.activity_subset == HIGH),
                          ("all", lambda r: np.ones(len(r.activity_subset), bool))):  # fmt: skip

        def pick(attr, mask_of=mask_of):
            return np.concatenate([getattr(r.reasoning, attr)[mask_of(r)] for r in runs])

        latent = np.concatenate([r.latent_subset[mask_of(r)] for r in runs])
        rows[name] = {"users": len(latent), "greedy": chain_accuracy(pick("greedy"), latent).mean(),
                      "bounded ToT": chain_accuracy(pick("tot"), latent).mean(),
                      "ToT, shuffled outcomes": chain_accuracy(pick("shuffled_outcome"), latent).mean(),
                      "random branching": chain_accuracy(pick("random_tot"), latent).mean(),
                      "calls per user": pick("calls").mean(), "leaves per user": pick("leaves").mean(),
                      "share whose tree branches": (pick("leaves") > 1).mean(),
                      "random: calls per user": pick("random_calls").mean(),
                      "random: leaves per user": pick("random_leaves").mean()}  # fmt: skip
    return pd.DataFrame(rows).T


def tot_gain(runs: list[SeedRun], chains: str, seed: int, baseline: str = "greedy") -> Estimate:
    """Per-user accuracy of ``chains`` minus the ``baseline`` chain's (fields of :class:`Reasoning`: "tot",
    "shuffled_outcome", "random_tot", "random_shuffled_outcome", "greedy"), pooled over seeds, with a paired
    bootstrap interval."""
    difference = np.concatenate([
        chain_accuracy(getattr(r.reasoning, chains), r.latent_subset)
        - chain_accuracy(getattr(r.reasoning, baseline), r.latent_subset)
        for r in runs
    ])  # fmt: skip
    name = chains if baseline == "greedy" else f"{chains}-{baseline}"
    return bootstrap_mean(difference, make_rng(seed, "scaletot", "tot-bootstrap", name))


def entropy_edge_needing_outcome(runs: list[SeedRun], seed: int) -> Estimate:
    """The part of the entropy rule's edge over random branching that needs the user's own outcome (added after the
    second review): per user, (entropy tree − random tree) with the own outcome minus the same with the shuffled
    outcome, in chain accuracy; pooled over seeds, with a paired bootstrap interval."""

    def accuracy(r, chains):
        return chain_accuracy(getattr(r.reasoning, chains), r.latent_subset)

    difference = np.concatenate([
        accuracy(r, "tot") - accuracy(r, "random_tot")
        - (accuracy(r, "shuffled_outcome") - accuracy(r, "random_shuffled_outcome"))
        for r in runs
    ])  # fmt: skip
    return bootstrap_mean(difference, make_rng(seed, "scaletot", "tot-bootstrap", "edge-needing-outcome"))


def chain_changes(runs: list[SeedRun], activity: int, chains: tuple[str, ...] = ("random_tot",
                  "random_shuffled_outcome")) -> pd.DataFrame:  # fmt: skip
    """For the reasoned users of one ``activity`` level (all seeds), each of ``chains`` (fields of
    :class:`Reasoning`): the share of users whose chain differs from the greedy chain, the greedy chain's accuracy
    and that chain's accuracy (added after the second review)."""
    mask = [r.activity_subset == activity for r in runs]
    latent = np.concatenate([r.latent_subset[m] for r, m in zip(runs, mask, strict=True)])
    greedy = np.concatenate([r.reasoning.greedy[m] for r, m in zip(runs, mask, strict=True)])
    rows = {}
    for name in chains:
        chosen = np.concatenate([getattr(r.reasoning, name)[m] for r, m in zip(runs, mask, strict=True)])
        rows[name] = {"chains changed": float((chosen != greedy).any(axis=1).mean()),
                      "greedy accuracy": float(chain_accuracy(greedy, latent).mean()),
                      "accuracy": float(chain_accuracy(chosen, latent).mean())}  # fmt: skip
    return pd.DataFrame(rows).T


def tot_gain_share(runs: list[SeedRun], activity: int, chains: str = "tot") -> float:
    """The share of the summed per-user accuracy gain of ``chains`` over the greedy chain (all seeds) that comes from
    users of one ``activity`` level."""
    gains = [chain_accuracy(getattr(r.reasoning, chains), r.latent_subset)
             - chain_accuracy(r.reasoning.greedy, r.latent_subset) for r in runs]  # fmt: skip
    part = sum(float(g[r.activity_subset == activity].sum()) for g, r in zip(gains, runs, strict=True))
    return part / sum(float(g.sum()) for g in gains)


def rmse_difference(run: SeedRun, first: str, second: str, activity: str) -> float:
    """RMSE(second) − RMSE(first) in one seed (positive: ``first`` is better)."""
    return float(run.metrics.loc[second, (activity, "rmse")] - run.metrics.loc[first, (activity, "rmse")])


def activity_gap(run: SeedRun, variant: str) -> float:
    """In one seed, ``variant``'s RMSE reduction over the profile-only model on low-activity users minus that on
    high-activity users."""
    return rmse_difference(run, variant, "profile", "low") - rmse_difference(run, variant, "profile", "high")


def per_seed_table(runs: list[SeedRun], differences: dict) -> pd.DataFrame:
    """The per-seed values behind the ledger's differences (added after review): for each row name, (first,
    second, activity) as in :func:`rmse_difference`, or a function of a :class:`SeedRun`; with the mean, the seeds'
    s.d., the t interval's half-width and the mean in seed s.d.s."""
    from .stats import mean_ci

    rows = {}
    for name, difference in differences.items():
        values = [difference(r) if callable(difference) else rmse_difference(r, *difference) for r in runs]
        mean, half = mean_ci(values)
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
        rows[name] = {**{f"seed {r.seed}": v for r, v in zip(runs, values, strict=True)}, "mean": mean,
                      "s.d.": sd, "± (t, 95%)": half, "mean / s.d.": mean / sd if sd > 0 else float("nan")}  # fmt: skip
    return pd.DataFrame(rows).T


def decisive_ratio(n: int, confidence: float = 0.95) -> float:
    """How many seed s.d.s a mean over ``n`` seeds must exceed for its t interval to exclude zero:
    t_{(1+confidence)/2, n−1} / √n."""
    from scipy import stats

    return float(stats.t.ppf(0.5 + confidence / 2, n - 1) / np.sqrt(n))


def gain_table(runs: list[SeedRun]) -> pd.DataFrame:
    """RMSE reduction over the profile-only model, by variant and activity: mean over seeds [t interval]."""
    return pd.DataFrame({
        activity: {VARIANTS[v]: gain_over_profile(runs, v, activity) for v in VARIANTS if v != "profile"}
        for activity in ("low", "high", "all")
    })  # fmt: skip


def mean_metrics(runs: list[SeedRun]) -> pd.DataFrame:
    """The downstream metrics, mean over seeds."""
    table = sum(r.metrics for r in runs) / len(runs)
    return table.rename(index=VARIANTS)


def compute_summary(runs: list[SeedRun]) -> dict:
    """Teacher calls: on the reasoned subset, for everyone (the same refinement), their ratio, and the users'."""
    subset = sum(int(r.reasoning.calls.sum()) for r in runs)
    everyone = sum(int(r.calls_everyone.sum()) for r in runs)
    users = sum(len(r.reasoning.users) for r in runs)
    return {"calls on the reasoned users": subset, "calls for every user": everyone,
            "share of calls": subset / everyone, "share of users": users / sum(r.n_users for r in runs)}  # fmt: skip
