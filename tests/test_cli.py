"""The command line, run on a tiny stand-in chapter so that the test takes seconds."""

import json

import nbformat
import pytest

from llmtheory.chapters import chapter
from llmtheory.cli import check_overrides, main, parse_assignment
from llmtheory.params import ParameterError

TINY_CHAPTER = [
    ('SCALE = "book"\nSEED = 0', ["parameters"]),
    (
        "from llmtheory.claims import MEASURED, Control, Ledger\n"
        "ledger = Ledger('spectral_ball', scale=SCALE, seed=SEED)\n"
        "ledger.check('seed', claim='the seed reaches the kernel', paper='3', ours=str(SEED), rule='ours == 3',\n"
        "             kind=MEASURED, holds=SEED == 3, control=Control('the default seed', '0', holds=False))\n"
        "ledger.report()",
        [],
    ),
]


@pytest.fixture
def tiny_book(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    cells = [nbformat.v4.new_code_cell(src, metadata={"tags": tags}) for src, tags in TINY_CHAPTER]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "notebooks" / "spectral_ball.ipynb")
    (tmp_path / "book").mkdir()
    monkeypatch.setenv("LLMTHEORY_ROOT", str(tmp_path))
    monkeypatch.setenv("LLMTHEORY_CLAIMS_DIR", str(tmp_path / "claims"))
    return tmp_path


def test_parse_assignment():
    assert parse_assignment("SEED=3") == ("SEED", 3)
    assert parse_assignment("MODEL=gpt2") == ("MODEL", "gpt2")
    assert parse_assignment("K=[1, 2]") == ("K", [1, 2])
    with pytest.raises(ParameterError, match="KEY=VALUE"):
        parse_assignment("SEED")


def test_run_executes_the_chapter_and_records_its_ledger(tiny_book, capsys):
    assert main(["run", "spectral_ball", "--scale", "smoke", "-p", "SEED=3"]) == 0
    out = capsys.readouterr().out
    assert "[reproduced] (measured) seed" in out and "control: the default seed" in out
    saved = json.loads((tiny_book / "claims" / "smoke" / "spectral_ball.json").read_text())
    assert saved["scale"] == "smoke" and saved["seed"] == 3
    assert (tiny_book / "_build" / "runs" / "spectral_ball-smoke-seed3.ipynb").is_file()
    assert main(["claims", "--scale", "smoke"]) == 0
    page = (tiny_book / "book" / "claims.md").read_text()
    assert "the seed reaches the kernel" in page and "claims_summary.png" in page
    assert (tiny_book / "book" / "claims_summary.png").is_file()


def test_wrong_slug_lists_the_chapters(tiny_book, capsys):
    assert main(["run", "spectral_bal"]) == 2
    assert "choose one of: spectral_ball" in capsys.readouterr().err


def test_wrong_parameter_lists_the_parameters(tiny_book, capsys):
    assert main(["run", "spectral_ball", "-p", "SEEDS=1"]) == 2
    assert "SEEDS" in (err := capsys.readouterr().err) and "SCALE, SEED" in err


def test_a_bad_value_is_refused_before_the_notebook_runs(tiny_book, capsys):
    assert main(["run", "spectral_ball", "-p", "SEED=-1"]) == 2
    assert "SEED=-1 must be ≥ 0" in capsys.readouterr().err
    assert not (tiny_book / "_build" / "runs").exists()


def test_overrides_are_checked_against_the_chapters_declaration():
    with pytest.raises(ParameterError, match="SIGMA=-1 must be ≥ 0.001"):
        check_overrides(chapter("rkhs_rates"), {"SIGMA": [0.5, -1]})
    assert check_overrides(chapter("rkhs_rates"), {"SIGMA": [0.5]})["SIGMA"] == "0.5"


def test_wrong_scale_lists_the_scales(tiny_book, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "spectral_ball", "--scale", "huge"])
    assert exit_.value.code == 2
    assert "'smoke', 'book', 'full'" in capsys.readouterr().err


def test_list_shows_every_chapter(tiny_book, capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 20
    assert lines[0].split()[:2] == ["spectral_ball", "ready"]
    assert all("planned" in line for line in lines[1:])
