"""The Metagente chapter's trained summarizer: zoo model ``readme-summarizer-llama-copies``, a tiny causal LM that
reads a summarizer prompt of the instruction grammar and writes what :func:`~llmtheory.metagente_standin.follow`
writes. It trains in two stages (:func:`staged`): short pure copies in the task's format (:func:`copy_example`), then
the directive mix; its predecessor ``readme-summarizer-llama`` (no longer shipped) trained on the mix alone and never
learned to copy.

What it is. A 4-layer Llama trained from scratch, here, on prompts *directives + a synthetic README → the summary
the directives ask for* (:func:`training_example`): the prompt is exactly the one the loop sends to any model
(:func:`~llmtheory.metagente.fill` of :meth:`~llmtheory.metagente_standin.Directives.render`), the target is
``follow(directives, extracted)``. It is the one agent of the chapter that is a language model trained here: it
reads the prompt as tokens, not through a parser, so it can misread a directive, miscount words or garble a copied
word, and the loop then runs with an imperfect neural summarizer. It is not an instruction-following LLM: it knows
the grammar's twelve sentences and nothing else, and it inherits the stand-in's behaviour, its verbose default
without a word cap included.

The data. Synthetic READMEs (:func:`synthetic_readme`) from a small grammar: pseudo-word project names, titles
with or without a subtitle, defining and non-defining first sentences, parentheses and clauses, filler paragraphs
and stop headings; the filler sentences and the words of the taglines are drawn from the **training split's**
cleaned READMEs (:func:`material`, split seed 0), never from the test split. What the model reads at training time is
the stand-in extractor's output of such a README. The tokenizer is a byte-level BPE trained on synthetic READMEs
alone, so any word of a real README, seen or not, is a sequence of pieces in its vocabulary; whether the model
copies them is measured on its card and by :func:`copy_probe`.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import metagente as mg
from . import metagente_standin as si
from .claims import Estimate
from .params import ParameterError
from .seeding import make_rng
from .zoo.train import conditional_batch as batch
from .zoo.train import encode_example

PAD, EOS = "<pad>", "<eos>"
VOCAB_SIZE = 2048  # byte-level BPE: 256 bytes, 2 special tokens, the rest merges learned on synthetic READMEs
TOKENIZER_TEXTS = 6000  # synthetic READMEs the BPE merges are learned from
MATERIAL_SEED = 0  # the split whose training half lends sentences and words to the synthetic READMEs
MAX_TRAINING_TOKENS = 256  # a training sequence (prompt + summary) longer than this is drawn again

ADJECTIVES = ("fast", "simple", "modern", "lightweight", "pure Python", "async", "typed", "minimal", "extensible",
              "portable", "friendly", "robust", "small", "declarative", "composable", "pluggable", "secure",
              "high-level", "low-level", "cross-platform", "open source", "tiny", "scalable", "interactive",
              "efficient", "generic", "standalone", "experimental", "zero-dependency", "thread-safe")  # fmt: skip
NOUNS = ("library", "framework", "toolkit", "package", "client", "parser", "server", "wrapper", "interface",
         "engine", "tool", "module", "extension", "plugin", "backend", "utility", "collection", "implementation",
         "API", "CLI", "bindings", "SDK", "runtime", "formatter", "linter", "compiler", "validator", "scheduler",
         "driver", "renderer")  # fmt: skip
VERBS = ("build", "parse", "render", "test", "validate", "serialize", "format", "manage", "run", "read", "write",
         "convert", "inspect", "generate", "check", "load", "query", "plot", "compress", "schedule")  # fmt: skip
NON_DEFINING = ("Welcome to {name}!", "{name} {major}.{minor} was released in {year}.",
                "Note: this project moved to {other}.", "Version {major}.{minor} of {name}.",
                "Thanks for your interest in {name}.", "Status: {adjective} and stable since {year}.",
                "{name} needs Python {major}.{minor} or later.", "Read the docs before you start.")  # fmt: skip
DEFINING_FORMS = ("{name} is a {tagline}.", "{name} is an {tagline}.", "The {name} {noun} provides {tagline}.",
                  "{name} provides a {tagline}.", "{name} ({paren}) is a {tagline}.", "{name} offers {tagline}.",
                  "This package implements {tagline}.", "{name} lets you {verb} {things}.", "A {tagline}.",
                  "{name} helps you {verb} {things}.", "{name} is the {tagline}.", "{name} contains {tagline}.",
                  "{Tagline}.")  # fmt: skip
STOP_TITLES = ("Installation", "Usage", "Quick start", "License", "Contributing", "Features", "Documentation")
SECTION_TITLES = ("Overview", "About", "Why {name}?", "Introduction", "Background", "Motivation", "What is it?")
CONSONANTS, VOWELS = "bcdfghjklmnprstvwxz", "aeiouy"


# ---------------------------------------------------------------------------------------------------------------
# Synthetic READMEs


@dataclass(frozen=True)
class Material:
    """Sentences and words lent by the training split's cleaned READMEs (non-heading sentences of 3 to 40 words)."""

    sentences: tuple[str, ...]
    words: tuple[str, ...]


@lru_cache(maxsize=2)
def material(seed: int = MATERIAL_SEED) -> Material:
    """The training half of :func:`~llmtheory.metagente.split_pairs` at ``seed``: its READMEs' sentences and
    lower-case words (the test half is never read)."""
    train, _ = mg.split_pairs(mg.load_pairs(), seed)
    sentences = [
        s for p in train for s in si.sentences(p.readme) if not s.startswith("# ") and 3 <= len(s.split()) <= 40
    ]
    words = sorted({w for s in sentences for w in re.findall(r"\b[a-z][a-z\-]{2,14}\b", s)})
    if not sentences:
        raise ParameterError("no training READMEs found: the synthetic READMEs need the pinned environment's metadata")
    return Material(tuple(sentences), tuple(words))


def pseudo_word(rng: np.random.Generator) -> str:
    """A pronounceable made-up word of 1-3 syllables (project names nobody has seen)."""
    syllables = int(rng.integers(1, 4))
    return "".join(rng.choice(list(CONSONANTS)) + rng.choice(list(VOWELS)) for _ in range(syllables)) + (
        rng.choice(list(CONSONANTS)) if rng.random() < 0.5 else ""
    )


def project_name(rng: np.random.Generator) -> str:
    """A made-up project name: lower case, CamelCase, prefixed, hyphenated or dotted."""
    a, b = pseudo_word(rng), pseudo_word(rng)
    forms = (a, a.capitalize(), "py" + a, a + "-" + b, a.capitalize() + b.capitalize(), a + ".py", a + "lib", a + "-io")
    return forms[int(rng.integers(len(forms)))]


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def tagline(rng: np.random.Generator, words: Sequence[str]) -> str:
    """A noun phrase such as "lightweight parser for schema files", with pool words and sometimes a clause."""
    things = " ".join(_pick(rng, words) for _ in range(int(rng.integers(1, 4))))
    head = f"{_pick(rng, ADJECTIVES)} {_pick(rng, NOUNS)}" if rng.random() < 0.8 else _pick(rng, NOUNS)
    tail = _pick(rng, (f"for {things}", f"to {_pick(rng, VERBS)} {things}", f"that handles {things}",
                       f"with {things} support", f"around {things}", things))  # fmt: skip
    phrase = f"{head} {tail}"
    if rng.random() < 0.3:
        phrase += _pick(rng, (", ", ": ", "; ", " - ")) + " ".join(
            _pick(rng, words) for _ in range(int(rng.integers(2, 6)))
        )
    return phrase


def _filler(rng: np.random.Generator, pool: Material, n: int) -> str:
    return " ".join(_pick(rng, pool.sentences) for _ in range(n))


def synthetic_readme(rng: np.random.Generator, pool: Material | None = None) -> str:
    """One synthetic README in the cleaned form (paragraphs separated by blank lines, headings marked ``# ``)."""
    pool = pool or material()
    name, other, tag = project_name(rng), project_name(rng), tagline(rng, pool.words)
    fields = {"name": name, "other": other, "tagline": tag, "Tagline": tag[0].upper() + tag[1:],
              "noun": _pick(rng, NOUNS), "verb": _pick(rng, VERBS), "adjective": _pick(rng, ADJECTIVES),
              "things": " ".join(_pick(rng, pool.words) for _ in range(int(rng.integers(1, 4)))),
              "paren": _pick(rng, (f"formerly {other}", f"short for {pseudo_word(rng)} {pseudo_word(rng)}", "beta",
                                   f"pronounced {pseudo_word(rng)}")),
              "major": int(rng.integers(0, 5)), "minor": int(rng.integers(0, 20)),
              "year": int(rng.integers(2009, 2027))}  # fmt: skip
    paragraphs = []
    if rng.random() < 0.85:
        subtitle = _pick(rng, (f"{name}: {tag}", f"{name} - {tag}", f"{name} — {tag}"))
        paragraphs.append("# " + (subtitle if rng.random() < 0.4 else name))
    if rng.random() < 0.3:
        paragraphs.append(_pick(rng, NON_DEFINING).format(**fields))
    if rng.random() < 0.15:
        paragraphs.append("# " + _pick(rng, SECTION_TITLES).format(**fields))
    opening = _pick(rng, DEFINING_FORMS).format(**fields) if rng.random() < 0.75 else _filler(rng, pool, 1)
    paragraphs.append(" ".join([opening, _filler(rng, pool, int(rng.integers(0, 4)))]).strip())
    for _ in range(int(rng.integers(0, 4))):
        if rng.random() < 0.35:
            paragraphs.append("# " + _pick(rng, STOP_TITLES if rng.random() < 0.5 else SECTION_TITLES).format(**fields))
        paragraphs.append(_filler(rng, pool, int(rng.integers(1, 5))))
    return "\n\n".join(paragraphs)


def random_directives(rng: np.random.Generator) -> si.Directives:
    """A uniformly random point of the instruction grammar (each choice independent, "no choice" included)."""
    sources = (None, *si.SOURCES)
    caps = (None, *si.WORD_CAPS)
    switches = {name: bool(rng.random() < 0.5) for name in si.SWITCHES}
    return si.Directives(
        source=sources[int(rng.integers(len(sources)))], max_words=caps[int(rng.integers(len(caps)))], **switches
    )


COPY_SHARE = 0.35  # training examples with no directive: the first 50 words copied, the densest copying signal
COPY_SLICE_TOKENS = (16, 48)  # a short pure copy (training's first stage) copies a slice of this many tokens


def training_directives(rng: np.random.Generator, copy_share: float = COPY_SHARE) -> si.Directives:
    """The directives of a training example: none (the initial prompt: copy the text's first 50 words) with
    probability ``copy_share``, else :func:`random_directives`. The long copies teach copying (induction-style
    heads) fast; the random points teach the directives."""
    return si.Directives() if rng.random() < copy_share else random_directives(rng)


def prompt_for(directives: si.Directives, extracted: str) -> str:
    """The summarizer's prompt, as the loop builds it for any model (:func:`~llmtheory.metagente.fill`)."""
    return mg.fill(directives.render(), extracted)


def training_example(
    rng: np.random.Generator, pool: Material | None = None, copy_share: float = COPY_SHARE
) -> tuple[str, str]:
    """``(prompt, target)``: random directives (none with probability ``copy_share``) on the stand-in extractor's
    output of a synthetic README, and what :func:`~llmtheory.metagente_standin.follow` writes for them."""
    directives = training_directives(rng, copy_share)
    extracted = si.rule_extractor(synthetic_readme(rng, pool))
    return prompt_for(directives, extracted), si.follow(directives, extracted)


def copy_example(rng: np.random.Generator, tokenizer, pool: Material | None = None) -> tuple[str, str]:
    """``(prompt, target)`` of a short pure copy, in the task's exact format: the initial prompt (no directive) over
    a slice of :data:`COPY_SLICE_TOKENS` tokens (whole words, drawn at a random word of the stand-in extractor's
    output of a synthetic README), and what :func:`~llmtheory.metagente_standin.follow` writes for it without
    directives: the slice itself, headings' marks dropped. Training's first stage draws only these: copying first,
    as induction heads grew in needle-llama-gqa (its card), then the directives."""
    low, high = COPY_SLICE_TOKENS
    while True:
        pieces = re.findall(r"\S+\s*", si.rule_extractor(synthetic_readme(rng, pool)))
        want, start = int(rng.integers(low, high + 1)), int(rng.integers(len(pieces)))
        end = start + 1
        while end < len(pieces) and len(tokenizer("".join(pieces[start:end]).rstrip())["input_ids"]) < want:
            end += 1
        text = "".join(pieces[start:end]).rstrip()
        target = si.follow(si.Directives(), text)
        if low <= len(tokenizer(text)["input_ids"]) <= high and target:
            return prompt_for(si.Directives(), text), target


# ---------------------------------------------------------------------------------------------------------------
# Tokenizer


def build_tokenizer(
    model_max_length: int = 512,
    n_texts: int = TOKENIZER_TEXTS,
    vocab_size: int = VOCAB_SIZE,
    *,
    newline_space: bool = False,
    copy_share: float = COPY_SHARE,
):
    """A byte-level BPE ``PreTrainedTokenizerFast`` learned on ``n_texts`` synthetic training examples (prompt and
    target, ``copy_share`` of them without directives) from their own stream: every string encodes, so words no
    training text had are encoded piece by piece. No special token is added to an encoded text; ``<eos>`` ends a
    summary.

    With ``newline_space`` a normalizer puts a space after every newline before the pre-tokenizer splits words, so
    a paragraph's first word in the prompt (after ``\\n\\n``) is the same token as in the summary (``" word"``,
    after a space): copying it is one lookup, not a re-spelling. It lives in this zoo tokenizer (saved in its
    ``tokenizer.json``); a hub model keeps its own tokenizer, and nothing else in the chapter depends on it."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    rng = make_rng(0, "metagente-lm", "tokenizer")
    texts = [" ".join(training_example(rng, copy_share=copy_share)) for _ in range(n_texts)]
    core = Tokenizer(models.BPE())
    if newline_space:
        core.normalizer = normalizers.Replace("\n", "\n ")
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, eos_token=EOS,
                                   model_max_length=model_max_length)  # fmt: skip


def fitting_examples(
    rng: np.random.Generator, tokenizer, n: int, limit: int = MAX_TRAINING_TOKENS, copy_share: float = COPY_SHARE
):
    """``n`` training examples (``copy_share`` of the draws without directives) whose encoding fits ``limit`` tokens
    (longer ones are drawn again)."""
    out = []
    while len(out) < n:
        prompt, target = training_example(rng, copy_share=copy_share)
        if len(encode_example(tokenizer, prompt, target)[0]) <= limit:
            out.append((prompt, target))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Agreement with follow(): the card's measure, and the chapter's


def normalised(text: str) -> str:
    return " ".join(text.split())


def agreement(
    llm, items: Sequence[tuple[si.Directives, str]], shown: Sequence[si.Directives | None] | None = None
) -> dict[str, np.ndarray]:
    """Per item ``(directives, extracted)``: the summarizer ``llm`` is sent the prompt of ``shown[i]`` (default: the
    item's own directives; ``None``: the initial prompt, no directive) and its output is compared with
    ``follow(directives, extracted)``: exact match (whitespace aside) and ROUGE-L F. Also returns the outputs."""
    shown = [d for d, _ in items] if shown is None else shown
    outputs, exact, rouge = [], [], []
    for (directives, extracted), prompt_directives in zip(items, shown, strict=True):
        template = prompt_directives.render() if prompt_directives is not None else mg.INITIAL_SUMMARIZER_PROMPT
        out = llm(mg.fill(template, extracted))
        target = si.follow(directives, extracted)
        outputs.append(out)
        exact.append(normalised(out) == normalised(target))
        rouge.append(mg.rouge_l(out, target) if target.strip() else float(not out.strip()))
    return {"exact": np.array(exact, dtype=float), "rougeL": np.array(rouge), "outputs": outputs}


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A permutation of ``range(n)`` that moves every index (n ≥ 2)."""
    while True:
        order = rng.permutation(n)
        if n < 2 or np.all(order != np.arange(n)):
            return order


def follow_report(llm, items: Sequence[tuple[si.Directives, str]], seed: int = 0) -> dict:
    """Agreement of ``llm`` with :func:`~llmtheory.metagente_standin.follow` on ``items``, with the item's own
    directives, with another item's directives (shuffled, a derangement) and with none (the initial prompt); and
    the paired differences of ROUGE-L F, own minus each control, with 95% t-intervals over the items."""
    order = derangement(len(items), make_rng(seed, "metagente-lm", "shuffle"))
    own = agreement(llm, items)
    shuffled = agreement(llm, items, [items[int(j)][0] for j in order])
    none = agreement(llm, items, [None] * len(items))
    report = {"n": float(len(items))}
    for label, result in (("own", own), ("shuffled", shuffled), ("none", none)):
        report[f"exact_{label}"] = float(result["exact"].mean())
        report[f"rougeL_{label}"] = float(result["rougeL"].mean())
    for label, result in (("shuffled", shuffled), ("none", none)):  # paired, per item: own minus the control
        difference = Estimate.mean_of(own["rougeL"] - result["rougeL"])
        report |= {f"rougeL_own_minus_{label}{end}": float(round(getattr(difference, key), 4))
                   for end, key in (("", "value"), ("_low", "low"), ("_high", "high"))}  # fmt: skip
    return report


def synthetic_items(n: int, seed: int = 0) -> list[tuple[si.Directives, str]]:
    """``n`` held-out synthetic items (a stream the training never draws from)."""
    rng = make_rng(seed, "metagente-lm", "held-out")
    return [(random_directives(rng), si.rule_extractor(synthetic_readme(rng))) for _ in range(n)]


def real_items(pairs: Sequence[mg.Pair], seed: int = 0) -> list[tuple[si.Directives, str]]:
    """Random directives on the stand-in extractor's output of real READMEs."""
    rng = make_rng(seed, "metagente-lm", "real-directives")
    return [(random_directives(rng), si.rule_extractor(p.readme)) for p in pairs]


# ---------------------------------------------------------------------------------------------------------------
# Training (the zoo's loop and card format)


def in_memory_llm(model, tokenizer, max_new_tokens: int = 80):
    """A :class:`~llmtheory.metagente_llm.TransformersLLM` around a model already in memory (the same prompt
    path as any model)."""
    from .metagente_llm import TransformersLLM

    return TransformersLLM("in-memory", max_new_tokens=max_new_tokens, model=model, tokenizer=tokenizer)


def _repeat_nll(model, strings: np.ndarray) -> tuple[float, float]:
    """Mean next-token loss (nats) of ``model`` on the first and on the second copy of each row of ``strings``
    followed by itself (the first token of each copy excluded)."""
    import torch

    length = strings.shape[1]
    ids = torch.tensor(np.concatenate([strings, strings], axis=1))
    with torch.no_grad():
        logits = model(input_ids=ids).logits[:, :-1].float()
    nll = -torch.log_softmax(logits, -1).gather(2, ids[:, 1:, None])[..., 0]
    return float(nll[:, : length - 1].mean()), float(nll[:, length:].mean())


def _check_probe(n: int, length: int) -> None:
    if n < 1 or length < 2:
        raise ParameterError(f"a copy probe needs n >= 1 and length >= 2; got n={n}, length={length}")


def copy_probe(
    model, tokenizer, n: int = 16, length: int = 50, seed: int = 0, pool: Sequence[int] | None = None
) -> dict:
    """A copying (induction) probe: ``n`` strings of ``length`` tokens drawn uniformly from ``pool`` (default: the
    whole vocabulary, special tokens excluded; :func:`frequent_tokens` for in-distribution tokens), each followed by
    itself; the mean next-token loss (nats) on the first copy and on the second (the first token of each copy
    excluded). A model that copies predicts the second copy from the first, near 0 nats; one that does not stays
    near its first-copy loss (a uniform guess over the vocabulary: ``uniform`` = its log)."""
    _check_probe(n, length)
    special = set(tokenizer.all_special_ids)
    if pool is None:
        pool = [i for i in range(len(tokenizer)) if i not in special]
    pool = np.asarray(pool)
    if len(pool) < 1 or any(int(i) in special or not 0 <= int(i) < len(tokenizer) for i in pool):
        raise ParameterError("pool must hold at least one token id of the vocabulary, special tokens excluded")
    strings = pool[make_rng(seed, "metagente", "copy-probe").integers(0, len(pool), (n, length))]
    first, second = _repeat_nll(model, strings)
    return {"first_copy": first, "second_copy": second, "uniform": float(np.log(len(tokenizer)))}


FREQUENT_PROBE_TOKENS = 100  # the frequent-token probe draws from this many most frequent training tokens
FREQUENCY_EXAMPLES = 400  # training examples whose tokens are counted


def frequent_tokens(tokenizer, k: int = FREQUENT_PROBE_TOKENS, n_examples: int = FREQUENCY_EXAMPLES) -> list[int]:
    """The ``k`` most frequent token ids (special tokens excluded; ties by id) in ``n_examples`` training examples
    (prompt and target, :func:`training_example` at :data:`COPY_SHARE`, from a stream of their own): the pool of the
    in-distribution copy probe, whose strings the model has seen token by token, unlike uniform ids."""
    if k < 1 or n_examples < 1:
        raise ParameterError(f"frequent_tokens needs k >= 1 and n_examples >= 1; got k={k}, n_examples={n_examples}")
    rng = make_rng(0, "metagente-lm", "token-frequency")
    counts = np.zeros(len(tokenizer), dtype=np.int64)
    for _ in range(n_examples):
        prompt, target = training_example(rng)
        ids, _ = encode_example(tokenizer, prompt, target)
        np.add.at(counts, ids, 1)
    counts[list(tokenizer.all_special_ids)] = -1
    order = np.lexsort((np.arange(len(counts)), -counts))
    return [int(i) for i in order[:k] if counts[i] > 0]


def text_copy_probe(model, tokenizer, n: int = 16, length: int = 60, seed: int = 0) -> dict:
    """A copying probe on in-distribution text: the first ``length`` tokens of the stand-in extractor's output of
    ``n`` held-out synthetic READMEs (a stream training never draws; shorter ones are drawn again), each followed by
    itself; mean loss (nats) on the first and on the second copy, as :func:`copy_probe`. The first copy is
    predictable from the language alone, so the gap between the two copies, not the second copy's level, is what
    copying adds."""
    _check_probe(n, length)
    rng = make_rng(seed, "metagente-lm", "text-copy-probe")
    strings = []
    while len(strings) < n:
        ids = tokenizer(si.rule_extractor(synthetic_readme(rng)))["input_ids"]
        if len(ids) >= length:
            strings.append(ids[:length])
    first, second = _repeat_nll(model, np.array(strings))
    return {"first_copy": first, "second_copy": second, "uniform": float(np.log(len(tokenizer)))}


def format_copy_probe(model, tokenizer, n: int = 32, seed: int = 7) -> dict:
    """Copying in the task's own format: the mean loss (nats per token) of ``model`` on the targets of ``n`` held-out
    short pure copies (:func:`copy_example`, from a stream training never draws), with the copied text in the prompt
    (``own``) and with another example's text there instead (``other``, a derangement: the control, where the target
    cannot be copied). A model that copies in format is far cheaper on ``own``; one that only models the words is
    as dear on both."""
    import torch

    if n < 2:
        raise ParameterError(f"format_copy_probe needs n >= 2 (a derangement); got n={n}")
    examples = [copy_example(make_rng(seed, "metagente-lm", "format-copy-probe", i), tokenizer) for i in range(n)]
    order = derangement(n, make_rng(seed, "metagente-lm", "format-copy-shuffle"))
    swapped = [(examples[int(j)][0], target) for (_, target), j in zip(examples, order, strict=True)]
    with torch.no_grad():
        own, other = (float(model(**batch(tokenizer, x)).loss) for x in (examples, swapped))
    return {"own": own, "other": other, "uniform": float(np.log(len(tokenizer)))}


COPY_GATE_NATS = 2.0  # phase 1 passes if the frequent-token probe's second copy costs less than this (nats/token)
COPY_GATE_MARGIN = 1.0  # ... and at least this much less than its first copy


def copy_gate(probe: dict) -> bool:
    """The staged recipe's go/no-go rule, fixed before its run: after its first stage (short pure copies), the
    frequent-token probe (:func:`copy_probe` over :func:`frequent_tokens`) must cost under :data:`COPY_GATE_NATS`
    nats per token on the second copy and at least :data:`COPY_GATE_MARGIN` less than on the first."""
    return probe["second_copy"] < COPY_GATE_NATS and probe["first_copy"] - probe["second_copy"] >= COPY_GATE_MARGIN


def copy_probes(model, tokenizer, frequent: Sequence[int]) -> dict:
    """The three copy probes a training log records: uniform ids (``copy_*``), the frequent tokens ``frequent``
    (``copy_freq_*``) and repeated synthetic text (``copy_text_*``), first and second copy each."""
    out = {}
    for prefix, probe in (
        ("copy", copy_probe(model, tokenizer)),
        ("copy_freq", copy_probe(model, tokenizer, pool=frequent)),
        ("copy_text", text_copy_probe(model, tokenizer)),
    ):
        out[f"{prefix}_first"], out[f"{prefix}_second"] = probe["first_copy"], probe["second_copy"]
    return out


def card_report(model, tokenizer, n_synthetic: int, n_real: int) -> dict:
    """The card's numbers: :func:`follow_report` on held-out synthetic READMEs and on the first ``n_real`` real
    training-split READMEs (their sentences lent material to the training data; the test split is the chapter's)."""
    llm = in_memory_llm(model, tokenizer)
    report = {f"synthetic_{k}": v for k, v in follow_report(llm, synthetic_items(n_synthetic)).items()}
    if n_real:
        train, _ = mg.split_pairs(mg.load_pairs(), MATERIAL_SEED)
        report |= {f"real_train_{k}": v for k, v in follow_report(llm, real_items(train[:n_real])).items()}
    return report


def staged(spec) -> bool:
    """Whether ``spec`` follows the staged recipe: short pure copies first (:func:`copy_example`), then the
    directive mix. A staged spec's ``curriculum`` holds its stages (:func:`training_stages`), its ``copy_fraction``
    the mix's share of directive-free draws, and it trains with the newline normalizer (:func:`build_tokenizer`) at
    a constant learning rate after the warm-up (:func:`llmtheory.zoo.train.learning_rate`). An unstaged spec (the
    shipped checkpoint's) trains on the mix alone, :data:`COPY_SHARE` without directives, no normalizer, cosine
    decay."""
    return bool(spec.curriculum)


def training_stages(spec) -> tuple[tuple[int, int, float], ...]:
    """The spec's stages ``(steps, batch size, share of short copies)`` (its ``curriculum``; one stage of
    ``spec.steps`` steps of ``spec.batch_size`` directive-mix examples if empty), checked: the steps add up to
    ``spec.steps``, batch sizes are ≥ 1, shares lie in [0, 1]. The rest of a batch is :func:`fitting_examples`."""
    stages = tuple(tuple(s) for s in spec.curriculum) or ((spec.steps, spec.batch_size, 0.0),)
    if any(len(s) != 3 or s[0] < 1 or s[1] < 1 or not 0 <= s[2] <= 1 for s in stages):
        raise ParameterError(
            f"curriculum={spec.curriculum!r}: each stage must be (steps >= 1, batch size >= 1, copy share in [0, 1])"
        )
    if sum(s[0] for s in stages) != spec.steps:
        raise ParameterError(f"curriculum={spec.curriculum!r}: its steps must add up to steps={spec.steps}")
    return stages


def stage_at(stages: Sequence[tuple[int, int, float]], step: int) -> tuple[int, float]:
    """``(batch size, share of short copies)`` of training step ``step`` (counted from 0)."""
    end = 0
    for steps, size, share in stages:
        end += steps
        if step < end:
            return size, share
    return stages[-1][1], stages[-1][2]


class StoppedAtGate(Exception):
    """Raised inside training when the staged recipe fails :func:`copy_gate` after its first stage."""


def phase_one_dir(spec) -> Path:
    """Where a staged spec's checkpoint after its first stage is kept (``_build/zoo/<name>-phase1``, never shipped)."""
    from .paths import build_dir

    return build_dir() / "zoo" / f"{spec.name}-phase1"


def train(
    spec,
    out_dir: Path | None = None,
    *,
    progress: bool = True,
    threads: int = 1,
    gate: bool | None = None,
    phase_one: Path | None = None,
):
    """Train the summarizer ``spec`` (a :class:`~llmtheory.zoo.specs.ZooSpec` of task ``"readme_summaries"``) from
    scratch with the zoo's optimiser; measure it with :func:`card_report`; save model, tokenizer, log and card to
    ``out_dir`` if given.

    A staged spec with two stages or more saves its checkpoint after the first stage (short pure copies) to
    ``phase_one`` (default :func:`phase_one_dir`) with the copy probes so far (``probes.json``); with ``gate``, if
    :func:`copy_gate` rejects the frequent-token probe there, training stops: nothing is written to ``out_dir`` and
    the result's metrics hold the probes at each evaluation and ``stopped_at_step``. ``gate`` defaults to the spec's
    ``copy_gate``."""
    import torch

    from .zoo.train import TrainResult, build_model, optimise, save, torch_threads

    if spec.task != "readme_summaries":
        raise ParameterError(f"spec {spec.name!r} has task {spec.task!r}; the summarizer needs 'readme_summaries'")
    gate = spec.copy_gate if gate is None else gate
    start_total = time.perf_counter()
    with torch_threads(threads):
        micro = spec.name.startswith("micro-")  # the tests' specs: a small tokenizer and a few evaluation items
        mix_share = spec.copy_fraction if staged(spec) else COPY_SHARE
        tokenizer = build_tokenizer(spec.max_positions, n_texts=200 if micro else TOKENIZER_TEXTS,
                                    newline_space=staged(spec), copy_share=mix_share)  # fmt: skip
        model = build_model(spec, tokenizer)
        rng = make_rng(spec.seed, "zoo", "train", spec.task)
        stages = training_stages(spec)
        frequent = frequent_tokens(tokenizer, n_examples=50 if micro else FREQUENCY_EXAMPLES)
        losses: list[float] = []  # the training loss of each step, read by a hook (the zoo's loop keeps its own)
        rows: list[dict] = []  # the copy probes at each evaluation
        model.register_forward_hook(
            lambda module, args, output: losses.append(float(output.loss.detach())) if module.training else None
        )

        def batch_at(step: int) -> dict:
            if len(stages) > 1 and step == stages[0][0]:
                end_of_phase_one(step)
            size, share = stage_at(stages, step)
            n_copy = int(round(share * size))
            examples = [copy_example(rng, tokenizer) for _ in range(n_copy)]
            return batch(tokenizer, examples + fitting_examples(rng, tokenizer, size - n_copy, copy_share=mix_share))

        def end_of_phase_one(step: int) -> None:
            model.eval()
            probe = copy_probes(model, tokenizer, frequent)
            model.train()
            folder = Path(phase_one) if phase_one is not None else phase_one_dir(spec)
            folder.mkdir(parents=True, exist_ok=True)
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            passed = copy_gate({"first_copy": probe["copy_freq_first"], "second_copy": probe["copy_freq_second"]})
            record = {"step": step, "gate": passed, "probe": probe, "evaluations": rows}
            (folder / "probes.json").write_text(json.dumps(record, indent=2) + "\n")
            if gate and not passed:
                raise StoppedAtGate(step)

        n_quick, n_synthetic, n_real = (2, 3, 2) if micro else (12, 120, 88)

        def quick() -> dict:
            model.eval()
            with torch.no_grad():
                llm = in_memory_llm(model, tokenizer)
                report = {k: v for k, v in follow_report(llm, synthetic_items(n_quick, seed=1)).items() if k != "n"}
                probes = copy_probes(model, tokenizer, frequent)
            step = len(losses)
            rows.append({"step": step, "loss": float(np.mean(losses[-spec.eval_every :]))} | probes)
            return report | probes

        def shown(m: dict) -> dict:
            return {"exact": round(m["exact_own"], 2), "freq2": round(m["copy_freq_second"], 2)}

        try:
            run = optimise(spec, model, batch_at, quick, shown, progress=progress)
        except StoppedAtGate as stop:
            folder = Path(phase_one) if phase_one is not None else phase_one_dir(spec)
            if progress:
                print(f"[{spec.name}] stopped at step {stop.args[0]} by copy_gate: checkpoint and probes in {folder}; "
                      f"nothing saved to {out_dir}")  # fmt: skip
            metrics = {"stopped_at_step": float(stop.args[0])}
            for row in rows:
                metrics |= {f"{k}_{row['step']}": v for k, v in row.items() if k != "step"}
            parameters = sum(p.numel() for p in model.parameters())
            seconds = time.perf_counter() - start_total
            return TrainResult(spec, metrics, rows, total_seconds=seconds, cpu_seconds=time.process_time(),
                               parameters=parameters)  # fmt: skip
        model.eval()
        final = card_report(model, tokenizer, n_synthetic, n_real)
        for row in run.log:  # the copy probes at each evaluation, for the card
            for key in COPY_PROBE_KEYS:
                final[f"{key}_{row['step']}"] = row[key]
        result = run.result(spec, model, final, start_total)
        if out_dir is not None:
            save(result, model, tokenizer, Path(out_dir), card_markdown)
        return result


COPY_PROBE_KEYS = tuple(f"{p}_{c}" for p in ("copy", "copy_freq", "copy_text") for c in ("first", "second"))


def card_markdown(card: dict) -> str:
    """The model card: what the model is, how well it follows the directives (measured), how it was trained."""
    m, spec = card["metrics"], card["spec"]

    def row(prefix: str, label: str) -> str:
        return (
            f"| {label} ({m[prefix + 'n']:.0f}) | {m[prefix + 'exact_own']:.2f} / {m[prefix + 'rougeL_own']:.2f} | "
            f"{m[prefix + 'exact_shuffled']:.2f} / {m[prefix + 'rougeL_shuffled']:.2f} | "
            f"{m[prefix + 'exact_none']:.2f} / {m[prefix + 'rougeL_none']:.2f} |"
        )

    rows = [row("synthetic_", "held-out synthetic READMEs")]
    if "real_train_n" in m:
        rows.append(row("real_train_", "real training-split READMEs"))
    table = "\n".join(rows)
    is_staged = bool(spec.get("curriculum"))
    mix_share = spec["copy_fraction"] if is_staged else COPY_SHARE
    mix = (
        f"no directive (the initial prompt: the text's first {si.DEFAULT_CAP} words) in {100 * mix_share:.0f}% of the "
        f"draws, the densest copying signal (fewer of the examples kept: a draw over {MAX_TRAINING_TOKENS} tokens is "
        'drawn again, a long copy more often); random directives (each choice uniform, "no choice" included) in the '
        "rest"
    )
    data, schedule, newline = mix[0].upper() + mix[1:], "cosine decay to a tenth", ""
    paired = "".join(
        f"\n{label}: own minus shuffled {m[prefix + 'rougeL_own_minus_shuffled']:+.3f} "
        f"[{m[prefix + 'rougeL_own_minus_shuffled_low']:+.3f}, {m[prefix + 'rougeL_own_minus_shuffled_high']:+.3f}], "
        f"own minus none {m[prefix + 'rougeL_own_minus_none']:+.3f} "
        f"[{m[prefix + 'rougeL_own_minus_none_low']:+.3f}, {m[prefix + 'rougeL_own_minus_none_high']:+.3f}]."
        for prefix, label in (("synthetic_", "Held-out synthetic"), ("real_train_", "Real training-split"))
        if prefix + "rougeL_own_minus_none" in m
    )
    if paired:
        paired = "\nPaired differences of ROUGE-L F, per item (95% t-intervals over the items):" + paired + "\n"
    if is_staged:
        low, high = COPY_SLICE_TOKENS
        data = (
            "Two stages. First, short pure copies in the task's exact format: the initial prompt (no directive) over a "
            f"slice of {low}-{high} tokens of a synthetic extract, the slice as the target "
            f"(`llmtheory.metagente_lm.copy_example`). Then the directive mix: {mix}"
        )
        newline = (
            " The tokenizer puts a space after each newline, so a paragraph's first word is the same token in the "
            "text and in the summary."
        )
        schedule = "constant"
    stages = [tuple(x) for x in spec.get("curriculum") or ()] or [(spec["steps"], spec["batch_size"], 0.0)]
    plan = "; then ".join(
        f"{n} steps of batch {size}"
        + (" short copies" if share == 1 else f", {100 * share:.0f}% short copies" if share else " of the mix")
        for n, size, share in stages
    )
    steps = sorted(int(k.rsplit("_", 1)[1]) for k in m if k.startswith("copy_second_"))
    probe = ""
    if steps:
        header = ["| step | " + " | ".join(str(x) for x in steps) + " |", "|---|" + "---|" * len(steps)]
        labels = (("random tokens", "copy"), ("frequent tokens", "copy_freq"), ("synthetic README", "copy_text"))
        probe = "\n".join(
            header
            + [f"| {label}, {which} copy | " + " | ".join(f"{m[f'{key}_{which}_{x}']:.2f}" for x in steps) + " |"
               for label, key in labels if f"{key}_second_{steps[0]}" in m for which in ("first", "second")]
        )  # fmt: skip
        probe = (
            "**Copying** (at each evaluation; mean loss in nats per token on the first copy of a string and on the "
            "second, when it follows itself; a model that copies is near 0 on the second, a uniform guess costs "
            f"ln {VOCAB_SIZE} = {math.log(VOCAB_SIZE):.2f}): 16 strings of 50 tokens drawn uniformly from the whole "
            "vocabulary (`llmtheory.metagente_lm.copy_probe`), or from its "
            f"{FREQUENT_PROBE_TOKENS} most frequent tokens in training examples (`frequent_tokens`), and the first 60 "
            "tokens of 16 held-out synthetic READMEs' extracts (`text_copy_probe`). The staged recipe's rule, fixed "
            "before its run: after the first stage the frequent-token second copy costs under "
            f"{COPY_GATE_NATS:g} nats and at least {COPY_GATE_MARGIN:g} less than the first (`copy_gate`)"
            + (
                "."
                if spec.get("copy_gate", True)
                else "; this spec trains on whatever the rule says (`copy_gate=False`)."
            )
            + "\n\n"
            + probe
            + "\n\n"
        )
    return f"""# {card["name"]}

{spec["summary"]}

**What it is.** A causal LM (`LlamaForCausalLM`, {spec["layers"]} layers, hidden {spec["hidden"]},
{spec["heads"]} query / {spec["kv_heads"]} key-value heads, {card["parameters"]:,} parameters, byte-level BPE of
{VOCAB_SIZE} tokens learned on synthetic READMEs) trained from scratch to read a summarizer prompt of the Metagente
chapter's instruction grammar (`llmtheory.metagente_standin.Directives.render`, filled by `llmtheory.metagente.fill`,
the prompt any model gets) and to write what `llmtheory.metagente_standin.follow` writes for it, then `<eos>`. It is
no general instruction follower: it knows the grammar's twelve directive sentences, and without a word cap it
writes the stand-in's verbose default, which it learned from its targets.

**Data.** {data}; each on the stand-in extractor's output of
synthetic READMEs (`llmtheory.metagente_lm.synthetic_readme`): made-up project names, titles with or without a
subtitle, defining and non-defining first sentences, parentheses, clauses, filler paragraphs and stop headings.
Filler sentences and the words of taglines are drawn from the **training split** (split seed {MATERIAL_SEED}) of the
chapter's PyPI READMEs; the test split is never read. The loss is on the summary and `<eos>` only.{newline}

**How well it follows the directives** (greedy decoding through `llmtheory.metagente_llm.TransformersLLM`;
exact match / mean ROUGE-L F against `follow(directives, text)`). Controls: the same texts with another item's
directives in the prompt (shuffled), and with the initial prompt (no directive); both are scored against the
target of the item's own directives, so a model that reads the directives scores lower under them.

| items | own directives | shuffled directives | no directive |
|---|---|---|---|
{table}
{paired}

The real training-split READMEs lent their sentences to the training data (as filler and sometimes as a synthetic
README's opening), so that row is not held out; the chapter measures the model on the test split.

{probe}**Training.** {plan} (fresh examples, at most {MAX_TRAINING_TOKENS} tokens each), AdamW at learning rate
{spec["learning_rate"]} after a {spec["warmup"]}-step warm-up, {schedule}, one thread: {card["train_seconds"]:.0f} s
of wall time ({card["cpu_seconds"]:.0f} s CPU, evaluations included) on {card["machine"]}; final loss
{card["final_loss"]:.3f}. Rebuild with `python -m llmtheory.zoo train {card["name"]}` (deterministic in the book's
pinned environment, whose package metadata lend the material). Versions: {json.dumps(card["versions"])}.
{("" if not spec.get("notes") else chr(10) + "**Note.** " + spec["notes"] + chr(10))}"""
