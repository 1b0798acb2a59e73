"""The chapter anatomy as a skeleton notebook, and the Colab setup cell every chapter opens with.

``python -m llmtheory new <slug>`` writes ``notebooks/<slug>.ipynb`` with the sections of DESIGN.md in
order, the setup cell, a ``parameters`` cell and its validation cell, ready to fill in.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import yaml

from .chapters import PARTS, all_chapters, chapter
from .paths import repo_root

COLAB_CLONE_DIR = "/content/llm-theory-executed"

SETUP_CELL_TEMPLATE = """\
# Colab only: clone the book's repository and install its library. Elsewhere this cell does nothing.
import os
import subprocess
import sys

REPOSITORY, CLONE = "{repo_url}", "{clone_dir}"
if "google.colab" in sys.modules:
    if not os.path.isdir(CLONE):
        subprocess.run(["git", "clone", "--depth", "1", REPOSITORY, CLONE], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", CLONE], check=True)
    sys.path.insert(0, f"{{CLONE}}/src")
    os.chdir(f"{{CLONE}}/notebooks")"""


def repository_url(root: Path | None = None) -> str:
    """The repository address, set once in ``_config.yml``."""
    config = yaml.safe_load(((root or repo_root()) / "_config.yml").read_text())
    return config["repository"]["url"]


def colab_setup_cell(repo_url: str) -> str:
    """The exact source of a chapter's first code cell."""
    return SETUP_CELL_TEMPLATE.format(repo_url=repo_url, clone_dir=COLAB_CLONE_DIR)


def _md(text: str, **meta) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text, metadata=meta)


def _code(text: str, tags: list[str] | None = None) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(text, metadata={"tags": tags} if tags else {})


def chapter_skeleton(slug: str, repo_url: str) -> nbformat.NotebookNode:
    """A notebook with every section of the chapter anatomy, in order, for chapter ``slug``."""
    info = chapter(slug)
    colab = (
        f"https://colab.research.google.com/github/{repo_url.split('github.com/')[-1]}/blob/main/notebooks/{slug}.ipynb"
    )
    cells = [
        _md(
            f"# {info.title}\n\n"
            f"[Open in Colab ↗]({colab})\n\n"  # a text link: a remote badge image breaks offline
            "**Paper.** TODO authors, venue, link.\n\n"
            "**You will learn** TODO.\n\n**Prerequisites** TODO.\n\n"
            "**Runtime** (2-core laptop): smoke TODO s · book TODO s."
        ),
        _code(colab_setup_cell(repo_url), tags=["hide-input"]),
        _code(
            "from llmtheory.claims import MEASURED, Control, Estimate, Ledger, at_least\n"
            "from llmtheory.display import show_source, versions\n"
            "from llmtheory.params import Int, by_scale, check_parameters\n"
            "from llmtheory.plotting import show, use_book_style\n\n"
            "use_book_style()\nprint(versions('numpy', 'scipy'))"
        ),
        _code('SCALE = "book"  # "smoke" | "book" | "full"\nSEED = 0', tags=["parameters"]),
        _code(
            "# What each parameter besides SCALE and SEED accepts (move it to your library module as PARAMETERS,\n"
            '# where the command line finds it too), e.g. PARAMETERS = {"N_ITEMS": Int(1, 100_000)}\n'
            "PARAMETERS = {}\n"
            "check_parameters(globals(), PARAMETERS)"
        ),
        _md("## The question\n\nTODO"),
        _md("## The method\n\nTODO: labelled equations, then the library code with `show_source`."),
        _md("## The experiment\n\nTODO"),
        _md("## Results\n\nTODO: figures first, then tables."),
        _md(
            f"({slug}-claims)=\n## Claims checked\n\n"
            "TODO: the rules, fixed before the run. Every claim says its kind of evidence: *measured* (with a\n"
            "control that the same rule should reject, or a reason why the rule can fail), *identity*,\n"
            "*published* (arithmetic on published numbers) or *assumed*; only measured claims can reproduce."
        ),
        _code(
            f'ledger = Ledger("{slug}", scale=SCALE, seed=SEED)\n'
            '# ledger.check("claim-id", claim="the paper\'s claim", paper="its number", ours=f"{estimate}",\n'
            '#               rule="ours ≥ 0.8 (95% interval)", kind=MEASURED, holds=at_least(estimate, 0.8),\n'
            '#               control=Control("shuffled labels", ours=f"{control}", holds=at_least(control, 0.8)))\n'
            "ledger.report()"
        ),
        _md("**What the run found.** Produced from the ledger, never typed: the explanations of *why* go in `why`."),
        _code("ledger.findings(why={})  # {claim id: text, or {verdict: text}}"),
        _md("## Scope and limits\n\nTODO: what this toy run cannot tell you; how to run at full scale."),
        _md("## Exercises\n\nTODO: 2 to 4 exercises, each followed by its solution."),
        _md("## References\n\n```{bibliography}\n:filter: docname in docnames\n```"),
    ]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def write_skeleton(slug: str, root: Path | None = None) -> Path:
    """Write ``notebooks/<slug>.ipynb``; refuses to overwrite an existing chapter."""
    root = root or repo_root()
    path = root / "notebooks" / f"{slug}.ipynb"
    if path.exists():
        raise FileExistsError(f"{path} exists; delete it first to start the chapter again")
    nbformat.write(chapter_skeleton(slug, repository_url(root)), path)
    return path


def add_to_toc(slug: str, root: Path | None = None) -> bool:
    """List ``notebooks/<slug>`` in ``_toc.yml`` under its part (adding the part, in book order, if it has no
    chapter yet); returns False when it is listed already. The file's leading comments are kept."""
    root = root or repo_root()
    path = root / "_toc.yml"
    text = path.read_text()
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    toc = yaml.safe_load(text)
    entry = f"notebooks/{slug}"
    if any(item.get("file") == entry for part in toc["parts"] for item in part["chapters"]):
        return False
    caption = chapter(slug).part_name
    parts = toc["parts"]
    if not any(p["caption"] == caption for p in parts):
        # book parts by their order; what comes before them ("Getting started") first, back matter last
        def rank(index: int) -> int:
            name = parts[index]["caption"]
            return PARTS.index(name) if name in PARTS else (-1 if index == 0 else len(PARTS))

        position = next((i for i in range(len(parts)) if rank(i) > PARTS.index(caption)), len(parts))
        parts.insert(position, {"caption": caption, "chapters": []})
    chapters = next(p for p in parts if p["caption"] == caption)["chapters"]
    chapters.append({"file": entry})
    order = {f"notebooks/{c.slug}": i for i, c in enumerate(all_chapters())}  # the registry's (book) order
    chapters.sort(key=lambda item: order.get(item.get("file"), len(order)))
    path.write_text(header + yaml.dump(toc, Dumper=_TocDumper, sort_keys=False, allow_unicode=True))
    return True


class _TocDumper(yaml.SafeDumper):
    """Writes lists indented under their key, as ``_toc.yml`` is written by hand (PyYAML's default is not)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)
