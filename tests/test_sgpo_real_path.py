"""sgpo's real-model path (`MODEL=<folder or hub id>`) on a small random model of an architecture the zoo lacks,
saved to a folder like a hub download: the whole chapter runs at the smoke tier, and a policy that solves nothing
leaves every comparison row not testable (the strategy gate and the did-it-train gate), never a crash."""

import pytest
from random_models import run_chapter_on_model, save_random_causal_lm

from llmtheory.claims import NOT_TESTABLE

pytestmark = [pytest.mark.notebook, pytest.mark.usefixtures("one_torch_thread")]


def test_the_chapter_runs_on_a_saved_random_mistral_and_its_comparisons_are_not_testable(tmp_path, monkeypatch):
    folder = save_random_causal_lm("mistral", tmp_path / "mistral", tokenizer_from="sgpo-llama")
    (tmp_path / "run").mkdir()
    ledger = run_chapter_on_model("sgpo", folder, tmp_path / "run", monkeypatch)
    verdicts = {c["id"]: c["verdict"] for c in ledger["claims"]}
    comparisons = [claim for claim in verdicts if claim.startswith(("sgpo-vs-", "sgpo-beyond-"))]
    assert len(comparisons) == 4 and all(verdicts[c] == NOT_TESTABLE for c in comparisons)
    assert ledger["model"] == str(folder) and "lambda-zero-is-grpo" in verdicts
