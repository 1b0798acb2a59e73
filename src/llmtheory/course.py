"""A 12-week course built from the chapters: an order that respects prerequisites, objectives, runtimes and
assignments, written as the book page ``book/course.md`` by ``python -m llmtheory course``.

Everything comes from data the book already has: prerequisites and objectives from ``chapters.yml``, runtimes
from the ledgers of the last runs at each tier (``wall_time_s``), exercises from the notebooks (the convention
of :mod:`llmtheory.teaching`), parameters from each notebook's ``parameters`` cell, and the claims worth
re-examining from the book-tier ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat

from .chapters import PARTS, Chapter, all_chapters
from .claims import NOT_DISCRIMINATING, NOT_REPRODUCED, QUALITATIVE, load_ledgers
from .teaching import checked_exercises

WEEKS = 12
PROJECT_WEEK = "Reproduction projects: each student registers a paper of their choice and presents its ledger"


@dataclass(frozen=True)
class Week:
    number: int
    chapters: tuple[Chapter, ...]


def teaching_order(chapters: tuple[Chapter, ...]) -> list[Chapter]:
    """Chapters in an order where each comes after the chapters it lists as prerequisites (Kahn's algorithm,
    ties broken by book order). A cycle in the registry is an error that names the chapters in it."""
    slugs = {c.slug for c in chapters}
    needs = {c.slug: {p for p in c.prerequisites if p in slugs} for c in chapters}
    order, done = [], set()
    while len(order) < len(chapters):
        ready = [c for c in chapters if c.slug not in done and needs[c.slug] <= done]
        if not ready:
            raise ValueError(f"the prerequisites of {sorted(slugs - done)} form a cycle in chapters.yml")
        order.append(ready[0])
        done.add(ready[0].slug)
    return order


def syllabus(chapters: tuple[Chapter, ...], weeks: int = WEEKS) -> list[Week]:
    """``weeks − 1`` weeks of chapters and a last week for projects. Each week takes the first chapter whose
    prerequisites are done, and a second one (also ready before the week starts, so never one that needs the
    first) only while more chapters remain than weeks."""
    order = teaching_order(chapters)
    slugs = {c.slug for c in chapters}
    needs = {c.slug: {p for p in c.prerequisites if p in slugs} for c in chapters}
    teaching_weeks = weeks - 1
    plan: list[tuple[Chapter, ...]] = []
    done: set[str] = set()
    remaining = list(order)
    while remaining:
        ready = [c for c in remaining if needs[c.slug] <= done]
        weeks_left = teaching_weeks - len(plan)
        week = tuple(ready[:2]) if len(remaining) > weeks_left and len(ready) > 1 else (ready[0],)
        plan.append(week)
        done |= {c.slug for c in week}
        remaining = [c for c in remaining if c.slug not in done]
    if len(plan) > teaching_weeks:
        raise ValueError(f"{len(order)} chapters with these prerequisites do not fit in {teaching_weeks} weeks")
    return [Week(i + 1, group) for i, group in enumerate(plan)]


def layered_layout(graph) -> dict[str, tuple[float, float]]:
    """Nodes in rows by prerequisite depth, each row ordered by the mean position of its nodes' prerequisites
    (the barycentre heuristic, a few sweeps), so that arrows cross less."""
    import networkx as nx

    rows = [sorted(nodes) for nodes in nx.topological_generations(graph)]
    x: dict[str, float] = {}
    for _ in range(4):
        for depth, row in enumerate(rows):

            def barycentre(node, depth=depth):
                near = [x[p] for p in graph.predecessors(node) if p in x] if depth else []
                near += [x[s] for s in graph.successors(node) if s in x] if not near else []
                return sum(near) / len(near) if near else x.get(node, 0.0)

            row.sort(key=barycentre)
            width = max(len(r) for r in rows)
            for i, node in enumerate(row):
                x[node] = (i - (len(row) - 1) / 2) * width / max(len(row), 1)
    return {node: (x[node], -float(depth)) for depth, row in enumerate(rows) for node in row}


def prerequisite_figure(chapters: tuple[Chapter, ...], path: Path) -> Path:
    """The prerequisite graph, read left to right: background topics (grey) in the first column, then each
    chapter (coloured by part) one column after its deepest prerequisite; each name in its own box with
    horizontal text, arrows from what is needed first. Drawn 8 in wide with 9 pt text, the book's column width."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    from .plotting import PALETTE

    graph = nx.DiGraph()
    slugs = {c.slug for c in chapters}
    for c in chapters:
        graph.add_node(c.slug, part=c.part)
        for p in c.prerequisites:
            graph.add_node(p, part=0 if p not in slugs else graph.nodes.get(p, {}).get("part", 0))
            graph.add_edge(p, c.slug)
    layered = layered_layout(graph)  # (position in its row, -depth): drawn with depth as the column
    rows = max(sum(1 for v in layered.values() if v[1] == y) for y in {v[1] for v in layered.values()})
    fig, ax = plt.subplots(figsize=(8, 0.42 * rows + 1.6))
    boxes = {}
    for node, (along, depth) in layered.items():
        part = graph.nodes[node].get("part", 0)
        colour = "#DDDDDD" if part == 0 else PALETTE[part - 1]
        text_colour = "black" if part == 0 or part in (4, 6) else "white"
        label = textwrap.fill(node, 16) if part == 0 else node
        boxes[node] = ax.text(
            -depth, -along, label, fontsize=9, ha="center", va="center", color=text_colour, zorder=3,
            bbox={"boxstyle": "round,pad=0.3", "facecolor": colour, "edgecolor": "#333333", "linewidth": 0.6},
        )  # fmt: skip
    for a, b in graph.edges:
        ax.annotate(
            "",
            xy=(0, 0.5),
            xycoords=boxes[b],
            xytext=(1, 0.5),
            textcoords=boxes[a],
            arrowprops={
                "arrowstyle": "->",
                "color": "#888888",
                "lw": 0.7,
                "shrinkA": 1,
                "shrinkB": 1,
                "connectionstyle": "arc3,rad=0.05",
            },
            zorder=1,
        )  # fmt: skip  (arrows that pass a column go under its boxes)
    xs = [-v[1] for v in layered.values()]
    ys = [-v[0] for v in layered.values()]
    ax.set_xlim(min(xs) - 0.55, max(xs) + 0.55)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    handles = [plt.Line2D([], [], marker="s", ls="", color=PALETTE[i], label=part) for i, part in enumerate(PARTS)]
    handles.append(plt.Line2D([], [], marker="s", ls="", color="#DDDDDD", label="background topic"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=9, frameon=False)
    ax.set_title("What each chapter needs first (arrows from a prerequisite to the chapter)", fontsize=10)
    ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _runtimes(smoke: dict[str, dict], book: dict[str, dict], slug: str) -> str:
    """'smoke 12 s · book 206 s', or only the tiers that have a ledger here ('book 206 s'), or '—'."""
    times = [
        f"{tier} {ledgers[slug]['wall_time_s']:.0f} s"
        for tier, ledgers in (("smoke", smoke), ("book", book))
        if slug in ledgers
    ]
    return " · ".join(times) or "—"


def _assignment(c: Chapter, root: Path, book: dict[str, dict]) -> str:
    path = c.notebook(root)
    if not path.is_file():
        return "chapter not written yet: a candidate for a reproduction project"
    notebook = nbformat.read(path, as_version=4)
    exercises = [f"{{ref}}`{e.label} <{e.label}>`" for e in checked_exercises(notebook)]
    cell = next((x.source for x in notebook.cells if "parameters" in x.metadata.get("tags", [])), "")
    knobs = [line.split("=")[0].strip() for line in cell.splitlines() if "=" in line and not line.startswith("#")]
    knobs = [k for k in knobs if k not in ("SCALE", "SEED")][:3]
    weak = [
        x["id"]
        for x in book.get(c.slug, {}).get("claims", [])
        if x["verdict"] in (NOT_REPRODUCED, QUALITATIVE, NOT_DISCRIMINATING)
    ][:3]
    parts = [
        f"auto-checked {', '.join(exercises)}" if exercises else "",
        f"vary `{'`, `'.join(knobs)}`" if knobs else "",
    ]
    parts.append(f"re-examine `{'`, `'.join(weak)}` at seeds 0–2 (`make robustness`)" if weak else "")
    return "; ".join(p for p in parts if p)


def render_course_page(root: Path, figure: str | None = None) -> str:
    """The MyST page ``book/course.md``."""
    chapters = all_chapters()
    book = {d["slug"]: d for d in load_ledgers("book")}
    smoke = {d["slug"]: d for d in load_ledgers("smoke")}
    written = {c.slug for c in chapters if c.notebook(root).is_file()}
    lines = [
        "# A course from this book",
        "",
        f"A {WEEKS}-week syllabus generated by `python -m llmtheory course` from what each chapter declares in",
        "`src/llmtheory/chapters.yml` (its prerequisites and objectives), from the notebooks (their auto-checked",
        "exercises and parameters) and from the ledgers of the last runs (runtimes and the claims worth a second",
        "look). Chapters come in an order that respects their prerequisites, one or two a week; the last week is",
        f"for reproduction projects. {len(written)} of the {len(chapters)} chapters are written; the others are",
        "listed where they will go and make good projects.",
        "",
    ]
    if figure:
        lines += [f"```{{figure}} {figure}", ":name: course-prerequisites", "",
                  "Prerequisites declared by the chapters; grey nodes are background topics.", "```", ""]  # fmt: skip
    weeks = syllabus(chapters)

    def linked(c: Chapter) -> str:
        return f"[{c.title}](../notebooks/{c.slug}.ipynb)" if c.slug in written else f"{c.title} *(planned)*"

    lines += ["## The weeks at a glance", "", "| week | chapters | runtime |", "|---|---|---|"]
    for week in weeks:
        names = "<br>".join(linked(c) for c in week.chapters)
        runtimes = "<br>".join(_runtimes(smoke, book, c.slug) for c in week.chapters)
        lines.append(f"| {week.number} | {names} | {runtimes} |")
    lines += [f"| {WEEKS} | {PROJECT_WEEK} | — |", ""]
    for week in weeks:
        lines += [f"## Week {week.number}", ""]
        for c in week.chapters:
            lines += [f"**{linked(c)}**", ""]
            lines += [f"- Objective: {o}" for o in c.objectives]
            needs = ", ".join(c.prerequisites) or "nothing beyond the book's introduction"
            lines += [f"- Needs: {needs}", f"- Assignment: {_assignment(c, root, book)}", ""]
    lines += [
        f"## Week {WEEKS}: reproduction projects",
        "",
        "- Objective: register, scaffold and run a chapter of one's own (below)",
        "- Objective: defend each verdict of its ledger: its kind of evidence, its control, its interval",
        "",
        "Runtimes are the `wall_time_s` of the last ledger at each tier on the book's 2-core machine; a tier without",
        "a ledger here is left out (`python -m llmtheory run <slug> --scale smoke` records the smoke one).",
        "",
        "## Grading exercises",
        "",
        "`python -m llmtheory student` writes student versions of the chapters to `_build/student/`: solutions",
        "removed, each auto-checked exercise's answer replaced by a stub that raises `NotImplementedError`, checkers",
        "kept. A student fills in the stubs; `python -m llmtheory grade <notebook>` runs it at the smoke tier and",
        "prints exercise, checker result and points, and exits with 0 only when every checked exercise passes.",
        "",
        "## The reproduction project",
        "",
        "The commonest course project is *reproduce a paper*. A student registers the paper and gets a chapter with",
        "the book's anatomy, a ledger and a test:",
        "",
        "```bash",
        "python -m llmtheory new my_paper --part 2 \\",
        "    --title 'The paper title' \\",
        "    --paper 'Authors, venue, arXiv id' \\",
        "    --prerequisite grad_detect \\",
        "    --objective 'what a reader learns'",
        "# chapters.yml gains the entry, notebooks/my_paper.ipynb",
        "# is written and _toc.yml lists it; then",
        "python -m llmtheory run my_paper --scale smoke",
        "# and its ledger is on the claims page",
        "```",
        "",
        "Then: the method in `src/llmtheory/my_paper.py` with tests in `tests/test_my_paper.py`, every claim in the",
        "ledger with its kind of evidence and a control, and `make page SLUG=my_paper` to read the result.",
        "",
    ]
    return "\n".join(lines)
