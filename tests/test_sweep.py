"""Sweeps on a Dask LocalCluster, run on two tiny stand-in chapters so that the test takes seconds, not minutes."""

import json

import nbformat
import pytest

from llmtheory.claims import load_ledgers, render_claims_page
from llmtheory.cli import main, run_chapter
from llmtheory.params import ParameterError
from llmtheory.sweep import Job, is_done, plan_jobs, run_sweep, seed_verdicts, split_values, sweep_dir

LEDGER_CELL = """\
from llmtheory.claims import MEASURED, Control, Ledger
if FAIL_AT_SEED == SEED:
    raise RuntimeError("planted failure")
ledger = Ledger({slug!r}, scale=SCALE, seed=SEED)
ledger.check("parity", claim="the seed is even", paper="even", ours=str(SEED), rule="SEED % 2 == 0",
             kind=MEASURED, holds=SEED % 2 == 0, control=Control("an odd number", "1", holds=False))
ledger.report()"""


def _write_chapter(root, slug):
    cells = [
        nbformat.v4.new_code_cell('SCALE = "book"\nSEED = 0\nFAIL_AT_SEED = -1', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(LEDGER_CELL.format(slug=slug)),
    ]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, root / "notebooks" / f"{slug}.ipynb")


@pytest.fixture
def tiny_book(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book").mkdir()
    for slug in ("spectral_ball", "augmentation_fourier"):
        _write_chapter(tmp_path, slug)
    monkeypatch.setenv("LLMTHEORY_ROOT", str(tmp_path))
    monkeypatch.setenv("LLMTHEORY_CLAIMS_DIR", str(tmp_path / "claims"))
    return tmp_path


def _claims(path):
    return json.loads(path.read_text())["claims"]


def test_values_split_on_top_level_commas_only():
    assert split_values("a,b, c") == ["a", "b", "c"]
    assert split_values("[1, 2],'x,y',3") == ["[1, 2]", "'x,y'", "3"]


def test_plan_is_every_combination_and_refuses_seed_in_the_grid():
    jobs = plan_jobs(["spectral_ball"], "smoke", [0, 1], {"MODEL": ["a", "b"]})
    assert [j.name for j in jobs] == [
        "spectral_ball-seed0-MODEL=a",
        "spectral_ball-seed0-MODEL=b",
        "spectral_ball-seed1-MODEL=a",
        "spectral_ball-seed1-MODEL=b",
    ]
    with pytest.raises(ParameterError, match="--seeds"):
        plan_jobs(["spectral_ball"], "smoke", [0], {"SEED": [1]})
    with pytest.raises(ParameterError, match="--scale 'huge'"):
        plan_jobs(["spectral_ball"], "huge", [0], {})


@pytest.mark.timeout(300)
def test_a_sweep_on_a_local_cluster_matches_sequential_runs_resumes_and_reports_a_failure(tiny_book):
    jobs = plan_jobs(["spectral_ball", "augmentation_fourier"], "smoke", [0, 1], {})
    records = run_sweep(jobs, root=tiny_book, workers=2)
    assert [r["status"] for r in records] == ["ok"] * 4
    for job in jobs:  # the same ledger as a sequential `llmtheory run`
        sequential = run_chapter(job.slug, "smoke", {"SEED": job.parameters["SEED"]}, root=tiny_book)
        assert _claims(sweep_dir("smoke", tiny_book) / job.name / "ledger.json") == _claims(sequential)

    again = run_sweep(jobs, root=tiny_book, workers=2)  # nothing changed: every job is skipped
    assert [r["status"] for r in again] == ["skipped"] * 4

    # a parameter change reruns; a job made to fail is reported with its cell and the other job finishes
    failing = [Job("spectral_ball", "smoke", {"SEED": 1, "FAIL_AT_SEED": 1}),
               Job("augmentation_fourier", "smoke", {"SEED": 1, "FAIL_AT_SEED": 0})]  # fmt: skip
    assert not any(is_done(job, tiny_book) for job in failing)
    first, second = run_sweep(failing, root=tiny_book, workers=2)
    assert first["status"] == "failed" and first["cell"] == 1 and "planted failure" in first["error"]
    assert "raise RuntimeError" in first["cell_source"]
    assert second["status"] == "ok"


def test_the_claims_page_and_findings_flag_a_verdict_that_changes_with_the_seed(tiny_book):
    from llmtheory.claims import Ledger, render_seed_stability
    from llmtheory.sweep import run_job

    for seed in (0, 1):  # the planted flip: "the seed is even" holds at seed 0 and fails at seed 1
        assert run_job(Job("spectral_ball", "smoke", {"SEED": seed}), str(tiny_book))["status"] == "ok"
    seeds = seed_verdicts("smoke", tiny_book)
    assert seeds == {"spectral_ball": {"parity": {0: "reproduced", 1: "not reproduced"}}}
    run_chapter("spectral_ball", "smoke", {}, root=tiny_book)
    page = render_claims_page(load_ledgers("smoke"), "smoke", seeds=seeds)
    assert "| ⚠ 1 |" in page and 'title="seed 1: not reproduced"' in page
    ledger = Ledger("spectral_ball", scale="smoke", seed=0)
    ledger.check("parity", claim="the seed is even", paper="even", ours="0", rule="r", kind="measured", holds=True,
                 can_fail_because="odd seeds fail")  # fmt: skip
    text = render_seed_stability(ledger.claims, seeds["spectral_ball"])
    assert "1 of 1 claims change verdict" in text and "seed 1: not reproduced" in text
    # verdicts of older code never sit beside today's: editing the chapter retires its sweep results
    notebook = tiny_book / "notebooks" / "spectral_ball.ipynb"
    notebook.write_text(notebook.read_text().replace("FAIL_AT_SEED = -1", "FAIL_AT_SEED = -2"))
    assert seed_verdicts("smoke", tiny_book) == {}


def test_sweep_command_refuses_unknown_chapters_and_parameters(tiny_book, capsys):
    assert main(["sweep", "spectral_bal", "--scale", "smoke"]) == 2
    assert "the chapters are: augmentation_fourier, spectral_ball" in capsys.readouterr().err
    assert main(["sweep", "spectral_ball", "--scale", "smoke", "-p", "MODELS=a,b"]) == 2
    assert "MODELS" in capsys.readouterr().err
    assert main(["sweep", "spectral_ball", "--seeds", "0,x"]) == 2
    assert "--seeds '0,x'" in capsys.readouterr().err
