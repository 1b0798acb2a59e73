"""The chapter registry, the course built from it, and a student's own chapter registered end to end."""

import shutil
from pathlib import Path

import pytest
import yaml

from llmtheory.chapters import PARTS, Chapter, all_chapters, chapter, register_chapter
from llmtheory.cli import main
from llmtheory.course import WEEKS, _runtimes, prerequisite_figure, render_course_page, syllabus, teaching_order
from llmtheory.params import ParameterError
from llmtheory.scaffold import add_to_toc

ROOT = Path(__file__).resolve().parents[1]


def test_the_registry_has_the_twenty_papers_in_book_order_with_valid_parts_and_prerequisites():
    chapters = all_chapters()
    assert len(chapters) == 20 and chapters[0].slug == "spectral_ball"
    assert [c.part for c in chapters] == sorted(c.part for c in chapters)
    slugs = {c.slug for c in chapters}
    for c in chapters:
        assert 1 <= c.part <= len(PARTS) and c.objectives
        assert not ({p for p in c.prerequisites if "_" in p} - slugs), f"{c.slug}: unknown prerequisite slug"


def test_teaching_order_puts_every_prerequisite_first_and_a_cycle_is_an_error():
    order = [c.slug for c in teaching_order(all_chapters())]
    for c in all_chapters():
        for p in c.prerequisites:
            if p in order:
                assert order.index(p) < order.index(c.slug)
    cycle = (Chapter("a_a", 1, "A", prerequisites=("b_b",)), Chapter("b_b", 1, "B", prerequisites=("a_a",)))
    with pytest.raises(ValueError, match="cycle"):
        teaching_order(cycle)


def test_syllabus_fills_eleven_weeks_never_pairing_a_chapter_with_its_prerequisite():
    weeks = syllabus(all_chapters())
    assert len(weeks) == WEEKS - 1 and all(1 <= len(w.chapters) <= 2 for w in weeks)
    assert sorted(c.slug for w in weeks for c in w.chapters) == sorted(c.slug for c in all_chapters())
    for w in weeks:
        if len(w.chapters) == 2:
            first, second = w.chapters
            assert first.slug not in second.prerequisites and second.slug not in first.prerequisites
    too_many = tuple(Chapter(f"c_{i}", 1, str(i), prerequisites=(f"c_{i - 1}",) if i else ()) for i in range(12))
    with pytest.raises(ValueError, match="do not fit"):
        syllabus(too_many)  # a chain of twelve cannot be paired into eleven weeks


def test_course_page_and_figure(tmp_path):
    page = render_course_page(ROOT, figure="course_prerequisites.png")
    assert page.startswith("# A course from this book") and "| 12 | Reproduction projects" in page
    assert "python -m llmtheory new my_paper" in page and "python -m llmtheory grade" in page
    path = prerequisite_figure(all_chapters(), tmp_path / "graph.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_runtimes_name_only_the_tiers_that_have_a_ledger():
    smoke, book = {"a": {"wall_time_s": 12.4}}, {"a": {"wall_time_s": 206.0}, "b": {"wall_time_s": 50.0}}
    assert _runtimes(smoke, book, "a") == "smoke 12 s · book 206 s"
    assert _runtimes(smoke, book, "b") == "book 50 s"  # no "— · 50 s" when the smoke tier has not run
    assert _runtimes(smoke, book, "c") == "—"


@pytest.fixture
def book_copy(tmp_path, monkeypatch):
    """A scratch copy of the book's registry, table of contents and configuration."""
    (tmp_path / "src" / "llmtheory").mkdir(parents=True)
    shutil.copy(ROOT / "src" / "llmtheory" / "chapters.yml", tmp_path / "src" / "llmtheory" / "chapters.yml")
    for name in ("_toc.yml", "_config.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book").mkdir()
    monkeypatch.setenv("LLMTHEORY_ROOT", str(tmp_path))
    monkeypatch.setenv("LLMTHEORY_CLAIMS_DIR", str(tmp_path / "claims"))
    return tmp_path


def test_register_refuses_bad_slugs_parts_and_duplicates(book_copy):
    with pytest.raises(ParameterError, match="slug 'My-Paper'"):
        register_chapter("My-Paper", title="t", part=1, paper="p")
    with pytest.raises(ParameterError, match="--part 9"):
        register_chapter("my_paper", title="t", part=9, paper="p")
    with pytest.raises(ParameterError, match="already registered"):
        register_chapter("spectral_ball", title="t", part=1, paper="p")


@pytest.mark.timeout(300)
def test_a_students_chapter_is_registered_scaffolded_run_and_on_the_claims_page(book_copy, capsys):
    assert main(["new", "my_paper"]) == 2
    assert "to start a chapter of your own, register it" in capsys.readouterr().err
    args = ["new", "my_paper", "--title", "My Paper", "--part", "4", "--paper", "Me, 2026", "--prerequisite",
            "grad_detect", "--objective", "reproduce one claim"]  # fmt: skip
    assert main(args) == 0
    registered = chapter("my_paper")
    assert registered.part_name == PARTS[3] and registered.prerequisites == ("grad_detect",)
    assert (ROOT / "src" / "llmtheory" / "chapters.yml").read_text().count("my_paper") == 0  # the original is untouched
    toc = yaml.safe_load((book_copy / "_toc.yml").read_text())
    before = next((p["chapters"] for p in yaml.safe_load((ROOT / "_toc.yml").read_text())["parts"]
                   if p["caption"] == PARTS[3]), [])  # fmt: skip
    part = next(p for p in toc["parts"] if p["caption"] == PARTS[3])
    assert part["chapters"] == [*before, {"file": "notebooks/my_paper"}]  # appended to the part's chapters
    captions = [p["caption"] for p in toc["parts"]]
    assert captions.index(PARTS[2]) < captions.index(PARTS[3]) < captions.index("Back matter")
    assert (book_copy / "_toc.yml").read_text().startswith("# Table of contents")
    assert (
        "\n  - caption: Getting started\n    chapters:\n      - file: book/how_to_use\n"
        in (book_copy / "_toc.yml").read_text()
    )  # written as by hand: lists indented under their key
    assert main(["run", "my_paper", "--scale", "smoke"]) == 0
    assert main(["claims", "--scale", "smoke"]) == 0
    assert "## [My Paper](../notebooks/my_paper.ipynb)" in (book_copy / "book" / "claims.md").read_text()


def test_a_chapter_of_a_part_without_chapters_adds_the_part_in_book_order(book_copy):
    path = book_copy / "_toc.yml"
    toc = yaml.safe_load(path.read_text())
    toc["parts"] = [p for p in toc["parts"] if p["caption"] != PARTS[3]]
    path.write_text(yaml.safe_dump(toc, sort_keys=False, allow_unicode=True))
    assert add_to_toc("scaletot", book_copy) and not add_to_toc("scaletot", book_copy)
    captions = [p["caption"] for p in yaml.safe_load(path.read_text())["parts"]]
    assert captions.index(PARTS[2]) + 1 == captions.index(PARTS[3]) == captions.index(PARTS[4]) - 1
