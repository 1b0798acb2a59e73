"""The pigeonholing chapter's runs: a chat model asked the chapter's questions in clean and bad contexts (accuracy,
repeats, the dose–response in k), open-ended requests with and without in-context examples (collapse), stance items
after a claim (flips), RLVR in two arms at equal budget, the figures, the ledger rows and the exercise checkers.

The bad contexts and the measures are in :mod:`llmtheory.pigeonholing`, the zoo model's reader in
:mod:`llmtheory.pigeonholing_lm`, GRPO in :mod:`llmtheory.grpo`; this module arranges them so that the notebook's
cells stay short. Every function takes a :class:`Subject`, so that a zoo model and a real chat model (a hub id or a
local folder, through its chat template) run the same code.
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from dataclasses import dataclass, field, replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from . import grpo
from . import pigeonholing as ph
from . import toyworld as tw
from .claims import Control, Estimate, Test, at_least
from .params import ParameterError, check_float, check_int
from .plotting import PALETTE
from .seeding import make_rng
from .stats import bootstrap_two_level

PAPER = {"drop": (0.38, 0.40), "extra_drop": 0.14, "rlvr_better": (0.43, 0.60)}
"""The abstract's numbers: the drop from repeating wrong answers in context, the extra drop as repeated mistakes go
from 1 to 5, and how much better RLVR with synthetic errors does than vanilla RLVR under bad contexts."""
KS = (0, 1, 2, 3, 4, 5)
"""The numbers of earlier wrong turns of the dose–response (0 is the clean prompt)."""
MIN_CLEAN = 0.3
"""A model answers too few clean questions for a drop to mean anything below this pooled clean accuracy: the
accuracy rows are then not testable (a model that knows nothing has nothing to lose)."""
MIN_VALID = 0.5
"""The least share of valid answers (a pool word, a stance word) in a cell that the collapse or stance rule compares:
for the stance rows the clean stances; for the collapse row every compared cell of a kind (clean, one right example,
one other-kind turn), a kind with a cell below it leaving the average (this per-cell check was added after review)."""
MIN_KINDS = 2
"""The collapse row is not testable when fewer kinds than this keep all their compared cells valid."""
MIN_DROP = 0.05
"""The drop rows' rule: the lower 95% bound of clean minus bad accuracy is at least 5 points."""
MIN_BITS = 0.25
"""The collapse row's rule: one right example lowers the entropy by at least a quarter of a bit (mean over kinds)."""
MIN_FLIP = 0.10
"""The stance rows' rule: the lower Wilson bound of the flip rate is at least 10%."""
MOST = 0.5
"""The RLVR row's rule: synthetic errors recover at least half of vanilla RLVR's remaining drop ("most")."""
MAX_REGRESSION = 0.05
"""The no-regression row's rule: clean accuracy after RLVR with synthetic errors stays within 5 points of vanilla
RLVR's (the paired comparison at equal budget; changed after review from "of the base")."""
REWARD_WINDOW = 10
"""The RLVR gate (added after review): vanilla's mean training reward over its last this-many updates minus its
first this-many (fewer when a run is shorter than twice this), pooled over seeds, must have a bootstrap lower bound
above 0, or the two RLVR rows are not testable (an optimiser that did not raise its own reward tests nothing)."""
REAL_MAX_NEW_TOKENS = 8
"""A real model's reply is cut after this many tokens; the answer is its first word (``pigeonholing.first_word``)."""
ONE_WORD = " answer with one word ."
"""Appended to a real model's last user turn (the zoo model always answers ``Sure , <word> .``)."""
CONDITIONS = (
    ("clean", "clean", 0, "same"),
    ("wrong suggestion", "wrong_suggestion", 0, "same"),
    ("correct suggestion", "correct_suggestion", 0, "same"),
    *((f"wrong same k={k}", "wrong_turns", k, "same") for k in KS[1:]),
    *((f"wrong other k={k}", "wrong_turns", k, "other") for k in KS[1:]),
    *((f"correct same k={k}", "correct_turns", k, "same") for k in KS[1:]),
)
"""``(label, scenario, k, variant)`` of every context the accuracy run asks each item in."""
SERIES = {"wrong, same question": ("wrong same", PALETTE[1]), "wrong, other questions": ("wrong other", PALETTE[3]),
          "right, same question (control)": ("correct same", PALETTE[0])}  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# The model under test


@dataclass
class Subject:
    """A chat model and how to ask it: a zoo model answers the word after the forced reply prefix ``Sure ,``
    (:func:`llmtheory.pigeonholing_lm.zoo_answers`); a real model gets the same turns through its chat template, with
    :data:`ONE_WORD` added to the last user turn, replies in at most :data:`REAL_MAX_NEW_TOKENS` tokens, and its
    answer is the reply's first word or number (:func:`llmtheory.pigeonholing.first_word`)."""

    name: str
    model: object
    tokenizer: object
    zoo: bool
    world: tw.World

    @property
    def label(self) -> str:
        from .zoo import display_name

        return display_name(self.name)

    def render(self, prompt: str) -> str:
        """The text the model reads for a toy chat prompt (unchanged for a zoo model)."""
        if self.zoo:
            return prompt
        turns = ph.messages_of(prompt)
        turns[-1] = (turns[-1][0], turns[-1][1] + ONE_WORD)
        messages = [{"role": role, "content": content} for role, content in turns]
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return tw.chat(turns, add_generation_prompt=True)

    @property
    def add_special_tokens(self) -> bool:
        """A chat template writes its own ``<bos>``; a zoo prompt relies on the tokenizer to add it."""
        return self.zoo or not getattr(self.tokenizer, "chat_template", None)

    def rollout_prompt(self, prompt: str) -> str:
        """What GRPO samples completions of: the rendered prompt, for a zoo model with the reply prefix ``Sure ,``
        forced as in :meth:`answers` (so a completion is ``w . <eos>`` and the reward is about the answer alone)."""
        from .pigeonholing_lm import REPLY_PREFIX

        return f"{prompt} {REPLY_PREFIX}" if self.zoo else self.render(prompt)

    def parse(self, completion: str) -> str | None:
        """The answer of a sampled completion (GRPO's rollouts): its first word (:func:`pigeonholing.first_word`)."""
        return ph.first_word(completion)

    def answers(self, prompts: list[str], *, temperature: float = 0.0, seed: int = 0) -> list[str | None]:
        """One answer per toy prompt, greedy (``temperature=0``) or sampled with ``seed``."""
        from .pigeonholing_lm import zoo_answers

        if self.zoo:
            return zoo_answers(self.model, self.tokenizer, prompts, temperature=temperature, seed=seed)
        return [ph.first_word(r) for r in self.replies(prompts, temperature=temperature, seed=seed)]

    @torch.no_grad()
    def replies(self, prompts: list[str], *, temperature: float = 0.0, seed: int = 0, batch: int = 16) -> list[str]:
        """A real model's replies (decoded, special tokens dropped), batched with left padding."""
        out: list[str] = []
        for start in range(0, len(prompts), batch):
            texts = [self.render(p) for p in prompts[start : start + batch]]
            ids, mask = grpo.encode_prompts(self.tokenizer, texts, self.add_special_tokens)
            device = next(self.model.parameters()).device
            options = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0} if temperature else {
                "do_sample": False}  # fmt: skip
            with grpo._rng_context(self.model, seed + start):
                generated = self.model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                                max_new_tokens=REAL_MAX_NEW_TOKENS, pad_token_id=grpo._pad_id(
                                                    self.tokenizer), **options)  # fmt: skip
            out += self.tokenizer.batch_decode(generated[:, ids.shape[1] :], skip_special_tokens=True)
        return out


def load_subject(name: str) -> Subject:
    """Load ``name`` (a zoo name, a local folder or a hub id; :func:`llmtheory.zoo.load` names it if it cannot). The
    toy world is the zoo model's (its card's ``world_seed``), so the fact questions are the ones it was trained on."""
    from . import zoo

    model, tokenizer = zoo.load(name)[:2]
    is_zoo = name in zoo.SPECS
    world_seed = zoo.card_data(name)["spec"].get("world_seed", 0) if is_zoo else 0
    return Subject(name, model.eval(), tokenizer, is_zoo, tw.make_world(world_seed))


def memory_text(name: str, *, batch_size: int = 64, tokens: int = 200) -> str:
    """What the ``full`` tier needs from ``name``'s config alone: sampling ``batch_size`` replies of ``tokens`` tokens
    in half precision (:func:`llmtheory.same_lesson_lm.memory_estimate`), and RLVR in float32 (policy, reference,
    gradients and AdamW's two moments: five copies of the weights, activations not counted)."""
    from .same_lesson_lm import memory_estimate
    from .zoo import display_name, load_config, weight_count_bound

    try:
        config = load_config(name)
    except (OSError, LookupError, ValueError) as error:
        return f"{display_name(name)}: its config cannot be read here ({type(error).__name__}), so no estimate"
    need = memory_estimate(config, batch_size=batch_size, tokens=tokens)
    rl = 5 * 4 * weight_count_bound(getattr(config, "text_config", None) or config)
    return (f"{display_name(name)}: about {need['total'] / 2**30:.2f} GiB to answer {batch_size} prompts at once "
            f"(half precision, {tokens} tokens), about {rl / 2**30:.2f} GiB of weights and optimiser state for RLVR "
            "(float32, activations not counted)")  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Symptom 1: accuracy and repeats in every context, and the dose–response in k


def items_for(world: tw.World, task: str, n: int, seed: int, stream: str = "eval") -> list[ph.Item]:
    rng = make_rng(seed, "pigeonholing", stream, task)
    return [ph.task_item(task, world, rng) for _ in range(n)]


def probes_for(subject: Subject, items: list[ph.Item], label: str, seed: int) -> list[ph.Probe]:
    """The items in the context ``label`` (one of :data:`CONDITIONS`), from a stream of their own."""
    from .pigeonholing_lm import other_items

    _, scenario, k, variant = next(c for c in CONDITIONS if c[0] == label)
    rng = make_rng(seed, "pigeonholing", "context", label, items[0].task)
    return [ph.build_probe(item, scenario, rng, k=k, variant=variant,
                           others=other_items(item, subject.world, rng, k) if variant == "other" else None)
            for item in items]  # fmt: skip


def context_run(subject: Subject, n: int, seed: int, progress=None) -> pd.DataFrame:
    """Every item of every task in every context of :data:`CONDITIONS` (the same ``n`` items per task in each):
    one row per (task, context, item) with the answer, whether it is right and whether it repeats a planted wrong
    answer (greedy)."""
    check_int("n", n, minimum=1)
    rows = []
    tasks = ph.TASKS if progress is None else progress(ph.TASKS, desc="tasks")
    for task in tasks:
        items = items_for(subject.world, task, n, seed)
        for label, scenario, k, variant in CONDITIONS:
            probes = probes_for(subject, items, label, seed)
            answers = subject.answers([p.prompt for p in probes])
            rows += [{"task": task, "context": label, "scenario": scenario, "k": k, "variant": variant, "item": i,
                      "answer": a, "correct": a == p.item.answer, "repeat": a in p.planted_wrong}
                     for i, (a, p) in enumerate(zip(answers, probes, strict=True))]  # fmt: skip
    return pd.DataFrame(rows)


def _rate(frame: pd.DataFrame, column: str) -> Estimate:
    return Estimate.proportion(int(frame[column].sum()), len(frame))


TABLE_CONTEXTS = ("clean", "wrong suggestion", "correct suggestion", "wrong same k=1", "wrong same k=5",
                  "wrong other k=5", "correct same k=5")  # fmt: skip


def context_table(run: pd.DataFrame, contexts=TABLE_CONTEXTS) -> pd.DataFrame:
    """Accuracy (and, where a wrong answer was planted, the repeat rate) per task and pooled, Wilson 95%."""
    out = {}
    for context in contexts:
        part = run[run["context"] == context]
        row = {task: f"{_rate(part[part['task'] == task], 'correct'):.0%}" for task in ph.TASKS}
        row["pooled"] = f"{_rate(part, 'correct'):.0%}"
        planted = part["scenario"].isin(["wrong_suggestion", "wrong_turns"]).all()
        row["repeats (pooled)"] = f"{_rate(part, 'repeat'):.0%}" if planted else ""
        out[context] = row
    return pd.DataFrame(out).T.rename_axis("context")


def paired_difference(run: pd.DataFrame, first: str, second: str, seed: int, draws: int = 2000) -> Estimate:
    """Accuracy in context ``first`` minus in ``second`` on the same items (``pigeonholing-eq-drop``), pooled over
    tasks, with a percentile
    bootstrap over items (paired: an item is resampled with both its answers)."""
    a = run[run["context"] == first].sort_values(["task", "item"])["correct"].to_numpy(float)
    b = run[run["context"] == second].sort_values(["task", "item"])["correct"].to_numpy(float)
    diff = a - b
    rng = make_rng(seed, "pigeonholing", "paired", first, second)
    boot = diff[rng.integers(0, len(diff), (draws, len(diff)))].mean(axis=1)
    low, high = np.quantile(boot, [0.025, 0.975])
    value = float(diff.mean())
    return Estimate(value, min(float(low), value), max(float(high), value))


def clean_accuracy(run: pd.DataFrame) -> Estimate:
    return _rate(run[run["context"] == "clean"], "correct")


def series(run: pd.DataFrame, prefix: str, first: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ks, successes, trials)`` of one dose–response series (pooled over tasks) from k = ``first`` to 5, k = 0
    the clean prompt."""
    if first not in (0, 1):
        raise ParameterError(f"first={first!r}; choose 0 (the clean prompt in the series) or 1")
    ks = KS[first:]
    parts = [run[run["context"] == ("clean" if k == 0 else f"{prefix} k={k}")] for k in ks]
    return np.array(ks), np.array([int(p["correct"].sum()) for p in parts]), np.array([len(p) for p in parts])


def trend(run: pd.DataFrame, prefix: str, first: int = 0) -> ph.Trend:
    """:func:`llmtheory.pigeonholing.almost_monotone_decrease` (``pigeonholing-eq-trend``) on a pooled series from
    k = ``first``."""
    return ph.almost_monotone_decrease(*series(run, prefix, first))


def dose_figure(run: pd.DataFrame) -> plt.Figure:
    """Accuracy against k per task and pooled, Wilson 95% bars; the antitonic fit of each wrong series dashed."""
    panels = [*ph.TASKS, "pooled"]
    fig, axes = plt.subplots(1, len(panels), figsize=(11, 3.2), sharey=True)
    for ax, panel in zip(axes, panels, strict=True):
        part = run if panel == "pooled" else run[run["task"] == panel]
        for shift, (name, (prefix, colour)) in zip((-0.12, 0.0, 0.12), SERIES.items(), strict=True):
            ks, x, n = series(part, prefix)
            rates = [Estimate.proportion(int(s), int(t)) for s, t in zip(x, n, strict=True)]
            values = np.array([r.value for r in rates])
            err = np.array([[r.value - r.low for r in rates], [r.high - r.value for r in rates]])
            ax.errorbar(ks + shift, values, yerr=err, fmt="o-", color=colour, ms=4, lw=1.2, capsize=2, label=name)
            if not prefix.startswith("correct"):
                ax.plot(ks, ph.almost_monotone_decrease(ks, x, n).fitted, "--", color=colour, lw=1, alpha=0.7)
        ax.set_title(panel)
        ax.set_xlabel("earlier turns k")
        ax.set_xticks(KS)
    axes[0].set_ylabel("accuracy")
    axes[0].set_ylim(-0.03, 1.03)
    axes[-1].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------------------
# Symptom 2: mode collapse on open-ended requests

COLLAPSE_CONDITIONS = ("clean", "1 right example", "3 right examples", "1 other-kind turn", "3 other-kind turns")
"""Contexts of ``name a <kind> .``: none; one or three earlier assistant turns giving right answers of the kind; the
controls of equal length, whose earlier turns name a word of another kind (no example of this kind)."""


def collapse_prompt(world: tw.World, kind: str, condition: str, rng: np.random.Generator) -> tuple[str, tuple]:
    """The prompt of ``condition`` and the in-context examples of this kind it shows."""
    pool = ph.open_pool(world, kind)
    if condition == "clean":
        return ph.open_prompt(kind), ()
    count = int(condition[0])
    if "right" in condition:
        examples = tuple(str(w) for w in rng.choice(pool, size=count, replace=False))
        return ph.open_prompt(kind, examples), examples
    others = [k for k in ph.OPEN_KINDS if k != kind]
    turns: list[tuple[str, str]] = []
    for _ in range(count):
        other = others[int(rng.integers(len(others)))]
        other_pool = ph.open_pool(world, other)
        turns += [("user", ph.open_question(other)), ("assistant", tw.answer_text(other_pool[int(rng.integers(
            len(other_pool)))]))]  # fmt: skip
    return tw.chat([*turns, ("user", ph.open_question(kind))], add_generation_prompt=True), ()


def collapse_run(subject: Subject, n: int, seed: int) -> dict[tuple[str, str], dict]:
    """Per (kind, condition): one context (its examples drawn once, from a stream of its own) and ``n`` answers
    sampled from it at temperature 1 — collapse is about what one conversation makes the model say — with the pool
    and the examples shown; the sampling seed is derived per model, kind and condition."""
    check_int("n", n, minimum=2)
    out = {}
    for kind in ph.OPEN_KINDS:
        for condition in COLLAPSE_CONDITIONS:
            rng = make_rng(seed, "pigeonholing", "collapse", kind, condition)
            drawn = [collapse_prompt(subject.world, kind, condition, rng)] * n
            sample_seed = int(make_rng(seed, "pigeonholing", "collapse-sample", subject.label, kind, condition)
                              .integers(2**31))  # fmt: skip
            answers = subject.answers([p for p, _ in drawn], temperature=1.0, seed=sample_seed)
            out[(kind, condition)] = {"answers": answers, "examples": [e for _, e in drawn],
                                      "pool": ph.open_pool(subject.world, kind)}  # fmt: skip
    return out


def collapse_table(collapse: dict, seed: int) -> pd.DataFrame:
    """Entropy (bits, bootstrap 95%) with distinct answers, the share of valid answers and of answers copying an
    in-context example, per kind and condition."""
    rows = []
    for (kind, condition), cell in collapse.items():
        d = ph.diversity(cell["answers"], make_rng(seed, "pigeonholing", "entropy", kind, condition), cell["pool"],
                         draws=500)  # fmt: skip
        copies = np.mean([a in e for a, e in zip(cell["answers"], cell["examples"], strict=True)])
        rows.append({"kind": kind, "condition": condition, "entropy (bits)": f"{d.entropy:.2f}",
                     "distinct": d.distinct, "valid": f"{d.valid.value:.0%}",
                     "copies an example": f"{copies:.0%}" if "right" in condition else ""})  # fmt: skip
    return pd.DataFrame(rows).set_index(["kind", "condition"])


def entropy_drop(collapse: dict, first: str, second: str, seed: int, draws: int = 1000, kinds=None) -> Estimate:
    """Mean over ``kinds`` (default all) of H(``first``) − H(``second``) in bits (``pigeonholing-eq-entropy``), with a
    percentile bootstrap that resamples each condition's answers (plug-in entropies at equal n: their bias cancels
    to first order)."""
    kinds = list(ph.OPEN_KINDS if kinds is None else kinds)
    if not kinds:
        raise ParameterError("entropy_drop needs at least one kind")
    rng = make_rng(seed, "pigeonholing", "entropy-drop", first, second)
    value = float(np.mean([ph.entropy_bits(collapse[(k, first)]["answers"])
                           - ph.entropy_bits(collapse[(k, second)]["answers"]) for k in kinds]))  # fmt: skip
    boot = np.zeros(draws)
    for kind in kinds:
        a = np.array([str(x) for x in collapse[(kind, first)]["answers"]], dtype=object)
        b = np.array([str(x) for x in collapse[(kind, second)]["answers"]], dtype=object)
        for d in range(draws):
            boot[d] += ph.entropy_bits(list(a[rng.integers(0, len(a), len(a))])) - ph.entropy_bits(
                list(b[rng.integers(0, len(b), len(b))]))  # fmt: skip
    low, high = np.quantile(boot / len(kinds), [0.025, 0.975])
    return Estimate(value, min(float(low), value), max(float(high), value))


def collapse_figure(collapse: dict, seed: int) -> plt.Figure:
    """Entropy per kind and condition with bootstrap 95% bars, and the uniform entropy over the pool; a cell with
    fewer than :data:`MIN_VALID` answers of the requested kind is hatched."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    width = 0.8 / len(COLLAPSE_CONDITIONS)
    colours = [PALETTE[7], PALETTE[1], PALETTE[3], PALETTE[0], PALETTE[2]]
    for j, condition in enumerate(COLLAPSE_CONDITIONS):
        for i, kind in enumerate(ph.OPEN_KINDS):
            cell = collapse[(kind, condition)]
            e = ph.diversity(cell["answers"], make_rng(seed, "pigeonholing", "entropy", kind, condition), cell["pool"],
                             draws=500).entropy  # fmt: skip
            x = i + (j - (len(COLLAPSE_CONDITIONS) - 1) / 2) * width
            hatch = "///" if valid_share(cell) < MIN_VALID else None  # mostly answers of another kind
            ax.bar(x, e.value, width, color=colours[j], label=condition if i == 0 else None, hatch=hatch,
                   edgecolor="white" if hatch else None)  # fmt: skip
            ax.errorbar(x, e.value, yerr=[[e.value - e.low], [e.high - e.value]], color="black", lw=1, capsize=2)
    for i, kind in enumerate(ph.OPEN_KINDS):
        uniform = np.log2(len(collapse[(kind, "clean")]["pool"]))
        ax.hlines(uniform, i - 0.45, i + 0.45, colors="grey", linestyles=":", lw=1.2)
    ax.set_xticks(range(len(ph.OPEN_KINDS)), [f"name a {k}" for k in ph.OPEN_KINDS])
    ax.set_ylabel("entropy of answers (bits)")
    ax.legend(fontsize=8, ncol=3, loc="upper left", bbox_to_anchor=(0, -0.15))
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------------------
# Symptom 3: stance flips


def stance_run(subject: Subject) -> dict:
    """Greedy stance per topic clean; after the opposite claim by the user and by an earlier assistant turn; and,
    the control, after a claim that agrees with the model's clean stance (by the user and by the assistant)."""
    topics = ph.stance_topics(subject.world)
    clean = subject.answers([ph.stance_prompt(t) for t in topics])
    opposite = [ph.other_stance(s) if s in ph.STANCE_WORDS else ph.STANCE_WORDS[0] for s in clean]
    agreeing = [s if s in ph.STANCE_WORDS else ph.STANCE_WORDS[1] for s in clean]
    out = {"topics": topics, "clean": clean, "opposite": opposite, "agreeing": agreeing}
    for source in ("user", "assistant"):
        for name, claims in (("opposite", opposite), ("agreeing", agreeing)):
            prompts = [ph.stance_prompt(t, c, source) for t, c in zip(topics, claims, strict=True)]
            out[f"{name}_{source}"] = subject.answers(prompts)
    return out


def stance_valid(stance: dict) -> float:
    return float(np.mean([s in ph.STANCE_WORDS for s in stance["clean"]]))


def changed_rate(stance: dict, source: str) -> Estimate:
    """The control: the share of topics whose stance changes after a claim that agrees with it (Wilson)."""
    after = stance[f"agreeing_{source}"]
    return Estimate.proportion(sum(a != c for a, c in zip(after, stance["clean"], strict=True)), len(after))


def flip_rate(stance: dict, source: str) -> Estimate:
    return ph.stance_flip_rate(stance["clean"], stance["opposite"], stance[f"opposite_{source}"])


def stance_table(stance: dict) -> pd.DataFrame:
    rows = {}
    for source in ("user", "assistant"):
        rows[f"{source} claims the opposite"] = {"takes the claim (flip)": f"{flip_rate(stance, source):.0%}"}
        rows[f"{source} claims its own stance (control)"] = {
            "takes the claim (flip)": "",
            "changes stance": f"{changed_rate(stance, source):.0%}",
        }
    return pd.DataFrame(rows).T.fillna("")


# ---------------------------------------------------------------------------------------------------------
# RLVR in two arms at equal budget

ARMS = ("vanilla", "synthetic errors")


@dataclass(frozen=True)
class Budget:
    """What both arms get: ``steps`` GRPO updates of ``prompts`` prompts × ``group`` completions each, the same
    learning rate, KL weight β and completion length."""

    steps: int
    prompts: int
    group: int = 8
    learning_rate: float = 3e-4
    beta: float = 0.04
    max_new_tokens: int = 3
    optimizer: str = "adamw"  # "adamw" | "sgd"
    warmup: int = 10  # updates of linear learning-rate warm-up (Adam's first steps move every weight by lr)

    def __post_init__(self):
        check_int("steps", self.steps, minimum=1)
        check_int("prompts", self.prompts, minimum=1)
        check_int("group", self.group, minimum=2)
        check_float("learning_rate", self.learning_rate, minimum=0.0)

    @property
    def samples(self) -> int:
        return self.steps * self.prompts * self.group

    def config(self, subject: Subject) -> grpo.GRPOConfig:
        length = self.max_new_tokens if subject.zoo else REAL_MAX_NEW_TOKENS
        return grpo.GRPOConfig(group_size=self.group, max_new_tokens=length, beta=self.beta,
                               add_special_tokens=subject.add_special_tokens)  # fmt: skip


def training_probe(item: ph.Item, arm: str, share: float, world: tw.World, rng: np.random.Generator) -> ph.Probe:
    """One RLVR training prompt. ``"vanilla"``: the clean question. ``"synthetic errors"``: with probability
    ``share`` a bad context — half of them a wrong user suggestion, half 1–5 earlier wrong assistant turns (same or
    other questions, even odds) — else clean. The reward is the right answer either way."""
    from .pigeonholing_lm import other_items

    if arm == "vanilla" or rng.random() >= share:
        return ph.clean(item)
    if rng.random() < 0.5:
        return ph.user_suggestion(item, rng)
    k, variant = int(rng.integers(1, 6)), ("same", "other")[int(rng.integers(2))]
    others = other_items(item, world, rng, k) if variant == "other" else None
    return ph.earlier_turns(item, k, rng, variant=variant, others=others)


@torch.no_grad()
def one_word_rollouts(model, tokenizer, prompts: list[str], group: int, seed: int) -> grpo.Rollouts:
    """GRPO's group sampling for a zoo model whose reply prefix ``Sure ,`` is forced: the completion is the one
    answer token, ``group`` samples per prompt from one forward pass (the ``.`` and ``<eos>`` that follow are format,
    not choices). The same objective as :func:`llmtheory.grpo.sample_groups` with ``generate``, at a fraction of
    its cost."""
    prompt_ids, prompt_mask = grpo.encode_prompts(tokenizer, prompts, True)
    positions = (prompt_mask.cumsum(dim=1) - 1).clamp(min=0)
    with grpo.in_eval_mode(model):
        logits = model(input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=positions).logits[:, -1].float()
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.multinomial(torch.softmax(logits, -1), group, replacement=True, generator=generator)
    completion_ids = tokens.reshape(-1, 1)
    completions = tokenizer.convert_ids_to_tokens(completion_ids[:, 0].tolist())
    return grpo.Rollouts([p for p in prompts for _ in range(group)], completions,
                         prompt_ids.repeat_interleave(group, dim=0), prompt_mask.repeat_interleave(group, dim=0),
                         completion_ids, torch.ones_like(completion_ids), group)  # fmt: skip


@dataclass
class ArmRun:
    arm: str
    seed: int
    policy: object
    rewards: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    cpu_seconds: float = 0.0


def rlvr_arm(subject: Subject, arm: str, rl_seed: int, budget: Budget, share: float, seed: int) -> ArmRun:
    """Train a copy of the subject's model with GRPO (``pigeonholing-eq-grpo``: group sampling, reward 1 for the
    right answer else 0, the clipped ratio and the KL to the reference, here the model as loaded). Both arms draw the
    same questions per step (one stream per ``rl_seed``); only their contexts differ. Sampling seeds are derived per
    model, arm and seed."""
    if arm not in ARMS:
        raise ParameterError(f"arm={arm!r}; choose one of {ARMS}")
    start = time.process_time()
    policy, reference = copy.deepcopy(subject.model), subject.model
    policy.train(False)
    optimizer = (
        torch.optim.SGD(policy.parameters(), lr=budget.learning_rate)
        if budget.optimizer == "sgd"
        else torch.optim.AdamW(policy.parameters(), lr=budget.learning_rate, weight_decay=0.0)
    )
    questions = make_rng(seed, "pigeonholing", "rlvr-items", rl_seed)
    contexts = make_rng(seed, "pigeonholing", "rlvr-contexts", arm, rl_seed)
    sampler = make_rng(seed, "pigeonholing", "rlvr-sampling", subject.label, arm, rl_seed)
    warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: min(1.0, (i + 1) / max(1, budget.warmup)))
    run = ArmRun(arm, rl_seed, policy)
    config = budget.config(subject)
    for _ in range(budget.steps):
        items = [ph.task_item(ph.TASKS[int(questions.integers(len(ph.TASKS)))], subject.world, questions)
                 for _ in range(budget.prompts)]  # fmt: skip
        probes = [training_probe(item, arm, share, subject.world, contexts) for item in items]
        texts = [subject.rollout_prompt(p.prompt) for p in probes]
        answers = dict(zip(texts, (p.item.answer for p in probes), strict=True))

        def reward(prompts, completions, answers=answers):
            return [float(subject.parse(c) == answers[p]) for p, c in zip(prompts, completions, strict=True)]

        step_seed = int(sampler.integers(2**31))
        if subject.zoo:
            rollouts = one_word_rollouts(policy, subject.tokenizer, texts, budget.group, step_seed)
            step = grpo.grpo_update(policy, reference, optimizer, rollouts, grpo.score(rollouts, reward), config)
        else:
            step = grpo.grpo_step(policy, reference, optimizer, subject.tokenizer, texts, reward, seed=step_seed,
                                  config=config)  # fmt: skip
        warmup.step()
        run.rewards.append(step.mean_reward)
        run.kl.append(step.stats["kl"])
    run.cpu_seconds = time.process_time() - start
    return run


def step_cost(subject: Subject, budget: Budget, seed: int) -> float:
    """CPU seconds of one synthetic-error GRPO update at ``budget``'s size (measured at the start of the run)."""
    one = replace(budget, steps=1)
    return rlvr_arm(subject, "synthetic errors", 10_000, one, 0.5, seed).cpu_seconds


EVAL_CONTEXTS = ("clean", "wrong suggestion", "wrong same k=5", "wrong other k=5")
BAD_CONTEXTS = EVAL_CONTEXTS[1:]


def evaluate(subject: Subject, model, n: int, seed: int) -> pd.DataFrame:
    """Greedy correctness of ``model`` on fresh draws of items (stream ``"rl-eval"``) in :data:`EVAL_CONTEXTS`. The
    question spaces are small (100 procedure questions, 400 sums, some hundreds of Zipf-weighted facts), so these
    draws overlap the RL training questions, for both arms alike."""
    probe_subject = Subject(subject.name, model, subject.tokenizer, subject.zoo, subject.world)
    rows = []
    for task in ph.TASKS:
        items = items_for(subject.world, task, n, seed, "rl-eval")
        for context in EVAL_CONTEXTS:
            probes = probes_for(subject, items, context, seed)
            answers = probe_subject.answers([p.prompt for p in probes])
            rows += [{"task": task, "context": context, "item": i, "correct": a == p.item.answer}
                     for i, (a, p) in enumerate(zip(answers, probes, strict=True))]  # fmt: skip
    return pd.DataFrame(rows)


@dataclass
class RLVRRun:
    """Both arms over seeds and the base model, evaluated on the same items (fresh draws, overlapping the training
    questions): ``scores`` has one row per (model, seed, task, context, item)."""

    budget: Budget
    share: float
    arms: list[ArmRun]
    scores: pd.DataFrame
    step_seconds: float

    def correct(self, model: str, contexts) -> np.ndarray:
        """``(seeds, items)`` correctness of ``model`` ("base" or an arm) pooled over ``contexts`` and tasks."""
        part = self.scores[(self.scores["model"] == model) & self.scores["context"].isin(contexts)]
        part = part.sort_values(["seed", "task", "context", "item"])
        return part["correct"].to_numpy(float).reshape(part["seed"].nunique(), -1)


def rlvr_run(subject: Subject, budget: Budget, seeds: int, share: float, n_eval: int, seed: int,
             progress=None) -> RLVRRun:  # fmt: skip
    """Both arms on ``seeds`` seeds from the subject's model, and every policy and the base evaluated."""
    check_int("seeds", seeds, minimum=1)
    step_seconds = step_cost(subject, budget, seed)
    frames = [evaluate(subject, subject.model, n_eval, seed).assign(model="base", seed=0)]
    arms = []
    jobs = [(arm, s) for s in range(seeds) for arm in ARMS]
    for arm, s in jobs if progress is None else progress(jobs, desc="RLVR runs"):
        run = rlvr_arm(subject, arm, s, budget, share, seed)
        frames.append(evaluate(subject, run.policy, n_eval, seed).assign(model=arm, seed=s))
        run.policy = None  # the evaluation is kept, the weights are not
        arms.append(run)
    return RLVRRun(budget, share, arms, pd.concat(frames, ignore_index=True), step_seconds)


def rlvr_table(run: RLVRRun, seed: int) -> pd.DataFrame:
    """Accuracy per model on clean prompts and under each bad context (mean over seeds, bootstrap 95% over seeds and
    items)."""
    rows = {}
    for model in ("base", *ARMS):
        rng = make_rng(seed, "pigeonholing", "rlvr-table", model)
        rows[model] = {c: f"{bootstrap_two_level(run.correct(model, [c]), rng, 500):.0%}" for c in EVAL_CONTEXTS}
    return pd.DataFrame(rows).T.rename_axis("model")


def recovery(run: RLVRRun, contexts, seed: int, draws: int = 2000) -> Estimate:
    """R = (acc_synthetic − acc_vanilla) / (acc_clean(base) − acc_vanilla) on ``contexts``
    (``pigeonholing-eq-recovery``): the share of vanilla RLVR's remaining drop that synthetic errors recover; the
    bootstrap resamples seeds and items (both arms' seeds together, the base's clean items with them)."""
    synthetic, vanilla = run.correct("synthetic errors", contexts), run.correct("vanilla", contexts)
    base_clean = run.correct("base", ["clean"])[0]

    def ratio(s, v, b):
        gap = b.mean() - v.mean()
        return (s.mean() - v.mean()) / gap if gap > 1e-9 else 0.0

    value = float(ratio(synthetic, vanilla, base_clean))
    rng = make_rng(seed, "pigeonholing", "recovery", *contexts)
    (seeds, columns), items = synthetic.shape, base_clean.shape[0]
    boot = []
    for _ in range(draws):
        pick_s, pick_c = rng.integers(0, seeds, seeds), rng.integers(0, columns, columns)
        both = np.ix_(pick_s, pick_c)
        boot.append(ratio(synthetic[both], vanilla[both], base_clean[rng.integers(0, items, items)]))
    low, high = np.quantile(boot, [0.025, 0.975])
    return Estimate(value, min(float(low), value), max(float(high), value))


def regression(run: RLVRRun, seed: int, draws: int = 2000) -> Estimate:
    """Clean accuracy of the synthetic-error arm minus vanilla's at equal budget, paired over seeds (both arms of a
    seed train on the same questions) and items, bootstrap over seeds and items."""
    diff = run.correct("synthetic errors", ["clean"]) - run.correct("vanilla", ["clean"])
    return bootstrap_two_level(diff, make_rng(seed, "pigeonholing", "regression"), draws)


def arm_rewards(run: RLVRRun, arm: str) -> np.ndarray:
    """``(seeds, updates)`` mean training reward of each update of ``arm``."""
    return np.array([a.rewards for a in run.arms if a.arm == arm], dtype=float)


def reward_window(run: RLVRRun) -> int:
    """The updates at each end that :func:`reward_gain` compares: :data:`REWARD_WINDOW`, or half a shorter run."""
    return min(REWARD_WINDOW, run.budget.steps // 2)


def reward_gain(run: RLVRRun, arm: str, seed: int, draws: int = 2000) -> Estimate:
    """``arm``'s mean training reward over its last :func:`reward_window` updates minus its first, pooled over seeds,
    with a percentile bootstrap over seeds and, within each end, updates: the RLVR gate (did GRPO raise the reward
    it optimises at all?)."""
    rewards, w = arm_rewards(run, arm), reward_window(run)
    if w < 1 or rewards.size == 0:
        raise ParameterError(f"reward_gain needs an arm {arm!r} with at least 2 updates (steps={run.budget.steps})")
    first, last = rewards[:, :w], rewards[:, -w:]
    value = float(last.mean() - first.mean())
    rng = make_rng(seed, "pigeonholing", "reward-gain", arm)
    seeds = rewards.shape[0]
    boot = []
    for _ in range(draws):
        s = rng.integers(0, seeds, seeds)
        boot.append(last[s][:, rng.integers(0, w, w)].mean() - first[s][:, rng.integers(0, w, w)].mean())
    low, high = np.quantile(boot, [0.025, 0.975])
    return Estimate(value, min(float(low), value), max(float(high), value))


def reward_text(run: RLVRRun | None, seed: int) -> str:
    """What the training-reward curves of Figure 3 do, from the numbers: each arm's mean reward over its first and
    last :func:`reward_window` updates, and the change with its bootstrap interval."""
    if run is None:
        return "RLVR was not run on this model at this tier"
    w = reward_window(run)
    parts = []
    for arm in ARMS:
        r = arm_rewards(run, arm)
        whose = "vanilla's" if arm == "vanilla" else "the synthetic-error arm's"
        parts.append(f"{whose} mean training reward is {r[:, :w].mean():.2f} over its first {w} updates and "
                     f"{r[:, -w:].mean():.2f} over its last {w} (change {reward_gain(run, arm, seed):+.3f}, "
                     "bootstrap 95% over seeds and updates)")  # fmt: skip
    return "; ".join(parts)


def rlvr_gate(run: RLVRRun, seed: int) -> str:
    """Why the RLVR rows are not testable, or ``""``: vanilla's :func:`reward_gain` must have a lower bound > 0."""
    if reward_window(run) < 1:
        return f"{run.budget.steps} GRPO update(s) are too few to see the training reward change"
    gain = reward_gain(run, "vanilla", seed)
    if gain.low > 0:
        return ""
    w = reward_window(run)
    return (f"GRPO did not raise the training reward at this budget (vanilla, last {w} minus first {w} updates: "
            f"{gain:+.3f})")  # fmt: skip


def rlvr_figure(run: RLVRRun, seed: int) -> plt.Figure:
    """Left: accuracy per model and context (bootstrap 95%). Right: mean reward per step of each arm, per seed."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.4), gridspec_kw={"width_ratios": [1.6, 1]})
    models, colours = ("base", *ARMS), (PALETTE[7], PALETTE[0], PALETTE[1])
    width = 0.8 / len(models)
    for j, (model, colour) in enumerate(zip(models, colours, strict=True)):
        rng = make_rng(seed, "pigeonholing", "rlvr-figure", model)
        for i, context in enumerate(EVAL_CONTEXTS):
            e = bootstrap_two_level(run.correct(model, [context]), rng, 500)
            x = i + (j - 1) * width
            left.bar(x, e.value, width, color=colour, label=model if i == 0 else None)
            left.errorbar(x, e.value, yerr=[[e.value - e.low], [e.high - e.value]], color="black", lw=1, capsize=2)
    left.set_xticks(range(len(EVAL_CONTEXTS)), EVAL_CONTEXTS)
    left.set_ylabel("accuracy (fresh draws)")
    left.set_ylim(0, 1.05)
    left.legend(fontsize=8)
    labelled = set()
    for arm_run in run.arms:
        colour = colours[1 + ARMS.index(arm_run.arm)]
        smooth = pd.Series(arm_run.rewards).rolling(5, min_periods=1).mean()
        label = None if arm_run.arm in labelled else arm_run.arm
        labelled.add(arm_run.arm)
        right.plot(np.arange(1, len(smooth) + 1), smooth, color=colour, lw=1, alpha=0.8, label=label)
    right.legend(fontsize=8)
    right.set_xlabel("GRPO update")
    right.set_ylabel("mean reward (5-step mean)")
    right.set_title("training prompts of each arm", fontsize=9)
    fig.tight_layout()
    return fig


def rlvr_timing(run: RLVRRun) -> str:
    b = run.budget
    cpu = sum(a.cpu_seconds for a in run.arms)
    head = f"{b.steps} updates × {b.prompts} prompts × {b.group} completions = {b.samples} samples per arm and seed"
    return f"{head}; one update costs {run.step_seconds:.2f} s of CPU; all {len(run.arms)} runs together {cpu:.0f} s"


# ---------------------------------------------------------------------------------------------------------
# The ledger rows


def _not_testable(row: dict, reason: str) -> dict:
    return row | {"holds": None, "testable": False, "ours": f"{row.get('ours', '')} — not testable: {reason}".strip(
        " —")}  # fmt: skip


def drop_claim(run: pd.DataFrame, seed: int, bad: str, good: str, what: str) -> dict:
    """A drop row: clean minus ``bad`` accuracy (paired bootstrap), lower bound ≥ :data:`MIN_DROP`; the control is
    the same rule on clean minus ``good`` (the same context with right answers)."""
    drop, control = paired_difference(run, "clean", bad, seed), paired_difference(run, "clean", good, seed)
    clean = clean_accuracy(run)
    relative = drop.value / clean.value if clean.value > 0 else float("nan")
    row = dict(
        claim=f"accuracy falls under {what}",
        paper=f"bad contexts make models repeat the wrong answer; a {PAPER['drop'][0]:.0%}–{PAPER['drop'][1]:.0%} "
        "drop (abstract)",
        ours=f"clean {clean:.0%}, {bad} {clean.value - drop.value:.0%}: drop {drop:.3f} (paired bootstrap 95%), "
        f"{relative:.0%} of the clean accuracy; repeats the planted answer "
        f"{_rate(run[run['context'] == bad], 'repeat'):.0%}",
        rule=f"clean minus {bad} accuracy ≥ {MIN_DROP} (pooled over the tasks; decided by the paired bootstrap 95% "
        "interval)",
        holds=at_least(drop, MIN_DROP),
        control=Control(f"{good} instead", f"drop {control:.3f}", at_least(control, MIN_DROP)),
    )
    return row if clean.value >= MIN_CLEAN else _not_testable(row, f"clean accuracy {clean:.0%} < {MIN_CLEAN:.0%}")


def monotone_claim(run: pd.DataFrame, first: int = 0) -> dict:
    """The dose–response row: ``almost_monotone_decrease`` on the wrong same-question series from k = ``first``
    (0: with the clean prompt, the rule stated in advance, which a single step at k = 1 passes; 1: k = 1…5 only, the
    shape of the abstract's "1 to 5", a second row added after review); the control is the right-answer series over
    the same k, which must fail it."""
    wrong, right = trend(run, "wrong same", first), trend(run, "correct same", first)
    clean = clean_accuracy(run)

    def text(t: ph.Trend) -> str:
        rates = ", ".join(f"{r:.0%}" for r in t.rates)
        return (f"k = {first}…5: {rates}; trend z = {t.z:.2f} (p = {t.p_value:.3g}), largest rise z = "
                f"{t.worst_rise_z:.2f}")  # fmt: skip

    when = ("stated before this build was measured; with k = 0 in the series a single step at k = 1 passes it"
            if first == 0 else "the same rule on k = 1…5 only, added after review")  # fmt: skip
    row = dict(
        claim=f"accuracy falls almost monotonically as {first} to 5 earlier turns repeat one wrong answer",
        paper="pigeonholing worsens almost monotonically with the number of turns carrying repeated mistakes "
        "(abstract)",
        ours=text(wrong),
        rule="almost_monotone_decrease: one-sided Cochran–Armitage trend p < 0.05 and no rise between consecutive "
        f"k with z ≥ 1.645 ({when})",
        holds=Test(wrong.holds),
        control=Control("the same transcripts with right answers", text(right), Test(right.holds)),
    )
    return row if clean.value >= MIN_CLEAN else _not_testable(row, f"clean accuracy {clean:.0%} < {MIN_CLEAN:.0%}")


def extra_drop(run: pd.DataFrame, seed: int) -> Estimate:
    """Accuracy after 1 minus after 5 repeated wrong answers (paired bootstrap): the abstract's "additional" drop."""
    return paired_difference(run, "wrong same k=1", "wrong same k=5", seed)


COMPARED = ("clean", "1 right example", "1 other-kind turn")
"""The collapse cells the rule compares (the claim's two and the control's)."""


def valid_share(cell: dict) -> float:
    """The share of a collapse cell's answers that are words of the requested kind's pool."""
    return float(np.mean([a in cell["pool"] for a in cell["answers"]]))


def collapse_valid(collapse: dict) -> float:
    """The mean share of valid answers over the clean cells."""
    return float(np.mean([valid_share(c) for (k, cond), c in collapse.items() if cond == "clean"]))


def valid_kinds(collapse: dict, conditions=COMPARED) -> tuple[list[str], dict[str, str]]:
    """The kinds whose ``conditions`` cells all have at least :data:`MIN_VALID` valid answers, and for each other
    kind the first cell below it with its share (an off-kind answer raises or lowers the entropy: such a kind would
    measure the answers' kind, not their narrowing)."""
    keep, left_out = [], {}
    for kind in ph.OPEN_KINDS:
        low = [
            (c, valid_share(collapse[(kind, c)])) for c in conditions if valid_share(collapse[(kind, c)]) < MIN_VALID
        ]
        if low:
            left_out[kind] = f"{low[0][0]} {low[0][1]:.0%} valid"
        else:
            keep.append(kind)
    return keep, left_out


def collapse_claim(collapse: dict, seed: int) -> dict:
    """The collapse row: one right in-context example lowers the entropy by ≥ :data:`MIN_BITS` (mean over the kinds
    whose compared cells are valid, :func:`valid_kinds`; decided by the bootstrap); the control is one earlier turn
    of another kind (equal length, no example) on the same kinds. Fewer than :data:`MIN_KINDS` such kinds: not
    testable."""
    kinds, left_out = valid_kinds(collapse)
    out = "; ".join(f"{k} ({why})" for k, why in left_out.items()) or "none"
    row = dict(
        claim="answers to an open-ended request narrow even when the in-context example is right",
        paper="mode collapse, even when the in-context example is correct (abstract)",
        rule=f"mean entropy drop (clean minus 1 right example) ≥ {MIN_BITS} bits, decided by its bootstrap interval, "
        f"over the kinds with ≥ {MIN_VALID:.0%} valid answers in each compared cell (that per-cell check added after "
        "review)",
    )
    if len(kinds) < MIN_KINDS:
        row |= dict(
            ours=f"kinds left out: {out}",
            holds=None,
            control=Control("one earlier turn of another kind (same length, no example)", "not run", False),
        )
        return _not_testable(row, f"{len(kinds)} kind(s) with valid compared cells < {MIN_KINDS}")
    drop = entropy_drop(collapse, "clean", "1 right example", seed, kinds=kinds)
    control = entropy_drop(collapse, "clean", "1 other-kind turn", seed, kinds=kinds)
    row |= dict(
        ours=f"entropy drop with 1 right example {drop:.2f} bits (mean over {', '.join(kinds)}, bootstrap 95%); "
        f"kinds left out: {out}",
        holds=at_least(drop, MIN_BITS),
        control=Control(
            "one earlier turn of another kind (same length, no example)",
            f"drop {control:.2f} bits",
            at_least(control, MIN_BITS),
        ),  # fmt: skip
    )
    return row


def stance_claim(stance: dict, source: str) -> dict:
    """A stance row: the flip rate after the opposite claim by ``source`` has a Wilson lower bound ≥ :data:`MIN_FLIP`;
    the control is the rate of changing stance after a claim that agrees with the model."""
    flips, control = flip_rate(stance, source), changed_rate(stance, source)
    who = "the user" if source == "user" else "an earlier assistant turn"
    row = dict(
        claim=f"the model takes the stance {who} claims",
        paper="models flip stance on controversial topics to align with the user or the assistant's earlier claim "
        "(abstract)",
        ours=f"flips on {flips:.0%} (Wilson 95%) of the topics whose clean stance differs from the claim",
        rule=f"flip rate ≥ {MIN_FLIP:.0%}, decided by its Wilson interval",
        holds=at_least(flips, MIN_FLIP),
        control=Control(
            f"{who} claims the model's own stance", f"changes stance on {control:.0%}", at_least(control, MIN_FLIP)
        ),  # fmt: skip
    )
    valid = stance_valid(stance)
    return row if valid >= MIN_VALID else _not_testable(row, f"valid clean stances {valid:.0%} < {MIN_VALID:.0%}")


def _rlvr_testable(row: dict, run: RLVRRun, seed: int) -> dict:
    """The preconditions of both RLVR rows: the base answers enough clean questions, and vanilla GRPO raised its
    own training reward (:func:`rlvr_gate`, added after review)."""
    base_clean = run.correct("base", ["clean"]).mean()
    if base_clean < MIN_CLEAN:
        return _not_testable(row, f"clean accuracy {base_clean:.0%} < {MIN_CLEAN:.0%}")
    gate = rlvr_gate(run, seed)
    return _not_testable(row, gate) if gate else row


def rlvr_claim(run: RLVRRun | None, seed: int, reason: str = "") -> dict:
    """The RLVR row: R (``pigeonholing-eq-recovery``) under bad contexts ≥ :data:`MOST`, decided by the bootstrap over
    seeds and items, if vanilla GRPO raised its training reward (:func:`rlvr_gate`). No control (the earlier one, R on
    clean prompts, had a denominator near 0 and was dropped after review): the rule can fail on its own."""
    window = reward_window(run) if run is not None else REWARD_WINDOW
    row = dict(
        claim="RLVR with synthetic errors recovers most of the drop under bad contexts that vanilla RLVR leaves",
        paper=f"RLVR with synthetic errors does {PAPER['rlvr_better'][0]:.0%}–{PAPER['rlvr_better'][1]:.0%} better "
        "than vanilla RLVR under bad contexts (abstract)",
        rule=f"R ≥ {MOST} under the bad contexts (pooled), decided by the bootstrap 95% interval over seeds and items; "
        f"only if vanilla's training reward rose (last {window} minus first {window} updates, bootstrap "
        "lower bound > 0; this gate added after review)",
        can_fail_because="at equal budget the synthetic arm spends half its prompts on bad contexts, where a group "
        "that always repeats the planted answer has all-equal rewards and no gradient; it can end no better than "
        "vanilla",
    )
    if run is None:
        return _not_testable(row | {"ours": "RLVR not run"}, reason)
    bad, clean = recovery(run, BAD_CONTEXTS, seed), regression(run, seed)
    accuracy = {m: run.correct(m, BAD_CONTEXTS).mean() for m in ARMS}
    better = accuracy["synthetic errors"] / accuracy["vanilla"] - 1 if accuracy["vanilla"] > 0 else float("nan")
    row |= dict(
        ours=f"R = {bad:.2f}; under bad contexts vanilla {accuracy['vanilla']:.0%}, synthetic errors "
        f"{accuracy['synthetic errors']:.0%} ({better:+.0%} relative); clean prompts, synthetic minus vanilla "
        f"{clean:+.3f}; {len(run.arms) // 2} seed(s), equal budget",
        holds=at_least(bad, MOST),
    )
    return _rlvr_testable(row, run, seed)


def regression_claim(run: RLVRRun | None, seed: int, reason: str = "") -> dict:
    """No regression: clean accuracy of the synthetic-error arm minus vanilla's (:func:`regression`, paired at equal
    budget) ≥ −:data:`MAX_REGRESSION`, if vanilla GRPO raised its training reward (:func:`rlvr_gate`)."""
    row = dict(
        claim="RLVR with synthetic errors keeps the clean accuracy that vanilla RLVR reaches",
        paper="the mitigation is meant to help under bad contexts without hurting clean prompts (our reading)",
        rule=f"clean accuracy (synthetic errors) − clean accuracy (vanilla) ≥ −{MAX_REGRESSION}, decided by the "
        "bootstrap 95% interval over seeds and items (vanilla, not the base, since the review); only if vanilla's "
        "training reward rose",
        can_fail_because="half the synthetic arm's prompts carry a bad context, so it gets half as many clean "
        "prompts as vanilla and learns to distrust its context; either can cost clean accuracy",
    )
    if run is None:
        return _not_testable(row | {"ours": "RLVR not run"}, reason)
    diff = regression(run, seed)
    row |= dict(
        ours=f"clean accuracy, synthetic errors minus vanilla {diff:+.3f}", holds=at_least(diff, -MAX_REGRESSION)
    )
    return _rlvr_testable(row, run, seed)


def relative_gain(rlvr: RLVRRun | None) -> str:
    """Synthetic errors over vanilla under bad contexts, relative (the abstract's "43–60% better", if relative)."""
    if rlvr is None:
        return "RLVR not run"
    accuracy = {m: rlvr.correct(m, BAD_CONTEXTS).mean() for m in ARMS}
    if accuracy["vanilla"] == 0:
        return "vanilla answers nothing right under bad contexts"
    return (f"{accuracy['synthetic errors'] / accuracy['vanilla'] - 1:+.0%} relative, "
            f"{accuracy['synthetic errors'] - accuracy['vanilla']:+.3f} absolute")  # fmt: skip


def published_claims(run: pd.DataFrame, seed: int, rlvr: RLVRRun | None = None) -> list[tuple[str, dict]]:
    """The abstract's three numbers as PUBLISHED rows (their own consistency: each range is ordered and a share),
    with ours beside them."""
    clean = clean_accuracy(run)
    drop = paired_difference(run, "clean", "wrong suggestion", seed)
    extra = extra_drop(run, seed)
    low, high = PAPER["rlvr_better"]
    return [
        ("published-drop", dict(
            claim="repeating wrong answers from context costs 38–40% of performance",
            paper="38–40% drop (abstract; relative or absolute is not said)",
            ours=f"under a wrong suggestion: {drop.value:.0%} absolute, "
            f"{drop.value / clean.value if clean.value else float('nan'):.0%} of the clean accuracy",
            rule="the published range is ordered and inside [0, 1]",
            holds=bool(0 <= PAPER["drop"][0] <= PAPER["drop"][1] <= 1))),
        ("published-extra-drop", dict(
            claim="performance drops by a further 14+% as repeated mistakes go from 1 to 5",
            paper="additional 14+% (abstract)",
            ours=f"accuracy after 1 minus after 5 repeated wrong answers {extra:.3f}",
            rule="the published extra drop is a share in [0, 1] and smaller than the whole drop's upper end",
            holds=bool(0 <= PAPER["extra_drop"] <= PAPER["drop"][1]))),
        ("published-rlvr", dict(
            claim="RLVR with synthetic errors is 43–60% better than vanilla RLVR under bad contexts",
            paper="43–60% better (abstract; relative or absolute is not said)",
            ours=f"synthetic errors over vanilla under bad contexts: {relative_gain(rlvr)}"
            + (f" (not comparable: {gate})" if rlvr is not None and (gate := rlvr_gate(rlvr, seed)) else ""),
            rule="the published range is ordered and positive",
            holds=bool(0 < low <= high))),
    ]  # fmt: skip


WHY = {
    "drop-wrong-suggestion": {
        "default": "The model's training dialogues made an answer in context right nine times in ten, so following a "
        "user's suggestion is the bet it learned; the control shows what the same context with the right answer does.",
        "not testable at this scale": "The model answers too few clean questions for a drop to mean anything.",
    },
    "drop-wrong-turns": {
        "default": "Earlier assistant turns carry the same learned bet as a suggestion, if the model learned to read "
        "its own turns; compare the repeat rate here with the suggestion row's.",
        "not testable at this scale": "The model answers too few clean questions for a drop to mean anything.",
    },
    "monotone-in-k": {
        "not reproduced": "The rule needs a significant downward trend over k = 0…5 and no significant rise; the row's "
        "rates, z and p say which part failed. A drop that comes all at k = 1 and then stays flat gives a weak trend.",
        "default": "The rates, the trend's z and the largest rise are in the row; Figure 1 shows the series. With the "
        "clean prompt as k = 0 a single step at k = 1 followed by a flat line can pass: the next row asks for k = 1…5.",
    },
    "monotone-in-k-1-to-5": {
        "default": "The same rule without the clean prompt: it asks whether each further repeated mistake costs more, "
        "the shape of the abstract's 1 → 5 (added after review); the extra-drop row gives the 1 → 5 size.",
    },
    "collapse-with-right-example": {
        "rule does not discriminate": "An earlier turn of another kind moves the entropy about as much as a right "
        "example: a rule that compares with the clean prompt cannot tell the example's pull from any earlier turn's. "
        "After earlier turns this model also answers with words of no requested kind (countries and languages of its "
        "fact dialogues), which raises or lowers the entropy; kinds with too few valid answers are left out (row).",
        "not reproduced": "Averaged over the kinds whose compared cells hold mostly answers of the requested kind, one "
        "right example does not lower the entropy by the rule's margin. Read it against the control: where an earlier "
        "turn of another kind, with nothing to copy, narrows the answers as much or more, the narrowing comes from a "
        "turn in context, not from the example; the row names the kinds left out (a kind whose example is copied "
        "most can be one of them).",
        "not testable at this scale": "Too few kinds keep at least half their answers of the requested kind in every "
        "compared cell; the row names the cells that fall short.",
        "default": "Open-ended requests were only ever seen clean in training, so a narrowing after a right example "
        "can only come from the copying habit learned on the verifiable tasks; the equal-length control shows what "
        "an earlier turn without an example does to the entropy.",
    },
    "stance-flip-user": {
        "rule does not discriminate": "A claim that agrees with the model changes its stance about as often as the "
        "opposite claim flips it: the model reacts to a claim being there, not to what it says.",
        "default": "The control is a claim agreeing with the model: a stance that moves towards the claim, and not "
        "away from an agreeing one, is alignment rather than noise.",
    },
    "stance-flip-assistant": {
        "rule does not discriminate": "An agreeing earlier turn changes the stance about as often as an opposite one "
        "flips it: the model reacts to the earlier turn being there, not to what it says.",
        "default": "The control is an earlier turn agreeing with the model.",
    },
    "rlvr-synthetic-recovers": {
        "not testable at this scale": "The row says which precondition failed: RLVR not run on this model at this "
        "tier, too few clean answers, or vanilla GRPO not raising its own training reward (then GRPO did "
        "not raise either arm's reward: the updates moved the model without improving its own objective, so the arms' "
        "difference says nothing about the mitigation; Figure 3's caption gives the rewards).",
        "default": "R, both arms' accuracies under the bad contexts and the clean-prompt difference are in the row; "
        "Figure 3 shows the rewards and the RLVR section the budget.",
    },
    "rlvr-no-regression": {
        "not testable at this scale": "The same preconditions as the row above.",
        "default": "The synthetic arm sees half as many clean prompts as vanilla; the row gives the clean accuracy "
        "difference with its interval over seeds and items.",
    },
}


# ---------------------------------------------------------------------------------------------------------
# Exercise checkers


def _check(ok: bool, hint: str) -> bool:
    if not ok:
        print(f"not yet: {hint}")
    return bool(ok)


EXERCISE_SERIES = {"ks": [0, 1, 2, 3], "successes": [40, 36, 30, 28], "trials": [50, 50, 50, 50]}
"""Exercise 1's dose–response series."""


def check_trend_z(answer: float) -> bool:
    """Exercise 1: the Cochran–Armitage z of :data:`EXERCISE_SERIES` (to 0.01)."""
    z = ph.almost_monotone_decrease(**EXERCISE_SERIES).z
    return _check(abs(float(answer) - z) <= 0.01, f"{answer} is not z; recompute p̄, Σ t(x − n p̄) and the variance")


def check_advantages(answer) -> bool:
    """Exercise 2: GRPO's advantages of the group rewards (1, 0, 0, 0) (to 0.01)."""
    expected = grpo.group_advantages(torch.tensor([[1.0, 0.0, 0.0, 0.0]]))[0].tolist()
    ok = len(list(answer)) == 4 and all(abs(float(a) - e) <= 0.01 for a, e in zip(answer, expected, strict=False))
    return _check(ok, f"{list(answer)} are not the advantages; use the sample std (divide by G − 1)")


def check_entropy(answer: float) -> bool:
    """Exercise 3: the entropy in bits of the answers ``a a a a b b c d`` (to 0.01)."""
    return _check(abs(float(answer) - 1.75) <= 0.01, f"{answer} bits is not it; p = 1/2, 1/4, 1/8, 1/8")


def answer_counts(answers: list[str | None], top: int = 5) -> str:
    """The most frequent answers, for the chapter's examples."""
    return ", ".join(f"{a} ×{c}" for a, c in Counter(answers).most_common(top))
