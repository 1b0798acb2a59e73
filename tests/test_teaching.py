"""Student notebooks and the grader, on a tiny stand-in chapter (seconds), and the exercise convention on every
chapter of the book (static, no execution)."""

import nbformat
import pytest

from llmtheory.cli import main
from llmtheory.teaching import (
    checked_exercises,
    find_exercises,
    grade_notebook,
    grade_table,
    remove_solutions,
    student_notebook,
)

NOTEBOOKS = sorted((__import__("pathlib").Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

CHAPTER = [
    ("code", 'SCALE = "book"\nSEED = 0', ["parameters"]),
    ("markdown", "## Exercises\n\n:::{exercise}\n:label: tiny-ex-1\nWhat is 6 × 7?\n:::", []),
    (
        "code",
        "def check_product(answer):\n"
        "    if answer != 42:\n"
        '        print(f"not yet: {answer} is not 6 × 7; multiply again")\n'
        "        return False\n"
        "    return True",
        [],
    ),
    ("markdown", ":::{solution} tiny-ex-1\n:class: dropdown\n6 × 7 = 42.\n:::", []),
    ("code", "assert check_product(6 * 7)", []),
    (
        "markdown",
        ":::{exercise}\n:label: tiny-ex-2\nName the smallest prime.\n:::\n\n"
        ":::{solution} tiny-ex-2\n:class: dropdown\n```python\nanswer = 2\n```\n:::",
        [],
    ),
    (
        "code",
        "def check_prime(answer):\n"
        '    assert answer == 2, f"{answer} is not the smallest prime: try a smaller one"\n'
        "    return True\n\n\n"
        "check_prime(2)",
        [],
    ),
    ("markdown", ":::{exercise}\n:label: tiny-ex-3\nDiscuss (no checker).\n:::", []),
]


def _chapter(tmp_path, cells=CHAPTER):
    (tmp_path / "notebooks").mkdir(parents=True, exist_ok=True)
    made = []
    for kind, source, tags in cells:
        maker = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        made.append(maker(source, metadata={"tags": tags} if tags else {}))
    notebook = nbformat.v4.new_notebook(cells=made)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "notebooks" / "tiny.ipynb"
    nbformat.write(notebook, path)
    return path


def test_exercises_checkers_and_answer_cells_are_found():
    notebook = nbformat.v4.new_notebook(cells=[])
    path_cells = [
        nbformat.v4.new_code_cell(s) if k == "code" else nbformat.v4.new_markdown_cell(s) for k, s, _ in CHAPTER
    ]
    notebook.cells = path_cells
    found = {e.label: e for e in find_exercises(notebook)}
    assert found["tiny-ex-1"].checkers == ("check_product",) and found["tiny-ex-1"].answer_cells == (4,)
    assert found["tiny-ex-2"].answer_cells == (6,)  # a cell that defines its checker and calls it
    assert found["tiny-ex-3"].checkers == ()
    assert [e.label for e in checked_exercises(notebook)] == ["tiny-ex-1", "tiny-ex-2"]


def test_solutions_are_removed_with_their_code_and_nothing_else():
    text = "before\n\n:::{solution} x\n:class: dropdown\n```python\nsecret = 1\n```\n:::\n\nafter"
    assert remove_solutions(text) == "before\n\nafter"


def test_student_version_stubs_answers_keeps_checkers_and_drops_solutions(tmp_path):
    student = student_notebook(nbformat.read(_chapter(tmp_path), as_version=4))
    sources = [c.source for c in student.cells]
    assert not any(":::{solution}" in s or "6 × 7 = 42" in s for s in sources)
    assert any(s.startswith("def check_product") for s in sources)
    stubs = [s for s in sources if "NotImplementedError" in s]
    assert len(stubs) == 2 and "check_prime(2)" not in stubs[1] and stubs[1].startswith("def check_prime")
    assert [e.label for e in checked_exercises(student)] == ["tiny-ex-1", "tiny-ex-2"]  # the stubs are answers


@pytest.mark.timeout(300)
def test_grades_full_marks_zero_for_the_student_version_and_explains_a_wrong_answer(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMTHEORY_ROOT", str(tmp_path))
    instructor = _chapter(tmp_path)
    grades, failures = grade_notebook(instructor, root=tmp_path)
    assert failures == [] and [g.points for g in grades] == [1, 1]

    student_path = tmp_path / "student.ipynb"
    nbformat.write(student_notebook(nbformat.read(instructor, as_version=4)), student_path)
    grades, failures = grade_notebook(student_path, root=tmp_path)
    assert failures == []  # nothing raised but the stubs
    assert [(g.points, g.message) for g in grades] == [(0, "not answered yet")] * 2

    wrong = [(k, s.replace("6 * 7", "6 * 6").replace("check_prime(2)", "check_prime(3)"), t) for k, s, t in CHAPTER]
    grades, failures = grade_notebook(_chapter(tmp_path / "wrong", wrong), root=tmp_path)
    assert failures == [] and [g.points for g in grades] == [0, 0]
    assert "not yet: 36 is not 6 × 7; multiply again" in grades[0].message  # the checker's own hint
    assert "try a smaller one" in grades[1].message
    assert "total" in grade_table(grades) and "FAIL" in grade_table(grades)


@pytest.mark.timeout(300)
def test_grade_command_exit_codes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMTHEORY_ROOT", str(tmp_path))
    assert main(["grade", str(_chapter(tmp_path))]) == 0
    assert "1 of 1" not in capsys.readouterr().out
    broken = [*CHAPTER[:1], ("code", "1 / 0", []), *CHAPTER[1:]]
    assert main(["grade", str(_chapter(tmp_path / "broken", broken))]) == 2
    assert "ZeroDivisionError" in capsys.readouterr().err
    assert main(["grade", str(tmp_path / "missing.ipynb")]) == 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_has_two_auto_checked_exercises_and_a_clean_student_version(path):
    notebook = nbformat.read(path, as_version=4)
    checked = checked_exercises(notebook)
    assert len(checked) >= 2, f"{path.stem}: {len(checked)} auto-checked exercise(s); the book asks for two"
    student = student_notebook(notebook)
    assert [e.label for e in checked_exercises(student)] == [e.label for e in checked]
    assert not any(":::{solution}" in c.source for c in student.cells)
