"""CLSE's real-model path (`MODEL=<folder>`) on the random LLaVA of the PriorTR tests: a 64-pixel vision tower with
a 4 × 4 patch grid (a scene cell straddles patches), a 3-layer Llama with other widths, a processor that resizes. A
model that knows nothing must end in "not testable", never in a crash."""

import pytest
import torch
from random_models import run_chapter_on_model

from llmtheory import clse, zoo
from llmtheory import clse_experiment as cx
from llmtheory import visual_pruning as vp
from llmtheory.claims import IDENTITY, MEASURED, NOT_TESTABLE

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_library_end_to_end_on_a_random_llava(random_llava):
    model, processor = zoo.load(str(random_llava))
    items = vp.heldout(("colour", "count"), 3, seed=0)
    chunk = next(vp.chunks(model, processor, items, len(items), 0))
    assert chunk.n_image == 16 and not vp._is_zoo_processor(processor)
    methods = vp.baselines() + vp.attention_free_baselines(model) + clse.methods()
    rows = vp.evaluate(model, processor, items, 1, methods, vp.BUDGETS, batch_size=4)
    assert {r["kept"] for r in rows if r["budget"] == "1/9"} == {vp.keep_count(16, 1 / 9)}
    assert all(len(r["kept_tokens"]) == r["kept"] for r in rows)
    agreement = cx.ranking_agreement(model, processor, items, 1, {"1/3": 1 / 3})
    assert set(agreement["other"]) == {"CLSE (no high-pass)", clse.MEAN_REMOVED, "one layer (S^K)", cx.FACTOR, "FastV"}
    maps = cx.example_maps(model, processor, items[:2], 1, 1 / 9)
    assert maps[0]["I"].shape == (4, 4)
    plans, kept = cx.timing_plans(chunk.n_image, 1 / 9)
    timings = vp.time_plans(model, chunk.inputs, 1, plans, decode_tokens=1, repeats=1, seed=0)
    sequence = chunk.inputs["input_ids"].shape[1]
    assert vp.caches_hold(timings, vp.Shapes.of(model), len(items), sequence, chunk.n_image, kept)
    assert not vp.caches_hold(timings, vp.Shapes.of(model), len(items), sequence, chunk.n_image, kept | {"CLSE": 3})
    features, cls = vp.vision_cues(model, chunk.inputs["pixel_values"])
    assert features.shape[:2] == cls.shape == (len(items), 16) and torch.isfinite(cls).all()


@pytest.mark.notebook
def test_chapter_runs_on_a_random_llava_folder(random_llava, tmp_path, monkeypatch):
    ledger = run_chapter_on_model("clse", random_llava, tmp_path, monkeypatch, PER_KIND=3)
    assert ledger["model"] == str(random_llava)
    accuracy_rows = [c for c in ledger["claims"] if c["kind"] == MEASURED and "not testable" in c["ours"]]
    assert {c["id"] for c in accuracy_rows} == {"hybrid-beats-fastv", "clse-beats-chance-and-fastv", "clse-vs-dart",
                                                "evolution-helps", "mean-removal-helps", "retention-1/9"}  # fmt: skip
    assert all(c["verdict"] == NOT_TESTABLE for c in accuracy_rows)
    assert all(c["verdict"] == "check passed" for c in ledger["claims"] if c["kind"] == IDENTITY)
    assert any(c["id"] == "dc-removal" for c in ledger["claims"])  # a 4 × 4 grid: the mean removal again
