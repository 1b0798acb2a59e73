"""The pruning harness the visual-token chapters share (``llmtheory.visual_pruning``) and the pruned KV cache of
``llmtheory.vlm``, on a freshly initialised micro_vlm LLaVA (identities need no training)."""

import numpy as np
import pytest
import torch

from llmtheory import scenes as sc
from llmtheory import visual_pruning as vp
from llmtheory import vlm
from llmtheory.params import ParameterError
from llmtheory.seeding import make_rng

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def items():
    rng = make_rng(0, "test_visual_pruning")
    return [sc.sample(rng, [kind]) for kind in ("colour", "shape", "count", "exist", "logo", "colour")]


@pytest.fixture(scope="module")
def batch(micro_vlm, items):
    model, processor = micro_vlm
    return next(vp.chunks(model, processor, items, len(items), 0))


def _extended(batch, tokens, pad):
    """The batch with one more token after each row's last real token."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    length = mask.sum(1)
    ext = torch.full((len(ids), ids.shape[1] + 1), pad)
    ext_mask = torch.zeros_like(ext)
    for i in range(len(ids)):
        ext[i, : length[i]], ext[i, length[i]] = ids[i, : length[i]], tokens[i]
        ext_mask[i, : length[i] + 1] = 1
    return {"input_ids": ext, "attention_mask": ext_mask, "pixel_values": batch["pixel_values"]}, length


def test_budgets_are_llavas_token_counts():
    assert [vp.keep_count(576, s) for s in vp.BUDGETS.values()] == [288, 192, 128, 64]
    assert [vp.keep_count(36, s) for s in vp.BUDGETS.values()] == [18, 12, 8, 4]
    with pytest.raises(ParameterError, match="budget share"):
        vp.keep_count(36, 0)


def test_spatial_selection_is_spread_over_the_grid():
    four = vp.spatial_keep(36, 4).tolist()
    quadrants = {(p // 6 >= 3, p % 6 >= 3) for p in four}
    assert len(four) == 4 and len(quadrants) == 4
    for k in (1, 5, 12, 18, 36):
        kept = vp.spatial_keep(36, k)
        assert len(set(kept.tolist())) == k and torch.equal(kept, kept.sort().values)


def test_random_selection_draws_distinct_tokens_per_row():
    a = vp.random_keep(make_rng(0, "r"), 5, 36, 8)
    assert a.shape == (5, 8) and all(len(set(row.tolist())) == 8 for row in a)
    assert torch.equal(a, vp.random_keep(make_rng(0, "r"), 5, 36, 8))
    assert not all(torch.equal(a[0], row) for row in a[1:])


def test_answer_patches_map_scene_cells_onto_any_grid():
    assert vp.answer_patches((7, 20), 36) == (7, 20)
    block = vp.answer_patches((0,), 576)  # 24 × 24 grid: a cell is 4 × 4 patches
    assert block == tuple(r * 24 + c for r in range(4) for c in range(4))
    assert vp.answer_patches((1,), 16) == (0, 1)  # 4 × 4 grid: cell 1 straddles two patches
    assert vp.answer_patches((26, 27, 38, 39), 36, grid=12) == (7,)  # a 12 × 12 block back onto the 6 × 6 grid
    (item,) = vp.heldout(("colour",), 1, seed=0, geometry=sc.FINE)
    assert vp.item_patches(item, 144) == item[1].patches and len(item[1].patches) == 4
    (coarse,) = vp.heldout(("colour",), 1, seed=0)
    assert vp.item_patches(item, 36) == coarse[1].patches == vp.item_patches(coarse, 36)


def test_decoding_from_the_full_cache_equals_the_normal_forward(micro_vlm, batch):
    model, processor = micro_vlm
    state = vlm.forward_dropping_visual_tokens(model, batch.inputs, 1, None, cache=True)
    tokens = state.last_logits.argmax(-1)
    step = vlm.decode_step(model, state, tokens)
    extended, length = _extended(batch.inputs, tokens, processor.tokenizer.pad_token_id)
    with torch.no_grad():
        reference = model(**extended).logits[torch.arange(len(tokens)), length]
    torch.testing.assert_close(step.last_logits, reference, atol=1e-5, rtol=0)


def test_decoding_from_a_cache_pruned_at_the_input_equals_pruning_the_longer_prompt(micro_vlm, batch):
    model, processor = micro_vlm
    keep = torch.stack([torch.randperm(36, generator=torch.Generator().manual_seed(i))[:8] for i in range(6)])
    state = vlm.forward_dropping_visual_tokens(model, batch.inputs, 0, keep, cache=True)
    tokens = state.last_logits.argmax(-1)
    step = vlm.decode_step(model, state, tokens)
    extended, _ = _extended(batch.inputs, tokens, processor.tokenizer.pad_token_id)
    reference = vlm.forward_dropping_visual_tokens(model, extended, 0, keep).last_logits
    torch.testing.assert_close(step.last_logits, reference, atol=1e-5, rtol=0)
    assert torch.equal(
        step.positions[:, -1], state.positions[torch.arange(6), vlm.last_positions(state.attention_mask)] + 1
    )


def test_a_pruned_cache_holds_only_the_kept_tokens_in_every_layer(micro_vlm, batch):
    model, _ = micro_vlm
    full = vlm.forward_dropping_visual_tokens(model, batch.inputs, 1, None, cache=True)
    keep = torch.arange(0, 36, 4)
    pruned = vlm.forward_dropping_visual_tokens(model, batch.inputs, 1, keep, cache=True)
    seq = batch.inputs["input_ids"].shape[1]
    assert all(layer.keys.shape[2] == seq - 36 + 9 for layer in pruned.cache.layers)
    # layer 0 ran on every token: its kept keys are the full run's keys at the kept positions
    order = pruned.positions[0]
    torch.testing.assert_close(pruned.cache.layers[0].keys[0], full.cache.layers[0].keys[0][:, order], atol=0, rtol=0)
    shapes = vp.Shapes.of(model)
    assert vp.cache_bytes(pruned.cache) == 6 * vp.kv_bytes(shapes, seq - 36 + 9)
    with pytest.raises(ParameterError, match="cache=True"):
        vlm.decode_step(model, vlm.forward_dropping_visual_tokens(model, batch.inputs, 1), full.last_logits.argmax(-1))


def test_fastv_ranks_by_the_last_tokens_head_mean_attention_at_layer_k_minus_one(micro_vlm, batch):
    model, _ = micro_vlm
    seen = {}

    def capture(context):
        seen["scores"] = vp.fastv_scores(context)
        return None

    vlm.forward_dropping_visual_tokens(model, batch.inputs, 2, capture, attentions=True)
    attention = vlm.text_to_image_attention(model, batch.inputs)[1]  # layer K − 1 = 1
    last = vlm.last_positions(batch.inputs["attention_mask"])
    expected = attention[torch.arange(6), :, last].mean(1)
    torch.testing.assert_close(seen["scores"], expected, atol=1e-6, rtol=0)
    with pytest.raises(ParameterError, match="attentions=True"):
        vlm.forward_dropping_visual_tokens(model, batch.inputs, 2, lambda c: vp.fastv_scores(c).topk(3).indices)


def test_evaluate_runs_every_method_and_the_references_on_the_same_items(micro_vlm, items):
    model, processor = micro_vlm
    budgets = {"1/2": 0.5, "1/9": 1 / 9}
    rows = vp.evaluate(model, processor, items, 1, vp.baselines(), budgets, batch_size=4)
    assert len(rows) == len(items) * (3 + 3 * len(budgets))
    by = {(r["method"], r["budget"], r["item"]): r for r in rows}
    assert all(by[("floor", "—", i)]["kept"] == 0 and by[("ceiling", "—", i)]["recall"] == 1 for i in range(6))
    assert {r["kept"] for r in rows if r["budget"] == "1/9"} == {4}
    batch = next(vp.chunks(model, processor, items, len(items), 0)).inputs
    with torch.no_grad():
        logits = model(**batch).logits[torch.arange(6), vlm.last_positions(batch["attention_mask"])]
    guesses = vp.restricted_answers(processor, logits, [q.kind for _, q in items])
    expected = [g == q.answer for g, (_, q) in zip(guesses, items, strict=True)]
    assert [by[("full", "—", i)]["correct"] for i in range(6)] == expected
    assert all(g in sc.answers(q.kind) for g, (_, q) in zip(guesses, items, strict=True))


def test_paired_statistics_are_zero_for_a_method_against_itself_and_signed_otherwise():
    rows = []
    for item in range(40):
        for budget, good in (("1/2", True), ("1/9", item % 2 == 0)):
            rows.append({"item": item, "method": "a", "budget": budget, "correct": True})
            rows.append({"item": item, "method": "b", "budget": budget, "correct": good})
    rng = np.random.default_rng(0)
    assert vp.paired_difference(rows, "a", "a", ("1/2", "1/9"), rng).value == 0
    growth = vp.gap_growth(rows, "a", "b", "1/9", "1/2", rng)
    assert growth.value == pytest.approx(0.5) and growth.low > 0


def test_retention_and_gap_share_are_paired_bootstraps_over_items():
    rows = []
    for item in range(200):  # full 0.9, floor 0.5, method 0.7: retains 7/9, closes half of the gap
        for method, correct in (("full", item % 10 < 9), ("floor", item % 10 < 5), ("m", item % 10 < 7)):
            rows.append({"item": item, "method": method, "budget": "—" if method != "m" else "1/9", "correct": correct})
    kept, closes = vp.retention(rows, "m", "1/9", np.random.default_rng(0))
    assert kept.value == pytest.approx(7 / 9) and closes.value == pytest.approx(0.5)
    assert closes.low < 0.5 < closes.high and kept.low < 7 / 9 < kept.high
    same = rows + [dict(r, method="copy", budget="1/9") for r in rows if r["method"] == "full"]
    kept, closes = vp.retention(same, "copy", "1/9", np.random.default_rng(0))  # paired: every draw gives exactly 1
    assert (kept.low, kept.high, closes.low, closes.high) == (1, 1, 1, 1)


def test_the_clock_counts_cpu_time_on_a_cpu(micro_vlm):
    import time

    assert vp.clock(micro_vlm[0]) is time.process_time


def test_flops_follow_the_kept_tokens():
    s = vp.LLAVA_7B
    full = vp.prefill_flops(s, 616, 576, 3, 576)
    assert full == s.layers * vp.layer_flops(s, 616)
    assert vp.prefill_flops(s, 616, 576, 3, 64) < vp.prefill_flops(s, 616, 576, 3, 192) < full
    assert vp.prefill_flops(s, 616, 576, 0, 64) == s.layers * vp.layer_flops(s, 104)
    assert 7.5e12 < full < 9e12  # 2 × 6.5 billion decoder weights × 616 tokens, plus attention


def test_time_plans_record_a_smaller_cache_for_the_pruned_plan(micro_vlm, batch):
    model, _ = micro_vlm
    plans = {"full": (None, False), "pruned": (torch.arange(4), False)}
    timings = vp.time_plans(model, batch.inputs, 1, plans, decode_tokens=2, repeats=2, seed=0)
    assert len(timings) == 4
    held = {r["plan"]: r["kv_bytes"] for r in timings}
    assert held["pruned"] < held["full"]
    assert np.isfinite(vp.time_ratio(timings, "pruned", "full", "prefill_s").value)


def test_plan_efficiency_and_caches_hold_read_the_kept_tokens_per_plan():
    shapes = vp.Shapes(layers=2, hidden=8, heads=2, kv_heads=1, head_dim=4, intermediate=16)
    kept = {"full": 16, "pruned": 4}
    timings = [
        {"plan": plan, "cached_positions": 30 - 16 + k, "kv_bytes": 3 * vp.kv_bytes(shapes, 30 - 16 + k),
         "prefill_s": t, "decode_s_per_token": t / 10}
        for plan, k in kept.items() for t in (0.1, 0.3)
    ]  # fmt: skip
    table = vp.plan_efficiency(timings, shapes, 30, 16, 1, kept)
    assert list(table.index) == ["full", "pruned"]
    assert table.loc["pruned", "GFLOPs"] < table.loc["full", "GFLOPs"]
    assert table.loc["full", "GFLOPs"] == pytest.approx(vp.prefill_flops(shapes, 30, 16, 1, 16) / 1e9)
    assert table.loc["pruned", "cached"] == 18 and table.loc["full", "prefill_ms"] == pytest.approx(200.0)
    assert vp.caches_hold(timings, shapes, 3, 30, 16, kept)
    assert not vp.caches_hold(timings, shapes, 3, 30, 16, kept | {"pruned": 5})
    assert not vp.caches_hold(timings, shapes, 2, 30, 16, kept)


def _synthetic_rows(methods, budgets, n_items=8, seed=0):
    """Rows as :func:`vp.evaluate` writes them: every method at every budget and the references, random outcomes."""
    rng = np.random.default_rng(seed)
    rows = []
    for item in range(n_items):
        kind, group = ("count", "global") if item % 2 else ("colour", "local")
        cells = [(m, b) for m in methods for b in budgets] + [(r, "—") for r in ("full", "floor", "ceiling")]
        for method, budget in cells:
            rows.append({"item": item, "kind": kind, "group": group, "method": method, "budget": budget,
                         "correct": bool(rng.random() < 0.6), "recall": float(rng.random())})  # fmt: skip
    return rows


def test_plot_budget_curves_draws_every_method_on_both_panels():
    methods, budgets = ("FastV", "random"), {"1/3": 1 / 3, "1/9": 1 / 9}
    rows = _synthetic_rows(methods, budgets)
    references = {name: vp.accuracy(rows, name).value for name in ("full", "floor", "ceiling")}
    colours = {"FastV": "red", "random": "grey"}
    fig = vp.plot_budget_curves(
        rows, methods, budgets, colours, references, 1, height=3.0, dodge=0.02, floor_margin=0.1
    )
    left, right = fig.axes
    assert len(left.containers) == len(right.containers) == len(methods)  # one error bar per method
    assert len(left.lines) - len(right.lines) == 3  # the references
    assert left.get_ylim()[0] == pytest.approx(references["floor"] - 0.1)
    assert sorted(t.get_text() for t in left.get_legend().get_texts()) == sorted([*methods, "full", "ceiling", "floor"])
