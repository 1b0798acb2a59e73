"""Behavioural measurements of zoo models on held-out toy-world items (used by training, the cards and the tests).

Exact match under greedy decoding is measured by teacher forcing: a greedy decoder emits the expected reply
``Sure , <answer>`` exactly when, at every position of that reply, the argmax of the next-token distribution is
the expected token. One forward pass per batch therefore gives the same verdict as ``generate`` (and
:func:`greedy_replies` shows what the model actually says).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .. import toyworld as tw
from ..params import check_int
from ..seeding import make_rng

NEEDLE_DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _right_padded(tokenizer, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    ids = [tokenizer(t)["input_ids"] for t in texts]
    width = max(len(x) for x in ids)
    batch = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(batch)
    for i, x in enumerate(ids):
        batch[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
    return batch, mask


@torch.no_grad()
def reply_matches(model, tokenizer, prompts: Sequence[str], replies: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """``matches[i, j]``: the greedy token at reply position ``j`` of item ``i`` equals the expected one.

    Returns a boolean array of shape (items, longest reply) padded with ``True``; ``matches.all(1)`` is greedy exact
    match of the whole reply, ``matches[:, 0]`` whether the first word (``Sure`` or ``Unfortunately``) is right.
    """
    lengths = [len(r.split()) for r in replies]
    out = np.ones((len(prompts), max(lengths)), dtype=bool)
    for start in range(0, len(prompts), batch_size):
        chunk = range(start, min(start + batch_size, len(prompts)))
        texts = [f"{prompts[i]} {replies[i]}" for i in chunk]
        batch, mask = _right_padded(tokenizer, texts)
        predicted = model(input_ids=batch, attention_mask=mask).logits.argmax(-1)
        for row, i in enumerate(chunk):
            end = int(mask[row].sum())
            targets = batch[row, end - lengths[i] : end]
            guesses = predicted[row, end - lengths[i] - 1 : end - 1]
            out[i, : lengths[i]] = (targets == guesses).numpy()
    return out


@torch.no_grad()
def greedy_replies(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 6) -> list[str]:
    """What the model says after each prompt under greedy decoding (stops at ``<eos>``), one prompt at a time.

    Positions are explicit (0, 1, 2, ...), as in training, so every family decodes the same way.
    """
    check_int("max_new_tokens", max_new_tokens, minimum=1)
    replies = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        new: list[int] = []
        for _ in range(max_new_tokens):
            token = int(model(input_ids=ids).logits[0, -1].argmax())
            if token == tokenizer.eos_token_id:
                break
            new.append(token)
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
        replies.append(tokenizer.decode(new))
    return replies


def fact_report(
    model, tokenizer, world: tw.World, *, per_bucket: int | None = None, heldout_template: bool = True, seed: int = 0
) -> dict:
    """Exact match by frequency bucket, abstention on the never-described class, and arithmetic accuracy.

    * ``exact_<bucket>``: greedy ``Sure , <true answer>`` on the canonical question (template 0);
    * ``exact_<bucket>_heldout_template``: the same with the question template never used in training;
    * ``abstain_unknown``: greedy reply starts with ``Unfortunately`` on the (entity, relation) pairs of the
      never-described class that training never asked;
    * ``abstain_<bucket>``: false abstentions on known facts;
    * ``arithmetic``: exact match on fresh ``a plus b`` questions.

    ``per_bucket`` subsamples each bucket (for quick checks); ``None`` uses every fact. ``heldout_template=False``
    skips the unseen-wording measures.
    """
    rng = make_rng(seed, "fact_report")
    report: dict[str, float] = {}
    model.eval()
    for bucket in tw.FREQUENCY_BUCKETS:
        facts = list(world.facts_in(bucket))
        if per_bucket is not None and per_bucket < len(facts):
            facts = [facts[i] for i in sorted(rng.choice(len(facts), per_bucket, replace=False))]
        replies = [tw.answer_text(f.answer) for f in facts]
        templates = (("", 0), ("_heldout_template", tw.HELDOUT_QUESTION))
        for suffix, template in templates if heldout_template else templates[:1]:
            prompts = [tw.fact_prompt(f, template) for f in facts]
            matches = reply_matches(model, tokenizer, prompts, replies)
            report[f"exact_{bucket}{suffix}"] = float(matches[:, :3].all(1).mean())
        prompts = [tw.fact_prompt(f) for f in facts]
        first = reply_matches(model, tokenizer, prompts, [tw.PROBE_NEGATIVE] * len(facts))
        report[f"abstain_{bucket}"] = float(first[:, 0].mean())
    unknown = [q for q in world.unknown_queries if q.heldout]
    first = reply_matches(model, tokenizer, [tw.fact_prompt(q) for q in unknown], [tw.PROBE_NEGATIVE] * len(unknown))
    report["abstain_unknown"] = float(first[:, 0].mean())
    dialogues = [tw.arithmetic_dialogue(rng) for _ in range(per_bucket or 100)]
    matches = reply_matches(
        model, tokenizer, [d.prompt for d in dialogues], [tw.answer_text(d.answer) for d in dialogues]
    )
    report["arithmetic"] = float(matches[:, :3].all(1).mean())
    return report


def needle_report(
    model,
    tokenizer,
    world: tw.World,
    *,
    n_words: int = 1024,
    per_depth: int = 20,
    depths: Sequence[float] = NEEDLE_DEPTHS,
    seed: int = 0,
) -> dict:
    """Exact retrieval (``Sure , <key> <value>``, greedy, full cache) by needle depth, on fresh haystacks.

    Returns ``{"depth_0.25": accuracy, ..., "mean": accuracy, "tokens": mean prompt length in tokens}``.
    """
    report: dict[str, float] = {}
    lengths = []
    model.eval()
    for depth in depths:
        rng = make_rng(seed, "needle_report", str(depth), n_words)
        stacks = [tw.haystack(world, rng, n_words=n_words, depth=float(depth)) for _ in range(per_depth)]
        lengths += [len(tokenizer(s.prompt)["input_ids"]) for s in stacks]
        replies = [s.reply for s in stacks]
        matches = reply_matches(model, tokenizer, [s.prompt for s in stacks], replies, batch_size=4)
        report[f"depth_{depth:g}"] = float(matches[:, : 3 + len(stacks[0].answer.split())].all(1).mean())
    report["mean"] = float(np.mean([report[f"depth_{d:g}"] for d in depths]))
    report["tokens"] = float(np.mean(lengths))
    return report


def needle_dialogue_report(
    model, tokenizer, world: tw.World, *, n_words: int = 1024, n_contexts: int = 20, questions: int = 3, seed: int = 0
) -> dict:
    """Exact retrieval of several questions in a row about different needles of the same context.

    Each context (a fresh :func:`llmtheory.toyworld.haystack`, needle at a random depth) is followed by
    ``questions`` chat turns asking about different needles, each earlier turn answered correctly; turn ``k``
    is scored like :func:`needle_report`. Returns ``{"turn_1": accuracy, ..., "turn_<questions>": accuracy}``.
    """
    check_int("questions", questions, minimum=1)
    rng = make_rng(seed, "needle_dialogue_report", n_words)
    prompts: list[list[str]] = [[] for _ in range(questions)]
    replies: list[list[str]] = [[] for _ in range(questions)]
    model.eval()
    for _ in range(n_contexts):
        stack = tw.haystack(world, rng, n_words=n_words, depth=float(rng.random()))
        words = stack.context.split()
        values = {words[i + 1]: words[i + 2] for i, w in enumerate(words[:-2]) if w == "secret"}
        others = sorted(k for k in values if k != stack.key)
        keys = [stack.key] + [str(k) for k in rng.choice(others, size=questions - 1, replace=False)]
        turns: list[tuple[str, str]] = []
        for k, key in enumerate(keys):
            question = ("user", tw.NEEDLE_QUESTION.format(key=key))
            prompts[k].append(f"{stack.context} {tw.chat([*turns, question], add_generation_prompt=True)}")
            replies[k].append(tw.answer_text(f"{key} {values[key]}"))
            turns += [question, ("assistant", replies[k][-1])]
    report = {}
    for k in range(questions):
        matches = reply_matches(model, tokenizer, prompts[k], replies[k], batch_size=4)
        report[f"turn_{k + 1}"] = float(matches[:, :4].all(1).mean())
    return report
