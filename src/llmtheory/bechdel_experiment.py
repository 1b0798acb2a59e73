"""The bechdel chapter's experiments: a procedural screenplay generator with planted parameters, power curves,
source comparisons, and the toy version of the paper's question (a tiny LM trained on a "human" corpus).

The generator is ours (no screenplay corpus ships offline, research note). Each script has a cast whose genders,
speaking weights and partner choices follow :class:`Planted`; lines mention a man with a planted probability
that depends on who speaks ("who talks about whom"); and, optionally, each script is built to pass or fail the
Bechdel test at a planted rate. The generator also returns the truth (genders as written, the tests applied to
the true genders), so that the pipeline of :mod:`llmtheory.bechdel` can be checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from . import bechdel as bd
from .claims import Estimate
from .params import ParameterError
from .seeding import make_rng

FEMALE_NAMES = ("Maya", "Ines", "Priya", "Clara", "Nadia", "Elena", "Sofia", "Leila", "Hana", "Greta", "Irene",
                "Marta", "Olga", "Rosa", "Vera", "Lena")  # fmt: skip
MALE_NAMES = ("Tom", "Hugo", "Omar", "Felix", "Victor", "Bruno", "Ivan", "Pablo", "Oscar", "Karl", "Simon", "Marco",
              "Luis", "Anton")  # fmt: skip
UNISEX_NAMES = ("Casey", "Avery", "Sage", "Dominique")  # gender-guesser: "andy"; only the action lines tell
PLACES = ("KITCHEN", "HARBOUR", "OFFICE", "STATION", "GARDEN", "HOSPITAL", "SCHOOL", "ROOFTOP", "CAFE", "LIBRARY")
TIMES = ("DAY", "NIGHT", "MORNING", "LATER")
THINGS = ("the boat", "the contract", "the storm", "the ledger", "the train", "the garden", "the exam", "the lamp",
          "the map", "the money", "the roof", "the radio", "the plan", "the letter", "the keys")  # fmt: skip
WHEN = ("tonight", "at dawn", "by noon", "on Friday", "before the rain")
NEUTRAL_LINES = ("We need to fix {thing} {when}.", "Did you see {thing} this morning?", "I will take care of {thing}.",
                 "Nobody checked {thing} today.", "Bring {thing} here {when}.", "Forget {thing}. Look at this.",
                 "Is {thing} ready?", "Yes. {Thing} is ready.", "No. Not yet.", "We lost {thing} again.")  # fmt: skip
ABOUT_A_MAN_LINES = ("{man} wants {thing} {when}.", "Ask {man} about {thing}.", "{man} took {thing}.",
                     "He said {thing} was ready.", "My brother sold {thing}.",
                     "Did {man} call about {thing}?")  # fmt: skip
ENTRANCES = ("{name} enters.", "{name} waits by the door.", "{name} reads a letter.", "{name} sits down.",
             "{name} looks out of the window.")  # fmt: skip
AFTERTHOUGHTS = ("{they} looks tired.", "{they} checks {their} watch.", "{they} says nothing.",
                 "{they} puts down {their} bag.")  # fmt: skip
PRONOUNS = {bd.FEMALE: ("She", "her"), bd.MALE: ("He", "his")}


@dataclass(frozen=True)
class Planted:
    """The generator's parameters: what a measure should recover.

    ``female_share``: P(a character is a woman). ``homophily``: log-odds bonus of a same-gender partner, both
    when a scene's cast is drawn and when the next speaker is chosen (0 = none). ``female_activity``: women's
    speaking weight relative to men's (1 = equal; centrality). ``women_mention_men`` / ``men_mention_men``:
    P(a line mentions a man) for a woman's / a man's line (who talks about whom). ``bechdel_rate``: if set, each
    script is built to pass (a women-only scene about something else) or to fail, at this rate.
    ``unisex_share``: P(a character gets a unisex name whose gender only the action lines tell).
    """

    female_share: float = 0.4
    homophily: float = 0.0
    female_activity: float = 1.0
    women_mention_men: float = 0.3
    men_mention_men: float = 0.3
    bechdel_rate: float | None = None
    unisex_share: float = 0.15
    characters: tuple[int, int] = (4, 6)
    scenes: tuple[int, int] = (2, 4)
    cast: tuple[int, int] = (2, 3)
    turns: tuple[int, int] = (3, 6)

    def __post_init__(self):
        for name in ("female_share", "women_mention_men", "men_mention_men", "unisex_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ParameterError(f"Planted.{name}={getattr(self, name)} must be in [0, 1]")
        if self.bechdel_rate is not None and not 0 <= self.bechdel_rate <= 1:
            raise ParameterError(f"Planted.bechdel_rate={self.bechdel_rate} must be in [0, 1] or None")
        if self.female_activity <= 0:
            raise ParameterError(f"Planted.female_activity={self.female_activity} must be > 0")


@dataclass
class GeneratedScript:
    """A generated screenplay: its text, the true genders of its speakers (cue → F/M) and the true tests."""

    text: str
    fmt: str
    genders: dict[str, str]
    truth: bd.BechdelResult
    planted_pass: bool | None


def _between(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def _cast_names(rng: np.random.Generator, genders: list[str], unisex_share: float) -> list[str]:
    """Distinct first names: unisex with probability ``unisex_share``, else from the gender's list."""
    pools = {bd.FEMALE: list(FEMALE_NAMES), bd.MALE: list(MALE_NAMES)}
    unisex = list(UNISEX_NAMES)
    names = []
    for gender in genders:
        pool = unisex if unisex and rng.random() < unisex_share else pools[gender]
        names.append(pool.pop(int(rng.integers(len(pool)))))
    return names


def _weights(genders: np.ndarray, activity: np.ndarray, homophily: float, anchor: str) -> np.ndarray:
    """Sampling weights ``activity · exp(homophily · [same gender as anchor])`` (``bechdel-eq-generator``)."""
    return activity * np.exp(homophily * (genders == anchor))


def _pick(rng: np.random.Generator, weights: np.ndarray) -> int:
    """An index drawn with probability ∝ ``weights``: the same draw as ``rng.choice(len(weights), p=...)`` (one
    uniform against the normalised cumulative sum), without its checks, which cost most of the generator's time."""
    cdf = np.cumsum(weights / weights.sum())
    return int(np.searchsorted(cdf / cdf[-1], rng.random(), side="right"))


def _line(rng: np.random.Generator, about_a_man: bool, men: list[str]) -> str:
    thing, when = THINGS[rng.integers(len(THINGS))], WHEN[rng.integers(len(WHEN))]
    if about_a_man:
        template = ABOUT_A_MAN_LINES[rng.integers(len(ABOUT_A_MAN_LINES))]
        man = men[rng.integers(len(men))] if men else "He"
        if "{man}" in template and not men:
            template = ABOUT_A_MAN_LINES[3]  # "He said ..." when the script has no man to name
        return template.format(man=man, thing=thing, when=when)
    template = NEUTRAL_LINES[rng.integers(len(NEUTRAL_LINES))]
    return template.format(thing=thing, Thing=thing.capitalize(), when=when)


def _scene(rng, planted: Planted, names, genders, activity, spoken: set, cast=None, women_only_about_else=False):
    """One scene: ``(heading, action, turns)`` with turns ``(speaker index, line)``; a line about a man names
    one of the men who have already spoken (``spoken``, updated), so that test 3 can know him as a man."""
    g = np.array(genders)
    if cast is None:
        size = min(_between(rng, planted.cast), len(names))
        first = _pick(rng, activity)
        cast = [first]
        while len(cast) < size:
            w = _weights(g, activity, planted.homophily, genders[first])
            w[cast] = 0
            cast.append(_pick(rng, w))
    heading = f"{['INT.', 'EXT.'][rng.integers(2)]} {PLACES[rng.integers(len(PLACES))]} - {TIMES[rng.integers(4)]}"
    action = []
    for k in cast:
        they, their = PRONOUNS[genders[k]]
        action.append(ENTRANCES[rng.integers(len(ENTRANCES))].format(name=names[k]))
        action.append(AFTERTHOUGHTS[rng.integers(len(AFTERTHOUGHTS))].format(they=they, their=their))
    turns, speaker = [], cast[int(rng.integers(len(cast)))]
    for _ in range(_between(rng, planted.turns)):
        rate = planted.women_mention_men if genders[speaker] == bd.FEMALE else planted.men_mention_men
        about_a_man = not women_only_about_else and rng.random() < rate
        men = [names[k] for k in sorted(spoken) if genders[k] == bd.MALE and k != speaker]
        turns.append((speaker, _line(rng, about_a_man, men)))
        spoken.add(speaker)
        w = _weights(g[cast], activity[cast], planted.homophily, genders[speaker])
        w[cast.index(speaker)] = 0
        speaker = cast[_pick(rng, w)]
    return heading, " ".join(action), turns


def generate_script(
    rng: np.random.Generator, planted: Planted, fmt: str = "fountain", title: str = ""
) -> GeneratedScript:
    """One screenplay from ``planted`` (``bechdel-eq-generator``), rendered as Fountain or plain text."""
    n = _between(rng, planted.characters)
    genders = [bd.FEMALE if rng.random() < planted.female_share else bd.MALE for _ in range(n)]
    planted_pass = None if planted.bechdel_rate is None else bool(rng.random() < planted.bechdel_rate)
    women_lines_rate = planted.women_mention_men
    if planted_pass:  # at least two women, and one scene where two of them talk about something other than a man
        genders[:2] = [bd.FEMALE, bd.FEMALE]
    elif planted_pass is False:
        if rng.random() < 1 / 3:  # fewer than two women: fails test 1
            genders = [bd.MALE] + genders[1:] if genders.count(bd.FEMALE) < 2 else [bd.MALE] * (n - 1) + [bd.FEMALE]
        women_lines_rate = 1.0  # every woman's line is about a man: fails test 3 at least
    names = _cast_names(rng, genders, planted.unisex_share)
    activity = np.where(np.array(genders) == bd.FEMALE, planted.female_activity, 1.0)
    script_planted = replace(planted, women_mention_men=women_lines_rate)
    spoken: set[int] = set()
    scenes = [
        _scene(rng, script_planted, names, genders, activity, spoken) for _ in range(_between(rng, planted.scenes))
    ]
    if planted_pass:
        women_scene = _scene(rng, script_planted, names, genders, activity, spoken, [0, 1], women_only_about_else=True)
        scenes.insert(int(rng.integers(len(scenes) + 1)), women_scene)
    cues = {name.upper(): gender for name, gender in zip(names, genders, strict=True)}
    body = render(scenes, names, fmt)
    text = f"Title: {title}\n\n{body}" if fmt == "fountain" and title else body
    truth = bd.bechdel(parse_truth(scenes, names), cues)
    return GeneratedScript(
        text, fmt, {c: g for c, g in cues.items() if c in _speakers(scenes, names)}, truth, planted_pass
    )


def _speakers(scenes, names) -> set[str]:
    return {names[k].upper() for _, _, turns in scenes for k, _ in turns}


def parse_truth(scenes, names) -> bd.Script:
    """The script as written (no parsing): what the pipeline should recover."""
    script = bd.Script()
    for s, (heading, action, turns) in enumerate(scenes):
        script.scenes.append(heading)
        script.actions.append((s, action))
        script.turns += [bd.Turn(s, names[k].upper(), line) for k, line in turns]
    return script


def render(scenes, names, fmt: str) -> str:
    """Fountain (cue at the margin) or the plain layout (cue indented 20, dialogue 10 spaces)."""
    if fmt not in bd.FORMATS:
        raise ParameterError(f"fmt={fmt!r} is not a screenplay format; choose one of: {', '.join(bd.FORMATS)}")
    cue_pad, line_pad = ("", "") if fmt == "fountain" else (" " * 20, " " * 10)
    blocks = []
    for heading, action, turns in scenes:
        blocks += [heading, action]
        blocks += [f"{cue_pad}{names[k].upper()}\n{line_pad}{line}" for k, line in turns]
    return "\n\n".join(blocks) + "\n"


def generate_corpus(
    planted: Planted, n: int, seed: int, name: str, fmt: str = "fountain", titles: bool = True
) -> list[GeneratedScript]:
    """``n`` scripts from ``planted`` under the random stream ``(seed, "bechdel", name)``."""
    rng = make_rng(seed, "bechdel", "corpus", name)
    return [generate_script(rng, planted, fmt, f"{name} {k}" if titles else "") for k in range(n)]


def parse_corpus(corpus: list[GeneratedScript]) -> list[bd.Script]:
    return [bd.parse(s.text, s.fmt) for s in corpus]


# ---------------------------------------------------------------------------------------------------------
# Corpus-level measures with intervals


def pass_rate(measures: pd.DataFrame, test: str = "test3") -> Estimate:
    """The share of scripts passing ``test`` with its Wilson interval."""
    return Estimate.proportion(int(measures[test].sum()), len(measures))


def mean_estimate(values) -> Estimate:
    """The mean over scripts with its t interval (NaNs dropped)."""
    values = np.asarray(values, float)
    return Estimate.mean_of(values[~np.isnan(values)])


def test3_against_truth(corpus: list[GeneratedScript], scripts: list[bd.Script], use_text: bool = True) -> pd.DataFrame:
    """Per script, the pipeline's test-3 call (genders from names, and from the action lines' pronouns when
    ``use_text``) next to the generator's truth: the columns ``test3`` and ``truth``."""
    rows = []
    for generated, script in zip(corpus, scripts, strict=True):
        genders = bd.labels_of(bd.infer_genders(script, use_text=use_text))
        rows.append({"test3": bd.bechdel(script, genders).test3, "truth": generated.truth.test3})
    return pd.DataFrame(rows, columns=["test3", "truth"])


def pipeline_agreement(corpus: list[GeneratedScript], scripts: list[bd.Script]) -> dict[str, float]:
    """How often the pipeline's calls agree with the generator's truth: genders of speakers, and each test."""
    gender_hits, gender_total, tests = 0, 0, np.zeros(3)
    for generated, script in zip(corpus, scripts, strict=True):
        inferred = bd.labels_of(bd.infer_genders(script))
        gender_hits += sum(inferred.get(c) == g for c, g in generated.genders.items())
        gender_total += len(generated.genders)
        result = bd.bechdel(script, inferred)
        tests += [result.test1 == generated.truth.test1, result.test2 == generated.truth.test2,
                  result.test3 == generated.truth.test3]  # fmt: skip
    n = max(len(corpus), 1)
    return {"gender": gender_hits / max(gender_total, 1), "test1": tests[0] / n, "test2": tests[1] / n,
            "test3": tests[2] / n}  # fmt: skip


MEASURES = {
    # name: (column or function of the measures table, bias direction: +1 = larger is more biased against women)
    "Bechdel pass rate": ("test3", -1),
    "share of women among characters": ("female_share", -1),
    "women's − men's degree share": ("degree_gap", -1),
    "log(women's ÷ men's degree share)": ("degree_log_ratio", -1),
    "F–F edge share − label-shuffle null": ("ff_excess", +1),
    "F–F z-score (talk volume kept)": ("ff_z", +1),
    "women's lines about a man": ("women_mention_men", +1),
}


def with_derived(measures: pd.DataFrame) -> pd.DataFrame:
    """Add the per-script columns that :data:`MEASURES` compares: the gap between women's and men's mean degree
    share, its log ratio (which a larger cast does not shrink: every share scales as 1/n), and the F-F edge
    share's excess over its label-permutation null (where the table has it)."""
    out = measures.copy()
    out["degree_gap"] = out["degree_F"] - out["degree_M"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["degree_log_ratio"] = np.log(out["degree_F"] / out["degree_M"])
    if "ff_share" in out:
        out["ff_excess"] = out["ff_share"] - out["ff_null"]
    if "ff_strength_null" in out:  # the F-F share's excess over its talk-volume share q: free of script length
        out["ff_strength_excess"] = out["ff_share"] - out["ff_strength_null"]
    out["test3"] = out["test3"].astype(float)
    return out


def light_measures(scripts: list[bd.Script]) -> pd.DataFrame:
    """The per-script columns the disagreement rule needs (test 3, women's and men's mean degree share), without
    the permutation nulls of :func:`llmtheory.bechdel.measure_script`: cheap enough for replicate corpora."""
    rows = []
    for script in scripts:
        genders = bd.labels_of(bd.infer_genders(script))
        arrays = bd.GraphArrays.of(bd.interaction_graph(script), genders)
        shares = bd.strength_share(arrays)
        rows.append({"test3": bd.bechdel(script, genders).test3,
                     "degree_F": shares[arrays.female].mean() if arrays.female.any() else np.nan,
                     "degree_M": shares[arrays.male].mean() if arrays.male.any() else np.nan})  # fmt: skip
    return pd.DataFrame(rows)


def bootstrap_difference(a, b, rng: np.random.Generator, n_boot: int = 1000) -> Estimate:
    """Mean of ``b`` minus mean of ``a`` with a percentile bootstrap interval (scripts resampled in each)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[~np.isnan(a) & np.isfinite(a)], b[~np.isnan(b) & np.isfinite(b)]
    if not len(a) or not len(b):
        return Estimate(0.0, -np.inf, np.inf)  # nothing to compare: an interval that decides nothing
    draws = b[rng.integers(len(b), size=(n_boot, len(b)))].mean(1) - a[
        rng.integers(len(a), size=(n_boot, len(a)))
    ].mean(1)
    low, high = np.percentile(draws, [2.5, 97.5])
    value = float(b.mean() - a.mean())
    return Estimate(value, min(float(low), value), max(float(high), value))


def compare_sources(
    reference: pd.DataFrame, other: pd.DataFrame, seed: int, tolerance: dict[str, float]
) -> pd.DataFrame:
    """For each measure of :data:`MEASURES` with a tolerance: the reference's mean, the other's, their difference with a
    bootstrap interval, and the call *keeps* (interval within ± tolerance), *amplifies* (the bias is
    larger, interval clear of the tolerance band) or *damps* (smaller), else *undecided*."""
    rng = make_rng(seed, "bechdel", "bootstrap")
    ref, oth = with_derived(reference), with_derived(other)
    rows = []
    for name, (column, direction) in MEASURES.items():
        diff = bootstrap_difference(ref[column], oth[column], rng)
        if column not in tolerance:
            continue
        band = tolerance[column]
        signed_low, signed_high = sorted((direction * diff.low, direction * diff.high))
        if -band <= diff.low and diff.high <= band:
            call = "keeps"
        elif signed_low > band:
            call = "amplifies"
        elif signed_high < -band:
            call = "damps"
        else:
            call = "undecided"
        rows.append({"measure": name, "corpus": float(np.nanmean(ref[column])), "other": float(np.nanmean(oth[column])),
                     "difference": diff, "tolerance": band, "call": call})  # fmt: skip
    return pd.DataFrame(rows).set_index("measure")


# ---------------------------------------------------------------------------------------------------------
# Power: how many scripts each measure needs to see its planted effect


@dataclass(frozen=True)
class ScriptStatistics:
    """What the corpus tests need from one parsed script: F-F edge weight and its permutation null, the
    characters' degree shares by gender, gender counts, and lines about a man by the speaker's gender."""

    ff_weight: float
    ff_null: np.ndarray  # (n_permutations,) label shuffles
    ff_strength_null: np.ndarray  # (n_permutations,) draws with each character's talk volume kept
    degree_women: np.ndarray
    degree_men: np.ndarray
    women: int
    men: int
    mention_table: np.ndarray  # rows: women's / men's lines; columns: about a man / not


def script_statistics(script: bd.Script, rng: np.random.Generator, n_permutations: int) -> ScriptStatistics:
    """:class:`ScriptStatistics` of ``script`` with ``n_permutations`` label shuffles (``bechdel-eq-null``) and as
    many draws of the strength-keeping null (``bechdel-eq-strength-null``)."""
    genders = bd.labels_of(bd.infer_genders(script))
    arrays = bd.GraphArrays.of(bd.interaction_graph(script), genders)
    total = arrays.weight.sum()
    shuffled = bd.permuted_labels(arrays, n_permutations, rng)[0]
    shares = bd.strength_share(arrays)
    male_names = {bd.first_name(c) for c, g in genders.items() if g == bd.MALE}
    table = np.zeros((2, 2), int)
    for turn in script.turns:
        if genders.get(turn.speaker) in (bd.FEMALE, bd.MALE):
            about = bd.mentions_a_man_anywhere(turn.text, male_names)
            table[int(genders[turn.speaker] == bd.MALE), int(not about)] += 1
    return ScriptStatistics(
        # edge weights are exchange counts: round the share × total products back to the integers they are, so
        # that the null's draws equal to the observed weight count as ties (``bechdel-eq-null``)
        ff_weight=float(np.rint(bd.female_female_share(arrays, arrays.female) * total)),
        ff_null=np.rint(bd.female_female_share(arrays, shuffled) * total),
        ff_strength_null=bd.strength_null_draws(arrays, n_permutations, rng),
        degree_women=shares[arrays.female],
        degree_men=shares[arrays.male],
        women=int(arrays.female.sum()),
        men=int(arrays.male.sum()),
        mention_table=table,
    )


TESTS = ("homophily", "centrality", "female share", "who talks about whom")
HOMOPHILY_NULLS = {"homophily": "ff_strength_null", "homophily (label shuffle)": "ff_null"}


def corpus_test(measure: str, statistics: list[ScriptStatistics]) -> float:
    """The p-value of one corpus-level test (research note, step 6) on the scripts' statistics:

    * ``"homophily"``: pooled test of the total F-F edge weight against the null that keeps each character's
      talk volume (``bechdel-eq-strength-null``, summed over scripts);
    * ``"homophily (label shuffle)"``: the same against labels shuffled within each script (``bechdel-eq-null``;
      a script's share of women is kept, but women who talk more than men raise the F-F weight above it);
    * ``"centrality"``: one-sided Mann-Whitney, women's degree shares lower than men's;
    * ``"female share"``: two-sided binomial test of the share of women among gendered characters against 1/2;
    * ``"who talks about whom"``: one-sided Fisher test, women's lines mention a man more often than men's.
    """
    if measure in HOMOPHILY_NULLS:
        return homophily_test(statistics, HOMOPHILY_NULLS[measure]).p_value
    if measure == "centrality":
        women = np.concatenate([s.degree_women for s in statistics])
        return bd.mann_whitney(women, np.concatenate([s.degree_men for s in statistics]))
    if measure == "female share":
        women, men = sum(s.women for s in statistics), sum(s.men for s in statistics)
        return float(stats.binomtest(women, max(women + men, 1), 0.5).pvalue)
    if measure == "who talks about whom":
        table = np.sum([s.mention_table for s in statistics], axis=0)
        return float(stats.fisher_exact(table[::-1], alternative="less")[1])
    raise ParameterError(f"measure={measure!r}; choose one of: {', '.join((*TESTS, *HOMOPHILY_NULLS))}")


def homophily_test(statistics: list[ScriptStatistics], null: str = "ff_strength_null") -> bd.NullComparison:
    """The pooled homophily test: the corpus's total F-F edge weight against the sum of the scripts' null draws
    (``null``: ``"ff_strength_null"`` or ``"ff_null"``, see :class:`ScriptStatistics`)."""
    observed = sum(s.ff_weight for s in statistics)
    return bd.permutation_null(observed, np.sum([getattr(s, null) for s in statistics], axis=0))


EFFECT = Planted(female_share=0.35, homophily=1.5, female_activity=0.6, women_mention_men=0.45, men_mention_men=0.25)
"""The pool of scripts with every effect planted at once (each test looks at its own)."""
NO_EFFECT = Planted(female_share=0.5, homophily=0.0, female_activity=1.0, women_mention_men=0.3, men_mention_men=0.3)
"""The control pool: every planted effect set to zero."""


def statistics_pool(
    planted: Planted, n: int, seed: int, name: str, n_permutations: int = 200
) -> list[ScriptStatistics]:
    """:func:`script_statistics` of ``n`` generated, rendered and re-parsed scripts."""
    rng = make_rng(seed, "bechdel", "pool", name)
    return [script_statistics(s, rng, n_permutations) for s in parse_corpus(generate_corpus(planted, n, seed, name))]


def power_table(
    pools: dict[str, list[ScriptStatistics]], sizes: list[int], replicates: int, seed: int, alpha: float = 0.05
) -> pd.DataFrame:
    """Rejection rate at level ``alpha`` (Wilson interval) of each test of :data:`TESTS` on corpora of each size,
    drawn without replacement from each pool (``{"planted effect": ..., "no effect": ...}``): power on the
    first, the false-positive rate on the second. Corpora of one size overlap when the pool is small; the
    intervals treat replicates as independent, so they are optimistic for sizes near the pool's."""
    rng = make_rng(seed, "bechdel", "power")
    rows = []
    for measure in TESTS:
        for label, pool in pools.items():
            for n in sizes:
                draws = [rng.choice(len(pool), size=n, replace=False) for _ in range(replicates)]
                rejections = sum(corpus_test(measure, [pool[i] for i in draw]) < alpha for draw in draws)
                rows.append({"test": measure, "corpus": label, "scripts": n,
                             "rejects": Estimate.proportion(int(rejections), replicates)})  # fmt: skip
    return pd.DataFrame(rows)


def scripts_needed(power: pd.DataFrame, target: float = 0.8) -> dict[str, int | None]:
    """Per test, the smallest corpus whose power's Wilson interval lies above ``target`` (None if none does)."""
    out = {}
    for measure, rows in power[power["corpus"] == "planted effect"].groupby("test", sort=False):
        enough = [int(r["scripts"]) for _, r in rows.sort_values("scripts").iterrows() if r["rejects"].low >= target]
        out[measure] = enough[0] if enough else None
    return out
