"""The model zoo: every shipped checkpoint loads with the Auto classes and behaves as its card says (on a small
sample); hub ids fail clearly offline; a micro spec trains end to end, deterministically, in seconds."""

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

from llmtheory import toyworld as tw
from llmtheory import zoo
from llmtheory.params import ParameterError
from llmtheory.zoo.evaluate import fact_report, greedy_replies, needle_dialogue_report, needle_report
from llmtheory.zoo.train import train

FACT_MODELS = [n for n in zoo.list() if zoo.SPECS[n].task == "facts"]
NEEDLE_MODELS = [n for n in zoo.list() if zoo.SPECS[n].task == "needles"]
FAMILY_CLASS = {
    "llama": "LlamaForCausalLM",
    "gpt2": "GPT2LMHeadModel",
    "gpt_neox": "GPTNeoXForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
}


@pytest.fixture(scope="module")
def world():
    return tw.make_world(0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_zoo_has_the_families_sizes_and_budgets_the_book_needs():
    specs = [zoo.SPECS[n] for n in FACT_MODELS]
    assert {s.family for s in specs} >= {"llama", "gpt2", "gpt_neox", "qwen2"}
    assert all(s.layers >= 8 for s in specs)
    llama_sizes = {s.hidden for s in specs if s.family == "llama"}
    assert len(llama_sizes) >= 3
    assert any(s.family == "llama" and s.kv_heads < s.heads for s in specs)
    needle = zoo.SPECS["needle-llama-gqa"]
    assert needle.family == "llama" and needle.heads // needle.kv_heads >= 2
    long = zoo.SPECS["needle-llama-gqa-4k"]  # the KV-cache chapter's long-context retriever
    assert long.family == "llama" and long.heads >= 8 and long.heads // long.kv_heads >= 4
    assert max(stage[1] for stage in long.curriculum) >= 4000 and long.max_positions >= 4200
    total = 0
    for name in zoo.list():
        if zoo.SPECS[name].task == "plasticity":  # a trajectory artefact: tables and a few checkpoints, not a model
            from llmtheory.plasticity_zoo import missing_files

            assert not missing_files(name), f"{name}: run `python -m llmtheory.zoo train {name}`"
            total += sum(p.stat().st_size for p in zoo.model_dir(name).rglob("*") if p.is_file())
            continue
        checkpoint = zoo.model_dir(name) / "model.safetensors"
        assert checkpoint.is_file(), f"{name}: run `python -m llmtheory.zoo train {name}`"
        assert checkpoint.stat().st_size <= 8 * 2**20
        total += sum(p.stat().st_size for p in zoo.model_dir(name).iterdir())
    assert total <= 60 * 2**20


# VLMs: tests/test_vlm.py; the qLDPC grammar model reads specifications, not English: tests/test_qldpc_sce_proposer.py;
# the screenplay model: tests/test_bechdel.py; the README summarizer (a byte-level BPE): tests/test_metagente_lm.py;
# the dual encoder (CLIP): tests/test_adaq.py; the same_lesson story models: tests/test_same_lesson_lm.py; the sgpo
# base policy (digits and procedure words only): tests/test_sgpo_lm.py; the plasticity trajectory artefacts (tables,
# not models): tests/test_plasticity_zoo.py
OWN_TESTS = (
    "vlm", "sce_specs", "screenplays", "readme_summaries", "clip", "proverb_stories", "sgpo_procedures", "plasticity",
)  # fmt: skip


@pytest.mark.parametrize("name", [n for n in zoo.list() if zoo.SPECS[n].task not in OWN_TESTS])
def test_every_model_loads_with_the_auto_classes_and_has_a_card(name):
    folder = zoo.model_dir(name)
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if zoo.SPECS[name].family == "qwen2":
        # transformers 5 forces Qwen2Tokenizer (a byte-level BPE) on model_type "qwen2"; zoo.load uses the
        # generic fast class, which reads the saved word-level tokenizer exactly.
        assert type(tokenizer).__name__ == "Qwen2Tokenizer"
        tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
    assert type(model).__name__ == FAMILY_CLASS[zoo.SPECS[name].family]
    generic = PreTrainedTokenizerFast.from_pretrained(folder)
    assert tokenizer("what is the capital of")["input_ids"] == generic("what is the capital of")["input_ids"]
    assert model.config.num_hidden_layers == zoo.SPECS[name].layers
    assert tokenizer.unk_token_id not in tokenizer(tw.ABSTENTION)["input_ids"]
    card = zoo.card(name)
    assert "Measured behaviour" in card and f"{zoo.card_data(name)['parameters']:,}" in card


@pytest.mark.parametrize("name", FACT_MODELS)
def test_fact_models_know_frequent_facts_hallucinate_on_rare_and_abstain_on_unknown(name, world):
    model, tokenizer = zoo.load(name)
    report = fact_report(model, tokenizer, world, heldout_template=False)
    assert report["exact_frequent"] >= 0.9, report
    assert report["exact_rare"] <= report["exact_frequent"] - 0.2, report
    assert report["abstain_unknown"] >= 0.9, report
    assert report["abstain_frequent"] <= 0.05, report
    card = zoo.card_data(name)["metrics"]
    for key in ("exact_frequent", "exact_medium", "exact_rare", "abstain_unknown"):
        assert card[key] == pytest.approx(report[key], abs=1e-3), key  # the card measured this very checkpoint


@pytest.mark.parametrize("name", NEEDLE_MODELS)
def test_retrieval_model_finds_needles_in_long_contexts(name, world):
    model, tokenizer = zoo.load(name)
    assert model.config.num_key_value_heads < model.config.num_attention_heads
    report = needle_report(model, tokenizer, world, n_words=1024, per_depth=4, depths=(0.1, 0.5, 0.9), seed=1)
    assert report["tokens"] >= 1000
    assert report["mean"] >= 0.9, report
    dialogue = needle_dialogue_report(model, tokenizer, world, n_words=512, n_contexts=4, questions=3, seed=1)
    assert min(dialogue.values()) >= 0.75, dialogue
    card = zoo.card_data(name)["metrics"]
    assert card["mean"] >= 0.95 and card["tokens"] >= 1000, card
    if max(stage[1] for stage in zoo.SPECS[name].curriculum) >= 4000:  # the long-context retriever
        assert card["tokens"] >= 4000, card


def test_the_zoo_ships_a_retrieval_model():
    assert NEEDLE_MODELS[0] == "needle-llama-gqa" and set(NEEDLE_MODELS) <= {"needle-llama-gqa", "needle-llama-gqa-4k"}


def test_greedy_reply_of_a_frequent_fact_is_exact(world):
    model, tokenizer = zoo.load("fact-llama-h64")
    fact = next(f for f in world.facts if f.rank == 1)
    (reply,) = greedy_replies(model, tokenizer, [tw.fact_prompt(fact)])
    assert tw.parse_answer(reply) == fact.answer


def test_a_hub_id_offline_fails_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(zoo.ZooError) as caught:
        zoo.load("no-such-org/no-such-model")
    message = str(caught.value)
    assert "no-such-org/no-such-model" in message and all(n in message for n in zoo.list())
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_bad_names_list_the_valid_choices(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ParameterError, match=zoo.list()[0]):
        zoo.model_dir("fact-llama-h65")
    with pytest.raises(zoo.ZooError, match="did you mean"):
        zoo.load("fact-llama-h65")
    from llmtheory.zoo.__main__ import main

    assert main(["train", "nonsense"]) == 2
    assert main(["list"]) == 0


def test_train_says_when_a_gate_stopped_the_run_and_nothing_was_saved(tmp_path, monkeypatch, capsys):
    from llmtheory import metagente_lm
    from llmtheory.zoo.__main__ import main
    from llmtheory.zoo.train import TrainResult

    def gated(spec, out, **options):
        return TrainResult(spec, {"stopped_at_step": 800.0}, parameters=10)

    monkeypatch.setattr(metagente_lm, "train", gated)
    assert main(["train", "micro-readme-summarizer", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert "stopped at step 800 by its gate, nothing saved to" in capsys.readouterr().out


def test_micro_spec_trains_end_to_end_deterministically(tmp_path):
    spec = zoo.SPECS["micro-facts"]
    first = train(spec, tmp_path / "a", progress=False)
    train(spec, tmp_path / "b", progress=False)
    a, b = (load_file(tmp_path / d / "model.safetensors") for d in "ab")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert {"exact_frequent", "abstain_unknown", "arithmetic"} <= first.metrics.keys()
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "a")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "a")
    assert model.config.vocab_size == len(tokenizer)
    assert "micro-facts" in (tmp_path / "a" / "README.md").read_text()
    assert (tmp_path / "a" / "training_log.csv").read_text().startswith("step,loss")


def test_micro_needle_spec_trains_end_to_end(tmp_path):
    result = train(zoo.SPECS["micro-needles"], tmp_path, progress=False)
    assert set(result.metrics) >= {"mean", "tokens"}
    assert type(AutoModelForCausalLM.from_pretrained(tmp_path)).__name__ == "GPTNeoXForCausalLM"


def test_the_zoo_page_shows_the_table_the_cards_give():
    from pathlib import Path

    from llmtheory.zoo.__main__ import table

    page = (Path(__file__).resolve().parents[1] / "book" / "zoo.md").read_text()
    assert table().strip() in page, "book/zoo.md is stale: paste `python -m llmtheory.zoo table` into it"


def test_the_zoo_page_code_runs_and_the_model_answers_its_example():
    """The page's code cells execute when the book is built; run them here so `make test` sees a break first."""
    import re
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    page = (Path(__file__).resolve().parents[1] / "book" / "zoo.md").read_text()
    cells = re.findall(r"```\{code-cell\} python\n(?::tags: [^\n]*\n)?(.*?)```", page, re.S)
    assert len(cells) == 2
    namespace: dict = {}
    for cell in cells:
        exec(compile(cell, "book/zoo.md", "exec"), namespace)  # noqa: S102 - the page's own code
    assert namespace["reply"](namespace["image"], namespace["question"]) == namespace["question"].answer
    assert len(namespace["fig"].axes) == 8


def test_display_name_hides_this_machines_path_and_keeps_hub_ids(tmp_path):
    from llmtheory import zoo

    assert zoo.display_name(str(tmp_path / "tiny-model")) == "tiny-model"
    assert zoo.display_name("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"
    assert zoo.display_name(str(zoo.model_dir("needle-llama-gqa-4k"))) == "needle-llama-gqa-4k"
