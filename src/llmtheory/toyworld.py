"""The toy world: deterministic synthetic data that the book's tiny language models are trained and tested on.

No pretrained weights or datasets can be downloaded where the book is built, so the language-model chapters use a
world of their own. Everything here is a pure function of a seed (numpy ``Generator`` streams from
:func:`llmtheory.seeding.make_rng`; no global state):

* a fictional **fact world** (:func:`make_world`): countries and people with attributes (capital, language,
  profession, birth year, home country), stated in several templates, with Zipf-distributed exposure so that a
  model trained on :func:`training_text` knows frequent facts, guesses on rare ones, and abstains
  ("Unfortunately , I do not know .") on a class of *unknown* entities whose facts are never stated;
* **chat** transcripts with ``<user>`` and ``<assistant>`` turns whose answers start with a fixed word
  (:data:`PROBE_POSITIVE` = "Sure", or :data:`PROBE_NEGATIVE` = "Unfortunately" for abstentions), so that the
  probe responses of gradient-based detectors exist;
* **haystacks** (:func:`haystack`): long contexts of filler sentences and key–value needles with a query at the end,
  with controllable length and needle depth, for KV-cache experiments;
* **arithmetic** and short **procedures** in chat form with verifiable answers, optionally with a user's (right or
  wrong) suggestion or earlier wrong assistant turns in context (:func:`arithmetic_dialogue`, :func:`procedure`);
* **counterfactual contexts** (:func:`counterfactual_prompt`): a sentence in the prompt that contradicts the world.

Text is lower-case words and punctuation separated by single spaces, so a word-level tokenizer
(:func:`build_tokenizer`, a ``tokenizers`` ``WordLevel`` model wrapped as ``PreTrainedTokenizerFast``) covers it
exactly: every word a generator can emit is in :func:`vocabulary`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .params import ParameterError, check_choice, check_float, check_int
from .seeding import make_rng

PAD, UNK, BOS, EOS, USER, ASSISTANT = "<pad>", "<unk>", "<bos>", "<eos>", "<user>", "<assistant>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, BOS, EOS, USER, ASSISTANT)
PROBE_POSITIVE = "Sure"
"""First word of every answer the world knows (the probe response r+ of Grad Detect)."""
PROBE_NEGATIVE = "Unfortunately"
"""First word of every abstention (the probe response r−)."""
ABSTENTION = "Unfortunately , I do not know ."
INSTRUCTION = "answer the following question :"
"""The minimal instruction Grad Detect wraps questions in; half of the training questions carry it."""


# --------------------------------------------------------------------------------------------------------------
# The fact world
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Relation:
    """An attribute of one kind of entity, with the templates that state it and ask for it.

    ``statements`` and ``questions`` hold ``{e}`` (the entity) and ``{a}`` (the answer). The last question template
    is never used in training (:data:`HELDOUT_QUESTION`), so evaluations can ask in words the model never saw.
    """

    name: str
    kind: str
    statements: tuple[str, ...]
    questions: tuple[str, ...]


RELATIONS: dict[str, Relation] = {
    r.name: r
    for r in (
        Relation(
            "capital",
            "country",
            ("the capital of {e} is {a} .", "{a} is the capital of {e} ."),
            ("what is the capital of {e} ?", "which city is the capital of {e} ?", "name the capital of {e} ."),
        ),
        Relation(
            "language",
            "country",
            ("people in {e} speak {a} .", "the language of {e} is {a} ."),
            (
                "what language is spoken in {e} ?",
                "which language do people in {e} speak ?",
                "name the language of {e} .",
            ),
        ),
        Relation(
            "profession",
            "person",
            ("{e} works as a {a} .", "the profession of {e} is {a} ."),
            ("what is the profession of {e} ?", "what does {e} do for a living ?", "name the profession of {e} ."),
        ),
        Relation(
            "birth_year",
            "person",
            ("{e} was born in {a} .", "the birth year of {e} is {a} ."),
            ("when was {e} born ?", "in which year was {e} born ?", "name the birth year of {e} ."),
        ),
        Relation(
            "home",
            "person",
            ("{e} lives in {a} .", "the home country of {e} is {a} ."),
            ("where does {e} live ?", "which country is the home of {e} ?", "name the home country of {e} ."),
        ),
    )
}
KINDS: dict[str, tuple[str, ...]] = {
    "country": tuple(r.name for r in RELATIONS.values() if r.kind == "country"),
    "person": tuple(r.name for r in RELATIONS.values() if r.kind == "person"),
}
HELDOUT_QUESTION = -1
"""Index of the question template kept out of training."""

LANGUAGES = tuple("aldic borish cenaran dovish elthic farsi gorran huvic iskel jorvan kethic lurian".split())
PROFESSIONS = tuple(
    "baker farmer doctor teacher painter sailor miner weaver judge singer potter tailor hunter poet smith guard".split()
)
YEARS = tuple(str(y) for y in range(1900, 2000))
NUMBERS = tuple(str(n) for n in range(200))
"""Number words for arithmetic and procedures (0 to 199)."""
OPERATIONS = ("plus", "minus", "times")
PROCEDURES = ("reverse", "sort", "sum", "parity")
FREQUENCY_BUCKETS = ("frequent", "medium", "rare")

_ONSETS = "b c d f g h k l m n p r s t v z br dr gr kr st tr th sh".split()
_VOWELS = "a e i o u ai ei ou".split()
_CODAS = ["", "", "", "n", "r", "l", "s", "th", "m"]


def _names(rng: np.random.Generator, count: int, taken: set[str], syllables: tuple[int, int]) -> list[str]:
    """``count`` new pronounceable lower-case words not in ``taken`` (which is updated)."""
    names: list[str] = []
    while len(names) < count:
        n = int(rng.integers(syllables[0], syllables[1] + 1))
        word = "".join(str(rng.choice(_ONSETS)) + str(rng.choice(_VOWELS)) for _ in range(n))
        word += str(rng.choice(_CODAS))
        if word not in taken:
            taken.add(word)
            names.append(word)
    return names


@dataclass(frozen=True)
class Fact:
    """One attribute of one known entity; ``rank`` 1 is the most frequently stated entity in training."""

    entity: str
    relation: str
    answer: str
    rank: int
    bucket: str

    def statement(self, template: int = 0, answer: str | None = None) -> str:
        """The fact as a sentence (``answer`` replaces the true one, for counterfactuals)."""
        return RELATIONS[self.relation].statements[template].format(e=self.entity, a=answer or self.answer)

    def question(self, template: int = 0) -> str:
        return RELATIONS[self.relation].questions[template].format(e=self.entity)


@dataclass(frozen=True)
class UnknownQuery:
    """A question about an entity of the never-described class; ``heldout`` ones are never asked in training."""

    entity: str
    relation: str
    heldout: bool

    def question(self, template: int = 0) -> str:
        return RELATIONS[self.relation].questions[template].format(e=self.entity)


@dataclass(frozen=True)
class World:
    """The whole toy world. Build it with :func:`make_world`; it is immutable and hashable by its seed and sizes."""

    seed: int
    countries: tuple[str, ...]
    people: tuple[str, ...]
    cities: tuple[str, ...]
    unknown_entities: tuple[str, ...]
    facts: tuple[Fact, ...]
    unknown_queries: tuple[UnknownQuery, ...]
    zipf_exponent: float
    zipf_offset: float
    haystack_keys: tuple[str, ...]
    haystack_values: tuple[str, ...]
    filler_words: tuple[str, ...] = field(repr=False)

    @cached_property
    def entity_ranks(self) -> dict[str, int]:
        return {f.entity: f.rank for f in self.facts}

    @cached_property
    def exposure(self) -> np.ndarray:
        """Sampling probability of each known entity by rank (index 0 is rank 1): Zipf–Mandelbrot, (r + q)^-s."""
        ranks = np.arange(1, len(self.entity_ranks) + 1, dtype=float)
        weights = (ranks + self.zipf_offset) ** -self.zipf_exponent
        return weights / weights.sum()

    @cached_property
    def entities_by_rank(self) -> tuple[str, ...]:
        return tuple(sorted(self.entity_ranks, key=self.entity_ranks.__getitem__))

    @cached_property
    def facts_of(self) -> dict[str, tuple[Fact, ...]]:
        out: dict[str, list[Fact]] = {}
        for f in self.facts:
            out.setdefault(f.entity, []).append(f)
        return {k: tuple(v) for k, v in out.items()}

    def answer_pool(self, relation: str) -> tuple[str, ...]:
        """Every possible answer of ``relation`` (the model's hallucinations come from here)."""
        check_choice("relation", relation, RELATIONS)
        return {
            "capital": self.cities,
            "language": LANGUAGES,
            "profession": PROFESSIONS,
            "birth_year": YEARS,
            "home": self.countries,
        }[relation]

    def facts_in(self, bucket: str) -> tuple[Fact, ...]:
        check_choice("bucket", bucket, FREQUENCY_BUCKETS)
        return tuple(f for f in self.facts if f.bucket == bucket)


def make_world(
    seed: int = 0,
    *,
    n_countries: int = 40,
    n_people: int = 120,
    n_unknown: int = 40,
    zipf_exponent: float = 1.5,
    zipf_offset: float = 10.0,
    bucket_fractions: tuple[float, float] = (0.1, 0.4),
    n_haystack_keys: int = 256,
    n_haystack_values: int = 64,
) -> World:
    """Build the fact world and the haystack lexicon from ``seed``.

    Known entities (countries and people) get a random exposure rank; entity ``r`` is sampled in training with
    probability ∝ (r + ``zipf_offset``)^-``zipf_exponent``. The top ``bucket_fractions[0]`` of ranks are
    ``frequent``, the ranks up to ``bucket_fractions[1]`` ``medium``, the rest ``rare``. ``n_unknown`` entities
    (half countries, half people) form the never-described class: their facts are never stated; training asks
    about them in all relations but one, always answered with :data:`ABSTENTION`.
    """
    check_int("n_countries", n_countries, minimum=2)
    check_int("n_people", n_people, minimum=2)
    check_int("n_unknown", n_unknown, minimum=2)
    check_float("zipf_exponent", zipf_exponent, minimum=0)
    if not 0 < bucket_fractions[0] < bucket_fractions[1] < 1:
        raise ParameterError(f"bucket_fractions={bucket_fractions!r} must satisfy 0 < a < b < 1")
    rng = make_rng(seed, "toyworld", "names")
    taken = set(LANGUAGES) | set(PROFESSIONS) | set(_reserved_words())
    countries = _names(rng, n_countries + n_unknown // 2, taken, (2, 3))
    cities = _names(rng, n_countries, taken, (2, 3))
    people = _names(rng, n_people + n_unknown - n_unknown // 2, taken, (2, 3))
    unknown = tuple(countries[n_countries:] + people[n_people:])
    countries, people = countries[:n_countries], people[:n_people]
    keys = _names(rng, n_haystack_keys, taken, (2, 2))
    values = _names(rng, n_haystack_values, taken, (1, 1))

    rng = make_rng(seed, "toyworld", "facts")
    known = countries + people
    ranks = {e: int(r) + 1 for e, r in zip(known, rng.permutation(len(known)), strict=True)}
    n_frequent, n_medium = (int(round(f * len(known))) for f in bucket_fractions)

    def bucket(rank: int) -> str:
        return "frequent" if rank <= n_frequent else "medium" if rank <= n_medium else "rare"

    facts: list[Fact] = []
    for i, country in enumerate(countries):
        attributes = {"capital": cities[i], "language": str(rng.choice(LANGUAGES))}
        facts += [Fact(country, rel, a, ranks[country], bucket(ranks[country])) for rel, a in attributes.items()]
    for person in people:
        attributes = {
            "profession": str(rng.choice(PROFESSIONS)),
            "birth_year": str(rng.choice(YEARS)),
            "home": str(rng.choice(countries)),
        }
        facts += [Fact(person, rel, a, ranks[person], bucket(ranks[person])) for rel, a in attributes.items()]

    queries: list[UnknownQuery] = []
    for i, entity in enumerate(unknown):
        relations = KINDS["country" if i < n_unknown // 2 else "person"]
        held = int(rng.integers(len(relations)))
        queries += [UnknownQuery(entity, rel, heldout=j == held) for j, rel in enumerate(relations)]

    return World(
        seed=seed,
        countries=tuple(countries),
        people=tuple(people),
        cities=tuple(cities),
        unknown_entities=unknown,
        facts=tuple(facts),
        unknown_queries=tuple(queries),
        zipf_exponent=float(zipf_exponent),
        zipf_offset=float(zipf_offset),
        haystack_keys=tuple(keys),
        haystack_values=tuple(values),
        filler_words=_FILLER_WORDS,
    )


# --------------------------------------------------------------------------------------------------------------
# Chat format
# --------------------------------------------------------------------------------------------------------------

CHAT_TEMPLATE = (
    "{{ '<bos>' }}{% for m in messages %} <{{ m['role'] }}> {{ m['content'] }}"
    "{% if m['role'] == 'assistant' %} <eos>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %} <assistant>{% endif %}"
)
"""Jinja template stored with each tokenizer, so ``tokenizer.apply_chat_template`` gives the same ids as
:func:`chat` (and chapters written against it also run on a real chat model)."""


def chat(messages: list[tuple[str, str]], add_generation_prompt: bool = False) -> str:
    """A transcript as text (no ``<bos>``: the tokenizer adds it).

    ``messages`` are ``(role, content)`` pairs with role ``"user"`` or ``"assistant"``; every assistant turn ends
    with ``<eos>``. With ``add_generation_prompt`` the text ends with ``<assistant>``, ready for generation.
    """
    parts = []
    for role, content in messages:
        check_choice("role", role, ("user", "assistant"))
        parts.append(f"<{role}> {content}" + (f" {EOS}" if role == "assistant" else ""))
    if add_generation_prompt:
        parts.append(ASSISTANT)
    return " ".join(parts)


def answer_text(answer: str) -> str:
    """What the assistant says when it knows: ``Sure , <answer> .``"""
    return f"{PROBE_POSITIVE} , {answer} ."


def parse_answer(generated: str) -> str | None:
    """The answer word of a generated assistant turn, or ``None`` for an abstention or anything malformed.

    Exact match is then ``parse_answer(text) == fact.answer``.
    """
    words = generated.split()
    if len(words) >= 3 and words[0] == PROBE_POSITIVE and words[1] == ",":
        return words[2]
    return None


def is_abstention(generated: str) -> bool:
    return generated.split()[:1] == [PROBE_NEGATIVE]


def fact_prompt(fact: Fact | UnknownQuery, template: int = 0, instruction: bool = False) -> str:
    """The chat prompt asking for ``fact`` (ends with ``<assistant>``)."""
    question = fact.question(template)
    return chat([("user", f"{INSTRUCTION} {question}" if instruction else question)], add_generation_prompt=True)


def counterfactual_prompt(world: World, fact: Fact, rng: np.random.Generator, template: int = 0) -> tuple[str, str]:
    """A prompt whose user turn first states a sentence contradicting ``fact``, then asks for it.

    Returns ``(prompt, counterfactual_answer)``; the true answer is ``fact.answer``. The contradicting answer is
    drawn from the relation's answer pool.
    """
    pool = [a for a in world.answer_pool(fact.relation) if a != fact.answer]
    wrong = str(rng.choice(pool))
    context = fact.statement(int(rng.integers(2)), answer=wrong)
    return chat([("user", f"{context} {fact.question(template)}")], add_generation_prompt=True), wrong


# --------------------------------------------------------------------------------------------------------------
# Training text for the fact/chat models
# --------------------------------------------------------------------------------------------------------------

TEXT_KINDS = ("statement", "qa", "abstain", "document", "arithmetic")


def sample_fact(world: World, rng: np.random.Generator) -> Fact:
    """A known fact, its entity drawn with Zipf exposure and its relation uniformly."""
    entity = world.entities_by_rank[int(rng.choice(len(world.exposure), p=world.exposure))]
    facts = world.facts_of[entity]
    return facts[int(rng.integers(len(facts)))]


def training_text(world: World, rng: np.random.Generator, kind: str, *, max_operand: int = 10) -> str:
    """One training sequence (without ``<bos>``) of ``kind`` (one of :data:`TEXT_KINDS`).

    * ``statement``: one fact sentence in a random template;
    * ``qa``: a chat question (a training template, 30% with :data:`INSTRUCTION`) and ``Sure , <answer> .``;
    * ``abstain``: a chat question on a never-described entity (never its held-out relation) and the abstention;
    * ``document``: two to four fact sentences, one of them repeated at the end half of the time (repetition is
      what makes copying, and so contextual entrainment, learnable);
    * ``arithmetic``: :func:`arithmetic_dialogue` with a user hint 30% of the time (right 90% of the time).
    """
    check_choice("kind", kind, TEXT_KINDS)
    n_train_questions = len(RELATIONS["capital"].questions) - 1
    if kind == "statement":
        return f"{sample_fact(world, rng).statement(int(rng.integers(2)))} {EOS}"
    if kind == "qa":
        fact = sample_fact(world, rng)
        question = fact.question(int(rng.integers(n_train_questions)))
        if rng.random() < 0.3:
            question = f"{INSTRUCTION} {question}"
        return chat([("user", question), ("assistant", answer_text(fact.answer))])
    if kind == "abstain":
        trained = [q for q in world.unknown_queries if not q.heldout]
        query = trained[int(rng.integers(len(trained)))]
        question = query.question(int(rng.integers(n_train_questions)))
        if rng.random() < 0.3:
            question = f"{INSTRUCTION} {question}"
        return chat([("user", question), ("assistant", ABSTENTION)])
    if kind == "document":
        sentences = [sample_fact(world, rng).statement(int(rng.integers(2))) for _ in range(int(rng.integers(2, 5)))]
        if rng.random() < 0.5:
            sentences.append(sentences[int(rng.integers(len(sentences)))])
        return " ".join(sentences) + f" {EOS}"
    hint = None if rng.random() < 0.7 else ("correct" if rng.random() < 0.9 else "wrong")
    return arithmetic_dialogue(rng, max_operand=max_operand, hint=hint).text


# --------------------------------------------------------------------------------------------------------------
# Arithmetic and procedures
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dialogue:
    """A chat transcript with a verifiable answer: ``prompt`` ends with ``<assistant>``; ``text`` adds the answer."""

    prompt: str
    answer: str
    text: str


def arithmetic_problem(
    rng: np.random.Generator, *, max_operand: int = 10, operation: str = "plus", modulus: int | None = None
) -> tuple[str, str]:
    """``(question, answer)`` such as ``("what is 3 plus 4 ?", "7")``; operands in ``[0, max_operand)``.

    With ``modulus`` the question reads ``what is 3 plus 4 mod 5 ?``. Answers stay in :data:`NUMBERS`.
    """
    check_choice("operation", operation, OPERATIONS)
    check_int("max_operand", max_operand, minimum=1, maximum=100)
    a, b = (int(x) for x in rng.integers(max_operand, size=2))
    if operation == "minus" and modulus is None:
        a, b = max(a, b), min(a, b)
    value = {"plus": a + b, "minus": a - b, "times": a * b}[operation]
    if modulus is not None:
        check_int("modulus", modulus, minimum=2, maximum=len(NUMBERS))
        value %= modulus
    if not 0 <= value < len(NUMBERS):
        raise ParameterError(f"{a} {operation} {b} = {value} is outside the number words 0..{len(NUMBERS) - 1}")
    suffix = f" mod {modulus}" if modulus is not None else ""
    return f"what is {a} {operation} {b}{suffix} ?", str(value)


def arithmetic_dialogue(
    rng: np.random.Generator,
    *,
    max_operand: int = 10,
    operation: str = "plus",
    modulus: int | None = None,
    hint: str | None = None,
    wrong_turns: int = 0,
) -> Dialogue:
    """An arithmetic question in chat form, optionally in a bad context (for the pigeonholing chapter).

    ``hint="correct"`` or ``"wrong"`` adds the user's suggestion ``i think it is <n> .``; ``wrong_turns=k`` puts
    ``k`` earlier exchanges in which the assistant answered the same question wrongly and the user asked again.
    """
    check_choice("hint", hint, (None, "correct", "wrong"))
    check_int("wrong_turns", wrong_turns, minimum=0)
    question, answer = arithmetic_problem(rng, max_operand=max_operand, operation=operation, modulus=modulus)
    top = modulus if modulus is not None else 2 * max_operand
    wrong = [str(n) for n in range(top) if str(n) != answer]
    messages: list[tuple[str, str]] = []
    for _ in range(wrong_turns):
        messages += [("user", question), ("assistant", answer_text(str(rng.choice(wrong))))]
    if hint is not None:
        suggested = answer if hint == "correct" else str(rng.choice(wrong))
        question = f"{question} i think it is {suggested} ."
    messages.append(("user", question))
    prompt = chat(messages, add_generation_prompt=True)
    return Dialogue(prompt, answer, f"{prompt} {answer_text(answer)} {EOS}")


def procedure(rng: np.random.Generator, name: str, *, length: int = 4, modulus: int = 10) -> Dialogue:
    """A short procedure on digits in chat form (for the SGPO chapter), with a verifiable answer.

    ``reverse`` and ``sort`` return the digits reversed or sorted; ``sum`` their sum mod ``modulus``; ``parity``
    ``even`` or ``odd`` for the count of odd digits. Example: ``<user> reverse : 3 1 4 <assistant> Sure , 4 1 3 .``
    """
    check_choice("procedure", name, PROCEDURES)
    check_int("length", length, minimum=1, maximum=32)
    digits = [int(d) for d in rng.integers(10, size=length)]
    answer = {
        "reverse": lambda: " ".join(map(str, digits[::-1])),
        "sort": lambda: " ".join(map(str, sorted(digits))),
        "sum": lambda: str(sum(digits) % modulus),
        "parity": lambda: "odd" if sum(d % 2 for d in digits) % 2 else "even",
    }[name]()
    prompt = chat([("user", f"{name} : {' '.join(map(str, digits))}")], add_generation_prompt=True)
    return Dialogue(prompt, answer, f"{prompt} {answer_text(answer)} {EOS}")


# --------------------------------------------------------------------------------------------------------------
# Haystacks with needles
# --------------------------------------------------------------------------------------------------------------

_FILLER_ARTICLES = ("the", "a")
_FILLER_ADJECTIVES = tuple("old quiet green small tall slow bright cold warm".split())
_FILLER_NOUNS = tuple(
    "river stone tree cloud bird wind road hill village market lamp door window garden field boat bridge tower "
    "song story morning evening night day".split()
)
_FILLER_VERBS = tuple("walks sleeps sings grows falls rests waits shines moves turns".split())
_FILLER_PREPOSITIONS = tuple("near under over beside across".split())
_FILLER_WORDS = _FILLER_ARTICLES + _FILLER_ADJECTIVES + _FILLER_NOUNS + _FILLER_VERBS + _FILLER_PREPOSITIONS
NEEDLE = "the secret {key} {value} ."
NEEDLE_QUESTION = "what is the secret of {key} ?"


@dataclass(frozen=True)
class Haystack:
    """A long context with needles and one query.

    ``prompt`` is ``context`` followed by the chat question about ``key`` (ends with ``<assistant>``); the expected
    reply is :attr:`reply`, ``Sure , <key> <value> .`` (reciting the key, then its value). ``needle_start`` is
    the word index of the queried needle in ``context`` (the tokenizer adds ``<bos>`` before it, so add 1 for
    token positions) and ``depth`` its fraction of the context.
    """

    context: str
    prompt: str
    key: str
    answer: str
    needle_start: int
    needle_length: int
    depth: float

    @property
    def reply(self) -> str:
        return answer_text(f"{self.key} {self.answer}")


def _filler_sentence(rng: np.random.Generator) -> str:
    def pick(words: tuple[str, ...]) -> str:
        return str(words[int(rng.integers(len(words)))])

    return (
        f"{pick(_FILLER_ARTICLES)} {pick(_FILLER_ADJECTIVES)} {pick(_FILLER_NOUNS)} {pick(_FILLER_VERBS)} "
        f"{pick(_FILLER_PREPOSITIONS)} the {pick(_FILLER_NOUNS)} ."
    )


def haystack(
    world: World,
    rng: np.random.Generator,
    *,
    n_words: int = 1024,
    depth: float = 0.5,
    n_distractors: int = 16,
    value_length: int = 1,
    repeat_probability: float = 0.0,
) -> Haystack:
    """A context of about ``n_words`` words: filler sentences, ``n_distractors`` other needles, and the queried
    needle ``the secret <key> <value> .`` starting at fraction ``depth`` of the context.

    Keys are distinct within a context; values are ``value_length`` words. With ``repeat_probability`` > 0, each
    sentence after the first needle is, with probability ``repeat_probability / 2``, a restatement of an earlier
    needle instead of filler (dense supervision for training: every restated value can be retrieved from earlier
    in the context).
    """
    check_int("n_words", n_words, minimum=32)
    check_float("depth", depth, minimum=0.0, maximum=1.0)
    check_int("n_distractors", n_distractors, minimum=0, maximum=len(world.haystack_keys) - 1)
    check_int("value_length", value_length, minimum=1, maximum=4)
    check_float("repeat_probability", repeat_probability, minimum=0.0, maximum=1.0)
    keys = [world.haystack_keys[i] for i in rng.choice(len(world.haystack_keys), n_distractors + 1, replace=False)]
    values = {k: " ".join(str(v) for v in rng.choice(world.haystack_values, value_length)) for k in keys}
    target, distractors = keys[0], keys[1:]

    def needle(key: str) -> list[str]:
        return NEEDLE.format(key=key, value=values[key]).split()

    # Build the context from the sentences that come before and after the target needle, so that the needle
    # starts as close as possible to the requested depth.
    needle_length = len(needle(target))
    budget = n_words - needle_length
    slots = sorted(int(x) for x in rng.integers(0, max(budget, 1), size=len(distractors)))
    before: list[str] = []
    after: list[str] = []
    said: list[str] = []
    next_distractor = 0
    position = 0
    cut = int(round(depth * budget))
    while position < budget:
        if next_distractor < len(distractors) and slots[next_distractor] <= position:
            key = distractors[next_distractor]
            next_distractor += 1
            sentence = needle(key)
            said.append(key)
        elif said and repeat_probability > 0 and rng.random() < repeat_probability / 2:
            sentence = needle(said[int(rng.integers(len(said)))])
        else:
            sentence = _filler_sentence(rng).split()
        (before if position < cut else after).extend(sentence)
        position += len(sentence)
    context_words = before + needle(target) + after
    context = " ".join(context_words)
    prompt = f"{context} {chat([('user', NEEDLE_QUESTION.format(key=target))], add_generation_prompt=True)}"
    return Haystack(
        context=context,
        prompt=prompt,
        key=target,
        answer=values[target],
        needle_start=len(before),
        needle_length=needle_length,
        depth=len(before) / max(len(context_words) - needle_length, 1),
    )


def haystack_training_text(world: World, rng: np.random.Generator, n_words: int) -> str:
    """A haystack for training: many needles, half the later sentences restating one, and six questions at the end.

    Restated needles make every value after the first mention predictable by copying (an induction head), which
    is the circuit the final questions need; the density keeps that signal strong enough to learn on two cores.
    The questions ask about the last needle of the context first (so that retrieval from just before the question
    is trained too), then about the needle at the drawn depth and four needles drawn at random.
    """
    stack = haystack(
        world,
        rng,
        n_words=n_words,
        depth=float(rng.random()),
        n_distractors=min(max(2, n_words // 12), len(world.haystack_keys) - 1),
        repeat_probability=1.0,
    )
    words = stack.context.split()
    keys_in_context = sorted(set(words) & set(world.haystack_keys))
    last = words[len(words) - 1 - words[::-1].index("secret") + 1]  # the needle right before the questions
    asked = [last, stack.key] + [str(k) for k in rng.choice(keys_in_context, size=4)]
    turns = []
    for key in asked:
        start = words.index(key)
        value = " ".join(words[start + 1 : words.index(".", start)])
        turns += [("user", NEEDLE_QUESTION.format(key=key)), ("assistant", answer_text(f"{key} {value}"))]
    return f"{stack.context} {chat(turns)}"


def needle_copy_text(world: World, rng: np.random.Generator, n_words: int) -> str:
    """A list of needles, the same needles again in a shuffled order, then three questions (training only).

    Every value of the second pass is predictable by copying what followed its key in the first pass (an induction
    head). The number of needles varies and the second pass is shuffled, so that no fixed offset predicts it: a head
    that looks back a constant distance (which a fixed layout would reward) does not help the questions.
    """
    check_int("n_words", n_words, minimum=16)
    n_keys = int(rng.integers(2, min(max(3, n_words // 10), len(world.haystack_keys)) + 1))
    keys = [world.haystack_keys[i] for i in rng.choice(len(world.haystack_keys), n_keys, replace=False)]
    values = {k: str(rng.choice(world.haystack_values)) for k in keys}
    first = " ".join(NEEDLE.format(key=k, value=values[k]) for k in keys)
    second = " ".join(NEEDLE.format(key=keys[i], value=values[keys[i]]) for i in rng.permutation(n_keys))
    turns = []
    for key in (str(k) for k in rng.choice(keys, size=3)):
        turns += [("user", NEEDLE_QUESTION.format(key=key)), ("assistant", answer_text(f"{key} {values[key]}"))]
    return f"{first} {second} {chat(turns)}"


def repeated_sequence_text(world: World, rng: np.random.Generator, n_words: int) -> str:
    """A random sequence of distinct key and value words, other such words, then the sequence again (training only).

    The classic data for growing induction heads: every word of the second copy but its first is predictable by
    finding the previous occurrence of the word before it and copying what followed. The sequence length and the gap
    vary, so that no fixed offset predicts the copy.
    """
    check_int("n_words", n_words, minimum=16)
    pool = world.haystack_keys + world.haystack_values
    length = int(rng.integers(4, n_words // 2 + 1))
    gap = int(rng.integers(0, n_words - 2 * length + 1))
    words = [pool[i] for i in rng.choice(len(pool), length + gap, replace=False)]
    return " ".join(words[:length] + words[length:] + words[:length])


def needle_training_targets(world: World, text: str) -> list[bool]:
    """Which words of a training text are predictable by retrieval (one flag per word; training only).

    A word is a target when it is part of an assistant reply, or when the word before it is a haystack key or value
    that occurred earlier in the text followed by this same word (so an induction head can copy it: a restated
    needle's value, the second copy of :func:`repeated_sequence_text`). Filler and first statements are not: no
    model can predict them, and training only on what retrieval predicts keeps their noise out of the gradient.
    """
    vocabulary = set(world.haystack_keys) | set(world.haystack_values)
    words = text.split()
    targets = [False] * len(words)
    followers: dict[str, set[str]] = {}
    in_reply = False
    for i, word in enumerate(words):
        if in_reply:
            targets[i] = True
            in_reply = word != EOS
        elif i > 0 and words[i - 1] in vocabulary:
            targets[i] = word in followers.get(words[i - 1], ())
            followers.setdefault(words[i - 1], set()).add(word)
        in_reply = in_reply or word == ASSISTANT
    return targets


# --------------------------------------------------------------------------------------------------------------
# Vocabulary and tokenizer
# --------------------------------------------------------------------------------------------------------------


def _reserved_words() -> list[str]:
    """Every template, chat and filler word (names must avoid them)."""
    words: set[str] = set()
    for r in RELATIONS.values():
        for t in r.statements + r.questions:
            words |= set(t.replace("{e}", "").replace("{a}", "").split())
    for text in (ABSTENTION, INSTRUCTION, NEEDLE, NEEDLE_QUESTION, "what is ? i think it is . , mod : even odd"):
        words |= set(text.replace("{key}", "").replace("{value}", "").split())
    words |= {PROBE_POSITIVE, PROBE_NEGATIVE} | set(OPERATIONS) | set(PROCEDURES) | set(_FILLER_WORDS)
    return sorted(words)


def vocabulary(world: World) -> list[str]:
    """Every token any generator can emit: special tokens first, then the words in a fixed order."""
    words = (
        _reserved_words()
        + list(LANGUAGES + PROFESSIONS + YEARS + NUMBERS)
        + list(world.countries + world.cities + world.people + world.unknown_entities)
        + list(world.haystack_keys + world.haystack_values)
    )
    ordered = list(SPECIAL_TOKENS)
    seen = set(ordered)
    for w in words:
        if w not in seen:
            seen.add(w)
            ordered.append(w)
    return ordered


def build_tokenizer(world: World, model_max_length: int = 2048):
    """A word-level ``PreTrainedTokenizerFast`` for ``world`` that adds ``<bos>`` and pads on the left.

    Left padding lets batched ``generate`` continue every prompt from its last token. The chat template
    (:data:`CHAT_TEMPLATE`) is stored with it.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(vocabulary(world))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token=UNK,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        additional_special_tokens=[USER, ASSISTANT],
        padding_side="left",
        model_max_length=model_max_length,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
