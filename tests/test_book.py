"""The book's hygiene, from its files: table of contents, notebooks, setup cells, data manifest."""

import ast
import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from book_files import ROOT, config, toc, toc_files, toc_notebooks

from llmtheory.chapters import PARTS, all_chapters, chapter
from llmtheory.manifest import manifest_differences
from llmtheory.params import check_values
from llmtheory.scaffold import colab_setup_cell, repository_url

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


GENERATED_PAGES = {"book/claims", "book/course"}  # written by `python -m llmtheory claims|course` (make book)


def test_every_toc_entry_exists_and_every_notebook_is_listed():
    for entry in set(toc_files()) - GENERATED_PAGES:
        assert (ROOT / f"{entry}.md").is_file() or (ROOT / f"{entry}.ipynb").is_file(), entry
    assert sorted(toc_notebooks()) == NOTEBOOKS


def test_parts_follow_the_book_order():
    captions = [part["caption"] for part in toc()["parts"]]
    chapter_parts = [c for c in captions if c.startswith("Part ")]
    assert chapter_parts == [p for p in PARTS if p in chapter_parts]
    for part in toc()["parts"]:
        for entry in part["chapters"]:
            if entry["file"].startswith("notebooks/"):
                assert chapter(entry["file"].split("/")[1]).part_name == part["caption"]
    registry = [c.slug for c in all_chapters()]
    listed = [path.stem for path in toc_notebooks()]
    assert listed == sorted(listed, key=registry.index), "chapters are listed in the registry's order"


def test_no_work_is_in_two_bibliography_entries():
    # two entries of one work (each chapter's own key) give Sphinx a duplicate author-year label, a warning that
    # fails `make book` but no unit test; a work cited by two chapters belongs in book/references.bib, once
    titles: dict[str, list[str]] = {}
    for bib in config()["bibtex_bibfiles"]:
        text = (ROOT / bib).read_text()
        for key, title in re.findall(r"@\w+\{([^,]+),.*?\btitle\s*=\s*\{(.+?)\},?\n", text, flags=re.S):
            titles.setdefault(re.sub(r"\W+", " ", title).strip().lower(), []).append(key)
    repeated = {title: keys for title, keys in titles.items() if len(keys) > 1}
    assert not repeated, f"one entry per work (move it to book/references.bib): {repeated}"


def test_bibliography_files_exist():
    for bib in config()["bibtex_bibfiles"]:
        assert (ROOT / bib).is_file(), bib
    listed = set(config()["bibtex_bibfiles"])
    unlisted = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "book" / "bib").glob("*.bib")
        if str(p.relative_to(ROOT)) not in listed
    ]
    assert not unlisted, f"add to _config.yml's bibtex_bibfiles: {unlisted}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]


MAX_STATEMENTS = 15
"""A story cell's most statements (every ``ast.stmt``, nested ones too): loops and table assembly go to the library."""


def story_cells(path: Path) -> list[tuple[int, str]]:
    """The code cells held to :data:`MAX_STATEMENTS`, with their index among all cells: all but the Colab setup
    cell, the imports, the parameters cell and the one after it (validation and the tier's sizes in one block), and
    cells that record ledger rows."""
    cells = nbformat.read(path, as_version=4).cells
    tagged = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    code = [(i, c.source) for i, c in enumerate(cells) if c.cell_type == "code"]
    return [
        (i, source)
        for i, source in code[2:]
        if i not in (tagged, tagged + 1) and "ledger.check(" not in source and "Ledger(" not in source
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cells_read_as_a_story(path):
    long = {
        i: n
        for i, source in story_cells(path)
        if (n := sum(isinstance(node, ast.stmt) for node in ast.walk(ast.parse(source)))) > MAX_STATEMENTS
    }
    assert not long, f"cells with more than {MAX_STATEMENTS} statements (index: count): {long}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_cell_shows_a_claims_repr(path):
    # a cell whose last statement is ledger.check(...) would print the returned Claim's dataclass repr to readers
    shown = []
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code" or cell.source.rstrip().endswith(";"):
            continue
        body = ast.parse(cell.source).body
        last = body[-1] if body else None
        if isinstance(last, ast.Expr) and isinstance(last.value, ast.Call):
            if isinstance(last.value.func, ast.Attribute) and last.value.func.attr == "check":
                shown.append(i)
    assert not shown, f"cells ending in a bare ledger.check(...) (end them with ';'): {shown}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_chapter_that_imports_torch_runs_it_on_one_thread(path):
    # torch's default of one thread per core made sampling 14x costlier on the shared 2-core machine (bechdel's book
    # tier went from 111 to 367 s CPU); the chapters' tiny models gain nothing from more threads
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        nodes = ast.walk(ast.parse(cell.source))
        imports = {alias.name for node in nodes if isinstance(node, ast.Import) for alias in node.names}
        if "torch" in imports:
            assert "torch.set_num_threads(1)" in cell.source, "the cell that imports torch sets one thread"
            return


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_its_library_tests_and_parameters(path):
    slug = path.stem
    assert (ROOT / "src" / "llmtheory" / f"{slug}.py").is_file() or (ROOT / "src" / "llmtheory" / slug).is_dir()
    assert (ROOT / "tests" / f"test_{slug}.py").is_file()
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    params = code[tagged[0]].source
    assert 'SCALE = "book"' in params and "SEED = " in params
    validation = code[tagged[0] + 1].source
    assert "check_parameters(globals(), " in validation, "the cell after the parameters validates them in one line"
    text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
    assert "Ledger(" in text and "ledger.report()" in text
    assert ":::{exercise}" in text and ":::{solution}" in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_library_declares_every_parameter_and_accepts_the_defaults(path):
    """``llmtheory.<slug>.PARAMETERS`` names exactly the parameters cell's names (besides SCALE and SEED), so that
    none goes unchecked, and accepts each default value."""
    found = chapter(path.stem).declared_parameters()
    assert found is not None, f"declare PARAMETERS in llmtheory.{path.stem} (see llmtheory.params)"
    cell = next(c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    defaults = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(cell.source).body}
    assert set(found) == set(defaults) - {"SCALE", "SEED"}
    check_values(defaults, found)  # raises ParameterError naming a default that its declaration refuses


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_colab_setup_cell(path):
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert code[0].source == colab_setup_cell(repository_url(ROOT))


def _run_setup_cell(monkeypatch, in_colab: bool) -> list:
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(("run", a[0])))
    monkeypatch.setattr(os, "chdir", lambda d: calls.append(("chdir", d)))
    monkeypatch.setattr(os.path, "isdir", lambda d: False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", object())
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(colab_setup_cell(repository_url(ROOT)), {})
    return calls


def test_setup_cell_does_nothing_outside_colab(monkeypatch):
    path_before = list(sys.path)
    assert _run_setup_cell(monkeypatch, in_colab=False) == []
    assert sys.path == path_before


def test_setup_cell_clones_and_installs_in_colab(monkeypatch):
    calls = _run_setup_cell(monkeypatch, in_colab=True)
    assert calls[0] == ("run", ["git", "clone", "--depth", "1", repository_url(ROOT), "/content/llm-theory-executed"])
    assert calls[1][1][-2:] == ["-e", "/content/llm-theory-executed"]
    assert calls[2] == ("chdir", "/content/llm-theory-executed/notebooks")


def test_launch_buttons_point_at_colab():
    assert config()["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert config()["repository"]["url"].startswith("https://github.com/")


def test_data_manifest_matches_the_files():
    assert manifest_differences(ROOT / "data") == []


# A verdict stated in prose can drift from what the code measured: outcomes reach the text only through the
# ledger (`ledger.findings()`, glue, or text chosen in code by verdict). Ordinary words such as "holds" stay free.
VERDICT_WORDS = re.compile(
    r"\b(reproduced|reproduces|(did|does|do) not reproduce|fails? to reproduce|not reproducible)\b", re.IGNORECASE
)


def test_the_verdict_vocabulary_catches_typed_outcomes():
    typed = ["The rate claim reproduced.", "It reproduces the paper", "we did not reproduce it", "Not reproduced."]
    free = ["The identity holds to rounding error.", "To reproduce the run, set SEED.", "a reproduction of"]
    assert all(VERDICT_WORDS.search(t) for t in typed)
    assert not any(VERDICT_WORDS.search(t) for t in free)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_outcome_is_typed_in_a_chapters_prose(path):
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            found = VERDICT_WORDS.search(cell.source)
            assert found is None, (
                f"{path.name}: the prose states a verdict ({found.group(0)!r} in {cell.source[:60]!r}...); "
                "produce it from the ledger (ledger.findings(), glue, or text chosen in code by verdict)"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_findings_come_from_the_ledger_and_claims_have_a_target(path):
    cells = nbformat.read(path, as_version=4).cells
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    prose = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert ".findings(" in code, "the chapter shows its outcomes with ledger.findings()"
    assert f"({path.stem}-claims)=" in prose, f"the label ({path.stem}-claims)= the claims page links to"
    assert "kind=" in code, "every ledger.check says what kind of evidence it is"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_remote_images_an_offline_reader_would_see_broken(path):
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown":
            assert not re.search(r"!\[[^\]]*\]\(https?://", cell.source), f"remote image in {cell.source[:80]!r}"
            assert not re.search(r"<img[^>]+src=[\"']https?://", cell.source), f"remote image in {cell.source[:80]!r}"


# Equations and code point at each other (issue 28): a chapter labels its display equations `$$ ... $$ (<slug>-eq-x)`
# or ```{math} with `:label: <slug>-eq-x`; the library function (or the notebook cell) that computes an equation
# cites its label verbatim, and no citation names an equation that does not exist.
EQUATION_LABELS = (
    re.compile(r"\$\$[ \t]*\(([^()\s]+)\)[ \t]*$", re.MULTILINE),
    re.compile(r"```\{math\}[^`]*?^:label:[ \t]*(\S+)", re.MULTILINE | re.DOTALL),
)


def equation_labels(markdown: str) -> list[str]:
    return [label for pattern in EQUATION_LABELS for label in pattern.findall(markdown)]


def equation_citations(text: str, slug: str) -> set[str]:
    return set(re.findall(rf"(?<![\w-]){re.escape(slug)}-eq-[a-z0-9-]*[a-z0-9]", text))


@functools.cache
def library_text() -> str:
    return "\n".join(path.read_text() for path in sorted((ROOT / "src" / "llmtheory").rglob("*.py")))


@functools.cache
def notebook_text(path) -> tuple[str, str]:
    """(markdown, code) of a notebook, each cell's source joined."""
    cells = nbformat.read(path, as_version=4).cells
    return tuple("\n".join(c.source for c in cells if c.cell_type == kind) for kind in ("markdown", "code"))


def test_equation_labels_and_citations_are_recognised():
    markdown = "$$\nx = (a)\n$$ (demo-eq-sum)\n\n```{math}\n:label: demo-eq-max\ny\n```\n$$ (a + b)^2 $$\n"
    assert equation_labels(markdown) == ["demo-eq-sum", "demo-eq-max"]
    cited = "Eq. ``demo-eq-sum``: ... {eq}`demo-eq-max-2`, eq. (demo-eq-a1); not xdemo-eq-b nor demo-eq-"
    assert equation_citations(cited, "demo") == {"demo-eq-sum", "demo-eq-max-2", "demo-eq-a1"}
    assert equation_references("{eq}`demo-eq-sum` and {eq}`the bound <demo-eq-max>`") == ["demo-eq-sum", "demo-eq-max"]


def chapter_modules(slug: str) -> str:
    package = ROOT / "src" / "llmtheory"
    paths = sorted(package.glob(f"{slug}*.py")) + sorted((package / slug).rglob("*.py"))
    return "\n".join(path.read_text() for path in paths)


def equation_references(text: str) -> list[str]:
    """The targets of MyST ``{eq}`label` `` and ``{eq}`text <label>` `` roles."""
    return [re.sub(r"^.*<(.+)>$", r"\1", target.strip()) for target in re.findall(r"\{eq\}`([^`]+)`", text)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_equations_and_code_cite_each_other(path):
    slug = path.stem
    markdown, code = notebook_text(path)
    labels = equation_labels(markdown)
    misnamed = [label for label in labels if not re.fullmatch(rf"{re.escape(slug)}-eq-[a-z0-9-]+", label)]
    assert not misnamed, f"name every equation {slug}-eq-<name> (lower case, digits, hyphens): {misnamed}"
    assert len(labels) == len(set(labels)), f"an equation label is used twice: {sorted(labels)}"
    everywhere = library_text() + "".join("\n".join(notebook_text(p)) for p in NOTEBOOKS)
    dangling = sorted(equation_citations(everywhere, slug) - set(labels))
    assert not dangling, f"cited (in src/llmtheory or a notebook) but not an equation label of {slug}: {dangling}"
    every_label = {label for p in NOTEBOOKS for label in equation_labels(notebook_text(p)[0])}
    unknown = sorted(set(equation_references(markdown + code + chapter_modules(slug))) - every_label)
    assert not unknown, f"{{eq}} references to no equation label of the book (scheme <slug>-eq-<name>): {unknown}"
    uncited = sorted(set(labels) - equation_citations(library_text() + "\n" + code, slug))
    assert not uncited, (
        f"cite each equation verbatim where it is computed (the library function's docstring, or a code cell of "
        f"the chapter): {uncited}"
    )


def _book_sources() -> dict:
    """Markdown and code of every chapter and hand-written page (generated pages are rebuilt from these)."""
    sources = {}
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        sources[path] = tuple(
            "\n".join(c.source for c in cells if c.cell_type == kind) for kind in ("markdown", "code")
        )
    for path in sorted((ROOT / "book").glob("*.md")):
        if path.relative_to(ROOT).with_suffix("").as_posix() not in GENERATED_PAGES:
            sources[path] = (path.read_text(), "")
    return sources


def test_every_cross_reference_and_local_link_has_a_target():
    """A {ref}/{numref}/{eq} role, a ledger row's `where=` and a link to a local page name something that exists
    (a reference to a chapter not written yet fails only `make book`, an hour into the build, without this)."""
    sources = _book_sources()
    labels = set()
    for markdown, code in sources.values():
        labels |= set(re.findall(r"^\(([^)\s]+)\)=", markdown, re.M))
        labels |= set(re.findall(r"\$\$ *\(([^)\s]+)\)", markdown))
        labels |= set(re.findall(r":(?:label|name): *(\S+)", markdown + code))
        labels |= set(re.findall(r"\b(?:label|name)=\"([^\"]+)\"", code))
    problems = []
    for path, (markdown, code) in sources.items():
        refs = re.findall(r"\{(?:ref|numref|eq)\}`(?:[^`<]*<)?([^`<>]+)>?`", markdown + code)
        refs += re.findall(r"\bwhere=\"([^\"]+)\"", code)
        problems += [f"{path.name}: no label {r}" for r in refs if r not in labels]
        for target in re.findall(r"\]\(([^)#\s:]+\.(?:ipynb|md))(?:#[^)]*)?\)", markdown):
            if not (path.parent / target).is_file():
                problems.append(f"{path.name}: no file {target}")
        for target in re.findall(r"\{doc\}`(?:[^`<]*<)?([^`<>]+)>?`", markdown):
            page = (path.parent / target).resolve().relative_to(ROOT.resolve()).as_posix()
            if page not in GENERATED_PAGES and not any(Path(ROOT / f"{page}{s}").is_file() for s in (".md", ".ipynb")):
                problems.append(f"{path.name}: no page {target}")
    assert not problems, problems


# Exercises are numbered 1, 2, ... on each page (llmtheory.exercise_numbers; sphinx-exercise alone counts across the
# book), so a chapter's text and its checkers may name them "Exercise 2": the number must be one its page shows.
EXERCISE_DIRECTIVE = re.compile(r"^(?::{3,}|`{3,})\{exercise\}[^\n]*\n((?:[ \t]*:[\w-]+:[^\n]*\n)*)", re.MULTILINE)
PLAIN_EXERCISE_NUMBERS = re.compile(r"\bExercises? (\d+(?:(?:,\s*|\s+and\s+|\s+or\s+|\s*[–-]\s*)\d+)*)")


def numbered_exercise_labels(markdown: str) -> list[str]:
    """The labels of a page's numbered exercises, in the order the page shows them."""
    labels = []
    for options in EXERCISE_DIRECTIVE.findall(markdown):
        if ":nonumber:" not in options:
            found = re.search(r":label:\s*(\S+)", options)
            labels.append(found.group(1) if found else "")
    return labels


def plain_exercise_numbers(text: str) -> list[int]:
    return [int(n) for group in PLAIN_EXERCISE_NUMBERS.findall(text) for n in re.findall(r"\d+", group)]


def test_exercise_directives_and_plain_numbers_are_recognised():
    markdown = (
        ":::{exercise}\n:label: demo-ex-1\nA\n:::\n\n::::{exercise} Hard\n:nonumber:\n:::\n\n"
        "```{exercise}\n:label: demo-ex-2\n```\n"
    )
    assert numbered_exercise_labels(markdown) == ["demo-ex-1", "demo-ex-2"]
    text = "Exercise 4 below; (see Exercise 3); Exercises 1 and 2; Exercises 5–7; Exercise 1's checker; exercise 9"
    assert plain_exercise_numbers(text) == [4, 3, 1, 2, 5, 7, 1]


def test_exercise_numbers_restart_on_each_page():
    from llmtheory.exercise_numbers import per_page_numbers

    assert per_page_numbers({"b": (18,), "a": (17,), "c": (19,)}) == {"a": (1,), "b": (2,), "c": (3,)}
    # under a numbered table of contents the section part stays and the count restarts in each section
    assert per_page_numbers({"x": (5, 7), "y": (5, 8), "z": (6, 9)}) == {"x": (5, 1), "y": (5, 2), "z": (6, 1)}
    assert "llmtheory.exercise_numbers" in config()["sphinx"]["extra_extensions"]


def test_a_second_pages_exercises_start_again_at_one(tmp_path):
    """A two-page Sphinx build with sphinx-exercise and the extension: the second page shows Exercises 1 and 2 (not
    3 and 4), and its solution heading and {numref} agree with the title."""
    (tmp_path / "conf.py").write_text('extensions = ["sphinx_exercise", "llmtheory.exercise_numbers"]\n')
    (tmp_path / "index.rst").write_text("Book\n====\n\n.. toctree::\n\n   a\n   b\n")
    for page in "ab":
        exercises = "".join(f".. exercise::\n   :label: {page}-ex-{n}\n\n   Task {n}.\n\n" for n in (1, 2))
        (tmp_path / f"{page}.rst").write_text(
            f"Page {page}\n======\n\nSee :numref:`{page}-ex-2`.\n\n{exercises}.. solution:: {page}-ex-2\n\n   Answer.\n"
        )
    run = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-q", str(tmp_path), str(tmp_path / "_build")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    page_b = (tmp_path / "_build" / "b.html").read_text()
    assert re.findall(r'<span class="caption-number">Exercise (\d+)', page_b) == ["1", "2"]
    assert "Exercise 3" not in page_b and "Exercise 4" not in page_b
    assert re.search(r"See <a [^>]*href=\"#b-ex-2\"[^>]*><span[^>]*>Exercise 2</span>", page_b)
    assert re.search(r"Solution to<a [^>]*href=\"#b-ex-2\"[^>]*> Exercise 2", page_b)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_plain_exercise_number_names_an_exercise_on_its_page(path):
    markdown, code = notebook_text(path)
    labels = numbered_exercise_labels(markdown)
    positions = [int(m.group(1)) if (m := re.search(r"-ex-(\d+)$", label)) else None for label in labels]
    assert positions == list(range(1, len(labels) + 1)), (
        f"label each exercise <slug>-ex-<its number on the page>, in order: {labels}"
    )
    cited = plain_exercise_numbers(markdown + "\n" + code + "\n" + chapter_modules(path.stem))
    missing = sorted({n for n in cited if not 1 <= n <= len(labels)})
    assert not missing, f"'Exercise N' names an exercise the page does not have (it has {len(labels)}): {missing}"
