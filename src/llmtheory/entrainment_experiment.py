"""The entrainment chapter's experiment: toy items, the zoo sweep, the head search with its controls, and the
estimates each claim needs. The method itself is in :mod:`llmtheory.entrainment`.

Items (one per topic, built from :mod:`llmtheory.toyworld`'s fact world):

* **objective**: a fact's statement, *true* or *counterfactual* (the answer replaced by another of the relation's
  answers), as in the paper's LRE relations;
* **subjective** ("toy opinions"): ``i think <entity> is <quality> .`` with a quality from the world's filler
  adjectives (warm, quiet, old, …). The world defines no such fact, so no answer is right: this stands in for the
  paper's World Values Survey stances. What it cannot show: the zoo's fact models never saw these quality words in
  training (their embeddings are the initialisation) and were never trained on opinions, so the items test whether
  a stance-shaped sentence is copied, not whether a held opinion moves.

Every item has three contexts of two sentences each, so that positions match: *with* = ``s f``, *without* = ``n f``
and *unrelated* = ``u f``, where f is a true statement about another entity, n a true statement about another
entity in another relation, and u a sentence of the same template about another entity (for a counterfactual s,
with another wrong answer than s's). Δ compares *with* (or *unrelated*, the control) against *without*.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from . import entrainment as en
from . import toyworld as tw
from . import zoo
from .claims import Control, Estimate, at_least, at_most, within
from .params import ParameterError, check_int
from .seeding import make_rng

KINDS = ("true", "counterfactual", "opinion")
CONTEXTS = ("with", "unrelated")
GAIN = "with − unrelated"
"""The control-corrected gain's name in :func:`delta_table` (each kind has one item per topic, so items are topics)."""
QUALITIES = ("warm", "cold", "old", "quiet", "small", "tall", "slow", "bright", "green")
"""The toy opinions' qualities: filler adjectives of the toy world, about which the fact world says nothing."""


@dataclass(frozen=True)
class Item:
    """One sentence and its contexts; ``group`` is the topic's entity (splits keep an entity on one side)."""

    kind: str
    sentence: str
    with_context: str
    without_context: str
    unrelated_context: str
    group: str


def _other(rng, facts: Sequence[tw.Fact], entity: str, keep) -> tw.Fact:
    pool = [f for f in facts if f.entity != entity and keep(f)]
    return pool[int(rng.integers(len(pool)))]


def make_items(world: tw.World, n_topics: int, *, seed: int) -> list[Item]:
    """``n_topics`` topics, each giving a true, a counterfactual and an opinion item (3 × ``n_topics`` items)."""
    check_int("n_topics", n_topics, minimum=2, maximum=len(world.facts))
    rng = make_rng(seed, "entrainment", "items")
    other_rng = make_rng(seed, "entrainment", "unrelated-answer")  # its own stream: the other draws stay the same
    facts = list(world.facts)
    items = []
    for index in rng.choice(len(facts), n_topics, replace=False):
        fact = facts[int(index)]
        template = int(rng.integers(2))
        wrong = str(rng.choice([a for a in world.answer_pool(fact.relation) if a != fact.answer]))
        follow = _other(rng, facts, fact.entity, lambda f: True).statement(int(rng.integers(2)))
        neutral = _other(rng, facts, fact.entity, lambda f, r=fact.relation: f.relation != r).statement(template)
        same = _other(rng, facts, fact.entity, lambda f, r=fact.relation: f.relation == r)
        quality, other_quality = (str(q) for q in rng.choice(QUALITIES, 2, replace=False))
        # the unrelated counterfactual has another wrong answer: not s's (it would hold s's answer token), nor the
        # true answer of either entity
        other_wrong = str(other_rng.choice([a for a in world.answer_pool(fact.relation)
                                            if a not in (fact.answer, wrong, same.answer)]))  # fmt: skip
        sentences = {
            "true": (fact.statement(template), same.statement(template)),
            "counterfactual": (fact.statement(template, answer=wrong), same.statement(template, answer=other_wrong)),
            "opinion": (f"i think {fact.entity} is {quality} .", f"i think {same.entity} is {other_quality} ."),
        }
        for kind, (sentence, unrelated) in sentences.items():
            contexts = (f"{sentence} {follow}", f"{neutral} {follow}", f"{unrelated} {follow}")
            items.append(Item(kind, sentence, *contexts, fact.entity))
    return items


def needle_items(world: tw.World, n_items: int, *, seed: int) -> list[Item]:
    """Items for the zoo's copying model (``needle-llama-gqa``, trained on haystacks): s is a needle
    ``the secret <key> <value> .`` between two filler sentences; *without* has no needle there, *unrelated* another
    needle (another key and value). The positive control: a model with retrieval heads that copy."""
    check_int("n_items", n_items, minimum=2, maximum=len(world.haystack_keys) // 2)
    rng = make_rng(seed, "entrainment", "needles")
    keys = rng.choice(world.haystack_keys, 2 * n_items, replace=False)
    items = []
    for i in range(n_items):
        value, other_value = (str(v) for v in rng.choice(world.haystack_values, 2, replace=False))
        before, after, instead = (tw._filler_sentence(rng) for _ in range(3))
        sentence = f"the secret {keys[2 * i]} {value} ."
        unrelated = f"the secret {keys[2 * i + 1]} {other_value} ."
        contexts = (f"{before} {sentence} {after}", f"{before} {instead} {after}", f"{before} {unrelated} {after}")
        items.append(Item("needle", sentence, *contexts, str(keys[2 * i])))
    return items


def split_groups(items: Sequence[Item], *, seed: int, search_fraction: float = 0.5) -> tuple[list[Item], list[Item]]:
    """Items of a random half of the topics for the head search, the others held out for every evaluation."""
    groups = sorted({it.group for it in items})
    rng = make_rng(seed, "entrainment", "split")
    chosen = set(rng.choice(groups, int(round(search_fraction * len(groups))), replace=False).tolist())
    return [it for it in items if it.group in chosen], [it for it in items if it.group not in chosen]


def of_kind(items: Sequence[Item], *kinds: str) -> list[Item]:
    return [it for it in items if it.kind in kinds]


# --------------------------------------------------------------------------------------------------------------
# Measuring Δ on a model
# --------------------------------------------------------------------------------------------------------------


def item_deltas(model, tokenizer, items: Sequence[Item], mask: torch.Tensor | None = None,
                batch_size: int = 256) -> pd.DataFrame:  # fmt: skip
    """Per item: its kind, Δ with s in the context and with the unrelated sentence instead, ℓ(s | without), and the
    same two Δ on the sentence's least predictable token (lowest log-probability without s: in the toy world the
    entity's name or the answer), where copying would show first. ``batch_size`` items per forward pass."""
    sentences = [it.sentence for it in items]
    rows = {}
    with en.HeadMasker(model) as masker:
        masker.mask = mask
        for name in ("without", "with", "unrelated"):
            contexts = [getattr(it, f"{name}_context") for it in items]
            rows[name] = en.sentence_token_logprobs(model, tokenizer, contexts, sentences, batch_size)
    surprising = [int(np.argmin(row)) for row in rows["without"]]

    def gain(name, at_surprising=False):
        pairs = zip(rows[name], rows["without"], surprising, strict=True)
        return [a[t] - b[t] if at_surprising else a.mean() - b.mean() for a, b, t in pairs]

    return pd.DataFrame(
        {
            "kind": [it.kind for it in items],
            "group": [it.group for it in items],
            "with": gain("with"),
            "unrelated": gain("unrelated"),
            "logprob_without": [row.mean() for row in rows["without"]],
            "with_surprising": gain("with", at_surprising=True),
            "unrelated_surprising": gain("unrelated", at_surprising=True),
        }
    )


def delta_table(frames: dict[str, pd.DataFrame], suffix: str = "") -> pd.DataFrame:
    """Mean Δ with its 95% interval per model, kind and context, and the gain Δ(with) − Δ(unrelated) (rows of a
    long table for plotting); with ``suffix="_surprising"``, Δ on the least predictable token."""
    rows = []
    for model, frame in frames.items():
        for kind, part in frame.groupby("kind", sort=False):
            for context in CONTEXTS:
                e = Estimate.mean_of(part[context + suffix])
                rows.append({"model": model, "kind": kind, "context": context, "delta": e.value, "low": e.low,
                             "high": e.high})  # fmt: skip
            e = Estimate.mean_of(part["with" + suffix] - part["unrelated" + suffix])
            rows.append({"model": model, "kind": kind, "context": GAIN, "delta": e.value, "low": e.low, "high": e.high})
    return pd.DataFrame(rows)


def predicts_sentences(frame: pd.DataFrame, vocabulary_size: int, margin: float = 1.0) -> bool:
    """Whether the model predicts the toy sentences better than uniform guessing by ``margin`` nats per token; a
    model that does not (a random one) can show no entrainment worth the name, so its rows are not testable."""
    return float(frame["logprob_without"].mean()) > -np.log(vocabulary_size) + margin


def topic_gains(frame: pd.DataFrame, kinds: Sequence[str] = ("true", "counterfactual")) -> pd.Series:
    """The control-corrected gain Δ(with) − Δ(unrelated), averaged over the items of each topic: one value per topic,
    because a topic's true and counterfactual items share their entity and contexts and are not independent."""
    part = frame[frame["kind"].isin(kinds)]
    return (part["with"] - part["unrelated"]).groupby(part["group"], sort=True).mean()


def sentence_gain(frame: pd.DataFrame, kinds: Sequence[str] = ("true", "counterfactual")) -> Estimate:
    """Mean control-corrected gain over topics, with its t-interval: entrainment of *the sentence*, beyond what any
    same-template sentence in its place gives."""
    return Estimate.mean_of(topic_gains(frame, kinds).to_numpy())


def paired_difference(first: pd.DataFrame, second: pd.DataFrame, kinds: Sequence[str] = ("true", "counterfactual")):
    """Mean over the same topics of gain(second) − gain(first), gain = Δ(with) − Δ(unrelated) per topic, with its
    t-interval over topics (the size-trend test)."""
    a, b = topic_gains(first, kinds), topic_gains(second, kinds)
    if not a.index.equals(b.index):
        raise ParameterError("the two frames must hold the same items")
    return Estimate.mean_of((b - a).to_numpy())


def no_sentence_entrainment(frame: pd.DataFrame, kinds: Sequence[str] = ("true", "counterfactual")) -> str:
    """Why there is no sentence entrainment for heads to cause ("" when there is): s in the context does not beat an
    unrelated sentence in its place (the gain's 95% interval reaches 0)."""
    gain = sentence_gain(frame, kinds)
    return f"no sentence entrainment to remove: with − unrelated = {gain:.3f}" if gain.low <= 0 else ""


def head_rows_untestable(frame: pd.DataFrame, vocabulary_size: int) -> str:
    """Why the head-search rows cannot be judged on this model ("" when they can): it predicts the toy sentences
    no better than uniform guessing, or it shows no sentence entrainment (:func:`no_sentence_entrainment`)."""
    if not predicts_sentences(frame, vocabulary_size):
        return "the model predicts the toy sentences no better than uniform guessing"
    return no_sentence_entrainment(frame)


def induction_score(model, tokenizer, words: Sequence[str], *, n_sequences: int, length: int, seed: int) -> Estimate:
    """Δ (``entrainment-eq-delta``) of a random sequence of ``length`` distinct ``words`` after itself against after
    another random sequence: what induction heads (copy what followed the previous occurrence of the current token)
    give. A model without them gains ≈ 0; one with them gains several nats per token. Mean over ``n_sequences``."""
    check_int("length", length, minimum=2, maximum=len(words))
    rng = make_rng(seed, "entrainment", "induction")
    pick = [" ".join(rng.choice(list(words), length, replace=False)) for _ in range(2 * n_sequences)]
    sequences, others = pick[:n_sequences], pick[n_sequences:]
    return Estimate.mean_of(en.deltas(model, tokenizer, sequences, sequences, others))


def induction_scores(model, tokenizer, world: tw.World, *, seed: int, n_sequences: int = 32) -> dict[str, Estimate]:
    """:func:`induction_score` on sequences of 8 entity names (the words the fact models were trained on) and of 8
    haystack key and value words (the needle model's, as in ``toyworld.repeated_sequence_text``)."""
    pools = {"entity names": sorted({f.entity for f in world.facts}),
             "key and value words": [*world.haystack_keys, *world.haystack_values]}  # fmt: skip
    return {name: induction_score(model, tokenizer, pool, n_sequences=n_sequences, length=8, seed=seed)
            for name, pool in pools.items()}  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# Task accuracy without context
# --------------------------------------------------------------------------------------------------------------


def answer_prompts(world: tw.World) -> tuple[list[str], list[str]]:
    """Chat questions about every fact, ending with ``Sure ,`` so that the next token is the answer word."""
    prompts = [f"{tw.fact_prompt(f)} {tw.PROBE_POSITIVE} ," for f in world.facts]
    return prompts, [f.answer for f in world.facts]


CAPITALS: tuple[tuple[str, str], ...] = (
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"),
    ("China", "Beijing"), ("Russia", "Moscow"), ("Egypt", "Cairo"), ("Greece", "Athens"), ("Portugal", "Lisbon"),
    ("Austria", "Vienna"), ("Poland", "Warsaw"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Ireland", "Dublin"), ("Hungary", "Budapest"),
    ("Thailand", "Bangkok"), ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Cuba", "Havana"), ("Iran", "Tehran"),
    ("Iraq", "Baghdad"), ("Chile", "Santiago"), ("Argentina", "Buenos"), ("Jordan", "Amman"),
    ("Canada", "Ottawa"), ("Australia", "Canberra"), ("Nepal", "Kathmandu"), ("Indonesia", "Jakarta"),
    ("South Korea", "Seoul"), ("Vietnam", "Hanoi"), ("the Philippines", "Manila"), ("Turkey", "Ankara"),
    ("Belgium", "Brussels"), ("the Netherlands", "Amsterdam"), ("Switzerland", "Bern"), ("Czechia", "Prague"),
    ("Romania", "Bucharest"), ("Ukraine", "Kyiv"), ("Colombia", "Bogotá"), ("Venezuela", "Caracas"),
    ("Nigeria", "Abuja"), ("Ethiopia", "Addis"), ("Morocco", "Rabat"), ("Saudi Arabia", "Riyadh"),
    ("Pakistan", "Islamabad"),
)  # fmt: skip
"""48 countries and the first word of their capitals: the no-context questions of the accuracy row for a model
that was not trained on the toy world (a hub model), since it cannot know the toy world's facts."""


def accuracy_questions(model_name: str, world: tw.World, n_facts: int, tokenizer) -> tuple[list[str], list[str]]:
    """The accuracy row's no-context questions and answers, at most ``n_facts``: the toy world's facts
    (:func:`answer_prompts`) for a zoo model, which was trained on them; for any other model (a hub id or a local
    folder), "The capital of <country> is" → the first word of the capital (:data:`CAPITALS`), which a model that
    knows nothing of the real world gets wrong, so that the row is then not testable rather than judged. Questions
    whose answer ``tokenizer`` can only spell as its unknown token are left out (a model that always says the
    unknown token must not score them)."""
    if model_name in zoo.list():
        prompts, answers = answer_prompts(world)
    else:
        prompts, answers = [f"The capital of {c} is" for c, _ in CAPITALS], [a for _, a in CAPITALS]
    pairs = [(p, a) for p, a in zip(prompts, answers, strict=True) if answer_token(tokenizer, p, a) is not None]
    return [p for p, _ in pairs[:n_facts]], [a for _, a in pairs[:n_facts]]


def answer_token(tokenizer, prompt: str, answer: str) -> int | None:
    """The answer's first token as the tokenizer splits ``prompt answer`` (so that a SentencePiece tokenizer's
    word-initial piece is the one scored, not a lone "▁"); ``None`` when it is the unknown token."""
    head = tokenizer(prompt)["input_ids"]
    joint = tokenizer(f"{prompt} {answer}")["input_ids"]
    if joint[: len(head)] == head and len(joint) > len(head):
        token = joint[len(head)]
    else:  # the join changed the prompt's last token: the answer's own tokens
        token = tokenizer(" " + answer, add_special_tokens=False)["input_ids"][0]
    return None if token == tokenizer.unk_token_id else token


@torch.no_grad()
def answer_hits(model, tokenizer, prompts, answers, mask: torch.Tensor | None = None, batch_size: int = 512):
    """1 where the greedy next token after the prompt is the answer's first token (no context sentence)."""
    if not prompts:
        return np.zeros(0)
    targets = [answer_token(tokenizer, p, a) for p, a in zip(prompts, answers, strict=True)]
    hits = []
    with en.HeadMasker(model) as masker:
        masker.mask = mask
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            batch = en.sentence_batch(tokenizer, chunk, ["."] * len(chunk))  # the prompt's last token predicts
            ids = batch.input_ids.to(en._device(model))
            logits = model(input_ids=ids, attention_mask=batch.attention_mask.to(ids.device)).logits
            last = (batch.sentence_mask.argmax(1) - 1).to(ids.device)
            hits.append(logits[torch.arange(len(chunk), device=ids.device), last].argmax(-1).cpu().numpy())
    return (np.concatenate(hits) == np.array(targets)).astype(float)


# --------------------------------------------------------------------------------------------------------------
# Head search, ablation and controls
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Ablation:
    """Everything the head-search claims need, measured on the held-out items."""

    layout: en.HeadLayout
    found: en.SearchResult
    null: en.SearchResult
    delta_full: np.ndarray
    delta_found: np.ndarray
    delta_null: np.ndarray
    delta_random: np.ndarray  # draws × items
    gain_full: np.ndarray  # Δ(with) − Δ(unrelated) per held-out item: the sentence's own part of Δ
    gain_found: np.ndarray
    gain_null: np.ndarray
    hits_full: np.ndarray
    hits_found: np.ndarray
    hits_null: np.ndarray
    hits_random: np.ndarray  # draws × questions
    random_sets: list = field(repr=False)

    @property
    def fraction_text(self) -> str:
        """How many heads the search turned off, as a count and a share of all heads."""
        return f"{self.size} of {self.layout.total} heads, {self.found.fraction:.1%}"

    @property
    def size(self) -> int:
        """How many heads the search turned off."""
        return len(self.found.off)

    @property
    def compared_size(self) -> int:
        return compared_size(self.size, self.layout)


def compared_size(n_found: int, layout: en.HeadLayout) -> int:
    """The size of the random head sets: the found set's, or the paper's 3% of the heads when the search found none
    (so that the control distribution is always shown)."""
    return n_found or max(1, round(0.03 * layout.total))


def run_ablation(model, tokenizer, questions, search_items, test_items, *, steps: int, draws: int, seed: int,
                 batch_size: int = 128, progress: bool = True) -> Ablation:  # fmt: skip
    """Search the heads on ``search_items`` (the entrainment objective, and the null objective of
    :func:`llmtheory.entrainment.null_contexts`, which has nothing to remove), then turn off the found heads, the
    heads the null objective's search turned off, and ``draws`` random sets of :attr:`Ablation.compared_size` heads,
    measuring Δ on ``test_items`` (and, for the first three, the gain over the unrelated sentence), and the
    no-context answer accuracy (all heads on, and each of those sets off) on ``questions`` (prompts, answers: see
    :func:`accuracy_questions`; empty lists for none). At most ``batch_size`` items per search step
    (:func:`llmtheory.entrainment.minibatches`), twice as many per scoring pass (no gradients): lower it when the
    search does not fit in memory."""
    sentences = [it.sentence for it in search_items]
    with_contexts = [it.with_context for it in search_items]
    without = [it.without_context for it in search_items]
    found = en.search_heads(model, tokenizer, sentences, with_contexts, without, steps=steps, seed=seed,
                            batch_size=batch_size, progress=progress)  # fmt: skip
    null = en.search_heads(model, tokenizer, sentences, en.null_contexts(without, seed=seed), without, steps=steps,
                           seed=seed, batch_size=batch_size, progress=progress)  # fmt: skip
    layout = en.head_layout(model)
    size = compared_size(len(found.off), layout)
    random_sets = en.random_head_sets(layout, size, draws, seed=seed)
    prompts, answers = questions
    test_sentences = [it.sentence for it in test_items]
    test_without = [it.without_context for it in test_items]

    def delta(heads, context="with"):
        contexts = [getattr(it, f"{context}_context") for it in test_items]
        mask = en.heads_off(layout, heads)
        return en.masked_deltas(model, tokenizer, mask, test_sentences, contexts, test_without,
                                batch_size=2 * batch_size)  # fmt: skip

    def gain(heads):
        return delta(heads) - delta(heads, "unrelated")

    def hits(heads):
        return answer_hits(model, tokenizer, prompts, answers, en.heads_off(layout, heads), batch_size=4 * batch_size)

    iterate = _progress(random_sets, progress)
    return Ablation(
        layout=layout,
        found=found,
        null=null,
        delta_full=delta([]),
        delta_found=delta(found.off),
        delta_null=delta(null.off),
        delta_random=np.array([delta(h) for h in iterate]),
        gain_full=gain([]),
        gain_found=gain(found.off),
        gain_null=gain(null.off),
        hits_full=hits([]),
        hits_found=hits(found.off),
        hits_null=hits(null.off),
        hits_random=np.array([hits(h) for h in random_sets]),
        random_sets=random_sets,
    )


def _progress(values, progress: bool):
    if not progress:
        return values
    from tqdm.auto import tqdm

    return tqdm(values, desc="random head sets", leave=False)


def reduction(delta_full: np.ndarray, delta_masked: np.ndarray) -> float:
    """The share of entrainment a mask removes: 1 − mean Δ_masked / mean Δ_full."""
    return float(1 - delta_masked.mean() / delta_full.mean())


def reduction_estimate(delta_full, delta_masked, *, seed: int, n_boot: int = 2000) -> Estimate:
    """:func:`reduction` with a 95% paired bootstrap interval over the held-out items."""
    rng = make_rng(seed, "entrainment", "bootstrap")
    value = reduction(delta_full, delta_masked)
    idx = rng.integers(len(delta_full), size=(n_boot, len(delta_full)))
    boots = 1 - delta_masked[idx].mean(1) / delta_full[idx].mean(1)
    low, high = np.quantile(boots, [0.025, 0.975])
    return Estimate(value, float(min(low, value)), float(max(high, value)))


def random_reductions(ablation: Ablation) -> np.ndarray:
    """The reduction of every random head set of the found set's size (the control's distribution)."""
    return np.array([reduction(ablation.delta_full, d) for d in ablation.delta_random])


def accuracy_drop(hits_full: np.ndarray, hits_masked: np.ndarray) -> Estimate:
    """Paired accuracy drop (full − masked) over the same questions, with its t-interval on the differences."""
    return Estimate.mean_of(hits_full - hits_masked)


def random_accuracy_drops(ablation: Ablation) -> np.ndarray:
    """The no-context accuracy drop of every random head set (the accuracy control's distribution); empty without
    questions."""
    return ablation.hits_full.mean() - ablation.hits_random.mean(1) if ablation.hits_full.size else np.zeros(0)


def ablation_summary(ablation: Ablation) -> pd.DataFrame:
    """One row per head set: its size, the share of Δ (and of the gain) it removes and its accuracy drop; random
    sets: the median of each, and the 95th percentile of the share of Δ removed."""
    rand_red, rand_drop = random_reductions(ablation), random_accuracy_drops(ablation)

    def drop(hits):
        return ablation.hits_full.mean() - hits.mean() if ablation.hits_full.size else np.nan

    size = ablation.compared_size
    rows = [
        ("found by the search", ablation.size, reduction(ablation.delta_full, ablation.delta_found),
         reduction(ablation.gain_full, ablation.gain_found), drop(ablation.hits_found)),
        ("found by the search on the null objective", len(ablation.null.off),
         reduction(ablation.delta_full, ablation.delta_null), reduction(ablation.gain_full, ablation.gain_null),
         drop(ablation.hits_null)),
        (f"random sets, median of {len(rand_red)}", size, float(np.median(rand_red)), np.nan,
         float(np.median(rand_drop)) if rand_drop.size else np.nan),
        ("random sets, 95th percentile", size, float(np.quantile(rand_red, 0.95)), np.nan, np.nan),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["heads turned off", "count", "share of Δ removed",
                                       "share of the gain removed", "accuracy drop"])  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# What the claims need: each ``*_rule`` returns the ``ours``, ``holds``, ``testable`` and ``control`` of a ledger row
# --------------------------------------------------------------------------------------------------------------


def head_band(total_heads: int) -> tuple[float, float]:
    """The paper's 2–4% of heads widened by half a head on each side, so that whole heads can fall in it, but never
    down to 0 heads (the lower end is at least half a head), as (centre, half-width): for 64 heads 1.22–4.78% (1 to
    3 heads), for 1,024 heads 1.95–4.05%."""
    check_int("total_heads", total_heads, minimum=1)
    half_head = 0.5 / total_heads
    low, high = max(0.02 - half_head, half_head), 0.04 + half_head
    return (low + high) / 2, (high - low) / 2


HALVING = 0.4
"""The share of Δ the found heads must remove: the independent replication's −42%, "roughly halved"."""
MAX_ACCURACY_DROP = 0.03


def kind_estimates(frame: pd.DataFrame, kind: str) -> tuple[Estimate, Estimate]:
    """Mean Δ of one kind of sentence with s in the context, and with the unrelated sentence instead (the control)."""
    part = frame[frame["kind"] == kind]
    if part.empty:
        raise ParameterError(f"no items of kind {kind!r}; kinds: {', '.join(KINDS)}")
    return Estimate.mean_of(part["with"]), Estimate.mean_of(part["unrelated"])


def entrainment_rule(frame: pd.DataFrame, kind: str, untestable: str = "") -> dict:
    """The claim "s in the context raises its own probability": mean Δ > 0 (95% interval); control: the same rule
    with an unrelated sentence of the same template in s's place."""
    with_s, unrelated = kind_estimates(frame, kind)
    return dict(ours=f"Δ {with_s:.3f}" + (f"; {untestable}" if untestable else ""), holds=at_least(with_s, 0.0),
                testable=not untestable, control=Control("unrelated sentence instead of s", f"Δ {unrelated:.3f}",
                                                         at_least(unrelated, 0.0)))  # fmt: skip


@dataclass(frozen=True)
class AblationEstimates:
    """The head-search rows' numbers: the share of heads found (and on the null objective), the share of held-out
    Δ removed by the found, the null objective's and random head sets, the accuracy drop, and why the rows are not
    testable (empty when they are)."""

    fraction_text: str
    total_heads: int
    fraction: float
    null_fraction: float
    found: Estimate | None
    null: Estimate | None
    random_median: float
    random_p95: float
    gain_removed: Estimate | None  # the share of the gain Δ(with) − Δ(unrelated) removed; None: no gain to remove
    accuracy_drop: Estimate | None
    accuracy_drop_null: Estimate | None  # the control: the null objective's heads off
    random_drops: np.ndarray  # the accuracy drop of each random head set
    accuracy_full: float
    untestable: str


def ablation_estimates(ablation: Ablation | None, *, seed: int, untestable: str = "", min_accuracy: float = 0.2):
    """Numbers for the head-search rows. ``ablation`` is ``None`` when no search ran (``untestable`` says why); the
    rows about turning heads off are also not testable when the search turned no head off, or when the held-out
    items show no entrainment to remove (mean Δ's interval reaches 0). The accuracy drop is only judged when the
    model answers at least ``min_accuracy`` of the questions with every head on."""
    if ablation is None:
        if not untestable:
            raise ParameterError("ablation=None needs the reason no search ran (untestable=...)")
        return AblationEstimates("not searched", 0, np.nan, np.nan, None, None, np.nan, np.nan, None, None, None,
                                 np.zeros(0), np.nan, untestable)  # fmt: skip
    full = Estimate.mean_of(ablation.delta_full)
    base = float(ablation.hits_full.mean()) if len(ablation.hits_full) else np.nan
    if not untestable and not ablation.size:
        untestable = "the search turned no head off"
    elif not untestable and full.low <= 0:
        untestable = f"no entrainment to remove on the held-out items (mean Δ {full:.3f})"
    randoms = random_reductions(ablation)
    return AblationEstimates(
        fraction_text=ablation.fraction_text,
        total_heads=ablation.layout.total,
        fraction=ablation.found.fraction,
        null_fraction=ablation.null.fraction,
        found=reduction_estimate(ablation.delta_full, ablation.delta_found, seed=seed),
        null=reduction_estimate(ablation.delta_full, ablation.delta_null, seed=seed),
        random_median=float(np.median(randoms)),
        random_p95=float(np.quantile(randoms, 0.95)),
        gain_removed=reduction_estimate(ablation.gain_full, ablation.gain_found, seed=seed)
        if Estimate.mean_of(ablation.gain_full).low > 0
        else None,
        accuracy_drop=accuracy_drop(ablation.hits_full, ablation.hits_found) if base >= min_accuracy else None,
        accuracy_drop_null=accuracy_drop(ablation.hits_full, ablation.hits_null) if base >= min_accuracy else None,
        random_drops=random_accuracy_drops(ablation),
        accuracy_full=base,
        untestable=untestable,
    )


NULL_CONTROL = "heads found on the null objective (nothing to remove)"


def _untestable_rule(estimates: AblationEstimates, control: str | None) -> dict:
    row = dict(ours=estimates.untestable, holds=None, testable=False)
    return row | ({"control": Control(control, "", False)} if control else {})


def fraction_rule(estimates: AblationEstimates) -> dict:
    """The claim "2–4% of the heads": the found share within :func:`head_band` (judged whenever a search ran, also
    when it turned no head off); control: the null objective's share."""
    if estimates.found is None:  # no search ran
        return _untestable_rule(estimates, NULL_CONTROL)
    band = head_band(estimates.total_heads)
    control = Control(NULL_CONTROL, f"{estimates.null_fraction:.1%}", within(estimates.null_fraction, *band))
    return dict(ours=estimates.fraction_text, holds=within(estimates.fraction, *band), testable=True,
                control=control)  # fmt: skip


def halving_rule(estimates: AblationEstimates) -> dict:
    """The claim "turning the heads off roughly halves entrainment": the share of held-out Δ removed ≥ :data:`HALVING`
    (95% bootstrap interval); control: the same rule on the heads the search turns off on the null objective."""
    if estimates.untestable:
        return _untestable_rule(estimates, NULL_CONTROL)
    gain = f"{estimates.gain_removed:.0%}" if estimates.gain_removed is not None else "no gain on the held-out items"
    return dict(ours=f"{estimates.found:.0%} of Δ removed by {estimates.fraction_text} (of the gain over the "
                f"unrelated sentence: {gain})",
                holds=at_least(estimates.found, HALVING), testable=True,
                control=Control(NULL_CONTROL, f"{estimates.null:.0%}", at_least(estimates.null, HALVING)))  # fmt: skip


def beats_random(removed: Estimate, random_p95: float) -> bool:
    """The specificity rule: the share removed beats the random sets' 95th percentile with its whole 95% interval
    (the lower bound, not the point estimate, above it)."""
    return removed.low > random_p95


def specificity_rule(estimates: AblationEstimates) -> dict:
    """The claim "the found heads, not any heads": :func:`beats_random`; control: the same rule on the null objective's
    heads."""
    if estimates.untestable:
        return _untestable_rule(estimates, NULL_CONTROL)
    return dict(ours=f"{estimates.found:.0%} vs random sets' p95 {estimates.random_p95:.0%} (median "
                f"{estimates.random_median:.0%})", holds=beats_random(estimates.found, estimates.random_p95),
                testable=True, control=Control(NULL_CONTROL, f"{estimates.null:.0%}",
                                               beats_random(estimates.null, estimates.random_p95)))  # fmt: skip


ACCURACY_CONTROL = "heads found on the null objective (not searched to spare accuracy)"


def accuracy_rule(estimates: AblationEstimates) -> dict:
    """The claim "without hurting performance": the paired no-context accuracy drop ≤ :data:`MAX_ACCURACY_DROP` (95%
    interval), with the random sets' median drop and the share of them that drop less in ``ours``; control: the same
    rule on the null objective's heads, which nothing steered away from what the model needs. Judged whenever the
    search turned heads off (also when the held-out items leave too little entrainment for the removal rows: the
    heads are off either way); not testable when no search ran, it turned no head off, or the model answers too
    few questions to lose any."""
    if estimates.found is None or not estimates.fraction:
        return _untestable_rule(estimates, ACCURACY_CONTROL)
    if estimates.accuracy_drop is None:
        untestable = (
            "no question to ask: the tokenizer spells every answer as its unknown token"
            if np.isnan(estimates.accuracy_full)
            else f"no-context accuracy {estimates.accuracy_full:.0%}: the model knows too little"
        )
        return _untestable_rule(replace(estimates, untestable=untestable), ACCURACY_CONTROL)
    drop, randoms = estimates.accuracy_drop, estimates.random_drops
    gentler = float(np.mean(randoms < drop.value))
    control = Control(
        ACCURACY_CONTROL,
        f"drop {estimates.accuracy_drop_null:.3f}",
        at_most(estimates.accuracy_drop_null, MAX_ACCURACY_DROP),
    )
    return dict(ours=f"drop {drop:.3f}; random sets of its size: median {np.median(randoms):.3f}, {gentler:.0%} of "
                f"them drop less", holds=at_most(drop, MAX_ACCURACY_DROP), testable=True, control=control)  # fmt: skip


SWEEP_COLUMNS = ("keep weight λ", "heads off", "share of heads")


def keep_weight_sweep(model, tokenizer, items: Sequence[Item], weights: Sequence[float], *, steps: int, seed: int,
                      batch_size: int = 128):  # fmt: skip
    """Heads the search turns off for each keep-heads weight λ (``entrainment-eq-loss``): how much the found set
    depends on the one constant the paper borrows from the token-level code (``batch_size`` items per step)."""
    args = ([it.sentence for it in items], [it.with_context for it in items], [it.without_context for it in items])
    rows = []
    for weight in weights:
        result = en.search_heads(model, tokenizer, *args, steps=steps, seed=seed, keep_weight=weight,
                                 batch_size=batch_size)  # fmt: skip
        rows.append((weight, len(result.off), result.fraction))
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


# --------------------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------------------


def _error_points(ax, x, rows: pd.DataFrame, label: str) -> None:
    yerr = [rows["delta"] - rows["low"], rows["high"] - rows["delta"]]
    ax.errorbar(x, rows["delta"], yerr=yerr, fmt="o", capsize=3, label=label)


def plot_deltas(table: pd.DataFrame, model: str):
    """Mean Δ per kind of sentence for one model: s in the context against the unrelated sentence."""
    import matplotlib.pyplot as plt

    part = table[table["model"] == model]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    labels = {"with": "s in the context", "unrelated": "unrelated sentence instead"}
    for offset, context in zip((-0.12, 0.12), CONTEXTS, strict=True):
        rows = part[part["context"] == context]
        _error_points(ax, np.arange(len(rows)) + offset, rows, labels[context])
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(len(KINDS)), KINDS)
    ax.set_ylabel("Δ, nats per token (95% interval)")
    ax.set_title(f"Sentence-level entrainment of {model}")
    ax.legend()
    return fig


def plot_zoo(table: pd.DataFrame, sizes: dict[str, int]):
    """The control-corrected gain Δ(with) − Δ(unrelated) per zoo model, ordered by parameter count, one marker per
    kind of sentence."""
    import matplotlib.pyplot as plt

    models = sorted(sizes, key=sizes.get)
    fig, ax = plt.subplots(figsize=(7.2, 3.8))
    for offset, kind in zip((-0.15, 0.0, 0.15), KINDS, strict=True):
        rows = table[(table["kind"] == kind) & (table["context"] == GAIN)].set_index("model").loc[models]
        _error_points(ax, np.arange(len(models)) + offset, rows, kind)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(len(models)), [f"{m}\n{sizes[m] / 1e3:.0f}k" for m in models], fontsize=8)
    ax.set_ylabel("Δ(with) − Δ(unrelated), nats/token")
    ax.set_title("Sentence entrainment beyond an unrelated sentence, across the zoo")
    ax.legend()
    return fig


def plot_search(ablation: Ablation):
    """The search's heads-off count per step (entrainment and null objective) and the final head logits."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.4), gridspec_kw={"width_ratios": [1.4, 1]})
    left.plot(ablation.found.n_off, label="entrainment objective")
    left.plot(ablation.null.n_off, label="null objective (nothing to remove)", ls="--")
    left.set_xlabel("search step")
    left.set_ylabel("heads with logit ≤ 0")
    left.set_title("Heads the search turns off")
    left.set_ylim(-0.5, max(ablation.found.n_off.max(), ablation.null.n_off.max(), 1) + 0.5)
    left.legend()
    right.grid(False)
    image = right.imshow(ablation.found.logits.numpy(), cmap="RdBu", vmin=-3, vmax=3, aspect="auto")
    right.set_xticks(range(ablation.layout.heads))
    right.set_yticks(range(ablation.layout.layers))
    right.set_xlabel("head")
    right.set_ylabel("layer")
    right.set_title("Final logits α (≤ 0: off)")
    fig.colorbar(image, ax=right)
    return fig


def plot_ablation(ablation: Ablation):
    """The share of Δ removed by each random head set (the control's distribution), the found and null sets."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    size = ablation.compared_size
    ax.hist(random_reductions(ablation), bins=20, color="#BBBBBB", label=f"random sets of {size} heads")
    if ablation.size:
        ax.axvline(reduction(ablation.delta_full, ablation.delta_found), color="#D55E00",
                   label=f"found heads ({ablation.size})")  # fmt: skip
    ax.axvline(reduction(ablation.delta_full, ablation.delta_null), color="#0072B2", ls="--",
               label=f"null-objective heads ({len(ablation.null.off)})")  # fmt: skip
    ax.set_xlabel("share of Δ removed on held-out items")
    ax.set_ylabel("random head sets")
    found = "" if ablation.size else " (none found: the paper's 3% of the heads)"
    ax.set_title(f"Turning heads off{found}")
    ax.legend()
    return fig
