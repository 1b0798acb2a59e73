"""The plasticity chapter's real-model path (`MODEL=<folder>`) on a small random Phi-3 saved to a folder like a hub
download (an architecture the zoo does not have, `random_models.save_random_causal_lm`): the whole chapter runs at
the smoke tier, the real-path section prints the memory estimate and probes the model against fresh initialisations
of its configuration, and a model that knows nothing is reported *not testable*, never a crash. The ledger's rows
come from the zoo artefacts whatever MODEL is, so they must be the same as on the default."""

import json

import pytest
from random_models import run_chapter_on_model, save_random_causal_lm

pytestmark = [pytest.mark.notebook, pytest.mark.usefixtures("one_torch_thread")]


def _output_text(notebook, needle: str) -> str:
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "code" and needle in "".join(c["source"]))
    return "".join("".join(o.get("data", {}).get("text/plain", o.get("text", ""))) for o in cell["outputs"])


def test_the_chapter_probes_a_random_phi3_folder_and_reports_it_not_testable(tmp_path, monkeypatch):
    folder = save_random_causal_lm("phi3", tmp_path / "phi3")
    (tmp_path / "run").mkdir()
    ledger = run_chapter_on_model("plasticity", folder, tmp_path / "run", monkeypatch)
    notebook = json.loads((tmp_path / "run" / "out.ipynb").read_text())
    real = _output_text(notebook, "plasticity.real_path(")
    assert "parameters: probing one checkpoint needs about" in real  # the memory estimate, printed first
    assert f"{folder}: N = " in real and "G(T) 0: " in real  # its one checkpoint, probed, with its gap
    assert "→ not testable:" in real, real
    assert {c["id"] for c in ledger["claims"]} >= {"loss-appears", "onset-sublinear", "stationary-too", "n-count"}
    assert all(c["verdict"] for c in ledger["claims"])
