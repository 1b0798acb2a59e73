"""The bechdel chapter's ledger rows: each function turns measured tables into the keyword arguments of
:meth:`llmtheory.claims.Ledger.check` (claim, paper, ours, rule, holds, control), so that the chapter's ledger
cell reads as a list of claims."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from scipy import stats

from . import bechdel as bd
from . import bechdel_experiment as bx
from .claims import Control, Estimate, Test, all_of, at_least, within

PASS_RATE_TOLERANCE = 0.1


def pass_rate_claim(calls: pd.DataFrame, control: pd.DataFrame) -> dict:
    """The automated test recovers a corpus's pass rate: the mean over scripts of (call − truth), with its t
    interval, within ±0.1. The truth is the generator's test 3 on the script as written (not its planted rate),
    so the draw of which scripts pass does not enter. ``calls`` and ``control`` are
    :func:`llmtheory.bechdel_experiment.test3_against_truth` tables; the control is the same pipeline blind to the
    action lines (``use_text=False``) on a corpus of unisex names, where it cannot tell who is a woman."""
    ours, other = (Estimate.mean_of(t["test3"].astype(float) - t["truth"].astype(float)) for t in (calls, control))
    return dict(
        claim="the automated Bechdel test recovers the pass rate of a corpus",
        paper="automated Bechdel test on screenplays (validation not described in the abstract)",
        ours=f"measured {calls['test3'].mean():.2f} vs true {calls['truth'].mean():.2f} ({len(calls)} scripts); "
        f"error {ours:+.3f}",
        rule=f"measured − true test-3 rate (paired over scripts, t 95%) within ±{PASS_RATE_TOLERANCE}",
        holds=within(ours, 0.0, PASS_RATE_TOLERANCE),
        control=Control(
            "the pipeline without the action lines (names only) on a corpus where every name is unisex",
            ours=f"measured {control['test3'].mean():.2f} vs true {control['truth'].mean():.2f}; error {other:+.3f}",
            holds=within(other, 0.0, PASS_RATE_TOLERANCE),
        ),
    )


def homophily_claim(
    effect: bd.NullComparison, active: bd.NullComparison, active_shuffle: bd.NullComparison, planted: float, n: int
) -> dict:
    """The pooled test with the null that keeps each character's talk volume (``bechdel-eq-strength-null``) rejects
    "no homophily" at 5% on a corpus planted with homophily, and not on the control: women who talk more than men
    (activity 2) and no homophily, which the label-shuffle null mistakes for homophily (shown next to it)."""
    return dict(
        claim="a null that keeps each character's talk volume separates planted homophily from women who talk more",
        paper="homophily of LLM and human scripts measured (abstract)",
        ours=f"homophily {planted}: F–F weight {effect.observed:.0f} vs null {effect.null_mean:.0f}, "
        f"{effect.p_text} ({n} scripts)",
        rule="pooled test of the F–F edge weight against the talk-volume-keeping null rejects at p < 0.05",
        holds=bool(effect.p_value < 0.05),
        control=Control(
            "the same test on a corpus whose women talk twice as much as men, homophily 0",
            ours=f"F–F weight {active.observed:.0f} vs null {active.null_mean:.0f}, {active.p_text} "
            f"(the label-shuffle null: {active_shuffle.null_mean:.0f}, {active_shuffle.p_text})",
            holds=bool(active.p_value < 0.05),
        ),
    )


def disagreement(a: pd.DataFrame, b: pd.DataFrame, seed: int) -> tuple[Test, str]:
    """Whether source ``b`` fails the Bechdel test more often than ``a`` (Fisher p < 0.05) while its women are
    more central (women's − men's degree share higher, bootstrap interval above 0): the measures disagree."""
    fisher = bd.fisher_pass_rates(int(a["test3"].sum()), len(a), int(b["test3"].sum()), len(b))
    fails_more = b["test3"].mean() < a["test3"].mean() and fisher < 0.05
    gap = bx.bootstrap_difference(bx.with_derived(a)["degree_gap"], bx.with_derived(b)["degree_gap"],
                                    bx.make_rng(seed, "bechdel", "disagree"))  # fmt: skip
    text = (
        f"pass rate {a['test3'].mean():.2f} → {b['test3'].mean():.2f} (Fisher p = {fisher:.2g}); "
        f"women's − men's degree share {gap:+.3f} higher in B"
    )
    return all_of(bool(fails_more), gap.low > 0), text


POWER_TARGET = 0.8
"""The power the disagreement must reach over replicate pairs of corpora (fixed before the book run)."""


def disagreement_rate(a: bx.Planted, b: bx.Planted, n: int, replicates: int, seed: int,
                      streams: tuple[str, str] = ("A", "B")) -> Estimate:  # fmt: skip
    """How often :func:`disagreement` holds (Wilson interval) over ``replicates`` pairs of fresh corpora of ``n``
    scripts each, from ``a`` and from ``b``: its power, or its false-positive rate when ``a == b``. Pair ``r``
    draws its corpora from the random streams ``f"{streams[0]}-{r}"`` and ``f"{streams[1]}-{r}"``; a stream
    used again (the control's first side is the design's own A) is generated once."""
    hits = 0
    for r in range(replicates):
        pair = [
            _light_corpus(planted, n, seed, f"{stream}-{r}") for planted, stream in zip((a, b), streams, strict=True)
        ]
        hits += bool(disagreement(*pair, seed + r)[0])
    return Estimate.proportion(hits, replicates)


@functools.lru_cache(maxsize=256)
def _light_corpus(planted: bx.Planted, n: int, seed: int, stream: str) -> pd.DataFrame:
    """:func:`llmtheory.bechdel_experiment.light_measures` of a corpus rendered as plain text, whose parser is
    faster than ``screenplain`` and recovers the generator's scripts as exactly (the unit tests check both)."""
    return bx.light_measures(bx.parse_corpus(bx.generate_corpus(planted, n, seed, stream, "plain")))


def disagreement_claim(power: Estimate, same_source: Estimate, weaker_power: Estimate, n: int, pairs: int) -> dict:
    """Measures can disagree, as a power claim fixed in advance: over replicate pairs of corpora of ``n`` scripts,
    the rule of :func:`disagreement` holds with power ≥ 0.8 (Wilson interval); the control is pairs drawn from
    one source, whose rate is the rule's false-positive rate. The planted effect sizes were raised after a first
    smoke run did not show the disagreement, and the first values were not kept: ``weaker_power`` is the power
    of a design with every planted parameter half as far from the generator's defaults, reported next to it."""
    return dict(
        claim="a source can fail the Bechdel test more often yet be less biased on a network measure",
        paper="human scripts pass more often; on some network measures LLM scripts are less biased",
        ours=f"power {power:.2f} over {pairs} pairs of {n}-script corpora at effect sizes raised after a first "
        f"smoke run (every planted parameter half as far from the defaults: {weaker_power:.2f})",
        rule=f"B's pass rate lower (Fisher p < 0.05) and women's − men's degree share higher (bootstrap 95% > 0) "
        f"in a share ≥ {POWER_TARGET} of pairs (Wilson 95%)",
        holds=at_least(power, POWER_TARGET),
        control=Control(
            "pairs of corpora from the same source (A and A)",
            ours=f"rate {same_source:.2f}",
            holds=at_least(same_source, POWER_TARGET),
        ),
    )


LM_MEASURES = {"female_share": "women", "degree_log_ratio": "centrality", "ff_z": "homophily",
               "women_mention_men": "mentions"}  # fmt: skip
"""The measures on which the LM's scripts are judged, none of which shrinks as a cast grows, and their row ids
(``lm-keeps-<id>``); the pass rate is shown but not judged: it grows with the number of women a cast holds."""
KEEP_FRACTION = 0.5
"""A measure is kept when its difference from the corpus lies within this fraction of the corpus–parity
difference (closer to the corpus than to parity; fixed before the book run)."""


def keep_bands(corpus: pd.DataFrame, parity: pd.DataFrame) -> dict[str, float]:
    """Per judged measure, the tolerance: :data:`KEEP_FRACTION` × |corpus mean − parity corpus mean|."""
    a, b = bx.with_derived(corpus), bx.with_derived(parity)
    return {m: KEEP_FRACTION * abs(float(np.nanmean(a[m]) - np.nanmean(b[m]))) for m in LM_MEASURES}


def fresh_sample_keeps(comparisons: dict[str, pd.DataFrame], name: str) -> bool:
    """Whether a fresh sample of the corpus lands inside measure ``name``'s band, its whole interval too: only then
    can the rule see "keeps" at this size, and the model's row for that measure is judged."""
    fresh = comparisons["fresh"].loc[name]
    test = within(fresh["difference"], 0.0, fresh["tolerance"])
    return bool(test.holds and test.decisive)


def lm_keep_claims(
    comparisons: dict[str, pd.DataFrame], n_testable: int, n_sampled: int, lm_testable: bool, why_not: str
) -> list[tuple[str, dict]]:
    """One row per judged measure: the LM's scripts keep the corpus's value (bootstrap 95% of the difference within
    the band of :func:`keep_bands`). ``comparisons``: :func:`llmtheory.bechdel_experiment.compare_sources`
    against the corpus for ``"lm"``, ``"fresh"`` (a new sample of the corpus: must keep, else the rule cannot
    see keeping at this size and the row is not testable) and ``"parity"`` (the control: must not keep)."""
    rows = []
    for column, short in LM_MEASURES.items():
        name = next(k for k, (c, _) in bx.MEASURES.items() if c == column)
        lm, fresh, parity = (comparisons[k].loc[name] for k in ("lm", "fresh", "parity"))
        testable = lm_testable and fresh_sample_keeps(comparisons, name)
        state = (f"{n_testable} of {n_sampled} scripts measurable; difference {lm['difference']:+.3f}: {lm['call']}"
                 if lm_testable else why_not)  # fmt: skip
        rows.append((f"lm-keeps-{short}", dict(
            claim=f"a language model keeps its training corpus's {name}",
            paper="all script types show some representational bias under most measures",
            ours=f"{state}; a fresh corpus sample: {fresh['difference']:+.3f}",
            rule=f"difference from the corpus (bootstrap 95%) within ±{fresh['tolerance']:.3f} "
            f"({KEEP_FRACTION} × the corpus–parity difference), a fresh corpus sample inside too",
            holds=within(lm["difference"], 0.0, lm["tolerance"]) if lm_testable else None,
            testable=bool(testable),
            control=Control("a corpus generated at parity (no planted bias)",
                            ours=f"difference {parity['difference']:+.3f}",
                            holds=within(parity["difference"], 0.0, parity["tolerance"])),
        )))  # fmt: skip
    return rows


def scripts_vs_model_claim(own: pd.DataFrame | None, lm: pd.DataFrame | None, model: str) -> dict:
    """The paper's headline comparison where both sources exist: the user's screenplays (``SCRIPTS``) pass the
    Bechdel test more often than the scripts of ``MODEL`` (one-sided Fisher p < 0.05); the network measures are
    reported next to it. Not testable without both (fewer than 10 measurable scripts on a side)."""
    testable = own is not None and lm is not None and min(len(own), len(lm)) >= 10
    if not testable:
        return dict(
            claim="human-written screenplays pass the Bechdel test more often than model-written ones",
            paper="768 human scripts vs GPT-5, Gemini 3 Pro and Claude Sonnet 4.5: human scripts pass more often",
            ours="needs SCRIPTS (a folder of screenplays) and a MODEL that writes ≥ 10 measurable scripts",
            rule="one-sided Fisher test of pass rates, SCRIPTS > MODEL, p < 0.05",
            holds=None,
            testable=False,
            can_fail_because="the pass rates of the two sources could be equal or reversed",
        )
    p = float(stats.fisher_exact([[int(own["test3"].sum()), len(own) - int(own["test3"].sum())],
                                  [int(lm["test3"].sum()), len(lm) - int(lm["test3"].sum())]],
                                 alternative="greater")[1])  # fmt: skip
    a, b = bx.with_derived(own), bx.with_derived(lm)
    # the z-score grows with a script's number of exchanges, so scripts of other lengths are compared on the
    # F-F share's excess over q, with the exchanges per script beside it
    network = ", ".join(f"{c}: {np.nanmean(a[c]):.2f} vs {np.nanmean(b[c]):.2f}"
                        for c in (*(m for m in LM_MEASURES if m != "ff_z"), "ff_strength_excess", "turns"))  # fmt: skip
    return dict(
        claim="human-written screenplays pass the Bechdel test more often than model-written ones",
        paper="768 human scripts vs GPT-5, Gemini 3 Pro and Claude Sonnet 4.5: human scripts pass more often",
        ours=f"SCRIPTS {own['test3'].mean():.2f} ({len(own)}) vs {model} {lm['test3'].mean():.2f} ({len(lm)}), "
        f"Fisher p = {p:.2g}; {network}",
        rule="one-sided Fisher test of pass rates, SCRIPTS > MODEL, p < 0.05",
        holds=bool(p < 0.05),
        can_fail_because="the pass rates of the two sources could be equal or reversed",
    )


def measure_summary(measures: pd.DataFrame) -> dict[str, Estimate | None]:
    """Each measure of :data:`llmtheory.bechdel_experiment.MEASURES` for one source, with its interval."""
    derived = bx.with_derived(measures)
    out = {}
    for name, (column, _) in bx.MEASURES.items():
        if column not in derived:
            continue
        values = derived[column].to_numpy(float)
        values = values[np.isfinite(values)]
        if column == "test3":
            out[name] = Estimate.proportion(int(values.sum()), len(values))
        else:
            out[name] = Estimate.mean_of(values) if len(values) > 1 else None
    return out


def summary_table(sources: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One column per source, one row per measure: "value [low, high]" (– where a measure is undefined)."""
    return pd.DataFrame(
        {
            name: {m: f"{e:.2f}" if e is not None else "–" for m, e in measure_summary(t).items()}
            for name, t in sources.items()
        }
    )


_KEEP_WHY = {
    "reproduced": "The model's scripts sit closer to its corpus than to parity on this measure, with the whole "
    "interval inside: at this scale it copies the corpus's statistic.",
    "reproduced (qualitatively)": "The model's difference from the corpus lies inside the band, but its interval "
    "reaches beyond it: closer to the corpus than to parity at its centre, not decided at this number of scripts.",
    "not reproduced": "The model's scripts move away from the corpus on this measure (the comparison table says in "
    "which direction), or the interval is too wide to place them closer to the corpus than to parity.",
    "rule does not discriminate": "The parity corpus also lands within the band: at this size the measure cannot "
    "tell the corpus's bias from none.",
    "not testable at this scale": "Either the model wrote too few measurable scripts or is not the model trained "
    "on this corpus, or a fresh sample of the corpus itself did not land inside the band: the rule cannot "
    "recognise keeping at this size.",
    "default": "See the comparison table.",
}

WHY: dict[str, str | dict[str, str]] = {
    "pipeline-pass-rate": "On the generator's clean scripts the parser and the name rules make no error, so the "
    "measured rate is the true one; blind to the action lines, the same pipeline cannot tell the women among "
    "unisex names and misses the passes. Real scripts would add parsing and gender errors.",
    "permutation-null-homophily": {
        "reproduced": "The null gives each character its observed talk volume and chooses partners without regard to "
        "gender, so women who talk more raise the null as much as the F–F weight; what is left is the planted "
        "preference for same-gender partners. The label shuffle, which forgets who talks most, rejects the control.",
        "rule does not discriminate": "Even the null that keeps each character's talk volume rejects on women who "
        "only talk more: it lets any two characters of a script meet, while exchanges happen only within a scene's "
        "cast, and who shares a scene is drawn with the same activity weights.",
        "default": "The planted homophily was too weak for this many scripts, or the null rejected the control.",
    },
    "measures-disagree": {
        "reproduced": "The test looks for one clean women's exchange; centrality sums over the whole script. A source "
        "can fail the first while doing better on the second, as the paper found for LLM scripts; the power says "
        "how reliably a corpus of this size shows it, at effect sizes we raised after a failed smoke run.",
        "default": "At this corpus size the disagreement is not seen in enough pairs of corpora, even at effect sizes "
        "we raised after a failed smoke run: whether it shows depends on the planted effect sizes and the number of "
        "scripts, not only on the measures.",
    },
    **{f"lm-keeps-{short}": _KEEP_WHY for short in LM_MEASURES.values()},
    "commercial-llms": {
        "not testable at this scale": "Needs screenplays to compare with: in Colab, set SCRIPTS to a folder of "
        "human screenplays and MODEL to an instruct model.",
        "default": "The comparison of your screenplays with the model's, by the rule above.",
    },
}
"""The chapter's explanations of each claim's outcome, by verdict (shown by ``ledger.findings``)."""


def triangle_table(sources: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per source and triangle kind (MMM, FMM, FFM, FFF): the observed count over all scripts, the count its
    label-permutation null expects, and their ratio."""
    rows = []
    for name, table in sources.items():
        for kind in ("MMM", "FMM", "FFM", "FFF"):
            observed, expected = table[f"tri_{kind}"].sum(), table[f"tri_{kind}_null"].sum()
            rows.append({"source": name, "triangle": kind, "observed": observed, "null": expected,
                         "observed ÷ null": observed / expected if expected else np.nan})  # fmt: skip
    return pd.DataFrame(rows).pivot(index="triangle", columns="source", values="observed ÷ null")


def census_table(sources: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per source, each connected triad type's share of all connected triads of the directed reply graphs
    (:func:`llmtheory.bechdel.triad_census`, summed over scripts); types that no source has are left out."""
    columns = [f"census_{code}" for code in bd.TRIADS]
    table = pd.DataFrame({name: t[columns].sum() / max(t[columns].to_numpy().sum(), 1) for name, t in sources.items()})
    table.index = list(bd.TRIADS)
    return table[(table > 0).any(axis=1)]
