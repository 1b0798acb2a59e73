"""The bechdel chapter's language model: screenplays as word tokens, the zoo model ``screenplay-gpt2`` trained on
the generator's "human" corpus (:data:`HUMAN`), and sampling scripts from it or from any hub model.

The zoo model is a small word-level GPT-2 trained from scratch on Fountain scripts of
:func:`llmtheory.bechdel_experiment.generate_script`; it is the toy stand-in for the paper's LLMs, whose
question becomes: does a model reproduce, amplify or damp the biases of the corpus it learned from?
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np

from . import bechdel as bd
from .bechdel_experiment import (
    ABOUT_A_MAN_LINES,
    AFTERTHOUGHTS,
    ENTRANCES,
    FEMALE_NAMES,
    MALE_NAMES,
    NEUTRAL_LINES,
    PLACES,
    THINGS,
    TIMES,
    UNISEX_NAMES,
    WHEN,
    Planted,
    generate_script,
)
from .params import ParameterError
from .seeding import make_rng

NEWLINE, BOS, EOS, PAD, UNK = "<nl>", "<bos>", "<eos>", "<pad>", "<unk>"
TOKEN = re.compile(r"[A-Za-z]+|[0-9]+|[^\sA-Za-z0-9]")


def words_of(text: str) -> list[str]:
    """A script as word tokens, lines joined by :data:`NEWLINE` (a blank line is two of them)."""
    out = []
    for line in text.strip("\n").split("\n"):
        out += TOKEN.findall(line) + [NEWLINE]
    return out[:-1]


def text_of(words: list[str]) -> str:
    """The inverse of :func:`words_of` up to spacing: tokens joined by spaces, no space before punctuation."""
    lines = " ".join(words).split(NEWLINE)
    fixed = [re.sub(r"\s+([.,!?:;)])", r"\1", re.sub(r"\(\s+", "(", line.strip())) for line in lines]
    return "\n".join(fixed) + "\n"


def vocabulary() -> list[str]:
    """Special tokens, then every word and mark the generator can write (its template strings and names)."""
    pieces = (*FEMALE_NAMES, *MALE_NAMES, *UNISEX_NAMES, *PLACES, *TIMES, *THINGS, *WHEN, *NEUTRAL_LINES,
              *ABOUT_A_MAN_LINES, *ENTRANCES, *AFTERTHOUGHTS, "INT. EXT. - She He her his", "Title:")  # fmt: skip
    words = set()
    for piece in pieces:
        filled = re.sub(r"\{[a-z]+\}", " ", re.sub(r"\{Thing\}", " ", piece))
        words.update(TOKEN.findall(filled))
    words.update(w.upper() for w in (*FEMALE_NAMES, *MALE_NAMES, *UNISEX_NAMES))
    words.update(t.capitalize() for t in " ".join(THINGS).split())
    return [PAD, BOS, EOS, UNK, NEWLINE, *sorted(words)]


def build_tokenizer(model_max_length: int = 512):
    """A word-level ``PreTrainedTokenizerFast`` over :func:`vocabulary` (whitespace split, ``<bos>`` added)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(vocabulary())}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    core.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, vocab[BOS])])
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token=UNK, pad_token=PAD, bos_token=BOS,
                                   eos_token=EOS, padding_side="left", model_max_length=model_max_length)  # fmt: skip


HUMAN = Planted(female_share=0.35, homophily=0.7, female_activity=0.7, women_mention_men=0.4, men_mention_men=0.15)
"""The "human" corpus the zoo LM is trained on: fewer women, who speak less and talk about men more."""


def training_text(rng: np.random.Generator, planted: Planted = HUMAN) -> str:
    """One training sequence: a Fountain script (no title page) as words, ending in ``<eos>``."""
    return " ".join(words_of(generate_script(rng, planted).text)) + f" {EOS}"


def is_screenplay_tokenizer(tokenizer) -> bool:
    """Whether ``tokenizer`` is the zoo screenplay model's (it writes scripts from ``<bos>`` alone)."""
    return NEWLINE in tokenizer.get_vocab() and "INT" in tokenizer.get_vocab()


SCREENPLAY_PROMPT = (
    "Write the screenplay of a short film with several named characters, in standard screenplay format: "
    "scene headings (INT./EXT.), character names in capitals before their lines, and action lines."
)
"""The prompt for a hub model (the paper's prompts are not known to us; this asks for what the parser reads)."""


def sample_scripts(model, tokenizer, n: int, seed: int, max_new_tokens: int = 400, batch_size: int = 16) -> list[str]:
    """``n`` scripts sampled at temperature 1: from ``<bos>`` for the zoo screenplay model, else from
    :data:`SCREENPLAY_PROMPT` (through the chat template when the tokenizer has one), on the model's device.
    Seeded inside ``fork_rng``."""
    import torch

    zoo_model = is_screenplay_tokenizer(tokenizer)
    if zoo_model:
        prompt = ""
    elif getattr(tokenizer, "chat_template", None):
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": SCREENPLAY_PROMPT}], tokenize=False,
                                               add_generation_prompt=True)  # fmt: skip
    else:
        prompt = SCREENPLAY_PROMPT + "\n\n"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    # rows that have ended are filled with EOS (cut off below): filled with the config's pad id, transformers 5
    # would take them for unmasked padding and warn; the prompts themselves are never padded
    finished_fill = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.pad_token_id
    texts = []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        templated = bool(prompt) and not zoo_model and getattr(tokenizer, "chat_template", None)
        inputs = tokenizer([prompt] * size, return_tensors="pt", padding=True,
                           add_special_tokens=not templated).to(model.device)  # the template holds the BOS  # fmt: skip
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(seed * 100_003 + start)
            out = model.generate(**inputs, do_sample=True, temperature=1.0, top_k=0, max_new_tokens=max_new_tokens,
                                 pad_token_id=finished_fill, eos_token_id=tokenizer.eos_token_id)  # fmt: skip
        new = out[:, inputs["input_ids"].shape[1] :]
        for row in new:
            if zoo_model:
                words = tokenizer.convert_ids_to_tokens(row.tolist())
                words = words[: words.index(EOS)] if EOS in words else words
                texts.append(text_of([w for w in words if w not in (PAD, BOS)]))
            else:
                texts.append(tokenizer.decode(row, skip_special_tokens=True))
    return texts


def testable_scripts(texts: list[str]) -> list[bd.Script]:
    """The sampled texts that parse into a script the measures can use: at least two speakers who exchange
    at least one pair of adjacent turns in one scene (the rest is counted, not measured)."""
    scripts = [bd.parse(t, "auto") for t in texts]
    return [s for s in scripts if len(s.speakers) >= 2 and bd.interaction_graph(s).number_of_edges() > 0]


# ---------------------------------------------------------------------------------------------------------
# Training (the zoo's loop and card format)


def lm_report(model, tokenizer, n: int, seed: int, max_new_tokens: int = 400) -> dict:
    """What the model writes: the share of sampled scripts the pipeline can measure, and their mean cast."""
    texts = sample_scripts(model, tokenizer, n, seed, max_new_tokens)
    scripts = testable_scripts(texts)
    return {"n_samples": float(n), "testable": len(scripts) / n,
            "characters": float(np.mean([len(s.speakers) for s in scripts])) if scripts else 0.0}  # fmt: skip


def train(spec, out_dir: Path | None = None, *, progress: bool = True, threads: int = 1):
    """Train the screenplay model ``spec`` (a :class:`~llmtheory.zoo.specs.ZooSpec` of task ``"screenplays"``)
    from scratch with the zoo's optimiser on scripts of :data:`HUMAN`; measure it with :func:`lm_report`; save
    model, tokenizer, log and card to ``out_dir`` if given."""
    import torch

    from .zoo.train import _batch, build_model, optimise, save, torch_threads

    if spec.task != "screenplays":
        raise ParameterError(f"spec {spec.name!r} has task {spec.task!r}; the screenplay model needs 'screenplays'")
    start_total = time.perf_counter()
    with torch_threads(threads):
        tokenizer = build_tokenizer(spec.max_positions)
        model = build_model(spec, tokenizer)
        rng = make_rng(spec.seed, "zoo", "train", spec.task)

        def batch_at(step: int) -> dict:
            ids, mask, labels = _batch(tokenizer, [training_text(rng) for _ in range(spec.batch_size)])
            return {"input_ids": ids, "attention_mask": mask, "labels": labels}

        n_quick, n_final, length = (8, 64, 400) if spec.shipped else (2, 2, 24)

        def quick() -> dict:
            model.eval()
            with torch.no_grad():
                return lm_report(model, tokenizer, n_quick, seed=1, max_new_tokens=length)

        run = optimise(spec, model, batch_at, quick, lambda m: {"testable": round(m["testable"], 2)}, progress=progress)
        model.eval()
        final = lm_report(model, tokenizer, n_final, seed=0, max_new_tokens=length)
        result = run.result(spec, model, final, start_total)
        if out_dir is not None:
            save(result, model, tokenizer, Path(out_dir), card_markdown)
        return result


def card_markdown(card: dict) -> str:
    """The model card: what the model is, what it writes (measured), how it was trained."""
    m, spec = card["metrics"], card["spec"]
    return f"""# {card["name"]}

{spec["summary"]}

**What it is.** A causal LM (`GPT2LMHeadModel`, {spec["layers"]} layers, hidden {spec["hidden"]},
{card["parameters"]:,} parameters, word-level vocabulary of the generator's words) trained from scratch on
screenplays in Fountain layout written by the bechdel chapter's procedural generator
(`llmtheory.bechdel_experiment.generate_script`) with the "human" corpus's planted parameters
(`llmtheory.bechdel_lm.HUMAN`: 35% women, homophily 0.7, women's speaking weight 0.7, women's lines about a
man 40%, men's 15%). It is the toy stand-in for the paper's LLMs: the chapter asks whether its scripts keep,
amplify or damp those biases. It reads no English beyond the generator's few hundred words.

**What it writes** (measured on {m["n_samples"]:.0f} scripts sampled from `<bos>` at temperature 1): the
chapter's parser finds a measurable script (two or more speakers who exchange turns in a scene) in
{100 * m["testable"]:.0f}% of them, with {m["characters"]:.1f} speaking characters on average (the corpus's
scripts cast 4 to 6 characters, of whom about 4 speak): it has learned the layout and the lines, not to keep one
cast through a script. The chapter measures the rest (genders, Bechdel tests, networks) against its corpus.

**Training.** {spec["steps"]} steps of batch {spec["batch_size"]} fresh scripts, AdamW at peak learning rate
{spec["learning_rate"]}, one thread: {card["train_seconds"]:.0f} s of wall time ({card["cpu_seconds"]:.0f} s CPU)
on {card["machine"]}; final loss {card["final_loss"]:.3f}. Rebuild with
`python -m llmtheory.zoo train {card["name"]}` (deterministic). Versions: {json.dumps(card["versions"])}.
"""
