"""AdaQ's samplers and readers: each sampler returns K distinct sorted frames deterministically, with its defining
property (top-k is the argmax set, uniform is evenly spaced, AdaQ's limits are top-block and uniform); the oracle
reader counts covered windows; similarities run end to end through a dual encoder, the zoo's and a random one."""

import numpy as np
import pandas as pd
import pytest
import torch

from llmtheory import adaq, zoo
from llmtheory import adaq_experiment as ax
from llmtheory import scenes as sc
from llmtheory.claims import Estimate
from llmtheory.params import ParameterError
from llmtheory.seeding import make_rng

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def curve(n=200, peak=(90, 100), seed=0, height=3.0):
    s = make_rng(seed, "test_adaq").normal(0, 0.1, n)
    s[peak[0] : peak[1]] += height * 0.1
    return s


@pytest.mark.parametrize("sampler", [*adaq.SAMPLERS, "adaq-z"])
@pytest.mark.parametrize("k", [1, 7, 32, 200])
def test_every_sampler_gives_k_distinct_sorted_frames_deterministically(sampler, k):
    s = curve()
    frames = adaq.select(sampler, s, k, lam=0.05)
    assert len(frames) == k and len(set(frames.tolist())) == k
    assert np.all(np.diff(frames) > 0) and frames.min() >= 0 and frames.max() < len(s)
    assert np.array_equal(frames, adaq.select(sampler, s, k, lam=0.05))


def test_a_budget_outside_one_to_n_is_refused_by_name():
    with pytest.raises(ParameterError, match="k"):
        adaq.top_k(curve(), 0)
    with pytest.raises(ParameterError, match="k"):
        adaq.uniform(10, 11)


def test_top_k_is_the_argmax_set():
    s = curve()
    frames = adaq.top_k(s, 12)
    assert set(frames) == set(np.argsort(s)[-12:])
    assert s[frames].min() >= np.delete(s, frames).max()


@pytest.mark.parametrize(("n", "k"), [(256, 8), (256, 32), (100, 7), (64, 64)])
def test_uniform_frames_are_evenly_spaced(n, k):
    frames = adaq.uniform(n, k)
    gaps = np.diff(frames)
    assert gaps.max() - gaps.min() <= 1 and abs(gaps.mean() - n / k) <= 1
    assert frames[0] <= n / k and n - 1 - frames[-1] <= n / k


def test_adaq_at_infinite_lambda_is_uniform_and_at_large_lambda_close_to_it():
    s = curve()
    assert np.array_equal(adaq.adaq(s, 16, np.inf), adaq.uniform(len(s), 16))
    assert np.abs(adaq.adaq(s, 16, 1e4) - adaq.uniform(len(s), 16)).max() <= 1


def test_adaq_at_zero_lambda_is_a_block_around_the_best_frame():
    s = curve()
    for lam in (0.0, 1e-4):
        frames = adaq.adaq(s, 9, lam)
        assert np.all(np.diff(frames) == 1) and int(np.argmax(s)) in frames
    # near the edge, the block is shifted inside the video
    edge = np.zeros(50)
    edge[1] = 1.0
    assert adaq.adaq(edge, 5, 0.0).tolist() == [0, 1, 2, 3, 4]


def test_adaq_weights_temper_the_standardised_scores_by_the_spread():
    s = curve()
    lam = 0.07
    z = (s - s.mean()) / s.std()
    expected = np.exp(z / (lam / s.std()))  # temperature λ/σ_s on z: a softmax of s at temperature λ
    assert np.allclose(adaq.adaq_weights(s, lam), expected / expected.sum())
    # a wider curve is sharpened: scaling s by 3 is the same as λ/3; a shift changes nothing
    assert np.allclose(adaq.adaq_weights(3.0 * s + 1.0, lam), adaq.adaq_weights(s, lam / 3.0))
    # the standardised reading (the chapter's first) is blind to the scale
    assert np.allclose(adaq.standardised_weights(3.0 * s + 1.0, 1.0), adaq.standardised_weights(s, 1.0))


def test_the_3_sigma_interval_is_narrow_for_a_peak_and_wide_for_a_flat_curve():
    peaked = curve(height=30.0)
    flat = make_rng(1, "flat").normal(0, 0.1, 200)
    lo, hi = adaq.interval(adaq.adaq_weights(peaked, 0.25))
    assert 85 <= lo and hi <= 105
    assert np.diff(adaq.interval(adaq.adaq_weights(peaked, 1.0))) > hi - lo  # a larger λ widens it
    lo, hi = adaq.interval(adaq.adaq_weights(flat, 1.0))
    assert hi - lo > 150
    # for a Gaussian bump, the interval is μ ± 3σ; for a flat distribution, the whole video
    t = np.arange(400)
    lo, hi = adaq.interval(np.exp(-0.5 * ((t - 200) / 20) ** 2))
    assert abs(lo - 140) <= 1 and abs(hi - 260) <= 1
    assert adaq.interval(np.ones(400)) == (0, 399)


def test_quantile_frames_follow_the_distribution():
    p = np.zeros(100)
    p[10:20] = 1.0
    assert adaq.quantile_frames(p, 10).tolist() == list(range(10, 20))
    with pytest.raises(ParameterError):
        adaq.quantile_frames(-p, 3)


def test_bolt_with_alpha_zero_is_uniform_and_aks_keeps_a_clear_peak():
    s = curve(height=30.0)
    assert np.array_equal(adaq.bolt(s, 10, 0.0), adaq.uniform(len(s), 10))
    assert set(adaq.aks(s, 8)) <= set(range(90, 100))  # relevance: the peak stands out by far more than 3σ
    flat = make_rng(2, "flat").normal(0, 0.1, 256)
    frames = adaq.aks(flat, 8)  # coverage: no peak, so the budget is split over halves, quarters, eighths
    assert np.all(np.diff(frames // 32) >= 0) and len(set((frames // 32).tolist())) == 8


def test_oracle_reader_counts_covered_windows():
    windows = ((10, 20), (50, 60), (90, 95))
    assert adaq.covered_windows([15, 55, 99], windows) == 2
    assert adaq.oracle_correct([15, 55, 92], windows)
    assert not adaq.oracle_correct([15, 55], windows)
    assert adaq.oracle_correct([15, 55], windows, needed=2)
    assert not adaq.oracle_correct([20, 60, 95], windows)  # windows are half-open


def test_cases_have_local_and_global_queries_with_their_evidence():
    case = ax.make_case(0, 3, 128, 0.08)
    local, global_ = case.query("local"), case.query("global")
    assert len(local.windows) == 1 and local.needed == 1 and local.shape in sc.SHAPES
    assert len(global_.windows) == len(case.video.events) == global_.needed
    assert global_.answer == sc.NUMBERS[len(case.video.events)]
    start, stop = local.windows[0]
    assert np.array_equal(case.frame(start), case.frame(start))  # each frame's noise is its own, redrawn the same
    assert not np.array_equal(case.frame(start), case.frame(start + 1))
    assert ax.budgets_for(256) == (8, 16, 32) and ax.budgets_for(128) == (4, 8, 16)


def test_vlm_readers_aggregate_per_frame_answers():
    probabilities = np.full((3, 6), 0.1)
    probabilities[1, 2] = 0.9
    assert ax.read_local(probabilities) == list(sc.COLOURS)[2]
    assert ax.read_global([2, 3, 3, 2, 3, 2]) == "two"  # two rises
    assert ax.read_global([3, 2, 2, 3]) == "two"  # one shape already there at the first frame, one rise


@pytest.fixture(scope="module")
def clip():
    return zoo.load("clip-scenes")


def test_the_zoo_clip_loads_with_the_auto_classes_and_finds_the_mentioned_object(clip):
    model, processor = clip
    assert type(model).__name__ == "CLIPModel" and type(processor).__name__ == "CLIPProcessor"
    rng = make_rng(5, "test_adaq_clip")
    scenes = [sc.make_scene(rng) for _ in range(32)]
    target = scenes[0].things[0]
    frame_emb = adaq.frame_embeddings(model, processor, np.stack([s.image() for s in scenes]))
    s = adaq.similarities(frame_emb, adaq.text_embeddings(model, processor, [f"a {target.colour} {target.shape}"])[0])
    shows = np.array([(target.colour, target.shape) in {(t.colour, t.shape) for t in x.things} for x in scenes])
    assert s[shows].mean() > s[~shows].mean()
    card = zoo.card("clip-scenes")
    assert "Measured behaviour" in card and zoo.card_data("clip-scenes")["metrics"]["caption_top1"] > 0.5


def test_a_random_dual_encoder_of_another_size_runs_end_to_end_and_knows_nothing(tmp_path):
    from transformers import CLIPConfig, CLIPModel

    from llmtheory.zoo import clip as zclip

    tokenizer = zclip.build_tokenizer()
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=24, intermediate_size=48, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=48, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id),
        vision_config=dict(hidden_size=24, intermediate_size=48, num_hidden_layers=1, num_attention_heads=2,
                           image_size=sc.IMAGE_SIZE, patch_size=sc.CELL * 2),
        projection_dim=12,
    )  # fmt: skip
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(tmp_path)
    zclip.build_processor(tokenizer).save_pretrained(tmp_path)
    model, processor = zoo.load(str(tmp_path))
    assert model.config.projection_dim == 12
    scored = ax.score(model, processor, ax.make_cases(0, 6, 64, 0.08), progress=False)
    assert all(len(c["local"]) == 64 for c in scored.curves)
    auc = ax.evidence_auc(scored)
    assert not ax.informative(auc)  # a model that knows nothing cannot pass the chapter's gate
    table = ax.oracle_table(scored, ax.budgets_for(64), 0.05)
    assert set(table["sampler"]) >= set(adaq.SAMPLERS)


def test_a_random_siglip_runs_end_to_end_with_max_length_padding_and_knows_nothing(tmp_path):
    """An architecture the zoo does not have (SigLIP: sigmoid loss, pooled heads, texts padded to the maximum
    length), saved and loaded through MODEL=<folder> as a hub model would be."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    from llmtheory.zoo import clip as zclip

    tokenizer = zclip.build_tokenizer()
    tokenizer.model_max_length = 48
    config = SiglipConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=24, intermediate_size=48, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=48, projection_size=24),
        vision_config=dict(hidden_size=24, intermediate_size=48, num_hidden_layers=1, num_attention_heads=2,
                           image_size=sc.IMAGE_SIZE, patch_size=sc.CELL * 2),
    )  # fmt: skip
    torch.manual_seed(0)
    SiglipModel(config).save_pretrained(tmp_path)
    pixels = SiglipImageProcessor(size={"height": sc.IMAGE_SIZE, "width": sc.IMAGE_SIZE})
    SiglipProcessor(image_processor=pixels, tokenizer=tokenizer).save_pretrained(tmp_path)
    model, processor = zoo.load(str(tmp_path))
    assert type(model).__name__ == "SiglipModel" and adaq.text_padding(model) == "max_length"
    assert adaq.text_embeddings(model, processor, ["a red ball", "a blue cube on the left"]).shape == (2, 24)
    scored = ax.score(model, processor, ax.make_cases(0, 6, 64, 0.08), progress=False)
    assert not ax.informative(ax.evidence_auc(scored))  # a model that knows nothing cannot pass the gate
    assert set(ax.oracle_table(scored, ax.budgets_for(64), 0.05)["sampler"]) >= set(adaq.SAMPLERS)


def test_the_fast_pixel_path_equals_the_processor():
    from llmtheory.zoo import clip as zclip

    processor = zclip.build_processor()
    frames = ax.make_case(0, 1, 64, 0.08).frames(range(5))
    expected = processor(images=list(frames), return_tensors="pt")["pixel_values"]
    assert torch.allclose(adaq.pixel_values(processor, frames), expected, atol=1e-6)


def test_calibration_picks_one_lambda_of_the_grid_on_its_own_videos():
    scored = _peaked_scored()
    assert [c.index for c in scored.cases] == [ax.CALIBRATION_START + i for i in range(3)]
    assert ax.calibrate(scored, (4, 8)) in ax.LAMBDAS


def test_the_zoo_page_shows_the_dual_encoder_table_the_card_gives():
    from book_files import ROOT

    from llmtheory.zoo import clip as zclip

    page = (ROOT / "book" / "zoo.md").read_text()
    assert zclip.table().strip() in page, "book/zoo.md is stale: paste llmtheory.zoo.clip.table() into it"


def test_a_real_video_loads_from_npy_or_gif_and_other_formats_name_decord(tmp_path):
    from PIL import Image

    frames = ax.make_case(0, 2, 64, 0.08).frames()  # noisy: no two frames alike (GIF merges equal ones)
    np.save(tmp_path / "video.npy", frames)
    assert ax.load_video(str(tmp_path / "video.npy"), 16).shape == (16, *frames.shape[1:])
    images = [Image.fromarray(f) for f in frames[:10]]
    images[0].save(tmp_path / "video.gif", save_all=True, append_images=images[1:])
    assert ax.load_video(str(tmp_path / "video.gif"), 32).shape[0] == 10
    (tmp_path / "video.mp4").write_bytes(b"")
    try:
        import decord  # noqa: F401
    except ImportError:
        with pytest.raises(ParameterError, match="decord"):
            ax.load_video(str(tmp_path / "video.mp4"), 16)
    with pytest.raises(ParameterError, match="VIDEO"):
        ax.load_video(str(tmp_path / "missing.npy"), 16)


def test_micro_clip_spec_trains_end_to_end_deterministically(tmp_path):
    from safetensors.torch import load_file

    from llmtheory.zoo import clip as zclip

    spec = zoo.SPECS["micro-clip"]
    first = zclip.train(spec, tmp_path / "a", progress=False)
    zclip.train(spec, tmp_path / "b", progress=False)
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert {"caption_top1", "mention_auc", "mention_top1"} <= set(first.metrics)
    model, processor = zoo.load(str(tmp_path / "a"))
    assert type(model).__name__ == "CLIPModel" and "Measured behaviour" in (tmp_path / "a" / "README.md").read_text()


def _peaked_scored(n_videos=3, n_frames=64):
    """Calibration cases with curves that peak on each query's evidence: a strong peak and a weak bump."""
    cases = ax.make_cases(0, n_videos, n_frames, 0.08, start=ax.CALIBRATION_START)
    curves = []
    for case in cases:
        curve = {}
        for query in case.queries:
            s = make_rng(1, "calibration", case.index).normal(0, 0.01, case.n_frames)
            for start, stop in query.windows:
                s[start:stop] += 0.1 if query.group == "local" else 0.01
            curve[query.group] = s
        curves.append(curve)
    return ax.Scored(cases, curves, [])


def test_bolt_is_calibrated_by_the_same_rule_and_a_bad_sampler_is_named():
    scored = _peaked_scored()
    alpha = ax.calibrate(scored, (4, 8), ax.ALPHA_GRID, sampler="bolt")
    assert alpha in ax.ALPHA_GRID and len(ax.ALPHA_GRID) == len(ax.LAMBDAS)
    table = ax.lambda_table(scored, (4, 8), (), alphas=ax.ALPHA_GRID)
    means = table.groupby(["lam", "query"])["correct"].mean().unstack().mean(axis=1)
    assert means[alpha] == means.max()
    with pytest.raises(ParameterError, match="sampler"):
        ax.calibrate(scored, (4, 8), sampler="top-k")


def test_evaluation_calibration_and_first_run_videos_do_not_meet():
    first_run = set(range(80))
    calibration = set(range(ax.CALIBRATION_START, ax.CALIBRATION_START + 1000))
    evaluation = set(range(ax.EVALUATION_START, ax.EVALUATION_START + 1000))
    assert not (first_run & evaluation) and not (calibration & evaluation)


def test_the_question_stem_is_stripped_for_retrieval():
    assert ax.strip_question("what colour is the square that appears ?") == "the square that appears"
    assert ax.strip_question("how many shapes appear?") == "shapes appear"
    assert ax.strip_question("a dog runs") == "a dog runs"


def test_siglip_models_get_max_length_padding():
    class Config:
        model_type = "siglip"

    class Model:
        config = Config()

    assert adaq.text_padding(Model()) == "max_length"
    Config.model_type = "clip"
    assert adaq.text_padding(Model()) is True


def test_the_vlm_rule_is_one_row_per_query_type_and_interval_widths_per_lambda():
    rows = []
    for video in range(4):
        for group in ax.QUERY_TYPES:
            for name in [*adaq.SAMPLERS, "evidence"]:
                rows.append({"video": video, "query": group, "budget": 8, "sampler": name, "correct": name != "adaq"})
    test, text = ax.vlm_rule(pd.DataFrame(rows), "local")
    assert not test.holds and test.decisive and text.startswith("1.000") and text.endswith("below uniform")
    with pytest.raises(ParameterError, match="group"):
        ax.vlm_rule(pd.DataFrame(rows), "both")
    widths = ax.interval_widths(_peaked_scored(2), (0.001, np.inf))
    assert list(widths.columns) == list(ax.QUERY_TYPES)
    assert (widths.loc[np.inf] == 1.0).all() and widths.loc[0.001, "local"] < 0.5


def test_adaq_shuffled_is_adaq_on_the_next_videos_curve_and_deterministic():
    scored = _peaked_scored(3)
    for i in range(3):
        picks = ax.selections(scored, i, "global", 8, 0.01)
        other = scored.curves[(i + 1) % 3]["global"]
        assert np.array_equal(picks["adaq shuffled"], adaq.adaq(other, 8, 0.01))
        assert np.array_equal(picks["adaq shuffled"], ax.selections(scored, i, "global", 8, 0.01)["adaq shuffled"])
    table = ax.oracle_table(scored, (4, 8), 0.01)
    assert set(table[table["sampler"] == "adaq shuffled"]["budget"]) == {4, 8}


def test_event_contrast_measures_bumps_and_dips_in_background_deviations():
    case = ax.make_case(0, ax.CALIBRATION_START, 64, 0.08)
    s = np.where(np.arange(64) % 2, 1.0, -1.0)
    events = case.video.events
    background = np.ones(64, bool)
    for e in events:
        background[e.start : e.stop] = False
    s = s - s[background].mean()
    s[events[0].start : events[0].stop] = s[background].std() * 3 + s[background].mean()
    s[events[1].start : events[1].stop] = -s[background].std() * 3 + s[background].mean()
    contrast = ax.event_contrast(ax.Scored([case], [{"global": s, "local": s}], []))
    assert len(contrast) == len(events)
    assert contrast[0] == pytest.approx(3.0) and contrast[1] == pytest.approx(-3.0)


def test_split_range_gives_the_lambda_and_every_cut_that_picks_it():
    widths = pd.DataFrame(
        {"local": [0.2, 0.5, 1.0, 1.0], "global": [0.9, 1.0, 1.0, 1.0]}, index=[0.01, 0.02, 0.04, 0.08]
    )
    assert ax.split_range(widths, 0.25) == pytest.approx((0.02, 0.0, 0.5))
    assert ax.split_range(widths, 0.6) == pytest.approx((0.01, 0.5, 0.7))
    assert all(np.isnan(ax.split_range(widths, 0.8)))


def test_the_vlm_rows_control_is_the_sampler_expected_to_fall_short():
    rows = []
    for video in range(6):
        for group in ax.QUERY_TYPES:
            for name in [*adaq.SAMPLERS, "evidence"]:
                wrong = ax.VLM_CONTROLS[group]
                rows.append({"video": video, "query": group, "budget": 8, "sampler": name, "correct": name != wrong})
    for group in ax.QUERY_TYPES:
        control = ax.vlm_control(pd.DataFrame(rows), group)
        assert ax.VLM_CONTROLS[group] in control.name
        assert not control.holds.holds and control.holds.decisive and control.ours.startswith("1.000")
        assert ax.vlm_rule(pd.DataFrame(rows), group)[0].holds


def test_moved_verdicts_name_each_row_old_and_new_and_compare_words():
    text = ax.moved_verdicts(lambda row: f"new-{row}")
    assert all(f"{row}: {old}" in text and f"new-{row}" in text for row, (old, _) in ax.FIRST_SET.items())
    assert ax.more_or_less(Estimate(0.1, 0.02, 0.2)) == "more often than"
    assert ax.more_or_less(Estimate(-0.1, -0.2, -0.02)) == "less often than"
    assert ax.more_or_less(Estimate(0.0, -0.1, 0.1)) == "about as often as"
