"""The plasticity chapter's real-model path (`MODEL=<folder>`) on a small random GPT-NeoX saved to a folder like a hub
download (an architecture the chapter's zoo artefacts do not use, with a byte-level BPE tokenizer from the zoo): the
whole chapter runs at the smoke tier, the real-path section prints the memory estimate and probes the model against
fresh initialisations of its configuration, and a model that knows nothing is reported *not testable*, never a
crash. The ledger's rows come from the zoo artefacts whatever MODEL is, so they must be the same as on the default."""

import json

import pytest
import torch
from random_models import run_chapter_on_model

from llmtheory import zoo

pytestmark = [pytest.mark.notebook, pytest.mark.usefixtures("one_torch_thread")]


def save_random_neox(folder):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    tokenizer = zoo.load("story-neox")[1]
    config = GPTNeoXConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, max_position_embeddings=64, bos_token_id=tokenizer.bos_token_id,
                           eos_token_id=tokenizer.eos_token_id)  # fmt: skip
    torch.manual_seed(0)
    GPTNeoXForCausalLM(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _output_text(notebook, needle: str) -> str:
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "code" and needle in "".join(c["source"]))
    return "".join("".join(o.get("data", {}).get("text/plain", o.get("text", ""))) for o in cell["outputs"])


def test_the_chapter_probes_a_random_gpt_neox_folder_and_reports_it_not_testable(tmp_path, monkeypatch):
    folder = save_random_neox(tmp_path / "neox")
    (tmp_path / "run").mkdir()
    ledger = run_chapter_on_model("plasticity", folder, tmp_path / "run", monkeypatch)
    notebook = json.loads((tmp_path / "run" / "out.ipynb").read_text())
    real = _output_text(notebook, "plasticity.real_path(")
    assert "parameters: probing one checkpoint needs about" in real  # the memory estimate, printed first
    assert f"{folder}: N = " in real and "G(T) 0: " in real  # its one checkpoint, probed, with its gap
    assert "→ not testable:" in real, real
    assert {c["id"] for c in ledger["claims"]} >= {"loss-appears", "onset-sublinear", "stationary-too", "n-count"}
    assert all(c["verdict"] for c in ledger["claims"])
