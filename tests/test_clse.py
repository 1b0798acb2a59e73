"""CLSE (``llmtheory.clse``): each equation on hand-made hidden states, the staged schedule's arithmetic, the new
baselines of ``visual_pruning`` (VisPruner-style, DART-style), and the scores inside a pruned forward pass of a
freshly initialised micro LLaVA."""

import numpy as np
import pytest
import torch

from llmtheory import clse
from llmtheory import clse_experiment as cx
from llmtheory import scenes as sc
from llmtheory import visual_pruning as vp
from llmtheory.params import ParameterError
from llmtheory.priortr import attention_context
from llmtheory.seeding import make_rng

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _grid(values: torch.Tensor) -> torch.Tensor:
    """``(H, W)`` or ``(H, W, C)`` → ``(1, H, W, C)``."""
    return (values if values.ndim == 3 else values[..., None])[None].float()


def test_the_mask_is_zero_at_the_centre_and_grows_with_distance():
    mask = clse.high_pass_mask(24, 24)
    assert float(mask[12, 12]) == 0 and float(mask.max()) <= 1
    ring = [float(mask[12, 12 + d]) for d in range(1, 6)]
    assert ring == sorted(ring) and ring[0] == pytest.approx(1 - np.exp(-1 / (2 * 1.2**2)))
    assert torch.equal(clse.high_pass_mask(6, 6, 0.0), torch.ones(6, 6))  # r = 0: no filter (official)
    with pytest.raises(ParameterError, match="cutoff"):
        clse.high_pass_mask(6, 6, -0.1)


def test_the_high_pass_kills_the_dc_component():
    constant = _grid(torch.full((6, 6, 3), 2.5))
    assert float(clse.spectral_residual(constant).abs().max()) < 1e-6
    # a constant added to every token changes nothing: the filter removed it
    noise = torch.randn(6, 6, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(clse.spectral_residual(_grid(noise)), clse.spectral_residual(_grid(noise + 7.0)))
    # without the filter the residual is the mean absolute value
    torch.testing.assert_close(clse.spectral_residual(_grid(noise), 0.0), noise.abs().mean(-1).flatten()[None])


def test_a_high_frequency_grid_scores_higher_than_a_low_frequency_one():
    h, w = torch.meshgrid(torch.arange(12.0), torch.arange(12.0), indexing="ij")
    smooth = torch.cos(2 * np.pi * h / 12)  # one cycle over the grid: the lowest non-zero frequency
    sharp = torch.cos(np.pi * (h + w))  # the checkerboard: the highest
    s_smooth, s_sharp = (float(clse.spectral_residual(_grid(g)).mean()) for g in (smooth, sharp))
    assert s_sharp == pytest.approx(1.0, abs=1e-5) and s_smooth < 0.8 * s_sharp
    # both have unit amplitude and zero mean, so only the filter tells them apart
    assert float(clse.spectral_residual(_grid(smooth), 0.0).mean()) == pytest.approx(2 / np.pi, abs=0.02)


def test_on_a_six_by_six_grid_the_residual_is_the_deviation_from_the_grid_mean():
    x = torch.randn(2, 6, 6, 5, generator=torch.Generator().manual_seed(1))
    centred = (x - x.mean(dim=(1, 2), keepdim=True)).abs().mean(-1).flatten(1)
    residual = clse.spectral_residual(x)
    assert float((residual - centred).abs().max() / residual.max()) < 0.01


def test_intensity_is_the_relative_change_clipped_at_one():
    s0 = torch.tensor([[0.2, 0.4, 0.0]])
    s1 = torch.tensor([[0.5, 0.5, 5.0]])
    intensity = clse.evolution_intensity(s0, s1)
    mean = 0.2
    expected = [0.3 / (0.2 + mean + 1e-6), 0.1 / (0.4 + mean + 1e-6), 1.0]  # the third is clipped
    torch.testing.assert_close(intensity[0], torch.tensor(expected))
    assert float(intensity.max()) <= 1 and float(intensity.min()) >= 0
    assert torch.equal(clse.evolution_intensity(s0, s0), torch.zeros_like(s0))  # no change, no score


def test_the_factor_orders_tokens_as_the_intensity_and_saturates():
    intensity = torch.tensor([[0.1, 0.5, 0.2, 0.9, 0.3]])
    factor = clse.evolution_factor(intensity)
    assert torch.equal(factor.argsort(), intensity.argsort())
    z = (intensity - intensity.mean()) / (intensity.std() + clse.EPS)
    torch.testing.assert_close(factor, torch.sigmoid(z / clse.TEMPERATURE))
    # two outliers of different intensity: float32 rounds σ(z / 0.1) to exactly one for both (z ≈ 1.9), a tie
    outliers = torch.tensor([[0.0] * 8 + [1.0, 0.99]])
    gated = clse.evolution_factor(outliers)
    assert float(gated[0, 8]) == float(gated[0, 9]) == 1.0


def test_the_pruning_index_keeps_the_top_intensities():
    s0 = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    s1 = torch.tensor([[1.0, 3.0, 1.5, 0.2]])
    kept = vp.top_k(clse.evolution_intensity(s0, s1), 2)
    assert kept.tolist() == [[1, 3]]  # the two largest changes, in their original order


def test_the_official_schedule_and_its_layer_averages():
    stages = clse.staged_schedule(576, 32, 192)
    assert [(s.layer, s.kept, s.score) for s in stages] == [(1, 330, "hybrid"), (11, 210, "attention"),
                                                            (21, 62, "attention")]  # fmt: skip
    assert clse.layer_average(stages, 576, 32, count_first=False) == 192  # the official comment's arithmetic
    assert clse.layer_average(stages, 576, 32) == pytest.approx(6658 / 32)  # layer 0 with its 576 tokens
    assert [s.kept for s in clse.staged_schedule(576, 32, 100)] == [172, 109, 32]  # the ratios 1.72 / 1.09 / 0.32
    small = clse.staged_schedule(36, 6, 12)
    assert [s.layer for s in small] == [1, 2, 4] and [s.kept for s in small] == [21, 13, 4]
    assert clse.stage_layers(3) == (1, 2) and len(clse.staged_schedule(36, 3, 4)) == 2  # the stages that fit
    with pytest.raises(ParameterError, match="layers"):
        clse.stage_layers(1)


def test_vispruner_keeps_half_by_cls_attention_and_drops_duplicates():
    n, k = 12, 6
    cls = torch.linspace(1, 0, n)[None]  # token 0 most attended
    features = torch.eye(n)[None].clone()
    features[0, 8] = features[0, 10] = features[0, 11] = features[0, 9]  # 8–11 are copies of one feature
    kept = vp.vispruner_keep(features, cls, k)[0].tolist()
    assert kept[:3] == [0, 1, 2] and len(kept) == k == len(set(kept))  # ⌊k/2⌋ by attention
    assert sum(t in (8, 9, 10, 11) for t in kept) == 1  # of four copies of one feature, one survives
    assert vp.vispruner_keep(features, cls, 1).shape == (1, 1)


def test_dart_keeps_a_pivot_and_the_tokens_least_like_it():
    class Context:
        layer = 1
        image_positions = torch.arange(1, 7)[None]
        last_positions = torch.tensor([8])

    image = torch.tensor([[5.0, 0, 0], [1, 0.1, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1], [0, 0.7, 0.7]])
    hidden = torch.zeros(1, 9, 3)
    hidden[0, 1:7] = image
    hidden[0, 7:9] = torch.tensor([[1.0, 0, 0], [0.5, 0, 0]])
    Context.hidden = [hidden, hidden]
    kept = vp.dart_keep(Context, 3)[0].tolist()
    assert 0 in kept and len(kept) == 3  # the largest-norm image token is the pivot
    assert not {1, 2} & set(kept)  # the tokens most like the pivot go
    assert vp.dart_pivot_count(128) == 4 and vp.dart_pivot_count(4) == 1


@pytest.fixture(scope="module")
def context(micro_vlm):
    model, processor = micro_vlm
    items = vp.heldout(("colour", "count", "exist"), 2, seed=0)
    chunk = next(vp.chunks(model, processor, items, len(items), 0))
    return attention_context(model, chunk.inputs, 1), chunk


def test_scores_inside_a_pass_have_one_value_per_visual_token(context):
    ctx, chunk = context
    for score in (clse.clse_scores(), clse.clse_scores(0.0), clse.single_layer_scores(), clse.hybrid_scores(),
                  clse.shuffled_hybrid_scores(0)):  # fmt: skip
        values = score(ctx)
        assert values.shape == (len(chunk.items), chunk.n_image) and torch.isfinite(values).all()
    s0, s1 = clse.residuals(ctx)
    torch.testing.assert_close(clse.clse_scores()(ctx), clse.evolution_intensity(s0, s1))
    hybrid = clse.hybrid_scores()(ctx)
    torch.testing.assert_close(hybrid, clse.clse_factor()(ctx) * vp.fastv_scores(ctx))
    shuffled = clse.shuffled_hybrid_scores(0)(ctx) / vp.fastv_scores(ctx)
    torch.testing.assert_close(shuffled.sort(-1).values, clse.clse_factor()(ctx).sort(-1).values)


def test_the_reference_layer_must_come_before_the_pruning_layer(micro_vlm):
    model, processor = micro_vlm
    chunk = next(vp.chunks(model, processor, vp.heldout(("colour",), 1, seed=0), 1, 0))
    with pytest.raises(ParameterError, match="reference layer"):
        vp.forward_dropping_visual_tokens(model, chunk.inputs, 0, vp.rule_from_scores(clse.clse_scores(), 4))


def test_every_method_keeps_exactly_the_budget(micro_vlm):
    model, processor = micro_vlm
    items = vp.heldout(("colour", "count"), 2, seed=0)
    methods = vp.attention_free_baselines(model) + clse.methods()
    rows = vp.evaluate(model, processor, items, 1, methods, {"1/3": 1 / 3, "1/9": 1 / 9}, batch_size=4)
    for r in rows:
        if r["budget"] != "—":
            assert len(set(r["kept_tokens"])) == r["kept"] == vp.keep_count(36, vp.BUDGETS[r["budget"]])
    rows = cx.with_answers(rows, items, 36)
    assert all(r["answer_tokens"] == vp.answer_patches(items[r["item"]][1].patches, 36) for r in rows)


@pytest.fixture(scope="module")
def deeper_micro_vlm(one_torch_thread):
    """The micro LLaVA with five decoder layers: room for three stages (decoder indices 1, 2, 3)."""
    from dataclasses import replace

    from llmtheory import zoo
    from llmtheory.zoo import vlm as zoo_vlm

    tokenizer = zoo_vlm.build_tokenizer()
    model = zoo_vlm.build_model(replace(zoo.SPECS["micro-vlm"], layers=5), tokenizer).eval()
    return model, zoo_vlm.build_processor(tokenizer)


def test_the_staged_pass_matches_the_one_stage_pass_and_nests_its_stages(deeper_micro_vlm):
    model, processor = deeper_micro_vlm
    items = vp.heldout(("colour", "count", "exist"), 2, seed=0)
    chunk = next(vp.chunks(model, processor, items, len(items), 0))
    # one hybrid stage at K = 1 is the single-stage hybrid of the shared pruning pass
    logits, kept = clse.forward_staged(model, chunk.inputs, [clse.Stage(1, 7, "hybrid")])
    rule = vp.rule_from_scores(clse.hybrid_scores(), 7)
    single = vp.forward_dropping_visual_tokens(model, chunk.inputs, 1, rule, attentions=True)
    torch.testing.assert_close(logits, single.last_logits, atol=1e-4, rtol=1e-4)
    assert torch.equal(kept[0], single.kept)
    # stages that keep every token change nothing
    everything = [clse.Stage(1, 36, "hybrid"), clse.Stage(3, 36, "attention")]
    full = vp.forward_dropping_visual_tokens(model, chunk.inputs, 5, None).last_logits
    torch.testing.assert_close(clse.forward_staged(model, chunk.inputs, everything)[0], full, atol=1e-4, rtol=1e-4)
    # three stages (the official ratios scaled to five layers): each keeps a subset of the one before
    stages = clse.staged_schedule(36, 5, 4)
    assert [(s.layer, s.kept) for s in stages] == [(1, 7), (2, 4), (3, 1)]
    _, kept = clse.forward_staged(model, chunk.inputs, stages)
    assert [k.shape for k in kept] == [(len(items), s.kept) for s in stages]
    for before, after in zip(kept, kept[1:], strict=False):
        assert all(set(a.tolist()) <= set(b.tolist()) for a, b in zip(after, before, strict=True))
    for bad in ([clse.Stage(2, 4, "hybrid"), clse.Stage(1, 2, "attention")],
                [clse.Stage(1, 4, "hybrid"), clse.Stage(2, 8, "attention")], [clse.Stage(1, 4, "norm")]):  # fmt: skip
        with pytest.raises(ParameterError, match="stage"):
            clse.forward_staged(model, chunk.inputs, bad)
    rows = cx.evaluate_staged(model, processor, items, {"1/9": 1 / 9}, batch_size=4, methods=(cx.STAGED,))
    assert len(rows) == len(items) and {(r["method"], r["kept"], r["stage_kept"]) for r in rows} == {
        (cx.STAGED, 1, (7, 4, 1))
    }


def test_pdrop_drops_half_at_four_stage_boundaries_and_one_stage_of_it_is_fastv(deeper_micro_vlm):
    assert clse.pdrop_layers(32) == (8, 16, 24) and clse.pdrop_layers(6) == (1, 3, 4)
    assert clse.pdrop_layers(3) == (1, 2) and len(clse.pdrop_schedule(16, 2)) == 1  # shallow models: fewer stages
    assert [(s.layer, s.kept, s.score) for s in clse.pdrop_schedule(576, 32)] == [
        (8, 288, "attention"), (16, 144, "attention"), (24, 72, "attention")]  # fmt: skip
    # matched to a single stage keeping k from K = 1: the same tokens per layer on average
    for n, k in ((36, 4), (36, 12), (144, 16), (144, 72)):
        stages = clse.pdrop_matched(n, 6, k)
        assert clse.layer_average(stages, n, 6) == pytest.approx((n + 5 * k) / 6, abs=0.2)
    with pytest.raises(ParameterError, match="kept"):
        clse.pdrop_matched(36, 6, 0)
    model, processor = deeper_micro_vlm
    items = vp.heldout(("colour", "count", "exist"), 2, seed=0)
    chunk = next(vp.chunks(model, processor, items, len(items), 0))
    logits, kept = clse.forward_staged(model, chunk.inputs, [clse.Stage(1, 6, "attention")])
    fastv = vp.forward_dropping_visual_tokens(model, chunk.inputs, 1, vp.rule_from_scores(vp.fastv_scores, 6),
                                              attentions=True)  # fmt: skip
    torch.testing.assert_close(logits, fastv.last_logits, atol=1e-4, rtol=1e-4)
    assert torch.equal(kept[0], fastv.kept)
    rows = cx.evaluate_staged(model, processor, items, {"1/3": 1 / 3}, batch_size=4, methods=(cx.PDROP,))
    stages = cx.staged_plans(36, 5, 1 / 3)[cx.PDROP]
    assert {(r["method"], r["stage_kept"]) for r in rows} == {(cx.PDROP, tuple(s.kept for s in stages))}


def test_mean_removal_is_the_zero_frequency_alone_and_differs_from_the_high_pass_on_a_finer_grid():
    mask = clse.high_pass_mask(12, 12, clse.MEAN_REMOVAL)
    assert float(mask[6, 6]) == 0 and float(mask.sum()) == 143
    # two objects of 2 × 2 patches on an empty board: part of their energy in the first ring of frequencies
    board = torch.zeros(12, 12, 3)
    board[0:2, 0:2], board[6:8, 8:10] = torch.tensor([1.0, -0.5, 2.0]), torch.tensor([0.3, 1.0, -1.0])
    centred = (board - board.mean(dim=(0, 1))).abs().mean(-1).flatten()[None]
    torch.testing.assert_close(clse.spectral_residual(board[None], clse.MEAN_REMOVAL), centred)
    gap = (clse.spectral_residual(board[None]) - centred).abs().max() / centred.max()
    assert float(gap) > 0.02  # on 12 × 12 the Gaussian also attenuates the first ring (to 0.75)
    coarse = board[::2, ::2][None]  # the same board with one patch per cell: 6 × 6
    residual = clse.spectral_residual(coarse)
    assert float((residual - clse.spectral_residual(coarse, None)).abs().max() / residual.max()) < 0.005


def test_row_shift_is_zero_when_the_kept_tokens_are_the_answers():
    rows = [{"method": "m", "budget": "b", "kept_tokens": (0, 1), "answer_tokens": (0, 1)},
            {"method": "m", "budget": "b", "kept_tokens": (30, 31), "answer_tokens": (0, 1)}]  # fmt: skip
    shift = cx.row_shift(rows, "m", "b", 36)
    assert shift[0] == 0 and shift[1] == pytest.approx(1.0)  # the last row against the first: the whole grid
    unbiased = [rows[0] | {"method": "n"}] * 2  # kept where the answers are, for both items
    diff = cx.bias_difference(rows + unbiased, "n", "m", "b", 36, make_rng(0, "t"))
    assert diff.value == pytest.approx(0.5)  # |mean shift of m| − |mean shift of n| = 0.5 − 0


def test_the_top_rows_control_is_biased_and_fails_the_bias_rule():
    items = vp.heldout(("colour", "count"), 20, seed=0)
    control = cx.fixed_rows(items, range(4), "top rows", "1/9", 36)
    assert len(control) == len(items) and all(r["kept_tokens"] == (0, 1, 2, 3) for r in control)
    shift = cx.row_shift(control, "top rows", "1/9", 36)
    assert shift.mean() < -0.3  # the first row against answers spread over the grid
    # a selection on the answers themselves beats it under the rule |shift of b| − |shift of a| > 0
    exact = [r | {"method": "answers", "kept_tokens": r["answer_tokens"]} for r in control]
    assert cx.bias_difference(exact + control, "top rows", "answers", "1/9", 36, make_rng(0, "t")).high < 0
    table = cx.bias_table(control, ["top rows"], "1/9", 36)
    assert table.loc["top rows", "row shift"].count(".") == 3  # value and interval, three decimals each


def test_the_published_gap_and_the_items_are_the_papers():
    gap = cx.PUBLISHED["CLSE"] - cx.PUBLISHED["FastV"]
    assert gap.round(1).tolist() == [7.3, 10.9, 16.8]
    assert sc.GRID == 6


def test_plot_maps_marks_the_kept_tokens_of_three_methods(micro_vlm):
    model, processor = micro_vlm
    items = vp.heldout(("colour", "count"), 1, seed=0)
    maps = cx.example_maps(model, processor, items, 1, 1 / 9)
    fig = cx.plot_maps(maps, 1)
    assert len(fig.axes) == 2 * 5 and fig.axes[2].get_title().startswith("S at layer 1")
    # dots on I (CLSE); dots (FastV) and crosses (CLSE-Hybrid, E · a) on the attention map
    assert [len(ax.lines) for ax in fig.axes[:5]] == [0, 0, 0, 1, 2]
    assert fig.axes[4].lines[1].get_marker() == "x" and "CLSE-Hybrid" in fig.axes[4].get_title()
    assert set(cx.METHOD_COLOURS) >= {"FastV", "CLSE", "CLSE-Hybrid"}


def test_the_fine_grid_evidence_compares_the_high_pass_with_mean_removal_on_both_grids():
    assert [m.name for m in cx.fine_methods()] == ["FastV", "random", "CLSE", "CLSE (no high-pass)",
                                                   clse.MEAN_REMOVED, "one layer (S^K)", "CLSE-Hybrid"]  # fmt: skip
    rng = np.random.default_rng(0)
    budgets = {"1/3": 1 / 3, "1/9": 1 / 9}

    def rows(gain: float) -> list[dict]:
        out = []
        for item in range(200):
            for method in ("full", "floor", "ceiling"):
                out.append({"item": item, "method": method, "budget": "—", "group": "local", "correct": True})
            for method in cx.FINE_METHODS:
                for budget in budgets:
                    p = 0.5 + (gain if method == "CLSE" else 0.0)
                    out.append({"item": item, "method": method, "budget": budget, "group": "local",
                                "correct": bool(rng.random() < p)})  # fmt: skip
        return out

    coarse = rows(0.0)
    for r in coarse:  # on 6 × 6 the two filters keep the same tokens: identical answers
        if r["method"] == clse.MEAN_REMOVED:
            r["correct"] = next(x["correct"] for x in coarse if x["method"] == "CLSE" and x["item"] == r["item"]
                                and x["budget"] == r["budget"])  # fmt: skip
    e = cx.fine_evidence(rows(0.4), coarse, budgets, make_rng(0, "fine"))
    assert e[cx.HIGH_PASS_GAIN].low > 0
    control = e[f"{cx.HIGH_PASS_GAIN} (6 × 6)"]
    assert control.value == control.low == control.high == 0  # the rule (> 0) must reject it
    assert e["answers changed (6 × 6)"] == {"pairs": 400, "a right": 0, "b right": 0}
    changed = e["answers changed (12 × 12)"]
    assert changed["pairs"] == 400 and changed["a right"] > changed["b right"]
