"""sgpo's real-model path (`MODEL=<folder or hub id>`) on a small random model of an architecture the zoo lacks,
saved to a folder like a hub download: the whole chapter runs at the smoke tier, every arm spends its budget (the
notebook's `check_budgets` raises otherwise), the accuracy table has every arm and split, the selectivity ratio is
finite or not testable, and a policy that solves nothing leaves every comparison row not testable (the strategy gate
and the did-it-train gate), never a crash. The model gets a byte-level BPE tokenizer trained here, so the subword
path of the Colab section (labels on decoded pieces, `verify` on decoded text) runs end to end. (tests/test_sgpo.py
runs every arm on a saved random Mistral; the notebook tests run the chapter on the zoo model.)"""

import json
import math
import re

import pytest
import torch
from random_models import run_chapter_on_model, save_random_causal_lm

from llmtheory import sgpo
from llmtheory import sgpo_experiment as se
from llmtheory import sgpo_lm as sl
from llmtheory.claims import NOT_TESTABLE

pytestmark = [pytest.mark.notebook, pytest.mark.usefixtures("one_torch_thread")]


def byte_level_bpe(problems):
    """A byte-level BPE tokenizer trained on the problems' texts (digits and words split into subword pieces)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    corpus = [sgpo.training_text(p, guided) for p in problems for guided in (False, True)]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    core.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   padding_side="left")  # fmt: skip


def save_with_tokenizer(folder, tokenizer):
    """Replace the saved random model's tokenizer by ``tokenizer``, resizing its embeddings to match."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    torch.manual_seed(0)
    model.resize_token_embeddings(len(tokenizer))
    for name in ("pad", "bos", "eos"):
        setattr(model.config, f"{name}_token_id", getattr(tokenizer, f"{name}_token_id"))
        setattr(model.generation_config, f"{name}_token_id", getattr(tokenizer, f"{name}_token_id"))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _output_text(notebook, needle: str) -> str:
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "code" and needle in "".join(c["source"]))
    return "".join("".join(o.get("data", {}).get("text/plain", o.get("text", ""))) for o in cell["outputs"])


def _check_the_run(ledger, workdir, folder):
    verdicts = {c["id"]: c["verdict"] for c in ledger["claims"]}
    comparisons = [claim for claim in verdicts if claim.startswith(("sgpo-vs-", "sgpo-beyond-"))]
    assert len(comparisons) == 4 and all(verdicts[c] == NOT_TESTABLE for c in comparisons)
    assert ledger["model"] == str(folder) and "lambda-zero-is-grpo" in verdicts
    selectivity = next(c for c in ledger["claims"] if c["id"] == "kl-selectivity")
    numbers = [float(x) for x in re.findall(r"[-+]?\d+\.\d+", selectivity["ours"])]
    assert selectivity["verdict"] == NOT_TESTABLE or all(math.isfinite(x) and abs(x) < 1e6 for x in numbers)
    notebook = json.loads((workdir / "out.ipynb").read_text())
    assert "every run spent its budget" in _output_text(notebook, "check_budgets")
    table = _output_text(notebook, "accuracy_table(")
    for name in (*sgpo.ARMS, *sl.EVAL_SPLITS, "base"):
        assert name in table, f"{name} missing from the accuracy table:\n{table}"
    assert all(name in table for name in se.VARIANTS)  # the smoke tier runs both controls


def test_the_chapter_runs_on_a_random_mistral_with_a_byte_level_bpe_tokenizer(tmp_path, monkeypatch):
    tokenizer = byte_level_bpe(sl.splits()["train"][:400])
    pieces = tokenizer.tokenize(" 3 1 4 -> 4 1 3 ; strategy : cumsum")
    assert len(pieces) > 8 and any(len(p) > 1 for p in pieces)  # subword pieces, not one token per character
    folder = save_random_causal_lm("mistral", tmp_path / "bpe", tokenizer_from="sgpo-llama")
    save_with_tokenizer(folder, tokenizer)
    (tmp_path / "run").mkdir()
    ledger = run_chapter_on_model("sgpo", folder, tmp_path / "run", monkeypatch)
    _check_the_run(ledger, tmp_path / "run", folder)
