"""The book's chapters as data, read from ``chapters.yml``: slugs, titles, parts, papers, prerequisites.

The registry lives in the package (``src/llmtheory/chapters.yml``); with ``LLMTHEORY_ROOT`` set, the copy in that
tree is read instead, so a scratch copy of the book can register chapters without touching the original.
:func:`register_chapter` appends a chapter of one's own (``python -m llmtheory new <slug> --title ... --part N``).
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .params import ParameterError
from .paths import repo_root

PARTS: tuple[str, ...] = (
    "Part I. Theory, checked numerically",
    "Part II. When LLM outputs go wrong",
    "Part III. Efficient inference",
    "Part IV. Training and reasoning",
    "Part V. Agents and discovery",
    "Part VI. Culture and society",
)
SLUG = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


@dataclass(frozen=True)
class Chapter:
    slug: str
    part: int  # 1-based index into PARTS
    title: str
    paper: str = ""
    prerequisites: tuple[str, ...] = field(default=())
    objectives: tuple[str, ...] = field(default=())

    @property
    def part_name(self) -> str:
        return PARTS[self.part - 1]

    def notebook(self, root: Path | None = None) -> Path:
        return (root or repo_root()) / "notebooks" / f"{self.slug}.ipynb"

    def declared_parameters(self) -> dict | None:
        """The ``PARAMETERS`` its library module ``llmtheory.<slug>`` declares (see :mod:`llmtheory.params`), or
        ``None`` for a chapter without a module or a declaration (a reader's own chapter: its notebook checks)."""
        try:
            module = importlib.import_module(f"{__package__}.{self.slug}")
        except ModuleNotFoundError as error:
            if error.name != f"{__package__}.{self.slug}":
                raise
            return None
        return getattr(module, "PARAMETERS", None)


def registry_path() -> Path:
    """``chapters.yml`` of the tree named by ``LLMTHEORY_ROOT``, else the package's own."""
    if "LLMTHEORY_ROOT" in os.environ:
        candidate = Path(os.environ["LLMTHEORY_ROOT"]) / "src" / "llmtheory" / "chapters.yml"
        if candidate.is_file():
            return candidate
    return Path(__file__).with_name("chapters.yml")


def all_chapters() -> tuple[Chapter, ...]:
    """Every chapter of the registry, in book order."""
    entries = yaml.safe_load(registry_path().read_text()) or []
    return tuple(
        Chapter(
            slug=e["slug"],
            part=int(e["part"]),
            title=e["title"],
            paper=e.get("paper", ""),
            prerequisites=tuple(e.get("prerequisites", [])),
            objectives=tuple(e.get("objectives", [])),
        )
        for e in entries
    )


def chapter(slug: str) -> Chapter:
    """The chapter named ``slug``; a ``KeyError`` lists every slug when it is unknown."""
    by_slug = {c.slug: c for c in all_chapters()}
    try:
        return by_slug[slug]
    except KeyError:
        raise KeyError(f"unknown chapter {slug!r}; the chapters are: {', '.join(by_slug)}") from None


def written_chapters(root: Path | None = None) -> list[Chapter]:
    """Chapters whose notebook exists, in book order."""
    return [c for c in all_chapters() if c.notebook(root).is_file()]


def register_chapter(slug: str, *, title: str, part: int, paper: str, prerequisites=(), objectives=()) -> Chapter:
    """Append a chapter to the registry (a student's reproduction project, say) and return it."""
    if not SLUG.match(slug):
        raise ParameterError(f"slug {slug!r} is not valid: lower-case letters, digits and _, starting with a letter")
    if any(c.slug == slug for c in all_chapters()):
        raise ParameterError(f"chapter {slug!r} is already registered")
    if not 1 <= int(part) <= len(PARTS):
        raise ParameterError(f"--part {part!r} is not valid; choose 1 to {len(PARTS)}: " + "; ".join(PARTS))
    if not title.strip() or not paper.strip():
        raise ParameterError("--title and --paper must not be empty (the paper: authors, venue, link)")
    entry = {
        "slug": slug,
        "part": int(part),
        "title": title.strip(),
        "paper": paper.strip(),
        "prerequisites": list(prerequisites),
        "objectives": list(objectives),
    }
    block = yaml.safe_dump([entry], sort_keys=False, allow_unicode=True, width=110)
    with registry_path().open("a") as f:
        f.write(block)
    return chapter(slug)
