"""The Metagente chapter's claims: each function turns one seed's experiment (:class:`~llmtheory.
metagente_experiment.Run`) into the fields of one ``Ledger.check`` (claim, paper, ours, rule, the rule's outcome
on estimates with 95% intervals, and the control or why the rule can fail); :func:`findings` gives the text that
explains each verdict. The chapter's ledger cell names each claim's kind.

A gain is judged on ROUGE-L (metagente-eq-rouge), the metric the loop optimises, by the paper's own tests: the mean
paired difference on the held-out pairs is positive with its 95% t-interval above 0, and both the paired t and the
Wilcoxon test give p < 0.05 after Holm's correction over the row's own family (three metrics × two tests).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import metagente as mg
from . import metagente_lm as lm
from . import metagente_standin as si
from .claims import Control, Estimate, Test, all_of, at_least, within
from .metagente_experiment import (
    FIRST,
    INITIAL,
    MAJORITY,
    NO_EXTRACTOR,
    NO_TEACHER,
    NO_TEACHER_MAJORITY,
    OURS,
    SELECTOR,
    TRAINED,
    TRAINED_INITIAL,
    Run,
    TrainedRun,
    comparisons,
)

GAIN_RULE = "mean paired ROUGE-L gain > 0 (95% t-interval above 0) and Holm-adjusted t and Wilcoxon p < 0.05"
DEFAULT_CAPS = (12, 24, si.DEFAULT_CAP)  # the stand-in's default length, varied in the headline's sensitivity
EQUIVALENCE_MARGIN = 0.02  # ROUGE-L: "little effect" means the paired difference's interval lies inside ±0.02
REAL_MODEL_FLOOR = 0.05  # mean ROUGE-L under the unoptimised prompt below which a model "knows nothing" here
IDENTITY_TOLERANCE = 1e-8  # the book's LCS against rouge-score: floating-point agreement, nothing looser


def _gain(table: pd.DataFrame, other: str, metric: str = "rougeL") -> tuple[Estimate, pd.Series]:
    row = table[(table.against == other) & (table.metric == metric)].iloc[0]
    return Estimate(row["mean"], row["low"], row["high"]), row


def significant_gain(table: pd.DataFrame, other: str, alpha: float = 0.05) -> tuple[Estimate, Test]:
    """:data:`GAIN_RULE` on a :func:`~llmtheory.metagente_experiment.comparisons` table: the mean ROUGE-L gain over
    ``other`` with its interval above 0, and both Holm-adjusted p-values under ``alpha``."""
    gain, row = _gain(table, other)
    return gain, all_of(at_least(gain, 1e-9), bool(row.t_p_holm < alpha), bool(row.wilcoxon_p_holm < alpha))


def gain_over(frame: pd.DataFrame, ours: str, other: str) -> tuple[Estimate, Test]:
    """``ours`` against ``other`` by :func:`significant_gain`, Holm-corrected over this pair's own family."""
    return significant_gain(comparisons(frame, ours, [other]), other)


def _verdict_word(test: Test) -> str:
    return "passes" if test else "fails"


def default_cap_sensitivity(run: Run, test: Sequence[mg.Pair], caps: Sequence[int] = DEFAULT_CAPS) -> dict:
    """The headline's gain (optimised − unoptimised prompt, held-out ROUGE-L) when the stand-in summarizer's default
    length (the words it writes when a prompt sets no word cap) is ``cap``, with the same two prompts: cap ->
    (gain, the :func:`significant_gain` test). At :data:`~llmtheory.metagente_standin.DEFAULT_CAP` it is the
    headline itself."""
    extracted = [si.rule_extractor(p.readme) for p in test]
    out = {}
    for cap in caps:
        rows = [
            {"method": m, "name": p.name, **mg.rouge(si.follow(si.parse_directives(run.prompts[m]), e, cap), p.about)}
            for m in (OURS, INITIAL)
            for e, p in zip(extracted, test, strict=True)
        ]
        out[cap] = gain_over(pd.DataFrame(rows), OURS, INITIAL)
    return out


def headline_claim(run: Run, test: Sequence[mg.Pair]) -> dict:
    """The optimised prompt against the unoptimised one, which is the paper's no-teacher ablation (its evaluation
    scores the initial prompt). Control: our random-edit loop under the same rule. ``ours`` states the stand-in's
    default length, an assumption of ours, and the gain at :data:`DEFAULT_CAPS`."""
    gain, holds = gain_over(run.frame, OURS, INITIAL)
    c_gain, c_holds = gain_over(run.frame, NO_TEACHER, INITIAL)
    sensitivity = default_cap_sensitivity(run, test)
    shown = "; ".join(f"{cap} words: {g.value:+.3f} ({_verdict_word(t)})" for cap, (g, t) in sensitivity.items())
    return {
        "claim": "(stand-in agents) the optimised prompt summarizes held-out READMEs better than the initial prompt, "
        "the paper's no-teacher ablation",
        "paper": "RL .274 (no teacher: the initial prompt) → .329 (Metagente), app descriptions",
        "ours": f"ROUGE-L gain {gain:+.3f}, with the stand-in summarizer writing up to {si.DEFAULT_CAP} words when a "
        f"prompt sets no cap; the gain if that default were {shown}",
        "rule": GAIN_RULE,
        "holds": holds,
        "control": Control(f"{NO_TEACHER} vs {INITIAL}", ours=f"{c_gain:+.3f}", holds=c_holds),
    }


def majority_claim(run: Run) -> dict:
    """The same comparison with the combiner fixed before the first run, a majority vote. Control: the random-edit
    loop's prompts merged by the same vote."""
    gain, holds = gain_over(run.frame, MAJORITY, INITIAL)
    c_gain, c_holds = gain_over(run.frame, NO_TEACHER_MAJORITY, INITIAL)
    kept = si.parse_directives(run.prompts[MAJORITY]).describe()
    return {
        "claim": "(stand-in agents) the same, with the pre-registered majority-vote combiner",
        "paper": "RL .274 → .329 (an LLM combiner)",
        "ours": f"ROUGE-L gain {gain:+.3f}; the vote over {len(run.loops[OURS].qualified)} qualified prompts kept: "
        f"{kept}",
        "rule": GAIN_RULE,
        "holds": holds,
        "control": Control(f"{NO_TEACHER_MAJORITY} vs {INITIAL}", ours=f"{c_gain:+.3f}", holds=c_holds),
    }


def baselines_claim(run: Run) -> dict:
    """The optimised prompt beats each non-prompt baseline (first sentence, trained selector), Holm-corrected over
    both; the control is the unoptimised prompt against the same baselines."""
    table, control = comparisons(run.frame, OURS, (FIRST, SELECTOR)), comparisons(run.frame, INITIAL, (FIRST, SELECTOR))
    ours = [significant_gain(table, b) for b in (FIRST, SELECTOR)]
    theirs = [significant_gain(control, b) for b in (FIRST, SELECTOR)]
    return {
        "claim": "(stand-in agents) Metagente outperforms the baselines (first sentence, a trained extractive model)",
        "paper": "+27.63% to +60.43% over GitSum; R1 .397 vs ≤ .309",
        "ours": "; ".join(f"vs {b}: {g:+.3f}" for b, (g, _) in zip((FIRST, SELECTOR), ours, strict=True)),
        "rule": GAIN_RULE + ", against each baseline",
        "holds": all_of(*(t for _, t in ours)),
        "control": Control(
            f"{INITIAL} against the same baselines",
            ours="; ".join(f"{g:+.3f}" for g, _ in theirs),
            holds=all_of(*(t for _, t in theirs)),
        ),
    }


def teacher_claim(run: Run) -> dict:
    """Our control, stronger than the paper's ablation: the teacher's loop against the random-edit loop, both with
    the combiner chosen on the training pairs, on held-out pairs."""
    gain, holds = gain_over(run.frame, OURS, NO_TEACHER)
    return {
        "claim": "(ours, a stronger control than the paper's ablation) the stand-in teacher's loop beats a random-edit "
        "loop on held-out pairs",
        "paper": "not reported",
        "ours": f"ROUGE-L gain over {NO_TEACHER}: {gain:+.3f}",
        "rule": GAIN_RULE,
        "holds": holds,
        "can_fail_because": "the random-edit loop keeps each example's best prompt by the same ROUGE feedback and may "
        "qualify as many pairs, with prompts that agree more, so it can match or beat the teacher",
    }


def teacher_search_claim(run: Run) -> dict:
    """Our diagnostic, not the paper's claim: per training pair, the best ROUGE-L the grammar-search teacher's loop
    reached minus the best the random-edit loop reached with the same number of summarizer runs on that pair (the
    teacher's visible calls plus its hidden ones: :func:`~llmtheory.metagente_standin.search_budget`)."""
    teacher = np.array([max(t.scores) for t in run.loops[OURS].traces])
    random = np.array([max(t.scores) for t in run.equal_budget])
    budgets = [si.search_budget(t.scores, mg.THRESHOLD) for t in run.loops[OURS].traces]
    tests = mg.paired_tests(teacher, random)
    gain = Estimate(tests["mean"], tests["low"], tests["high"])
    ahead, behind = int(np.sum(teacher > random + 1e-12)), int(np.sum(teacher < random - 1e-12))
    return {
        "claim": "(ours, a diagnostic) at equal summarizer budgets the stand-in teacher's edits reach a higher best "
        "training ROUGE-L than random edits, on average over the pairs",
        "paper": "not reported",
        "ours": f"teacher − random edits, best training ROUGE-L per pair: {gain.value:+.4f} "
        f"[{gain.low:+.4f}, {gain.high:+.4f}], t p = {tests['t_p']:.3f}, Wilcoxon p = {tests['wilcoxon_p']:.3f}, "
        f"over {len(teacher)} pairs (median budget {int(np.median(budgets))} summarizer runs per pair, hidden ones "
        f"counted); teacher ahead on {ahead}, tied on {len(teacher) - ahead - behind}, behind on {behind}",
        "rule": "the chapter's gain rule on one comparison: mean paired gain > 0 (95% t-interval above 0), t and "
        "Wilcoxon p < 0.05 (the Wilcoxon test was added after a referee saw the t-interval alone pass)",
        "holds": all_of(at_least(gain, 1e-9), bool(tests["t_p"] < 0.05), bool(tests["wilcoxon_p"] < 0.05)),
        "can_fail_because": "random edits get as many summarizer runs as the teacher's search used, and keep their "
        f"best prompt; the grammar has {si.GRAMMAR_SIZE} prompts, so a random walk of that length may find as good a "
        "one",
    }


def decided_by_construction(run: Run, test: Sequence[mg.Pair]) -> bool:
    """Whether the extractor ablation cannot change an output: both loops learned the same prompt, it starts from
    the first sentence, and on every held-out pair the stand-in extractor (a prefix of the README: its title and
    first paragraphs) keeps some body text, hence the README's first sentence."""
    same = run.prompts[OURS] == run.prompts[NO_EXTRACTOR]
    if not same or si.parse_directives(run.prompts[OURS]).source != "first":
        return False
    return all(any(not s.startswith("# ") for s in si.sentences(si.rule_extractor(p.readme))) for p in test)


def equivalence(frame: pd.DataFrame, ours: str, other: str) -> tuple[Estimate, Test]:
    """The mean paired ROUGE-L difference ``ours − other`` and whether it and its 95% interval lie within
    ±:data:`EQUIVALENCE_MARGIN`."""
    gain, _ = _gain(comparisons(frame, ours, [other]), other)
    return gain, within(gain, 0.0, EQUIVALENCE_MARGIN)


def extractor_claim(run: Run, test: Sequence[mg.Pair]) -> dict:
    """The paper's ablation finding, "little effect" without the extractor, as an equivalence test; the control is
    a method that differs (the unoptimised prompt) under the same rule. Not testable when
    :func:`decided_by_construction`: the outcome is then fixed by the design, not measured."""
    gain, holds = equivalence(run.frame, OURS, NO_EXTRACTOR)
    c_gain, c_holds = equivalence(run.frame, OURS, INITIAL)
    wide = run.frame.pivot(index="name", columns="method", values="output")
    differ = int((wide[OURS] != wide[NO_EXTRACTOR]).sum())
    fixed = decided_by_construction(run, test)
    why_fixed = "; both loops learned 'start from the first sentence', which the extractor's prefix contains"
    return {
        "claim": "(stand-in agents) removing the extractor changes ROUGE-L little",
        "paper": "RL .329 → .335 (no extractor: no loss)",
        "ours": f"ROUGE-L difference with − without the extractor: {gain:+.3f}; {differ}/{len(wide)} held-out "
        "outputs differ" + (why_fixed if fixed else ""),
        "rule": f"mean paired ROUGE-L difference and its 95% t-interval within ±{EQUIVALENCE_MARGIN} (margin fixed "
        "before the run); not testable when both loops learn a prompt whose outputs the extractor cannot change",
        "holds": holds,
        "control": Control(f"{OURS} − {INITIAL}", ours=f"{c_gain:+.3f}", holds=c_holds),
        "testable": not fixed,
    }


def real_model_claim(optimised: Sequence[float], unoptimised: Sequence[float]) -> dict:
    """The real-model row: the optimised prompt's paired ROUGE-L gain with a real summarizer; not testable when the
    model's summaries share (almost) no words with the authors' (mean ROUGE-L < :data:`REAL_MODEL_FLOOR`)."""
    difference = np.subtract(optimised, unoptimised)
    floor = float(np.mean(unoptimised))
    testable = floor >= REAL_MODEL_FLOOR and len(difference) >= 2 and not np.allclose(difference, difference[0])
    gain = Estimate.mean_of(difference) if testable else float(np.mean(difference))
    return {
        "claim": "with a real LLM summarizer, the prompt the stand-ins optimised beats the initial one",
        "paper": "not reported (the paper optimises with GPT-4o agents)",
        "ours": f"gain {gain:+.3f} over {len(difference)} pairs; unoptimised mean ROUGE-L {floor:.3f}"
        + ("" if testable else f" (below {REAL_MODEL_FLOOR}: the model knows nothing of READMEs)"),
        "rule": "mean paired ROUGE-L gain > 0 with its 95% t-interval above 0",
        "holds": at_least(gain, 1e-9) if testable else None,
        "testable": testable,
        "can_fail_because": "a real model may follow the grammar's directives worse than the stand-in it was "
        "optimised with",
    }


def _preference(outputs: Sequence[str], own: Sequence[str], other: Sequence[str]) -> np.ndarray:
    """Per item: ROUGE-L F of the output against the target of its pair's own directives minus against the target
    of another pair's directives (0 where the two targets are the same)."""
    return np.array(
        [mg.rouge_l(o, t) - mg.rouge_l(o, u) if t != u else 0.0 for o, t, u in zip(outputs, own, other, strict=True)]
    )


def _follow_estimates(trained: TrainedRun) -> tuple[list[str], Estimate, Estimate]:
    """The targets ``follow(own directives)`` and the mean preferences (:func:`_preference`, with 95% t-intervals)
    of the outputs under their own directives and under another pair's (the control)."""
    targets = [si.follow(d, e) for d, e in trained.items]
    others = [si.follow(o, e) for (_, e), o in zip(trained.items, trained.other, strict=True)]
    own, control = (_preference(trained.follow_outputs[k], targets, others) for k in ("own", "shuffled"))
    return targets, Estimate.mean_of(own), Estimate.mean_of(control)


def loop_returned_initial(trained: TrainedRun) -> bool:
    """Whether the loop with the trained summarizer returned the initial prompt (no training pair reached the
    threshold, or the combiner kept none of their edits): its claim and control then score the same prompt."""
    return trained.prompts[TRAINED] == trained.prompts[TRAINED_INITIAL]


def trained_follows_claim(trained: TrainedRun) -> dict:
    """The trained summarizer follows the grammar's directives on held-out real READMEs: its output under a pair's
    own random directives agrees more (ROUGE-L F) with ``follow(own directives)`` than with ``follow(another pair's
    directives)``. Control: the same rule on its outputs when the prompt carries the other pair's directives, which
    should then agree with the other target instead."""
    targets, gain, c_gain = _follow_estimates(trained)
    own = trained.follow_outputs["own"]
    exact = np.mean(
        [lm.normalised(o) == lm.normalised(t) for o, t in zip(trained.follow_outputs["own"], targets, strict=True)]
    )
    agree = np.mean([mg.rouge_l(o, t) for o, t in zip(trained.follow_outputs["own"], targets, strict=True)])
    shuffled = np.mean([mg.rouge_l(o, t) for o, t in zip(trained.follow_outputs["shuffled"], targets, strict=True)])
    return {
        "claim": "(trained summarizer) the zoo's trained summarizer follows the grammar's directives on held-out real "
        "READMEs",
        "paper": "not reported (the paper's summarizer is gpt-4o-mini)",
        "ours": f"agreement with follow(): exact {exact:.2f}, ROUGE-L {agree:.3f} (another pair's directives in the "
        f"prompt: {shuffled:.3f}); own − other target, ROUGE-L: {gain:+.3f} over {len(own)} pairs (the summarizer "
        "was shipped after its copy gate had been overruled: see the chapter's Scope)",
        "rule": "mean paired ROUGE-L of the output against its directives' target minus against another pair's "
        "directives' target > 0, 95% t-interval above 0",
        "holds": at_least(gain, 1e-9),
        "control": Control(
            "the same model with the other pair's directives in its prompt",
            ours=f"{c_gain:+.3f}",
            holds=at_least(c_gain, 1e-9),
        ),
    }


def trained_loop_claim(run: Run, trained: TrainedRun) -> dict:
    """The loop with the trained summarizer ends where the stand-in loop ends: held-out ROUGE-L (each with its own
    summarizer) within ±:data:`EQUIVALENCE_MARGIN`. Control: the trained summarizer with the unoptimised prompt,
    under the same rule."""
    names = set(trained.frame.name)
    frame = pd.concat([run.frame[(run.frame.method == OURS) & run.frame.name.isin(names)], trained.frame])
    difference, holds = equivalence(frame, TRAINED, OURS)
    c_difference, c_holds = equivalence(frame, TRAINED_INITIAL, OURS)
    gain, _ = _gain(comparisons(frame, TRAINED, [TRAINED_INITIAL]), TRAINED_INITIAL)
    learned = si.parse_directives(trained.prompts[TRAINED]).describe()
    initial = loop_returned_initial(trained)
    why_initial = "; the loop returned the initial prompt, so claim and control score the same prompt"
    return {
        "claim": "(trained summarizer) with the trained LM as the summarizer, the loop's prompt does as well on "
        "held-out pairs as the stand-in loop's",
        "paper": "not reported",
        "ours": f"ROUGE-L, trained − stand-in loop: {difference:+.3f} over {len(names)} pairs; the trained loop's "
        f"prompt '{learned}' ({len(trained.loop.qualified)}/{len(trained.loop.traces)} qualified) gains {gain:+.3f} "
        "over the unoptimised prompt with the same summarizer" + (why_initial if initial else ""),
        "rule": f"mean paired ROUGE-L difference and its 95% t-interval within ±{EQUIVALENCE_MARGIN}; not testable "
        "when the loop returns the initial prompt (added after the first run: claim and control are then the same)",
        "holds": holds,
        "control": Control(f"{TRAINED_INITIAL} − {OURS}", ours=f"{c_difference:+.3f}", holds=c_holds),
        "testable": not initial,
    }


PAPER_NUMBERS = {
    "claim": "ROUGE-L .503 on GitHub READMEs (.340 on 400 app descriptions)",
    "paper": "RL .503 / .340",
    "ours": "not run: offline stand-ins on PyPI pairs",
    "rule": "not comparable",
    "holds": None,
    "testable": False,
    "can_fail_because": "needs GPT-4o agents and the paper's data",
}


def rouge_identity_claim(frame: pd.DataFrame, tokenize=mg.rouge_tokens) -> dict:
    """metagente-eq-rouge checked on every distinct (summary, reference) pair the experiment scored: the book's LCS
    F on ``tokenize``'s tokens against rouge-score's ROUGE-L F, to :data:`IDENTITY_TOLERANCE`. (A tokenizer other
    than rouge-score's, e.g. one without the stemmer, makes the check fail.)"""
    scored = frame.drop_duplicates(["output", "about"])
    by_hand = [mg.rouge_l_by_hand(tokenize(o), tokenize(a)) for o, a in zip(scored.output, scored.about, strict=True)]
    gap = float(np.max(np.abs(np.subtract(by_hand, scored.rougeL))))
    return {
        "claim": "ROUGE-L F is 2·LCS/(m+n) on stemmed tokens",
        "paper": "eq. metagente-eq-rouge",
        "ours": f"{len(scored)} distinct summaries, max |difference| {gap:.1e}",
        "rule": f"the book's LCS equals rouge-score to {IDENTITY_TOLERANCE:.0e}".replace("e-0", "e-"),
        "holds": gap <= IDENTITY_TOLERANCE,
    }


def findings(run: Run, trained: TrainedRun | None = None) -> dict:
    """Why each verdict came out as it did: one text per claim and verdict (``"default"`` for the others), with the
    facts of this run (and of the trained summarizer's, if given) that the texts depend on filled in."""
    qualified = len(run.loops[OURS].qualified)
    majority_is_initial = run.prompts[MAJORITY] == mg.INITIAL_SUMMARIZER_PROMPT
    scores = {m: run.frame[run.frame.method == m].rougeL.to_numpy() for m in (OURS, FIRST)}
    same_as_first = bool(np.allclose(scores[OURS], scores[FIRST]))
    learned = si.parse_directives(run.prompts[OURS])
    random_qualified = [si.parse_directives(t) for t in run.loops[NO_TEACHER].qualified]
    random_capped = sum(d.max_words is not None for d in random_qualified)
    random_gain, random_passes = gain_over(run.frame, NO_TEACHER_MAJORITY, INITIAL)
    random_vote = (
        f" The random-edit loop's {len(random_qualified)} qualified prompts, merged by the same vote, keep "
        f"'{si.parse_directives(run.prompts[NO_TEACHER_MAJORITY]).describe()}' ({random_capped} of them state a word "
        f"cap) and gain {random_gain.value:+.3f}"
        + (
            ": under the combiner fixed before the first run, the teacher's loop ends behind random edits."
            if random_passes
            else ", which does not pass the rule either."
        )
    )
    return {
        **(trained_findings(run, trained) if trained is not None else {}),
        "optimised-beats-unoptimised": {
            "reproduced": "The optimised prompt gains over the initial one and the random-edit control does not pass "
            "the same rule.",
            "rule does not discriminate": "Our random-edit loop passes the same rule: with these stand-ins almost any "
            "directive that picks one sentence or caps the length gains over the unoptimised prompt, because the "
            "stand-in writes a verbose default that ROUGE-L F punishes against summaries of a few words. The gain "
            "measures that default (see the sensitivity in the row), not the teacher.",
            "default": "The gain depends on the stand-in summarizer's default length, an assumption of ours; the row "
            "shows it at three defaults.",
        },
        "majority-beats-unoptimised": {
            "not reproduced": (
                f"No directive (and no word cap, whatever its size) is stated by half of the {qualified} qualified "
                "prompts, so the majority vote keeps none and returns the initial prompt."
                if majority_is_initial
                else "The majority vote keeps only the directives half the qualified prompts share, too few to gain."
            )
            + random_vote
            + " The share the first row uses was chosen on the training pairs after this was seen.",
            "reproduced": "The pre-registered majority vote keeps enough of what the per-example prompts share to gain "
            "on its own, and the random-edit loop's vote does not pass the same rule.",
            "rule does not discriminate": "The random-edit loop with the same majority vote passes too.",
            "default": "The majority vote was the combiner fixed before the first run.",
        },
        "beats-baselines": {
            "not reproduced": (
                "The optimised prompt says 'start from the first sentence' and nothing that changes it: its summaries "
                "score as the first-sentence heuristic's on every held-out pair. "
                if same_as_first and learned.source == "first"
                else ""
            )
            + "On PyPI metadata the summary is often close to the README's first line, which makes that heuristic "
            "strong, and the trained selector learns from all training pairs at once which sentence to take and how "
            "much of it to keep.",
            "default": "The first-sentence heuristic is a strong baseline on PyPI metadata.",
        },
        "teacher-vs-random-edits": {
            "not reproduced": "Random edits, filtered by the same threshold and best-prompt bookkeeping, give "
            "per-example prompts that the combiner merges as well as the teacher's: what the teacher's search gains "
            "on a training pair does not survive the combiner. This is our control, not the paper's ablation (the "
            "first row is).",
            "reproduced": "The teacher's loop beats random edits on held-out pairs, after the combiner.",
            "default": "Both loops keep only what ROUGE feedback confirms on each example; they differ in how edits "
            "are proposed.",
        },
        "teacher-search": {
            "reproduced": "With equal numbers of summarizer runs, hidden ones counted, the teacher's search reaches a "
            "higher best training ROUGE-L than random edits, on average over the training pairs; on most pairs the "
            "two tie.",
            "not reproduced": "Once the teacher's hidden evaluations are counted, random edits with as many summarizer "
            "runs reach about the same best training ROUGE-L (most pairs tie, and the mean gain does not pass both "
            "tests): the search's lead at equal visible calls (Figure 2) comes from its hidden budget.",
            "default": "The stand-in teacher's search runs the summarizer on every candidate edit; the row gives the "
            "random-edit loop the same number of runs.",
        },
        "extractor-ablation": {
            "not testable at this scale": "Both loops learned a prompt that starts from the README's first sentence, "
            "and the stand-in extractor keeps the README's first paragraphs, so the outputs with and without it are "
            "the same by construction: the row agrees with the paper's finding without testing it. With another split "
            "(another SEED) the loops can learn a prompt whose outputs the extractor changes, and the row becomes a "
            "test.",
            "reproduced": "Without the extractor the held-out ROUGE-L stays within the margin, as in the paper, and "
            "the learned prompts are not ones for which this is fixed by the design.",
            "not reproduced": "Without the extractor the held-out ROUGE-L moves by more than the margin: the prompt "
            "the loop learns on whole READMEs, or the sentence it starts from, differs.",
            "default": "The stand-in extractor keeps a prefix of the README, so the ablation can change an output only "
            "through a source directive that looks past the first paragraphs, or through a different learned prompt.",
        },
        "real-llm-gain": {
            "not testable at this scale": "The zoo models are trained on a synthetic fact world with a word-level "
            "vocabulary and cannot read a README; run with an instruction-tuned model or an endpoint.",
            "default": "The optimised prompt was found with the stand-in summarizer; a real model reads its "
            "directives its own way.",
        },
        "paper-numbers": "Offline, the agents are stand-ins and the data are PyPI summaries, not GitHub About lines "
        "or app descriptions.",
        "rouge-by-hand": {
            "check passed": "The book's LCS on rouge-score's own tokens gives the same F as rouge-score.",
            "check failed": "The book's LCS and rouge-score disagree on some summary: the tokenization or the "
            "tie-breaking of the two implementations differ.",
        },
    }


def _lean(estimate: Estimate, above: str, below: str, neither: str) -> str:
    """``above`` if the estimate's interval lies above 0, ``below`` if below, ``neither`` otherwise."""
    return above if estimate.low > 0 else below if estimate.high < 0 else neither


def trained_findings(run: Run, trained: TrainedRun) -> dict:
    """The texts of the two trained-summarizer rows."""
    learned, stand_in = (si.parse_directives(p) for p in (trained.prompts[TRAINED], run.prompts[OURS]))
    names = set(trained.frame.name)
    means = {
        TRAINED: float(trained.frame[trained.frame.method == TRAINED].rougeL.mean()),
        OURS: float(run.frame[(run.frame.method == OURS) & run.frame.name.isin(names)].rougeL.mean()),
    }
    same_prompt = learned == stand_in
    nothing = (
        "No training pair reached the threshold with the trained summarizer, so the combiner got nothing and the loop "
        "returned the initial prompt. "
        if not trained.loop.qualified
        else ""
    )
    prompts = nothing + (
        f"Both loops ended with the same prompt ('{learned.describe()}'), so the difference is the summarizers' alone."
        if same_prompt
        else f"The loops ended with different prompts: '{learned.describe()}' with the trained summarizer, "
        f"'{stand_in.describe()}' with the stand-in."
    )
    _, gain, c_gain = _follow_estimates(trained)
    outputs = trained.follow_outputs
    changed = sum(a != b for a, b in zip(outputs["own"], outputs["shuffled"], strict=True))
    changes = (
        f"Its summaries change with the directives ({changed} of {len(outputs['own'])} differ when another pair's "
        "directives replace their own)"
        if changed
        else "Its summaries are the same whatever the directives"
    )
    initial = loop_returned_initial(trained)
    same = (
        "The claim and its control then score the same prompt with the same summarizer, so both differences, "
        f"{means[TRAINED] - means[OURS]:+.3f} ROUGE-L, are the gap between the trained and the stand-in summarizer, "
        "not the loop's."
    )
    reached = sorted({si.parse_directives(p).describe() for p in trained.loop.qualified})
    if initial and not trained.loop.qualified:
        gap = (
            f"{same} The loop's threshold of {mg.THRESHOLD} ROUGE-L against the authors' summaries is out of reach "
            f"for a summarizer whose held-out summaries score {means[TRAINED]:.3f}."
        )
    elif initial:
        gap = (
            f"{len(trained.loop.qualified)} of {len(trained.loop.traces)} training pairs reached the threshold of "
            f"{mg.THRESHOLD}, but the combiner kept none of their directives (their prompts: "
            f"{'; '.join(reached)}), so the loop returned the initial prompt. {same}"
        )
    else:
        gap = (
            "Possibly (a conjecture, not tested) because the teacher's hidden evaluations run the stand-in, so its "
            "edits fit a summarizer that the trained model imitates only as well as the breakdown above shows."
        )
    own_lean = _lean(gain, "a decisive preference for their target", "a decisive preference for another pair's",
                     "no decisive preference for their target")  # fmt: skip
    other_lean = _lean(c_gain, "still prefer the item's own target", "lean decisively toward that pair's target",
                       "show no decisive lean either way")  # fmt: skip
    return {
        "trained-follows-directives": {
            "reproduced": "The trained model reads the directives in its prompt: its summary agrees more with what "
            "follow() writes for them than for another pair's directives, and when the prompt carries the other "
            "pair's directives it no longer does. It learned that from synthetic READMEs alone and keeps it on real "
            "ones; the breakdown above shows where it departs from follow().",
            "rule does not discriminate": f"{changes}, but their agreement with what follow() writes for their own "
            "directives, over another pair's, is no clearer than under the other pair's directives: own "
            f"{gain:+.3f}, other pair's {c_gain:+.3f} (ROUGE-L, 95% t-intervals). The rule cannot tell the model "
            "from its control.",
            "default": f"On held-out real READMEs, under their own directives its summaries show {own_lean} "
            f"({gain:+.3f}); under another pair's directives they {other_lean} ({c_gain:+.3f}, the preference for "
            "the item's own target). A model that reads the directives gives the two opposite signs, a blind one "
            "both 0 in expectation; the row's rule looks at the first alone. On the synthetic READMEs it was trained "
            "on, its card measures the reading; the examples above show what it writes on real ones.",
        },
        "trained-summarizer-loop": {
            "not testable at this scale": (nothing if not trained.loop.qualified else "") + gap,
            "reproduced": "With the trained summarizer the loop ends within the margin of the stand-in loop on "
            "held-out pairs, while the unoptimised prompt does not: the loop works with a summarizer that reads its "
            "prompt as tokens and sometimes errs. " + prompts,
            "not reproduced": "With the trained summarizer the loop's held-out ROUGE-L moves by more than the margin "
            f"from the stand-in loop's: its summaries score {means[TRAINED]:.3f} against the authors' on average, the "
            f"stand-in loop's {means[OURS]:.3f} on the same pairs. " + prompts + " " + gap,
            "rule does not discriminate": "The trained model's unoptimised prompt also lands within the margin: on "
            "these pairs the rule cannot tell the loop from no optimisation. " + prompts,
            "default": prompts,
        },
    }
