"""PriorTR's scores (``llmtheory.priortr``) and the chapter's experiment helpers (``llmtheory.priortr_experiment``),
on closed forms and on a freshly initialised micro_vlm LLaVA."""

import math

import numpy as np
import pytest
import torch

from llmtheory import priortr as pt
from llmtheory import priortr_experiment as px
from llmtheory import scenes as sc
from llmtheory import visual_pruning as vp
from llmtheory import vlm, zoo
from llmtheory.claims import Estimate
from llmtheory.params import ParameterError
from llmtheory.seeding import make_rng
from llmtheory.zoo import vlm as zvlm

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def chunk(micro_vlm):
    model, processor = micro_vlm
    rng = make_rng(0, "test_priortr")
    items = [sc.sample(rng, [kind]) for kind in ("colour", "count", "exist", "logo", "shape")]
    return next(vp.chunks(model, processor, items, len(items), 0))


def test_scores_are_the_terms_of_kl_p_q():
    p, q = torch.tensor([[4.0, 3.0, 2.0, 1.0]]), torch.tensor([[5.0, 1.0, 2.0, 2.0]])  # not normalised
    s = pt.vinfo_scores(p, q)
    pn, qn = p / 10, q / 10
    torch.testing.assert_close(s, pn * torch.log(pn / qn), atol=1e-6, rtol=0)
    kl = float((pn * torch.log(pn / qn)).sum())
    assert s.sum().item() == pytest.approx(kl, abs=1e-6) and kl > 0
    assert torch.allclose(pt.vinfo_scores(p, p), torch.zeros_like(p), atol=1e-7)  # no task signal, no score
    assert vp.top_k(s, 2).tolist() == [[1, 2]]  # the token the question raises most, and a neutral one
    assert pt.difference_scores(p, q).sum().item() == pytest.approx(0, abs=1e-7)
    assert math.isfinite(pt.vinfo_scores(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])).sum().item())


def test_prior_and_task_attention_are_rows_of_one_attention_matrix(micro_vlm, chunk):
    model, _ = micro_vlm
    context = pt.attention_context(model, chunk.inputs, 2)
    attention = vlm.text_to_image_attention(model, chunk.inputs)[1]  # layer K − 1
    n = len(chunk.items)
    null = vlm.null_positions(model, chunk.inputs["input_ids"])
    last = vlm.last_positions(chunk.inputs["attention_mask"])
    torch.testing.assert_close(
        pt.prior_attention(context), attention[torch.arange(n), :, null].mean(1), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(
        pt.task_attention(context, "last"), attention[torch.arange(n), :, last].mean(1), atol=1e-6, rtol=0
    )
    question = torch.stack([attention[i, :, null[i] : last[i] + 1].mean(1).mean(0) for i in range(n)])
    torch.testing.assert_close(pt.task_attention(context, "question"), question, atol=1e-6, rtol=0)
    maxed = attention[torch.arange(n), :, null].max(1).values
    torch.testing.assert_close(pt.prior_attention(context, "max"), maxed, atol=1e-6, rtol=0)
    with pytest.raises(ParameterError, match="query"):
        pt.task_attention(context, "first")


def test_the_null_row_is_the_prior_of_a_second_pass_cut_after_it(micro_vlm, chunk):
    model, processor = micro_vlm
    context = pt.attention_context(model, chunk.inputs, 2)
    images = [s.image() for s, _ in chunk.items]
    truncated = pt.two_forward_prior(model, processor, chunk.inputs, images, 2, "truncate")
    assert torch.equal(truncated, pt.prior_attention(context))
    template = pt.two_forward_prior(model, processor, chunk.inputs, images, 2, "template")
    assert template.shape == truncated.shape and not torch.allclose(template, truncated)


def test_priortr_keeps_the_top_scores_inside_the_same_pass(micro_vlm, chunk):
    model, _ = micro_vlm
    context = pt.attention_context(model, chunk.inputs, 2)
    scores = pt.vinfo_scores(pt.task_attention(context), pt.prior_attention(context))
    method = pt.methods()[0]
    out = vlm.forward_dropping_visual_tokens(model, chunk.inputs, 2, method.keep(5, chunk), attentions=True)
    assert method.name == "PriorTR" and torch.equal(out.kept, vp.top_k(scores, 5))


def test_p_alone_is_priortrs_rows_without_the_prior_and_fastv_with_the_last_row(micro_vlm, chunk):
    model, _ = micro_vlm
    context = pt.attention_context(model, chunk.inputs, 2)
    alone = pt.task_only_scores()(context)
    torch.testing.assert_close(alone, pt.normalise(pt.task_attention(context, "question")), atol=0, rtol=0)
    assert torch.equal(vp.top_k(pt.task_only_scores("last")(context), 4), vp.top_k(vp.fastv_scores(context), 4))
    assert [m.name for m in pt.methods()] == ["PriorTR", "P − Q", "P alone"]


def _on_meta(rule):
    """``rule`` run with the meta device as the default: a tensor it creates without a device then clashes with
    the model's (on a GPU, that tensor would be on the CPU)."""

    def guarded(context):
        with torch.device("meta"):
            return rule(context)

    return guarded


def test_keep_rules_create_no_tensor_off_the_models_device(micro_vlm, chunk):
    model, processor = micro_vlm
    for method in vp.baselines()[:1] + pt.methods() + [pt.two_forward_method(model, processor, 2)]:
        out = vlm.forward_dropping_visual_tokens(
            model, chunk.inputs, 2, _on_meta(method.keep(4, chunk)), attentions=True
        )
        assert out.kept.shape == (len(chunk.items), 4), method.name


def test_the_second_pass_gets_inputs_on_the_models_device_and_dtype(micro_vlm, chunk, monkeypatch):
    model, processor = micro_vlm
    wide = zvlm.build_model(zoo.SPECS["micro-vlm"], processor.tokenizer).eval().double()
    seen = []
    original = pt.forward_dropping_visual_tokens

    def checked(model_, inputs, *args, **kwargs):
        seen.append(inputs["pixel_values"].dtype)
        assert all(v.device == model_.device for v in inputs.values())
        return original(model_, inputs, *args, **kwargs)

    monkeypatch.setattr(pt, "forward_dropping_visual_tokens", checked)
    images = [s.image() for s, _ in chunk.items]
    inputs = vp.to_model(wide, chunk.inputs)
    for mode in ("template", "truncate"):
        pt.two_forward_prior(wide, processor, inputs, images, 2, mode)
    assert seen == [torch.float64, torch.float64]


def test_two_forward_method_computes_each_chunks_own_prior(micro_vlm, chunk):
    model, processor = micro_vlm
    method = pt.two_forward_method(model, processor, 2)
    other = next(vp.chunks(model, processor, chunk.items[::-1], len(chunk.items), 0))  # same start, other items
    kept = [vlm.forward_dropping_visual_tokens(model, c.inputs, 2, method.keep(4, c), attentions=True).kept
            for c in (chunk, other, chunk)]  # fmt: skip
    images = [s.image() for s, _ in other.items]
    q = pt.two_forward_prior(model, processor, other.inputs, images, 2, "template")
    expected = vlm.forward_dropping_visual_tokens(
        model,
        other.inputs,
        2,
        vp.rule_from_scores(lambda c: pt.vinfo_scores(pt.task_attention(c), q), 4),
        attentions=True,
    ).kept
    assert torch.equal(kept[1], expected) and torch.equal(kept[0], kept[2])


def test_every_method_runs_through_the_harness(micro_vlm, chunk):
    model, processor = micro_vlm
    methods = vp.baselines() + pt.methods() + [pt.two_forward_method(model, processor, 1)]
    rows = vp.evaluate(model, processor, chunk.items, 1, methods, {"1/3": 1 / 3, "1/9": 1 / 9}, batch_size=5)
    assert {r["method"] for r in rows} == {m.name for m in methods} | {"full", "floor", "ceiling"}
    e = px.evidence(rows, {"1/3": 1 / 3, "1/9": 1 / 9}, np.random.default_rng(0))
    assert {
        "PriorTR − FastV",
        "P alone − FastV growth",
        f"PriorTR − {pt.TWO_FORWARD}",
        "PriorTR closes@1/9",
    } <= e.keys()
    assert e["loose"] == "1/3" and e["tight"] == "1/9"
    assert px.by_kind(rows, "1/9").shape[0] == len(methods) + 3
    text = px.by_kind(rows, "1/9", intervals=True)
    assert text.loc["full", "colour"].count("[") == 1


def test_the_pruning_layer_is_the_deepest_where_the_floor_still_costs_twenty_points():
    def rows(accuracy_by_layer):
        return [{"layer": k, "group": "local", "correct": i < 100 * a}
                for k, a in enumerate(accuracy_by_layer) for i in range(100)]  # fmt: skip

    assert px.choose_layer(rows([0.2, 0.6, 0.7, 0.79, 0.9, 1.0])) == 3
    assert px.choose_layer(rows([0.2, 0.9, 0.95, 1.0])) == 1  # nothing deep enough: the earliest layer
    assert px.choose_layer(rows([0.5, 0.5, 0.5, 0.5])) == 1


def test_a_model_that_ignores_the_image_is_flagged():
    def rows(full, floor):
        return [{"method": m, "budget": "—", "group": "local", "correct": i < 100 * a}
                for m, a in (("full", full), ("floor", floor)) for i in range(100)]  # fmt: skip

    assert px.knows_the_image(rows(0.9, 0.6))
    assert not px.knows_the_image(rows(0.3, 0.25))


def test_prior_evidence_and_example_maps(micro_vlm, chunk):
    model, processor = micro_vlm
    evidence = px.prior_evidence(model, processor, chunk.items, 2, batch_size=5)
    assert evidence["max_difference"] == 0 and len(evidence["last"]) == 5
    assert np.all(np.abs(evidence["other image"]) <= 1)
    for (scene, question), chance, rank_s, rank_p in zip(
        chunk.items, evidence["logo chance"], evidence["answer rank S"], evidence["answer rank P"], strict=True
    ):
        cells = len(set(scene.occupied) | {scene.logo.patch}) if scene.logo else 0
        assert chance == (1 / cells if cells else 0)  # a uniformly drawn occupied cell is the logo's
        if question.group == "local":
            assert 1 <= rank_s <= 36 and 1 <= rank_p <= 36
        else:
            assert np.isnan(rank_s) and np.isnan(rank_p)
    assert all(0 <= m <= 1 for m in evidence["prior mass on objects"])
    assert all(1 / 36 <= m <= 1 for m in evidence["prior peak share"])
    assert evidence["kind"] == [q.kind for _, q in chunk.items]
    maps = px.example_maps(model, processor, chunk.items[:2], 2)
    assert maps[0]["S"].shape == (6, 6) and np.isclose(maps[0]["P"].sum(), 1, atol=1e-5)
    assert len(maps[0]["kept_priortr"]) == vp.keep_count(36, 1 / 9)


def test_full_tier_memory_of_llava_7b():
    memory = px.full_tier_memory()
    assert 14 < memory["weights_gb"] < 14.2
    assert memory["kv_gb"] == pytest.approx(2 * 32 * 32 * 128 * 616 * 2 / 1e9)
    assert 0.15 < memory["flops_64_t"] / memory["flops_full_t"] < 0.3


def test_maps_over_an_image_file(micro_vlm, tmp_path):
    from PIL import Image

    model, processor = micro_vlm
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(path)
    maps = px.photo_maps(model, processor, str(path), "what colour is the circle ?", 1)
    assert maps["image"].shape == (sc.IMAGE_SIZE, sc.IMAGE_SIZE, 3) and maps["P"].shape == (6, 6)
    assert np.isclose(maps["Q"].sum(), 1, atol=1e-5)


def test_plot_maps_draws_the_image_and_four_maps_per_item(micro_vlm, chunk):
    model, processor = micro_vlm
    maps = px.example_maps(model, processor, chunk.items[:2], 2)
    fig = px.plot_maps(maps, "question")
    assert len(fig.axes) == 2 * 5 and fig.axes[3].get_title() == "task P (question)"
    assert len(fig.axes[2].lines) == len(fig.axes[4].lines) == 1  # the kept tokens of FastV and PriorTR


def test_prose_numbers_quote_the_evidence():
    from test_visual_pruning import _synthetic_rows

    rows = _synthetic_rows([*px.METHOD_COLOURS], vp.BUDGETS)
    e = px.evidence(rows, vp.BUDGETS, make_rng(0, "prose"))
    correlation = {"last": Estimate(0.25, 0.2, 0.3), "question": Estimate(0.5, 0.4, 0.6)}
    prior = {"prior on logo": [True, False, False, False], "logo chance": [0.25, 0.5, 0.25, 0.5],
             "prior on object": [True] * 4, "prior mass on objects": [0.3, 0.4, 0.5, 0.2],
             "object share": [0.1] * 4, "prior peak share": [0.2, 0.3, 0.2, 0.3],
             "answer rank S": [10, 14, np.nan, 20], "answer rank P": [2, 4, np.nan, 6],
             "kind": ["colour", "logo", "count", "logo"]}  # fmt: skip
    numbers = px.prose_numbers(e, correlation, rows, vp.BUDGETS, prior)
    assert numbers["loose_budget"] == "1/3" and numbers["pq_question"] == "0.50"
    assert numbers["q_logo"].startswith("25% [") and numbers["q_logo_chance"] == "38%"
    assert numbers["logo_favoured"] == "does not favour it"
    assert numbers["rank_s_local"].startswith("14.7 [") and numbers["rank_p_logo"].startswith("5.0 [")
    assert numbers["logo_priortr"] == "—" and numbers["table_budget"] == "2/9"  # no logo items in these rows
    assert numbers["acc_full"] == f"{e['full'].value:.0%}"
    assert numbers["priortr_vs_fastv"] == f"{e['PriorTR − FastV']:+.3f}"
    assert {"full_local", "ceiling_count", *px.RECALL_NAMES.values()} <= set(numbers)
    assert set(px.GAP_NAMES.values()) <= set(numbers)
