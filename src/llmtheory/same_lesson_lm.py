"""The same_lesson chapter's story models: small causal LMs that write a story in one language for a proverb given in
another, trained on the chapter's story generator with a stated "culture" per story language.

A zoo story model reads ``<proverb:A> {the proverb in A} <story:B>`` and writes a story in B (the story generator's
template language: :func:`llmtheory.same_lesson.write_story`). Its training stories come from :data:`CULTURES`, one
:class:`~llmtheory.same_lesson.StoryPrior` per story language, for monolingual prompts (A = B), and from the 50/50
mix :func:`cross_prior` of the two languages' cultures for the cross-lingual pairs of :data:`TRAIN_PAIRS`;
:data:`HELD_OUT_PAIRS` never occur in training, so whether a model carries the proverb language's culture into such a
pair is open before it is measured. A model's "culture" is its corpus's prior and nothing else. Four architectures
or seeds stand in for the paper's four LLM families (:data:`ZOO_MODELS`); :data:`CONTROL_MODEL` is trained on
:data:`ROTATED_CULTURES` (the same priors assigned to other languages). A hub model gets the reconstructed prompt
:func:`story_prompt` through its chat template.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import same_lesson as sl
from .params import ParameterError, check_choice, check_int
from .seeding import make_rng

PAD, EOS = "<pad>", "<eos>"
LANGS: tuple[str, ...] = sl.CODED_LANGUAGES
LANGUAGE_NAMES = {"en": "English", "fr": "French", "de": "German", "es": "Spanish"}
TAGS: tuple[str, ...] = tuple(f"<{kind}:{lang}>" for kind in ("proverb", "story") for lang in LANGS)
"""The prompt's language tags, one token each in the zoo tokenizer."""
VOCAB_SIZE = 1200
TOKENIZER_TEXTS = 4000
MAX_NEW_TOKENS = 120
"""A story of the generator is 60-100 tokens of the zoo tokenizer; a zoo model's sample is cut at this length."""
HUB_MAX_NEW_TOKENS = 400
"""A real model's short story (about 250 words) is cut at this length."""


def _types(**weights: float) -> dict[str, float]:
    """Protagonist-type weights: 1 for every type of :data:`~llmtheory.same_lesson.PERSON_TYPES`, ``weights`` for
    the types whose social role, age or name is given (e.g. ``family=3``)."""
    out = {}
    for name, spec in sl.PERSON_TYPES.items():
        out[name] = weights.get(name, weights.get(spec["social_role"], weights.get(spec["age"], 1.0)))
    return out


CULTURES: dict[str, sl.StoryPrior] = {
    "en": sl.StoryPrior(p_actor=0.8, type_weights=_types(), p_dialogue=0.3, p_passive=0.2,
                        resolution_weights={"learning": 0.5, "success": 0.3, "reconciliation": 0.1, "failure": 0.1}),
    "fr": sl.StoryPrior(p_actor=0.55, type_weights=_types(family=3.0), p_dialogue=0.7, p_passive=0.3,
                        resolution_weights={"learning": 0.3, "success": 0.1, "reconciliation": 0.5, "failure": 0.1}),
    "de": sl.StoryPrior(p_actor=0.7, type_weights=_types(worker=3.0), p_dialogue=0.4, p_passive=0.4,
                        resolution_weights={"learning": 0.4, "success": 0.1, "reconciliation": 0.1, "failure": 0.4}),
    "es": sl.StoryPrior(p_actor=0.4, type_weights=_types(elder=3.0), p_dialogue=0.6, p_passive=0.2,
                        resolution_weights={"learning": 0.2, "success": 0.5, "reconciliation": 0.2, "failure": 0.1}),
}  # fmt: skip
"""The story models' "cultures", stated as data: per story language, how often the protagonist acts, who the
protagonists are (French stories favour family members, German ones workers, Spanish ones elders), how stories end,
how often a line of dialogue and a passive sentence occur. Chosen by us to differ; nothing here is a claim about the
real languages or their cultures."""

ROTATED_CULTURES: dict[str, sl.StoryPrior] = {
    lang: CULTURES[LANGS[(i + 1) % len(LANGS)]] for i, lang in enumerate(LANGS)
}
"""The control model's cultures: each language gets the next language's prior (en ← fr, fr ← de, de ← es, es ← en)."""

TRAIN_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (a, LANGS[(i + shift) % len(LANGS)]) for shift in (1, 3) for i, a in enumerate(LANGS)
)
"""Cross-lingual (proverb language, story language) pairs in the training data: each language to its neighbours in
the cycle en → fr → de → es → en, both ways (8 of the 12 ordered pairs)."""
HELD_OUT_PAIRS: tuple[tuple[str, str], ...] = tuple((a, LANGS[(i + 2) % len(LANGS)]) for i, a in enumerate(LANGS))
"""The 4 ordered pairs never seen in training (en ↔ de, fr ↔ es); every language occurs in training both as the
proverb's and as the story's language."""

ZOO_MODELS: tuple[str, ...] = ("story-gpt2", "story-gpt2-seed1", "story-llama", "story-neox")
CONTROL_MODEL = "story-gpt2-rotated"
CULTURE_SETS = {"native": CULTURES, "rotated": ROTATED_CULTURES}


class Item(NamedTuple):
    """One generation condition: a lesson (a proverb set), the proverb's language and the story's language."""

    lesson: str
    proverb_lang: str
    story_lang: str


def items(lessons: tuple[str, ...] = sl.LESSONS, pairs: tuple[tuple[str, str], ...] = HELD_OUT_PAIRS) -> list[Item]:
    """Every (lesson, pair) item; ``pairs`` may include monolingual ``(L, L)`` pairs."""
    for lesson in lessons:
        check_choice("lesson", lesson, sl.LESSONS)
    for a, b in pairs:
        sl.check_language(a, LANGS, "proverb_lang")
        sl.check_language(b, LANGS, "story_lang")
    return [Item(lesson, a, b) for lesson in lessons for a, b in pairs]


def mono_pairs() -> tuple[tuple[str, str], ...]:
    """The monolingual pairs ``(L, L)``."""
    return tuple((lang, lang) for lang in LANGS)


def cross_prior(proverb_lang: str, story_lang: str, cultures: dict[str, sl.StoryPrior] = CULTURES) -> sl.StoryPrior:
    """The training prior of a cross-lingual pair: every parameter of the two languages' cultures mixed 50/50
    (:func:`~llmtheory.same_lesson.mix_priors`, ``same_lesson-eq-shift`` with s = ½); the story language's own
    culture for a monolingual pair."""
    if proverb_lang == story_lang:
        return cultures[story_lang]
    return sl.mix_priors(cultures[story_lang], cultures[proverb_lang], 0.5)


_PROVERBS: dict[tuple[str, str], str] = {}


def proverb(lesson: str, lang: str) -> str:
    """The proverb of set ``lesson`` in ``lang`` from the chapter's table."""
    if not _PROVERBS:
        table = sl.load_proverbs()
        _PROVERBS.update({(r.set_id, r.lang): r.proverb for r in table.itertuples()})
    return _PROVERBS[(lesson, lang)]


def zoo_prompt(item: Item) -> str:
    """The zoo models' prompt: ``<proverb:A> {proverb} <story:B>``."""
    return f"<proverb:{item.proverb_lang}> {proverb(item.lesson, item.proverb_lang)} <story:{item.story_lang}>"


def story_prompt(item: Item) -> str:
    """The prompt for a real model (reconstructed: the paper's prompts are not known to us): *Write a short story in
    {B} that illustrates the proverb: "{proverb in A}".* The same words for monolingual and cross-lingual items."""
    return (
        f"Write a short story in {LANGUAGE_NAMES[item.story_lang]} that illustrates the proverb: "
        f"\u201c{proverb(item.lesson, item.proverb_lang)}\u201d"
    )


def training_example(rng: np.random.Generator, cultures: dict[str, sl.StoryPrior] = CULTURES) -> tuple[str, str]:
    """One training pair (prompt, story): a lesson and a story language uniformly; half the time the proverb in the
    story's language, else in one of the two languages :data:`TRAIN_PAIRS` pairs with it; the story drawn from
    :func:`cross_prior` by the chapter's generator."""
    lesson = sl.LESSONS[rng.integers(len(sl.LESSONS))]
    story_lang = LANGS[rng.integers(len(LANGS))]
    sources = [a for a, b in TRAIN_PAIRS if b == story_lang]
    proverb_lang = story_lang if rng.random() < 0.5 else sources[rng.integers(len(sources))]
    prior = cross_prior(proverb_lang, story_lang, cultures)
    (story,) = sl.generate_corpus(prior, int(rng.integers(2**31)), "train", 1, (lesson,), (story_lang,))
    return zoo_prompt(Item(lesson, proverb_lang, story_lang)), story.text


# ---------------------------------------------------------------------------------------------------------------
# Tokenizer and batches


def build_tokenizer(model_max_length: int = 160):
    """A byte-level BPE ``PreTrainedTokenizerFast`` learned on :data:`TOKENIZER_TEXTS` training texts of both culture
    sets (their own stream), with :data:`TAGS`, ``<pad>`` and ``<eos>`` as special tokens (one token each)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    rng = make_rng(0, "same-lesson-lm", "tokenizer")
    texts = [
        " ".join(training_example(rng, CULTURE_SETS[k])) for k in CULTURE_SETS for _ in range(TOKENIZER_TEXTS // 2)
    ]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[PAD, EOS, *TAGS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, eos_token=EOS,
                                   additional_special_tokens=list(TAGS), model_max_length=model_max_length)  # fmt: skip


def is_story_tokenizer(tokenizer) -> bool:
    """Whether ``tokenizer`` is a zoo story model's (prompted with :func:`zoo_prompt`, not a chat prompt)."""
    return all(tag in tokenizer.get_vocab() for tag in TAGS)


# ---------------------------------------------------------------------------------------------------------------
# Generation


def _prompt_for(item: Item, tokenizer, zoo: bool) -> str:
    if zoo:
        return zoo_prompt(item)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": story_prompt(item)}], tokenize=False,
                                             add_generation_prompt=True)  # fmt: skip
    return story_prompt(item) + "\n\n"


def generate_stories(
    model,
    tokenizer,
    conditions: list[Item],
    n_per_item: int,
    seed: int,
    *,
    max_new_tokens: int | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> list[sl.Story]:
    """``n_per_item`` stories per item sampled at temperature 1 (the model's distribution, not its mode) on the
    model's device, seeded inside ``fork_rng`` per batch: a zoo story model gets :func:`zoo_prompt`, any other model
    :func:`story_prompt` (through its chat template when it has one). Returns :class:`~llmtheory.same_lesson.Story`
    objects in the story's language with ``truth = {"proverb_lang": A, "item": i}`` (``i`` the item's index).
    ``max_new_tokens``: :data:`MAX_NEW_TOKENS` for a zoo story model, :data:`HUB_MAX_NEW_TOKENS` for another, by
    default."""
    import torch
    from tqdm.auto import tqdm

    check_int("n_per_item", n_per_item, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    zoo = is_story_tokenizer(tokenizer)
    if max_new_tokens is None:
        max_new_tokens = MAX_NEW_TOKENS if zoo else HUB_MAX_NEW_TOKENS
    check_int("max_new_tokens", max_new_tokens, minimum=1)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    jobs = [(i, item) for i, item in enumerate(conditions) for _ in range(n_per_item)]
    stories = []
    starts = range(0, len(jobs), batch_size)
    for start in tqdm(starts, desc="stories", disable=not progress, mininterval=2.0):
        chunk = jobs[start : start + batch_size]
        prompts = [_prompt_for(item, tokenizer, zoo) for _, item in chunk]
        templated = not zoo and bool(getattr(tokenizer, "chat_template", None))
        inputs = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=not templated).to(
            model.device
        )
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(seed * 100_003 + start)
            out = model.generate(**inputs, do_sample=True, temperature=1.0, top_k=0, max_new_tokens=max_new_tokens,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)  # fmt: skip
        for (i, item), row in zip(chunk, out[:, inputs["input_ids"].shape[1] :], strict=True):
            ids = row.tolist()
            if tokenizer.eos_token_id in ids:
                ids = ids[: ids.index(tokenizer.eos_token_id)]
            text = tokenizer.decode(ids, skip_special_tokens=True).strip()
            stories.append(sl.Story(item.lesson, item.story_lang, text, {"proverb_lang": item.proverb_lang, "item": i}))
    return stories


def memory_estimate(config, *, batch_size: int, tokens: int, bytes_per_value: int = 2) -> dict[str, float]:
    """Bytes sampling needs, from a config alone: the weights (counted without tied embeddings or grouped key-value
    heads, so an upper estimate) and the key-value cache of ``batch_size`` sequences of ``tokens`` tokens (prompt and
    story), at ``bytes_per_value`` (2: half precision, as on a GPU)."""
    from .zoo import weight_count_bound

    text = getattr(config, "text_config", None) or config
    heads = text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    weights = weight_count_bound(text) * bytes_per_value
    cache = 2 * text.num_hidden_layers * kv_heads * head_dim * tokens * batch_size * bytes_per_value
    return {"weights": float(weights), "cache": float(cache), "total": float(weights + cache)}


def memory_text(name: str, *, batch_size: int = 64) -> str:
    """One line for the chapter: what sampling from ``name`` (a zoo name, folder or hub id whose config can be read)
    needs at batch ``batch_size``, with the prompt and story lengths of its kind of model (:func:`memory_estimate`)."""
    from .zoo import display_name, load_config

    try:
        config = load_config(name)
    except (OSError, LookupError) as error:
        return f"{display_name(name)}: its config cannot be read here ({type(error).__name__}), so no estimate"
    tokens = 40 + (MAX_NEW_TOKENS if name in (*ZOO_MODELS, CONTROL_MODEL) else HUB_MAX_NEW_TOKENS)
    need = memory_estimate(config, batch_size=batch_size, tokens=tokens)
    return (f"{display_name(name)}: about {need['total'] / 2**30:.2f} GiB to sample {batch_size} stories at once "
            f"({need['weights'] / 2**30:.2f} GiB of weights, {need['cache'] / 2**30:.2f} GiB of cache for {tokens} "
            "tokens, half precision)")  # fmt: skip


def guessed_lesson(text: str, lang: str) -> str:
    """The lesson whose concept vector is closest to the story's (``same_lesson-eq-cosine``); ties go to the first."""
    story = sl.concept_vector(text, lang)
    return sl.LESSONS[int(np.argmax([sl.cosine(story, sl.lesson_vector(lesson)) for lesson in sl.LESSONS]))]


def story_report(stories: list[sl.Story]) -> dict:
    """What a model writes: the share of stories the coder can read (a protagonist with a role other than ``none``
    and a coded ending) and the share whose closest lesson (:func:`guessed_lesson`) is the prompt's."""
    codes = [sl.code_story(s.text, s.lang) for s in stories]
    readable = [c.role != "none" and c.resolution != "open" for c in codes]
    on_lesson = [guessed_lesson(s.text, s.lang) == s.lesson for s in stories]
    return {"n": float(len(stories)), "readable": float(np.mean(readable)), "on_lesson": float(np.mean(on_lesson))}


def lm_report(model, tokenizer, n_per_item: int, seed: int, cultures: dict[str, sl.StoryPrior] = CULTURES) -> dict:
    """The card's measurements on the 8 lessons: :func:`story_report` on monolingual, training-pair and held-out-pair
    prompts, and per story language the share of monolingual stories whose protagonist acts, next to its culture's
    ``p_actor``."""
    out = {}
    by_condition = {"mono": mono_pairs(), "train_pairs": TRAIN_PAIRS, "held_out": HELD_OUT_PAIRS}
    for name, pairs in by_condition.items():
        stories = generate_stories(model, tokenizer, items(sl.LESSONS, pairs), n_per_item, seed)
        out |= {f"{name}_{k}": v for k, v in story_report(stories).items() if k != "n"}
        if name == "mono":
            for lang in LANGS:
                roles = [sl.code_story(s.text, s.lang).role for s in stories if s.lang == lang]
                out[f"actor_{lang}"] = float(np.mean([r == "actor" for r in roles]))
                out[f"prior_actor_{lang}"] = cultures[lang].p_actor
    return out


# ---------------------------------------------------------------------------------------------------------------
# Training (the zoo's loop and card format)


def train(spec, out_dir: Path | None = None, *, progress: bool = True, threads: int = 1):
    """Train the story model ``spec`` (task ``"proverb_stories"``) from scratch with the zoo's optimiser on fresh
    :func:`training_example` pairs of its culture set (``spec.story_cultures``), the loss on the story and
    ``<eos>`` only; measure it with :func:`lm_report`; save model, tokenizer, log and card to ``out_dir`` if given."""
    from .zoo.train import build_model, conditional_batch, optimise, save, torch_threads

    if spec.task != "proverb_stories":
        raise ParameterError(f"spec {spec.name!r} has task {spec.task!r}; a story model needs 'proverb_stories'")
    cultures = CULTURE_SETS[check_choice("story_cultures", spec.story_cultures, CULTURE_SETS)]
    start_total = time.perf_counter()
    with torch_threads(threads):
        tokenizer = build_tokenizer(spec.max_positions)
        model = build_model(spec, tokenizer)
        rng = make_rng(spec.seed, "zoo", "train", spec.task, spec.story_cultures)

        def batch_at(step: int) -> dict:
            return conditional_batch(tokenizer, [training_example(rng, cultures) for _ in range(spec.batch_size)])

        lessons = sl.LESSONS if spec.shipped else sl.LESSONS[:1]

        def quick() -> dict:
            model.eval()
            stories = generate_stories(model, tokenizer, items(lessons, HELD_OUT_PAIRS), 1, seed=1)
            return story_report(stories)

        shown = lambda m: {"on_lesson": round(m["on_lesson"], 2), "readable": round(m["readable"], 2)}  # noqa: E731
        run = optimise(spec, model, batch_at, quick, shown, progress=progress)
        model.eval()
        final = lm_report(model, tokenizer, 4 if spec.shipped else 1, seed=0, cultures=cultures)
        result = run.result(spec, model, final, start_total)
        if out_dir is not None:
            save(result, model, tokenizer, Path(out_dir), card_markdown)
        return result


def zoo_table_measured(metrics: dict) -> str:
    """The zoo table's "measured" cell: readable stories and stories on the prompt's lesson, monolingual (held-out
    pairs)."""
    return (
        f"readable stories {100 * metrics['mono_readable']:.0f}% (held-out pairs "
        f"{100 * metrics['held_out_readable']:.0f}%), on the prompt's lesson "
        f"{100 * metrics['mono_on_lesson']:.0f}% ({100 * metrics['held_out_on_lesson']:.0f}%)"
    )


def card_markdown(card: dict) -> str:
    """The model card: what the model is, its training data's cultures, what it writes (measured), how it was
    trained."""
    m, spec = card["metrics"], card["spec"]
    cultures = CULTURE_SETS[spec.get("story_cultures", "native")]
    rows = "\n".join(
        f"| {lang} | {cultures[lang].p_actor:.2f} | {m[f'actor_{lang}']:.2f} |"
        for lang in LANGS
        if f"actor_{lang}" in m
    )
    return f"""# {card["name"]}

{spec["summary"]}

**What it is.** A causal LM (`{spec["family"]}`, {spec["layers"]} layers, hidden {spec["hidden"]},
{card["parameters"]:,} parameters, a byte-level BPE of {VOCAB_SIZE} tokens learned on its training texts) trained from
scratch on pairs *proverb in language A → story in language B* for the 8 proverb sets of the same_lesson chapter
(English, French, German, Spanish), with the stories written by the chapter's template generator
(`llmtheory.same_lesson.write_story`). Its "culture" is its corpus's prior and nothing else: per story language a
`StoryPrior` stated in `llmtheory.same_lesson_lm` ({spec.get("story_cultures", "native")} set), the 50/50 mix of the
two languages' priors for the 8 cross-lingual training pairs; the 4 pairs en ↔ de and fr ↔ es never occur in
training. It knows no language beyond the generator's few hundred words.

**What it writes** (measured on 4 samples per lesson and pair at temperature 1): the
coder reads a protagonist with a role and an ending in {100 * m["mono_readable"]:.0f}% of monolingual stories,
{100 * m["train_pairs_readable"]:.0f}% on training pairs and {100 * m["held_out_readable"]:.0f}% on held-out pairs;
the story's closest lesson is the prompt's in {100 * m["mono_on_lesson"]:.0f}%, {100 * m["train_pairs_on_lesson"]:.0f}%
and {100 * m["held_out_on_lesson"]:.0f}% (chance: 12%). In its corpus the coder reads every story: the
protagonist is always the agent or the patient of the action sentence. Where the model's stories fall short, the
shortfall is the model's: it introduces a protagonist and writes an ending, but its action sentence often names two
other characters, so the protagonist has no role (it did not learn to bind the character it introduced). Share of
monolingual stories whose protagonist acts, against the culture's `p_actor` (32 stories per language, so about
±0.17 at 95%):

| story language | p_actor of the culture | measured |
|---|---|---|
{rows}

**Training.** {spec["steps"]} steps of batch {spec["batch_size"]} fresh pairs, loss on the story tokens, AdamW at
peak learning rate {spec["learning_rate"]}, one thread: {card["train_seconds"]:.0f} s of wall time
({card["cpu_seconds"]:.0f} s CPU with the card's measurements) on {card["machine"]}; final loss
{card["final_loss"]:.3f} nats per token. Rebuild with `python -m llmtheory.zoo train {card["name"]}` (deterministic).
Versions: {json.dumps(card["versions"])}.
""" + (f"\n**Notes.** {spec['notes']}\n" if spec.get("notes") else "")
