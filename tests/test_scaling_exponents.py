"""Unit tests of llmtheory.scaling_exponents: closed forms, fits that recover known parameters, the fBm
generator's Hurst exponent, the Markov corpus, and the CSV validation."""

import math

import numpy as np
import pandas as pd
import pytest
import sympy as sp
from scipy.optimize import minimize_scalar
from threadpoolctl import threadpool_limits

from llmtheory import claims
from llmtheory import scaling_exponents as se
from llmtheory.claims import ASSUMED, MEASURED, Estimate
from llmtheory.claims import Test as RuleOutcome
from llmtheory.params import ParameterError
from llmtheory.seeding import make_rng


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    with threadpool_limits(1):
        yield


def test_sympy_derivation_matches_closed_forms():
    d = se.derive_compute_optimal()
    A, B, alpha, beta, C = d["symbols"]
    assert sp.simplify(d["gamma"] - alpha * beta / (alpha + beta)) == 0
    assert d["first_order_at_optimum"] == 0
    assert se.symbolically_equal(d["N_opt"], d["N_opt_closed_form"])
    assert se.symbolically_equal(d["D_opt"], d["D_opt_closed_form"])
    assert not se.symbolically_equal(d["N_opt"], d["D_opt_closed_form"])


@pytest.mark.parametrize("law", se.CHINCHILLA_LAWS)
def test_allocation_minimises_the_loss_at_fixed_compute(law):
    compute = 1e21
    n_opt, d_opt = se.compute_optimal_allocation(law, compute)
    assert 6 * n_opt * d_opt == pytest.approx(compute)
    best = minimize_scalar(lambda log_n: law.loss(np.exp(log_n), compute / (6 * np.exp(log_n))), bounds=(10, 35))
    assert math.log(n_opt) == pytest.approx(best.x, abs=1e-3)


@pytest.mark.parametrize("law", se.CHINCHILLA_LAWS)
def test_reducible_frontier_loss_falls_as_compute_to_minus_gamma(law):
    compute = np.logspace(18, 26, 9)
    reducible = se.frontier_loss(law, compute) - law.E
    assert -se.scaling_exponent(compute, reducible) == pytest.approx(law.gamma, rel=1e-9)


def test_published_gammas_match_the_research_note():
    assert se.HOFFMANN_2022.gamma == pytest.approx(0.154, abs=1e-3)
    assert se.EPOCH_2024.gamma == pytest.approx(0.178, abs=1e-3)
    assert se.compute_multiplier(2, se.HOFFMANN_2022.gamma) == pytest.approx(88, rel=0.03)


def test_monte_carlo_costs_and_energy_assumption():
    assert se.compute_multiplier(2, 0.5) == pytest.approx(4)
    assert se.compute_multiplier(10, 0.5) == pytest.approx(100)
    assert se.EnergyAssumption().joule_per_flop == pytest.approx(700 / 989e12 / 0.4 * 1.2)
    table = se.sustainability_table({"x": 0.25})
    assert table.loc["x", "compute × to cut 10×"] == pytest.approx(1e4)
    with pytest.raises(ValueError):
        se.compute_multiplier(0.5, 0.2)


def test_chinchilla_fit_recovers_noiseless_parameters():
    law = se.EPOCH_2024
    data = se.isoflop_points(law, budgets=np.logspace(18, 22, 7), sizes_per_budget=7, noise_sigma=0.0, rng=None)
    fit = se.fit_chinchilla_law(data["N"], data["D"], data["loss"], n_starts=3)
    for name in ("E", "A", "B", "alpha", "beta"):
        assert getattr(fit, name) == pytest.approx(getattr(law, name), rel=1e-2), name


def test_power_law_fits_recover_exponent_and_floor():
    x = np.logspace(0, 4, 20)
    floored = se.fit_power_law(x, 1.5 + 2.0 * x**-0.4, with_floor=True)
    assert (floored.exponent, floored.floor) == pytest.approx((0.4, 1.5), rel=1e-2)
    pure = se.fit_power_law(x, 3.0 * x**-0.07, with_floor=False)
    assert (pure.exponent, pure.floor) == pytest.approx((0.07, 0.0), abs=1e-3)
    assert floored.multiplier_to_reach(1.0, 1.4) == math.inf


def test_power_law_fit_on_frontier_recovers_gamma():
    law = se.HOFFMANN_2022
    compute = np.logspace(18, 24, 15)
    fit = se.fit_power_law(compute, se.frontier_loss(law, compute), with_floor=True)
    assert fit.exponent == pytest.approx(law.gamma, rel=1e-2)
    assert fit.floor == pytest.approx(law.E, rel=1e-3)


def test_frontier_keeps_the_lowest_loss_per_bin():
    data = pd.DataFrame({"C": [1, 1.1, 10, 11, 100], "loss": [3, 2, 5, 4, 1.0]})
    frontier = se.compute_frontier(data, n_bins=3)
    assert frontier["loss"].tolist() == [2, 4, 1]


def test_bootstrap_interval_contains_truth_on_noisy_points():
    rng = make_rng(0, "test-boot")
    x = np.logspace(0, 3, 30)
    loss = 3.0 * x**-0.2 * np.exp(0.01 * rng.standard_normal(30))
    boot = se.bootstrap_power_law(x, loss, start=se.fit_power_law(x, loss, with_floor=False), n_boot=40, rng=rng)
    lo, hi = se.percentile_interval(boot["exponent"])
    assert lo < 0.2 < hi


@pytest.mark.parametrize("hurst", [0.3, 0.7])
def test_fbm_structure_function_recovers_hurst(hurst):
    rng = make_rng(0, "test-fbm", int(hurst * 10))
    paths = [se.fractional_brownian_motion(2048, hurst, rng) for _ in range(8)]
    lags = np.arange(1, 64)
    s2 = np.mean([se.structure_function(p, lags) for p in paths], axis=0)
    assert se.scaling_exponent(lags, s2) / 2 == pytest.approx(hurst, abs=0.05)


def test_fbm_variance_at_time_one_is_one():
    rng = make_rng(0, "test-fbm-var")
    ends = [se.fractional_brownian_motion(256, 0.6, rng)[-1] for _ in range(400)]
    assert np.var(ends) == pytest.approx(1.0, abs=0.2)


def test_piecewise_linear_fit_is_exact_on_a_line_and_error_falls_with_knots():
    line = np.linspace(-1, 2, 513)
    assert se.piecewise_linear_error(line, 3) < 1e-20
    path = se.fractional_brownian_motion(1024, 0.5, make_rng(0, "test-pl"))
    assert se.piecewise_linear_error(path, 64) < se.piecewise_linear_error(path, 8)


def test_markov_corpus_is_a_chain_with_the_stated_entropy():
    corpus = se.MarkovCorpus.random(12, decay=0.5, scale=5.0, rng=make_rng(0, "test-corpus"))
    assert np.allclose(corpus.transitions.sum(axis=1), 1)
    pi = corpus.stationary()
    assert np.allclose(pi @ corpus.transitions, pi)
    assert 0 < corpus.entropy_rate() < math.log(12)
    tokens = corpus.sample(2000, 20, make_rng(0, "test-sample"))
    counts = np.zeros((12, 12))
    np.add.at(counts, (tokens[:, :-1].ravel(), tokens[:, 1:].ravel()), 1)
    empirical = counts / counts.sum(axis=1, keepdims=True)
    assert np.abs(empirical - corpus.transitions).max() < 0.03


def test_tiny_gpt2_training_is_deterministic():
    corpus = se.MarkovCorpus.random(8, decay=0.5, scale=5.0, rng=make_rng(0, "test-train"))
    heldout = corpus.sample(8, 16, make_rng(0, "test-heldout"))
    spec = se.TrainingSpec(n_embd=4, steps=3, batch_size=4, seq_len=16)
    first, second = (se.train_tiny_gpt2(spec, corpus, heldout, seed=1) for _ in range(2))
    assert first == second
    assert 0 < first["loss"] < 2 * math.log(8)


def test_load_loss_csv_validates(tmp_path):
    with pytest.raises(ParameterError, match="LOSS_CSV"):
        se.load_loss_csv(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"size": [1, 2], "loss": [3, 2]}).to_csv(bad, index=False)
    with pytest.raises(ParameterError, match="needs N, D"):
        se.load_loss_csv(bad)
    epoch = tmp_path / "epoch.csv"
    n = np.logspace(8, 9, 12)
    frame = pd.DataFrame({"Model Size": n, "Training FLOP": 6 * n * 1e10, "loss": np.linspace(3, 2, 12)})
    frame.to_csv(epoch, index=False)
    data = se.load_loss_csv(epoch)
    assert np.allclose(data["D"], 1e10)
    frame.loc[0, "loss"] = -1
    frame.to_csv(epoch, index=False)
    with pytest.raises(ParameterError, match="positive"):
        se.load_loss_csv(epoch)


def test_exercise_checker():
    assert se.check_tenfold_per_halving_exponent(0.30103)
    assert not se.check_tenfold_per_halving_exponent(0.5)


@pytest.mark.parametrize("hurst", [0.3, 0.7])
def test_roughness_exponents_recover_two_h_with_an_interval_around_the_estimate(hurst):
    table = se.roughness_exponents([hurst], np.array([8, 16, 32, 64, 128]), n_points=4096, n_paths=6, seed=0)
    row = table.loc[hurst]
    assert row["zeta_2 (measured)"] == pytest.approx(2 * hurst, abs=0.1)
    assert row["error exponent (measured)"] == pytest.approx(2 * hurst, abs=0.15)
    assert row["error exponent 95% low"] <= row["error exponent (measured)"] <= row["error exponent 95% high"]


def test_pedestal_fits_bootstrap_both_laws_on_the_same_resamples():
    x = np.logspace(1, 5, 12)
    loss = 2.0 + 5.0 * x**-0.3
    fits, boots = se.pedestal_fits(x, loss, n_boot=5, seed=0, key="test")
    assert fits["power law + floor"].floor == pytest.approx(2.0, rel=0.05)
    assert fits["pure power law"].exponent < fits["power law + floor"].exponent
    again = se.pedestal_fits(x, loss, n_boot=5, seed=0, key="test")[1]
    pd.testing.assert_frame_equal(boots["pure power law"], again["pure power law"])


def test_exponent_gap_is_paired_resample_by_resample():
    upper, lower = se.PowerLawFit(1.0, 0.3, 0.0, 1.0), se.PowerLawFit(1.0, 0.1, 0.0, 1.0)
    shared = np.linspace(-0.1, 0.1, 201)  # the same noise in both fits: a paired difference cancels it
    gap = se.exponent_gap(
        upper, pd.DataFrame({"exponent": 0.3 + shared}), lower, pd.DataFrame({"exponent": 0.1 + shared})
    )
    assert abs(gap.value - 0.2) < 1e-12 and abs(gap.low - 0.2) < 1e-12 and abs(gap.high - 0.2) < 1e-12


def test_gap_is_positive_is_decisive_only_when_the_interval_is_above_zero():
    assert se.gap_is_positive(Estimate(0.2, 0.1, 0.3)) == claims.Test(True, True)
    assert se.gap_is_positive(Estimate(0.2, 0.0, 0.3)) == claims.Test(True, False)
    assert se.gap_is_positive(Estimate(-0.2, -0.3, -0.1)) == claims.Test(False, True)
    assert not se.gap_is_positive(Estimate(1e-9, -0.1, 0.1)).holds  # the same law, up to rounding


def test_bootstrap_estimate_contains_the_full_data_value():
    estimate = se.bootstrap_estimate(1.0, [1.5, 2.0, 2.5])
    assert estimate.low <= 1.0 == estimate.value <= estimate.high


def test_runs_drawn_from_a_law_are_assumed_and_real_runs_measured():
    assert se.evidence_of_runs(True) == {"kind": ASSUMED}
    measured = se.evidence_of_runs(False)
    assert measured["kind"] == MEASURED and measured["can_fail_because"]


def test_recovers_exponent_is_a_relative_band_on_the_paired_gap():
    reference = Estimate(0.5, 0.4, 0.6)
    assert se.recovers_exponent(Estimate(0.05, -0.02, 0.09), reference) == RuleOutcome(True, True)  # band ±0.1
    assert se.recovers_exponent(Estimate(0.05, -0.02, 0.2), reference) == RuleOutcome(True, False)
    assert se.recovers_exponent(Estimate(-0.3, -0.45, -0.05), reference) == RuleOutcome(False, False)
    assert se.recovers_exponent(Estimate(-0.3, -0.45, -0.15), reference) == RuleOutcome(False, True)


def test_removing_a_known_floor_steepens_a_pure_fit_whatever_the_floor():
    """The identity behind pedestal-known-floor-toy: log(L − H) = log L + log(1 − H/L), and the second term falls
    with N whenever L does, so the pure fit on L − H is steeper for every H > 0 (more so the closer L is to H)."""
    n = np.logspace(3, 6, 12)
    loss = 2.0 + 3.0 * (n / 1e3) ** -0.4
    pure = se.fit_power_law(n, loss, with_floor=False).exponent
    gaps = [se.fit_power_law(n, loss - h, with_floor=False).exponent - pure for h in (0.2, 1.0, 1.9)]
    assert 0 < gaps[0] < gaps[1] < gaps[2]


def test_plot_pedestal_draws_runs_fits_and_bootstraps():
    from llmtheory.scaling_exponents_experiment import plot_pedestal

    compute = np.logspace(18, 22, 12)
    loss = 1.7 + 2.0 * (compute / 1e18) ** -0.15
    runs = pd.DataFrame({"C": compute, "loss": loss})
    fits, boots = se.pedestal_fits(compute, loss, n_boot=5, seed=0, key="plot")
    fig = plot_pedestal(runs, runs, fits, boots)
    left, right = fig.axes
    assert len(left.lines) == len(fits) + 1  # one curve per fit and the floor
    assert len(right.patches) == 30 * len(boots)  # one 30-bin histogram per fit
