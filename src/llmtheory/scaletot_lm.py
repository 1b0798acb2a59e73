"""A causal language model as the scaletot teacher (the Colab path): the same calls, the same tree.

The model reads a user's profile as text and is asked, segment by segment, for the user's state; its distribution
over a segment's values is the softmax of the log-probabilities it gives each value's words as the continuation of
the prompt (the chain so far included). One call is one such question, as for :class:`llmtheory.scaletot.BayesTeacher`,
so :func:`llmtheory.scaletot.expand_tree` and :func:`llmtheory.scaletot.bounded_tot` run unchanged with the user's
profile text in place of the joint posterior. The chain is scored against the outcome with the Bayes teacher's LTV
model (an LM names states; it does not know our simulated LTV law).

Our simulated features are abstract (a feature's mean is a random ordering of the values), so no pretrained model
can know what they mean: on this world a hub model can only show that the pipeline runs. With real profiles it is
the paper's set-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from . import scaletot as st

LEVELS = ("very low", "low", "high", "very high")
QUESTION = {
    "intent": "The user's purchase intent (browse, compare or buy) is",
    "spend": "The user's spending tier (low, mid or high) is",
    "engagement": "The user's engagement trend (lapsing, steady or growing) is",
}


def feature_names(world) -> list[str]:
    """Readable names of the simulated profile features."""
    names = [f"{segment} signal {k + 1}" for segment in st.SEGMENTS for k in range(world.features_per_segment)]
    return names + ["sessions per week", "past spend"]


def profile_text(profile_row: np.ndarray, activity: int, edges, names) -> str:
    """One user's profile in words: each observed feature's quartile (``very low`` … ``very high``)."""
    parts = [f"activity: {'high' if activity else 'low'}"]
    for value, edge, name in zip(profile_row, edges, names, strict=True):
        if not np.isnan(value):
            parts.append(f"{name}: {LEVELS[int(np.searchsorted(edge, value))]}")
    return "; ".join(parts) + "."


@dataclass
class LMTeacher:
    """A causal LM asked one question per call; ``ltv`` is the LTV model the chain's outcome agreement uses (the
    Bayes teacher's ``implied_ltv`` and ``ltv_noise``)."""

    model: object
    tokenizer: object
    ltv: st.BayesTeacher
    calls: int = field(default=0)

    @property
    def ltv_noise(self) -> float:
        return self.ltv.ltv_noise

    def implied_ltv(self, chain) -> float:
        return self.ltv.implied_ltv(chain)

    def prompt(self, profile: str, prefix: tuple[int, ...]) -> str:
        known = "".join(f" The user's {s} is {st.VALUES[s][v]}." for s, v in zip(st.SEGMENTS, prefix, strict=False))
        return f"User profile: {profile}{known} {QUESTION[st.SEGMENTS[len(prefix)]]}"

    @torch.no_grad()
    def segment_distribution(self, profile: str, prefix: tuple[int, ...]) -> np.ndarray:
        """One call: the model's distribution over the next segment's values given the profile text and the chain
        so far (each value scored by the summed log-probability of its tokens after the prompt)."""
        self.calls += 1
        segment = st.SEGMENTS[len(prefix)]
        context = self.tokenizer(self.prompt(profile, prefix), return_tensors="pt").input_ids
        scores = []
        for value in st.VALUES[segment]:
            continuation = self.tokenizer(" " + value, add_special_tokens=False, return_tensors="pt").input_ids
            ids = torch.cat([context, continuation], dim=1)
            log_probs = torch.log_softmax(self.model(input_ids=ids).logits[0, :-1].float(), dim=-1)
            targets = ids[0, context.shape[1] :]
            scores.append(float(log_probs[context.shape[1] - 1 :].gather(1, targets[:, None]).sum()))
        scores = np.array(scores)
        p = np.exp(scores - scores.max())
        return p / p.sum()


@dataclass(frozen=True)
class Comparison:
    """Both teachers on the same users: a summary ``table``, the LM's refined chains, its greedy chains and the
    users' latent states. The ledger's rule scores the greedy chains: the refined ones were chosen with the user's
    realised LTV, so they carry information about the user even from an LM that ignores the profile."""

    table: object
    lm_chains: np.ndarray
    latent: np.ndarray
    lm_greedy: np.ndarray


def compare_with_bayes(lm_teacher: LMTeacher, bayes_teacher: st.BayesTeacher, world, users: int, bounds, seed: int):
    """Refine the chains of ``users`` fresh users with both teachers (same tree bounds, same outcomes); returns a
    :class:`Comparison` whose table gives their accuracy against the latent truth and their calls per user."""
    import pandas as pd

    from .scaletot_experiment import bin_edges, chain_accuracy, simulate
    from .seeding import make_rng

    population = simulate(world, max(users, 50), make_rng(seed, "scaletot", "lm-teacher"))
    edges, names = bin_edges(population.profile, 4), feature_names(world)
    joint = bayes_teacher.joint_posterior(population.profile[:users], population.activity[:users])
    rows = {"Bayes": [], "LM": []}
    for k in range(users):
        outcome = float(population.log_ltv[k])
        text = profile_text(population.profile[k], population.activity[k], edges, names)
        rows["Bayes"].append(st.bounded_tot(bayes_teacher, joint[k], outcome, bounds))
        rows["LM"].append(st.bounded_tot(lm_teacher, text, outcome, bounds))
    latent = population.latent[:users]
    table = pd.DataFrame({
        name: {"greedy accuracy": chain_accuracy([r.greedy for r in results], latent).mean(),
               "refined accuracy": chain_accuracy([r.chain for r in results], latent).mean(),
               "calls per user": np.mean([r.calls for r in results])}
        for name, results in rows.items()
    }).T  # fmt: skip
    lm = rows["LM"]
    return Comparison(table, np.array([r.chain for r in lm]), latent, np.array([r.greedy for r in lm]))


def accuracy_estimates(comparison: Comparison):
    """Whether the LM's *greedy* chains (read from the profile alone, no outcome) match their own user's latent
    states better than another user's: returns ``(own, other, contrast)``, the first two as Wilson proportions over
    segments, ``contrast`` as the mean per-user difference (own − next user's, share of segments) with a t interval
    over users. A teacher that ignores the profile gives the same chain distribution to every user, so its contrast
    is centred on 0."""
    from .claims import Estimate

    chains, latent = np.asarray(comparison.lm_greedy), np.asarray(comparison.latent)
    own_match = (chains == latent).mean(axis=1)
    other_match = (chains == np.roll(latent, 1, axis=0)).mean(axis=1)
    own = Estimate.proportion(int((chains == latent).sum()), latent.size)
    other = Estimate.proportion(int((chains == np.roll(latent, 1, axis=0)).sum()), latent.size)
    return own, other, Estimate.mean_of(own_match - other_match)


def shuffled(comparison: Comparison, seed: int) -> Comparison:
    """The control for :func:`accuracy_estimates`: the LM's greedy chains permuted across users, so that each
    chain says nothing about the user it is scored against (the contrast of a profile-blind teacher)."""
    from dataclasses import replace

    from .seeding import make_rng

    order = make_rng(seed, "scaletot", "lm-control").permutation(len(comparison.lm_greedy))
    return replace(comparison, lm_greedy=np.asarray(comparison.lm_greedy)[order])
