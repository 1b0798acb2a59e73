"""The LLM half of structured concept evolution, made to run: a tiny causal LM trained on the specification
grammar (zoo model ``sce-grammar-llama``), and a hub instruct model for Colab.

What the zoo model is. A 2-layer Llama trained from scratch, here, on pairs *parent specification → child
specification*, where the parent is a well-formed specification of :mod:`llmtheory.qldpc_sce` (a random one or a
few grammar mutations away from one) and the child is one mutation of the stochastic grammar
(:class:`~llmtheory.qldpc_sce.GrammarProposer`). It is meant to learn the grammar's *syntax and moves* (copy the
parent, change the group, the protograph or one entry); how much of them it learned is measured on its card
(:func:`proposal_report`). It cannot learn what makes a code good: it never sees a distance or a score.
So it is a learned stand-in for the grammar, which runs the LLM path of the search end to end (prompt → text →
:func:`~llmtheory.qldpc_sce.parse_proposal` → evaluation), and its malformed answers are counted as a real
model's would be. It is not GPT-5.4-mini.

Specifications are written for it as space-separated JSON tokens (:func:`spec_tokens`), which a word-level
tokenizer reads exactly and whose decoded text is valid JSON. Only specifications evolve: the model writes
a specification, never a program, and nothing it writes is executed.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import qldpc_sce as sce
from .params import ParameterError
from .seeding import make_rng

BOS, EOS, PAD, UNK, ARROW = "<bos>", "<eos>", "<pad>", "<unk>", "->"
KEYS = ('{"l":', ',"m":', ',"twist":', ',"A":', ',"B":')
MAX_INDEX = 72  # the grammar's largest group order bounds every exponent and every l, m, r
PROMPT_SPEC = re.compile(r"\{[^{}]*\}")


# ---------------------------------------------------------------------------------------------------------
# Tokens: specifications as space-separated JSON tokens
# ---------------------------------------------------------------------------------------------------------


def vocabulary() -> list[str]:
    """Special tokens, JSON keys and brackets, the numbers 0..72, and a term ``[i, j]`` as the two tokens
    ``[i,`` and ``j]``."""
    numbers = [str(v) for v in range(MAX_INDEX + 1)]
    terms = [f"[{i}," for i in range(MAX_INDEX)] + [f"{j}]" for j in range(MAX_INDEX)]
    return [PAD, BOS, EOS, UNK, ARROW, *KEYS, "}", "[", "]", ",", *numbers, *terms]


def _proto_tokens(proto: sce.ProtoMatrix) -> list[str]:
    def listed(items: list[list[str]]) -> list[str]:
        out = ["["]
        for k, item in enumerate(items):
            out += ([","] if k else []) + item
        return out + ["]"]

    def entry(terms) -> list[str]:
        return listed([[f"[{i},", f"{j}]"] for i, j in terms])

    return listed([listed([entry(e) for e in row]) for row in proto])


def spec_tokens(spec: sce.Spec) -> str:
    """``spec`` as space-separated tokens of :func:`vocabulary`; the text is valid JSON that
    :func:`~llmtheory.qldpc_sce.spec_from_json` reads back to ``spec``."""
    g = spec.group
    tokens = [KEYS[0], str(g.ell), KEYS[1], str(g.m), KEYS[2], str(g.twist), KEYS[3], *_proto_tokens(spec.a)]
    return " ".join([*tokens, KEYS[4], *_proto_tokens(spec.b), "}"])


def build_tokenizer(model_max_length: int = 512):
    """A word-level ``PreTrainedTokenizerFast`` over :func:`vocabulary` (whitespace split, ``<bos>`` added)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(vocabulary())}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins tokens with single spaces
    core.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, vocab[BOS])])
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token=UNK,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        padding_side="left",
        model_max_length=model_max_length,
    )


# ---------------------------------------------------------------------------------------------------------
# Training data: a parent and one grammar mutation of it
# ---------------------------------------------------------------------------------------------------------


def random_parent(rng: np.random.Generator, limits: sce.Limits, max_walk: int = 6) -> sce.Spec:
    """A well-formed specification as the search meets them: a random one (:func:`~llmtheory.qldpc_sce.random_spec`)
    or a toric seed, then up to ``max_walk`` grammar mutations."""
    if rng.random() < 0.25:
        ell, m = (int(v) for v in rng.integers(2, 7, size=2))
        spec = sce.toric_seed(ell, m)
    else:
        spec = sce.random_spec(rng, limits)
    grammar = sce.GrammarProposer(limits)
    for _ in range(int(rng.integers(max_walk + 1))):
        child = grammar.propose(sce.make_concept(spec), rng)
        spec = child.spec if child is not None else spec
    return spec


def training_pair(rng: np.random.Generator, limits: sce.Limits) -> tuple[sce.Spec, sce.Spec]:
    """A parent (:func:`random_parent`) and one well-formed grammar mutation of it."""
    grammar = sce.GrammarProposer(limits)
    while True:
        parent = random_parent(rng, limits)
        child = grammar.propose(sce.make_concept(parent), rng)
        if child is not None:
            return parent, child.spec


def training_text(parent: sce.Spec, child: sce.Spec) -> str:
    """One training sequence: ``parent -> child <eos>`` (``<bos>`` is added by the tokenizer)."""
    return f"{spec_tokens(parent)} {ARROW} {spec_tokens(child)} {EOS}"


def prompt_text(parent: sce.Spec) -> str:
    """What the model continues: ``parent ->``."""
    return f"{spec_tokens(parent)} {ARROW}"


# ---------------------------------------------------------------------------------------------------------
# Training (the zoo's loop and card format)
# ---------------------------------------------------------------------------------------------------------


def train(spec, out_dir: Path | None = None, *, progress: bool = True, threads: int = 1):
    """Train the grammar model ``spec`` (a :class:`~llmtheory.zoo.specs.ZooSpec` of task ``"sce_specs"``) from
    scratch with the zoo's optimiser (:func:`llmtheory.zoo.train.optimise`); measure it with
    :func:`proposal_report` (100 held-out parents; 2 for an unshipped micro spec); save model, tokenizer, log and
    card to ``out_dir`` if given."""
    import torch

    from .zoo.train import _batch, build_model, optimise, save, torch_threads

    if spec.task != "sce_specs":
        raise ParameterError(f"spec {spec.name!r} has task {spec.task!r}; the grammar model needs 'sce_specs'")
    start_total = time.perf_counter()
    limits = sce.Limits()
    with torch_threads(threads):
        tokenizer = build_tokenizer(spec.max_positions)
        model = build_model(spec, tokenizer)
        rng = make_rng(spec.seed, "zoo", "train", spec.task)

        def batch_at(step: int) -> dict:
            texts = [training_text(*training_pair(rng, limits)) for _ in range(spec.batch_size)]
            ids, mask, labels = _batch(tokenizer, texts)
            return {"input_ids": ids, "attention_mask": mask, "labels": labels}

        # micro specs (tests) measure a few short answers
        n_quick, n_final, length = (8, 100, 160) if spec.shipped else (1, 2, 16)

        def quick() -> dict:
            model.eval()
            with torch.no_grad():
                return proposal_report(model, tokenizer, n=n_quick, seed=1, max_new_tokens=length)

        run = optimise(spec, model, batch_at, quick, lambda m: {"parse": round(m["well_formed"], 2)}, progress=progress)
        model.eval()
        final = proposal_report(model, tokenizer, n=n_final, seed=0, max_new_tokens=length)
        result = run.result(spec, model, final, start_total)
        if out_dir is not None:
            save(result, model, tokenizer, Path(out_dir), card_markdown)
        return result


# ---------------------------------------------------------------------------------------------------------
# Proposing: the zoo model and a hub instruct model behind one ``generate(prompt) -> text``
# ---------------------------------------------------------------------------------------------------------


def sample_children(model, tokenizer, parents: list[sce.Spec], seed: int, max_new_tokens: int = 160) -> list[str]:
    """One sampled continuation (temperature 1) of :func:`prompt_text` per parent, decoded up to ``<eos>``;
    ``torch``'s generator is seeded from ``seed`` inside ``fork_rng``, so the caller's state is untouched."""
    import torch

    texts = []
    for k, parent in enumerate(parents):
        inputs = tokenizer(prompt_text(parent), return_tensors="pt")
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(seed * 100_003 + k)
            out = model.generate(
                **inputs,
                do_sample=True,
                top_k=0,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        texts.append(tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True))
    return texts


def changed_levels(parent: sce.Spec, child: sce.Spec) -> tuple[str, ...]:
    """Which of the grammar's levels differ between ``parent`` and ``child``: the group, the protographs'
    shapes, or (same group and shapes) the terms of the entries."""
    shape = [(len(p), len(p[0])) for p in (parent.a, parent.b)] != [(len(p), len(p[0])) for p in (child.a, child.b)]
    levels = ["group_algebra"] if parent.group != child.group else []
    if shape:
        levels.append("protograph_geometry")
    elif (parent.a, parent.b) != (child.a, child.b):
        levels.append("base_space")
    return tuple(levels)


def proposal_report(model, tokenizer, n: int = 200, seed: int = 0, max_new_tokens: int = 160) -> dict:
    """The card's numbers, on ``n`` held-out parents (:func:`random_parent` on a stream training never uses):
    the share of answers that parse as JSON, that are well formed (parse and pass the grammar's bounds, i.e.
    what :func:`~llmtheory.qldpc_sce.parse_proposal` accepts), that differ from the parent, and, among those,
    the share changing each level of the grammar."""
    limits = sce.Limits()
    rng = make_rng(seed, "sce-grammar", "held-out parents")
    parents = [random_parent(rng, limits) for _ in range(n)]
    answers = sample_children(model, tokenizer, parents, seed, max_new_tokens)
    parsed, formed, changed, levels = 0, 0, 0, dict.fromkeys(sce.MUTATION_LEVELS, 0)
    for parent, answer in zip(parents, answers, strict=True):
        try:
            sce.spec_from_json(answer)
            parsed += 1
        except (ValueError, KeyError, TypeError, IndexError):
            continue
        child, _ = sce.parse_proposal(answer, limits)
        if child is None:
            continue
        formed += 1
        if child != parent:
            changed += 1
            for level in changed_levels(parent, child):
                levels[level] += 1
    out = {"n_parents": n, "parses": parsed / n, "well_formed": formed / n, "changed": changed / n}
    return out | {f"level_{k}": v / max(changed, 1) for k, v in levels.items()}


def grammar_model_generator(
    name_or_dir: str = "sce-grammar-llama", seed: int = 0, max_new_tokens: int = 160
) -> Callable[[str], str]:
    """A ``generate(prompt) -> text`` for :class:`~llmtheory.qldpc_sce.LLMProposer` from the zoo's grammar
    model. The model reads specifications, not English: it takes the parent from the JSON object at the end of
    :func:`~llmtheory.qldpc_sce.llm_prompt` (the evaluation in the prompt is ignored: the model never learned
    scores) and samples one child. The ``k``-th call uses seed ``(seed, k)``: a search is reproducible."""
    from .zoo import load

    model, tokenizer = load(name_or_dir)
    calls = [0]

    def generate(prompt: str) -> str:
        found = PROMPT_SPEC.findall(prompt)
        if not found:
            return "no specification in the prompt"
        parent = sce.spec_from_json(found[-1])
        calls[0] += 1
        return sample_children(model, tokenizer, [parent], seed * 1_000_003 + calls[0], max_new_tokens)[0]

    return generate


def hub_generator(model_id: str, seed: int = 0, max_new_tokens: int = 300, temperature: float = 0.7):
    """A ``generate(prompt) -> text`` from a Hugging Face instruct model (Colab: ``MODEL =
    "Qwen/Qwen2.5-1.5B-Instruct"``): the prompt as one user turn of the model's chat template when it has one,
    sampled at ``temperature``, the ``k``-th call with seed ``(seed, k)``. Any causal LM folder works too; a model
    that knows nothing answers with malformed proposals, which the search counts and survives. On a GPU the
    model loads in bfloat16 on it; the size it needs is printed."""
    import torch

    from .zoo import load

    gpu = torch.cuda.is_available()
    model, tokenizer = load(model_id, dtype=torch.bfloat16 if gpu else None)
    model = model.to("cuda") if gpu else model
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    print(
        f"{model_id}: {sum(p.numel() for p in model.parameters()) / 1e9:.2f} B parameters, "
        f"{weights / 2**30:.2f} GiB of weights on {'GPU' if gpu else 'CPU'}"
    )
    calls = [0]

    def generate(prompt: str) -> str:
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        else:
            text = prompt
        inputs = tokenizer(text, return_tensors="pt").to(model.device)
        calls[0] += 1
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(seed * 1_000_003 + calls[0])
            out = model.generate(
                **inputs,
                do_sample=True,
                temperature=temperature,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        return tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    return generate


def proposer_generator(model: str, seed: int = 0) -> Callable[[str], str]:
    """The chapter's ``MODEL``: a zoo grammar model (:func:`grammar_model_generator`) or a hub id / folder
    (:func:`hub_generator`). A hub id that cannot be loaded (offline, or no network, and not in the local cache)
    raises :class:`~llmtheory.zoo.ZooError` naming the id, why it failed and what runs offline instead."""
    from .zoo import SPECS, ZooError

    if model in SPECS and SPECS[model].task == "sce_specs":
        return grammar_model_generator(model, seed)
    try:
        return hub_generator(model, seed)
    except ZooError as error:
        raise ZooError(
            f"MODEL={model!r}: the LLM proposer could not load this model. {error}. Offline, the chapter runs "
            "with MODEL='none' (the grammar proposer) or MODEL='sce-grammar-llama' (the zoo's grammar model); a hub "
            "instruct model needs the network once (Colab, a GPU) or a copy in the local Hugging Face cache."
        ) from None


# ---------------------------------------------------------------------------------------------------------
# The card
# ---------------------------------------------------------------------------------------------------------


def card_markdown(card: dict) -> str:
    """The model card: what the model is, what it learned (measured), how it was trained."""
    m, spec = card["metrics"], card["spec"]
    levels = ", ".join(
        f"{k.removeprefix('level_').replace('_', ' ')} {100 * v:.0f}%" for k, v in m.items() if "level" in k
    )
    return f"""# {card["name"]}

{spec["summary"]}

**What it is.** A causal LM (`LlamaForCausalLM`, {spec["layers"]} layers, hidden {spec["hidden"]},
{card["parameters"]:,} parameters) trained from scratch on pairs *parent specification → child*, where the child
is one mutation of the stochastic grammar of the qLDPC chapter (`llmtheory.qldpc_sce.GrammarProposer`): a
lifted-product specification (group G(l, m, r), protographs A and B) written as space-separated JSON tokens
(`llmtheory.qldpc_sce_proposer.spec_tokens`). It is the learned proposer that runs the chapter's LLM path end to
end; it is not a general language model and reads no English.

**What it learned** (measured on {m["n_parents"]} held-out parents, one sampled child each, temperature 1):

| answers that parse as JSON | well formed (the chapter's parser accepts them) | differ from the parent |
|---|---|---|
| {100 * m["parses"]:.0f}% | {100 * m["well_formed"]:.0f}% | {100 * m["changed"]:.0f}% |

Levels changed among the well-formed children that differ (a child may change several): {levels}; one
grammar mutation changes exactly one level, chosen 20% group, 20% geometry, 60% entries. An answer that parses but
is not well formed breaks one of the grammar's bounds (group order, n, check weight, exponents, protograph shape);
the search counts it as a rejected proposal. So the table says how much of the grammar's syntax and of its bounds
the model has learned, and the level shares how far its edits are from the grammar's single moves. It has **not**
learned what makes a code good: it never saw a distance, a rate or a score, and it ignores the evaluation in the
chapter's prompt.

**Training.** {spec["steps"]} steps of batch {spec["batch_size"]}, AdamW at peak learning rate
{spec["learning_rate"]}, one thread: {card["train_seconds"]:.0f} s of wall time ({card["cpu_seconds"]:.0f} s CPU)
on {card["machine"]}; final loss {card["final_loss"]:.3f}. Rebuild with
`python -m llmtheory.zoo train {card["name"]}` (deterministic). Versions: {json.dumps(card["versions"])}.
"""
