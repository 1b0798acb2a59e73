import json

import pytest

from llmtheory.claims import (
    NOT_REPRODUCED,
    NOT_TESTABLE,
    QUALITATIVE,
    REPRODUCED,
    VERDICTS,
    Ledger,
    load_ledgers,
    render_claims_page,
    verdict,
)
from llmtheory.params import ParameterError


def test_verdict_rule_that_fails_gives_not_reproduced():
    measured, threshold = 0.62, 0.9
    assert verdict(holds=measured >= threshold) == NOT_REPRODUCED


def test_verdict_precedence():
    assert verdict(holds=True) == REPRODUCED
    assert verdict(holds=False, qualitatively=True) == QUALITATIVE
    assert verdict(holds=True, testable=False) == NOT_TESTABLE


def _ledger(tmp_path, scale="smoke"):
    ledger = Ledger("spectral_ball", scale=scale, seed=3)
    ledger.check("a", claim="x → 1", paper="1", ours="0.99", rule="ours ≥ 0.9", verdict=verdict(holds=True))
    ledger.check("b", claim="y | z", paper="2", ours="0.1", rule="ours ≥ 1", verdict=verdict(holds=False))
    return ledger


def test_typed_verdict_is_refused(tmp_path):
    ledger = Ledger("spectral_ball", scale="smoke", seed=0)
    with pytest.raises(ParameterError, match="verdict='looks fine'"):
        ledger.check("a", claim="c", paper="p", ours="o", rule="r", verdict="looks fine")


def test_duplicate_claim_id_is_refused(tmp_path):
    ledger = _ledger(tmp_path)
    with pytest.raises(ParameterError, match="already"):
        ledger.check("a", claim="c", paper="p", ours="o", rule="r", verdict=verdict(holds=True))


def test_bad_scale_is_refused():
    with pytest.raises(ParameterError, match="SCALE"):
        Ledger("spectral_ball", scale="tiny", seed=0)


def test_save_writes_tier_seed_model_time_and_claims(tmp_path):
    path = _ledger(tmp_path).save(tmp_path)
    saved = json.loads(path.read_text())
    assert path.name == "spectral_ball.json"
    assert saved["scale"] == "smoke" and saved["seed"] == 3 and saved["model"] is None
    assert saved["wall_time_s"] >= 0 and "torch" in saved["versions"]
    assert [c["verdict"] for c in saved["claims"]] == [REPRODUCED, NOT_REPRODUCED]


def test_default_folder_is_per_tier(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMTHEORY_CLAIMS_DIR", str(tmp_path))
    assert _ledger(tmp_path, scale="book").save() == tmp_path / "book" / "spectral_ball.json"
    assert [d["slug"] for d in load_ledgers("book")] == ["spectral_ball"]
    assert load_ledgers("smoke") == []


def test_report_is_a_styled_table(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMTHEORY_CLAIMS_DIR", str(tmp_path))
    html = _ledger(tmp_path).report().to_html()
    assert "#d9f0d3" in html and "#f4cccc" in html


def test_claims_page_counts_verdicts_and_escapes_pipes(tmp_path):
    page = render_claims_page([_ledger(tmp_path).to_dict()], "smoke")
    assert page.startswith("# The claims ledger")
    row = "| [Uniform Sampling from High-dimensional Spectral Norm Balls](../notebooks/spectral_ball.ipynb) |"
    assert f"{row} 1 | 0 | 1 | 0 |" in page
    assert "| **all chapters** | **1** | **0** | **1** | **0** |" in page
    assert "y \\| z" in page
    assert "(../notebooks/spectral_ball.ipynb)" in page
    assert set(VERDICTS) <= set(page.split("|")[i].strip() for i in range(len(page.split("|"))))


def test_empty_claims_page_says_how_to_fill_it():
    assert "No chapter has been run" in render_claims_page([], "book")
