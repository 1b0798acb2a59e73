"""The experiments and figures of the enerinfer chapter, apart from the device model and EnerInfer's parts in
:mod:`llmtheory.enerinfer` and the request stream in :mod:`llmtheory.enerinfer_stream`: the CPU timings, the
predictors' evaluation on unseen models, the interference runs, the stream scenarios and the figures."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import enerinfer as ei
from . import enerinfer_stream as stream
from .plotting import PALETTE
from .seeding import make_rng

# ----------------------------------------------------------------------------------------------------
# The CPU case: tiny real models timed on this machine
# ----------------------------------------------------------------------------------------------------

FP32_TORCH = ei.Engine("fp32 torch (CPU)", 32, 4, 1, 1, 1, 1, 1, 0)
"""PyTorch's float32 eager engine on a CPU: the bytes and FLOPs of :func:`~llmtheory.enerinfer.decode_work`."""


def time_tiny_models(
    sizes: Sequence[tuple[int, int]], *, repeats: int, prompt: int = 64, new_tokens: int = 16, progress=iter
) -> tuple[pd.DataFrame, dict[str, float], float]:
    """Time a tiny model of each ``(d_model, layers)`` (:func:`~llmtheory.enerinfer.time_tiny_model`), fit the
    CPU roofline to the timings (:func:`~llmtheory.enerinfer.fit_cpu_roofline`) and compare its decode
    throughput with the measured one. Returns the table, the fit and the decode MAPE (%)."""
    timings = []
    for d, n_layers in progress(sizes):
        shape = ei.tiny_shape(f"tiny-{d}x{n_layers}", d, n_layers)
        measured = ei.time_tiny_model(shape, prompt=prompt, new_tokens=new_tokens, repeats=repeats)
        assert measured["params"] == shape.n_params()  # the structure formula counts the real model exactly
        _, bytes_d = ei.decode_work(shape, FP32_TORCH, prompt)
        flops_p, _ = ei.prefill_work(shape, FP32_TORCH, prompt)
        timings.append({"model": shape.name, "layers": n_layers, "params (M)": shape.n_params() / 1e6,
                        "decode bytes": bytes_d, "prefill flops": flops_p, **measured})  # fmt: skip
    timings = pd.DataFrame(timings).set_index("model")
    columns = ["layers", "decode bytes", "decode_s", "prefill flops", "prefill_s"]
    cpu = ei.fit_cpu_roofline(*(timings[c].to_numpy() for c in columns))
    timings["decode tok/s measured"] = 1 / timings["decode_s"]
    timings["decode tok/s model"] = [
        1 / ei.cpu_time(cpu, "decode", r.layers, 0.0, r["decode bytes"]) for _, r in timings.iterrows()
    ]
    return timings, cpu, ei.mape(timings["decode tok/s measured"], timings["decode tok/s model"])


# ----------------------------------------------------------------------------------------------------
# Configuration slack, as maps
# ----------------------------------------------------------------------------------------------------


def energy_map(ax, platform: ei.Platform, engine: ei.Engine, model: ei.ModelShape, qoe: ei.QoE, title: str):
    """Decode tokens per joule over the (NPU level, DDR rate) grid at context 512, with the QoE boundary (white
    line), the energy-optimal feasible configuration (star) and the fastest one (red cross)."""
    import matplotlib.pyplot as plt

    sim = ei.phase_time(platform, engine, model, *ei.decode_work(model, engine, 512))
    eff = 1 / (sim["power"] * sim["time"])
    image = ax.imshow(eff, origin="lower", aspect="auto", cmap="viridis")
    ax.contour(1 / sim["time"], levels=[qoe.min_tokens_per_s], colors="white", linewidths=1.5)
    best = ei.best_config(sim["time"], sim["power"], 1 / qoe.min_tokens_per_s)
    ax.plot(best[1], best[0], "*", color="white", ms=14, mec="black")
    ax.plot(len(platform.ddr_gbs) - 1, len(platform.npu_levels) - 1, "X", color="red", ms=10, mec="black")
    ax.set_xticks(range(len(platform.ddr_gbs)), platform.ddr_rates_mts, rotation=60, fontsize=7)
    ax.set_yticks(range(len(platform.npu_levels)), platform.npu_levels, fontsize=7)
    ax.set(xlabel="DDR data rate (MT/s)", ylabel="NPU frequency / max", title=title)
    plt.colorbar(image, ax=ax, label="tokens/J")


def plot_energy_maps(cases: Sequence[tuple[ei.Platform, ei.Engine, ei.ModelShape]], qoe: ei.QoE):
    """One :func:`energy_map` per ``(platform, engine, model)`` in ``cases``, side by side."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cases), figsize=(13, 3.8))
    for ax, (p, e, m) in zip(axes, cases, strict=True):
        energy_map(ax, p, e, m, qoe, f"{p.name}, {e.name.split()[0]}, {m.name}")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------------
# The predictors on unseen models, and the feedback under interference
# ----------------------------------------------------------------------------------------------------

PREDICTION_SCORES = ["throughput MAPE %", "power MAPE %", "Kendall τ (tok/J)", "regret %"]


def prediction_experiment(
    models: dict[str, ei.ModelShape],
    train: Sequence[str],
    test: Sequence[str],
    qoe: ei.QoE,
    *,
    sizes: dict[str, tuple[int, ...]],
    n_trees: int,
    seed: int,
    response_tokens: int,
    progress=iter,
) -> tuple[dict, pd.DataFrame]:
    """On every platform and engine, profile the ``train`` models and fit the structure-aware and black-box
    predictors (:func:`~llmtheory.enerinfer.profile_and_fit`), then score them, and the control that answers with
    the nearest profiled model, on each ``test`` model (:func:`~llmtheory.enerinfer.evaluate_predictor`) in two
    worlds: as profiled, and in service (a response of ``response_tokens`` on a hot die). Returns the structure
    predictors by ``(platform, engine)`` and one row per platform, engine, model, predictor and world."""
    predictors, rows = {}, []
    for p in progress(ei.PLATFORMS):
        for e in ei.ENGINES:
            profiled = [models[n] for n in train]
            rng = make_rng(seed, "profile", p.name, e.name)
            structure, blackbox = ei.profile_and_fit(p, e, profiled, rng, sizes, n_trees)
            predictors[p.name, e.name] = structure
            worlds = {"profiled": {}, "in service": {"response_tokens": response_tokens, "die_c": ei.service_die_c(p)}}
            nearest = ei.NearestTrainedModel(structure, tuple(profiled))  # the ranking row's control
            candidates = (
                ("structure-aware (EnerInfer)", structure),
                ("black-box trees", blackbox),
                ("nearest profiled model", nearest),
            )
            for name, world, label, predictor in [
                (n, w, lab, pr) for n in test for w in worlds for lab, pr in candidates
            ]:
                scores = ei.evaluate_predictor(predictor, p, e, models[name], 512, qoe, **worlds[world])
                key = {
                    "platform": p.name,
                    "engine": e.name.split()[0],
                    "model": name,
                    "predictor": label,
                    "world": world,
                }
                rows.append(key | scores)
    return predictors, pd.DataFrame(rows)


def interference_runs(
    predictors: dict, models: dict[str, ei.ModelShape], test: Sequence[str], qoe: ei.QoE, kappas, *, seed: int
) -> pd.DataFrame:
    """:func:`~llmtheory.enerinfer.interference_experiment` for every platform, engine, unseen model and
    interference κ (a stream per case), with whether the oracle itself could meet QoE (``oracle feasible``)."""
    rows = []
    for p in ei.PLATFORMS:
        for e in ei.ENGINES:
            for name in test:
                for kappa in kappas:
                    rng = make_rng(seed, "interference", p.name, e.name, name, int(100 * kappa))
                    found = ei.interference_experiment(
                        predictors[p.name, e.name], p, e, models[name], 512, qoe, kappa, rng
                    )
                    rows += [r | {"platform": p.name, "engine": e.name} for r in found]
    interference = pd.DataFrame(rows)
    key = ["platform", "engine", "model", "κ"]
    oracle_ok = interference.query("policy == 'oracle'").set_index(key)["QoE met"]
    interference["oracle feasible"] = interference.set_index(key).index.map(oracle_ok).to_numpy()
    return interference


def interference_summary(interference: pd.DataFrame) -> pd.DataFrame:
    """Per policy and κ, over the cases the oracle could serve: the share of QoE violations (%), the mean
    tokens/J and the mean number of configurations probed."""
    possible = interference[interference["oracle feasible"]]
    return possible.groupby(["policy", "κ"]).agg(
        violations_pct=("QoE met", lambda s: 100 * (1 - s.mean())),
        tokens_per_J=("tokens/J", "mean"),
        probes=("probes", "mean"),
    )


# ----------------------------------------------------------------------------------------------------
# Request streams
# ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StreamSetting:
    """What every stream scenario of the chapter shares: the predictors (by platform and engine name), the engine
    and model streamed, the QoE target, the seed and the default number and length of streams."""

    predictors: dict
    engine: ei.Engine
    model: ei.ModelShape
    qoe: ei.QoE
    seed: int
    n_streams: int
    seconds: float


def run_scenario(
    setting: StreamSetting,
    platform: ei.Platform,
    load: float,
    scenario: str,
    policies: tuple[str, ...] = stream.POLICIES,
    n: int | None = None,
    seconds: float | None = None,
    ambient: float | None = None,
    users: int = 0,
) -> pd.DataFrame:
    """Run ``policies`` on ``n`` streams (:func:`~llmtheory.enerinfer_stream.run_streams`) of offered load ρ =
    ``load`` at maximum frequency: an open-loop Poisson stream, or with ``users`` a closed loop of that many users
    whose think time gives ρ; ``ambient`` replaces the platform's ambient temperature (its predictor keeps its
    profile but sees the new device)."""
    n = setting.n_streams if n is None else n
    seconds = setting.seconds if seconds is None else seconds
    device = platform if ambient is None else dataclasses.replace(platform, t_ambient=ambient)
    predictor = dataclasses.replace(setting.predictors[platform.name, setting.engine.name], platform=device)
    if users:  # closed loop: the think time that gives offered load ρ at maximum frequency
        think = stream.think_time_for_load(platform, setting.engine, setting.model, load, users)
        workload = functools.partial(stream.make_closed_trace, duration_s=seconds, users=users, think_mean_s=think)
    else:  # open loop: the Poisson rate that gives offered load ρ
        rate = load / stream.utilisation(platform, setting.engine, setting.model, 1.0)
        workload = functools.partial(stream.make_trace, duration_s=seconds, rate_per_s=rate)
    return stream.run_streams(
        device, setting.engine, setting.model, predictor, setting.qoe, workload, n, setting.seed, policies, scenario
    )


def plot_queue(queues: pd.DataFrame, columns: Sequence[str], scenarios: Sequence[str]):
    """Per policy, the mean (bars) and range (error bars) over streams of each of ``columns``, one panel each, a
    bar per scenario of ``scenarios``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(columns), figsize=(11, 3.8))
    for ax, column in zip(axes, columns, strict=True):
        table = (
            queues.groupby(["policy", "scenario"], sort=False)[column].agg(["mean", "min", "max"]).unstack("scenario")
        )
        table = table.reindex(stream.POLICIES)
        for j, scenario in enumerate(scenarios):
            mean = table[("mean", scenario)]
            err = np.vstack([mean - table[("min", scenario)], table[("max", scenario)] - mean])
            x = np.arange(len(mean)) + (j - 1) * 0.27
            ax.bar(x, mean, width=0.27, yerr=err, capsize=2, color=PALETTE[j], label=scenario)
        ax.set_xticks(np.arange(len(table)), table.index, rotation=30, ha="right", fontsize=8)
        ax.set(ylabel=column, title=f"{column}, phone, three workloads")
    axes[0].legend(title="stream")
    fig.tight_layout()
    return fig


def plot_thermal(thermal: pd.DataFrame, policies: Sequence[str], limit: float):
    """Peak shell temperature and share of requests violating QoE against the ambient temperature, per policy
    (mean over streams, range shaded), with the shell ``limit``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, policy in enumerate(policies):
        part = thermal.query("policy == @policy").groupby("ambient °C")
        for ax, column in zip(axes, ["peak shell °C", "QoE violations %"], strict=True):
            ax.plot(part[column].mean().index, part[column].mean(), "o-", color=PALETTE[i], label=policy)
            low, high = part[column].min(), part[column].max()
            ax.fill_between(low.index, low, high, color=PALETTE[i], alpha=0.15)
    axes[0].axhline(limit, color="black", ls="--", lw=1, label="shell limit")
    axes[0].set(
        xlabel="ambient temperature (°C)", ylabel="peak shell temperature (°C)", title="Peak shell temperature, phone"
    )
    axes[1].set(xlabel="ambient temperature (°C)", ylabel="requests violating QoE (%)", title="QoE violations, phone")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def thermal_peaks(thermal: pd.DataFrame) -> pd.DataFrame:
    """Mean peak shell temperature per ambient temperature (rows) and policy (columns)."""
    return thermal.groupby(["ambient °C", "policy"])["peak shell °C"].mean().unstack()
