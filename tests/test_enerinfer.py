"""Unit tests of the EnerInfer simulation: roofline, power, thermal model, predictor and controller."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import expm

from llmtheory import enerinfer as ei
from llmtheory import enerinfer_claims as ec
from llmtheory import enerinfer_stream as es
from llmtheory.claims import MEASURED, NOT_DISCRIMINATING, QUALITATIVE, Ledger
from llmtheory.params import ParameterError
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


@pytest.fixture(scope="module")
def phone_predictor():
    structure, _ = ei.profile_and_fit(
        ei.PHONE, ei.ENGINES[0], [MODELS[n] for n in ("Qwen2.5-0.5B", "Llama-3.2-1B", "Qwen2.5-7B")],
        make_rng(0, "test-profile"), {"decode": (256, 1024), "prefill": (64, 256)}, n_trees=10,
    )  # fmt: skip
    return structure


def test_thermal_controller_keeps_phone_cooler_than_performance(phone_predictor):
    platform = dataclasses.replace(ei.PHONE, t_ambient=30.0)
    predictor = dataclasses.replace(phone_predictor, platform=platform)
    engine, model = ei.ENGINES[0], MODELS["Llama-3.2-3B"]
    trace = es.make_trace(make_rng(0, "trace"), 300.0, 0.08)
    results = {
        policy: es.simulate_queue(policy, platform, engine, model, trace, predictor, ei.QoE(), make_rng(0, policy))
        for policy in ("performance", "EnerInfer")
    }
    assert results["EnerInfer"]["peak shell °C"] < results["performance"]["peak shell °C"]
    assert results["EnerInfer"]["tokens/J"] > results["performance"]["tokens/J"]
    assert results["EnerInfer"]["rate violations %"] == 0


def test_leakage_doubles_every_doubling_interval_and_is_hidden_at_the_profiling_temperature():
    p = ei.PHONE
    assert ei.leakage_factor(p, p.leak_ref_c) == pytest.approx(1.0)
    assert ei.leakage_factor(p, p.leak_ref_c + p.leak_doubling_k) == pytest.approx(2.0)
    levels = np.asarray(p.npu_levels)
    hot, cool = ei.npu_power(p, levels, 0.0, p.leak_ref_c + 20), ei.npu_power(p, levels, 0.0)
    assert np.all(hot > cool)
    # the extra power is leakage only: it does not depend on the activity
    hot_busy = ei.npu_power(p, levels, 1.0, p.leak_ref_c + 20)
    assert np.allclose(hot_busy - ei.npu_power(p, levels, 1.0), hot - cool)


def test_thermal_leakage_equilibrium_is_a_fixed_point_hotter_than_the_open_loop():
    p, engine, model = ei.PHONE, ei.ENGINES[0], MODELS["Llama-3.2-3B"]

    def power_at(die_c):
        return ei.decode_phase(p, engine, model, 512, die_c=die_c)["power"][-1, -1]

    die, power = ei.thermal_leakage_equilibrium(p, power_at)
    assert die == pytest.approx(p.t_ambient + power * (p.r_die_shell + p.r_shell_ambient), abs=1e-4)
    assert die > ei.steady_state(p, power_at(p.leak_ref_c))[0]
    # a leakage that grows faster than the cooling removes heat runs away
    assert ei.thermal_leakage_equilibrium(p, lambda t: 2.0 ** ((t - 25) / 5)) == (np.inf, np.inf)


def test_growing_context_and_cache_effects_in_the_true_decode():
    p, engine, model = ei.PHONE, ei.ENGINES[1], MODELS["Llama-3.2-3B"]
    one = ei.decode_phase(p, engine, model, 512)
    response = ei.decode_phase(p, engine, model, 512, n_tokens=1024)
    assert np.all(response["time"] > one["time"])  # the KV cache grows during the response
    kv = 512 * model.kv_elements_per_token() * engine.kv_bytes
    flops, nbytes = ei.decode_work(model, engine, 512)
    streamed = ei.phase_time(p, engine, model, flops, nbytes)  # every byte streamed like the weights
    no_cache = dataclasses.replace(p, slc_mb=0.0)
    scattered = ei.phase_time(no_cache, engine, model, flops, nbytes, kv_bytes=kv)
    assert np.all(scattered["memory"] > streamed["memory"])  # scattered KV reads are slower
    cached = ei.phase_time(p, engine, model, flops, nbytes, kv_bytes=kv)
    assert np.all(cached["memory"] < scattered["memory"])  # the system-level cache serves the newest entries


def test_queue_counts_waiting_in_the_time_to_first_token():
    p, engine, model = ei.PHONE, ei.ENGINES[0], MODELS["Llama-3.2-3B"]
    trace = es.RequestTrace(
        np.array([0.0, 0.01]), np.array([128, 128]), np.array([100, 100]), np.array([0.0]), np.array([1.0])
    )
    result = es.simulate_queue("performance", p, engine, model, trace, None, ei.QoE(), make_rng(0, "q"))
    service = (
        ei.prefill_phase(p, engine, model, 128)["time"][-1, -1]
        + 100 * ei.decode_phase(p, engine, model, 128)["time"][-1, -1]
    )
    assert result["mean wait s"] == pytest.approx((service - 0.01) / 2, rel=0.02)
    assert result["TTFT violations %"] == 50.0  # the second request waited a whole service
    assert result["rate violations %"] == 0.0


def test_default_governor_ramps_to_the_top_on_memory_bound_decode_and_idles_low():
    p, engine, model = ei.PHONE, ei.ENGINES[1], MODELS["Llama-3.2-3B"]
    trace = es.RequestTrace(np.array([0.0]), np.array([128]), np.array([300]), np.array([0.0]), np.array([1.0]))
    governor = es.DefaultGovernor()
    configs = []
    observe = governor.observe
    governor.observe = lambda s, truth, config, seconds: (configs.append(config), observe(s, truth, config, seconds))
    original, es.make_policy = es.make_policy, lambda name: governor
    try:
        es.simulate_queue("default governor", p, engine, model, trace, None, ei.QoE(), make_rng(0, "g"))
    finally:
        es.make_policy = original
    assert configs[0] == (0, 0)  # it starts from the idle levels
    assert configs[-1] == (len(p.npu_levels) - 1, len(p.ddr_gbs) - 1)  # a saturated bus votes its way up


def test_utilisation_matches_the_saturation_of_the_queue():
    p, engine, model = ei.PHONE, ei.ENGINES[0], MODELS["Llama-3.2-3B"]
    rho_per_rate, qoe = es.utilisation(p, engine, model, 1.0), ei.QoE()
    busy = [
        es.simulate_queue("performance", p, engine, model, trace, None, qoe, make_rng(0, "l"))["utilisation"]
        for trace in (es.make_trace(make_rng(seed, "light"), 3000.0, 0.3 / rho_per_rate) for seed in range(4))
    ]
    assert np.mean(busy) == pytest.approx(0.3, abs=0.06)
    heavy = es.make_trace(make_rng(1, "heavy"), 600.0, 1.5 / rho_per_rate)
    assert es.simulate_queue("performance", p, engine, model, heavy, None, qoe, make_rng(0, "h"))["utilisation"] > 0.95


def test_paired_gain_is_the_mean_of_per_stream_gains():
    runs = pd.DataFrame({
        "scenario": "s", "ambient °C": 25.0, "stream": [0, 0, 1, 1, 2, 2],
        "policy": ["a", "b"] * 3, "tokens/J": [2.0, 1.0, 3.0, 2.0, 1.0, 1.0],
    })  # fmt: skip
    gain = es.paired_gain(runs, "a", "b")
    assert gain.value == pytest.approx((100 + 50 + 0) / 3)
    assert gain.low < gain.value < gain.high


def test_unknown_policy_is_a_parameter_error():
    with pytest.raises(ParameterError, match="policy"):
        es.make_policy("turbo")


def test_assumptions_table_covers_every_parameter():
    table = ei.assumptions_table()
    assert len(table) == len(dataclasses.fields(ei.Platform)) - 1
    assert table["source"].str.len().min() > 0


def _thermal_runs(no_thermal_peak: float, n_streams: int = 4) -> pd.DataFrame:
    rows = []
    for stream in range(n_streams):
        for policy, peak in (("oracle", 42.0), ("EnerInfer", 42.5), ("EnerInfer (no thermal)", no_thermal_peak)):
            rows.append({"policy": policy, "peak shell °C": peak, "ambient °C": 30.0, "stream": stream,
                         "scenario": "heavy", "QoE violations %": 10.0})  # fmt: skip
    return pd.DataFrame(rows)


def test_thermal_claim_needs_the_energy_mode_alone_to_overheat_to_discriminate():
    kept = ec.thermal_claim(_thermal_runs(no_thermal_peak=44.0, n_streams=40), limit=43.0)
    assert kept["holds"].holds and not kept["control"].holds.holds
    also_kept = ec.thermal_claim(_thermal_runs(no_thermal_peak=42.9, n_streams=40), limit=43.0)
    ledger = Ledger("enerinfer", scale="smoke", seed=0)
    entry = ledger.check("thermal-mode-switching", kind=MEASURED, **also_kept)
    assert entry.verdict == NOT_DISCRIMINATING


def test_a_share_of_all_successes_is_not_decisive_on_few_runs():
    few = ec.share([True] * 6)
    assert few.value == 100.0 and few.low < 90.0  # Wilson: [61, 100]%, never a zero-width interval
    assert ec.share([False] * 35).high > 5.0  # 0 of 35: [0, 9.9]%, spans a 5% threshold
    kept = ec.thermal_claim(_thermal_runs(no_thermal_peak=44.0, n_streams=6), limit=43.0)
    ledger = Ledger("enerinfer", scale="smoke", seed=0)
    entry = ledger.check("thermal-mode-switching", kind=MEASURED, **kept)
    assert entry.verdict == QUALITATIVE  # 6 of 6 under the limit cannot show ≥ 90%


def test_feedback_claim_counts_independent_units_not_kappa_levels():
    rows = []
    for model in ("a", "b", "c"):
        for kappa in (1.3, 1.6, 2.0):
            for policy in ("oracle", "ranking-driven feedback", "open-loop prediction"):
                met = not (policy == "ranking-driven feedback" and model == "a" and kappa == 2.0)
                rows.append({"platform": "phone", "engine": "e", "model": model, "κ": kappa, "policy": policy,
                             "QoE met": met, "tokens/J": 1.0, "oracle feasible": True})  # fmt: skip
    claim = ec.feedback_claim(pd.DataFrame(rows))
    assert "3 independent" in claim["ours"] and "violation 33 [" in claim["ours"]


def _stream_rows(enerinfer_violations) -> list[dict]:
    rows = []
    for stream in range(5):
        for policy, tokens_per_j, violations in (
            ("default governor", 4.0, 20.0), ("EnerInfer", 5.2 + 0.01 * stream, enerinfer_violations(stream)),
            ("static slack", 6.0, 45.0), ("performance", 4.1, 18.0),
        ):  # fmt: skip
            rows.append({"platform": "phone", "policy": policy, "device tokens/J": tokens_per_j, "stream": stream,
                         "QoE violations %": violations, "scenario": "default", "ambient °C": 25.0})  # fmt: skip
    return rows


def test_governor_claim_fails_when_violations_rise():
    claim = ec.governor_claim(pd.DataFrame(_stream_rows(lambda stream: 30.0 + stream)))
    assert not claim["holds"].holds  # the gain is there, the violations are not within one point
    assert ec.governor_claim(pd.DataFrame(_stream_rows(lambda stream: 20.0)))["holds"].holds


def test_governor_why_says_when_the_qoe_interval_is_not_decisive():
    noisy = ec.governor_why(pd.DataFrame(_stream_rows(lambda stream: 20.0 + [-4, 8, 0, 6, -3][stream])))
    assert "spans the 1-point threshold" in noisy["not reproduced"]
    clear = ec.governor_why(pd.DataFrame(_stream_rows(lambda stream: 30.0 + stream)))
    assert "spans" not in clear["not reproduced"] and "our queue policy" in clear["not reproduced"]


def test_step_wise_thermal_governor_caps_levels_while_the_shell_is_over_the_limit():
    hot = dataclasses.replace(ei.PHONE, t_ambient=50.0)  # the shell starts above the 43 °C limit
    engine, model = ei.ENGINES[1], MODELS["Llama-3.2-3B"]
    trace = es.RequestTrace(np.array([0.0]), np.array([128]), np.array([200]), np.array([0.0]), np.array([1.0]))
    governor = es.DefaultGovernor()
    caps = []
    observe = governor.observe
    governor.observe = lambda s, truth, config, seconds: (
        caps.append(list(governor.cap)),
        observe(s, truth, config, seconds),
    )
    original, es.make_policy = es.make_policy, lambda name: governor
    try:
        es.simulate_queue("default governor", hot, engine, model, trace, None, ei.QoE(), make_rng(0, "t"))
    finally:
        es.make_policy = original
    top = [len(hot.npu_levels) - 1, len(hot.ddr_gbs) - 1]
    assert caps[0] == top and caps[-1] == [0, 0]  # one level down per second until the floor


def test_simple_ondemand_follows_the_load_of_its_polling_window():
    governor = es.DefaultGovernor()
    governor.level = [5, 0]
    s = type("S", (), {"platform": ei.PHONE, "top": (5, 6)})()
    assert governor.npu_level(s, 0.95) == 5  # above the threshold: the maximum
    assert governor.npu_level(s, 0.0) == 0  # an idle window: the lowest level
    half = governor.npu_level(s, 0.5)  # f·0.5/0.875 = 0.571 × f_max: the 0.6 level
    assert ei.PHONE.npu_levels[half] == 0.6


def test_idle_power_rises_with_the_levels_and_is_idle_w_at_the_lowest():
    idle = ei.idle_power(ei.PHONE)
    assert idle[0, 0] == pytest.approx(ei.PHONE.idle_w)
    assert np.all(np.diff(idle, axis=0) > 0) and np.all(np.diff(idle, axis=1) > 0)


def test_hot_die_slows_the_dram_and_so_the_decode():
    p, engine, model = ei.PHONE, ei.ENGINES[1], MODELS["Llama-3.2-3B"]
    cool, hot = ei.decode_phase(p, engine, model, 512), ei.decode_phase(p, engine, model, 512, die_c=55.0)
    assert np.all(hot["time"] > cool["time"])
    assert ei.decode_phase(p, engine, model, 512, die_c=p.leak_ref_c)["time"] == pytest.approx(cool["time"])


def _stream_results(predictor, seed: int, output_tokens=None) -> tuple[dict, list]:
    p, engine, model = ei.PHONE, ei.ENGINES[0], MODELS["Llama-3.2-3B"]
    trace = es.make_trace(make_rng(seed, "trace"), 200.0, 0.06)
    if output_tokens is not None:
        trace = dataclasses.replace(trace, output_tokens=output_tokens(trace.output_tokens))
    return es.simulate_queue("EnerInfer", p, engine, model, trace, predictor, ei.QoE(), make_rng(seed, "s"), True)


def test_same_seed_gives_the_same_stream_results(phone_predictor):
    first, second = _stream_results(phone_predictor, 3), _stream_results(phone_predictor, 3)
    assert first[0] == second[0]


def test_policies_do_not_see_future_responses(phone_predictor):
    _, base = _stream_results(phone_predictor, 3)
    assert len(base) >= 3

    def longer_last(tokens):
        changed = tokens.copy()
        changed[-1] = 1000
        return changed

    _, changed = _stream_results(phone_predictor, 3, longer_last)
    # every request before the last is served exactly as before: nothing about the last response leaks back
    assert [(r.first_token, r.done) for r in base[:-1]] == [(r.first_token, r.done) for r in changed[:-1]]


def test_a_closed_loop_user_sends_the_next_request_a_think_time_after_the_response():
    p, engine, model = ei.PHONE, ei.ENGINES[0], MODELS["Llama-3.2-3B"]
    trace = es.make_closed_trace(make_rng(0, "closed"), 300.0, users=1, think_mean_s=10.0)
    _, served = es.simulate_queue("performance", p, engine, model, trace, None, ei.QoE(), make_rng(0, "c"), True)
    assert len(served) > 5 and all(r.arrival < 300.0 for r in served)
    arrivals, done = np.array([r.arrival for r in served]), np.array([r.done for r in served])
    assert arrivals[0] == pytest.approx(trace.think_s[0, 0])
    assert np.allclose(arrivals[1:], done[:-1] + trace.think_s[0, 1 : len(served)])  # the arrival follows the response
    assert all(r.start == r.arrival for r in served)  # one user never waits behind an earlier request
    assert list(trace.output_tokens[0, : len(served)]) == [r.output for r in served]


def test_closed_loop_arrivals_slow_down_with_the_device_and_load_matches_the_think_time():
    p, engine, model = ei.PHONE, ei.ENGINES[0], MODELS["Llama-3.2-3B"]
    think = es.think_time_for_load(p, engine, model, 0.3, users=2)
    trace = es.make_closed_trace(make_rng(1, "closed"), 3000.0, users=2, think_mean_s=think)
    fast = es.simulate_queue("performance", p, engine, model, trace, None, ei.QoE(), make_rng(0, "f"))
    assert fast["utilisation"] == pytest.approx(0.3, abs=0.06)
    slow_device = dataclasses.replace(p, ddr_bus_bits=p.ddr_bus_bits // 4)  # a quarter of the bandwidth
    slow = es.simulate_queue("performance", slow_device, engine, model, trace, None, ei.QoE(), make_rng(0, "s"))
    assert slow["requests"] < fast["requests"]  # a slower device receives fewer requests from the same users


def test_violation_difference_is_newcombes_interval_and_not_degenerate_at_zero():
    # Newcombe (1998), Table II, example (a): 56/70 − 48/80 = 0.2, method 10: 0.0524 to 0.3339
    runs = pd.DataFrame(
        {"policy": ["a", "b"], "requests": [70, 80], "QoE violations %": [100 * 56 / 70, 100 * 48 / 80]}
    )
    diff = ec.violation_difference(runs, "a", "b")
    assert diff.value == pytest.approx(20.0) and (diff.low, diff.high) == pytest.approx((5.24, 33.39), abs=0.01)
    none = ec.violation_difference(runs.assign(**{"QoE violations %": 0.0}), "a", "b")
    assert none.value == 0 and none.low < 0 < none.high


def test_closed_loop_governor_claim_counts_requests_and_cannot_pass_decisively_on_few_of_them():
    rows = pd.DataFrame(_stream_rows(lambda stream: 0.0)).assign(**{"QoE violations %": 0.0, "requests": 20})
    claim = ec.governor_claim(rows, ec.CLOSED_LOOP)
    assert claim["holds"].holds and not claim["holds"].decisive  # 0 of 100 requests cannot show < 1 point
    assert "of 100 requests" in claim["ours"] and "Newcombe" in claim["rule"]
    many = rows.assign(requests=4000)
    assert ec.governor_claim(many, ec.CLOSED_LOOP)["holds"].decisive
    assert "qualitatively" in " ".join(ec.governor_why(rows, ec.CLOSED_LOOP))


def test_tiny_model_timings_fit_a_cpu_roofline():
    from llmtheory import enerinfer_experiment as ex

    timings, cpu, error = ex.time_tiny_models([(32, 1), (64, 2)], repeats=1, prompt=8, new_tokens=2)
    assert list(timings.index) == ["tiny-32x1", "tiny-64x2"] and {"bandwidth", "flops"} <= set(cpu)
    assert np.isfinite(error) and (timings["decode tok/s measured"] > 0).all()


def test_prediction_interference_and_stream_experiments_with_their_figures():
    from llmtheory import enerinfer_experiment as ex

    train, test = ["Qwen2.5-0.5B", "Llama-3.2-1B", "Qwen2.5-7B"], ["Qwen2.5-1.5B"]
    sizes = {"decode": (256, 1024), "prefill": (64, 256)}
    predictors, prediction = ex.prediction_experiment(
        MODELS, train, test, ei.QoE(), sizes=sizes, n_trees=5, seed=0, response_tokens=16
    )
    assert set(predictors) == {(p.name, e.name) for p in ei.PLATFORMS for e in ei.ENGINES}
    assert len(prediction) == len(predictors) * len(test) * 2 * 3  # two worlds, three predictors
    assert set(ex.PREDICTION_SCORES) <= set(prediction.columns)
    interference = ex.interference_runs(predictors, MODELS, test, ei.QoE(30.0), [1.0, 1.6], seed=0)
    assert interference["oracle feasible"].dtype == bool
    assert set(ex.interference_summary(interference).index.get_level_values("κ")) <= {1.0, 1.6}
    setting = ex.StreamSetting(
        predictors, ei.ENGINES[0], MODELS["Qwen2.5-1.5B"], ei.QoE(), 0, n_streams=1, seconds=60.0
    )
    runs = [
        ex.run_scenario(setting, ei.PHONE, 0.3, "default", ("performance", "EnerInfer")),
        ex.run_scenario(setting, ei.PHONE, 0.3, "closed loop", ("performance", "EnerInfer"), users=2),
    ]
    assert all(set(r["policy"]) == {"performance", "EnerInfer"} for r in runs)
    fig = ex.plot_queue(pd.concat(runs), ["device tokens/J", "QoE violations %"], ["default", "closed loop"])
    assert len(fig.axes) == 2 and all(len(ax.patches) == 2 * len(es.POLICIES) for ax in fig.axes)
    hot = ex.run_scenario(setting, ei.PHONE, 0.3, "heavy", ("performance",), ambient=31.0).assign(
        **{"ambient °C": 31.0}
    )
    thermal = pd.concat([runs[0].assign(**{"ambient °C": 25.0}), hot])
    fig = ex.plot_thermal(thermal, ("performance",), ei.PHONE.t_limit)
    assert len(fig.axes[0].lines) == 2 and len(fig.axes[1].lines) == 1  # the limit on the left
    assert list(ex.thermal_peaks(thermal).index) == [25.0, 31.0]
    fig = ex.plot_energy_maps([(ei.PHONE, ei.ENGINES[0], MODELS["Qwen2.5-1.5B"])] * 2, ei.QoE())
    assert len(fig.axes) == 2 + 2  # two maps and their colour bars
