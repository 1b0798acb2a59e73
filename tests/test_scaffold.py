"""A new chapter is born with the anatomy the book's tests ask of a finished one."""

import nbformat
import pytest
from test_book import VERDICT_WORDS

from llmtheory.claims import KINDS
from llmtheory.scaffold import chapter_skeleton, write_skeleton


def test_the_skeleton_has_kinds_a_control_slot_and_ledger_driven_findings():
    cells = chapter_skeleton("plasticity", "https://github.com/x/y").cells
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    prose = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert "(plasticity-claims)=" in prose and "ledger.findings(" in code
    assert "kind=MEASURED" in code and "control=Control(" in code
    assert all(kind in prose for kind in KINDS)
    assert not any(VERDICT_WORDS.search(c.source) for c in cells if c.cell_type == "markdown")
    assert [c for c in cells if "parameters" in c.metadata.get("tags", [])]


def test_the_skeleton_refuses_to_overwrite_a_chapter(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/x/y\n")
    path = write_skeleton("plasticity", tmp_path)
    assert nbformat.read(path, as_version=4).cells
    with pytest.raises(FileExistsError, match="delete it first"):
        write_skeleton("plasticity", tmp_path)
