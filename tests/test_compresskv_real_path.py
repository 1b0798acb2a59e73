"""CompressKV's real-model path (`MODEL=<folder>`) on small random models of architectures the zoo lacks.

A model that knows nothing retrieves nothing: the accuracy claims must end "not testable" with the reason, never in
a crash, and everything else (prefill statistics, every method's cache surgery, isolated layer errors, head scores,
masking, timings, the memory estimate) must run on Mistral, Phi-3 and Gemma 2 alike.
"""

import numpy as np
import pandas as pd
import pytest
import torch
from random_models import run_chapter_on_model, save_random_causal_lm

from llmtheory import compresskv as ckv
from llmtheory import compresskv_experiment as experiment
from llmtheory import toyworld as tw
from llmtheory import zoo
from llmtheory.claims import MEASURED, NOT_TESTABLE
from llmtheory.seeding import make_rng

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("architecture", ["mistral", "phi3", "gemma2"])
def test_library_end_to_end_on_a_random_model(architecture, tmp_path):
    model, tokenizer = zoo.load(str(save_random_causal_lm(architecture, tmp_path)), attn_implementation="eager")
    ckv.use_ragged_attention(model)
    shape = ckv.geometry(model)
    world = tw.make_world(0)
    items = experiment.needle_items(world, tokenizer, make_rng(0, "real"), n=2, n_words=80, depth=0.5, n_distractors=3,
                             n_followups=1)  # fmt: skip
    states = [ckv.prefill(model, item.prompt) for item in items]
    # the blocked prefill statistics equal the eager attention matrices, on this architecture too
    out = model(input_ids=torch.tensor([items[0].prompt[:-1]]), output_attentions=True)
    eager = torch.stack([a[0] for a in out.attentions])
    torch.testing.assert_close(states[0].window_attention, eager[:, :, -ckv.WINDOW :], atol=1e-5, rtol=0)
    heads = ckv.retrieval_head_scores(model, items, states)
    semantic = ckv.top_heads_per_layer(heads.semantic, 1)
    weights = ckv.calibrate_layer_weights(model, items, states, semantic, 0.2)
    assert weights.shape == (shape.layers,) and np.isclose(weights.sum(), 1.0)
    calibration = ckv.Calibration(
        semantic, experiment.random_heads_per_layer(shape, 1, make_rng(0, "r")), {0.2: weights}
    )
    scorer = ckv.Scorer(tokenizer, min_new_tokens=4)
    rows = pd.DataFrame(experiment.accuracy_sweep(model, items, states, ckv.METHODS, (0.2, 1.0), calibration, scorer))
    assert set(rows["method"]) == set(ckv.METHODS) and not rows["correct"].all()
    multi = experiment.multi_question_sweep(model, items, states, ("full", "compresskv"), (0.2, 1.0), calibration)
    assert {r["question"] for r in multi} == {0, 1}
    masking = pd.DataFrame(experiment.masking_experiment(model, items, heads, counts=(1,), seed=0, draws=2))
    assert len(experiment.masking_summary(masking)) >= 3
    plans = {
        "full": calibration.plan("full", states[0], 1.0, shape),
        "c": calibration.plan("compresskv", states[0], 0.2, shape),
    }
    timings = pd.DataFrame(experiment.decode_timing(model, states[0], plans, n_tokens=2, repeats=2))
    assert np.isfinite(experiment.time_ratio(timings, "c", "full").value)
    estimate = experiment.plan_estimate(experiment.model_shapes(model), 100, 2, 10, flops_per_second=1e9)
    assert estimate["weights_gb"] > 0 and estimate["hours"] > 0


@pytest.mark.notebook
def test_chapter_runs_on_a_random_mistral_folder(tmp_path, monkeypatch):
    folder = save_random_causal_lm("mistral", tmp_path / "mistral")
    ledger = run_chapter_on_model("compresskv", folder, tmp_path, monkeypatch, DECODE_TOKENS=8)
    assert ledger["model"] == str(folder)
    accuracy_rows = [
        c for c in ledger["claims"] if c["kind"] == MEASURED and c["id"] != "decode-time"
    ]  # timed, not accuracy
    assert accuracy_rows and all(c["verdict"] == NOT_TESTABLE for c in accuracy_rows)
    assert all("not testable" in c["ours"] for c in accuracy_rows)  # with the reason
