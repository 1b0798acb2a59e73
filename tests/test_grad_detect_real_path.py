"""Grad Detect's real-model path (`MODEL=<folder>`) on small random models of architectures the zoo lacks.

A model that knows nothing gives no correct answers and no refusals: every task must be left out with its reason,
and the chapter must end with "not testable" rows, never a crash.
"""

import numpy as np
import pytest
import torch
from random_models import run_chapter_on_model, save_random_causal_lm

from llmtheory import grad_detect as gd
from llmtheory import grad_detect_experiment, zoo
from llmtheory import toyworld as tw
from llmtheory.claims import MEASURED, NOT_TESTABLE

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("architecture", ["mistral", "phi3", "gemma2"])
def test_library_end_to_end_on_a_random_model(architecture, tmp_path):
    model, tokenizer = zoo.load(str(save_random_causal_lm(architecture, tmp_path)))
    items = gd.toy_items(tw.make_world(0))[::40]
    answers = grad_detect_experiment.answer_and_label(model, tokenizer, items, max_new_tokens=4)
    detection = grad_detect_experiment.detection_features(
        model, tokenizer, answers, seed=0, random_control="correctness"
    )
    assert detection.tasks == [] and set(detection.untestable) == set(gd.TASKS)
    assert all("at least" in reason for reason in detection.untestable.values())
    # what the chapter runs regardless of the tasks: features, memory, costs, controls
    batch = gd.probe_batch(tokenizer, answers.prompts[:3], tw.PROBE_POSITIVE)
    references = gd.random_references(torch.empty(2, *gd.down_shape(model)), seed=0)
    explicit = gd.cosine_features(gd.layer_gradients(model, batch), references.flatten(2))
    assert torch.allclose(gd.activation_cosines(gd.probe_activations(model, batch), references), explicit, atol=1e-5)
    memory = gd.memory_estimate(model, batch_size=4, tokens=20, reference_classes=16)
    assert memory["total"] > memory["weights"] > 0
    timings = grad_detect_experiment.measure_costs(
        model, tokenizer, answers.prompts[:1], references, last_k=1, max_new_tokens=2, repeats=1
    )
    assert set(timings["method"]) >= {"forward pass", "Grad Detect, all layers", "semantic entropy (10 samples)"}
    assert gd.refusal_logprob(model, tokenizer, answers.prompts).shape == (len(items), 1)
    assert gd.self_assessment_scores(model, tokenizer, items[:2], ["a", "b"]) is None  # word-level toy vocabulary
    assert 1 < gd.forward_equivalents(model) < 3
    assert grad_detect_experiment.layer_ablation([detection], 2) == []
    assert np.isfinite(gd.time_estimate(model, n_items=10, prompt_tokens=10, answer_tokens=4, flops_per_second=1e9)[
        "gradient features"])  # fmt: skip


@pytest.mark.notebook
def test_chapter_runs_on_a_random_mistral_folder(tmp_path, monkeypatch):
    folder = save_random_causal_lm("mistral", tmp_path / "mistral")
    ledger = run_chapter_on_model("grad_detect", folder, tmp_path, monkeypatch, MODELS=[str(folder)])
    assert ledger["model"] == str(folder)
    detection_rows = [c for c in ledger["claims"] if c["kind"] == MEASURED and not c["id"].startswith("cost")]
    assert detection_rows and all(c["verdict"] == NOT_TESTABLE for c in detection_rows)
    assert all(c["verdict"] != NOT_TESTABLE or c["ours"] for c in ledger["claims"])  # with the reason
