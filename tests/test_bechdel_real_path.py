"""The bechdel chapter's model path on a model the zoo lacks: a randomly initialised Mistral (and Gemma 2)
writes nothing the parser can measure; the library and the chapter say "not testable", and nothing crashes."""

import pytest
from random_models import run_chapter_on_model, save_random_causal_lm

from llmtheory import bechdel_lm as lm
from llmtheory import zoo
from llmtheory.claims import NOT_TESTABLE

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_random_model_writes_nothing_measurable_and_nothing_crashes(tmp_path):
    model, tokenizer = zoo.load(str(save_random_causal_lm("mistral", tmp_path)))
    texts = lm.sample_scripts(model, tokenizer, 2, seed=0, max_new_tokens=12)
    assert len(texts) == 2 and lm.testable_scripts(texts) == []


@pytest.mark.notebook
def test_chapter_runs_on_a_random_gemma2_folder(tmp_path, monkeypatch):
    folder = save_random_causal_lm("gemma2", tmp_path / "model")
    ledger = run_chapter_on_model("bechdel", folder, tmp_path, monkeypatch)
    assert ledger["model"] == str(folder)
    verdicts = {c["id"]: c["verdict"] for c in ledger["claims"]}
    keep_rows = [c for c in ledger["claims"] if c["id"].startswith("lm-keeps-")]
    assert len(keep_rows) == 4 and all(c["verdict"] == NOT_TESTABLE for c in keep_rows)
    assert all("no measurable script" in c["ours"] for c in keep_rows)
    assert verdicts["commercial-llms"] == NOT_TESTABLE
