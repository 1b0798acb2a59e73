"""Small randomly initialised causal LMs of architectures the zoo does not have, saved like a hub download.

A chapter's real-model path (`MODEL=<folder>`) is tested on them: nothing keyed to the zoo's four families may
break, and a model that knows nothing must end in "not testable", never in a crash. The tokenizer is the zoo's
word-level one (from `tokenizer_from`), so prompts of the toy world tokenize; the weights know nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import transformers

from llmtheory import zoo

ARCHITECTURES: dict[str, tuple[str, str, dict]] = {
    # name: (config class, model class, architecture-specific settings); 2 layers, GQA (4 query / 2 KV heads)
    "mistral": ("MistralConfig", "MistralForCausalLM", {"sliding_window": None}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {}),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", {"head_dim": 16, "query_pre_attn_scalar": 16}),
}


def save_random_causal_lm(
    architecture: str, folder: Path, *, tokenizer_from: str = "fact-llama-h64", seed: int = 0, layers: int = 2
) -> Path:
    """Write a random ``architecture`` model (one of :data:`ARCHITECTURES`) and a zoo tokenizer to ``folder``."""
    config_name, model_name, extra = ARCHITECTURES[architecture]
    tokenizer = zoo.load(tokenizer_from)[1]
    config = getattr(transformers, config_name)(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **extra,
    )
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(config).eval()
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run_chapter_on_model(slug: str, folder: Path, workdir: Path, monkeypatch, **parameters) -> dict:
    """Execute chapter ``slug`` at the smoke tier with ``MODEL=<folder>`` (plus ``parameters``); return its ledger."""
    import papermill

    from llmtheory.paths import repo_root

    monkeypatch.setenv("LLMTHEORY_CLAIMS_DIR", str(workdir / "claims"))
    notebook = repo_root() / "notebooks" / f"{slug}.ipynb"
    papermill.execute_notebook(
        str(notebook),
        str(workdir / "out.ipynb"),
        parameters={"SCALE": "smoke", "MODEL": str(folder), **parameters},
        cwd=str(notebook.parent),
        kernel_name="python3",
        progress_bar=False,
    )
    return json.loads((workdir / "claims" / "smoke" / f"{slug}.json").read_text())
