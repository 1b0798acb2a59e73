"""The claims ledger: each headline claim of a paper, the paper's number, ours, the kind of evidence, and a
verdict that the ledger computes from a rule's outcome.

In a chapter::

    ledger = Ledger("augmentation_fourier", scale=SCALE, seed=SEED)
    ledger.check(
        "rate-regression",
        claim="partial augmentation keeps the rate of full augmentation",
        paper="same minimax rate",
        ours=f"slope {slope_k4} (k = 4)",              # an Estimate formats as "−0.98 [−1.05, −0.91]"
        rule="slope within 0.1 of the full-group slope",
        kind=MEASURED,
        holds=within(slope_k4, slope_full.value, 0.1),  # a Test: passes, and whether its interval decides it
        control=Control("no augmentation", ours=f"slope {slope_none}", holds=within(slope_none, ...)),
    )
    ledger.report()    # writes _build/claims/<scale>/<slug>.json and shows the table with verdict badges
    ledger.findings()  # the outcomes as prose, grouped by verdict: chapters never type an outcome by hand

The verdict is never passed in: the ledger derives it from the kind of evidence, the rule's outcome on our
run, the same rule's outcome on the control, and whether the estimate's interval decides the rule.

Kinds of evidence (:data:`KINDS`):

* ``measured`` — an experiment whose outcome was open before the run. It names a :class:`Control` (the same
  rule applied to something that should fail it), or says in ``can_fail_because`` why its rule can fail
  without one (a tolerance against an independent reference). A control that passes the rule too turns the
  verdict into :data:`NOT_DISCRIMINATING`, and so does a control whose failure its interval does not decide
  when our own pass is not decided either (the two cannot be told apart). Only measured rows can be
  ``reproduced``.
* ``identity`` — holds by theorem or construction (Parseval, a parity check, a round trip): a check.
* ``published`` — arithmetic on constants from papers: a check.
* ``assumed`` — a consequence of a simulation's chosen parameters: always :data:`NOT_TESTABLE`.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from .chapters import all_chapters
from .display import MISSING
from .params import ParameterError, check_scale
from .paths import claims_dir

MEASURED = "measured"
IDENTITY = "identity"
PUBLISHED = "published"
ASSUMED = "assumed"
KINDS: tuple[str, ...] = (MEASURED, IDENTITY, PUBLISHED, ASSUMED)
KIND_NAMES = {
    MEASURED: "measured",
    IDENTITY: "identity (holds by theorem or construction)",
    PUBLISHED: "arithmetic on published numbers",
    ASSUMED: "consequence of assumed parameters",
}

REPRODUCED = "reproduced"
QUALITATIVE = "reproduced (qualitatively)"
NOT_REPRODUCED = "not reproduced"
NOT_DISCRIMINATING = "rule does not discriminate"
NOT_TESTABLE = "not testable at this scale"
CHECK_PASSED = "check passed"
CHECK_FAILED = "check failed"
MEASURED_VERDICTS: tuple[str, ...] = (REPRODUCED, QUALITATIVE, NOT_REPRODUCED, NOT_DISCRIMINATING, NOT_TESTABLE)
VERDICTS: tuple[str, ...] = (*MEASURED_VERDICTS, CHECK_PASSED, CHECK_FAILED)

# Okabe & Ito's colour-blind-safe colours, with a text colour that reads on each; the badge also says the word.
BADGE_COLOURS: dict[str, tuple[str, str]] = {
    REPRODUCED: ("#009E73", "#ffffff"),
    QUALITATIVE: ("#F0E442", "#000000"),
    NOT_REPRODUCED: ("#D55E00", "#ffffff"),
    NOT_DISCRIMINATING: ("#CC79A7", "#000000"),
    NOT_TESTABLE: ("#BBBBBB", "#000000"),
    CHECK_PASSED: ("#56B4E9", "#000000"),
    CHECK_FAILED: ("#E69F00", "#000000"),
}

_IMPORTED_AT = time.perf_counter()  # a chapter imports this module in its first cells: its run starts here
_CPU_AT_IMPORT = time.process_time()  # CPU seconds of the kernel (all its threads): honest on a shared machine


# ---------------------------------------------------------------------------------------------------------
# Rules: estimates with intervals, and the outcome of a rule on them


@dataclass(frozen=True)
class Estimate:
    """A number with its uncertainty: ``value`` and an interval ``[low, high]`` (a confidence interval, a
    bootstrap interval, ± two standard errors: say which in the rule's text)."""

    value: float
    low: float
    high: float

    def __post_init__(self):
        if not self.low <= self.value <= self.high:
            raise ParameterError(f"Estimate needs low ≤ value ≤ high; got {self.low}, {self.value}, {self.high}")

    @classmethod
    def mean_of(cls, values, confidence: float = 0.95) -> Estimate:
        """The mean of replicates with its Student-t interval."""
        from .stats import mean_ci

        mean, half = mean_ci(values, confidence)
        return cls(mean, mean - half, mean + half)

    @classmethod
    def proportion(cls, successes: int, trials: int, z: float = 1.96) -> Estimate:
        """A rate ``successes / trials`` with its Wilson score interval (stays inside [0, 1], and is not
        degenerate at 0 or 1 successes as the normal approximation is)."""
        if trials <= 0 or not 0 <= successes <= trials:
            raise ParameterError(f"a proportion needs 0 ≤ successes ≤ trials and trials > 0; got {successes}/{trials}")
        p = successes / trials
        centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
        half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
        return cls(p, float(max(0.0, min(p, centre - half))), float(min(1.0, max(p, centre + half))))

    @classmethod
    def from_stderr(cls, value: float, stderr: float, z: float = 1.96) -> Estimate:
        """``value ± z·stderr`` (a normal-approximation 95% interval by default)."""
        return cls(float(value), float(value - z * stderr), float(value + z * stderr))

    def __format__(self, spec: str) -> str:
        spec = spec or ".3g"
        return f"{self.value:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"

    def __str__(self) -> str:
        return format(self)


@dataclass(frozen=True)
class Test:
    """The outcome of a rule: ``holds`` on the point estimate, and ``decisive`` when the whole interval is
    on the same side of the threshold (a pass inside an interval that spans it is at most qualitative)."""

    holds: bool
    decisive: bool = True

    def __bool__(self) -> bool:
        return bool(self.holds)


def _parts(x: Estimate | float) -> tuple[float, float, float]:
    if isinstance(x, Estimate):
        return x.value, x.low, x.high
    return float(x), float(x), float(x)


def at_least(x: Estimate | float, threshold: float) -> Test:
    """The rule ``x ≥ threshold``; decisive when the whole interval is on one side."""
    value, low, high = _parts(x)
    holds = value >= threshold
    return Test(bool(holds), bool(low >= threshold) if holds else bool(high < threshold))


def at_most(x: Estimate | float, threshold: float) -> Test:
    """The rule ``x ≤ threshold``; decisive when the whole interval is on one side."""
    value, low, high = _parts(x)
    holds = value <= threshold
    return Test(bool(holds), bool(high <= threshold) if holds else bool(low > threshold))


def within(x: Estimate | float, target: float, tolerance: float) -> Test:
    """The rule ``|x − target| ≤ tolerance``; decisive when the whole interval is inside (or outside)."""
    value, low, high = _parts(x)
    holds = abs(value - target) <= tolerance
    inside = target - tolerance <= low and high <= target + tolerance
    outside = high < target - tolerance or low > target + tolerance
    return Test(bool(holds), bool(inside) if holds else bool(outside))


def all_of(*tests: Test | bool) -> Test:
    """Every part of a rule: holds when all hold, decisively when every part does; fails decisively when one
    failing part's interval decides that it fails (the other parts cannot rescue it)."""
    parts = [t if isinstance(t, Test) else Test(bool(t)) for t in tests]
    if all(t.holds for t in parts):
        return Test(True, all(t.decisive for t in parts))
    return Test(False, any(t.decisive and not t.holds for t in parts))


def _as_test(outcome: Test | bool | np.bool_) -> Test:
    if isinstance(outcome, Test):
        return outcome
    if isinstance(outcome, bool | np.bool_):
        return Test(bool(outcome))
    raise ParameterError(f"a rule's outcome must be a bool or a claims.Test, not {type(outcome).__name__}")


@dataclass(frozen=True)
class Control:
    """The same rule applied to something that should fail it: ``name`` says what (shuffled labels, no
    augmentation, a random head set of equal size), ``ours`` what it measured, ``holds`` the rule's outcome
    on it, and ``qualitatively`` the outcome of the claim's qualitative rule on it — required when the claim
    has a qualitative rule, so that a weak fallback rule is tested against the control too."""

    name: str
    ours: str
    holds: Test | bool
    qualitatively: bool | None = None


# ---------------------------------------------------------------------------------------------------------
# The verdict


def decide(
    kind: str,
    holds: Test | bool,
    *,
    qualitatively: bool = False,
    testable: bool = True,
    control: Control | None = None,
) -> str:
    """The verdict the ledger records for a rule's outcome (see the module docstring for the kinds)."""
    if kind not in KINDS:
        raise ParameterError(f"kind={kind!r} is not valid; choose one of: {', '.join(KINDS)}")
    outcome = _as_test(holds)
    if kind == ASSUMED or not testable:
        return NOT_TESTABLE
    if kind in (IDENTITY, PUBLISHED):
        return CHECK_PASSED if outcome.holds else CHECK_FAILED
    if control is not None:
        control_outcome = _as_test(control.holds)
        passes = outcome.holds or qualitatively
        if passes and control_outcome.holds:
            # the rule passes the control too, if only on its point estimate: an undecided control that lands on
            # the passing side is not evidence that the rule tells the claim from the control (the ledger does not
            # compare the two directly), so this stays conservative even when our own pass is decisive
            return NOT_DISCRIMINATING
        if passes and not control_outcome.decisive and not (outcome.holds and outcome.decisive):
            # Our pass is not decided by its interval and the control's failure is not either: at this resolution
            # the rule cannot tell them apart. (A decisive pass with an undecided control that fails on its point
            # goes on to the verdict below. An A/A control centred on the threshold therefore decides the row by
            # which side its point lands on: a coin flip that makes the verdict conservative half the time.)
            return NOT_DISCRIMINATING
        if control.qualitatively and qualitatively and not outcome.holds:
            return NOT_DISCRIMINATING
    if outcome.holds:
        return REPRODUCED if outcome.decisive else QUALITATIVE
    return QUALITATIVE if qualitatively else NOT_REPRODUCED


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    paper: str
    ours: str
    rule: str
    kind: str
    verdict: str
    control: str | None = None  # "name: what it measured (passes / fails the rule)"
    control_passes: bool | None = None
    can_fail_because: str | None = None
    decisive: bool = True
    where: str | None = None  # a MyST label in the chapter where the claim is checked
    timed: bool = False  # its numbers are wall or CPU times, which differ between two runs of the same seed


def _control_text(control: Control) -> str:
    outcome_of_control = _as_test(control.holds)
    if outcome_of_control.holds:
        outcome = "passes the rule"
    elif not outcome_of_control.decisive:
        outcome = "fails the rule, undecided: its interval spans the threshold"
    elif control.qualitatively:
        outcome = "fails the rule, passes its qualitative version"
    else:
        outcome = "fails the rule"
    return f"{control.name}: {control.ours} ({outcome})"


class Ledger:
    """The claims of one chapter run at one scale, seed and model."""

    def __init__(self, slug: str, *, scale: str, seed: int, model: str | None = None):
        self.slug = slug
        self.scale = check_scale(scale)
        self.seed = seed
        self.model = model
        self.claims: list[Claim] = []

    def check(
        self,
        id: str,
        *,
        claim: str,
        paper: str,
        ours: str,
        rule: str,
        kind: str,
        holds: Test | bool | None,
        qualitatively: bool | None = None,
        testable: bool = True,
        control: Control | None = None,
        can_fail_because: str | None = None,
        where: str | None = None,
        timed: bool = False,
    ) -> Claim:
        """Record one claim and return it with the verdict the ledger decided (:func:`decide`).

        A ``measured`` claim needs a ``control`` or a one-line ``can_fail_because``; the other kinds take
        neither. A claim that could not be run says ``testable=False`` (and may pass ``holds=None``).
        ``where`` is the label of the place in the chapter where the claim is checked (default: the chapter's
        ``<slug>-claims`` label). ``timed=True`` marks a claim judged on measured times: the same seed gives
        the same ledger except for its numbers and verdict (see :func:`deterministic_part`).
        """
        if kind not in KINDS:
            raise ParameterError(f"kind={kind!r} is not valid; choose one of: {', '.join(KINDS)}")
        if any(c.id == id for c in self.claims):
            raise ParameterError(f"claim id {id!r} is already in the {self.slug} ledger")
        if kind == MEASURED and control is None and not can_fail_because:
            raise ParameterError(
                f"measured claim {id!r} needs control=Control(...) or can_fail_because='why the rule can fail'"
            )
        if kind != MEASURED and (control is not None or can_fail_because):
            raise ParameterError(f"claim {id!r} is kind {kind!r}: controls belong to measured claims only")
        if qualitatively is not None and control is not None and control.qualitatively is None:
            raise ParameterError(
                f"claim {id!r} has a qualitative rule: give its outcome on the control too, "
                "Control(..., qualitatively=<the qualitative rule applied to the control>)"
            )
        if holds is None and testable:
            raise ParameterError(f"claim {id!r}: holds=None is only for a claim marked testable=False")
        outcome = _as_test(False if holds is None else holds)
        entry = Claim(
            id=id,
            claim=claim,
            paper=paper,
            ours=ours,
            rule=rule,
            kind=kind,
            verdict=decide(kind, outcome, qualitatively=bool(qualitatively), testable=testable, control=control),
            control=(_control_text(control) if testable else f"{control.name}: not evaluated (not testable)")
            if control is not None
            else None,
            control_passes=_as_test(control.holds).holds if control is not None and testable else None,
            can_fail_because=can_fail_because,
            decisive=outcome.decisive,
            where=where,
            timed=timed,
        )
        self.claims.append(entry)
        return entry

    def verdict_of(self, id: str) -> str:
        """The verdict recorded for claim ``id`` (chapters choose explanatory text by it)."""
        for c in self.claims:
            if c.id == id:
                return c.verdict
        raise KeyError(f"no claim {id!r} in the {self.slug} ledger; its claims are: {[c.id for c in self.claims]}")

    def table(self) -> pd.DataFrame:
        """The ledger as a table, one row per claim; the verdict next to the id, where a page too narrow for
        eight columns still shows it (a reader scrolls sideways for the rule, not for the outcome)."""
        columns = ["id", "verdict", "kind", "claim", "paper", "ours", "control", "rule"]
        rows = [{**asdict(c), "control": c.control or c.can_fail_because or ""} for c in self.claims]
        return pd.DataFrame(rows, columns=columns).set_index("id")

    def to_dict(self) -> dict:
        # Versions from package metadata: importing torch just to read its version costs seconds.
        versions = {"python": platform.python_version()}
        for package in ("numpy", "torch", "transformers"):
            try:
                versions[package] = metadata.version(package)
            except metadata.PackageNotFoundError:
                versions[package] = None
        return {
            "slug": self.slug,
            "scale": self.scale,
            "seed": self.seed,
            "model": self.model,
            "wall_time_s": round(time.perf_counter() - _IMPORTED_AT, 1),  # the chapter's run time so far
            "cpu_time_s": round(time.process_time() - _CPU_AT_IMPORT, 1),  # its CPU time, all threads together
            "load_average": round(os.getloadavg()[0], 1),  # the machine's 1-minute load when the ledger was saved
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": versions,
            "claims": [asdict(c) for c in self.claims],
        }

    def save(self, folder: Path | None = None) -> Path:
        """Write ``<folder>/<slug>.json`` (default: :func:`llmtheory.paths.claims_dir` of the scale)."""
        folder = Path(folder) if folder is not None else claims_dir(self.scale)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.slug}.json"
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return path

    def report(self) -> LedgerReport:
        """Save the ledger and return it for display: one row per claim, its verdict as a coloured badge
        (:func:`ledger_html`)."""
        self.save()
        return LedgerReport(ledger_html(self.claims))

    def findings(self, why: dict[str, str | dict[str, str]] | None = None):
        """The chapter's outcomes as Markdown, grouped by verdict, produced from the ledger.

        ``why`` maps a claim id to the hand-written explanation, or to one explanation per verdict (keys are
        verdicts, ``"default"`` for the rest) so that the text shown agrees with what the run measured.
        """
        import os

        from IPython.display import Markdown

        from .sweep import SWEEP_JOB_ENV, seed_verdicts

        # A sweep job does not read its sibling jobs' ledgers: its output would depend on their order.
        seeds = {} if os.environ.get(SWEEP_JOB_ENV) else seed_verdicts(self.scale).get(self.slug, {})
        return Markdown(render_findings(self.claims, why or {}) + render_seed_stability(self.claims, seeds))

    def _repr_html_(self) -> str:
        return ledger_html(self.claims)


class LedgerReport:
    """What :meth:`Ledger.report` returns: the ledger as HTML, shown by Jupyter (``_repr_html_``)."""

    def __init__(self, html: str):
        self.html = html

    def _repr_html_(self) -> str:
        return self.html

    def to_html(self) -> str:
        return self.html


# Two columns, so that the long texts get the width: a narrow one with the verdict, the id and the kind, and a
# wide one with the claim and its evidence, one labelled line each. Eight columns (the table's) made every text
# a column of one to three words and a row up to 1,500 px tall at 1,200 px (issue 28; autospec's table went from
# 6,249 px to about 2,900). Inline styles, so that it reads the same in Jupyter, Colab and the book.
_LEDGER_CELL = "text-align:left;vertical-align:top;padding:0.45em 0.6em;border-top:1px solid rgba(128,128,128,0.35)"
_LEDGER_LINE = '<div style="margin-top:0.2em;font-size:0.92em">'


def evidence_lines(claim: dict) -> list[list[tuple[str, str]]]:
    """A claim's evidence as labelled lines, the same in a chapter's ledger table and on the claims page: paper and
    ours, the rule, then the control or why the rule can fail (when there is one)."""
    lines = [[("paper", claim["paper"]), ("ours", claim["ours"])], [("rule", claim["rule"])]]
    if claim.get("control"):
        lines.append([("control", claim["control"])])
    elif claim.get("can_fail_because"):
        lines.append([("why the rule can fail", claim["can_fail_because"])])
    return lines


def ledger_html(claims: list[Claim] | list[dict]) -> str:
    """A chapter's claims as an HTML table (what ``ledger.report()`` shows): per claim, the verdict badge with the
    id and kind under it, then the claim in bold and, one line each, the paper's statement and ours, the rule, and
    the control or why the rule can fail. All text is escaped; an empty field shows the book's dash."""
    import html

    def text(value) -> str:
        return html.escape(str(value)) if value not in (None, "") else MISSING

    rows = []
    for claim in claims:
        c = asdict(claim) if isinstance(claim, Claim) else claim
        undecided = (
            "<br><small><em>undecided: the interval spans the threshold</em></small>" if _undecided_failure(c) else ""
        )
        side = (
            f"{badge_html(c['verdict'])}<br><small><code>{text(c['id'])}</code></small>"
            f"<br><small>{text(c['kind'])}</small>{undecided}"
        )
        lines = [f"<strong>{text(c['claim'])}</strong>"] + [
            _LEDGER_LINE + " · ".join(f"<em>{label}:</em> {text(value)}" for label, value in line) + "</div>"
            for line in evidence_lines(c)
        ]
        rows.append(
            f'<tr><td style="{_LEDGER_CELL};width:13em">{side}</td>'
            f'<td style="{_LEDGER_CELL}">{"".join(lines)}</td></tr>'
        )
    head = (
        f'<thead><tr><th style="{_LEDGER_CELL}">verdict · id · kind</th>'
        f'<th style="{_LEDGER_CELL}">claim · paper and ours · rule · control</th></tr></thead>'
    )
    return f'<table class="llmtheory-ledger" style="width:100%">{head}<tbody>{"".join(rows)}</tbody></table>'


def deterministic_part(claims: list[dict]) -> list[dict]:
    """Saved claims without what may differ between two runs of one seed: the measurements of timed claims."""
    varying = ("ours", "verdict", "control", "control_passes", "decisive")
    return [{k: v for k, v in c.items() if not (c.get("timed") and k in varying)} for c in claims]


def run_time(ledger: dict) -> str:
    """A saved ledger's run time: wall seconds, and CPU seconds with the load when the ledger records them."""
    if "cpu_time_s" not in ledger:  # ledgers written before CPU time was recorded
        return f"{ledger['wall_time_s']:.0f} s"
    return f"{ledger['wall_time_s']:.0f} s wall ({ledger['cpu_time_s']:.0f} s CPU, load {ledger['load_average']:.1f})"


def badge_html(verdict: str) -> str:
    """A verdict as a coloured badge (inline HTML: it renders in notebooks and on Jupyter Book pages)."""
    background, colour = BADGE_COLOURS.get(verdict, ("#ffffff", "#000000"))
    return (
        f'<span style="background:{background};color:{colour};border-radius:0.6em;padding:0.1em 0.5em;'
        f'white-space:nowrap;font-size:0.85em">{verdict}</span>'
    )


FINDING_HEADINGS: dict[str, str] = {
    REPRODUCED: "Reproduced",
    QUALITATIVE: "Reproduced only qualitatively",
    NOT_REPRODUCED: "Not reproduced",
    NOT_DISCRIMINATING: "The rule does not discriminate (its control passes too, or neither outcome is decided)",
    NOT_TESTABLE: "Not testable here",
    CHECK_PASSED: "Checks that hold (identities and arithmetic, not reproductions)",
    CHECK_FAILED: "Checks that fail",
}


def _explanation(claim: Claim, why: dict[str, str | dict[str, str]]) -> str:
    text = why.get(claim.id, "")
    if isinstance(text, dict):
        text = text.get(claim.verdict, text.get("default", ""))
    return text


def _undecided_failure(claim: dict) -> bool:
    """A measured rule that fails on the point estimate while the estimate's interval still reaches past the
    threshold: "not reproduced", but not decisively (the mirror image of a pass that is only qualitative)."""
    return claim.get("kind") == MEASURED and claim["verdict"] == NOT_REPRODUCED and not claim.get("decisive", True)


def render_findings(claims: list[Claim], why: dict[str, str | dict[str, str]]) -> str:
    """Markdown: one paragraph per verdict present, each claim with what we measured and why."""
    unknown = sorted(set(why) - {c.id for c in claims})
    if unknown:
        raise ParameterError(f"findings(why=...) names claims not in the ledger: {', '.join(unknown)}")
    lines = []
    for verdict in VERDICTS:
        group = [c for c in claims if c.verdict == verdict]
        if not group:
            continue
        lines += [f"**{FINDING_HEADINGS[verdict]}.**", ""]
        for c in group:
            kind = "" if c.kind == MEASURED else f" [{KIND_NAMES[c.kind]}]"
            control = f" Control — {c.control}." if c.control else ""
            explanation = _explanation(c, why)
            undecided = " *Undecided: the interval spans the threshold.*" if _undecided_failure(asdict(c)) else ""
            lines.append(
                f"- *{c.claim}*{kind}: {c.ours}.{undecided}{control}" + (f" {explanation}" if explanation else "")
            )
        lines.append("")
    return "\n".join(lines)


def verdict_changes(by_seed: dict) -> bool:
    """Whether a claim's verdict differs between the seeds it was run at."""
    return len(set(by_seed.values())) > 1


def seed_badges(by_seed: dict) -> str:
    """A claim's verdict at each seed: one small badge per seed, coloured by its verdict (the word on hover)."""
    badges = []
    for seed, verdict in sorted(by_seed.items(), key=lambda kv: int(kv[0])):
        background, colour = BADGE_COLOURS.get(verdict, ("#ffffff", "#000000"))
        badges.append(
            f'<span title="seed {seed}: {verdict}" style="background:{background};color:{colour};'
            f'border-radius:0.4em;padding:0 0.35em;font-size:0.8em">{seed}</span>'
        )
    return " ".join(badges)


def render_seed_stability(claims: list[Claim], seeds: dict[str, dict]) -> str:
    """Markdown on the claims whose verdict changes across the seeds that sweeps ran (empty without sweeps)."""
    swept = {c.id: seeds[c.id] for c in claims if len(seeds.get(c.id, {})) > 1}
    if not swept:
        return ""
    changing = {cid: by_seed for cid, by_seed in swept.items() if verdict_changes(by_seed)}
    counted = sorted({int(s) for by_seed in swept.values() for s in by_seed})
    lines = ["", f"**Across seeds** {', '.join(map(str, counted))} (from `make robustness`). "]
    if not changing:
        lines[-1] += f"Every one of the {len(swept)} swept claims gets the same verdict at every seed."
        return "\n".join(lines) + "\n"
    lines[-1] += (
        f"{len(changing)} of {len(swept)} claims change verdict with the seed, so at one seed they are a coin toss:"
    )
    lines.append("")
    for c in claims:
        if c.id in changing:
            per_seed = ", ".join(f"seed {s}: {v}" for s, v in sorted(changing[c.id].items(), key=lambda kv: int(kv[0])))
            lines.append(f"- *{c.claim}* — {per_seed}.")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------
# The book's claims page


def load_ledgers(scale: str, folder: Path | None = None) -> list[dict]:
    """Every saved ledger of ``scale``, in book order."""
    folder = Path(folder) if folder is not None else claims_dir(check_scale(scale))
    order = {c.slug: i for i, c in enumerate(all_chapters())}
    found = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return sorted(found, key=lambda d: order.get(d["slug"], len(order)))


def _cell(text) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


SUMMARY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (header, kind, verdict) — measured verdicts first: only these count as reproductions
    ("repr.", MEASURED, REPRODUCED),
    ("qual.", MEASURED, QUALITATIVE),
    ("not repr.", MEASURED, NOT_REPRODUCED),
    ("no discr.", MEASURED, NOT_DISCRIMINATING),
    ("not test.", MEASURED, NOT_TESTABLE),
    ("identity", IDENTITY, ""),
    ("published", PUBLISHED, ""),
    ("assumed", ASSUMED, ""),
)


def summary_counts(ledger: dict) -> list[int]:
    """One chapter's claims counted by :data:`SUMMARY_COLUMNS`: measured ones by verdict, the rest by kind."""
    claims = ledger["claims"]
    return [
        sum(c.get("kind") == kind and (not verdict or c["verdict"] == verdict) for c in claims)
        for _, kind, verdict in SUMMARY_COLUMNS
    ]


def summary_figure(ledgers: list[dict], path: Path) -> Path:
    """One bar per chapter: measured claims stacked by verdict (left), the other kinds stacked by kind and
    coloured by their check's verdict (right). Saved as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [d["slug"] for d in ledgers][::-1]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(10, 0.45 * len(ledgers) + 2.6), sharey=True, gridspec_kw={"width_ratios": [3, 2]}
    )
    rows = ledgers[::-1]
    start = np.zeros(len(rows))
    for verdict in MEASURED_VERDICTS:
        counts = np.array([sum(c["kind"] == MEASURED and c["verdict"] == verdict for c in d["claims"]) for d in rows])
        left.barh(names, counts, left=start, color=BADGE_COLOURS[verdict][0], edgecolor="white", label=verdict)
        start += counts
    left.set(title="Measured claims (the only ones that can reproduce)", xlabel="claims")
    # each legend under its own panel, a fixed distance below the axis label (borderaxespad is in font sizes)
    below = {"loc": "upper center", "bbox_to_anchor": (0.5, 0.0), "borderaxespad": 4.0, "fontsize": 8}
    left.legend(ncol=2, **below)
    start = np.zeros(len(rows))
    hatches = {IDENTITY: "", PUBLISHED: "//", ASSUMED: ".."}
    for kind in (IDENTITY, PUBLISHED, ASSUMED):
        for verdict in (CHECK_PASSED, CHECK_FAILED, NOT_TESTABLE):
            counts = np.array([sum(c["kind"] == kind and c["verdict"] == verdict for c in d["claims"]) for d in rows])
            if counts.any():
                right.barh(
                    names,
                    counts,
                    left=start,
                    color=BADGE_COLOURS[verdict][0],
                    hatch=hatches[kind],
                    edgecolor="white",
                    label=f"{kind}: {verdict}",
                )
            start += counts
    right.set(title="Checks that are not reproductions", xlabel="claims")
    if right.get_legend_handles_labels()[0]:
        right.legend(ncol=1, **below)
    for ax in (left, right):
        ax.set_xlim(0, max((patch.get_x() + patch.get_width() for patch in ax.patches), default=0.5) + 0.5)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(axis="y", visible=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def claim_label(ledger: dict, claim: dict) -> str:
    """The MyST label the claims page links a claim to (its ``where``, else the chapter's ``<slug>-claims``)."""
    return claim.get("where") or f"{ledger['slug']}-claims"


def render_claims_page(
    ledgers: list[dict], scale: str, figure: str | None = None, seeds: dict[str, dict] | None = None
) -> str:
    """The MyST page ``book/claims.md``: a figure and a summary table of verdicts by kind, then each chapter's
    claims with verdict badges and a link from each claim to where its chapter checks it. ``figure`` is
    the summary figure's path relative to the page, when one was drawn; ``seeds`` (from
    :func:`llmtheory.sweep.seed_verdicts`) adds each claim's verdict at every swept seed and flags the flips."""
    seeds = seeds or {}
    titles = {c.slug: c.title for c in all_chapters()}
    lines = [
        "# The claims ledger",
        "",
        "Every headline claim of every chapter: what the paper says, what we measured, the kind of evidence,",
        "and the verdict that the ledger derives from a rule written in code. Only *measured* claims — an",
        "experiment whose outcome was open before the run, with a control that the same rule should reject or",
        "a stated reason why the rule can fail — can be reproduced. A measured claim whose control passes the rule",
        "too, or fails it only on a point estimate whose interval spans the threshold while ours does too, gets",
        f"{badge_html(NOT_DISCRIMINATING)}. Identities (true by theorem or construction), arithmetic on",
        "published numbers and consequences of a simulation's assumed parameters are shown as checks and never",
        "counted as reproductions. A point estimate that passes inside an interval that spans the threshold is at",
        f"most {badge_html(QUALITATIVE)}.",
        "",
        "This page is generated by `python -m llmtheory claims` from the ledgers the chapters wrote when they",
        f"last ran at the `{scale}` tier; do not edit it by hand.",
        "",
    ]
    if not ledgers:
        lines += ["No chapter has been run at this tier yet: run `make book` or `python -m llmtheory run`.", ""]
        return "\n".join(lines)
    if figure:
        lines += [
            f"```{{figure}} {figure}",
            ":name: claims-summary-figure",
            ":alt: One bar per chapter: measured claims stacked by verdict, other kinds of evidence beside them.",
            "",
            "Every chapter's claims. Left: measured claims by verdict. Right: identities, arithmetic on published",
            "numbers and assumed consequences, which are checks, not reproductions (hatching tells the kind).",
            "```",
            "",
        ]
    headers = [h for h, _, _ in SUMMARY_COLUMNS]
    lines += [
        "Measured claims by verdict — *repr.* reproduced, *qual.* reproduced only qualitatively, *not repr.* not",
        "reproduced, *no discr.* the rule does not discriminate, *not test.* not testable at this scale — then the",
        "claims of the other kinds, which are checks: identities, arithmetic on published numbers, assumed.",
        "",
    ]
    if seeds:
        headers.append("verdict changes with the seed")
        lines += [
            "Columns marked by seed come from `make robustness`, which runs every chapter at seeds 0, 1 and 2: a",
            "claim whose verdict changes with the seed is flagged ⚠ — at one seed its verdict is a coin toss.",
            "Only runs of today's code count: a chapter changed since its sweep reads *not swept* until the next one.",
            "",
        ]
    lines += ["| chapter | " + " | ".join(headers) + " |", "|---" * (len(headers) + 1) + "|"]
    totals = np.zeros(len(SUMMARY_COLUMNS), dtype=int)
    flipping_total = 0
    for ledger in ledgers:
        counts = summary_counts(ledger)
        totals += counts
        cells = [str(n) for n in counts]
        if seeds:
            chapter_seeds = seeds.get(ledger["slug"], {})
            flipping = sum(verdict_changes(v) for v in chapter_seeds.values())
            flipping_total += flipping
            cells.append(f"⚠ {flipping}" if flipping else ("0" if chapter_seeds else "not swept"))
        lines.append(f"| [{ledger['slug']}](../notebooks/{ledger['slug']}.ipynb) | " + " | ".join(cells) + " |")
    total_cells = [f"**{n}**" for n in totals] + ([f"**{flipping_total}**"] if seeds else [])
    lines += ["| **all chapters** | " + " | ".join(total_cells) + " |", ""]
    for ledger in ledgers:
        slug = ledger["slug"]
        lines += [
            f"## [{titles.get(slug, slug)}](../notebooks/{slug}.ipynb)",
            "",
            f"Tier `{ledger['scale']}`, seed {ledger['seed']}, model `{ledger['model'] or 'none'}`, "
            f"{run_time(ledger)}, run {ledger['finished']}.",
            "",
        ]
        chapter_seeds = seeds.get(slug, {})
        for c in ledger["claims"]:
            checked = f"{{ref}}`checked here <{claim_label(ledger, c)}>`"
            head = f"{badge_html(c['verdict'])} **{_cell(c['claim'])}** — *{c['kind']}* ({checked})"
            if _undecided_failure(c):
                head += " · undecided: the interval spans the threshold"
            if chapter_seeds:
                by_seed = chapter_seeds.get(c["id"], {})
                flag = "⚠ verdict changes with the seed: " if verdict_changes(by_seed) else "by seed: "
                head += f" · {flag}{seed_badges(by_seed) or 'not swept'}"
            lines += [head, ""]
            lines += [
                "- " + " · ".join(f"{label}: {_cell(value)}" for label, value in line) for line in evidence_lines(c)
            ]
            lines.append("")
        lines.append("")
    return "\n".join(lines)
