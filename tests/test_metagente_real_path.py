"""The Metagente chapter's transformers back end on a zoo model, served over HTTP (slower: it imports torch)."""

import pytest

from llmtheory.metagente_llm import OpenAICompatibleLLM, TransformersLLM, serve_locally


def test_a_zoo_model_serves_completions_over_http():
    model = TransformersLLM("fact-llama-h48", max_new_tokens=4)
    with serve_locally(model) as url:
        answer = OpenAICompatibleLLM(url, "fact-llama-h48", api_key_env="METAGENTE_NO_KEY", timeout=30)("a b c")
    assert answer == model("a b c") and isinstance(answer, str)


def test_a_missing_model_gives_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(LookupError, match="not a zoo model"):
        TransformersLLM("no-such-org/no-such-model")


def test_the_chapter_runs_on_an_architecture_the_zoo_lacks(tmp_path, monkeypatch):
    from random_models import run_chapter_on_model, save_random_causal_lm

    folder = save_random_causal_lm("mistral", tmp_path / "mistral")
    ledger = run_chapter_on_model("metagente", folder, tmp_path, monkeypatch)
    verdicts = {c["id"]: c["verdict"] for c in ledger["claims"]}
    assert verdicts["real-llm-gain"] == "not testable at this scale"  # a model that knows nothing: no crash
    assert ledger["model"] == str(folder)


def test_a_long_prompt_loses_its_text_not_its_instructions():
    from llmtheory import metagente as mg

    model = TransformersLLM("fact-llama-h48", max_new_tokens=4)
    prompt = mg.fill(mg.INITIAL_SUMMARIZER_PROMPT, " ".join(["the"] * 2000))
    ids, full = model._encode(prompt), model._ids(prompt)
    budget = min(model.max_prompt_tokens, model.model.config.max_position_embeddings - model.max_new_tokens)
    assert full.shape[1] > budget >= ids.shape[1]
    assert ids[0, :8].tolist() == full[0, :8].tolist()  # the instructions' start survives
    assert ids[0, -3:].tolist() == full[0, -3:].tolist()  # and so does what follows the text slot
