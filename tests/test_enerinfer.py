"""Unit tests of the EnerInfer simulation: roofline, power, thermal model, predictor and controller."""

import dataclasses

import numpy as np
import pytest
from scipy.linalg import expm

from llmtheory import enerinfer as ei
from llmtheory.seeding import make_rng

MODELS = {m.name: m for m in ei.REAL_MODELS}


@pytest.mark.parametrize("model", ei.REAL_MODELS, ids=lambda m: m.name)
def test_parameter_count_matches_nominal_size(model):
    assert abs(model.n_params() / 1e9 / model.nominal_billions - 1) < 0.05


@pytest.mark.parametrize("platform", ei.PLATFORMS, ids=lambda p: p.name)
@pytest.mark.parametrize("engine", ei.ENGINES, ids=lambda e: e.name)
def test_decode_at_batch_one_is_memory_bound_below_the_ridge(platform, engine):
    for model in ei.REAL_MODELS:
        flops, nbytes = ei.decode_work(model, engine, 512)
        ridge = platform.npu_peak_tflops * 1e12 * engine.compute_multiplier / (platform.ddr_gbs.max() * 1e9)
        assert flops / nbytes < ridge / 10
        # and the roofline at peak rates is on its memory roof
        peak, bw = platform.npu_peak_tflops * 1e12, platform.ddr_gbs.max() * 1e9
        assert ei.roofline_throughput(peak, bw, flops / nbytes) == pytest.approx(flops / nbytes * bw)


def test_prefill_is_compute_bound_and_decode_memory_bound_in_the_simulator():
    model, engine, top = MODELS["Llama-3.2-3B"], ei.ENGINES[1], (-1, -1)
    decode = ei.phase_time(ei.PHONE, engine, model, *ei.decode_work(model, engine, 512))
    prefill = ei.phase_time(ei.PHONE, engine, model, *ei.prefill_work(model, engine, 256), phase="prefill")
    assert decode["memory"][top] > decode["compute"][top]
    assert prefill["compute"][top] > prefill["memory"][top]


@pytest.mark.parametrize("platform", ei.PLATFORMS, ids=lambda p: p.name)
def test_power_is_monotone_in_frequency(platform):
    levels = np.asarray(platform.npu_levels)
    for busy in (0.0, 0.5, 1.0):
        assert np.all(np.diff(ei.npu_power(platform, levels, busy)) > 0)
    ddr = np.arange(len(platform.ddr_gbs))
    assert np.all(np.diff(ei.ddr_power(platform, ddr, 10.0)) > 0)
    assert np.all(np.diff(ei.ddr_power(platform, 0, np.array([1.0, 5.0, 20.0]))) > 0)


@pytest.mark.parametrize("platform", ei.PLATFORMS, ids=lambda p: p.name)
def test_thermal_model_relaxes_to_steady_state_and_matches_expm(platform):
    start = np.array([70.0, 20.0])
    relaxed = ei.thermal_step(platform, start, 4.0, 1e6)
    assert np.allclose(relaxed, ei.steady_state(platform, 4.0))
    a, b = ei.thermal_matrices(platform)
    x = start - platform.t_ambient
    x_inf = -np.linalg.solve(a, b * 4.0)
    exact = platform.t_ambient + x_inf + expm(a * 7.0) @ (x - x_inf)
    assert np.allclose(ei.thermal_step(platform, start, 4.0, 7.0), exact)
    # two half steps equal one step (semigroup property of the exact solution)
    half = ei.thermal_step(platform, ei.thermal_step(platform, start, 4.0, 3.5), 4.0, 3.5)
    assert np.allclose(half, exact)


def test_best_config_never_violates_qoe_when_a_feasible_one_exists():
    rng = make_rng(0, "test-best-config")
    for _ in range(200):
        time, power = rng.uniform(0.01, 0.2, (6, 7)), rng.uniform(1, 10, (6, 7))
        limit = rng.uniform(0.01, 0.2)
        choice = ei.best_config(time, power, limit)
        if (time <= limit).any():
            assert time[choice] <= limit
            assert power[choice] * time[choice] == pytest.approx(np.min(np.where(time <= limit, power * time, np.inf)))
        else:
            assert choice is None


def test_feedback_recovers_interference_and_meets_qoe():
    platform, engine, model = ei.PHONE, ei.ENGINES[0], MODELS["Qwen2.5-1.5B"]
    structure, _ = ei.profile_and_fit(
        platform, engine, [MODELS[n] for n in ("Qwen2.5-0.5B", "Llama-3.2-1B", "Qwen2.5-7B")],
        make_rng(0, "test-profile"), {"decode": (256, 1024), "prefill": (128,)}, n_trees=10,
    )  # fmt: skip
    rows = ei.interference_experiment(structure, platform, engine, model, 512, ei.QoE(30.0), 1.6, make_rng(0, "t"))
    by_policy = {r["policy"]: r for r in rows}
    assert by_policy["oracle"]["QoE met"]
    assert not by_policy["open-loop prediction"]["QoE met"]  # the prediction at κ = 1 is now too slow
    assert by_policy["ranking-driven feedback"]["QoE met"]
    assert by_policy["ranking-driven feedback"]["κ̂"] == pytest.approx(1.6, rel=0.1)


def test_kendall_and_mape_known_cases():
    x = np.arange(10.0)
    assert ei.ranking_quality(x, 2 * x + 1) == pytest.approx(1.0)
    assert ei.ranking_quality(x, -x) == pytest.approx(-1.0)
    assert ei.mape(np.array([1.0, 2.0]), np.array([1.1, 1.8])) == pytest.approx(10.0)


def test_cpu_fit_recovers_known_parameters():
    layers = np.array([2, 4, 4, 6, 8], float)
    nbytes = np.array([1e6, 5e6, 2e7, 6e7, 1e8])
    flops = 30 * nbytes
    decode = 2e-4 * layers + nbytes / 5e9
    prefill = 1e-3 + 5e-5 * layers + flops / 2e10
    fit = ei.fit_cpu_roofline(layers, nbytes, decode, flops, prefill)
    assert fit["bandwidth"] == pytest.approx(5e9, rel=1e-6)
    assert fit["flops"] == pytest.approx(2e10, rel=1e-6)
    assert ei.cpu_time(fit, "decode", 4, 0.0, 5e6) == pytest.approx(decode[1], rel=1e-6)


def test_thermal_controller_keeps_phone_cooler_than_performance():
    platform = dataclasses.replace(ei.PHONE, t_ambient=30.0)
    engine, model = ei.ENGINES[0], MODELS["Llama-3.2-3B"]
    structure, _ = ei.profile_and_fit(
        platform, engine, [MODELS[n] for n in ("Qwen2.5-0.5B", "Llama-3.2-1B", "Qwen2.5-7B")],
        make_rng(0, "test-profile"), {"decode": (256, 1024), "prefill": (64, 256)}, n_trees=10,
    )  # fmt: skip
    trace = ei.make_trace(make_rng(0, "trace"), 300.0, 0.2, mean_prompt=128)
    results = {
        policy: ei.simulate_stream(policy, platform, engine, model, trace, structure, ei.QoE(), make_rng(0, policy))
        for policy in ("performance", "EnerInfer")
    }
    assert results["EnerInfer"]["peak shell °C"] < results["performance"]["peak shell °C"]
    assert results["EnerInfer"]["tokens/J"] > results["performance"]["tokens/J"]
    assert results["EnerInfer"]["QoE violations %"] == 0


def test_assumptions_table_covers_every_parameter():
    table = ei.assumptions_table()
    assert len(table) == len(dataclasses.fields(ei.Platform)) - 1
    assert table["source"].str.len().min() > 0
