"""Entrainment's real-model path (`MODEL=<folder>`) on small random models of architectures the zoo lacks.

The head-mask hooks must find W_O on Mistral, Phi-3 and Gemma-2 and match zeroing a head's slice by hand; a model
that knows nothing predicts the toy sentences no better than chance, so its entrainment rows are not testable.
"""

import pytest
from random_models import run_chapter_on_model, save_random_causal_lm
from test_entrainment import assert_mask_parity

from llmtheory import entrainment as en
from llmtheory import entrainment_experiment as ex
from llmtheory import toyworld as tw
from llmtheory import zoo
from llmtheory.claims import MEASURED, NOT_TESTABLE

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("architecture", ["mistral", "phi3", "gemma2"])
def test_hooks_and_search_on_a_random_model(architecture, tmp_path):
    model, tokenizer = zoo.load(str(save_random_causal_lm(architecture, tmp_path)))
    layout = en.head_layout(model)
    assert (layout.layers, layout.heads) == (2, 4) and layout.head_dim == 16
    assert_mask_parity(model, tokenizer)
    world = tw.make_world(0)
    items = ex.make_items(world, 4, seed=0)
    frame = ex.item_deltas(model, tokenizer, items, en.heads_off(layout, [(0, 1)]))
    assert not ex.predicts_sentences(frame, len(tokenizer))  # random weights: no better than uniform guessing
    objective = ex.of_kind(items, "true")
    result = en.search_heads(model, tokenizer, [i.sentence for i in objective], [i.with_context for i in objective],
                             [i.without_context for i in objective], steps=3, seed=0)  # fmt: skip
    assert result.logits.shape == (2, 4)


def test_head_rows_on_a_random_model_are_not_testable_for_want_of_questions(tmp_path):
    folder = save_random_causal_lm("mistral", tmp_path)
    model, tokenizer = zoo.load(str(folder))
    world = tw.make_world(0)
    items = ex.of_kind(ex.make_items(world, 6, seed=0), "true", "counterfactual")
    questions = ex.accuracy_questions(str(folder), world, 440, tokenizer)  # the capitals, not the toy world's facts
    assert questions == ([], [])  # the zoo's tokenizer (saved with the random model) spells no capital
    ablation = ex.run_ablation(model, tokenizer, questions, items[:6], items[6:], steps=3, draws=2, seed=0,
                               batch_size=8, progress=False)  # fmt: skip
    assert ablation.hits_full.shape == (0,) and ablation.delta_random.shape == (2, len(items) - 6)
    estimates = ex.ablation_estimates(ablation, seed=0)
    row = ex.accuracy_rule(estimates)
    assert row["testable"] is False and row["ours"]  # no head off after 3 steps, or no question: said which


@pytest.mark.notebook
def test_chapter_runs_on_a_random_mistral_folder(tmp_path, monkeypatch):
    folder = save_random_causal_lm("mistral", tmp_path / "mistral")
    ledger = run_chapter_on_model("entrainment", folder, tmp_path, monkeypatch)
    assert ledger["model"] == str(folder)
    zoo_rows = ("size-trend", "copy-")  # measured on the zoo's models whatever MODEL is
    about_model = [c for c in ledger["claims"] if c["kind"] == MEASURED and not c["id"].startswith(zoo_rows)]
    assert about_model and all(c["verdict"] == NOT_TESTABLE for c in about_model)
    assert all(c["verdict"] != NOT_TESTABLE or c["ours"] for c in ledger["claims"])  # with the reason
