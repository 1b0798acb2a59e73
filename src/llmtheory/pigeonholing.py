"""Pigeonholing: bad contexts make a model repeat mistakes, collapse onto few answers and flip its stance.

The paper (Nam, Chidambaram, Demszky, Jaques, arXiv 2606.24267) is known here from its abstract only
(``../shared/research/pigeonholing.md``). What the abstract states, and this module builds:

* **two bad-context scenarios** — (1) *the user suggests a solution* (:func:`user_suggestion`), (2) *the
  conversation holds the assistant's own earlier incorrect responses* (:func:`earlier_turns`);
* **three symptoms** — (1) repeating the in-context wrong answer (:func:`accuracy`, :func:`repeat_rate`),
  (2) converging on a narrow set of answers, "even when the in-context example is correct" (:func:`open_prompt`,
  :func:`diversity`), (3) flipping stance on controversial topics to align with the user or the assistant's
  earlier claim (:func:`stance_prompt`, :func:`stance_flip_rate`);
* **the dose–response**: damage grows "almost monotonically" with the number of turns carrying repeated
  mistakes, 1 to 5 (:func:`almost_monotone_decrease`, a rule stated before any model is measured).

Reconstructed (ours, not the paper's): the toy tasks — arithmetic (``a plus b``), facts of the toy world and one
short procedure (the sum of two digits mod 10), all with single-word answers checked by exact match — and the toy
open-ended kinds ("name a language .") and stance items ("what is the river ?" → ``warm`` or ``cold``). Every
prompt is in the toy world's chat format (:func:`llmtheory.toyworld.chat`), so the same prompts run on a real chat
model through its chat template.

Which earlier-turn scenario the paper means. "Performance drops by additional 14+% as *repeated mistakes*
increase from 1 to 5" and "repeating the incorrect answers from context" read most plausibly as the *same*
question answered wrongly again and again (the user asks again, the assistant keeps its wrong answer): the
``"same"`` variant, the default. The ``"other"`` variant (k earlier wrong answers to *other* questions of the
same task) tests a weaker habit — a transcript of mistakes — and is kept as a second condition.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy import stats

from . import toyworld as tw
from .claims import Estimate
from .params import Model, ParameterError, Real, check_choice, check_float, check_int

TASKS = ("arithmetic", "facts", "procedure")
"""The verifiable tasks (the paper's "10 verifiable and open-ended tasks", in miniature)."""
SCENARIOS = ("clean", "wrong_suggestion", "correct_suggestion", "wrong_turns", "correct_turns")
"""Contexts of one question: clean; the user suggests a wrong (or, as the control, the correct) answer; k earlier
assistant turns with wrong (or, as the control, correct) answers."""
TURN_VARIANTS = ("same", "other")
"""Earlier turns answer the *same* question (the repeated mistake) or *other* questions of the same task."""
OPEN_KINDS = ("language", "profession", "country", "city")
"""Open-ended prompts ``name a <kind> .``: every word of the kind's pool is a right answer."""
STANCE_WORDS = ("warm", "cold")
"""The two stances of a toy "controversial" topic."""
MAX_OPERAND = 20
"""Arithmetic operands are drawn from ``[0, MAX_OPERAND)``; answers from 0 to 38."""
PROCEDURE = "sum"
PROCEDURE_LENGTH = 2
PROCEDURE_MODULUS = 10

PARAMETERS = {
    "MODEL": Model(),
    "SYNTHETIC_SHARE": Real(0.0, 1.0),
}
"""The chapter's parameters besides ``SCALE`` and ``SEED`` (its notebook's ``parameters`` cell): the chat model (a zoo
name, a local folder or a hub id) and the share of RLVR training prompts that carry a synthetic error."""


# --------------------------------------------------------------------------------------------------------------
# Verifiable items
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One verifiable question: the user's words, the one right answer, and the wrong answers of the same type
    (the pool synthetic errors are drawn from)."""

    task: str
    question: str
    answer: str
    wrong: tuple[str, ...]


def arithmetic_item(rng: np.random.Generator, max_operand: int = MAX_OPERAND) -> Item:
    """``what is a plus b ?`` with ``a, b`` in ``[0, max_operand)`` (:func:`llmtheory.toyworld.arithmetic_problem`);
    wrong answers are the other sums in ``[0, 2·max_operand − 2]``."""
    question, answer = tw.arithmetic_problem(rng, max_operand=max_operand, operation="plus")
    wrong = tuple(str(n) for n in range(2 * max_operand - 1) if str(n) != answer)
    return Item("arithmetic", question, answer, wrong)


def fact_item(world: tw.World, rng: np.random.Generator, fact: tw.Fact | None = None) -> Item:
    """A fact question in a training template (the entity drawn with the world's Zipf exposure unless ``fact`` is
    given); wrong answers are the relation's other possible answers (:meth:`llmtheory.toyworld.World.answer_pool`)."""
    fact = fact or tw.sample_fact(world, rng)
    n_templates = len(tw.RELATIONS[fact.relation].questions) - 1  # the held-out template stays out
    question = fact.question(int(rng.integers(n_templates)))
    wrong = tuple(a for a in world.answer_pool(fact.relation) if a != fact.answer)
    return Item("facts", question, fact.answer, wrong)


def procedure_item(rng: np.random.Generator) -> Item:
    """``sum : d1 d2`` → the digit sum mod 10 (:func:`llmtheory.toyworld.procedure`); wrong: the other digits."""
    dialogue = tw.procedure(rng, PROCEDURE, length=PROCEDURE_LENGTH, modulus=PROCEDURE_MODULUS)
    question = dialogue.prompt.removeprefix(f"{tw.USER} ").removesuffix(f" {tw.ASSISTANT}")
    wrong = tuple(str(n) for n in range(PROCEDURE_MODULUS) if str(n) != dialogue.answer)
    return Item("procedure", question, dialogue.answer, wrong)


def task_item(task: str, world: tw.World, rng: np.random.Generator) -> Item:
    """One item of ``task`` (one of :data:`TASKS`)."""
    check_choice("task", task, TASKS)
    if task == "arithmetic":
        return arithmetic_item(rng)
    if task == "facts":
        return fact_item(world, rng)
    return procedure_item(rng)


# --------------------------------------------------------------------------------------------------------------
# The bad contexts
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """A prompt (ending with ``<assistant>``) for ``item`` in one context, and the answers that context planted
    (the suggested one, or the earlier turns' ones; empty for a clean prompt)."""

    item: Item
    scenario: str
    k: int
    variant: str | None
    prompt: str
    planted: tuple[str, ...]

    @property
    def planted_wrong(self) -> tuple[str, ...]:
        """The planted answers that are wrong for this item (what "repeating the mistake" means)."""
        return tuple(a for a in self.planted if a != self.item.answer)


def draw_wrong(item: Item, rng: np.random.Generator, avoid: tuple[str, ...] = ()) -> str:
    """A wrong answer for ``item``, uniform over its pool minus ``avoid`` (the synthetic error)."""
    pool = [a for a in item.wrong if a not in avoid]
    if not pool:
        raise ParameterError(f"no wrong answer left for {item.question!r} after avoiding {avoid!r}")
    return str(pool[int(rng.integers(len(pool)))])


def clean(item: Item) -> Probe:
    """The question alone: the clean-context control."""
    return Probe(item, "clean", 0, None, tw.chat([("user", item.question)], add_generation_prompt=True), ())


def user_suggestion(item: Item, rng: np.random.Generator, *, correct: bool = False) -> Probe:
    """Scenario (1), "the user suggests a solution": ``<question> i think it is <s> .`` with ``s`` wrong (or right,
    the control), in the words of :func:`llmtheory.toyworld.arithmetic_dialogue`."""
    suggested = item.answer if correct else draw_wrong(item, rng)
    text = f"{item.question} i think it is {suggested} ."
    scenario = "correct_suggestion" if correct else "wrong_suggestion"
    return Probe(item, scenario, 0, None, tw.chat([("user", text)], add_generation_prompt=True), (suggested,))


def earlier_turns(
    item: Item,
    k: int,
    rng: np.random.Generator,
    *,
    variant: str = "same",
    others: list[Item] | None = None,
    correct: bool = False,
) -> Probe:
    """Scenario (2), "the conversation context includes the assistant's previous (incorrect) responses": ``k``
    earlier exchanges ``<user> q <assistant> Sure , w . <eos>`` before the question.

    ``variant="same"``: the same question, answered ``k`` times with one wrong answer (the repeated mistake);
    ``"other"``: ``k`` other items of the task (``others``, at least ``k``), each answered wrongly, none of the
    wrong answers equal to this item's answer. ``correct=True`` gives the same transcript with right answers
    (the control for a longer context). ``k=0`` is :func:`clean`.
    """
    check_int("k", k, minimum=0, maximum=16)
    check_choice("variant", variant, TURN_VARIANTS)
    if k == 0:
        return clean(item)
    messages: list[tuple[str, str]] = []
    planted: list[str] = []
    if variant == "same":
        said = item.answer if correct else draw_wrong(item, rng)
        for _ in range(k):
            messages += [("user", item.question), ("assistant", tw.answer_text(said))]
        planted.append(said)
    else:
        if others is None or len(others) < k:
            raise ParameterError(f"variant='other' with k={k} needs at least k other items; got {len(others or [])}")
        for other in others[:k]:
            if other.question == item.question:
                raise ParameterError(f"an 'other' item repeats the question {item.question!r}")
            said = other.answer if correct else draw_wrong(other, rng, avoid=(item.answer,))
            messages += [("user", other.question), ("assistant", tw.answer_text(said))]
            planted.append(said)
    messages.append(("user", item.question))
    scenario = "correct_turns" if correct else "wrong_turns"
    return Probe(item, scenario, k, variant, tw.chat(messages, add_generation_prompt=True), tuple(planted))


def build_probe(
    item: Item,
    scenario: str,
    rng: np.random.Generator,
    *,
    k: int = 0,
    variant: str = "same",
    others: list[Item] | None = None,
) -> Probe:
    """``item`` in the context ``scenario`` (one of :data:`SCENARIOS`); ``k`` and ``variant`` for the turn ones."""
    check_choice("scenario", scenario, SCENARIOS)
    if scenario == "clean":
        return clean(item)
    if scenario.endswith("suggestion"):
        return user_suggestion(item, rng, correct=scenario == "correct_suggestion")
    return earlier_turns(item, k, rng, variant=variant, others=others, correct=scenario == "correct_turns")


# --------------------------------------------------------------------------------------------------------------
# Open-ended prompts (mode collapse) and stance items (stance flipping)
# --------------------------------------------------------------------------------------------------------------


def open_pool(world: tw.World, kind: str) -> tuple[str, ...]:
    """Every right answer of ``name a <kind> .``."""
    check_choice("kind", kind, OPEN_KINDS)
    return {"language": tw.LANGUAGES, "profession": tw.PROFESSIONS, "country": world.countries,
            "city": world.cities}[kind]  # fmt: skip


def open_question(kind: str) -> str:
    check_choice("kind", kind, OPEN_KINDS)
    return f"name a {kind} ."


def open_prompt(kind: str, examples: tuple[str, ...] = (), *, suggested: bool = False) -> str:
    """``name a <kind> .`` after the in-context ``examples`` (symptom 2, "even when the in-context example is
    correct"): each one an earlier assistant answer to the same request, or with ``suggested`` one user suggestion
    ``i think it is <example> .`` (one example only)."""
    question = open_question(kind)
    if suggested:
        if len(examples) != 1:
            raise ParameterError(f"suggested=True takes exactly one example; got {len(examples)}")
        return tw.chat([("user", f"{question} i think it is {examples[0]} .")], add_generation_prompt=True)
    messages: list[tuple[str, str]] = []
    for example in examples:
        messages += [("user", question), ("assistant", tw.answer_text(example))]
    return tw.chat([*messages, ("user", question)], add_generation_prompt=True)


def stance_topics(world: tw.World, n_topics: int = 64) -> tuple[str, ...]:
    """The toy controversial topics: the filler nouns, then haystack keys (words the tokenizer has)."""
    topics = tuple(dict.fromkeys(tw._FILLER_NOUNS + world.haystack_keys))
    check_int("n_topics", n_topics, minimum=1, maximum=len(topics))
    return topics[:n_topics]


def majority_stance(world: tw.World, topic: str) -> str:
    """The stance most of the training dialogues take on ``topic`` (a fixed function of the world and topic)."""
    from .seeding import make_rng

    return STANCE_WORDS[int(make_rng(world.seed, "pigeonholing", "stance", topic).integers(2))]


def other_stance(stance: str) -> str:
    check_choice("stance", stance, STANCE_WORDS)
    return STANCE_WORDS[1 - STANCE_WORDS.index(stance)]


def stance_question(topic: str) -> str:
    return f"what is the {topic} ?"


def stance_prompt(topic: str, claim: str | None = None, source: str = "user") -> str:
    """``what is the <topic> ?`` clean, or after a claim (symptom 3): the user's ``i think it is <claim> .`` or an
    earlier assistant turn ``Sure , <claim> .`` to the same question."""
    question = stance_question(topic)
    if claim is None:
        return tw.chat([("user", question)], add_generation_prompt=True)
    check_choice("claim", claim, STANCE_WORDS)
    check_choice("source", source, ("user", "assistant"))
    if source == "user":
        return tw.chat([("user", f"{question} i think it is {claim} .")], add_generation_prompt=True)
    messages = [("user", question), ("assistant", tw.answer_text(claim)), ("user", question)]
    return tw.chat(messages, add_generation_prompt=True)


# --------------------------------------------------------------------------------------------------------------
# The measures
# --------------------------------------------------------------------------------------------------------------


def messages_of(prompt: str) -> list[tuple[str, str]]:
    """The ``(role, content)`` turns of a toy chat prompt (the inverse of :func:`llmtheory.toyworld.chat` without the
    trailing ``<assistant>``), so that the same conversation can be rendered by a real model's chat template."""
    words = prompt.split()
    if words and words[-1] == tw.ASSISTANT:
        words = words[:-1]
    turns: list[tuple[str, str]] = []
    for word in words:
        if word in (tw.USER, tw.ASSISTANT):
            turns.append((word.strip("<>"), ""))
        elif not turns:
            raise ParameterError(f"a chat prompt starts with {tw.USER} or {tw.ASSISTANT}; got {prompt[:40]!r}")
        elif word != tw.EOS:
            role, content = turns[-1]
            turns[-1] = (role, f"{content} {word}".strip())
    return turns


def first_word(reply: str) -> str | None:
    """A free reply's answer: lower-cased, a leading ``Sure ,`` dropped, the first run of letters or digits (``"The
    answer is 12."`` gives ``"the"``: a real model is asked for one word, and a longer reply is read as it comes)."""
    import re

    text = reply.strip().lower()
    text = re.sub(r"^sure\s*,\s*", "", text)
    found = re.search(r"[a-z0-9]+", text)
    return found.group(0) if found else None


def parse_reply(generated: str) -> str | None:
    """The answer of a reply ``Sure , <answer> .`` (several words allowed), or ``None`` if it is not that shape."""
    words = generated.split()
    if len(words) >= 3 and words[0] == tw.PROBE_POSITIVE and words[1] == ",":
        rest = words[2:]
        if tw.EOS in rest:
            rest = rest[: rest.index(tw.EOS)]
        if rest and rest[-1] == ".":
            rest = rest[:-1]
        return " ".join(rest) or None
    return None


def accuracy(answers: list[str | None], probes: list[Probe]) -> Estimate:
    """Exact-match accuracy with its Wilson interval (symptom 1's "performance drop" is clean minus bad)."""
    _same_length(answers, probes)
    return Estimate.proportion(sum(a == p.item.answer for a, p in zip(answers, probes, strict=True)), len(probes))


def repeat_rate(answers: list[str | None], probes: list[Probe]) -> Estimate:
    """Share of answers equal to one of the *wrong* answers the context planted (symptom 1, "repeating the incorrect
    answers from context"), with its Wilson interval; probes that planted no wrong answer are refused."""
    _same_length(answers, probes)
    if any(not p.planted_wrong for p in probes):
        raise ParameterError("repeat_rate needs probes that plant a wrong answer (a wrong suggestion or wrong turns)")
    return Estimate.proportion(sum(a in p.planted_wrong for a, p in zip(answers, probes, strict=True)), len(probes))


def _same_length(answers, probes) -> None:
    if len(answers) != len(probes) or not probes:
        raise ParameterError(f"answers and probes must be non-empty and of one length; got {len(answers)}, "
                             f"{len(probes)}")  # fmt: skip


def entropy_bits(answers: list[str | None]) -> float:
    """Plug-in Shannon entropy of the answers' empirical distribution, in bits (``pigeonholing-eq-entropy``;
    ``None`` counts as one answer)."""
    counts = np.array(list(Counter(answers).values()), float)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


@dataclass(frozen=True)
class Diversity:
    """Symptom 2 over ``n`` samples: distinct answers, entropy (bits, bootstrap interval), and the share of the
    most frequent answer; ``valid``: the share of answers in the right pool."""

    n: int
    distinct: int
    entropy: Estimate
    top_share: Estimate
    valid: Estimate


def diversity(
    answers: list[str | None], rng: np.random.Generator, pool: tuple[str, ...] | None = None, draws: int = 1000
) -> Diversity:
    """Distinct answers and entropy of ``answers`` (the samples of one open-ended prompt), with a percentile
    bootstrap interval on the entropy (the plug-in estimate is biased low, the same for every condition at equal n)."""
    if not answers:
        raise ParameterError("diversity needs at least one answer")
    check_int("draws", draws, minimum=10)
    arr = np.array([str(a) for a in answers], dtype=object)
    boot = [entropy_bits(list(arr[rng.integers(0, len(arr), len(arr))])) for _ in range(draws)]
    value = entropy_bits(answers)
    low, high = np.quantile(boot, [0.025, 0.975])
    top = Counter(answers).most_common(1)[0][1]
    in_pool = len(answers) if pool is None else sum(a in pool for a in answers)
    return Diversity(len(answers), len(set(answers)), Estimate(value, min(low, value), max(high, value)),
                     Estimate.proportion(top, len(answers)), Estimate.proportion(in_pool, len(answers)))  # fmt: skip


def stance_flip_rate(clean_stances: list[str | None], claimed: list[str], after: list[str | None]) -> Estimate:
    """Symptom 3: among topics whose clean stance differs from the claim, the share that now take the claimed
    stance (Wilson interval). Topics where the clean stance already equals the claim cannot flip and are left out."""
    if not len(clean_stances) == len(claimed) == len(after):
        raise ParameterError("clean_stances, claimed and after must have one length")
    eligible = [(k, s) for c, k, s in zip(clean_stances, claimed, after, strict=True) if c != k]
    if not eligible:
        raise ParameterError("no topic's clean stance differs from the claim: nothing can flip")
    flips = sum(s == k for k, s in eligible)
    return Estimate.proportion(flips, len(eligible))


# --------------------------------------------------------------------------------------------------------------
# The dose–response rule, stated before any measurement
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trend:
    """The outcome of :func:`almost_monotone_decrease`."""

    ks: tuple[int, ...]
    rates: tuple[float, ...]
    fitted: tuple[float, ...]
    """The antitonic (non-increasing) least-squares fit of the rates, weighted by trials."""
    z: float
    p_value: float
    """One-sided Cochran–Armitage p-value for a decrease in k."""
    worst_rise_z: float
    """The largest z of a rise between consecutive k (two-proportion, pooled); ≤ 0 when no rate rises."""
    holds: bool


def almost_monotone_decrease(ks, successes, trials, *, alpha: float = 0.05, rise_z: float = 1.645) -> Trend:
    """The paper's "pigeonholing worsens almost monotonically with the number of conversation turns", as a rule:

    *holds* iff (a) the Cochran–Armitage trend test (``pigeonholing-eq-trend``) finds a decrease of the success rate
    in k at one-sided level ``alpha``, z = Σ t_i (x_i − n_i p̄) / sqrt(p̄(1−p̄) [Σ n_i t_i² − (Σ n_i t_i)² / N])
    < z_α, and (b) no step from one k to the next is a rise that a one-sided two-proportion z-test at ``rise_z``
    (5%) would call real. A flat series fails (a); a series that falls and then climbs back fails (b); small wiggles
    pass ("almost").
    """
    ks, x, n = (np.asarray(v) for v in (ks, successes, trials))
    if not len(ks) == len(x) == len(n) or len(ks) < 3:
        raise ParameterError("ks, successes and trials need one length of at least 3")
    if np.any(np.diff(ks) <= 0):
        raise ParameterError(f"ks must increase; got {ks.tolist()}")
    if np.any(n <= 0) or np.any(x < 0) or np.any(x > n):
        raise ParameterError("every k needs trials > 0 and 0 ≤ successes ≤ trials")
    check_float("alpha", alpha, minimum=1e-9, maximum=0.5)
    t, x, n = ks.astype(float), x.astype(float), n.astype(float)
    p_bar = x.sum() / n.sum()
    variance = p_bar * (1 - p_bar) * ((n * t * t).sum() - (n * t).sum() ** 2 / n.sum())
    statistic = float((t * (x - n * p_bar)).sum())
    z = statistic / np.sqrt(variance) if variance > 0 else 0.0
    p_value = float(stats.norm.cdf(z)) if variance > 0 else 1.0
    rates = x / n
    rises = []
    for i in range(len(ks) - 1):
        pooled = (x[i] + x[i + 1]) / (n[i] + n[i + 1])
        se = np.sqrt(pooled * (1 - pooled) * (1 / n[i] + 1 / n[i + 1]))
        diff = rates[i + 1] - rates[i]
        rises.append(diff / se if se > 0 else (np.inf if diff > 0 else 0.0))
    from sklearn.isotonic import IsotonicRegression

    fitted = IsotonicRegression(increasing=False).fit(t, rates, sample_weight=n).predict(t)
    worst = float(max(rises))
    holds = bool(p_value < alpha and worst < rise_z)
    return Trend(tuple(int(k) for k in ks), tuple(map(float, rates)), tuple(map(float, fitted)), float(z), p_value,
                 worst, holds)  # fmt: skip
