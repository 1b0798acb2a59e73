"""Tests of the plasticity chapter's library (llmtheory.plasticity): the stream, the parameter count against real
GPT-2 models, the probe and its control, the indicators on constructed cases, the onset rule and the law's fit on
synthetic curves, the interventions, and the real path's plumbing on a tiny random GPT-NeoX. Tiny configurations
only: every test runs in a few seconds."""

import itertools
import math

import numpy as np
import pytest
import torch

from llmtheory import plasticity as pl
from llmtheory.params import ParameterError
from llmtheory.seeding import make_rng

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_stream(**kw):
    defaults = dict(vocab=12, branching=3, n_languages=3, seq_len=8, batch_size=4, cycle_steps=5, seed=0)
    defaults.update(kw)
    return pl.Stream(**defaults)


def tiny_model(stream, seed=0, size=(8, 1, 2), activation="relu"):
    return pl.build_model(pl.gpt2_config(size, stream, activation=activation), seed)


# ---------------------------------------------------------------------------------------------------------------
# The stream
# ---------------------------------------------------------------------------------------------------------------


def test_every_language_is_a_relabelling_that_keeps_the_shared_symbols_in_place():
    stream = tiny_stream(vocab=40, shared_fraction=0.25, n_languages=4)
    lexicons = stream.lexicons - 1
    for lexicon in lexicons:
        assert sorted(lexicon.tolist()) == list(range(40))  # a permutation of the symbols
    fixed = np.all(lexicons == np.arange(40), axis=0)
    assert fixed.sum() >= 10  # the 10 cognates are written the same in every language (the probe's too)
    assert len({tuple(lx) for lx in lexicons}) == len(lexicons)  # the languages differ


def test_a_language_written_back_to_symbols_follows_the_base_chain():
    stream = tiny_stream(vocab=10, branching=2, batch_size=64, seq_len=12)
    batch = stream.probe_batch(0).numpy()
    inverse = np.argsort(stream.lexicons[stream.probe_language] - 1)
    symbols = inverse[batch[:, 1:] - 1]
    assert (batch[:, 0] == pl.BOS).all()
    allowed = stream.transition > 0
    assert allowed[symbols[:, :-1], symbols[:, 1:]].all()  # every transition is one the base chain allows


def test_cycles_visit_the_languages_in_fixed_blocks_and_the_stationary_mixture_mixes_them():
    stream = tiny_stream(cycle_steps=5, n_languages=3, batch_size=64)
    assert [stream.language_at(s) for s in (0, 4, 5, 10, 14, 15)] == [0, 0, 1, 2, 2, 0]
    assert stream.language_at(3, "stationary") is None

    # read each row back through every lexicon: a row is "in" the languages whose base-chain transitions it follows
    def languages_of_rows(batch):
        symbols = [np.argsort(lexicon - 1)[batch[:, 1:].numpy() - 1] for lexicon in stream.lexicons[:-1]]
        allowed = stream.transition > 0
        return np.array([allowed[s[:, :-1], s[:, 1:]].all(axis=1) for s in symbols]).T  # rows × languages

    cycles, stationary = languages_of_rows(stream.batch(5, "cycles")), languages_of_rows(stream.batch(5, "stationary"))
    assert cycles[:, 1].all()  # step 5 is the second block: every row is in language 1
    unique = stationary[stationary.sum(axis=1) == 1]
    assert len(set(unique.argmax(axis=1).tolist())) == 3  # the mixture's rows come from all three languages
    with pytest.raises(ParameterError, match="setting"):
        stream.batch(0, "shuffled")


def test_batches_depend_only_on_the_seed_and_the_step():
    a, b = tiny_stream(seed=3), tiny_stream(seed=3)
    assert torch.equal(a.batch(7), b.batch(7)) and torch.equal(a.probe_batch(2), b.probe_batch(2))
    assert not torch.equal(a.batch(7), a.batch(8))
    assert not torch.equal(a.batch(7), tiny_stream(seed=4).batch(7))
    assert torch.equal(a.probe_eval_batch(), b.probe_eval_batch())
    replicate = a.with_data_seed(1)
    assert not torch.equal(replicate.batch(7), a.batch(7))  # another draw of training batches ...
    assert torch.equal(replicate.probe_batch(2), a.probe_batch(2))  # ... on the same languages and probe data
    assert np.array_equal(replicate.lexicons, a.lexicons) and a.data_seed == 0


def test_the_entropy_rate_of_a_deterministic_cycle_is_zero_and_of_a_fair_coin_log_2():
    stream = tiny_stream(vocab=6, branching=1)
    assert stream.entropy_rate() == pytest.approx(0.0, abs=1e-9)
    stream.transition = np.full((6, 6), 0.0)
    stream.transition[np.arange(6), (np.arange(6) + 1) % 6] = 0.5
    stream.transition[np.arange(6), (np.arange(6) + 2) % 6] = 0.5
    assert stream.entropy_rate() == pytest.approx(math.log(2), abs=1e-9)


def test_bad_stream_parameters_name_themselves():
    with pytest.raises(ParameterError, match="branching"):
        pl.Stream(vocab=8, branching=9)
    with pytest.raises(ParameterError, match="shared_fraction"):
        pl.Stream(shared_fraction=1.5)
    with pytest.raises(ParameterError, match="token_ids"):
        tiny_stream().on_token_ids([1, 2, 3])


def test_a_stream_on_real_token_ids_writes_the_same_sequences_in_other_ids():
    stream = tiny_stream(vocab=6)
    ids = np.array([50, 11, 12, 13, 14, 15, 16])
    moved = stream.on_token_ids(ids)
    assert torch.equal(moved.probe_batch(1), torch.from_numpy(ids)[stream.probe_batch(1)])
    assert torch.equal(stream.probe_batch(1), tiny_stream(vocab=6).probe_batch(1))  # the original is unchanged


# ---------------------------------------------------------------------------------------------------------------
# The models
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(8, 1, 2), (16, 2, 2), (24, 3, 3)])
def test_the_non_embedding_count_from_the_config_matches_the_model(size):
    stream = tiny_stream()
    model = tiny_model(stream, size=size)
    config = model.config
    embeddings = config.vocab_size * config.n_embd + config.n_positions * config.n_embd
    total = sum(p.numel() for p in model.parameters())  # tied output layer counted once
    assert pl.non_embedding_parameters(config) == pl.count_non_embedding(model) == total - embeddings


def test_the_book_sizes_span_more_than_thirty_times_in_non_embedding_parameters():
    stream = pl.Stream()
    counts = [pl.non_embedding_parameters(pl.gpt2_config(name, stream)) for name in pl.SIZES]
    assert counts == sorted(counts) and len(counts) >= 5
    assert counts[-2] / counts[0] >= 30  # w16 … w96 alone span 34×


def test_a_size_that_does_not_split_into_heads_is_refused():
    with pytest.raises(ParameterError, match="n_head"):
        pl.gpt2_config((10, 1, 3), tiny_stream())
    with pytest.raises(ParameterError, match="size"):
        pl.gpt2_config("w1000", tiny_stream())


# ---------------------------------------------------------------------------------------------------------------
# Training, the probe and the control
# ---------------------------------------------------------------------------------------------------------------


def test_training_is_deterministic_and_keeps_the_checkpoints_it_was_asked_for():
    stream = tiny_stream()
    seen = []
    traces = [
        pl.train_stream(
            tiny_model(stream),
            stream,
            setting="cycles",
            steps=6,
            checkpoints=[0, 3, 6],
            on_checkpoint=lambda step, _model: seen.append(step),
        )  # fmt: skip
        for _ in range(2)
    ]
    assert sorted(traces[0].checkpoints) == [0, 3, 6] and seen == [0, 3, 6, 0, 3, 6]
    assert np.array_equal(traces[0].losses, traces[1].losses)
    for key, value in traces[0].checkpoints[6].items():
        assert torch.equal(value, traces[1].checkpoints[6][key])
    first, last = traces[0].checkpoints[0], traces[0].checkpoints[6]
    assert not torch.equal(first["transformer.wte.weight"], last["transformer.wte.weight"])


def test_a_shipped_checkpoint_reprobes_to_the_probe_taken_during_training_and_a_prefix_retrains_to_it():
    # what the book tier checks on the zoo artefact: a probe from saved weights equals the one taken in the run,
    # and training only the first steps again gives the saved weights bit for bit
    stream = tiny_stream()
    during = {}

    def probe_now(step, model):
        during[step] = pl.probe(model, stream, budget=3)

    trace = pl.train_stream(
        tiny_model(stream), stream, setting="cycles", steps=6, checkpoints=[3], on_checkpoint=probe_now
    )
    reloaded = tiny_model(stream, seed=9)
    reloaded.load_state_dict(trace.checkpoints[3])
    assert pl.probe(reloaded, stream, budget=3).final == during[3].final
    prefix = pl.train_stream(tiny_model(stream), stream, setting="cycles", steps=3, checkpoints=[3])
    assert all(torch.equal(v, trace.checkpoints[3][k]) for k, v in prefix.checkpoints[3].items())


def test_the_learning_rate_scales_as_one_over_the_width():
    stream = pl.Stream()
    rates = {name: pl.learning_rate_for(pl.gpt2_config(name, stream)) for name in ("w16", "w32", "w96")}
    assert rates == pytest.approx({"w16": 6e-3, "w32": 3e-3, "w96": 1e-3})


def test_training_lowers_the_loss_on_a_single_language():
    stream = tiny_stream(cycle_steps=1000, batch_size=16)
    trace = pl.train_stream(tiny_model(stream, size=(16, 1, 2)), stream, setting="cycles", steps=60, learning_rate=1e-2)
    assert trace.losses[-10:].mean() < trace.losses[:5].mean() - 0.3


def test_the_probe_leaves_the_checkpoint_unchanged_and_is_reproducible():
    stream = tiny_stream()
    model = tiny_model(stream)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first, second = (pl.probe(model, stream, budget=5) for _ in range(2))
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    assert first.final == second.final and np.array_equal(first.curve, second.curve)
    assert first.mean == pytest.approx(first.curve.mean()) and len(first.curve) == 5


def test_a_longer_probe_budget_reaches_a_lower_probe_loss():
    stream = tiny_stream(batch_size=16)
    model = tiny_model(stream, size=(16, 1, 2))
    assert pl.probe(model, stream, budget=40, learning_rate=1e-2).final < pl.probe(model, stream, budget=2).final


def test_the_gap_is_the_checkpoint_minus_the_mean_fresh_probe():
    curve = np.zeros(3)
    ck = pl.ProbeResult(final=2.0, mean=3.0, curve=curve)
    fresh = [pl.ProbeResult(1.5, 2.0, curve), pl.ProbeResult(2.5, 3.0, curve)]
    assert pl.plasticity_gap(ck, fresh) == pytest.approx(0.0)
    assert pl.plasticity_gap(ck, fresh, "mean") == pytest.approx(0.5)
    with pytest.raises(ParameterError, match="which"):
        pl.plasticity_gap(ck, fresh, "median")
    with pytest.raises(ParameterError, match="fresh"):
        pl.plasticity_gap(ck, [])


def test_the_fresh_control_of_the_checkpoint_at_step_zero_has_a_gap_of_zero():
    # the checkpoint at step 0 *is* a fresh initialisation: with the same seed its gap is exactly 0
    stream = tiny_stream()
    config = pl.gpt2_config((8, 1, 2), stream)
    fresh = pl.fresh_probe(config, stream, seeds=[5], budget=3)
    at_zero = pl.probe(pl.build_model(config, 5), stream, budget=3)
    assert pl.plasticity_gap(at_zero, fresh) == 0.0


def test_a_trajectory_has_one_row_per_checkpoint_and_its_step_zero_probe_is_the_fresh_probe():
    stream = tiny_stream()
    config = pl.gpt2_config((8, 1, 2), stream)
    rows = pl.trajectory(config, stream, setting="stationary", steps=6, checkpoints=[0, 3, 6], seed=2, probe_budget=3)
    assert [r["step"] for r in rows] == [0, 3, 6]
    assert rows[0]["probe_final"] == pl.fresh_probe(config, stream, seeds=[2], budget=3)[0].final
    assert math.isnan(rows[0]["train_loss"]) and rows[2]["train_loss"] > 0
    assert {"dead_fraction", "weight_norm", "effective_rank", "grad_norm"} <= set(rows[1])


# ---------------------------------------------------------------------------------------------------------------
# Interventions
# ---------------------------------------------------------------------------------------------------------------


def test_shrink_and_perturb_acts_every_k_steps_on_matrices_only():
    stream = tiny_stream()
    model = tiny_model(stream)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    sp = pl.ShrinkPerturb(shrink=0.5, noise=0.0, every=3)
    sp.after_step(model, 0)  # step 1 of 3: nothing
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    sp.after_step(model, 2)
    for name, p in model.named_parameters():
        expected = before[name] * 0.5 if p.ndim >= 2 else before[name]
        assert torch.allclose(p, expected), name
    noisy = pl.ShrinkPerturb(shrink=1.0, noise=1.0, every=1, seed=1)
    noisy.after_step(model, 0)
    change = model.transformer.h[0].mlp.c_fc.weight - 0.5 * before["transformer.h.0.mlp.c_fc.weight"]
    assert 0.01 < float(change.detach().std()) < 0.03  # one fresh initialisation's standard deviation, 0.02
    with pytest.raises(ParameterError, match="shrink"):
        pl.ShrinkPerturb(shrink=1.5)


def test_l2_init_penalty_is_zero_at_the_start_and_half_lambda_times_the_squared_distance():
    stream = tiny_stream()
    model = tiny_model(stream)
    reg = pl.L2Init(strength=0.2)
    reg.start(model)
    assert reg.penalty(model).item() == 0.0
    with torch.no_grad():
        model.transformer.ln_f.bias.add_(1.0)  # n_embd = 8 entries each moved by 1
    assert reg.penalty(model).item() == pytest.approx(0.5 * 0.2 * 8)


def test_the_l2_init_intervention_keeps_the_weights_nearer_their_start():
    stream = tiny_stream()

    def distance(intervention):
        model = tiny_model(stream)
        start = [p.detach().clone() for p in model.parameters()]
        pl.train_stream(model, stream, setting="stationary", steps=15, learning_rate=1e-2, intervention=intervention)
        return sum(float(((p - s) ** 2).sum().detach()) for p, s in zip(model.parameters(), start, strict=True))

    assert distance(pl.L2Init(strength=1.0)) < distance(None)


# ---------------------------------------------------------------------------------------------------------------
# Indicators
# ---------------------------------------------------------------------------------------------------------------


def test_effective_rank_of_constructed_matrices():
    assert pl.effective_rank(np.outer(np.arange(1, 6), np.ones(4))) == pytest.approx(1.0)
    assert pl.effective_rank(np.eye(7)) == pytest.approx(7.0)
    # singular values 3 and 1: p = (3/4, 1/4)
    p = np.array([0.75, 0.25])
    assert pl.effective_rank(np.diag([3.0, 1.0])) == pytest.approx(math.exp(-(p * np.log(p)).sum()))
    assert pl.effective_rank(np.zeros((3, 3))) == 0.0


def test_a_unit_with_a_large_negative_bias_is_dead_and_counted():
    stream = tiny_stream()
    model = tiny_model(stream)
    batch = stream.probe_eval_batch(rows=16)
    units = model.config.n_layer * 4 * model.config.n_embd
    base = pl.dead_fraction(model, batch)
    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.bias[:3] = -100.0
    assert pl.dead_fraction(model, batch) == pytest.approx(base + 3 / units)


def test_the_indicators_leave_the_model_unchanged_and_its_gradients_empty():
    stream = tiny_stream()
    model = tiny_model(stream)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    values = pl.indicators(model, stream.probe_eval_batch(rows=16))
    assert set(values) == {"dead_fraction", "weight_norm", "effective_rank", "grad_norm"}
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    norm = math.sqrt(sum(float((v.detach().double() ** 2).sum()) for v in model.parameters()))
    assert values["weight_norm"] == pytest.approx(norm) and values["grad_norm"] > 0
    assert 1.0 <= values["effective_rank"] <= model.config.n_embd


# ---------------------------------------------------------------------------------------------------------------
# The onset and the law
# ---------------------------------------------------------------------------------------------------------------


def test_smoothing_is_a_centred_average_with_shrinking_ends():
    assert np.allclose(pl.smooth([0, 3, 6, 9, 3], 3), [0, 3, 6, 6, 3])
    with pytest.raises(ParameterError, match="odd"):
        pl.smooth([1, 2, 3], 2)


def test_the_onset_is_the_first_checkpoint_standing_a_margin_above_the_earlier_minimum():
    steps = np.arange(0, 1100, 100)
    # falls to −0.5 at step 300, flat, then rises by 0.1 per checkpoint from step 600
    gaps = np.array([0.0, -0.3, -0.45, -0.5, -0.5, -0.5, -0.4, -0.3, -0.2, -0.1, 0.0])
    onset = pl.locate_onset(steps, gaps, window=1, margin=0.05)
    assert onset.located and onset.step == 600 and onset.index == 6
    assert pl.locate_onset(steps, gaps, window=1, margin=0.15).step == 700
    # smoothing moves it by at most half a window
    assert pl.locate_onset(steps, gaps, window=3, margin=0.05).step in (500, 600, 700)


def test_the_rise_is_the_largest_excess_over_the_earlier_minimum():
    onset = pl.locate_onset([0, 1, 2, 3, 4], [0.0, -0.5, -0.2, -0.6, -0.3], window=1)
    assert onset.rise == pytest.approx(0.3) and onset.step == 2


def test_the_null_curve_of_fresh_inits_has_one_gap_per_checkpoint():
    stream = tiny_stream()
    config = pl.gpt2_config((8, 1, 2), stream)
    fresh = pl.fresh_probe(config, stream, seeds=[0], budget=2)
    null = pl.null_gaps(config, stream, 3, fresh, seed_base=0, budget=2)
    assert null.shape == (3,) and null[0] == 0.0 and np.all(np.isfinite(null))


def test_the_null_margin_is_three_null_standard_deviations_above_its_floor():
    assert pl.null_margin([0.0, 0.1, 0.0, 0.1]) == pytest.approx(3 * np.std([0, 0.1, 0, 0.1], ddof=1))
    assert pl.null_margin([0.0, 0.001, 0.0]) == pl.ONSET_MARGIN
    with pytest.raises(ParameterError, match="null"):
        pl.null_margin([0.1])


def test_a_gap_that_keeps_falling_or_wobbles_within_the_margin_has_no_onset():
    steps = np.arange(8) * 10
    assert not pl.locate_onset(steps, -np.linspace(0, 1, 8)).located
    wobble = -0.5 + 0.02 * np.array([0, 1, -1, 1, -1, 1, -1, 1])
    assert pl.locate_onset(steps, wobble, margin=0.05).step is None
    with pytest.raises(ParameterError, match="increase"):
        pl.locate_onset([0, 2, 1], [0, 0, 0])


def test_a_size_is_located_only_when_more_than_half_its_seeds_are():
    rng = make_rng(0, "t")
    assert pl.onset_over_seeds([100, None, None], rng).estimate is None
    size = pl.onset_over_seeds([100, 400, None], rng)
    assert size.estimate.value == pytest.approx(200.0) and size.located == 2
    assert size.estimate.low >= 100 and size.estimate.high <= 400


def test_the_law_recovers_a_known_exponent_and_its_interval_covers_it():
    n = np.array([1e4, 3e4, 1e5, 3e5, 1e6])
    rng = make_rng(0, "law")
    noise = make_rng(1, "noise").normal(0, 0.05, (5, 3))
    onsets = [[int(round(50 * x**0.5 * math.exp(e))) for e in row] for x, row in zip(n, noise, strict=True)]
    law = pl.fit_onset_law(n, onsets, rng, draws=500)
    assert law.status == "fitted" and law.exponent.low < 0.5 < law.exponent.high
    assert law.exponent.value == pytest.approx(0.5, abs=0.05)
    assert bool(law.sublinear()) and law.sublinear().decisive and law.delays().decisive


def test_a_linear_law_is_not_called_sublinear():
    n = np.array([1e4, 3e4, 1e5, 3e5, 1e6])
    noise = make_rng(2, "noise").normal(0, 0.05, (5, 3))
    onsets = [[int(round(0.01 * x * math.exp(e))) for e in row] for x, row in zip(n, noise, strict=True)]
    law = pl.fit_onset_law(n, onsets, make_rng(0, "law"), draws=500)
    assert not law.sublinear().holds or not law.sublinear().decisive


def test_too_few_located_sizes_give_no_law():
    onsets = [[100, 120], [200, None], [None, None], [None, None]]
    law = pl.fit_onset_law([1e4, 3e4, 1e5, 3e5], onsets, make_rng(0, "law"))
    assert law.status == "not located" and law.exponent is None and law.sublinear() is None
    assert "1 of 4 sizes" in law.reason


# ---------------------------------------------------------------------------------------------------------------
# The real path's plumbing (no network): another architecture, real token ids, revision names
# ---------------------------------------------------------------------------------------------------------------


def test_the_probe_and_indicators_run_on_a_random_gpt_neox_with_real_token_ids():
    from transformers import AutoModelForCausalLM, GPTNeoXConfig

    stream = tiny_stream(vocab=6).on_token_ids([3, 20, 21, 22, 23, 24, 25])
    config = GPTNeoXConfig(vocab_size=40, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=16, max_position_embeddings=16)  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    result = pl.probe(model, stream, budget=2)
    assert np.isfinite(result.final)
    assert set(pl.indicators(model, stream.probe_eval_batch(rows=4))) >= {"dead_fraction", "effective_rank"}
    embeddings = 2 * 40 * 8  # untied embed_in and embed_out
    assert pl.count_non_embedding(model) == sum(p.numel() for p in model.parameters()) - embeddings


def test_revision_names_parse_and_bad_ones_are_refused():
    assert pl.revision_step("step143000") == 143000
    steps = [pl.revision_step(r) for r in pl.PYTHIA_REVISIONS]
    assert steps == sorted(steps) and steps[-1] == 143000
    with pytest.raises(ParameterError, match="revision"):
        pl.revision_step("main")


def test_checkpoint_schedules_close_cycles():
    assert pl.checkpoint_steps(1000, 5, multiple_of=100) == [0, 200, 400, 600, 800, 1000]
    geometric = pl.checkpoint_steps(1600, 5, multiple_of=100, spacing="geometric")
    assert geometric[0] == 0 and geometric[-1] == 1600 and all(s % 100 == 0 for s in geometric)
    assert geometric == sorted(set(geometric))


# ---------------------------------------------------------------------------------------------------------------
# The chapter's analysis: from an artefact's tables to gaps, margins, onsets, the law and the ledger's rules
# ---------------------------------------------------------------------------------------------------------------


THREE = ({"a": 1000, "b": 4000, "c": 16000}, {"a": 200, "b": 400, "c": 600})
SIX = (
    {"a": 1000, "b": 4000, "c": 16000, "d": 64000, "e": 256000, "f": 1024000},
    {"a": 200, "b": 300, "c": 400, "d": 500, "e": 600, "f": 700},
)


def synthetic_tables(rising=("a", "b", "c"), seeds=(0, 1, 2), steps=tuple(range(0, 1000, 100)), sizes=THREE):
    """Trajectories and controls of sizes a < b < c (or ``SIX``: a to f) whose gap falls, then rises from a
    size-dependent step (size a after 200, b after 300 or 400, ...), and A/A null curves that wobble by ±0.01."""
    import pandas as pd

    n, turn = sizes
    rows, controls = [], []
    for size in n:
        for seed in seeds:
            for step in steps:
                gap = -0.5 * min(step, 100) / 100
                if size in rising and step > turn[size]:
                    gap += 0.2 * (step - turn[size]) / 100
                rows.append({"size": size, "non_embedding": n[size], "seed": seed, "step": step,
                             "probe_final": 2.0 + gap + 0.001 * seed, "probe_mean": 3.0 + gap})  # fmt: skip
        controls += [{"size": size, "kind": "fresh", "index": j, "probe_final": 2.0 + 0.001 * (j - 1),
                      "probe_mean": 3.0} for j in range(3)]  # fmt: skip
        controls += [{"size": size, "kind": "aa_null", "index": k, "probe_final": 2.0 + 0.01 * (-1) ** k,
                      "probe_mean": 3.0} for k in range(len(steps))]  # fmt: skip
    return pd.DataFrame(rows), pd.DataFrame(controls)


class TablesArtefact:
    def __init__(self, trajectories, controls, name="synthetic"):
        self.trajectories, self.controls, self.name = trajectories, controls, name


def test_the_gap_subtracts_each_sizes_mean_fresh_probe():
    trajectories, controls = synthetic_tables()
    gaps = pl.gap_table(trajectories, controls, "final")
    first = gaps[(gaps["size"] == "a") & (gaps["seed"] == 0) & (gaps["step"] == 0)]["gap"].iloc[0]
    assert first == pytest.approx(0.0, abs=1e-12)  # step 0 of seed 0 is probed like the fresh mean (2.0)
    assert pl.gap_table(trajectories, controls, "mean")["gap"].min() == pytest.approx(-0.5)
    with pytest.raises(ParameterError, match="which"):
        pl.gap_table(trajectories, controls, "median")


def test_the_null_curve_follows_the_checkpoint_index_and_sets_the_margin():
    trajectories, controls = synthetic_tables()
    shuffled = controls.sample(frac=1.0, random_state=0)
    curves = pl.null_curves(shuffled)
    assert curves["a"] == pytest.approx([0.01 * (-1) ** k for k in range(10)])  # read back in index order
    margins = pl.size_margins(controls)
    assert margins["a"] == pytest.approx(max(0.05, 3 * np.std(curves["a"], ddof=1)))
    noisy = controls.copy()
    pattern = 0.1 * np.array([-1, 1, 0, 1, -1, 0, 1, 0, -1, 1])
    noisy.loc[noisy["kind"] == "aa_null", "probe_final"] = 2.0 + np.tile(pattern, 3)
    assert pl.size_margins(noisy)["a"] == pytest.approx(3 * np.std(pattern, ddof=1))


def test_onsets_are_located_per_seed_and_the_last_checkpoint_is_flagged():
    trajectories, controls = synthetic_tables(rising=("a", "b"))
    onsets = pl.onset_table(pl.gap_table(trajectories, controls), pl.size_margins(controls))
    by_size = onsets.groupby("size")["onset"].first()
    assert by_size["a"] < by_size["b"] and np.isnan(by_size["c"])  # c never rises: not located
    late = trajectories.copy()
    late.loc[(late["size"] == "c") & (late["step"] == 900), "probe_final"] += 0.1  # a jump at the last checkpoint
    flagged = pl.onset_table(pl.gap_table(late, controls), pl.size_margins(controls))
    assert (
        flagged[flagged["size"] == "c"]["at_horizon"].all() and not flagged[flagged["size"] == "a"]["at_horizon"].any()
    )


def test_the_law_of_onsets_that_move_later_with_size_has_a_positive_exponent_and_censoring_drops_horizon_onsets():
    trajectories, controls = synthetic_tables()
    analysis = pl.analyse(TablesArtefact(trajectories, controls), seed=0)
    assert analysis.law.status == "fitted" and analysis.law.exponent.value > 0
    assert analysis.by_size["onset"].is_monotonic_increasing
    late = trajectories.copy()
    late.loc[late["size"] == "c", "probe_final"] = 2.0 - 0.5 * np.minimum(late["step"], 100) / 100
    late.loc[(late["size"] == "c") & (late["step"] == 900), "probe_final"] += 0.1
    censored = pl.analyse(TablesArtefact(late, controls), seed=0)
    assert len(censored.law.sizes_used) == 3 and len(censored.law_censored.sizes_used) == 2
    assert censored.law_censored.status == "not located"  # two sizes left: no forced fit
    assert "not located" in pl.law_text(censored.law_censored)


def test_the_permuted_laws_share_one_bootstrap_and_each_equals_its_own_fit():
    trajectories, controls = synthetic_tables()
    analysis = pl.analyse(TablesArtefact(trajectories, controls), seed=0)
    orders = list(itertools.permutations(range(3)))
    laws = pl.permuted_laws(analysis.onsets, 0, "x", orders)
    n, per_seed, _ = pl._per_size(analysis.onsets)
    for order, law in zip(orders, laws, strict=True):
        alone = pl.fit_onset_law(
            [n[i] for i in order], per_seed, make_rng(0, "plasticity-law", "x", "ledger", "permuted")
        )
        assert law.exponent.value == pytest.approx(alone.exponent.value, abs=1e-12)
        assert law.exponent.low == pytest.approx(alone.exponent.low, abs=1e-12)
    assert laws[0].exponent.value == pytest.approx(analysis.law.exponent.value)  # the identity is the ledger's fit
    points = [law.exponent.value for law in laws]
    assert np.mean(points) == pytest.approx(0.0, abs=1e-12)  # over all orderings, N carries no trend


def test_loss_appears_holds_when_every_size_rises_and_its_null_control_fails():
    trajectories, controls = synthetic_tables()
    test, control, estimates, null = pl.loss_appears_rule(pl.analyse(TablesArtefact(trajectories, controls)))
    assert test.holds and not control.holds and all(r < 0.05 for r in null.values())
    flat = pl.analyse(TablesArtefact(*synthetic_tables(rising=("a", "b"))))
    assert not pl.loss_appears_rule(flat)[0].holds  # one size without a rise fails the "every size" rule
    row = pl.loss_appears_claim(flat, "c", "p")
    assert "at 2 of 3 sizes" in row["ours"] and row["control"].name.startswith("the A/A null")


def test_larger_delays_needs_enough_sizes_for_its_permuted_control_to_reject():
    from llmtheory.claims import NOT_DISCRIMINATING, REPRODUCED, Ledger

    ledger = Ledger("plasticity", scale="smoke", seed=0)
    three = pl.analyse(TablesArtefact(*synthetic_tables()))
    row = pl.delays_claim(three, seed=0)
    assert row["holds"].holds and "of the 6 orderings" in row["control"].ours
    # three sizes: 6 orderings, so the permutation p is at least 1/6: the rule cannot discriminate
    assert ledger.check("larger-delays", kind="measured", **row).verdict == NOT_DISCRIMINATING
    six = pl.analyse(TablesArtefact(*synthetic_tables(rising="abcdef", sizes=SIX)))
    row = pl.delays_claim(six, seed=0)
    assert "of the 720 orderings" in row["control"].ours and not row["control"].holds.holds  # p < 0.05
    assert ledger.check("larger-delays-six", kind="measured", **row).verdict == REPRODUCED


def test_the_onset_ratio_of_doubled_onsets_is_two_and_a_missing_onset_counts_at_the_horizon():
    import pandas as pd

    plain = pd.DataFrame({"size": ["a", "a", "b"], "seed": [0, 1, 0], "onset": [100.0, 200.0, 400.0],
                          "horizon": [1000] * 3})  # fmt: skip
    doubled = plain.assign(onset=plain["onset"] * 2)
    assert pl.onset_ratio(plain, doubled, 0, "x").value == pytest.approx(2.0)
    missing = doubled.assign(onset=[200.0, float("nan"), 800.0])
    assert pl.onset_ratio(plain, missing, 0, "x").value == pytest.approx((2 * 5 * 2) ** (1 / 3))
    shifted = pl.shifted_seeds(plain, [0, 1])
    assert shifted["seed"].tolist() == [1, 0, 1]  # seed 1's run stands in for seed 0 and seed 0's for seed 1


def test_the_n_count_identity_fails_when_the_table_disagrees():
    stream = pl.Stream()
    configs = {s: pl.gpt2_config(s, stream) for s in ("w16", "w24")}
    right = {s: pl.non_embedding_parameters(c) for s, c in configs.items()}
    assert pl.n_count_claim(configs, right)["holds"]
    assert not pl.n_count_claim(configs, {**right, "w24": right["w24"] + 1})["holds"]


def test_the_parameters_accept_the_defaults_and_name_a_bad_value():
    from llmtheory.params import check_values

    defaults = {"MODEL": pl.ZOO_MODEL, "REVISIONS": list(pl.PYTHIA_REVISIONS), "PROBE_LR": None, "PROBE_BUDGET": 50}
    assert check_values(defaults, pl.PARAMETERS)["PROBE_LR"] is None
    for name, bad in (("PROBE_LR", 1.0), ("PROBE_BUDGET", 0), ("REVISIONS", ["main"]), ("REVISIONS", []),
                      ("MODEL", "")):  # fmt: skip
        with pytest.raises(ParameterError, match=name):
            check_values({**defaults, name: bad}, pl.PARAMETERS)


def test_the_model_kind_tells_zoo_series_folders_and_hub_ids_and_refuses_an_artefact_without_checkpoints(tmp_path):
    assert pl.model_kind("plasticity-cycles") == "zoo"
    assert pl.model_kind(str(tmp_path)) == "folder"
    assert pl.model_kind("EleutherAI/pythia-70m") == "hub"
    with pytest.raises(ParameterError, match="ships no checkpoints"):
        pl.model_kind("plasticity-cycles-constlr")


def test_a_hub_id_that_cannot_be_reached_gives_a_message_naming_it(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ParameterError, match="MODEL='nobody-here/no-such-plasticity-model'.*could not be loaded"):
        pl.load_config("nobody-here/no-such-plasticity-model")


def test_a_single_random_model_is_not_testable_and_its_gap_is_reported():
    stream = tiny_stream()
    config = pl.gpt2_config((8, 1, 2), stream)
    result = pl.probe_series([(0, pl.build_model(config, 7))], stream, config, budget=3, learning_rate=1e-3,
                             fresh_seeds=(1000, 1001), label="random")  # fmt: skip
    assert result.status == "not testable" and len(result.steps) == 1
    assert np.isfinite(result.gaps).all() and "random: N =" in result.text()
    assert list(result.table().index) == [0]


def test_the_full_tier_memory_estimate_grows_with_the_model():
    stream = pl.Stream()
    small, large = (pl.full_memory_text(pl.gpt2_config(s, stream), stream) for s in ("w16", "w96"))
    gib = [float(t.split("about ")[1].split(" GiB")[0]) for t in (small, large)]
    assert gib[1] > gib[0] > 0 and "parameters: probing one checkpoint" in small


# the micro artefact, built once here: reading it back, re-probing its checkpoints, re-training a prefix


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    from llmtheory import plasticity_zoo as pz

    root = tmp_path_factory.mktemp("plasticity-micro")
    pz.build(pz.PLASTICITY_SPECS["micro-plasticity"], root / "out", partial_root=root / "partial", progress=False)
    return pz.read_artefact("micro-plasticity", folder=root / "out")


def test_a_built_artefact_reads_back_with_its_tables_and_runs_through_the_analysis(micro):
    assert micro.sizes == ["w16", "w24"] and micro.seeds == [0, 1] and micro.horizon == 20
    assert set(micro.controls["kind"]) == {"fresh", "aa_null"}
    analysis = pl.analyse(micro, seed=0)
    assert analysis.law.status == "not located"  # two sizes: no law, never a forced fit
    assert set(analysis.onsets["size"]) == {"w16", "w24"} and len(analysis.onsets) == 4


def test_a_missing_artefact_stops_with_its_name_and_build_command(tmp_path, micro):
    import shutil

    from llmtheory import plasticity_zoo as pz

    with pytest.raises(pz.ArtefactMissing, match=r"'micro-plasticity'.*zoo train micro-plasticity"):
        pz.read_artefact("micro-plasticity", folder=tmp_path / "nothing")
    partial = tmp_path / "partial"
    shutil.copytree(micro.folder, partial)
    (partial / "checkpoints" / "w16-seed0" / "step00010.safetensors").unlink()
    with pytest.raises(pz.ArtefactMissing, match="step00010"):
        pz.read_artefact("micro-plasticity", folder=partial)
    with pytest.raises(pz.ArtefactMissing) as both:
        pz.read_chapter_artefacts({"x": "micro-plasticity", "y": "micro-plasticity"})
    assert str(both.value).count("zoo train micro-plasticity") == 2  # every missing artefact, not only the first


def test_the_real_paths_code_reprobes_shipped_checkpoints_to_their_rows_and_a_prefix_retrains_bit_for_bit(micro):
    result = pl.probe_zoo_series(micro, "w16")
    assert result.steps == [0, 10, 20] and pl.reprobe_differences(result, micro, "w16") == 0.0
    assert result.status in ("onset located", "no onset within the series", "not testable")
    retrained = pl.retrain_prefix(micro, "w16", 10)
    assert retrained.equal and retrained.weight_difference == 0.0 and retrained.loss_difference == 0.0
    assert "bit for bit" in retrained.text()
    other = pl.probe_zoo_series(micro, "w16", [0, 20], budget=2)
    assert other.budget == 2 and pl.reprobe_differences(other, micro, "w16") > 0  # another budget: other numbers
    with pytest.raises(LookupError, match="no shipped checkpoint"):
        pl.probe_zoo_series(micro, "w16", [5])
