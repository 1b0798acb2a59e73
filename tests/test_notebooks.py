"""Every chapter in the table of contents, executed at SCALE="smoke" through papermill in a fresh kernel.

`make test` runs this with the network unreachable (.ci/offline). A failure shows the failing cell.
"""

import json
import os
import time

import nbformat
import papermill
import pytest
from book_files import toc_notebooks

from llmtheory.claims import VERDICTS

SMOKE_BUDGET_S = float(os.environ.get("LLMTHEORY_SMOKE_BUDGET_S", 60))  # 45 s target, margin for a busy CI


def _failing_cell(output_path) -> str:
    for cell in nbformat.read(output_path, as_version=4).cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"--- failing cell ---\n{cell.source}\n--- {out['ename']}: {out['evalue']}"
    return "(no error output recorded)"


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", toc_notebooks(), ids=lambda p: p.stem)
def test_chapter_runs_at_smoke_scale(notebook, tmp_path, _claims_to_tmp):
    output = tmp_path / notebook.name
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters={"SCALE": "smoke"},
            cwd=str(notebook.parent),
            kernel_name="python3",
            progress_bar=False,
        )
    except papermill.PapermillExecutionError as error:
        pytest.fail(f"{notebook.stem} failed at smoke scale\n{_failing_cell(output)}\n{error}", pytrace=False)
    elapsed = time.perf_counter() - start
    print(f"{notebook.stem}: {elapsed:.1f} s at smoke scale")
    ledger = json.loads((_claims_to_tmp / "smoke" / f"{notebook.stem}.json").read_text())
    assert ledger["scale"] == "smoke"
    assert len(ledger["claims"]) >= 3 and all(c["verdict"] in VERDICTS for c in ledger["claims"])
    assert elapsed <= SMOKE_BUDGET_S, f"{notebook.stem} took {elapsed:.0f} s at smoke scale (budget 45 s)"
