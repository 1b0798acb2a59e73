"""The SGPO chapter's base policy: a tiny Llama pre-trained on the procedure family of :mod:`llmtheory.sgpo`, half of
its texts with the strategy in the prompt, so that it *uses* a strategy when one is given and infers the procedure
from the demonstration (less well) when none is.

SGPO's premise (Shi et al. 2026, arXiv 2606.24064) is a base policy whose strategy-guided rollouts π(·|x, s) are
better than its autonomous ones π(·|x): only then is there a shift for the forward KL to move into π(·|x), and
reward variance for GRPO in both groups. The zoo model ``sgpo-llama`` is trained for exactly that regime: its card
states its greedy accuracy with and without s on held-out problems and on the two out-of-distribution splits.

Ours, not the paper's (which starts from Qwen2.5 and Llama instruct models): everything here. The texts are
:func:`llmtheory.sgpo.training_text`; the loss is on every demonstrated output and on the answer (the tokens after
each ``->`` up to ``;`` or ``<eos>``), never on random input digits or on the strategy. The problems are the train
split of :func:`splits` (so the test split's queries are unseen); the chapter's RL arms draw from the same split.
"""

from __future__ import annotations

import functools
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from . import sgpo
from .claims import Estimate
from .params import ParameterError, check_float, check_int
from .seeding import make_rng
from .zoo.cards import percent

MODEL = "sgpo-llama"
"""The zoo name of the base policy."""
GUIDED_SHARE = 0.5
"""Share of training texts with the strategy s in the prompt (the rest are x alone)."""
SPLIT_SIZES = {"n_train": 20_000, "n_test": 400, "n_ood": 400}
"""Sizes of :func:`llmtheory.sgpo.make_splits` for the base model and every later use of its problems: the test split
depends on the train split (its queries are new), so a chapter must call :func:`splits`, not ``make_splits`` with
other sizes."""
EVAL_SPLITS = ("test", "ood-length", "ood-combination")
MODES = ("auto", "guided")
"""``auto``: the prompt x alone, π(·|x); ``guided``: the strategy first, π(·|x, s)."""
SAMPLED_GROUP = 4
"""Completions per test problem for the card's sampled (temperature 1) accuracy: what a GRPO group of this size
sees."""


def splits(spec=None) -> dict[str, list[sgpo.Problem]]:
    """The problems of the base model ``spec`` (default: the shipped one's): :func:`llmtheory.sgpo.make_splits` at
    the spec's ``world_seed`` with :data:`SPLIT_SIZES` and the library's default family, lengths and held-out pairs."""
    seed = 0 if spec is None else spec.world_seed
    return {name: list(problems) for name, problems in _splits(seed).items()}


@functools.cache
def _splits(seed: int) -> dict[str, tuple[sgpo.Problem, ...]]:
    # drawing 20,000 identifiable problems takes seconds: once per process (problems are frozen)
    return {name: tuple(problems) for name, problems in sgpo.make_splits(seed, **SPLIT_SIZES).items()}


# ---------------------------------------------------------------------------------------------------------------
# Training texts


def output_labels(ids: Sequence[int], arrow_id: int, stop_ids: Sequence[int]) -> list[int]:
    """Labels for one tokenized text: each token after an ``->`` up to and including the next ``;`` or ``<eos>``
    keeps its id (the demonstrations' outputs and the answer), every other token is -100 (the strategy, the random
    input digits, the separators before an output)."""
    labels, inside = [], False
    for token in ids:
        labels.append(int(token) if inside else -100)
        if token == arrow_id:
            inside = True
        elif token in stop_ids:
            inside = False
    return labels


def training_batch(tokenizer, problems: Sequence[sgpo.Problem], rng: np.random.Generator, size: int,
                   guided_share: float = GUIDED_SHARE) -> dict:  # fmt: skip
    """``size`` texts drawn with replacement from ``problems``, each with s with probability ``guided_share``;
    right-padded ids, mask and :func:`output_labels`."""
    check_int("size", size, minimum=1)
    check_float("guided_share", guided_share, minimum=0.0, maximum=1.0)
    arrow, stops = tokenizer.convert_tokens_to_ids(sgpo.ARROW), [tokenizer.convert_tokens_to_ids(sgpo.SEPARATOR),
                                                                   tokenizer.eos_token_id]  # fmt: skip
    rows = []
    for _ in range(size):
        problem = problems[int(rng.integers(len(problems)))]
        ids = tokenizer(sgpo.training_text(problem, guided=bool(rng.random() < guided_share)))["input_ids"]
        rows.append((ids, output_labels(ids, arrow, stops)))
    width = max(len(ids) for ids, _ in rows)
    batch = torch.full((size, width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full_like(batch, -100)
    mask = torch.zeros_like(batch)
    for i, (ids, lab) in enumerate(rows):
        batch[i, : len(ids)], labels[i, : len(ids)], mask[i, : len(ids)] = torch.tensor(ids), torch.tensor(lab), 1
    return {"input_ids": batch, "attention_mask": mask, "labels": labels}


# ---------------------------------------------------------------------------------------------------------------
# Measurements


@torch.no_grad()
def greedy_completions(model, tokenizer, problems: Sequence[sgpo.Problem], *, guided: bool) -> list[str]:
    """The greedy completion of each problem's prompt (with s if ``guided``), up to ``<eos>`` or one token more
    than the answer needs. Prompts of equal token length are decoded together, so no padding is involved."""
    groups: dict[int, list[int]] = defaultdict(list)
    encoded = [tokenizer(p.prompt(guided))["input_ids"] for p in problems]
    for i, ids in enumerate(encoded):
        groups[len(ids)].append(i)
    eos, out = tokenizer.eos_token_id, [""] * len(problems)
    was_training = model.training
    model.eval()
    for width, rows in sorted(groups.items()):
        ids = torch.tensor([encoded[i] for i in rows])
        steps = max(len(problems[i].answer) for i in rows) + 1
        generated = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                   max_new_tokens=steps, pad_token_id=tokenizer.pad_token_id,
                                   eos_token_id=eos)[:, width:]  # fmt: skip
        for row, i in zip(generated.tolist(), rows, strict=True):
            row = row[: row.index(eos)] if eos in row else row
            out[i] = tokenizer.decode(row, skip_special_tokens=True)
    model.train(was_training)
    return out


def correct(model, tokenizer, problems: Sequence[sgpo.Problem], *, guided: bool) -> np.ndarray:
    """1.0 where the greedy completion passes :func:`llmtheory.sgpo.verify`, else 0.0, per problem."""
    completions = greedy_completions(model, tokenizer, problems, guided=guided)
    return np.array([sgpo.verify(p, c) for p, c in zip(problems, completions, strict=True)])


def sampled_report(model, tokenizer, problems: Sequence[sgpo.Problem], *, seed: int = 0,
                   group_size: int = SAMPLED_GROUP) -> dict:  # fmt: skip
    """At temperature 1, ``group_size`` samples per problem with and without s: the mean reward, and the share of
    problems whose group is mixed (some right, some wrong: where GRPO's advantages are not all zero)."""
    from . import grpo

    settings = grpo.GRPOConfig(group_size=group_size, max_new_tokens=10, beta=0.0)
    out = {}
    for mode in MODES:
        rollouts = sgpo.sample(model, tokenizer, problems, guided=mode == "guided", group_size=group_size,
                               seed=seed, config=settings)  # fmt: skip
        rewards = grpo.score(rollouts, sgpo.reward_function(problems))
        mean = rewards.mean(dim=1)
        out[f"sampled_{mode}"] = float(mean.mean())
        out[f"mixed_{mode}"] = float(((mean > 0) & (mean < 1)).float().mean())
    return out


def accuracy_report(model, tokenizer, problem_splits: dict[str, list[sgpo.Problem]], *, n: int,
                    sampled: int = 0) -> dict:  # fmt: skip
    """Greedy accuracy on the first ``n`` problems of each of :data:`EVAL_SPLITS`, without and with s
    (``<split>_<mode>``), the test accuracy per procedure (``test_<mode>_<procedure>``), and with ``sampled`` > 0
    :func:`sampled_report` on the first ``sampled`` test problems (``test_sampled_<mode>``, ``test_mixed_<mode>``)."""
    check_int("n", n, minimum=1)
    out = {}
    for split in EVAL_SPLITS:
        problems = problem_splits[split][:n]
        for mode in MODES:
            hits = correct(model, tokenizer, problems, guided=mode == "guided")
            out[f"{split}_{mode}"] = float(hits.mean())
            if split == "test":
                for procedure in sgpo.FAMILY:
                    mine = [h for h, p in zip(hits, problems, strict=True) if p.procedure == procedure]
                    out[f"test_{mode}_{procedure}"] = float(np.mean(mine)) if mine else float("nan")
    if sampled:
        report = sampled_report(model, tokenizer, problem_splits["test"][:sampled])
        out |= {f"test_{k}": v for k, v in report.items()}
    return out


def interval(metrics: dict, key: str, n: int) -> Estimate:
    """The card's rate ``metrics[key]`` over ``n`` problems with its Wilson 95% interval."""
    return Estimate.proportion(round(metrics[key] * n), n)


# ---------------------------------------------------------------------------------------------------------------
# Training (the zoo's loop) and the card


def card_sizes(spec) -> tuple[int, int]:
    """``(n, sampled)``: problems per split in the card's greedy accuracies and test problems in its sampled ones
    (small for an unshipped micro spec)."""
    return (SPLIT_SIZES["n_test"], 200) if spec.shipped else (8, 4)


def train(spec, out_dir: Path | None = None, *, progress: bool = True, threads: int = 1):
    """Train the base policy ``spec`` (task ``"sgpo_procedures"``) from scratch on :func:`training_batch` batches of
    the train split, with the zoo's optimiser; measure it with :func:`accuracy_report`; save it with its card."""
    from .zoo.train import build_model, optimise, save, torch_threads

    if spec.task != "sgpo_procedures":
        raise ParameterError(f"spec {spec.name!r} has task {spec.task!r}; the SGPO base policy needs 'sgpo_procedures'")
    start_total = time.perf_counter()
    with torch_threads(threads):
        problem_splits = splits(spec)
        tokenizer = sgpo.build_tokenizer(model_max_length=spec.max_positions)
        model = build_model(spec, tokenizer)
        rng = make_rng(spec.seed, "zoo", "train", spec.task)
        train_problems = problem_splits["train"]
        n, sampled = card_sizes(spec)
        quick_n = 100 if spec.shipped else 4

        def batch_at(step: int) -> dict:
            return training_batch(tokenizer, train_problems, rng, spec.batch_size)

        def quick() -> dict:
            return {f"test_{mode}": float(correct(model, tokenizer, problem_splits["test"][:quick_n],
                                                  guided=mode == "guided").mean()) for mode in MODES}  # fmt: skip

        run = optimise(spec, model, batch_at, quick, lambda m: {k: round(v, 2) for k, v in m.items()},
                       progress=progress)  # fmt: skip
        model.eval()
        final = accuracy_report(model, tokenizer, problem_splits, n=n, sampled=sampled)
        result = run.result(spec, model, final, start_total)
        if out_dir is not None:
            save(result, model, tokenizer, Path(out_dir), card_markdown)
        return result


def zoo_table_measured(metrics: dict) -> str:
    """The zoo table's "measured" cell: greedy accuracy without → with the strategy, per split."""
    return (
        ", ".join(
            f"{split} {percent(metrics[f'{split}_auto'])} → {percent(metrics[f'{split}_guided'])}"
            for split in EVAL_SPLITS
        )
        + " (without → with the strategy)"
    )


def card_markdown(card: dict) -> str:
    """The model card: what the base policy is, how it was trained, and its accuracy with and without s."""
    m, spec = card["metrics"], card["spec"]
    n = SPLIT_SIZES["n_test"] if spec.get("shipped", True) else 8
    longer = ", ".join(map(str, sgpo.OOD_LENGTHS))
    names = {"test": "held-out (unseen queries)", "ood-length": f"longer queries ({longer} digits)",
             "ood-combination": "unseen (procedure, length) pairs"}  # fmt: skip
    rows = ["| split | without s: π(·\\|x) | with s: π(·\\|x, s) |", "|---|---|---|"]
    for split in EVAL_SPLITS:
        cells = [f"{interval(m, f'{split}_{mode}', n):.2f}" for mode in MODES]
        rows.append(f"| {names[split]} | " + " | ".join(cells) + " |")
    per = ["| procedure | " + " | ".join(sgpo.FAMILY) + " |", "|---" * (len(sgpo.FAMILY) + 1) + "|"]
    for mode, label in (("auto", "without s"), ("guided", "with s")):
        per.append(f"| {label} | " + " | ".join(percent(m[f"test_{mode}_{p}"]) for p in sgpo.FAMILY) + " |")
    sampled = ""
    if "test_sampled_auto" in m:
        first = 200 if n == SPLIT_SIZES["n_test"] else 4
        sampled = (
            f"\n**Sampled at temperature 1** ({SAMPLED_GROUP} samples per problem, the first "
            f"{first} held-out problems): mean reward {percent(m['test_sampled_auto'])} "
            f"without s and {percent(m['test_sampled_guided'])} with s; groups with both right and wrong samples "
            f"(where GRPO's advantages are not zero): {percent(m['test_mixed_auto'])} without s, "
            f"{percent(m['test_mixed_guided'])} with s.\n"
        )
    held = ", ".join(f"{p} × {k}" for p, k in sgpo.HELD_OUT)
    return f"""# {card["name"]}

{spec["summary"]}

**What it is.** A causal LM (`{spec["family"]}`, {spec["layers"]} layers, hidden {spec["hidden"]}, {spec["heads"]}
heads, {card["parameters"]:,} parameters, the word-level tokenizer of `llmtheory.sgpo.build_tokenizer`) trained from
scratch as the base policy of the sgpo chapter. A problem shows one input → output demonstration of a hidden
procedure ({", ".join(sgpo.FAMILY)}) and a query (`llmtheory.sgpo.Problem`); the strategy s names the procedure and
adds a hint (`llmtheory.sgpo.strategy_text`). {percent(GUIDED_SHARE)} of its training texts carry s before the
demonstration, the rest do not (`llmtheory.sgpo_lm.training_batch`); the loss is on the demonstrated output and the
answer. Its problems are the train split of `llmtheory.sgpo_lm.splits` ({SPLIT_SIZES["n_train"]:,} problems, queries of
{", ".join(map(str, sgpo.LENGTHS))} digits, the pairs {held} never shown).

**Measured behaviour: greedy accuracy** (exact match, the first {n} problems of each split, Wilson 95% intervals):

{chr(10).join(rows)}

Held-out accuracy per procedure:

{chr(10).join(per)}
{sampled}
**Training.** {spec["steps"]} steps of batch {spec["batch_size"]}, AdamW at peak learning rate {spec["learning_rate"]}
(warm-up {spec["warmup"]}, cosine to a tenth), one thread: {card["train_seconds"]:.0f} s of wall time
({card["cpu_seconds"]:.0f} s CPU with the card's measurements) on {card["machine"]}; final loss
{card["final_loss"]:.3f} nats per output token. Rebuild with `python -m llmtheory.zoo train {card["name"]}`
(deterministic). Versions: {json.dumps(card["versions"])}.
""" + (f"\n**Notes.** {spec['notes']}\n" if spec.get("notes") else "")
