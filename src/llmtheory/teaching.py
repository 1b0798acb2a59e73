"""Teaching from the book: student notebooks without solutions, and a grader for their auto-checked exercises.

A chapter's exercises follow one convention, which this module reads from the notebook itself:

* an exercise is a ``:::{exercise}`` block with a ``:label:``; its solution a ``:::{solution}`` block;
* an exercise is *auto-checked* when a code cell after it (before the next exercise) defines a checker, a
  function whose name starts with ``check_``; the checker raises or returns ``False`` on a wrong answer;
* the *answer cell* is a code cell of the exercise section that calls the checker; in the chapter it holds the
  instructor's answer.

``python -m llmtheory student [SLUG ...]`` writes ``_build/student/<slug>.ipynb``: solutions removed, each answer
cell replaced by a stub that raises ``NotImplementedError`` (nbgrader's convention), checkers kept.
``python -m llmtheory grade NOTEBOOK`` executes a notebook at the smoke tier with every checker wrapped so that
its calls are recorded, and returns a table of exercise, checker, result and points.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import functools
import io
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .params import ParameterError

GRADES_ENV = "LLMTHEORY_GRADES"  # the file a graded kernel appends checker results to (one JSON object a line)
_LABEL = re.compile(r":label:\s*(\S+)")
_STUB = re.compile(r"^# Exercise (\S+): your answer here", re.MULTILINE)  # the first line of an answer stub


@dataclass(frozen=True)
class Exercise:
    label: str
    checkers: tuple[str, ...]  # names of the checker functions defined after the exercise
    answer_cells: tuple[int, ...]  # indices of the code cells that call a checker


def _exercise_labels(source: str) -> list[str]:
    """Labels of the ``:::{exercise}`` blocks in a markdown cell, in order."""
    labels, inside = [], False
    for line in source.splitlines():
        if line.strip().startswith(":::{exercise}"):
            inside = True
        elif inside and (found := _LABEL.search(line)):
            labels.append(found.group(1))
            inside = False
    return labels


def _defined_checkers(tree: ast.Module) -> list[str]:
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("check_")]


def _called_names(nodes) -> set[str]:
    return {
        n.func.id for node in nodes for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }


def find_exercises(notebook: nbformat.NotebookNode) -> list[Exercise]:
    """Every exercise of a chapter, with its checkers and answer cells (empty when it is not auto-checked)."""
    found: dict[str, dict] = {}
    current = None
    checker_of: dict[str, str] = {}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            for label in _exercise_labels(cell.source):
                current = label
                found[label] = {"checkers": [], "answers": []}
            continue
        if cell.cell_type != "code" or current is None:
            continue
        tree = ast.parse(cell.source)
        for name in _defined_checkers(tree):
            found[current]["checkers"].append(name)
            checker_of[name] = current
        statements = [n for n in tree.body if not isinstance(n, ast.FunctionDef)]
        answering = {checker_of[name] for name in _called_names(statements) & set(checker_of)}
        answering |= {label for label in _STUB.findall(cell.source) if label in found}
        for label in answering:
            found[label]["answers"].append(index)
    return [Exercise(label, tuple(v["checkers"]), tuple(v["answers"])) for label, v in found.items()]


def checked_exercises(notebook: nbformat.NotebookNode) -> list[Exercise]:
    """The auto-checked exercises: a checker and an answer cell that calls it."""
    return [e for e in find_exercises(notebook) if e.checkers and e.answer_cells]


def remove_solutions(markdown: str) -> str:
    """A markdown cell without its ``:::{solution}`` blocks (from the opening line to its closing ``:::``)."""
    kept, inside = [], False
    for line in markdown.splitlines():
        if not inside and line.strip().startswith(":::{solution}"):
            inside = True
            continue
        if inside:
            inside = line.strip() != ":::"
            continue
        kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n")


def answer_stub(cell_source: str, label: str, checkers: tuple[str, ...]) -> str:
    """The student's version of an answer cell: the checkers it defines stay, the answer becomes a stub."""
    tree = ast.parse(cell_source)
    lines = cell_source.splitlines()
    kept = [
        "\n".join(lines[node.lineno - 1 - len(node.decorator_list) : node.end_lineno])
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("check_")
    ]
    call = " or ".join(f"{c}(...)" for c in checkers)
    stub = (
        f"# Exercise {label}: your answer here, ending with a call to {call}.\n"
        f'raise NotImplementedError("exercise {label}: not answered yet")'
    )
    return "\n\n\n".join([*kept, stub])


def student_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student version of a chapter: solutions removed, answer cells stubbed, checkers kept."""
    student = copy.deepcopy(notebook)
    for exercise in checked_exercises(notebook):
        for index in exercise.answer_cells:
            student.cells[index].source = answer_stub(notebook.cells[index].source, exercise.label, exercise.checkers)
    for cell in student.cells:
        if cell.cell_type == "markdown" and ":::{solution}" in cell.source:
            cell.source = remove_solutions(cell.source)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    student.cells = [c for c in student.cells if c.source.strip()]
    return student


def write_student_notebooks(slugs: list[str], root: Path, out_dir: Path) -> list[Path]:
    """Write ``<out_dir>/<slug>.ipynb``, the student version of each chapter."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for slug in slugs:
        source = root / "notebooks" / f"{slug}.ipynb"
        if not source.is_file():
            raise ParameterError(f"chapter {slug!r} has no notebook at {source}")
        notebook = nbformat.read(source, as_version=4)
        path = out_dir / f"{slug}.ipynb"
        nbformat.write(student_notebook(notebook), path)
        written.append(path)
    return written


# ---------------------------------------------------------------------------------------------------------
# Grading


def record_checker(label: str, checker):
    """``checker`` wrapped so that each call appends its result to the file named by ``$LLMTHEORY_GRADES``."""

    @functools.wraps(checker)
    def recorded(*args, **kwargs):
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                result = checker(*args, **kwargs)
        except NotImplementedError:
            raise
        except Exception as error:
            _append_grade(label, checker.__name__, False, f"{type(error).__name__}: {error}")
            raise
        finally:
            print(printed.getvalue(), end="")  # the student still sees what the checker said
        passed = result is not False and bool(result)
        hint = printed.getvalue().strip() or f"the checker returned {result!r}"
        _append_grade(label, checker.__name__, passed, "" if passed else hint)
        return result

    return recorded


def _append_grade(label: str, checker: str, passed: bool, message: str) -> None:
    path = os.environ.get(GRADES_ENV)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"exercise": label, "checker": checker, "passed": passed, "message": message}) + "\n")


def instrumented(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy in which each checker is wrapped by :func:`record_checker` right after its definition (in the same
    cell, so that a call later in that cell is recorded too), and each answer cell carries its exercise's label
    in its metadata (``llmtheory_answer``)."""
    copy_ = copy.deepcopy(notebook)
    exercises = {name: e.label for e in find_exercises(notebook) for name in e.checkers}
    for exercise in checked_exercises(notebook):
        for index in exercise.answer_cells:
            copy_.cells[index].metadata["llmtheory_answer"] = exercise.label
    for cell in copy_.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        lines = cell.source.splitlines()
        checkers = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in exercises]
        for node in reversed(checkers):  # from the bottom, so that earlier line numbers stay valid
            wrap = f"{node.name} = _record_checker({exercises[node.name]!r}, {node.name})"
            lines.insert(node.end_lineno, wrap)
        if checkers:
            lines.insert(0, "from llmtheory.teaching import record_checker as _record_checker")
            cell.source = "\n".join(lines)
    return copy_


@dataclass(frozen=True)
class Grade:
    exercise: str
    checker: str
    passed: bool
    message: str
    points: int


def _error_of(cell) -> str | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out['ename']}: {out['evalue']}"
    return None


def grade_notebook(path: Path, *, root: Path, scale: str = "smoke", timeout: int = 600) -> tuple[list[Grade], list]:
    """Execute the notebook at ``path`` (``SCALE=scale``) and grade its auto-checked exercises.

    Returns the grades and the errors raised outside answer cells (the chapter itself failing), as
    ``(cell index, error)`` pairs; an unanswered exercise (``NotImplementedError``) scores 0 and is not such an
    error.
    """
    from nbclient import NotebookClient
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    notebook = nbformat.read(path, as_version=4)
    stubbed = {
        e.label
        for e in find_exercises(notebook)
        for i in e.answer_cells
        if "NotImplementedError" in notebook.cells[i].source
    }
    labels = [e.label for e in find_exercises(notebook) if e.checkers]
    run = instrumented(load_notebook_node(str(path)))  # papermill's loader adds the metadata it needs
    for cell in run.cells:
        cell.metadata.setdefault("tags", [])
    run = parameterize_notebook(run, {"SCALE": scale})
    with tempfile.TemporaryDirectory() as tmp:
        grades_file = Path(tmp) / "grades.jsonl"
        grades_file.touch()
        previous = os.environ.get(GRADES_ENV)
        os.environ[GRADES_ENV] = str(grades_file)
        try:
            client = NotebookClient(
                run,
                timeout=timeout,
                kernel_name="python3",
                allow_errors=True,
                resources={"metadata": {"path": str(root / "notebooks")}},
            )
            client.execute()
        finally:
            if previous is None:
                os.environ.pop(GRADES_ENV, None)
            else:
                os.environ[GRADES_ENV] = previous
        records = [json.loads(line) for line in grades_file.read_text().splitlines() if line.strip()]
    failures = []
    answer_errors: dict[str, str] = {}
    for index, cell in enumerate(run.cells):
        if cell.cell_type != "code" or (error := _error_of(cell)) is None:
            continue
        if "llmtheory_answer" in cell.metadata:
            answer_errors[cell.metadata["llmtheory_answer"]] = error
        else:
            failures.append((index, error))
    grades = []
    for label in labels:
        mine = [r for r in records if r["exercise"] == label]
        passed = any(r["passed"] for r in mine)
        if passed:
            message = "correct"
        elif label in stubbed or "NotImplementedError" in answer_errors.get(label, ""):
            message = "not answered yet"
        else:
            message = next((r["message"] for r in mine if r["message"]), answer_errors.get(label, "no checker call"))
        checker = mine[-1]["checker"] if mine else "—"
        grades.append(Grade(label, checker, passed, message, int(passed)))
    return grades, failures


def grade_table(grades: list[Grade]) -> str:
    """A plain-text table of the grades and the total."""
    width = max([len(g.exercise) for g in grades] + [8])
    lines = [f"{'exercise':{width}}  {'checker':28}  {'result':7}  points  message"]
    for g in grades:
        lines.append(
            f"{g.exercise:{width}}  {g.checker:28}  {'pass' if g.passed else 'FAIL':7}  {g.points:>6}  {g.message}"
        )
    lines.append(f"{'total':{width}}  {'':28}  {'':7}  {sum(g.points for g in grades):>6}  of {len(grades)}")
    return "\n".join(lines)
