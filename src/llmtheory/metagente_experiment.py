"""The Metagente chapter's experiment: every method and ablation on the same held-out pairs, and the paired tests
(the ledger's rules on them are in :mod:`llmtheory.metagente_claims`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from . import metagente as mg
from . import metagente_lm as lm
from . import metagente_standin as si
from .claims import Estimate
from .seeding import make_rng

METRICS = ("rouge1", "rouge2", "rougeL")
OURS = "Metagente (stand-in agents)"
MAJORITY = "Metagente, majority vote"
INITIAL = "unoptimised prompt"
NO_TEACHER = "random edits (ours)"
NO_TEACHER_MAJORITY = "random edits, majority vote"
NO_EXTRACTOR = "no extractor"
SHUFFLED = "shuffled pairs (control)"
FIRST = "first sentence"
SELECTOR = "sentence selector (trained)"
GRID = "best grammar prompt (reference)"
METHODS = (FIRST, SELECTOR, INITIAL, OURS, MAJORITY, NO_TEACHER, NO_TEACHER_MAJORITY, NO_EXTRACTOR, SHUFFLED, GRID)
MAJORITY_SHARE = 0.5  # the combiner's pre-registered vote: a directive that half the qualified prompts state
BASELINES = (FIRST, SELECTOR, INITIAL)
SUMMARIZER = "readme-summarizer-llama-copies"  # the zoo's trained summarizer (llmtheory.metagente_lm)
TRAINED = "Metagente, trained summarizer"
TRAINED_INITIAL = "unoptimised prompt, trained summarizer"


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


def summary_in_readme(pairs: Sequence[mg.Pair]) -> int:
    """How many summaries appear word for word (case and spacing aside) in their cleaned README."""
    squash = lambda text: " ".join(text.lower().split())  # noqa: E731
    return sum(squash(p.about).rstrip(".") in squash(p.readme) for p in pairs)


def majority_prompt(loop: mg.OptimisationResult) -> str:
    """The pre-registered combiner on a loop's qualified prompts: the vote at :data:`MAJORITY_SHARE` (the initial
    prompt when no pair qualified)."""
    return si.voting_combiner(loop.qualified, MAJORITY_SHARE) if loop.qualified else mg.INITIAL_SUMMARIZER_PROMPT


@dataclass
class Run:
    """Everything one seed's experiment produced."""

    loops: dict  # method -> OptimisationResult
    combiners: dict  # method -> the TrainSelectedCombiner (its chosen share and training scores)
    prompts: dict  # method -> the prompt used at test time
    outputs: dict  # method -> test outputs
    frame: pd.DataFrame  # one row per (method, pair) with the three ROUGE scores
    equal_budget: list  # per training pair: the random-edit loop given the teacher's whole budget of summarizer runs


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
    for method, loop in ((MAJORITY, loops[OURS]), (NO_TEACHER_MAJORITY, loops[NO_TEACHER])):
        prompts[method] = majority_prompt(loop)
        outputs[method] = mg.summarize_all(agents, prompts[method], test)
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
    equal_budget = equal_budget_random(loops[OURS], train, seed)
    return Run(loops, combiners, prompts, outputs, pd.DataFrame(rows), equal_budget)


def equal_budget_random(loop: mg.OptimisationResult, train: Sequence[mg.Pair], seed: int) -> list[mg.ExampleTrace]:
    """The random-edit loop on each training pair with as many summarizer calls as the grammar-search teacher's loop
    used on that pair, its hidden evaluations included (:func:`~llmtheory.metagente_standin.search_budget`)."""
    teacher = si.RandomEditTeacher(make_rng(seed, "metagente", "equal-budget"))
    agents = mg.Agents(si.rule_extractor, mg.LLMSummarizer(si.directive_follower), teacher, si.voting_combiner)
    return [
        mg.optimise_example(agents, pair, max_iterations=si.search_budget(trace.scores, mg.THRESHOLD))
        for pair, trace in zip(train, loop.traces, strict=True)
    ]


def best_so_far(traces: Sequence[mg.ExampleTrace], length: int = mg.MAX_ITERATIONS) -> np.ndarray:
    """The mean over examples of the best ROUGE-L F reached within k visible summarizer calls, k = 1..``length``
    (an example that stopped early keeps its last best)."""
    padded = [t.scores + [t.scores[-1]] * (length - len(t.scores)) for t in traces]
    return np.maximum.accumulate(np.array(padded), axis=1).mean(axis=0)


def summary_table(frame: pd.DataFrame, methods: Sequence[str] = METHODS) -> pd.DataFrame:
    """Mean ROUGE-1/2/L per method (of ``methods``) with 95% t-intervals, as ``mean [low, high]`` text."""
    table = {}
    for method in methods:
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


def real_model_scores(llm, template: str, pairs: Sequence[mg.Pair]) -> list[float]:
    """ROUGE-L F of a real model used as the summarizer (rule extractor, one fixed prompt) on ``pairs``."""
    agents = mg.Agents(si.rule_extractor, mg.LLMSummarizer(llm), si.GrammarSearchTeacher(), si.voting_combiner)
    return [mg.rouge_l(o, p.about) for o, p in zip(mg.summarize_all(agents, template, pairs), pairs, strict=True)]


def learning_curve(
    run: Run, train: Sequence[mg.Pair], test: Sequence[mg.Pair], sizes: Sequence[int], repeats: int, seed: int
) -> pd.DataFrame:
    """Held-out ROUGE-L of the prompt combined from random subsets of the training pairs, reusing each pair's own
    loop (the loop is data-parallel: a pair's trace does not depend on the others). One row per size and repeat;
    the combiner's share is chosen on the subset, as in the full run. Sizes not below the training set's are
    dropped, and the whole training set is always the last size (one subset)."""
    rng = make_rng(seed, "metagente", "learning-curve")
    traces = run.loops[OURS].traces
    rows = []
    for size in sorted({s for s in sizes if s < len(train)}) + [len(train)]:
        for repeat in range(repeats if size < len(train) else 1):  # the whole set has one subset
            chosen = rng.choice(len(train), size=min(size, len(train)), replace=False)
            subset = [train[i] for i in chosen]
            qualified = [traces[i].templates[traces[i].best] for i in chosen if traces[i].qualified]
            agents = stand_in_agents(subset)
            prompt = agents.combiner(qualified) if qualified else mg.INITIAL_SUMMARIZER_PROMPT
            outputs = mg.summarize_all(agents, prompt, test)
            score = float(np.mean([mg.rouge_l(o, p.about) for o, p in zip(outputs, test, strict=True)]))
            rows.append({"size": len(subset), "repeat": repeat, "qualified": len(qualified), "rougeL": score})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------------
# The loop with the trained summarizer (zoo model readme-summarizer-llama-copies)


@dataclass
class CachedLLM:
    """An :class:`~llmtheory.metagente_llm.LLM` whose answers at temperature 0 are kept: greedy decoding answers a
    prompt the same way every time, and the loop resends prompts (the teacher returns to an edit it tried).
    ``runs`` counts the prompts the model itself answered."""

    llm: object
    cache: dict = field(default_factory=dict, repr=False)
    runs: int = 0

    def __call__(self, prompt: str, temperature: float = 0.0) -> str:
        if temperature > 0:
            self.runs += 1
            return self.llm(prompt, temperature)
        if prompt not in self.cache:
            self.runs += 1
            self.cache[prompt] = self.llm(prompt, temperature)
        return self.cache[prompt]

    def prefill(self, prompts: Sequence[str], batch_size: int = 32) -> None:
        """Answer the prompts not yet cached at temperature 0 in batches, if the model can
        (:meth:`~llmtheory.metagente_llm.TransformersLLM.batch`; an endpoint is asked one prompt at a time later)."""
        todo = list(dict.fromkeys(p for p in prompts if p not in self.cache))
        if todo and hasattr(self.llm, "batch"):
            self.cache.update(zip(todo, self.llm.batch(todo, batch_size=batch_size), strict=True))
            self.runs += len(todo)


def trained_summarizer_agents(llm, train: Sequence[mg.Pair]) -> mg.Agents:
    """The stand-in configuration with ``llm`` as the summarizer: rule extractor, grammar-search teacher (its
    hidden evaluations still run the stand-in summarizer: that is the teacher's own model of what an edit does;
    only the loop's visible calls and the combiner's training scores go to ``llm``), vote combiner whose share is
    chosen on ``train`` with ``llm``'s summaries."""
    summarizer = mg.LLMSummarizer(llm)
    draft = mg.Agents(si.rule_extractor, summarizer, si.GrammarSearchTeacher(), si.voting_combiner)
    combiner = si.TrainSelectedCombiner(partial(mg.summarize_all, draft), train)
    return mg.Agents(si.rule_extractor, summarizer, draft.teacher, combiner)


@dataclass
class TrainedRun:
    """The loop run with the trained summarizer, and its directive-following test on the held-out pairs."""

    loop: mg.OptimisationResult
    combiner: si.TrainSelectedCombiner
    prompts: dict  # method -> the prompt used at test time (TRAINED, TRAINED_INITIAL)
    outputs: dict  # method -> test outputs
    frame: pd.DataFrame  # one row per (method, pair), the columns of Run.frame
    items: list  # per test pair: (random directives, extracted text)
    other: list  # per test pair: another pair's directives (a derangement)
    follow_outputs: dict  # "own" / "shuffled" -> the summarizer's outputs under its own / another pair's directives
    model_runs: int = 0
    seconds: float = 0.0


def run_trained_summarizer(
    llm, train: Sequence[mg.Pair], test: Sequence[mg.Pair], seed: int, progress: Callable | None = None
) -> TrainedRun:
    """Optimise the prompt with ``llm`` as the summarizer on ``train``; score the optimised and the initial prompt
    on ``test``; and ask ``llm`` for each test pair's summary under random directives of the grammar and under
    another pair's directives (for the directive-following row). ``llm`` is wrapped in a :class:`CachedLLM`."""
    started = time.perf_counter()
    cached = CachedLLM(llm)
    agents = trained_summarizer_agents(cached, train)
    loop = mg.optimise_prompt(agents, train, progress=progress and partial(progress, desc=TRAINED))
    prompts = {TRAINED: loop.prompt, TRAINED_INITIAL: mg.INITIAL_SUMMARIZER_PROMPT}
    items = lm.real_items(test, seed)
    order = lm.derangement(len(items), make_rng(seed, "metagente", "trained-shuffle"))
    other = [items[int(j)][0] for j in order]
    own_prompts = [lm.prompt_for(d, e) for d, e in items]
    other_prompts = [lm.prompt_for(o, e) for (_, e), o in zip(items, other, strict=True)]
    extracted = [mg.extract(agents, p.readme) for p in test]  # the held-out prompts are independent: batched
    cached.prefill([mg.fill(t, e) for t in prompts.values() for e in extracted] + own_prompts + other_prompts)
    outputs = {method: mg.summarize_all(agents, prompt, test) for method, prompt in prompts.items()}
    rows = [
        {"method": method, "name": p.name, "about": p.about, "output": out, **mg.rouge(out, p.about)}
        for method in prompts
        for out, p in zip(outputs[method], test, strict=True)
    ]
    follow_outputs = {"own": [cached(p) for p in own_prompts], "shuffled": [cached(p) for p in other_prompts]}
    return TrainedRun(loop, agents.combiner, prompts, outputs, pd.DataFrame(rows), items, other, follow_outputs,
                      cached.runs, time.perf_counter() - started)  # fmt: skip


def card_glues(card: dict, vocab_size: int) -> dict[str, str]:
    """The trained summarizer's card numbers the chapter's text cites: size, CPU time, final loss (and a uniform
    guess's), the synthetic READMEs' mean ROUGE-L F per column and the paired own − control differences with their
    95% t-intervals."""
    m = card["metrics"]
    texts = {
        "lm_params": f"{card['parameters']:,}",
        "lm_cpu": f"{card['cpu_seconds']:.0f}",
        "lm_loss": f"{card['final_loss']:.1f}",
        "lm_uniform": f"{np.log(vocab_size):.1f}",
    }
    texts |= {f"lm_card_{key}": f"{m[f'synthetic_rougeL_{key}']:.2f}" for key in ("own", "shuffled", "none")}
    for key in ("shuffled", "none"):
        d = [m[f"synthetic_rougeL_own_minus_{key}{end}"] for end in ("", "_low", "_high")]
        texts[f"lm_card_minus_{key}"] = f"{d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}]"
    return texts


def card_table(metrics: dict) -> pd.DataFrame:
    """The trained summarizer's card numbers as a table: exact match / mean ROUGE-L F against ``follow`` with the
    item's own directives, another item's and none, on held-out synthetic READMEs and real training-split READMEs."""
    rows = {}
    for prefix, label in (("synthetic_", "held-out synthetic READMEs"), ("real_train_", "real training-split READMEs")):
        if f"{prefix}n" in metrics:
            rows[f"{label} ({metrics[prefix + 'n']:.0f})"] = {
                f"{shown} directives": f"{metrics[f'{prefix}exact_{key}']:.2f} / {metrics[f'{prefix}rougeL_{key}']:.2f}"
                for key, shown in (("own", "own"), ("shuffled", "another item's"), ("none", "no"))
            }
    return pd.DataFrame(rows).T.rename_axis("exact match / ROUGE-L against follow()")


def follow_frame(trained: TrainedRun) -> pd.DataFrame:
    """One row per held-out pair of the directive-following test: the directives, ``follow``'s summary, the trained
    model's, exact agreement and ROUGE-L F between the two."""
    rows = []
    for (directives, extracted), output, name in zip(
        trained.items, trained.follow_outputs["own"], trained.frame.name.unique(), strict=True
    ):
        target = si.follow(directives, extracted)
        rows.append({"name": name, "directives": directives.describe(), "source": directives.source or "none",
                     "word cap": directives.max_words or "none", "follow()": target, "trained model": output,
                     "exact": lm.normalised(output) == lm.normalised(target),
                     "rougeL": mg.rouge_l(output, target) if target else float(not output)})  # fmt: skip
    return pd.DataFrame(rows)


def follow_breakdown(trained: TrainedRun) -> pd.DataFrame:
    """Where the trained model departs from ``follow`` on the held-out pairs: exact agreement and mean ROUGE-L by the
    directive's source, by its word cap and by each switch."""
    frame = follow_frame(trained)
    caps = frame["word cap"].map(lambda cap: f"≤ {cap:>2}" if cap != "none" else "none")  # sorts 6 before 10
    parts = [("source", frame["source"]), ("word cap", caps)]
    parts += [(name.replace("_", " "), frame.directives.str.contains(name.replace("_", " "))) for name in si.SWITCHES]
    tables = [
        frame.groupby(values.to_numpy())[["exact", "rougeL"]].agg(["mean", "size"]).assign(directive=label)
        for label, values in parts
    ]
    table = pd.concat(tables).reset_index(names="value").set_index(["directive", "value"])
    table.columns = ["exact", "pairs", "ROUGE-L", "_"]
    return table.drop(columns="_").round(2)
