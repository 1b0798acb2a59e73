"""The pigeonholing chapter's zoo chat model: trained on multi-turn dialogues whose in-context answers are usually
right, so that copying from context is a learned habit; its answers under the chapter's bad contexts.

Real chat models learned from text in which an answer already in the conversation (a user's suggestion, an earlier
reply to the same question) is usually right, so reusing it is a good bet. The model here learns the same bet on
purpose: in its training dialogues (:func:`training_example`) a suggestion or an earlier assistant answer is right
with probability :data:`IN_CONTEXT_RIGHT` (0.9), and the target is always the right answer. So that the habit
covers the assistant's own earlier turns, and not only a suggestion in the user's turn, a share of the dialogues
(:func:`recall_example`) ask about entities that have no fact in the toy world, with an answer that exists only in
earlier assistant turns; no target ever follows a wrong context, and nothing depends on the number of turns (the
dose–response in k is the chapter's measurement, not the data's rule). Open-ended requests
(``name a language .``) and stance items (``what is the river ?``) appear in training only as single clean turns:
collapse onto an in-context example and stance flipping after a claim can only come from the habit learned on the
verifiable tasks, not from being taught on those prompts.

Ours, not the paper's (which used 10 real models): everything here. The model's answers are read at the answer
position after the forced reply prefix ``Sure ,`` (:func:`zoo_answers`), since every answer of the toy tasks is
one word.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from . import pigeonholing as ph
from . import toyworld as tw
from .params import ParameterError, check_choice, check_float, check_int
from .seeding import make_rng
from .zoo.cards import percent

IN_CONTEXT_RIGHT = 0.9
"""Probability that a suggestion or an earlier assistant answer in a training dialogue is right."""
CONTEXT_SHARES = (("clean", 0.3), ("suggestion", 0.2), ("same", 0.3), ("other", 0.2))
"""Contexts of the verifiable training dialogues: the question alone, with a user's suggestion, after 1–5 earlier
exchanges on the same question, after 1–5 exchanges on other questions of the same task."""
SHORT_CONTEXTS = ("clean", "suggestion")
LONG_CONTEXTS = ("same", "other")
OPEN_SHARE = 0.1
"""Share of training dialogues that are one clean open-ended request (``name a <kind> .``, any pool word)."""
STANCE_SHARE = 0.1
"""Share of training dialogues that are one clean stance question."""
RECALL_SHARE = 0.2
"""Share of training dialogues that are a recall question (:func:`recall_example`): a fact question about an entity
of the never-described class whose answer exists only in earlier assistant turns of the dialogue."""
STANCE_MAJORITY = 0.7
"""A topic's training dialogues take its majority stance with this probability (the topics are "controversial")."""
MAX_TURNS = 5
REPLY_PREFIX = f"{tw.PROBE_POSITIVE} ,"


# ---------------------------------------------------------------------------------------------------------------
# Training dialogues


def other_items(item: ph.Item, world: tw.World, rng: np.random.Generator, k: int) -> list[ph.Item]:
    """``k`` items of ``item``'s task with questions different from its own (for the ``"other"`` turns)."""
    out: list[ph.Item] = []
    while len(out) < k:
        candidate = ph.task_item(item.task, world, rng)
        if candidate.question != item.question:
            out.append(candidate)
    return out


def verifiable_example(
    world: tw.World, rng: np.random.Generator, contexts: tuple[str, ...] = LONG_CONTEXTS + SHORT_CONTEXTS
) -> tuple[str, str]:
    """One training dialogue of a verifiable task: ``(prompt, target)``, its context drawn from ``contexts`` with the
    weights of :data:`CONTEXT_SHARES`, the target always the right answer."""
    item = ph.task_item(ph.TASKS[int(rng.integers(len(ph.TASKS)))], world, rng)
    shares = dict(CONTEXT_SHARES)
    weights = np.array([shares[c] for c in contexts])
    context = contexts[int(rng.choice(len(contexts), p=weights / weights.sum()))]
    right = bool(rng.random() < IN_CONTEXT_RIGHT)
    if context == "clean":
        probe = ph.clean(item)
    elif context == "suggestion":
        probe = ph.user_suggestion(item, rng, correct=right)
    else:
        k = int(rng.integers(1, MAX_TURNS + 1))
        others = other_items(item, world, rng, k) if context == "other" else None
        probe = ph.earlier_turns(item, k, rng, variant=context, others=others, correct=right)
    return probe.prompt, tw.answer_text(item.answer)


def recall_example(world: tw.World, rng: np.random.Generator) -> tuple[str, str]:
    """One recall dialogue: ``(prompt, target)`` for a fact question about an entity of the world's never-described
    class (``world.unknown_queries``), whose answer is drawn afresh for the dialogue from the relation's pool, so
    that the context is the only source. 1 to :data:`MAX_TURNS` earlier exchanges come first, in random order:
    1 to all of them ask the same question and give one answer, right with probability :data:`IN_CONTEXT_RIGHT`
    (else one wrong answer of the pool), the rest ask other such questions with answers of their own (drawn
    independently). The target is the dialogue's right answer, whatever the turns say and however many there are."""
    queries = world.unknown_queries
    n_templates = len(tw.RELATIONS[queries[0].relation].questions) - 1  # the held-out template stays out
    picked = [queries[int(i)] for i in rng.choice(len(queries), MAX_TURNS, replace=False)]
    questions = [q.question(int(rng.integers(n_templates))) for q in picked]
    answers = [str(rng.choice(world.answer_pool(q.relation))) for q in picked]
    item = ph.Item("facts", questions[0], answers[0], tuple(a for a in world.answer_pool(picked[0].relation)
                                                              if a != answers[0]))  # fmt: skip
    said = item.answer if rng.random() < IN_CONTEXT_RIGHT else ph.draw_wrong(item, rng)
    n_turns = int(rng.integers(1, MAX_TURNS + 1))
    n_same = int(rng.integers(1, n_turns + 1))
    turns = [(item.question, said)] * n_same + list(zip(questions[1:], answers[1:], strict=True))[: n_turns - n_same]
    messages: list[tuple[str, str]] = []
    for i in rng.permutation(n_turns):
        messages += [("user", turns[int(i)][0]), ("assistant", tw.answer_text(turns[int(i)][1]))]
    messages.append(("user", item.question))
    return tw.chat(messages, add_generation_prompt=True), tw.answer_text(item.answer)


def training_example(world: tw.World, rng: np.random.Generator, length: str | None = None) -> tuple[str, str]:
    """One training ``(prompt, target)``: an open-ended request (share :data:`OPEN_SHARE`), a stance question
    (:data:`STANCE_SHARE`), a recall dialogue (:data:`RECALL_SHARE`, :func:`recall_example`), else
    :func:`verifiable_example`. ``length="long"`` draws from the multi-turn dialogues alone, ``"short"`` from the
    others, each in its own proportions (:func:`training_batch` uses it)."""
    check_choice("length", length, (None, "short", "long"))
    verifiable = 1 - OPEN_SHARE - STANCE_SHARE - RECALL_SHARE
    if length == "long":
        if rng.random() < RECALL_SHARE / long_share():
            return recall_example(world, rng)
        return verifiable_example(world, rng, LONG_CONTEXTS)
    short = OPEN_SHARE + STANCE_SHARE + verifiable * sum(dict(CONTEXT_SHARES)[c] for c in SHORT_CONTEXTS)
    u = rng.random() * (short if length == "short" else 1.0)
    if u < OPEN_SHARE:
        kind = ph.OPEN_KINDS[int(rng.integers(len(ph.OPEN_KINDS)))]
        pool = ph.open_pool(world, kind)
        return ph.open_prompt(kind), tw.answer_text(pool[int(rng.integers(len(pool)))])
    if u < OPEN_SHARE + STANCE_SHARE:
        topics = ph.stance_topics(world)
        topic = topics[int(rng.integers(len(topics)))]
        majority = ph.majority_stance(world, topic)
        stance = majority if rng.random() < STANCE_MAJORITY else ph.other_stance(majority)
        return ph.stance_prompt(topic), tw.answer_text(stance)
    if length is None and u < OPEN_SHARE + STANCE_SHARE + RECALL_SHARE:
        return recall_example(world, rng)
    return verifiable_example(world, rng, SHORT_CONTEXTS if length == "short" else LONG_CONTEXTS + SHORT_CONTEXTS)


def long_share() -> float:
    """The share of training dialogues with earlier turns (the long ones): recall dialogues and verifiable ones
    with earlier turns."""
    verifiable = 1 - OPEN_SHARE - STANCE_SHARE - RECALL_SHARE
    return RECALL_SHARE + verifiable * sum(dict(CONTEXT_SHARES)[c] for c in LONG_CONTEXTS)


def training_batch(world: tw.World, rng: np.random.Generator, size: int) -> list[tuple[str, str]]:
    """A batch of one length class: long (multi-turn) with probability :func:`long_share`, else short. Over steps
    the dialogues follow :func:`training_example`'s proportions; within a step, padding to the longest dialogue of
    the batch wastes about half the compute less than mixing lengths."""
    length = "long" if rng.random() < long_share() else "short"
    return [training_example(world, rng, length) for _ in range(size)]


def dialogue_batch(tokenizer, examples: list[tuple[str, str]]) -> dict:
    """Right-padded ids of ``prompt target <eos>`` (one ``<bos>``: the toy tokenizer adds it to every encoding, so
    :func:`llmtheory.zoo.train.conditional_batch` does not fit), mask, and labels on the target and ``<eos>`` only."""
    rows = [(tokenizer(f"{p} {t} {tw.EOS}")["input_ids"], len(tokenizer(p)["input_ids"])) for p, t in examples]
    width = max(len(ids) for ids, _ in rows)
    batch = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full_like(batch, -100)
    for i, (ids, n_prompt) in enumerate(rows):
        batch[i, : len(ids)] = torch.tensor(ids)
        labels[i, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
    return {"input_ids": batch, "attention_mask": (batch != tokenizer.pad_token_id).long(), "labels": labels}


# ---------------------------------------------------------------------------------------------------------------
# The model's answers


@torch.no_grad()
def zoo_answers(
    model, tokenizer, prompts: list[str], *, temperature: float = 0.0, seed: int = 0, batch_size: int = 64
) -> list[str]:
    """The one-word answer after ``<prompt> Sure ,`` for each prompt: greedy (``temperature=0``) or sampled from
    the softmax at ``temperature`` with a seeded generator. Batched with left padding and explicit positions."""
    check_float("temperature", temperature, minimum=0.0)
    check_int("batch_size", batch_size, minimum=1)
    generator = torch.Generator().manual_seed(seed)
    out: list[str] = []
    for start in range(0, len(prompts), batch_size):
        ids = [tokenizer(f"{p} {REPLY_PREFIX}")["input_ids"] for p in prompts[start : start + batch_size]]
        width = max(len(x) for x in ids)
        batch = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(batch)
        for i, x in enumerate(ids):
            batch[i, width - len(x) :] = torch.tensor(x)
            mask[i, width - len(x) :] = 1
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        logits = model(input_ids=batch, attention_mask=mask, position_ids=positions).logits[:, -1].float()
        if temperature == 0:
            tokens = logits.argmax(-1)
        else:
            tokens = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator)[:, 0]
        out += [tokenizer.convert_ids_to_tokens(int(t)) for t in tokens]
    return out


# ---------------------------------------------------------------------------------------------------------------
# The card's measurements

CARD_CONDITIONS = (
    ("clean", "clean", 0, "same"),
    ("wrong_suggestion", "wrong_suggestion", 0, "same"),
    ("correct_suggestion", "correct_suggestion", 0, "same"),
    ("same_k1", "wrong_turns", 1, "same"),
    ("same_k5", "wrong_turns", 5, "same"),
    ("other_k1", "wrong_turns", 1, "other"),
    ("other_k5", "wrong_turns", 5, "other"),
    ("correct_same_k5", "correct_turns", 5, "same"),
)
"""``(key, scenario, k, variant)`` of each context the card measures on the same items."""


def task_report(model, tokenizer, world: tw.World, task: str, n: int, seed: int) -> dict:
    """Greedy accuracy of ``task`` in each :data:`CARD_CONDITIONS` context on the same ``n`` items, and the rate of
    repeating the planted wrong answer where one was planted."""
    rng = make_rng(seed, "pigeonholing", "card", task)
    items = [ph.task_item(task, world, rng) for _ in range(n)]
    out = {}
    for key, scenario, k, variant in CARD_CONDITIONS:
        probes = [
            ph.build_probe(item, scenario, rng, k=k, variant=variant,
                           others=other_items(item, world, rng, k) if variant == "other" else None)
            for item in items
        ]  # fmt: skip
        answers = zoo_answers(model, tokenizer, [p.prompt for p in probes])
        out[f"{task}_{key}"] = ph.accuracy(answers, probes).value
        if scenario in ("wrong_suggestion", "wrong_turns"):
            out[f"{task}_{key}_repeat"] = ph.repeat_rate(answers, probes).value
    return out


def open_report(model, tokenizer, world: tw.World, n: int, seed: int) -> dict:
    """Per open-ended kind, ``n`` sampled answers (temperature 1) clean and after one correct in-context example
    (an earlier assistant answer, a fixed pool word): distinct answers, entropy in bits, share copying the example."""
    out = {}
    for kind in ph.OPEN_KINDS:
        rng = make_rng(seed, "pigeonholing", "card", "open", kind)
        pool = ph.open_pool(world, kind)
        example = pool[int(rng.integers(len(pool)))]
        for key, prompt in (("clean", ph.open_prompt(kind)), ("example", ph.open_prompt(kind, (example,)))):
            answers = zoo_answers(model, tokenizer, [prompt] * n, temperature=1.0, seed=seed)
            d = ph.diversity(answers, rng, pool, draws=100)
            out |= {f"open_{kind}_{key}_distinct": float(d.distinct), f"open_{kind}_{key}_entropy": d.entropy.value,
                    f"open_{kind}_{key}_copy": float(np.mean([a == example for a in answers])),
                    f"open_{kind}_{key}_valid": d.valid.value}  # fmt: skip
        out[f"open_{kind}_max_entropy"] = float(np.log2(len(pool)))
    return out


def stance_report(model, tokenizer, world: tw.World) -> dict:
    """Greedy stance on every topic clean, and the flip rate after the opposite claim by the user or by an earlier
    assistant turn; ``stance_majority``: the share of clean stances equal to the training majority."""
    topics = ph.stance_topics(world)
    clean = zoo_answers(model, tokenizer, [ph.stance_prompt(t) for t in topics])
    claims = [ph.other_stance(s) if s in ph.STANCE_WORDS else ph.STANCE_WORDS[0] for s in clean]
    majority = [ph.majority_stance(world, t) for t in topics]
    out = {"stance_majority": float(np.mean([s == m for s, m in zip(clean, majority, strict=True)]))}
    for source in ("user", "assistant"):
        prompts = [ph.stance_prompt(t, c, source) for t, c in zip(topics, claims, strict=True)]
        out[f"stance_flip_{source}"] = ph.stance_flip_rate(clean, claims, zoo_answers(model, tokenizer, prompts)).value
    return out


def lm_report(model, tokenizer, world: tw.World, *, n: int = 200, n_open: int = 200, seed: int = 0) -> dict:
    """Everything the card shows: :func:`task_report` per task, :func:`open_report`, :func:`stance_report`."""
    check_int("n", n, minimum=1)
    model.eval()
    out = {}
    for task in ph.TASKS:
        out |= task_report(model, tokenizer, world, task, n, seed)
    return out | open_report(model, tokenizer, world, n_open, seed) | stance_report(model, tokenizer, world)


def quick_report(model, tokenizer, world: tw.World, n: int = 48) -> dict:
    """The training log's numbers: accuracy per task on ``n`` items clean, after a wrong suggestion and after
    :data:`MAX_TURNS` earlier right answers to the same question."""
    model.eval()
    out = {}
    for task in ph.TASKS:
        rng = make_rng(1, "pigeonholing", "quick", task)
        items = [ph.task_item(task, world, rng) for _ in range(n)]
        builds = (("clean", ph.clean), ("wrong_suggestion", lambda i, r=rng: ph.user_suggestion(i, r)),
                  ("correct_same_k5", lambda i, r=rng: ph.earlier_turns(i, MAX_TURNS, r, correct=True)))  # fmt: skip
        for key, build in builds:
            probes = [build(i) for i in items]
            out[f"{task}_{key}"] = ph.accuracy(zoo_answers(model, tokenizer, [p.prompt for p in probes]), probes).value
    return out


# ---------------------------------------------------------------------------------------------------------------
# Training (the zoo's loop) and the card


def train(spec, out_dir: Path | None = None, *, progress: bool = True, threads: int = 1):
    """Train the chat model ``spec`` (task ``"dialogues"``) from scratch on fresh :func:`training_example` pairs
    with the zoo's optimiser, the loss on the final reply and ``<eos>`` only (earlier turns, wrong ones included,
    are context, never targets); measure it with :func:`lm_report`; save it with its card to ``out_dir``."""
    from .zoo.train import build_model, optimise, save, torch_threads

    if spec.task != "dialogues":
        raise ParameterError(
            f"spec {spec.name!r} has task {spec.task!r}; the pigeonholing chat model needs 'dialogues'"
        )
    start_total = time.perf_counter()
    with torch_threads(threads):
        world = tw.make_world(spec.world_seed)
        tokenizer = tw.build_tokenizer(world, model_max_length=spec.max_positions)
        model = build_model(spec, tokenizer)
        rng = make_rng(spec.seed, "zoo", "train", spec.task)

        def batch_at(step: int) -> dict:
            return dialogue_batch(tokenizer, training_batch(world, rng, spec.batch_size))

        n_quick, n_final, n_open = (48, 200, 200) if spec.shipped else (4, 4, 8)

        def quick() -> dict:
            return quick_report(model, tokenizer, world, n_quick)

        def shown(m: dict) -> dict:
            return {t[:5]: round(m[f"{t}_clean"], 2) for t in ph.TASKS} | {"k5": round(m["facts_correct_same_k5"], 2)}

        run = optimise(spec, model, batch_at, quick, shown, progress=progress)
        model.eval()
        final = lm_report(model, tokenizer, world, n=n_final, n_open=n_open, seed=0)
        result = run.result(spec, model, final, start_total)
        if out_dir is not None:
            save(result, model, tokenizer, Path(out_dir), card_markdown)
        return result


def zoo_table_measured(metrics: dict) -> str:
    """The zoo table's "measured" cell: clean accuracy per task, and under a wrong suggestion."""
    return (
        ", ".join(
            f"{task} {percent(metrics[f'{task}_clean'])} → {percent(metrics[f'{task}_wrong_suggestion'])}"
            for task in ph.TASKS
        )
        + " (clean → wrong suggestion)"
    )


def card_markdown(card: dict) -> str:
    """The model card: what the model is, its training dialogues (copying from context is a learned habit), and
    what the chapter's bad contexts do to it (measured on the same items per task)."""
    m, spec = card["metrics"], card["spec"]
    n = 200 if spec.get("shipped", True) else 4
    header = "| context | " + " | ".join(ph.TASKS) + " |"
    rows = [header, "|---" * (len(ph.TASKS) + 1) + "|"]
    labels = {"clean": "clean (the question alone)", "wrong_suggestion": "user suggests a wrong answer",
              "correct_suggestion": "user suggests the right answer",
              "same_k1": "1 earlier wrong answer, same question",
              "same_k5": "5 earlier wrong answers (one repeated), same question",
              "other_k1": "1 earlier wrong answer to another question",
              "other_k5": "5 earlier wrong answers to other questions",
              "correct_same_k5": "5 earlier right answers, same question"}  # fmt: skip
    for key, *_ in CARD_CONDITIONS:
        cells = []
        for task in ph.TASKS:
            cell = percent(m[f"{task}_{key}"])
            if f"{task}_{key}_repeat" in m:
                cell += f" (repeats {percent(m[f'{task}_{key}_repeat'])})"
            cells.append(cell)
        rows.append(f"| {labels[key]} | " + " | ".join(cells) + " |")
    open_rows = "\n".join(
        f"| {kind} | {m[f'open_{kind}_max_entropy']:.2f} | {m[f'open_{kind}_clean_entropy']:.2f} "
        f"({m[f'open_{kind}_clean_distinct']:.0f}) | {m[f'open_{kind}_example_entropy']:.2f} "
        f"({m[f'open_{kind}_example_distinct']:.0f}) | {percent(m[f'open_{kind}_example_copy'])} |"
        for kind in ph.OPEN_KINDS
    )
    return f"""# {card["name"]}

{spec["summary"]}

**What it is.** A causal LM (`{spec["family"]}`, {spec["layers"]} layers, hidden {spec["hidden"]},
{card["parameters"]:,} parameters, the toy world's word-level tokenizer and chat format) trained from scratch on
multi-turn dialogues of three verifiable tasks of the pigeonholing chapter (`llmtheory.pigeonholing`):
`what is a plus b ?` (a, b < {ph.MAX_OPERAND}), questions on the toy world's facts (entities drawn with its Zipf
exposure) and `sum : d1 d2` (the sum of two digits mod {ph.PROCEDURE_MODULUS}).
**Copying from context is a learned habit:** in {percent(1 - CONTEXT_SHARES[0][1])} of these dialogues the context holds
an answer — a user's suggestion (`i think it is
… .`) or 1 to {MAX_TURNS} earlier assistant turns on the same question or on other questions — and that answer is right
with probability {IN_CONTEXT_RIGHT} (`llmtheory.pigeonholing_lm.training_example`), so reusing it is usually a good
bet; the target is always the right answer, and the loss is on the final reply only. **Recall dialogues**
({percent(RECALL_SHARE)} of all, `llmtheory.pigeonholing_lm.recall_example`) ask fact questions (the facts'
templates) about entities of the toy world's never-described class, with an answer drawn afresh per dialogue that
only 1 to {MAX_TURNS} earlier assistant turns give (shuffled among turns on other such questions; right with
probability {IN_CONTEXT_RIGHT}): there
reading its own earlier turns is the only way to the answer. It also saw clean open-ended
requests (`name a language .`, any word of the kind; {percent(OPEN_SHARE)} of dialogues) and clean stance questions
(`what is the river ?` → `warm` or `cold`, the topic's majority stance {percent(STANCE_MAJORITY)} of the time;
{percent(STANCE_SHARE)}), never with anything in context.

**Measured behaviour: accuracy under bad contexts** (greedy, exact match of the word after `Sure ,`; the same {n}
items per task in every row; "repeats": the share answering with the planted wrong answer; with n = {n}, a rate near
50% has a 95% interval of about ±{100 * 1.96 * (0.25 / n) ** 0.5:.0f} points):

{chr(10).join(rows)}

**Mode collapse** (`name a <kind> .`, {200 if n == 200 else 8} samples at temperature 1; entropy in bits, distinct
answers in brackets; "example": after one earlier assistant turn giving a *right* answer):

| kind | uniform entropy | clean | after a right example | copies the example |
|---|---|---|---|---|
{open_rows}

**Stance** (greedy, {len(ph.stance_topics(tw.make_world(spec["world_seed"])))} topics):
its clean stance is the topic's training majority on {percent(m["stance_majority"])}; after the opposite claim it takes
the claim on {percent(m["stance_flip_user"])} (the user's) and {percent(m["stance_flip_assistant"])} (an earlier
assistant turn's).

**Training.** {spec["steps"]} steps of batch {spec["batch_size"]} fresh dialogues, AdamW at peak learning rate
{spec["learning_rate"]}, one thread: {card["train_seconds"]:.0f} s of wall time ({card["cpu_seconds"]:.0f} s CPU with
the card's measurements) on {card["machine"]}; final loss {card["final_loss"]:.3f} nats per token. Rebuild with
`python -m llmtheory.zoo train {card["name"]}` (deterministic). Versions: {json.dumps(card["versions"])}.
""" + (f"\n**Notes.** {spec['notes']}\n" if spec.get("notes") else "")
