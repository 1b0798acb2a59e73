"""PriorTR's real-model path (`MODEL=<folder>`) on a random LLaVA whose dimensions differ from the zoo's: a 64-pixel
vision tower with 16 patches (4 × 4 grid, so a scene cell straddles patches), a 3-layer Llama with other widths,
and a processor that resizes. A model that knows nothing must end in "not testable", never in a crash."""

import pytest
import torch
from random_models import byte_level_tokenizer, run_chapter_on_model, save_random_llava

from llmtheory import priortr as pt
from llmtheory import priortr_experiment as px
from llmtheory import scenes as sc
from llmtheory import visual_pruning as vp
from llmtheory import zoo
from llmtheory.claims import IDENTITY, MEASURED, NOT_TESTABLE

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_library_end_to_end_on_a_random_llava(random_llava):
    model, processor = zoo.load(str(random_llava))
    items = vp.heldout(("colour", "count"), 3, seed=0)
    chunk = next(vp.chunks(model, processor, items, len(items), 0))
    assert chunk.n_image == 16 and not vp._is_zoo_processor(processor)  # the processor path, not the fast one
    layer = 2
    methods = vp.baselines() + pt.methods() + [pt.two_forward_method(model, processor, layer)]
    rows = vp.evaluate(model, processor, items, layer, methods, vp.BUDGETS, batch_size=4)
    assert {r["kept"] for r in rows if r["budget"] == "1/9"} == {vp.keep_count(16, 1 / 9)}
    assert all(r["recall"] == 1 for r in rows if r["method"] == "ceiling")
    evidence = px.prior_evidence(model, processor, items, layer)
    assert evidence["max_difference"] <= 1e-6
    maps = px.example_maps(model, processor, items[:2], layer)
    assert maps[0]["S"].shape == (4, 4)
    plans = px.timing_plans(model, chunk.inputs, chunk.n_image, 1 / 9)
    timings = vp.time_plans(model, chunk.inputs, layer, plans, decode_tokens=1, repeats=1, seed=0)
    sequence = chunk.inputs["input_ids"].shape[1]
    assert vp.caches_hold(
        timings, vp.Shapes.of(model), len(items), sequence, chunk.n_image, px.kept_by_plan(chunk.n_image, 1 / 9)
    )
    assert not vp.caches_hold(
        timings, vp.Shapes.of(model), len(items), sequence, chunk.n_image, px.kept_by_plan(chunk.n_image, 1 / 3)
    )
    depth = px.depth_table(vp.depth_curve(model, processor, items))
    assert list(depth.index) == [0, 1, 2, 3]


def test_a_llama_style_tokenizer_gets_llavas_template_and_multi_token_answers(tmp_path):
    model, processor = zoo.load(str(save_random_llava(tmp_path, tokenizer=byte_level_tokenizer())))
    assert vp.prompt_text(processor, "what colour is the circle ?").startswith("USER: <image>\nWhat colour")
    assert vp.prompt_text(processor, "") == "USER: <image>\n ASSISTANT:"
    tokenizer = processor.tokenizer
    answers, ids = vp.answer_token_ids(processor, "colour")
    assert "red" not in tokenizer.get_vocab()  # the branch that tokenizes the spellings
    red = ids[answers.index("red")]
    assert red == sorted({tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("red", "Red")})
    items = vp.heldout(("colour", "count"), 2, seed=0)
    chunk = next(vp.chunks(model, processor, items, len(items), 0))
    assert chunk.n_image == 16 and chunk.inputs["input_ids"].shape[0] == 4
    images = [s.image() for s, _ in items]
    template = pt.two_forward_prior(model, processor, chunk.inputs, images, 2, "template")
    assert template.shape == (4, 16) and torch.isfinite(template).all()
    rows = vp.evaluate(model, processor, items, 2, pt.methods()[:1], {"1/9": 1 / 9}, batch_size=4)
    guesses = {r["method"]: r for r in rows}
    assert guesses["PriorTR"]["kept"] == 2 and guesses["ceiling"]["recall"] == 1


@pytest.mark.notebook
def test_chapter_runs_on_a_random_llava_folder(random_llava, tmp_path, monkeypatch):
    ledger = run_chapter_on_model("priortr", random_llava, tmp_path, monkeypatch, PER_KIND=3)
    assert ledger["model"] == str(random_llava)
    accuracy_rows = [c for c in ledger["claims"] if c["kind"] == MEASURED and not c["timed"]]
    assert accuracy_rows and all(c["verdict"] == NOT_TESTABLE for c in accuracy_rows)
    assert all("not testable" in c["ours"] for c in accuracy_rows)  # with the reason
    assert all(c["verdict"] == "check passed" for c in ledger["claims"] if c["kind"] == IDENTITY)
    assert sc.GRID == 6  # the scenes stay 6 × 6 whatever the model's grid
