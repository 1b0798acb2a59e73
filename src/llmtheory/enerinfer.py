"""EnerInfer (Zou et al., arXiv 2606.23001): energy-aware on-device LLM inference, as a simulation.

Only the paper's abstract and introduction are known, so this module is a *reconstruction* of its three
parts on top of an explicit device model, and every device number is an illustrative assumption (see
:data:`PARAMETER_SOURCES`); none comes from the paper. Read top to bottom, it follows the chapter:

1. the devices: NPU and DDR frequency levels, DVFS power ``C·V²·f`` plus a leakage that grows with die
   temperature, memory-traffic energy, and a two-node thermal model of die and shell (:class:`Platform`);
2. the workload: prefill and decode throughput of a transformer from its structure, with a roofline
   (:class:`ModelShape`, :class:`Engine`, :func:`phase_time`), a decode context that grows token by
   token and a cache for the KV entries (:func:`decode_phase`), and a CPU roofline fitted to timings;
3. configuration slack: the energy-optimal QoE-feasible frequency pair (:func:`best_config`);
4. EnerInfer's parts: a disaggregated, structure-aware predictor (:class:`StructurePredictor`), the
   ranking-driven online feedback under interference (:func:`feedback_select`), and the limited-horizon
   thermal predictor (:func:`forecast_peak_shell`); :mod:`llmtheory.enerinfer_stream` runs them over a
   queue of requests next to the baselines.

The simulated hardware has physics the predictor does not share (it is profiled on a cool die at fixed
contexts and has a roofline with one memory efficiency): the leakage's temperature dependence, which
closes a thermal-leakage feedback loop, the DRAM's slowdown on a hot die (which changes throughput), the
context's growth during a response, the KV cache's locality
and the system-level cache, small-matrix inefficiency and the bandwidth loss at low DDR levels.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.optimize import least_squares, nnls
from scipy.stats import kendalltau

from .params import Choice, Int, Real

# ----------------------------------------------------------------------------------------------------
# 1. Devices
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    """A device: NPU and DDR DVFS levels, its power model and its lumped thermal model."""

    name: str
    npu_f_max_ghz: float
    npu_levels: tuple[float, ...]
    npu_volt_min: float
    npu_volt_max: float
    npu_peak_tflops: float
    npu_dynamic_w_at_max: float
    npu_static_w_at_vmax: float
    leak_ref_c: float
    leak_doubling_k: float
    hot_dram_loss_per_k: float
    npu_stall_activity: float
    ddr_rates_mts: tuple[int, ...]
    ddr_bus_bits: int
    ddr_volt_min: float
    ddr_volt_max: float
    ddr_background_w_at_max: float
    ddr_pj_per_bit: float
    slc_mb: float
    slc_gbs: float
    kv_read_efficiency: float
    platform_w: float
    idle_w: float
    r_die_shell: float
    c_die: float
    r_shell_ambient: float
    c_shell: float
    t_ambient: float
    t_limit: float

    @property
    def npu_ghz(self) -> np.ndarray:
        return self.npu_f_max_ghz * np.asarray(self.npu_levels)

    @property
    def ddr_gbs(self) -> np.ndarray:
        """Peak DDR bandwidth of each level: transfers/s × bus width in bytes."""
        return np.asarray(self.ddr_rates_mts) * 1e6 * self.ddr_bus_bits / 8 / 1e9

    @property
    def ddr_fraction(self) -> np.ndarray:
        return np.asarray(self.ddr_rates_mts) / max(self.ddr_rates_mts)

    @property
    def n_configs(self) -> int:
        return len(self.npu_levels) * len(self.ddr_rates_mts)


PARAMETER_SOURCES: dict[str, tuple[str, str, str]] = {
    # field: (symbol, unit, source)
    "npu_f_max_ghz": ("f_npu,max", "GHz", "assumption (illustrative)"),
    "npu_levels": ("f_npu / f_npu,max", "-", "research note: levels 0.3–1.0 × f_max"),
    "npu_volt_min": ("V_min", "V", "research note: V(f) linear 0.55–0.9 V (phone); others assumed"),
    "npu_volt_max": ("V_max", "V", "research note (phone); others assumed"),
    "npu_peak_tflops": ("Π_npu", "TFLOP/s (fp16, dense)", "assumption (illustrative)"),
    "npu_dynamic_w_at_max": ("C_eff·V_max²·f_max", "W", "assumption; fixes C_eff"),
    "npu_static_w_at_vmax": ("k_leak·V_max", "W", "assumption; fixes k_leak"),
    "leak_ref_c": ("T_ref", "°C", "assumption: die temperature of the profiling runs, where k_leak holds"),
    "leak_doubling_k": ("ΔT_2", "K", "assumption: leakage doubles every ΔT_2 kelvin of die temperature"),
    "hot_dram_loss_per_k": (
        "β_hot",
        "1/K",
        "assumption: DRAM time per byte grows by β per K of die above T_ref "
        "(refresh and derating of package-on-package DRAM on a hot die)",
    ),
    "npu_stall_activity": ("a_stall", "-", "assumption: activity of a stalled NPU"),
    "ddr_rates_mts": ("data rate levels", "MT/s", "LPDDR5/5X speed grades; level set assumed"),
    "ddr_bus_bits": ("bus width", "bit", "research note: 64-bit phone bus; others assumed"),
    "ddr_volt_min": ("V_ddr,min", "V", "assumption (controller + PHY rail)"),
    "ddr_volt_max": ("V_ddr,max", "V", "assumption (controller + PHY rail)"),
    "ddr_background_w_at_max": ("C_ddr·V²·f at max", "W", "assumption; fixes C_ddr"),
    "ddr_pj_per_bit": ("E_bit", "pJ/bit", "research note: ≈4 pJ/bit"),
    "slc_mb": ("S_slc", "MB", "assumption: system-level cache that holds the newest KV entries"),
    "slc_gbs": ("BW_slc", "GB/s", "assumption: bandwidth of a system-level-cache hit"),
    "kv_read_efficiency": ("η_kv", "-", "assumption: DRAM efficiency of scattered KV reads / streamed weights"),
    "platform_w": ("P_platform", "W", "assumption: rest of the device while active"),
    "idle_w": ("P_idle", "W", "assumption: device between requests, NPU and DDR at their lowest levels"),
    "r_die_shell": ("R_ds", "K/W", "assumption"),
    "c_die": ("C_d", "J/K", "assumption"),
    "r_shell_ambient": ("R_sa", "K/W", "assumption"),
    "c_shell": ("C_s", "J/K", "assumption"),
    "t_ambient": ("T_amb", "°C", "assumption"),
    "t_limit": ("T_limit", "°C", "research note: skin limit ≈43 °C (phone); others assumed"),
}

_LPDDR5X = (2133, 3200, 4266, 5500, 6400, 7500, 8533)
_NPU_LEVELS = (0.3, 0.45, 0.6, 0.75, 0.9, 1.0)

PHONE = Platform(
    name="phone", npu_f_max_ghz=1.2, npu_levels=_NPU_LEVELS, npu_volt_min=0.55, npu_volt_max=0.90,
    npu_peak_tflops=8.0, npu_dynamic_w_at_max=4.0, npu_static_w_at_vmax=0.3, leak_ref_c=35.0,
    leak_doubling_k=20.0, hot_dram_loss_per_k=0.005,
    npu_stall_activity=0.4, ddr_rates_mts=_LPDDR5X, ddr_bus_bits=64, ddr_volt_min=0.5,
    ddr_volt_max=0.95, ddr_background_w_at_max=1.5, ddr_pj_per_bit=4.0, slc_mb=8.0, slc_gbs=200.0,
    kv_read_efficiency=0.6, platform_w=0.6, idle_w=0.4,
    r_die_shell=2.0, c_die=6.0, r_shell_ambient=5.0, c_shell=100.0, t_ambient=25.0, t_limit=43.0,
)  # fmt: skip
LAPTOP = Platform(
    name="laptop", npu_f_max_ghz=1.8, npu_levels=_NPU_LEVELS, npu_volt_min=0.6, npu_volt_max=1.0,
    npu_peak_tflops=16.0, npu_dynamic_w_at_max=5.0, npu_static_w_at_vmax=0.5, leak_ref_c=35.0,
    leak_doubling_k=20.0, hot_dram_loss_per_k=0.005,
    npu_stall_activity=0.4, ddr_rates_mts=_LPDDR5X, ddr_bus_bits=128, ddr_volt_min=0.6,
    ddr_volt_max=0.9, ddr_background_w_at_max=2.0, ddr_pj_per_bit=4.0, slc_mb=24.0, slc_gbs=400.0,
    kv_read_efficiency=0.6, platform_w=9.0, idle_w=6.0,
    r_die_shell=1.0, c_die=20.0, r_shell_ambient=1.2, c_shell=700.0, t_ambient=25.0, t_limit=45.0,
)  # fmt: skip
BOARD = Platform(
    name="dev board", npu_f_max_ghz=1.0, npu_levels=_NPU_LEVELS, npu_volt_min=0.6, npu_volt_max=0.95,
    npu_peak_tflops=10.0, npu_dynamic_w_at_max=6.0, npu_static_w_at_vmax=0.6, leak_ref_c=35.0,
    leak_doubling_k=20.0, hot_dram_loss_per_k=0.005,
    npu_stall_activity=0.4, ddr_rates_mts=(2133, 3200, 4266, 5500, 6400), ddr_bus_bits=256,
    ddr_volt_min=0.6, ddr_volt_max=0.9, ddr_background_w_at_max=2.5, ddr_pj_per_bit=4.0, slc_mb=4.0,
    slc_gbs=300.0, kv_read_efficiency=0.6, platform_w=3.0, idle_w=2.5,
    r_die_shell=1.0, c_die=30.0, r_shell_ambient=2.0, c_shell=300.0, t_ambient=25.0, t_limit=60.0,
)  # fmt: skip
PLATFORMS: tuple[Platform, ...] = (PHONE, LAPTOP, BOARD)


def assumptions_table(platforms: tuple[Platform, ...] = PLATFORMS) -> pd.DataFrame:
    """Every device parameter of the simulation in one table: symbol, unit, value per platform, source."""
    rows = []
    for f in fields(Platform):
        if f.name == "name":
            continue
        symbol, unit, source = PARAMETER_SOURCES[f.name]
        row = {"parameter": f.name, "symbol": symbol, "unit": unit}
        for p in platforms:
            value = getattr(p, f.name)
            row[p.name] = ", ".join(f"{v:g}" for v in value) if isinstance(value, tuple) else f"{value:g}"
        rows.append(row | {"source": source})
    return pd.DataFrame(rows).set_index("parameter")


def voltage(level_fraction: np.ndarray, v_min: float, v_max: float, lowest: float) -> np.ndarray:
    """V(f), linear between ``v_min`` at the lowest level and ``v_max`` at f_max (research note)."""
    return v_min + (v_max - v_min) * (np.asarray(level_fraction) - lowest) / (1.0 - lowest)


def leakage_factor(platform: Platform, die_c: float | None) -> float:
    """Hidden from the predictor: leakage grows with die temperature, eq. (enerinfer-eq-leak),
    ``2^((T_d − T_ref)/ΔT_2)`` (1 at the profiling temperature ``T_ref``, the default)."""
    if die_c is None:
        return 1.0
    return float(2.0 ** ((die_c - platform.leak_ref_c) / platform.leak_doubling_k))


def dram_derating(platform: Platform, die_c: float | None) -> float:
    """Hidden from the predictor: DRAM time per byte on a hot die, ``1 + β_hot·max(0, T_d − T_ref)``,
    eq. (enerinfer-eq-hot) (1 at the profiling temperature). It changes throughput, not only power."""
    if die_c is None:
        return 1.0
    return 1.0 + platform.hot_dram_loss_per_k * max(0.0, die_c - platform.leak_ref_c)


def idle_power(platform: Platform, die_c: float | None = None) -> np.ndarray:
    """Device power while no request runs, on every (NPU, DDR) level a governor leaves it at: ``P_idle``
    at the lowest levels, plus the NPU's leakage (clock-gated, no dynamic power) and the DDR's background
    power above those of the lowest levels (eqs. enerinfer-eq-dvfs, enerinfer-eq-ddr at zero activity)."""
    arrays = _device_arrays(platform)
    leak = arrays["npu_leak_w"] * leakage_factor(platform, die_c)
    ddr = arrays["ddr_background_w"]
    return platform.idle_w + (leak - leak[0]) + (ddr - ddr[0, 0]) + arrays["zeros"]


def npu_power(
    platform: Platform, npu_fraction: np.ndarray, compute_busy: np.ndarray, die_c: float | None = None
) -> np.ndarray:
    """NPU power, eq. (enerinfer-eq-dvfs): ``a·C_eff·V²·f + k_leak(T_d)·V`` with activity ``a`` between the
    stall activity (waiting on memory) and 1 (computing): ``a = a_stall + (1 − a_stall)·busy``, and the
    leakage of a die at ``die_c`` °C (:func:`leakage_factor`)."""
    p = platform
    v = voltage(npu_fraction, p.npu_volt_min, p.npu_volt_max, min(p.npu_levels))
    c_eff = p.npu_dynamic_w_at_max / (p.npu_volt_max**2 * p.npu_f_max_ghz)
    k_leak = p.npu_static_w_at_vmax / p.npu_volt_max * leakage_factor(p, die_c)
    activity = p.npu_stall_activity + (1 - p.npu_stall_activity) * np.asarray(compute_busy)
    return activity * c_eff * v**2 * p.npu_f_max_ghz * np.asarray(npu_fraction) + k_leak * v


def ddr_power(platform: Platform, ddr_index: np.ndarray, traffic_gbs: np.ndarray) -> np.ndarray:
    """DDR power, eq. (enerinfer-eq-ddr): background ``C_ddr·V_ddr²·f_ddr`` plus ``E_bit·8·BW_used``."""
    p = platform
    frac = p.ddr_fraction[np.asarray(ddr_index)]
    v = voltage(frac, p.ddr_volt_min, p.ddr_volt_max, p.ddr_fraction.min())
    background = p.ddr_background_w_at_max * (v / p.ddr_volt_max) ** 2 * frac
    return background + p.ddr_pj_per_bit * 1e-12 * 8 * np.asarray(traffic_gbs) * 1e9


def thermal_matrices(platform: Platform) -> tuple[np.ndarray, np.ndarray]:
    """The two-node RC model, eq. (enerinfer-eq-rc), as ``dx/dt = A x + b P`` with ``x`` the die and shell
    temperatures above ambient."""
    p = platform
    a = np.array(
        [
            [-1 / (p.r_die_shell * p.c_die), 1 / (p.r_die_shell * p.c_die)],
            [1 / (p.r_die_shell * p.c_shell), -(1 / p.r_die_shell + 1 / p.r_shell_ambient) / p.c_shell],
        ]
    )
    return a, np.array([1 / p.c_die, 0.0])


def thermal_step(platform: Platform, temps: np.ndarray, power_w: float, dt: float) -> np.ndarray:
    """Exact solution of the RC model over ``dt`` seconds at constant power (matrix exponential).
    ``temps`` are (die, shell) in °C."""
    eigenvalues, vectors, inverse, a_inv_b = _thermal_modes(platform)
    x = np.asarray(temps, dtype=float) - platform.t_ambient
    x_inf = -a_inv_b * power_w
    propagator = (vectors * np.exp(eigenvalues * dt)) @ inverse  # = expm(A·dt), A is diagonalisable
    return platform.t_ambient + x_inf + propagator @ (x - x_inf)


@lru_cache(maxsize=16)
def _thermal_modes(platform: Platform) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    a, b = thermal_matrices(platform)
    eigenvalues, vectors = np.linalg.eig(a)
    return eigenvalues.real, vectors.real, np.linalg.inv(vectors.real), np.linalg.solve(a, b)


def steady_state(platform: Platform, power_w: float) -> np.ndarray:
    """Die and shell temperatures at constant power: ``T_s = T_amb + P·R_sa``, ``T_d = T_s + P·R_ds``."""
    shell = platform.t_ambient + power_w * platform.r_shell_ambient
    return np.array([shell + power_w * platform.r_die_shell, shell])


def thermal_leakage_equilibrium(platform: Platform, power_at, tolerance: float = 1e-6) -> tuple[float, float]:
    """The steady die temperature and power of a sustained load whose power depends on the die temperature
    through the leakage: the fixed point of ``T_d = T_amb + P(T_d)·(R_ds + R_sa)`` (eq. enerinfer-eq-rc at
    steady state, closed by eq. enerinfer-eq-leak), found by iteration from ``T_ref``. ``power_at(die_c)``
    gives the power. Returns ``(inf, inf)`` when the loop runs away (leakage outgrows the cooling)."""
    resistance = platform.r_die_shell + platform.r_shell_ambient
    die = platform.leak_ref_c
    for _ in range(500):
        new = platform.t_ambient + float(power_at(die)) * resistance
        if new > 250.0:
            return np.inf, np.inf
        if abs(new - die) < tolerance:
            return new, float(power_at(new))
        die = new
    return np.inf, np.inf


# ----------------------------------------------------------------------------------------------------
# 2. Workload: throughput from model structure, with a roofline
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelShape:
    """A decoder-only transformer with a gated MLP, described by its config numbers."""

    name: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_ff: int
    vocab: int
    tied_embeddings: bool
    qkv_bias: bool = False
    nominal_billions: float | None = None

    def layer_params(self) -> int:
        d, q, kv = self.d_model, self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        attention = d * q + 2 * d * kv + q * d + (q + 2 * kv if self.qkv_bias else 0)
        return attention + 3 * d * self.d_ff + 2 * d

    def n_params(self) -> int:
        """All parameters: embeddings (twice when untied), layers, final norm."""
        embeddings = self.vocab * self.d_model * (1 if self.tied_embeddings else 2)
        return embeddings + self.n_layers * self.layer_params() + self.d_model

    def matmul_params(self) -> int:
        """Parameters read and multiplied per token: every layer and the LM head (not the embedding
        lookup, which reads one row)."""
        return self.n_layers * self.layer_params() + self.vocab * self.d_model

    def kv_elements_per_token(self) -> int:
        """Keys and values stored per token: ``2·L·n_kv·d_head``."""
        return 2 * self.n_layers * self.n_kv_heads * self.head_dim


# Config numbers of public checkpoints (config.json on the Hugging Face hub), as recalled by the author:
# treat them as assumptions. The unit test checks that each reproduces the nominal size within 5%.
REAL_MODELS: tuple[ModelShape, ...] = (
    ModelShape("Qwen2.5-0.5B", 24, 896, 14, 2, 64, 4864, 151936, True, True, 0.49),
    ModelShape("Llama-3.2-1B", 16, 2048, 32, 8, 64, 8192, 128256, True, False, 1.24),
    ModelShape("Qwen2.5-1.5B", 28, 1536, 12, 2, 128, 8960, 151936, True, True, 1.54),
    ModelShape("Gemma-2-2B", 26, 2304, 8, 4, 256, 9216, 256000, True, False, 2.61),
    ModelShape("Qwen2.5-3B", 36, 2048, 16, 2, 128, 11008, 151936, True, True, 3.09),
    ModelShape("Llama-3.2-3B", 28, 3072, 24, 8, 128, 8192, 128256, True, False, 3.21),
    ModelShape("Phi-3-mini", 32, 3072, 32, 32, 96, 8192, 32064, False, False, 3.82),
    ModelShape("Qwen2.5-7B", 28, 3584, 28, 4, 128, 18944, 152064, False, True, 7.62),
    ModelShape("Llama-3.1-8B", 32, 4096, 32, 8, 128, 14336, 128256, False, False, 8.03),
)


@dataclass(frozen=True)
class Engine:
    """An inference-engine profile: number formats, achieved efficiencies, overlap and per-layer overhead."""

    name: str
    weight_bits: float
    kv_bytes: float
    compute_multiplier: float
    compute_efficiency: float
    prefill_compute_efficiency: float
    memory_efficiency: float
    overlap: float
    layer_overhead_us: float


ENGINES: tuple[Engine, ...] = (
    Engine("w4a16 (llama.cpp-like)", 4.5, 2.0, 1.0, 0.12, 0.5, 0.85, 0.8, 15.0),
    Engine("w8a8 (vendor NPU SDK-like)", 8.0, 1.0, 2.0, 0.70, 0.70, 0.75, 0.6, 40.0),
)


def decode_work(model: ModelShape, engine: Engine, context: int) -> tuple[float, float]:
    """FLOPs and bytes of one decoded token at batch 1, eq. (enerinfer-eq-work):
    ``F = 2·N_mm + 4·L·n_h·d_h·ctx`` and ``B = N_mm·bits/8 + ctx·kv_elements·kv_bytes``."""
    flops = 2 * model.matmul_params() + 4 * model.n_layers * model.n_heads * model.head_dim * context
    weight_bytes = model.matmul_params() * engine.weight_bits / 8
    return flops, weight_bytes + context * model.kv_elements_per_token() * engine.kv_bytes


def prefill_work(model: ModelShape, engine: Engine, prompt: int) -> tuple[float, float]:
    """FLOPs and bytes of a prefill of ``prompt`` tokens: weights are read once, the KV cache written once,
    attention is quadratic in the prompt."""
    attention = 2 * model.n_layers * model.n_heads * model.head_dim * prompt**2
    flops = 2 * model.matmul_params() * prompt + attention
    weight_bytes = model.matmul_params() * engine.weight_bits / 8
    return flops, weight_bytes + prompt * model.kv_elements_per_token() * engine.kv_bytes


def size_efficiency(d_model: int) -> float:
    """Hidden from the predictor: small matrices fill the NPU's arrays poorly, ``d/(d + 512)``."""
    return d_model / (d_model + 512.0)


@lru_cache(maxsize=64)
def _device_arrays(platform: Platform) -> dict[str, np.ndarray]:
    """Per-configuration constants of a platform, shaped (NPU levels, DDR levels) or broadcastable to it:
    the DVFS terms of :func:`npu_power` and :func:`ddr_power` at full activity and reference leakage, and
    the DRAM seconds per byte (the achieved bandwidth falls at low DDR levels, hidden from the predictor)."""
    p = platform
    frac = np.asarray(p.npu_levels)[:, None]
    v = voltage(frac, p.npu_volt_min, p.npu_volt_max, min(p.npu_levels))
    c_eff = p.npu_dynamic_w_at_max / (p.npu_volt_max**2 * p.npu_f_max_ghz)
    ddr_index = np.arange(len(p.ddr_rates_mts))
    return {
        "npu_fraction": frac,
        "zeros": np.zeros((len(p.npu_levels), len(p.ddr_rates_mts))),
        "npu_dynamic_w": c_eff * v**2 * p.npu_f_max_ghz * frac,
        "npu_leak_w": p.npu_static_w_at_vmax / p.npu_volt_max * v,
        "ddr_background_w": ddr_power(p, ddr_index, 0.0)[None, :],
        "dram_s_per_byte": (1 / (p.ddr_gbs * 1e9 * (0.85 + 0.15 * p.ddr_fraction)))[None, :],
    }


def phase_time(
    platform: Platform,
    engine: Engine,
    model: ModelShape,
    flops: float,
    nbytes: float,
    interference: float = 1.0,
    phase: str = "decode",
    kv_bytes: float = 0.0,
    die_c: float | None = None,
) -> dict[str, np.ndarray]:
    """The "true" device time of a phase on every (NPU, DDR) configuration, eq. (enerinfer-eq-roofline):
    ``t = max(t_c, t_m) + (1 − overlap)·min(t_c, t_m) + L·t_layer``, where
    ``t_c = F / (Π·f/f_max·efficiency)`` and ``t_m = κ·B / (BW·efficiency)``; κ ≥ 1 is interference.

    Decode and prefill differ in compute efficiency (dequantisation is paid per weight read, and a
    prefill reads each weight once for many tokens). The returned arrays have shape
    (NPU levels, DDR levels); ``power`` is the device power while running.

    Three effects of the simulated hardware are hidden from the predictor: small matrices fill the NPU
    poorly (:func:`size_efficiency`), the achieved bandwidth falls at low DDR levels, and the ``kv_bytes``
    of the KV cache among ``nbytes`` see the cache (eq. enerinfer-eq-cache): the newest ``S_slc`` bytes
    hit the system-level cache, the rest are read from DRAM with the poorer locality ``η_kv`` of
    scattered reads. ``die_c`` sets the leakage (:func:`leakage_factor`) and slows the DRAM
    (:func:`dram_derating`).
    """
    p, arrays = platform, _device_arrays(platform)
    frac = arrays["npu_fraction"]
    efficiency = engine.compute_efficiency if phase == "decode" else engine.prefill_compute_efficiency
    peak = p.npu_peak_tflops * 1e12 * engine.compute_multiplier * efficiency
    t_compute = flops / (peak * size_efficiency(model.d_model) * frac) + arrays["zeros"]
    # eq. (enerinfer-eq-cache): streamed weights, KV misses with poorer locality, KV hits in the SLC
    kv_hit = min(kv_bytes, p.slc_mb * 1e6)
    weights_and_misses = nbytes - kv_bytes + (kv_bytes - kv_hit) / p.kv_read_efficiency
    t_dram = weights_and_misses * arrays["dram_s_per_byte"] * dram_derating(p, die_c) / engine.memory_efficiency
    t_memory = interference * t_dram + kv_hit / (p.slc_gbs * 1e9) + arrays["zeros"]
    longer, shorter = np.maximum(t_compute, t_memory), np.minimum(t_compute, t_memory)
    time = longer + (1 - engine.overlap) * shorter + model.n_layers * engine.layer_overhead_us * 1e-6
    busy = t_compute / time
    traffic = (nbytes - kv_hit) / time / 1e9
    activity = p.npu_stall_activity + (1 - p.npu_stall_activity) * busy
    npu = activity * arrays["npu_dynamic_w"] + arrays["npu_leak_w"] * leakage_factor(p, die_c)
    ddr = arrays["ddr_background_w"] + p.ddr_pj_per_bit * 1e-12 * 8 * traffic * 1e9
    power = npu + ddr + p.platform_w  # eqs. (enerinfer-eq-dvfs) and (enerinfer-eq-ddr), as in npu_power, ddr_power
    # what a bus monitor sees: our DRAM traffic and the other apps' that slowed it down by κ
    bus = interference * traffic
    return {"time": time, "compute": t_compute, "memory": t_memory, "power": power, "busy": busy, "traffic": traffic,
            "bus traffic": bus}  # fmt: skip


def decode_phase(
    platform: Platform, engine: Engine, model: ModelShape, context: float, n_tokens: float = 1.0,
    interference: float = 1.0, die_c: float | None = None, points: int = 4,
) -> dict[str, np.ndarray]:  # fmt: skip
    """The true decode of ``n_tokens`` tokens starting at ``context``: the context grows by one token per
    step, so time and power are averaged over ``points`` contexts along the way (mean time per token, and
    mean power = energy / time); the KV cache sees the cache effects of :func:`phase_time`."""
    contexts = context + (np.arange(points) + 0.5) * n_tokens / points if n_tokens > 1 else [context]
    sims = []
    for ctx in contexts:
        flops, nbytes = decode_work(model, engine, ctx)
        kv = ctx * model.kv_elements_per_token() * engine.kv_bytes
        sims.append(phase_time(platform, engine, model, flops, nbytes, interference, "decode", kv, die_c))
    if len(sims) == 1:
        return sims[0]
    time = np.mean([s["time"] for s in sims], axis=0)
    energy = np.mean([s["power"] * s["time"] for s in sims], axis=0)
    keys = ("compute", "memory", "busy", "traffic", "bus traffic")
    merged = {key: np.mean([s[key] for s in sims], axis=0) for key in keys}
    return merged | {"time": time, "power": energy / time}


def prefill_phase(
    platform: Platform, engine: Engine, model: ModelShape, prompt: int, interference: float = 1.0,
    die_c: float | None = None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """The true prefill of ``prompt`` tokens (the KV cache is written once, streamed like the weights)."""
    flops, nbytes = prefill_work(model, engine, prompt)
    return phase_time(platform, engine, model, flops, nbytes, interference, "prefill", die_c=die_c)


def roofline_throughput(peak_flops: float, bandwidth: float, intensity: np.ndarray) -> np.ndarray:
    """The roofline: attainable FLOP/s ``= min(Π, I·BW)`` at arithmetic intensity ``I`` (FLOP/byte)."""
    return np.minimum(peak_flops, np.asarray(intensity) * bandwidth)


def fit_cpu_roofline(
    n_layers: np.ndarray, decode_bytes: np.ndarray, decode_s: np.ndarray,
    prefill_flops: np.ndarray, prefill_s: np.ndarray,
) -> dict[str, float]:  # fmt: skip
    """Fit the CPU case by non-negative least squares on relative errors:
    ``t_decode = o_d + o_d,L·L + B/BW`` and ``t_prefill = o_p + o_p,L·L + F/Π`` (each phase has its own
    framework overhead per call and per layer; the roofline terms share nothing else).
    Returns the overheads (s), ``bandwidth`` (B/s) and ``flops`` (FLOP/s)."""
    n = len(n_layers)
    design = np.zeros((2 * n, 6))
    design[:n, 0], design[:n, 1], design[:n, 2] = 1.0, n_layers, decode_bytes
    design[n:, 3], design[n:, 4], design[n:, 5] = 1.0, n_layers, prefill_flops
    target = np.concatenate([decode_s, prefill_s])
    coef, _ = nnls(design / target[:, None], np.ones(2 * n))
    return {
        "decode_overhead_s": coef[0],
        "decode_overhead_per_layer_s": coef[1],
        "bandwidth": 1 / coef[2] if coef[2] > 0 else np.inf,
        "prefill_overhead_s": coef[3],
        "prefill_overhead_per_layer_s": coef[4],
        "flops": 1 / coef[5] if coef[5] > 0 else np.inf,
    }


def cpu_time(fit: dict[str, float], phase: str, n_layers: float, flops: float, nbytes: float) -> float:
    """Predicted CPU time of a phase: its fitted overheads plus the roofline ``max(F/Π, B/BW)``."""
    overhead = fit[f"{phase}_overhead_s"] + fit[f"{phase}_overhead_per_layer_s"] * n_layers
    return overhead + max(flops / fit["flops"], nbytes / fit["bandwidth"])


# ----------------------------------------------------------------------------------------------------
# 3. QoE and configuration slack
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QoE:
    """Quality of experience: a decode rate and a time to first token (research note: 8–10 tok/s, 1–2 s)."""

    min_tokens_per_s: float = 10.0
    max_ttft_s: float = 1.5


def best_config(
    time: np.ndarray, power: np.ndarray, limit_s: float, objective: str = "energy"
) -> tuple[int, int] | None:
    """The QoE-feasible configuration (``time ≤ limit_s``) of least energy ``P·t`` (or least ``power``);
    ties broken towards lower frequencies. ``None`` when no configuration is feasible."""
    score = power * time if objective == "energy" else power.copy()
    score = np.where(time <= limit_s, score, np.inf)
    if not np.isfinite(score).any():
        return None
    flat = np.flatnonzero(score == score.min())[0]
    return tuple(int(i) for i in np.unravel_index(flat, score.shape))


def slack_table(
    platforms: tuple[Platform, ...], engines: tuple[Engine, ...], models: tuple[ModelShape, ...],
    qoe: QoE, context: int = 512,
) -> pd.DataFrame:  # fmt: skip
    """For every platform × engine × model: decode at max frequency vs at the energy-optimal QoE-feasible
    configuration (the paper's "configuration slack")."""
    rows = []
    for p in platforms:
        for e in engines:
            for m in models:
                sim = decode_phase(p, e, m, context)
                time, power = sim["time"], sim["power"]
                best = best_config(time, power, 1 / qoe.min_tokens_per_s)
                top = (len(p.npu_levels) - 1, len(p.ddr_gbs) - 1)
                row = {"platform": p.name, "engine": e.name, "model": m.name}
                row |= {"tok/s @max": 1 / time[top], "tok/J @max": 1 / (power[top] * time[top])}
                if best is None:
                    rows.append(row | {"best NPU": np.nan, "best DDR MT/s": np.nan, "gain %": np.nan})
                    continue
                row |= {
                    "best NPU": p.npu_levels[best[0]],
                    "best DDR MT/s": p.ddr_rates_mts[best[1]],
                    "tok/s @best": 1 / time[best],
                    "tok/J @best": 1 / (power[best] * time[best]),
                }
                row["gain %"] = 100 * (row["tok/J @best"] / row["tok/J @max"] - 1)
                row["compute-bound @max"] = bool(sim["compute"][top] > sim["memory"][top])
                rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------
# 4a. EnerInfer part 1: disaggregated, structure-aware prediction of throughput and power
# ----------------------------------------------------------------------------------------------------


def measure(
    platform: Platform, engine: Engine, model: ModelShape, phase: str, size: int,
    rng: np.random.Generator, noise: float = 0.02,
) -> dict[str, np.ndarray]:  # fmt: skip
    """A profiling run on every configuration: the "true" time and whole-device power with multiplicative
    measurement noise (no component-level power sensor: only the total is observed). Profiling runs are
    short, on a device at rest: the die is at the reference temperature and decode steps are timed at a
    fixed context, so the leakage's temperature and the context's growth are not seen (the cache is)."""
    work = decode_work(model, engine, size) if phase == "decode" else prefill_work(model, engine, size)
    sim = (
        decode_phase(platform, engine, model, size)
        if phase == "decode"
        else prefill_phase(platform, engine, model, size)
    )
    shape = sim["time"].shape
    return {
        "time": sim["time"] * np.exp(noise * rng.standard_normal(shape)),
        "power": sim["power"] * np.exp(noise * rng.standard_normal(shape)),
        "flops": work[0],
        "bytes": work[1],
    }


@dataclass
class StructurePredictor:
    """EnerInfer's first part, as reconstructed here: *disaggregated* into a time model per phase (a
    roofline on structure-derived FLOPs and bytes with fitted efficiencies, overlap and per-layer overhead)
    and a power model that splits the measured whole-device power into NPU dynamic, NPU static, DDR
    background, DDR traffic and platform terms by non-negative regression (eq. enerinfer-eq-predictor)."""

    platform: Platform
    engine: Engine
    time_params: dict[str, np.ndarray] = field(default_factory=dict)
    power_coef: np.ndarray | None = None

    def _time(self, theta: np.ndarray, flops, nbytes, n_layers) -> np.ndarray:
        p = self.platform
        compute_rate, memory_eff, overlap, overhead = np.exp(theta[0]), np.exp(theta[1]), theta[2], theta[3]
        t_c = np.asarray(flops)[..., None, None] / (compute_rate * 1e12 * np.asarray(p.npu_levels))[:, None]
        t_m = np.asarray(nbytes)[..., None, None] / (memory_eff * p.ddr_gbs * 1e9)[None, :]
        longer, shorter = np.maximum(t_c, t_m), np.minimum(t_c, t_m)
        layers = np.asarray(n_layers)[..., None, None]
        return longer + (1 - overlap) * shorter + layers * overhead * 1e-6, t_c

    def _power_features(self, t_c, time, nbytes) -> np.ndarray:
        p = self.platform
        frac = np.asarray(p.npu_levels)[:, None]
        v = voltage(frac, p.npu_volt_min, p.npu_volt_max, min(p.npu_levels))
        dfrac = p.ddr_fraction[None, :]
        vd = voltage(dfrac, p.ddr_volt_min, p.ddr_volt_max, p.ddr_fraction.min())
        busy = np.minimum(t_c / time, 1.0)
        ones = np.ones_like(time)
        traffic = np.asarray(nbytes)[..., None, None] / time / 1e9
        return np.stack(
            [ones, v**2 * frac * ones, busy * v**2 * frac, v * ones, vd**2 * dfrac * ones, traffic], axis=-1
        )

    def fit(self, runs: list[tuple[ModelShape, dict]], phase: str) -> StructurePredictor:
        """Fit the phase's time model (log-space least squares) and, on decode, the power split."""
        flops = np.array([r["flops"] for _, r in runs])
        nbytes = np.array([r["bytes"] for _, r in runs])
        layers = np.array([m.n_layers for m, _ in runs])
        times = np.stack([r["time"] for _, r in runs])

        def residual(theta):
            return (np.log(self._time(theta, flops, nbytes, layers)[0]) - np.log(times)).ravel()

        start = np.array([np.log(self.platform.npu_peak_tflops), np.log(0.8), 0.8, 10.0])
        lower, upper = [-5, np.log(0.05), 0.0, 0.0], [8, np.log(1.5), 1.0, 1e3]
        self.time_params[phase] = least_squares(residual, start, bounds=(lower, upper)).x
        if phase == "decode":
            t_c = self._time(self.time_params[phase], flops, nbytes, layers)[1]
            features = self._power_features(t_c, times, nbytes).reshape(-1, 6)
            powers = np.stack([r["power"] for _, r in runs]).ravel()
            self.power_coef, _ = nnls(features, powers)
        return self

    def predict(self, model: ModelShape, phase: str, size: int, interference: float = 1.0) -> dict:
        """Predicted time and power on every configuration for an unseen ``model``. ``interference``
        (κ̂ from online feedback) scales the memory term."""
        work = decode_work(model, self.engine, size) if phase == "decode" else prefill_work(model, self.engine, size)
        time, t_c = self._time(self.time_params[phase], work[0], work[1] * interference, model.n_layers)
        power = self._power_features(t_c, time, work[1]) @ self.power_coef
        return {"time": time, "power": power}


def blackbox_features(model: ModelShape, platform: Platform, size: int) -> np.ndarray:
    """Baseline predictor's inputs: raw model descriptors and the two frequencies, one row per config."""
    f_npu, f_ddr = np.meshgrid(platform.npu_ghz, platform.ddr_gbs, indexing="ij")
    descriptors = [model.n_params() / 1e9, model.n_layers, model.d_model, model.kv_elements_per_token(), size]
    return np.column_stack([np.broadcast_to(d, f_npu.size) for d in descriptors] + [f_npu.ravel(), f_ddr.ravel()])


@dataclass
class BlackBoxPredictor:
    """Baseline: gradient-boosted trees on raw model descriptors and frequencies, one regressor for
    log-time and one for power per phase, with no structure beyond the inputs."""

    platform: Platform
    engine: Engine
    n_trees: int = 100
    seed: int = 0
    regressors: dict = field(default_factory=dict)

    def fit(self, runs: list[tuple[ModelShape, dict]], phase: str, sizes: list[int]) -> BlackBoxPredictor:
        from sklearn.ensemble import GradientBoostingRegressor

        features = np.vstack([blackbox_features(m, self.platform, s) for (m, _), s in zip(runs, sizes, strict=True)])
        log_time = np.concatenate([np.log(r["time"]).ravel() for _, r in runs])
        power = np.concatenate([r["power"].ravel() for _, r in runs])
        self.regressors[phase] = tuple(
            GradientBoostingRegressor(n_estimators=self.n_trees, random_state=self.seed).fit(features, y)
            for y in (log_time, power)
        )
        return self

    def predict(self, model: ModelShape, phase: str, size: int, interference: float = 1.0) -> dict:
        features = blackbox_features(model, self.platform, size)
        shape = (len(self.platform.npu_levels), len(self.platform.ddr_gbs))
        time_reg, power_reg = self.regressors[phase]
        time = np.exp(time_reg.predict(features)).reshape(shape) * interference
        return {"time": time, "power": power_reg.predict(features).reshape(shape)}


@dataclass
class NearestTrainedModel:
    """Control for the ranking: a predictor that ignores the unseen model's structure and answers with its
    ``base`` predictor's prediction for the profiled model of nearest parameter count. It knows nothing about
    the model, so a ranking rule it passes measures the frequencies' order, not the predictor."""

    base: object
    trained: tuple[ModelShape, ...]

    def predict(self, model: ModelShape, phase: str, size: int, interference: float = 1.0) -> dict:
        nearest = min(self.trained, key=lambda m: abs(np.log(m.n_params() / model.n_params())))
        return self.base.predict(nearest, phase, size, interference)


def profile_and_fit(
    platform: Platform, engine: Engine, models: list[ModelShape], rng: np.random.Generator,
    sizes: dict[str, tuple[int, ...]], n_trees: int = 100,
) -> tuple[StructurePredictor, BlackBoxPredictor]:  # fmt: skip
    """Profile the training models on every configuration (decode at several contexts, prefill at several
    prompt lengths) and fit both predictors on the same measurements."""
    structure, blackbox = StructurePredictor(platform, engine), BlackBoxPredictor(platform, engine, n_trees)
    for phase in ("decode", "prefill"):
        pairs = [(m, s) for m in models for s in sizes[phase]]
        runs = [(m, measure(platform, engine, m, phase, s, rng)) for m, s in pairs]
        structure.fit(runs, phase)
        blackbox.fit(runs, phase, [s for _, s in pairs])
    return structure, blackbox


def service_die_c(platform: Platform) -> float:
    """The die temperature of a device serving requests near its skin limit (shell at the limit, die
    10 K above it): where the predictor is judged "in service"."""
    return platform.t_limit + 10.0


def evaluate_predictor(
    predictor, platform: Platform, engine: Engine, model: ModelShape, context: int, qoe: QoE,
    response_tokens: int = 1, die_c: float | None = None,
) -> dict[str, float]:  # fmt: skip
    """Errors of a predictor on one (unseen) model's decode: MAPE of throughput and power, Kendall τ of
    the tokens/J ranking of configurations, and the tokens/J lost by the predicted-best feasible choice.

    The truth is a response of ``response_tokens`` tokens from ``context`` on a die at ``die_c`` (the
    defaults, one token on a die at the profiling temperature, are the conditions the predictor was
    profiled in); the predictor is asked, as a controller would ask it, at the prompt's ``context``."""
    truth = decode_phase(platform, engine, model, context, response_tokens, die_c=die_c)
    guess = predictor.predict(model, "decode", context)
    true_eff, guess_eff = 1 / (truth["power"] * truth["time"]), 1 / (guess["power"] * guess["time"])
    best = best_config(truth["time"], truth["power"], 1 / qoe.min_tokens_per_s)
    chosen = best_config(guess["time"], guess["power"], 1 / qoe.min_tokens_per_s)
    regret = np.nan
    if best is not None and chosen is not None:
        feasible = truth["time"][chosen] <= 1 / qoe.min_tokens_per_s
        regret = 100 * (1 - true_eff[chosen] / true_eff[best]) if feasible else 100.0
    return {
        "throughput MAPE %": mape(1 / truth["time"], 1 / guess["time"]),
        "power MAPE %": mape(truth["power"], guess["power"]),
        "Kendall τ (tok/J)": ranking_quality(true_eff, guess_eff),
        "regret %": regret,
    }


def ranking_quality(true_score: np.ndarray, predicted_score: np.ndarray) -> float:
    """Kendall's τ between the true and predicted rankings of configurations."""
    return float(kendalltau(np.ravel(true_score), np.ravel(predicted_score)).statistic)


def mape(true: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute percentage error, in %."""
    return float(100 * np.mean(np.abs(np.asarray(predicted) / np.asarray(true) - 1)))


# ----------------------------------------------------------------------------------------------------
# 4b. EnerInfer part 2: ranking-driven online feedback under runtime interference
# ----------------------------------------------------------------------------------------------------


def feedback_select(
    predicted: dict, measure_time, limit_s: float, kappa_hat: float, predictor_kappa,
    margin: float = 0.05, max_probes: int = 3, tolerance: float = 0.05,
) -> tuple[tuple[int, int], float, list[tuple[int, int]]]:  # fmt: skip
    """Ranking-driven feedback (reconstruction): rank configurations by predicted energy among those
    predicted to meet QoE with a margin; measure the top one for a few tokens; if the measured time
    disagrees with the prediction, re-estimate the interference κ̂ from that measurement (the memory term
    is the one contention inflates), re-rank and probe the new top one, at most ``max_probes`` times.
    The choice is the probed configuration of least predicted energy among those accepted: a probe is
    accepted when its measurement confirms the prediction (within ``tolerance``) or itself meets QoE with
    the margin; if none is, the maximum frequencies.

    ``predicted`` is ``predictor_kappa(κ)`` at the current κ̂; ``measure_time(cfg)`` returns a measured
    per-token time. Returns the chosen configuration, the updated κ̂ and the probed configurations."""
    measured: dict[tuple[int, int], float] = {}
    confirmed = None
    for _ in range(max_probes):
        choice = best_config(predicted["time"], predicted["power"], limit_s / (1 + margin))
        if choice is None or choice in measured:
            break
        measured[choice] = measure_time(choice)
        if abs(measured[choice] / predicted["time"][choice] - 1) <= tolerance:
            confirmed = choice
            break
        kappa_hat = solve_interference(predictor_kappa, choice, measured[choice])
        predicted = predictor_kappa(kappa_hat)
    feasible = [cfg for cfg, t in measured.items() if cfg == confirmed or t <= limit_s / (1 + margin)]
    if feasible:
        choice = min(feasible, key=lambda cfg: predicted["power"][cfg] * measured[cfg])
    else:  # nothing measured fast enough: run at the maximum frequencies
        choice = tuple(int(n) - 1 for n in predicted["time"].shape)
    return choice, kappa_hat, list(measured)


def solve_interference(predictor_kappa, config, measured_s: float) -> float:
    """The κ that makes the predicted time of ``config`` equal the measurement (24 bisection steps on [0.5, 4];
    the predicted time is non-decreasing in κ)."""
    low, high = 0.5, 4.0
    for _ in range(24):
        mid = 0.5 * (low + high)
        if predictor_kappa(mid)["time"][config] < measured_s:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def interference_experiment(
    predictor: StructurePredictor, platform: Platform, engine: Engine, model: ModelShape, context: int,
    qoe: QoE, interference: float, rng: np.random.Generator, margin: float = 0.05,
) -> list[dict]:  # fmt: skip
    """One decode under memory interference κ: the open-loop choice (prediction at κ = 1), the
    ranking-driven feedback choice (:func:`feedback_select`, starting from κ̂ = 1) and the oracle's
    (true device model at the true κ). Each row: QoE met, true tokens/J, configurations probed."""
    truth = decode_phase(platform, engine, model, context, interference=interference)
    limit = 1 / qoe.min_tokens_per_s

    def predict(k):
        return predictor.predict(model, "decode", context, k)

    def measured(cfg):
        return float(truth["time"][cfg] * np.exp(0.02 * rng.standard_normal()))

    fallback = (len(platform.npu_levels) - 1, len(platform.ddr_gbs) - 1)
    open_loop = best_config(predict(1.0)["time"], predict(1.0)["power"], limit / (1 + margin)) or fallback
    feedback, kappa_hat, probed = feedback_select(predict(1.0), measured, limit, 1.0, predict, margin)
    oracle = best_config(truth["time"], truth["power"], limit) or fallback
    rows = []
    for name, cfg, probes in (
        ("open-loop prediction", open_loop, 0),
        ("ranking-driven feedback", feedback, len(probed)),
        ("oracle", oracle, 0),
    ):
        rows.append({
            "policy": name, "model": model.name, "κ": interference, "QoE met": bool(truth["time"][cfg] <= limit),
            "tokens/J": 1 / float(truth["power"][cfg] * truth["time"][cfg]), "probes": probes,
            "κ̂": kappa_hat if name == "ranking-driven feedback" else np.nan,
        })  # fmt: skip
    return rows


# ----------------------------------------------------------------------------------------------------
# 4c. EnerInfer part 3: limited-horizon thermal prediction (the request stream: enerinfer_stream.py)
# ----------------------------------------------------------------------------------------------------


def forecast_peak_shell(
    platform: Platform, temps: np.ndarray, busy_power: float, busy_s: float, horizon_s: float, points: int = 6
) -> float:
    """Predicted peak shell temperature over the next ``horizon_s`` seconds if the device runs at
    ``busy_power`` for ``busy_s`` seconds and then idles (eq. enerinfer-eq-rc, solved exactly)."""
    peak, state, elapsed = float(temps[1]), np.asarray(temps, float), 0.0
    for t in np.linspace(0, horizon_s, points + 1)[1:]:
        busy_part = max(0.0, min(t, busy_s) - elapsed)
        if busy_part > 0:
            state = thermal_step(platform, state, busy_power, busy_part)
        idle_part = (t - elapsed) - busy_part
        if idle_part > 0:
            state = thermal_step(platform, state, platform.idle_w, idle_part)
        elapsed = t
        peak = max(peak, float(state[1]))
    return peak


# ----------------------------------------------------------------------------------------------------
# 5. The CPU case: tiny real transformers models timed on this machine
# ----------------------------------------------------------------------------------------------------


def tiny_shape(name: str, d_model: int, n_layers: int, vocab: int = 512) -> ModelShape:
    """A tiny Llama-style shape (4 heads, 2 KV heads, d_ff = 2·d, untied) for the CPU calibration."""
    return ModelShape(name, n_layers, d_model, 4, 2, d_model // 4, 2 * d_model, vocab, False)


def time_tiny_model(shape: ModelShape, prompt: int, new_tokens: int, repeats: int = 3) -> dict[str, float]:
    """Build ``LlamaForCausalLM`` from ``shape`` (random weights, fp32, one thread) and time a prefill of
    ``prompt`` tokens and ``new_tokens`` cached decode steps; the fastest of ``repeats`` runs (the machine
    is shared, and interference from other processes only ever adds time)."""
    import time

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=shape.vocab, hidden_size=shape.d_model, intermediate_size=shape.d_ff,
        num_hidden_layers=shape.n_layers, num_attention_heads=shape.n_heads,
        num_key_value_heads=shape.n_kv_heads, max_position_embeddings=prompt + new_tokens + 8,
        tie_word_embeddings=shape.tied_embeddings,
    )  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    ids = torch.randint(0, shape.vocab, (1, prompt))
    prefill_s, decode_s = [], []
    with torch.inference_mode():
        model(ids[:, :8])  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            out = model(ids, use_cache=True)
            prefill_s.append(time.perf_counter() - start)
            cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
            start = time.perf_counter()
            for _ in range(new_tokens):
                out = model(token, past_key_values=cache, use_cache=True)
                cache, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
            decode_s.append((time.perf_counter() - start) / new_tokens)
    n_params = sum(p.numel() for p in model.parameters())
    return {"params": n_params, "prefill_s": float(np.min(prefill_s)), "decode_s": float(np.min(decode_s))}


PARAMETERS = {
    "QOE_TOKENS_PER_S": Real(1.0, 100.0),
    "QOE_TTFT_S": Real(0.1, 10.0),
    "INTERACTIVE_TOKENS_PER_S": Real(minimum=1.0),
    "STREAM_MODEL": Choice(*(m.name for m in REAL_MODELS)),
    "LOAD": Real(0.01, 0.95),
    "HEAVY_LOAD": Real(0.01, 0.95),
    "STRESS_LOAD": Real(1.0, 5.0),
    "USERS": Int(1, 20),
}
"""The chapter's parameters besides ``SCALE`` and ``SEED`` (its notebook's ``parameters`` cell), declared once:
the notebook checks them with :func:`llmtheory.params.check_parameters`, the command line before it runs."""
