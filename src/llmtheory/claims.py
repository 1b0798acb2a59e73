"""The claims ledger: each headline claim of a paper, the paper's number, ours, and a verdict from a rule.

In a chapter::

    ledger = Ledger("spectral_ball", scale=SCALE, seed=SEED)
    ledger.check(
        "tall-min-sv",
        claim="all singular values converge to 1 as the dimensions grow",
        paper="σ_min → 1",
        ours=f"E σ_min = {m:.3f} at m/n = 64",
        rule="E σ_min ≥ 0.9 at the largest aspect ratio",
        verdict=verdict(holds=m >= 0.9),
    )
    ledger.report()   # writes _build/claims/<scale>/<slug>.json and shows the table

The verdict is never typed by hand: :func:`verdict` turns the outcome of a comparison into one of
:data:`VERDICTS`, and ``rule`` states that comparison in words for the reader.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pandas as pd

from .chapters import CHAPTERS
from .params import ParameterError, check_scale
from .paths import claims_dir

REPRODUCED = "reproduced"
QUALITATIVE = "reproduced (qualitatively)"
NOT_REPRODUCED = "not reproduced"
NOT_TESTABLE = "not testable at this scale"
VERDICTS: tuple[str, ...] = (REPRODUCED, QUALITATIVE, NOT_REPRODUCED, NOT_TESTABLE)

_IMPORTED_AT = time.perf_counter()  # a chapter imports this module in its first cells: its run starts here


def verdict(holds: bool, *, qualitatively: bool = False, testable: bool = True) -> str:
    """The verdict of a rule: ``holds`` (the quantitative rule passed), else ``qualitatively`` (the
    direction or shape of the effect holds), else not reproduced; ``testable=False`` overrides both."""
    if not testable:
        return NOT_TESTABLE
    if bool(holds):
        return REPRODUCED
    if bool(qualitatively):
        return QUALITATIVE
    return NOT_REPRODUCED


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    paper: str
    ours: str
    rule: str
    verdict: str


class Ledger:
    """The claims of one chapter run at one scale, seed and model."""

    def __init__(self, slug: str, *, scale: str, seed: int, model: str | None = None):
        self.slug = slug
        self.scale = check_scale(scale)
        self.seed = seed
        self.model = model
        self.claims: list[Claim] = []

    def check(self, id: str, *, claim: str, paper: str, ours: str, rule: str, verdict: str) -> Claim:
        """Record one claim. ``verdict`` must come from :func:`verdict`; ids are unique."""
        if verdict not in VERDICTS:
            raise ParameterError(f"verdict={verdict!r} is not valid; choose one of: {', '.join(VERDICTS)}")
        if any(c.id == id for c in self.claims):
            raise ParameterError(f"claim id {id!r} is already in the {self.slug} ledger")
        entry = Claim(id=id, claim=claim, paper=paper, ours=ours, rule=rule, verdict=verdict)
        self.claims.append(entry)
        return entry

    def table(self) -> pd.DataFrame:
        """The ledger as a table, one row per claim."""
        columns = ["id", "claim", "paper", "ours", "rule", "verdict"]
        return pd.DataFrame([asdict(c) for c in self.claims], columns=columns).set_index("id")

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

    def report(self):
        """Save the ledger and return its table styled for display (verdicts coloured)."""
        self.save()
        colours = {
            REPRODUCED: "#d9f0d3",
            QUALITATIVE: "#fff2cc",
            NOT_REPRODUCED: "#f4cccc",
            NOT_TESTABLE: "#e0e0e0",
        }
        return self.table().style.map(lambda v: f"background-color: {colours.get(v, '')}", subset=["verdict"])

    def _repr_html_(self) -> str:
        return self.table().to_html()


def load_ledgers(scale: str, folder: Path | None = None) -> list[dict]:
    """Every saved ledger of ``scale``, in book order."""
    folder = Path(folder) if folder is not None else claims_dir(check_scale(scale))
    order = {c.slug: i for i, c in enumerate(CHAPTERS)}
    found = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return sorted(found, key=lambda d: order.get(d["slug"], len(order)))


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_claims_page(ledgers: list[dict], scale: str) -> str:
    """The MyST page ``book/claims.md``: a summary of verdicts, then one table per chapter."""
    titles = {c.slug: c.title for c in CHAPTERS}
    lines = [
        "# The claims ledger",
        "",
        "Every headline claim of every chapter: what the paper says, what we measured, and the verdict of a",
        "rule written in code (the `rule` column). This page is generated by `python -m llmtheory claims`",
        f"from the ledgers the chapters wrote when they last ran at the `{scale}` tier; do not edit it by hand.",
        "",
    ]
    if not ledgers:
        lines += [
            "No chapter has been run at this tier yet: run `make book` or `python -m llmtheory run`.",
            "",
        ]
        return "\n".join(lines)
    counts = {v: 0 for v in VERDICTS}
    per_chapter = []
    for ledger in ledgers:
        row = {v: 0 for v in VERDICTS}
        for claim in ledger["claims"]:
            counts[claim["verdict"]] += 1
            row[claim["verdict"]] += 1
        per_chapter.append((ledger["slug"], row))
    lines += ["| chapter | " + " | ".join(VERDICTS) + " |", "|---" * (len(VERDICTS) + 1) + "|"]
    lines += [
        f"| [{titles.get(slug, slug)}](../notebooks/{slug}.ipynb) | " + " | ".join(str(row[v]) for v in VERDICTS) + " |"
        for slug, row in per_chapter
    ]
    lines += ["| **all chapters** | " + " | ".join(f"**{counts[v]}**" for v in VERDICTS) + " |", ""]
    for ledger in ledgers:
        slug = ledger["slug"]
        lines += [
            f"## [{titles.get(slug, slug)}](../notebooks/{slug}.ipynb)",
            "",
            f"Tier `{ledger['scale']}`, seed {ledger['seed']}, model `{ledger['model'] or 'none'}`, "
            f"{ledger['wall_time_s']:.0f} s, run {ledger['finished']}.",
            "",
            "| claim | paper | ours | rule | verdict |",
            "|---|---|---|---|---|",
        ]
        lines += [
            "| " + " | ".join(_cell(c[k]) for k in ("claim", "paper", "ours", "rule", "verdict")) + " |"
            for c in ledger["claims"]
        ]
        lines.append("")
    return "\n".join(lines)
