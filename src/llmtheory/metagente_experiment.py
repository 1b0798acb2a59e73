"""The Metagente chapter's experiment: every method and ablation on the same held-out pairs, the paired tests, and
the evidence each ledger row needs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from . import metagente as mg
from . import metagente_standin as si
from .claims import Control, Estimate, Test, all_of, at_least
from .seeding import make_rng

METRICS = ("rouge1", "rouge2", "rougeL")
OURS = "Metagente (stand-in agents)"
INITIAL = "unoptimised prompt"
NO_TEACHER = "no teacher (random edits)"
NO_EXTRACTOR = "no extractor"
SHUFFLED = "shuffled pairs (control)"
FIRST = "first sentence"
SELECTOR = "sentence selector (trained)"
GRID = "best grammar prompt (reference)"
METHODS = (FIRST, SELECTOR, INITIAL, OURS, NO_TEACHER, NO_EXTRACTOR, SHUFFLED, GRID)
BASELINES = (FIRST, SELECTOR, INITIAL)


def stand_in_agents(train: Sequence[mg.Pair], *, teacher=None, extractor=si.rule_extractor) -> mg.Agents:
    """The offline configuration: rule extractor, directive follower, grammar-search teacher, vote combiner whose
    share is chosen on ``train``. None of the four is a language model."""
    summarizer = mg.LLMSummarizer(si.directive_follower)
    draft = mg.Agents(extractor, summarizer, teacher or si.GrammarSearchTeacher(), si.voting_combiner)
    combiner = si.TrainSelectedCombiner(partial(mg.summarize_all, draft), train)
    return mg.Agents(extractor, summarizer, draft.teacher, combiner)


def shuffled(pairs: Sequence[mg.Pair], rng: np.random.Generator) -> list[mg.Pair]:
    """The same READMEs with their summaries permuted by a derangement (no README keeps its own summary)."""
    n = len(pairs)
    while True:
        order = rng.permutation(n)
        if n < 2 or np.all(order != np.arange(n)):
            break
    return [mg.Pair(p.name, p.readme, pairs[int(j)].about) for p, j in zip(pairs, order, strict=True)]


def best_grammar_prompt(agents: mg.Agents, train: Sequence[mg.Pair]) -> si.Directives:
    """The reference: the one prompt of the whole instruction grammar with the best mean ROUGE-L F on ``train``."""
    extracted = [mg.extract(agents, p.readme) for p in train]

    def score(d: si.Directives) -> float:
        return float(np.mean([si.example_score(d, e, p.about) for e, p in zip(extracted, train, strict=True)]))

    grid = [
        si.Directives(source, a, b, c, cap)
        for source in (None, *si.SOURCES)
        for a in (False, True)
        for b in (False, True)
        for c in (False, True)
        for cap in (None, *si.WORD_CAPS)
    ]
    return max(grid, key=score)


@dataclass
class Run:
    """Everything one seed's experiment produced."""

    loops: dict  # method -> OptimisationResult
    combiners: dict  # method -> the TrainSelectedCombiner (its chosen share and training scores)
    prompts: dict  # method -> the prompt used at test time
    outputs: dict  # method -> test outputs
    frame: pd.DataFrame  # one row per (method, pair) with the three ROUGE scores


def run_experiment(
    train: Sequence[mg.Pair], test: Sequence[mg.Pair], seed: int, progress: Callable | None = None
) -> Run:
    """Train every loop variant on ``train``, fit the extractive selector, and score every method on ``test``."""
    variants = {
        OURS: (stand_in_agents(train), train),
        NO_TEACHER: (
            stand_in_agents(train, teacher=si.RandomEditTeacher(make_rng(seed, "metagente", "random"))),
            train,
        ),
        NO_EXTRACTOR: (stand_in_agents(train, extractor=None), train),
    }
    mismatched = shuffled(train, make_rng(seed, "metagente", "shuffle"))
    variants[SHUFFLED] = (stand_in_agents(mismatched), mismatched)
    loops, prompts, outputs = {}, {}, {}
    for method, (agents, pairs) in variants.items():
        loops[method] = mg.optimise_prompt(agents, pairs, progress=progress and partial(progress, desc=method))
        prompts[method] = loops[method].prompt
        outputs[method] = mg.summarize_all(agents, prompts[method], test)
    agents = variants[OURS][0]
    prompts[INITIAL] = mg.INITIAL_SUMMARIZER_PROMPT
    outputs[INITIAL] = mg.summarize_all(agents, prompts[INITIAL], test)
    prompts[GRID] = best_grammar_prompt(agents, train).render()
    outputs[GRID] = mg.summarize_all(agents, prompts[GRID], test)
    outputs[FIRST] = [si.first_sentence(p.readme) for p in test]
    selector = si.SentenceSelector().fit(train)
    outputs[SELECTOR] = [selector(p) for p in test]
    rows = [
        {"method": method, "name": p.name, "about": p.about, "output": out, **mg.rouge(out, p.about)}
        for method in METHODS
        for out, p in zip(outputs[method], test, strict=True)
    ]
    combiners = {m: a.combiner for m, (a, _) in variants.items()}
    return Run(loops, combiners, prompts, outputs, pd.DataFrame(rows))


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean ROUGE-1/2/L per method with 95% t-intervals, as ``mean [low, high]`` text."""
    table = {}
    for method in METHODS:
        scores = frame[frame.method == method]
        table[method] = {m: f"{Estimate.mean_of(scores[m].to_numpy()):.3f}" for m in METRICS}
    return pd.DataFrame(table).T


def comparisons(frame: pd.DataFrame, ours: str, against: Sequence[str]) -> pd.DataFrame:
    """Paired differences ``ours − other`` per metric with t and Wilcoxon p-values, Holm-adjusted over the whole
    family (every method × metric × test), as in the paper's statistical analysis."""
    wide = frame.pivot(index="name", columns="method", values=list(METRICS))
    rows = [
        {"against": other, "metric": m, **mg.paired_tests(wide[m][ours].to_numpy(), wide[m][other].to_numpy())}
        for other in against
        for m in METRICS
    ]
    table = pd.DataFrame(rows)
    adjusted = mg.holm(np.concatenate([table.t_p, table.wilcoxon_p]))
    table["t_p_holm"], table["wilcoxon_p_holm"] = adjusted[: len(table)], adjusted[len(table) :]
    return table


def _gain(table: pd.DataFrame, other: str, metric: str = "rougeL") -> tuple[Estimate, pd.Series]:
    row = table[(table.against == other) & (table.metric == metric)].iloc[0]
    return Estimate(row["mean"], row["low"], row["high"]), row


def significant_gain(table: pd.DataFrame, other: str, alpha: float = 0.05) -> tuple[Estimate, Test]:
    """The rule of the baseline rows: a positive mean ROUGE-L gain whose interval is above 0, with both Holm-adjusted
    p-values under ``alpha``."""
    gain, row = _gain(table, other)
    return gain, all_of(at_least(gain, 1e-9), bool(row.t_p_holm < alpha), bool(row.wilcoxon_p_holm < alpha))


@dataclass
class Evidence:
    ours: str
    rule: str
    holds: Test | bool
    control: Control | None = None
    can_fail_because: str | None = None

    def kwargs(self) -> dict:
        out = {"ours": self.ours, "rule": self.rule, "holds": self.holds}
        if self.control is not None:
            out["control"] = self.control
        if self.can_fail_because:
            out["can_fail_because"] = self.can_fail_because
        return out


GAIN_RULE = "mean paired ROUGE-L gain > 0 (95% t-interval above 0) and Holm-adjusted t and Wilcoxon p < 0.05"


def beats_evidence(frame: pd.DataFrame, ours: str, other: str, control: str | None = None, why: str = "") -> Evidence:
    """``ours`` against ``other`` on ROUGE-L by :func:`significant_gain`; the control is ``control`` against the same
    ``other`` (a method that should not pass)."""
    methods = [m for m in (ours, control) if m]
    gains = {m: significant_gain(comparisons(frame, m, [other]), other) for m in methods}
    gain, test = gains[ours]
    evidence = Evidence(f"ROUGE-L gain over {other}: {gain:+.3f}", GAIN_RULE, test, can_fail_because=why or None)
    if control:
        c_gain, c_test = gains[control]
        evidence.control = Control(f"{control} vs {other}", ours=f"{c_gain:+.3f}", holds=c_test)
    return evidence


def beats_baselines_evidence(frame: pd.DataFrame) -> Evidence:
    """The headline: the optimised prompt beats each non-prompt baseline (first sentence, trained selector); the
    control is the unoptimised prompt against the same baselines."""
    table = comparisons(frame, OURS, (FIRST, SELECTOR))
    control = comparisons(frame, INITIAL, (FIRST, SELECTOR))
    ours = [significant_gain(table, b) for b in (FIRST, SELECTOR)]
    theirs = [significant_gain(control, b) for b in (FIRST, SELECTOR)]
    return Evidence(
        ours="; ".join(f"vs {b}: {g:+.3f}" for b, (g, _) in zip((FIRST, SELECTOR), ours, strict=True)),
        rule=GAIN_RULE + ", against each baseline",
        holds=all_of(*(t for _, t in ours)),
        control=Control(
            f"{INITIAL} against the same baselines",
            ours="; ".join(f"{g:+.3f}" for g, _ in theirs),
            holds=all_of(*(t for _, t in theirs)),
        ),
    )


def real_model_scores(llm, template: str, pairs: Sequence[mg.Pair]) -> list[float]:
    """ROUGE-L F of a real model used as the summarizer (rule extractor, one fixed prompt) on ``pairs``."""
    agents = mg.Agents(si.rule_extractor, mg.LLMSummarizer(llm), si.GrammarSearchTeacher(), si.voting_combiner)
    return [mg.rouge_l(o, p.about) for o, p in zip(mg.summarize_all(agents, template, pairs), pairs, strict=True)]


TEACHER_WHY = (
    "the random-edit loop keeps each example's best prompt by the same ROUGE feedback and may qualify as many "
    "pairs, with prompts that agree more, so it can match or beat the teacher"
)
EXTRACTOR_WHY = (
    "without the extractor the summarizer reads the whole README, where the chosen starting sentence can lie in a "
    "later section; with a source directive that looks only at the start the two can also tie"
)
REAL_MODEL_FLOOR = 0.05  # mean ROUGE-L under the unoptimised prompt below which a model "knows nothing" here


def real_model_evidence(optimised: Sequence[float], unoptimised: Sequence[float]) -> dict:
    """The real-model row: the optimised prompt's paired ROUGE-L gain with the real summarizer; not testable when
    the model's summaries share (almost) no words with the authors' (mean ROUGE-L < :data:`REAL_MODEL_FLOOR`)."""
    difference = np.subtract(optimised, unoptimised)
    floor = float(np.mean(unoptimised))
    testable = floor >= REAL_MODEL_FLOOR and len(difference) >= 2 and not np.allclose(difference, difference[0])
    gain = Estimate.mean_of(difference) if testable else float(np.mean(difference))
    return {
        "ours": f"gain {gain:+.3f} over {len(difference)} pairs; unoptimised mean ROUGE-L {floor:.3f}"
        + ("" if testable else f" (below {REAL_MODEL_FLOOR}: the model knows nothing of READMEs)"),
        "rule": "mean paired ROUGE-L gain > 0 with its 95% t-interval above 0",
        "holds": at_least(gain, 1e-9) if testable else None,
        "testable": testable,
        "can_fail_because": "a real model may follow the grammar's directives worse than the stand-in it was "
        "optimised with",
    }


FINDINGS = {
    "optimised-beats-unoptimised": {
        "rule does not discriminate": "The shuffled-pair control gains as much: what the loop learns is then the "
        "form of a summary, not the content of the pairs.",
        "default": "The unoptimised prompt gets the stand-in's verbose 50-word default, which ROUGE-L F punishes "
        "against summaries of a few words; any directive that picks one sentence or caps the length gains. The "
        "shuffled-pair loop qualifies no pair, so the combiner gets nothing and it keeps the initial prompt.",
    },
    "beats-baselines": {
        "not reproduced": "The optimised prompt lands on (or near) the first-sentence rule: the per-example prompts "
        "disagree, and what survives the vote is the most common one, 'start from the first sentence'. On PyPI "
        "metadata the summary is often the README's first line, which makes that heuristic strong; the trained "
        "selector learns from all training pairs at once which sentence to take and how much of it to keep, which "
        "is what the combiner of per-example prompts fails to do.",
        "default": "The first-sentence heuristic is strong on PyPI metadata, where the summary is often the "
        "README's first line.",
    },
    "teacher-ablation": {
        "not reproduced": "Random edits, filtered by the same threshold and best-prompt bookkeeping, produce "
        "per-example prompts that agree more (a word cap is the commonest random success), and the vote keeps "
        "it; the teacher's greedy edits are more specific to each example and cancel out in the combiner.",
        "default": "Both loops keep only what ROUGE feedback confirms on each example; they differ in how edits "
        "are proposed.",
    },
    "teacher-search": {
        "default": "This is the loop's first step: on each training pair the teacher's search finds a better prompt "
        "than random edits with the same number of calls. The held-out teacher row measures what is left of it "
        "after the combiner."
    },
    "extractor-ablation": {
        "default": "The prompt chosen keeps the summary's start in the README's first paragraphs, where the "
        "extractor and the whole README agree; the paper's own ablation shows no loss either (.335 without)."
    },
    "real-llm-gain": {
        "not testable at this scale": "The zoo models are trained on a synthetic fact world with a word-level "
        "vocabulary and cannot read a README; run with an instruction-tuned model or an endpoint.",
        "default": "The optimised prompt was found with the stand-in summarizer; a real model reads its "
        "directives its own way.",
    },
    "paper-numbers": "Offline, the agents are stand-ins and the data are PyPI summaries, not GitHub About lines "
    "or app descriptions.",
    "rouge-by-hand": "The book's LCS on rouge-score's own tokens gives the same F as rouge-score.",
}


def learning_curve(
    run: Run, train: Sequence[mg.Pair], test: Sequence[mg.Pair], sizes: Sequence[int], repeats: int, seed: int
) -> pd.DataFrame:
    """Held-out ROUGE-L of the prompt combined from random subsets of the training pairs, reusing each pair's own
    loop (the loop is data-parallel: a pair's trace does not depend on the others). One row per size and repeat;
    the combiner's share is chosen on the subset, as in the full run."""
    rng = make_rng(seed, "metagente", "learning-curve")
    traces = run.loops[OURS].traces
    rows = []
    for size in sizes:
        for repeat in range(repeats):
            chosen = rng.choice(len(train), size=min(size, len(train)), replace=False)
            subset = [train[i] for i in chosen]
            qualified = [traces[i].templates[traces[i].best] for i in chosen if traces[i].qualified]
            agents = stand_in_agents(subset)
            prompt = agents.combiner(qualified) if qualified else mg.INITIAL_SUMMARIZER_PROMPT
            outputs = mg.summarize_all(agents, prompt, test)
            score = float(np.mean([mg.rouge_l(o, p.about) for o, p in zip(outputs, test, strict=True)]))
            rows.append({"size": len(subset), "repeat": repeat, "qualified": len(qualified), "rougeL": score})
    return pd.DataFrame(rows)


def teacher_search_evidence(run: Run) -> Evidence:
    """Our diagnostic, not the paper's claim: per training pair, the best ROUGE-L the teacher's loop reached minus
    the best the random-edit loop reached (same pairs, same 15-call budget)."""
    teacher = np.array([max(t.scores) for t in run.loops[OURS].traces])
    random = np.array([max(t.scores) for t in run.loops[NO_TEACHER].traces])
    gain = Estimate.mean_of(teacher - random)
    return Evidence(
        f"best training ROUGE-L per pair, teacher − random edits: {gain:+.3f} over {len(teacher)} pairs",
        "mean paired gain > 0 with its 95% t-interval above 0",
        at_least(gain, 1e-9),
        can_fail_because="random edits get the same 15 calls and keep their best prompt; on pairs where one "
        "directive suffices they find it as often",
    )
