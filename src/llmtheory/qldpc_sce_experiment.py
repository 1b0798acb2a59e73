"""The experiments and figures of the qldpc_sce chapter, apart from the method in :mod:`llmtheory.qldpc_sce`.

Logical error rates on common random numbers, the searches run side by side with their replicates, the paired
comparisons and the competitive test that the claims use, the code families, and the figures and tables the chapter
shows. Everything here calls the method (groups, codes, distances, decoding, concepts, the grammar, the evaluator and
the evolution loop); nothing here is part of it.
"""

from __future__ import annotations

import time

import numpy as np

from .qldpc_sce import (
    CssCode,
    Evaluation,
    GrammarProposer,
    Group,
    Limits,
    SearchResult,
    Spec,
    clopper_pearson,
    commutes,
    css_dimension,
    decoding_failures,
    depolarizing_errors,
    describe,
    evaluate_concept,
    evolve,
    figure_of_merit,
    make_concept,
    matches_known,
    per_qubit_rate,
    prove,
    random_edit_search,
    random_hgp_search,
    random_matrix_search,
    random_spec,
    random_structured_search,
    realise,
    refine,
    spec_over,
    spec_problems,
)


def ler_table(
    codes: dict[str, CssCode], p_values, shots: int, rng: np.random.Generator, osd_order: int = 7, per_shot=None
):
    """Logical error rate vs p for every code on the *same* noise samples: one matrix of uniforms is drawn
    for the longest code and every code reads its first n columns (common random numbers). ``per_shot``: a dict
    that receives each (code, p)'s per-shot failures, for paired comparisons (:func:`paired_ler`)."""
    import pandas as pd

    uniforms = rng.random((shots, max(code.n for code in codes.values())))
    rows = []
    for name, code in codes.items():
        for p in p_values:
            start = time.perf_counter()
            failed = decoding_failures(code, *depolarizing_errors(uniforms[:, : code.n], p), p, osd_order)
            failures, total = int(failed.sum()), shots
            seconds = time.perf_counter() - start
            if per_shot is not None:
                per_shot[name, p] = failed
            low, high = clopper_pearson(failures, total)
            rows.append(
                {
                    "code": name,
                    "n": code.n,
                    "k": code.k,
                    "p": p,
                    "failures": failures,
                    "shots": total,
                    "LER": failures / total,
                    "low": low,
                    "high": high,
                    "per-qubit LER": per_qubit_rate(failures / total, code.k),
                    "shots/s": total / seconds,
                }
            )
    return pd.DataFrame(rows)


def plot_search_traces(results: list[SearchResult]):
    """Best fitness found so far against the number of evaluations, one line per search."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    styles = ("-", "--", "-.", ":")
    for i, result in enumerate(results):
        trace = result.best_so_far()
        ax.step(
            np.arange(1, trace.size + 1),
            trace,
            where="post",
            label=result.name,
            ls=styles[i % 4],
            lw=2.2 - 0.3 * i,
            zorder=10 - i,
        )
    ax.set(
        xlabel="evaluations (codes proposed)",
        ylabel="best score k·d²/n so far (cheap bound)",
        title="Search progress at equal evaluation budget",
    )
    ax.legend()
    return fig


def plot_ler(table):
    """Logical error rate vs physical error rate with 95% Clopper–Pearson intervals, log–log; a point with no
    failure is not drawn (its rate is below what the shots can resolve; the table lists it)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    for i, (name, rows) in enumerate(table.groupby("code", sort=False)):
        colour = f"C{i % 8}"
        seen = rows[rows.failures > 0]
        label = f"{name} (n={rows.n.iat[0]}, k={rows.k.iat[0]})"
        ax.errorbar(
            seen.p,
            seen.LER,
            yerr=[seen.LER - seen.low, seen.high - seen.LER],
            marker="o",
            ms=4,
            capsize=3,
            color=colour,
            label=label,
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="physical error rate p (depolarizing, per qubit)",
        ylabel="logical error rate (per shot)",
        title="Code-capacity noise, BP+OSD decoding",
    )
    p_values = sorted(table.p.unique())
    ax.set_xticks(p_values, [f"{p:g}" for p in p_values])
    ax.minorticks_off()
    ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)  # below: the plot keeps its width
    return fig


def top_refined(
    evaluations: list[Evaluation], count: int, trials: int, rng: np.random.Generator, keep=lambda e: True
) -> list[Evaluation]:
    """Stage 4 on a shortlist: the ``count`` fittest scored candidates that pass ``keep``, one per [[n,k,d]] and
    group, each with its distance re-bounded by :func:`refine`, sorted by refined fitness (best first)."""
    shortlist, seen = [], set()
    for e in sorted((e for e in evaluations if e.valid and keep(e)), key=lambda e: (-e.fitness, e.n)):
        key = describe(e)  # one per [[n,k,d]] and group: the search often finds many equivalent specifications
        if key not in seen:
            seen.add(key)
            shortlist.append(e)
        if len(shortlist) == count:
            break
    return sorted((refine(e, trials, rng) for e in shortlist), key=lambda e: (-e.fitness, e.n))


def is_nonabelian(evaluation: Evaluation) -> bool:
    return evaluation.spec is not None and not evaluation.spec.group.is_abelian


def shortlist_table(shortlists: dict[str, list[Evaluation]]):
    """The refined and proved shortlists: each candidate's cheap bound, its final distance and what kind it is."""
    import pandas as pd

    rows = [
        {
            "search": name,
            "code": describe(e),
            "d cheap bound": e.d_cheap or e.d,
            "d proved ≥": e.d_low or "—",
            "d found ≤": e.d,
            "distance": e.distance_kind,
            "score k·d²/n": e.fitness,
        }
        for name, shortlist in shortlists.items()
        for e in shortlist
    ]
    return pd.DataFrame(rows).set_index(["search", "code"])


def plot_code_landscape(results: list[SearchResult], known: dict[str, CssCode], known_d: dict[str, int]):
    """Every valid code the structured searches scored, as (n, k·d²/n), abelian and non-abelian apart, with
    the table BB codes for reference."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    scored = [e for r in results for e in r.evaluations if e.valid and e.spec is not None]
    for label, keep, marker in (
        ("abelian G", lambda e: not is_nonabelian(e), "o"),
        ("non-abelian G", is_nonabelian, "^"),
    ):
        chosen = [e for e in scored if keep(e)]
        ax.scatter([e.n for e in chosen], [e.fitness for e in chosen], s=18, marker=marker, alpha=0.6, label=label)
    for name, code in known.items():
        ax.scatter(code.n, figure_of_merit(code.n, code.k, known_d[name]), marker="*", s=160, color="black")
        ax.annotate(
            name,
            (code.n, figure_of_merit(code.n, code.k, known_d[name])),
            textcoords="offset points",
            xytext=(5, 5),
            fontsize=8,
        )
    ax.set(
        xlabel="code length n (physical qubits)",
        ylabel="score k·d²/n (cheap bound, capped)",
        title="Codes found by the structured searches, and the BB table (stars)",
    )
    ax.legend(loc="upper left")
    return fig


def search_summary(results: dict[str, SearchResult], refined: dict[str, list[Evaluation]]):
    """One row per search: validity, best code (after refinement), throughput, rediscoveries."""
    import pandas as pd

    rows = []
    for name, result in results.items():
        evaluations = result.evaluations
        best = refined[name][0] if refined[name] else Evaluation("none")
        rediscovered = sorted({m for m in map(matches_known, [*evaluations, *refined[name]]) if m})
        rows.append(
            {
                "search": name,
                "evaluations": len(evaluations),
                "valid CSS, k>0 (of proposals)": result.valid_fraction(),
                "not CSS": float(np.mean([e.stage == "not CSS" for e in evaluations])),
                "rejected proposals": result.invalid_proposals,
                "non-abelian codes": sum(e.valid and is_nonabelian(e) for e in evaluations),
                "best score (cheap)": result.best().fitness,
                "best score (refined, proved)": best.fitness,
                "best code (refined, proved)": describe(best),
                "codes/s": len(evaluations) / result.seconds,
                "table codes re-found (proved d)": ", ".join(rediscovered) or "none",
            }
        )
    return pd.DataFrame(rows).set_index("search")


def best_codes(
    result: SearchResult, count: int, trials: int, rng: np.random.Generator, max_nodes: int, max_n: int
) -> list[Evaluation]:
    """Stages 4 and 6 on a search's shortlist: refine the bounds of its ``count`` best distinct codes, then prove
    the distances of those with n ≤ ``max_n`` (MILP, ``max_nodes`` nodes per program); best score first."""
    refined = top_refined(result.evaluations, count, trials, rng)
    return sorted((prove(e, max_nodes, max_n) for e in refined), key=lambda e: (-e.fitness, e.n))


REPLICATED_SEARCHES = ("SCE", "SCE (second run)", "random specs", "random specs (second run)", "random HGP")
"""The searches run on every replicate: SCE, its structured control without evolution, the unstructured control
that is valid by construction, and a second independent run of SCE and of random specs (the A/A controls of the
comparison rules, at the noise level of the searches being compared)."""


def run_searches(
    names, budget: int, seed: int, replicate: int, limits: Limits, search_trials: int, proposer=None
) -> dict[str, SearchResult]:
    """The searches ``names`` of one replicate, at equal budget, each from its own random stream; SCE and random
    edits start from the same 8 random well-formed specifications (``proposer`` defaults to the grammar)."""
    from .seeding import make_rng

    seeds = [random_spec(make_rng(seed, "seed", replicate, i), limits) for i in range(8)]
    makers = {
        "SCE": lambda rng: evolve(
            seeds, proposer or GrammarProposer(limits), budget, rng, distance_trials=search_trials, limits=limits
        ),
        "random specs": lambda rng: random_structured_search(budget, rng, limits, search_trials),
        "random HGP": lambda rng: random_hgp_search(budget, rng, limits, search_trials),
        "SCE (second run)": lambda rng: evolve(
            [random_spec(make_rng(seed, "second seed", replicate, i), limits) for i in range(8)],
            proposer or GrammarProposer(limits),
            budget,
            rng,
            distance_trials=search_trials,
            limits=limits,
        ),
        "random specs (second run)": lambda rng: random_structured_search(budget, rng, limits, search_trials),
        "random edits": lambda rng: random_edit_search(seeds, budget, rng, distance_trials=search_trials),
        "random matrices": lambda rng: random_matrix_search(budget, rng, distance_trials=search_trials),
    }
    return {name: makers[name](make_rng(seed, "search", replicate, name)) for name in names}


def proved_low(evaluation: Evaluation) -> int:
    """The distance proved for an evaluation: exact, the MILP's lower bound, or only the trivial d ≥ 1."""
    if evaluation.distance_kind == "exact":
        return evaluation.d
    return max(evaluation.d_low, 1)


def score_bounds(result: SearchResult, shortlist: list[Evaluation]) -> tuple[float, float]:
    """Bounds on the best true k·d²/n a search found: (proved, upper). The proved score uses each code's proved
    lower bound on d; the upper one each code's lightest logical found, uncapped (refined and proved values for
    the shortlisted codes, the cheap bound elsewhere)."""
    final = {id(e.matrices): e for e in shortlist}
    codes = [final.get(id(e.matrices), e) for e in result.evaluations if e.valid] + list(shortlist)
    if not codes:
        return 0.0, 0.0
    low = max(figure_of_merit(e.n, e.k, proved_low(e)) for e in codes)
    return low, max(figure_of_merit(e.n, e.k, e.d) for e in codes)


def replicate_table(bests: list[dict[str, list[Evaluation]]], runs: list[dict[str, SearchResult]]):
    """One row per (replicate, search): the best code of :func:`best_codes`, its score, its distance kind, and
    the bounds of :func:`score_bounds` on the best true score."""
    import pandas as pd

    rows = []
    for replicate, shortlists in enumerate(bests):
        for name, shortlist in shortlists.items():
            best = (shortlist or [Evaluation("none")])[0]
            low, high = score_bounds(runs[replicate][name], shortlist)
            rows.append(
                {
                    "replicate": replicate,
                    "search": name,
                    "best code": describe(best),
                    "k·d²/n": best.fitness,
                    "proved k·d²/n": low,
                    "upper k·d²/n": high,
                    "distance": best.distance_kind or "none",
                }
            )
    return pd.DataFrame(rows)


def paired_difference(table, first: str, second: str, column: str = "k·d²/n", second_column: str | None = None):
    """The mean over replicates of (first − second), paired by replicate, with its Student-t 95% interval;
    ``second_column`` reads the second search from another column (e.g. its upper bound)."""
    from .claims import Estimate

    wide = table.pivot(index="replicate", columns="search", values=column)
    other = table.pivot(index="replicate", columns="search", values=second_column or column)
    return Estimate.mean_of((wide[first] - other[second]).to_numpy())


def comparison(table, first: str, second: str, control: tuple[str, str]) -> dict:
    """The ``ledger.check`` arguments of a search comparison "first finds better codes than second". Rule: the
    95% interval of the paired difference of best scores is above 0. Unproved distances make the outcome
    undecided where proofs could reverse it: a pass is decisive only if it stays with ``first`` at its proved
    score and ``second`` at its upper bound (:func:`score_bounds`), a failure only if it stays with ``first`` at
    its upper bound and ``second`` at its proved score. The control applies the same rule to two independent runs
    of the same search (``control``: (second run, first run))."""
    from .claims import Control, Test

    def outcome(a: str, b: str):
        score = paired_difference(table, a, b)
        strict = paired_difference(table, a, b, "proved k·d²/n", "upper k·d²/n")
        generous = paired_difference(table, a, b, "upper k·d²/n", "proved k·d²/n")
        holds = bool(score.low > 0)
        text = f"{score:.2f}; proved − upper: {strict:.2f}; upper − proved: {generous:.2f}"
        return text, Test(holds, decisive=bool(strict.low > 0) if holds else bool(generous.low <= 0))

    text, test = outcome(first, second)
    c_text, c_test = outcome(*control)
    return {
        "ours": f"{first} − {second}: {text}",
        "rule": "paired difference of best k·d²/n over replicates, 95% interval above 0; a pass is decisive only if "
        "it stays with the first search at its proved score and the second at its upper bound, a failure only if "
        "it stays the other way round",
        "holds": test,
        "control": Control(f"two runs of {control[1]}", ours=c_text, holds=c_test),
    }


def family_growth(table):
    """Does a family's distance grow, on proved bounds only? Growth is shown where a proved lower bound at a
    larger n exceeds the upper bound at a smaller n; it is refuted when the upper bound at the largest n is at
    most a distance already proved at a smaller n (this takes precedence); otherwise the upper bounds decide,
    qualitatively."""
    from .claims import Test

    rows = table.sort_values("n")
    low = rows["d low"].where(rows.distance != "upper bound", 1).clip(lower=1).to_numpy()
    low = np.where(rows.distance.to_numpy() == "exact", rows["d high"].to_numpy(), low)
    high = rows["d high"].to_numpy()
    shown = any(low[j] > high[i] for j in range(len(high)) for i in range(j))
    refuted = high[-1] <= low[:-1].max()
    if refuted:  # growth at small n that stalls by the largest n is not a growing family
        return Test(False)
    return Test(True) if shown else Test(bool(high[-1] > high[0]), decisive=False)


def paired_ler(failed: np.ndarray, k: int, failed_reference: np.ndarray, k_reference: int, rng: np.random.Generator):
    """Per-qubit logical error rate (eq. per-qubit) of a code minus that of a reference decoded on the same noise
    samples (per-shot failures from :func:`ler_table`), with a paired 95% bootstrap interval (1,000 resamples of
    the shots, the same shots for both codes)."""
    from .claims import Estimate

    def difference(index):
        return per_qubit_rate(failed[index].mean(), k) - per_qubit_rate(failed_reference[index].mean(), k_reference)

    shots = failed.size
    boot = [difference(rng.integers(0, shots, shots)) for _ in range(1000)]
    low, high = np.quantile(boot, [0.025, 0.975])
    return Estimate(difference(np.arange(shots)), float(low), float(high))


def competitive_test(differences: dict):
    """ "Competitive" at every plotted p: the per-qubit rate difference (SCE − reference) is ≤ 0; decisive only
    if every interval is ≤ 0 too (a p where both codes never fail counts as a tie)."""
    from .claims import Test

    holds = all(d.value <= 0 for d in differences.values())
    return Test(holds, decisive=all(d.high <= 0 for d in differences.values()) if holds else True)


def plot_replicates(table):
    """The best score of each search on every replicate (dots) and their mean with a 95% interval (bars)."""
    import matplotlib.pyplot as plt

    from .stats import mean_ci

    fig, ax = plt.subplots()
    names = list(dict.fromkeys(table.search))
    for i, name in enumerate(names):
        values = table[table.search == name]["k·d²/n"].to_numpy()
        ax.scatter(np.full(values.size, i) + np.linspace(-0.12, 0.12, values.size), values, s=22, color=f"C{i}")
        mean, half = mean_ci(values, 0.95) if values.size > 1 else (values.mean(), 0.0)
        ax.errorbar(i + 0.3, mean, yerr=half, fmt="s", color=f"C{i}", capsize=4)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set(ylabel="best k·d²/n per replicate", title="Equal budget, replicated (d proved where the MILP finished)")
    return fig


def family_over(spec: Spec, ells, limits: Limits) -> list[Spec]:
    """A family followed at growing n: the same protographs (exponents reduced mod ℓ) over G(ℓ, m, r) for the ℓ
    in ``ells`` where the group is valid, the specification well formed and k > 0."""
    members = []
    for ell in ells:
        group = Group(ell, spec.group.m, spec.group.twist % ell if ell > 1 else 1)
        candidate = spec_over(spec, group)
        if group.is_valid() and not spec_problems(candidate, limits) and css_dimension(*realise(candidate)) > 0:
            members.append(candidate)
    return members


def family_table(
    families: dict[str, list[Spec]], trials: int, max_nodes: int, max_n: int, rng: np.random.Generator, count=5
):
    """d(n) along each family (at most ``count`` members, evenly spaced): k, an upper bound from ``trials``
    trials, and the MILP's proof for n ≤ ``max_n``."""
    import pandas as pd

    rows = []
    for name, members in families.items():
        keep = np.unique(np.linspace(0, len(members) - 1, min(count, len(members))).round().astype(int))
        for spec in [members[i] for i in keep] if members else []:
            evaluation = evaluate_concept(make_concept(spec), rng, trials, Limits(max_n=10**6, max_group_order=10**6))
            if not evaluation.valid:
                continue
            evaluation = prove(evaluation, max_nodes, max_n)
            rows.append(
                {
                    "family": name,
                    "ℓ": spec.group.ell,
                    "n": evaluation.n,
                    "k": evaluation.k,
                    "d low": evaluation.d_low,
                    "d high": evaluation.d,
                    "distance": evaluation.distance_kind,
                    "code": describe(evaluation),
                }
            )
    return pd.DataFrame(rows)


def plot_families(table):
    """d against n along each family: filled markers for proved distances, a bar from the proved lower bound to
    the upper bound where the MILP stopped, open markers for upper bounds only."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    for i, (name, rows) in enumerate(table.groupby("family", sort=False)):
        colour, marker = f"C{i}", "os^D"[i % 4]
        ax.plot(rows.n, rows["d high"], "-", color=colour, alpha=0.5)
        exact = rows[rows.distance == "exact"]
        ax.plot(exact.n, exact["d high"], marker, color=colour, label=f"{name}: proved d")
        bounded = rows[rows.distance != "exact"]
        ax.plot(bounded.n, bounded["d high"], marker, color=colour, fillstyle="none", label=f"{name}: upper bound")
        proved_low = bounded[bounded["d low"] > 0]
        ax.vlines(proved_low.n, proved_low["d low"], proved_low["d high"], color=colour, lw=3, alpha=0.5)
    ax.set(xlabel="code length n", ylabel="distance d", title="Families at growing n")
    ax.legend(fontsize=9)
    return fig


def check_exercise_bb288(hx: np.ndarray, hz: np.ndarray) -> str:
    """Checker of Exercise 1: is (hx, hz) a CSS code with the [[288,12,18]] code's n = 288 and k = 12?"""
    if not commutes(hx, hz):
        return "Not a CSS code: H_X H_Z^T != 0. Did you use H_Z = [B^T | A^T]?"
    n, k = hx.shape[1], css_dimension(hx, hz)
    if (n, k) != (288, 12):
        return f"A CSS code, but [[{n},{k}]] instead of [[288,12]]: check ℓ, m and the exponents."
    return "Correct: n = 288 and k = 12, the [[288,12,18]] bivariate-bicycle code."
