"""On the Smallness of the Large Language Models Scaling Exponents (Succi, Coveney, Hansen, arXiv 2606.24504).

The paper argues from the published scaling laws; this module holds those laws as sourced data and the
tools to check the argument numerically, top to bottom in the order of the chapter:

1. the published fits (Kaplan et al. 2020; Hoffmann et al. 2022; Epoch's replication, Besiroglu et al. 2024);
2. the compute-optimal allocation of the law ``L = E + A/N^α + B/D^β`` and its compute exponent
   ``γ = αβ/(α+β)``, derived with sympy;
3. the cost (compute, energy) of lowering the reducible loss, against the Monte Carlo exponent ½;
4. the pedestal argument: fits with and without the floor ``E``, by Huber loss on log loss as the
   replication did, with bootstrap intervals, on synthetic points drawn from a published law (or a user's CSV);
5. a scaling law measured here: tiny GPT-2 models of growing width on a synthetic Markov corpus whose
   irreducible loss (its entropy rate) is known exactly;
6. the roughness analogy: fractional Brownian motion of Hurst exponent H, its structure functions, and the
   error exponent of approximants of growing capacity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sympy as sp
from scipy.optimize import minimize
from scipy.special import huber

from .claims import ASSUMED, MEASURED, Estimate, Test, within
from .params import Choice, File, ParameterError, Real

MONTE_CARLO_EXPONENT = 0.5
"""Monte Carlo error falls as N^{-1/2}: a 10× smaller error needs 100× the samples (the paper's reference)."""

# ---------------------------------------------------------------------------------------------------------
# 1. The published laws, as data with their sources
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChinchillaLaw:
    """Eq. ``scaling_exponents-eq-chinchilla``: the parametric law ``L(N, D) = E + A / N^α + B / D^β`` (Hoffmann et
    al. 2022, eq. 2).

    ``N`` is the parameter count, ``D`` the training tokens, ``L`` the loss in nats per token, ``E`` the
    irreducible loss (the paper's "pedestal").
    """

    name: str
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str
    status: str

    def loss(self, n_params, n_tokens):
        """Hoffmann et al. eq. 2 (eq. ``scaling_exponents-eq-chinchilla``) at ``(N, D)``."""
        return (
            self.E
            + self.A / np.asarray(n_params, float) ** self.alpha
            + self.B / np.asarray(n_tokens, float) ** self.beta
        )

    @property
    def gamma(self) -> float:
        """The compute exponent of the reducible loss on the compute-optimal frontier, eq.
        ``scaling_exponents-eq-gamma``."""
        return compute_exponent(self.alpha, self.beta)


HOFFMANN_2022 = ChinchillaLaw(
    name="Hoffmann et al. 2022 (Approach 3)",
    E=math.exp(0.5267228),
    A=math.exp(6.0073404),
    B=math.exp(6.0179186),
    alpha=0.33917084,
    beta=0.2849083,
    source="unrounded values in Epoch's analyzing-chinchilla notebook (rounded: 1.69, 406.4, 410.7, 0.34, 0.28)",
    status="verified",
)

EPOCH_2024 = ChinchillaLaw(
    name="Besiroglu et al. 2024 (Epoch replication)",
    E=math.exp(0.5973),
    A=math.exp(6.169),
    B=math.exp(7.670),
    alpha=0.3473,
    beta=0.3672,
    source="Epoch's analyzing-chinchilla notebook fit (ln E = 0.5973, ln A = 6.169, ln B = 7.670)",
    status="verified",
)

EPOCH_2024_PAPER = ChinchillaLaw(
    name="Besiroglu et al. 2024 (values as printed)",
    E=1.82,
    A=482.01,
    B=2085.43,
    alpha=0.3478,
    beta=0.3658,
    source="arXiv 2404.10102, as reconstructed in the research note",
    status="reconstructed, not confirmed",
)

CHINCHILLA_LAWS: tuple[ChinchillaLaw, ...] = (HOFFMANN_2022, EPOCH_2024, EPOCH_2024_PAPER)

KAPLAN_2020_EXPONENTS: dict[str, float] = {"alpha_N": 0.076, "alpha_D": 0.095, "alpha_C_min": 0.050}
"""Kaplan et al. 2020 pure power laws L ∝ X^{-α_X} (no floor). Status: reconstructed (standard values),
not checked against the paper here."""


def published_laws_table() -> pd.DataFrame:
    """Every published law of this module, one row each, with its compute exponent, source and status."""
    rows = [
        {
            "law": law.name,
            "E": law.E,
            "A": law.A,
            "B": law.B,
            "alpha": law.alpha,
            "beta": law.beta,
            "gamma (compute)": law.gamma,
            "status": law.status,
            "source": law.source,
        }
        for law in CHINCHILLA_LAWS
    ]
    rows.append(
        {
            "law": "Kaplan et al. 2020 (pure power laws)",
            "E": 0.0,
            "A": np.nan,
            "B": np.nan,
            "alpha": KAPLAN_2020_EXPONENTS["alpha_N"],
            "beta": KAPLAN_2020_EXPONENTS["alpha_D"],
            "gamma (compute)": KAPLAN_2020_EXPONENTS["alpha_C_min"],
            "status": "reconstructed, standard values",
            "source": "α_N = 0.076, α_D = 0.095, α_C^min = 0.050 (research note)",
        }
    )
    return pd.DataFrame(rows).set_index("law")


# ---------------------------------------------------------------------------------------------------------
# 2. Compute-optimal allocation (Hoffmann et al. 2022, eq. 4 and appendix D.2), derived with sympy
# ---------------------------------------------------------------------------------------------------------


def compute_exponent(alpha: float, beta: float) -> float:
    """Eq. ``scaling_exponents-eq-gamma``: γ = αβ/(α+β), the reducible loss on the compute-optimal frontier falls as
    C^{-γ}."""
    return alpha * beta / (alpha + beta)


def derive_compute_optimal() -> dict[str, sp.Expr]:
    """Minimise ``E + A N^{-α} + B D^{-β}`` subject to ``C = 6 N D`` symbolically: derives eqs.
    ``scaling_exponents-eq-allocation`` and ``scaling_exponents-eq-gamma``.

    With ``D = C/(6N)``, the first-order condition ``N ∂L/∂N = 0`` balances the two marginal gains,
    ``αA N^{-α} = βB D^{-β}``, which is linear in ``ln N``. Returns the sympy expressions of ``N_opt(C)``,
    ``D_opt(C)``, the reducible loss at the optimum, its exponent in ``C``, the first-order condition evaluated at
    ``N_opt`` (zero), and the closed forms of the research note (after Hoffmann et al. eq. 4),
    ``N_opt = G (C/6)^{β/(α+β)}``, ``D_opt = G^{-1} (C/6)^{α/(α+β)}``, ``G = (αA/(βB))^{1/(α+β)}``.
    """
    A, B, alpha, beta, C, N = sp.symbols("A B alpha beta C N", positive=True)
    log_n = sp.Symbol("n", real=True)
    D = C / (6 * N)
    reducible = A * N**-alpha + B * D**-beta
    first_order = sp.expand(N * sp.diff(reducible, N))
    model_gain, data_gain = alpha * A * N**-alpha, beta * B * D**-beta
    if sp.simplify(first_order - (data_gain - model_gain)) != 0:
        raise RuntimeError("the first-order condition is not the balance of marginal gains")
    balance = sp.expand_log(sp.log(model_gain) - sp.log(data_gain), force=True).subs(sp.log(N), log_n)
    (log_n_opt,) = sp.solve(balance, log_n)
    n_opt = sp.simplify(sp.exp(log_n_opt))
    reducible_opt = reducible.subs(N, n_opt)
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    return {
        "N_opt": n_opt,
        "D_opt": sp.simplify(D.subs(N, n_opt)),
        "reducible_opt": reducible_opt,
        "gamma": sp.simplify(-C * sp.diff(sp.log(reducible_opt), C)),
        "first_order_at_optimum": sp.simplify(first_order.subs(N, n_opt)),
        "N_opt_closed_form": G * (C / 6) ** (beta / (alpha + beta)),
        "D_opt_closed_form": (C / 6) ** (alpha / (alpha + beta)) / G,
        "symbols": (A, B, alpha, beta, C),
    }


def symbolically_equal(left: sp.Expr, right: sp.Expr) -> bool:
    """Whether two positive sympy expressions are identical (their ratio simplifies to 1, powers merged)."""
    return sp.simplify(sp.powsimp(sp.simplify(left / right), force=True)) == 1


def compute_optimal_allocation(law: ChinchillaLaw, compute):
    """Eq. ``scaling_exponents-eq-allocation``: ``(N_opt, D_opt)`` for compute ``C`` FLOP under ``law`` (closed
    form of :func:`derive_compute_optimal`)."""
    compute = np.asarray(compute, float)
    s = law.alpha + law.beta
    # G = (αA / βB)^{1/(α+β)}
    G = (law.alpha * law.A / (law.beta * law.B)) ** (1 / s)
    # N_opt = G (C/6)^{β/(α+β)}, and D_opt = C / (6 N_opt) = G^{-1} (C/6)^{α/(α+β)}
    n_opt = G * (compute / 6) ** (law.beta / s)
    return n_opt, compute / (6 * n_opt)


def frontier_loss(law: ChinchillaLaw, compute):
    """The loss on the compute-optimal frontier, ``L(N_opt(C), D_opt(C))``; its reducible part falls as ``C^{-γ}``
    (eq. ``scaling_exponents-eq-gamma``)."""
    n_opt, d_opt = compute_optimal_allocation(law, compute)
    return law.loss(n_opt, d_opt)


# ---------------------------------------------------------------------------------------------------------
# 3. What a small exponent costs: compute and energy per reduction of the reducible loss
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnergyAssumption:
    """Joules per training FLOP: hardware peak efficiency, degraded by utilisation and data-centre overhead.

    Default (research note, NVIDIA H100 SXM datasheet): 989 TFLOP/s dense BF16 at 700 W; 40 % model-FLOP
    utilisation and PUE 1.2 are our assumptions, typical of published large runs but not measured here.
    """

    peak_flop_per_s: float = 989e12
    power_w: float = 700.0
    utilisation: float = 0.40
    pue: float = 1.2

    @property
    def joule_per_flop(self) -> float:
        return self.power_w / self.peak_flop_per_s / self.utilisation * self.pue


CHINCHILLA_COMPUTE_FLOP = 5.8e23
"""Chinchilla's training compute, ≈ 6 N D with N = 70e9 and D = 1.4e12 tokens (research note: ≈ 5.8e23)."""

JOULE_PER_MWH = 3.6e9


def compute_multiplier(reduction: float, exponent: float) -> float:
    """Eq. ``scaling_exponents-eq-multiplier``: if the reducible loss falls as C^{-γ}, dividing it by ``reduction``
    costs ``reduction^{1/γ}``× compute."""
    if reduction <= 1 or exponent <= 0:
        raise ValueError("reduction must exceed 1 and the exponent must be positive")
    return reduction ** (1.0 / exponent)


def sustainability_table(
    exponents: dict[str, float],
    *,
    reductions: tuple[float, ...] = (2.0, 10.0),
    base_compute: float = CHINCHILLA_COMPUTE_FLOP,
    energy: EnergyAssumption | None = None,
) -> pd.DataFrame:
    """Compute multiplier and energy (MWh) to divide the reducible loss by each factor, starting from
    ``base_compute`` FLOP, for each named exponent (the Monte Carlo ½ is always added as the reference)."""
    energy = energy or EnergyAssumption()
    rows = []
    for name, exponent in {**exponents, "Monte Carlo (½)": MONTE_CARLO_EXPONENT}.items():
        row = {"exponent": exponent}
        for r in reductions:
            multiplier = compute_multiplier(r, exponent)
            row[f"compute × to cut {r:g}×"] = multiplier
            row[f"energy (MWh) to cut {r:g}×"] = multiplier * base_compute * energy.joule_per_flop / JOULE_PER_MWH
        rows.append({"law": name, **row})
    return pd.DataFrame(rows).set_index("law")


# ---------------------------------------------------------------------------------------------------------
# 4. The pedestal: fitting with and without the floor (Huber loss on log loss, Besiroglu et al. 2024)
# ---------------------------------------------------------------------------------------------------------

HUBER_DELTA = 1e-3
"""Hoffmann et al. and the Epoch replication minimise a Huber loss with δ = 1e-3 on log-loss residuals."""


def huber_objective(residuals: np.ndarray, delta: float = HUBER_DELTA) -> tuple[float, np.ndarray]:
    """The objective of eq. ``scaling_exponents-eq-huber``: Σ Huber_δ(r) / δ and its derivative in each residual,
    clip(r, −δ, δ) / δ. Dividing by δ does not move the minimum; it keeps the gradient of order one, so L-BFGS's
    stopping tolerances mean what they say."""
    return float(huber(delta, residuals).sum() / delta), np.clip(residuals, -delta, delta) / delta


def chinchilla_log_loss(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log L̂ = LSE(a − α log N, b − β log D, e) with θ = (a, b, e, α, β), a = ln A, b = ln B, e = ln E
    (Hoffmann et al. eq. 3; the model inside eq. ``scaling_exponents-eq-huber``, eq.
    ``scaling_exponents-eq-chinchilla`` in log space), and its Jacobian in θ."""
    a, b, e, alpha, beta = theta
    # the three terms of L in log space: ln(A/N^α), ln(B/D^β), ln E
    model_term, data_term = a - alpha * log_n, b - beta * log_d
    # ln L̂ = LSE of the three, computed without overflow
    log_pred = np.logaddexp(np.logaddexp(model_term, data_term), e)
    w_model, w_data, w_floor = np.exp(model_term - log_pred), np.exp(data_term - log_pred), np.exp(e - log_pred)
    # ∂ LSE / ∂ term = softmax weight of that term
    jac = np.stack([w_model, w_data, w_floor, -w_model * log_n, -w_data * log_d], axis=1)
    return log_pred, jac


def _huber_fit(model, theta0: np.ndarray, log_loss: np.ndarray, bounds) -> tuple[np.ndarray, float]:
    def objective(theta):
        log_pred, jac = model(theta)
        value, dvalue = huber_objective(log_pred - log_loss)
        return value, jac.T @ dvalue

    options = {"ftol": 1e-13, "gtol": 1e-9, "maxiter": 2000}
    result = minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    return result.x, float(result.fun)


def initial_grid() -> np.ndarray:
    """A coarse version of Hoffmann et al.'s grid of starting points for (a, b, e, α, β)."""
    grid = np.meshgrid(
        [0.0, 5.0, 10.0, 15.0, 20.0], [0.0, 5.0, 10.0, 15.0, 20.0], [-1.0, 0.0, 1.0], [0.2, 0.5, 1.0], [0.2, 0.5, 1.0]
    )
    return np.stack([g.ravel() for g in grid], axis=1)


def fit_chinchilla_law(
    n_params, n_tokens, loss, *, n_starts: int = 8, theta0: np.ndarray | None = None
) -> ChinchillaLaw:
    """Fit Hoffmann et al.'s eq. 2 by Huber loss (δ = 1e-3) on log loss with L-BFGS, as the replication did: eq.
    ``scaling_exponents-eq-huber``.

    The objective is evaluated on every point of :func:`initial_grid`; L-BFGS starts from the ``n_starts``
    best (or from ``theta0`` alone, which the bootstrap uses), and the lowest optimum wins.
    """
    log_n, log_d, log_loss = (np.log(np.asarray(v, float)) for v in (n_params, n_tokens, loss))

    def model(theta):
        return chinchilla_log_loss(theta, log_n, log_d)

    if theta0 is None:
        grid = initial_grid()
        a, b, e, alpha, beta = (column[:, None] for column in grid.T)  # every start at once
        log_pred = np.logaddexp(np.logaddexp(a - alpha * log_n, b - beta * log_d), e)
        scores = huber(HUBER_DELTA, log_pred - log_loss).sum(axis=1)
        starts = grid[np.argsort(scores)[:n_starts]]
    else:
        starts = [np.asarray(theta0, float)]
    bounds = [(None, None)] * 3 + [(1e-3, 5.0)] * 2
    best = min((_huber_fit(model, t, log_loss, bounds) for t in starts), key=lambda fit: fit[1])[0]
    a, b, e, alpha, beta = best
    return ChinchillaLaw(
        name="fit", E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=alpha, beta=beta, source="our fit", status="fit"
    )


@dataclass(frozen=True)
class PowerLawFit:
    """``L(x) = floor + coefficient · (x / x_ref)^{-exponent}``; ``floor = 0`` for the pure power law."""

    coefficient: float
    exponent: float
    floor: float
    x_ref: float

    def loss(self, x):
        return self.floor + self.coefficient * (np.asarray(x, float) / self.x_ref) ** -self.exponent

    def multiplier_to_reach(self, x0: float, target_loss: float) -> float:
        """How many times ``x0`` it takes to reach ``target_loss``: ∞ if the target is at or below the floor."""
        if target_loss <= self.floor:
            return math.inf
        x = self.x_ref * ((target_loss - self.floor) / self.coefficient) ** (-1.0 / self.exponent)
        return float(x / x0)


def fit_power_law(x, loss, *, with_floor: bool, start: PowerLawFit | None = None) -> PowerLawFit:
    """Fit ``log L = log(E + K (x/x_ref)^{-γ})`` (or ``E = 0``) by Huber loss on log loss with L-BFGS (the
    one-variable form of eq. ``scaling_exponents-eq-huber``; with the floor, the pedestal E), from a small
    grid of starts, or from ``start`` alone (the bootstrap refits from the full-data fit, in its ``x_ref``).
    ``x`` is compute, parameters or tokens; ``x_ref`` is its geometric mean."""
    x, loss = np.asarray(x, float), np.asarray(loss, float)
    x_ref = start.x_ref if start is not None else float(np.exp(np.log(x).mean()))
    log_x, log_loss = np.log(x / x_ref), np.log(loss)

    def model(theta):
        k, gamma, e = theta if with_floor else (*theta, -np.inf)
        # ln L̂ = LSE(ln K − γ ln(x/x_ref), ln E); without the floor ln E = −∞
        power_term = k - gamma * log_x
        log_pred = np.logaddexp(power_term, e)
        w_power = np.exp(power_term - log_pred)
        jac = [w_power, -w_power * log_x] + ([np.exp(e - log_pred)] if with_floor else [])
        return log_pred, np.stack(jac, axis=1)

    highest_floor = np.log(np.min(loss))
    if start is not None:
        e0 = min(np.log(start.floor), highest_floor - 1e-3) if with_floor else None
        starts = [np.array([np.log(start.coefficient), start.exponent] + ([e0] if with_floor else []))]
    elif with_floor:
        floors = highest_floor + np.log([0.5, 0.9])
        starts = [np.array([np.log(np.median(loss) - np.exp(f)), g, f]) for f in floors for g in (0.1, 0.5)]
    else:
        starts = [np.array([np.log(np.median(loss)), g]) for g in (0.05, 0.3, 1.0)]
    # the floor stays below the smallest observed loss
    bounds = [(None, None), (1e-4, 10.0)] + ([(None, highest_floor)] if with_floor else [])
    theta = min((_huber_fit(model, t, log_loss, bounds) for t in starts), key=lambda fit: fit[1])[0]
    floor = float(np.exp(theta[2])) if with_floor else 0.0
    return PowerLawFit(coefficient=float(np.exp(theta[0])), exponent=float(theta[1]), floor=floor, x_ref=x_ref)


def bootstrap_power_law(x, loss, *, start: PowerLawFit, n_boot: int, rng: np.random.Generator) -> pd.DataFrame:
    """Refit :func:`fit_power_law` (floored if ``start`` has a floor) on ``n_boot`` resamples, with replacement,
    of the points, each from the full-data fit ``start``; one row per resample."""
    x, loss = np.asarray(x, float), np.asarray(loss, float)
    rows = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(x), len(x))
        fit = fit_power_law(x[idx], loss[idx], with_floor=start.floor > 0, start=start)
        rows.append({"exponent": fit.exponent, "floor": fit.floor, "coefficient": fit.coefficient})
    return pd.DataFrame(rows)


def bootstrap_chinchilla_law(data: pd.DataFrame, *, start: ChinchillaLaw, n_boot: int, rng) -> pd.DataFrame:
    """Refit :func:`fit_chinchilla_law` on ``n_boot`` resamples of the rows of ``data`` (columns N, D, loss),
    starting from ``start`` (the full-data fit), as Besiroglu et al. did with 4000 resamples."""
    theta0 = np.log([start.A, start.B, start.E]).tolist() + [start.alpha, start.beta]
    rows = []
    for _ in range(n_boot):
        sample = data.iloc[rng.integers(0, len(data), len(data))]
        fit = fit_chinchilla_law(sample["N"], sample["D"], sample["loss"], theta0=np.array(theta0))
        rows.append({"E": fit.E, "A": fit.A, "B": fit.B, "alpha": fit.alpha, "beta": fit.beta, "gamma": fit.gamma})
    return pd.DataFrame(rows)


def percentile_interval(values, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap values."""
    lo, hi = np.percentile(np.asarray(values, float), [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def bootstrap_estimate(value: float, resamples, level: float = 0.95) -> Estimate:
    """``value`` with the percentile interval of its bootstrap ``resamples``, widened to contain ``value`` (a
    percentile interval of a skewed statistic can miss the full-data estimate)."""
    lo, hi = percentile_interval(resamples, level)
    return Estimate(float(value), min(lo, float(value)), max(hi, float(value)))


PEDESTAL_FITS: dict[str, bool] = {"pure power law": False, "power law + floor": True}
"""The two fits the pedestal argument compares: name → whether the law has a floor E."""


def pedestal_fits(
    x, loss, *, n_boot: int, seed: int, key: str
) -> tuple[dict[str, PowerLawFit], dict[str, pd.DataFrame]]:
    """Fit ``loss`` against ``x`` with and without a floor, and bootstrap both fits on the *same* resamples
    (each bootstrap draws from its own copy of the stream ``make_rng(seed, key)``), so that the two exponents
    are compared resample by resample."""
    from .seeding import make_rng

    fits = {name: fit_power_law(x, loss, with_floor=floor) for name, floor in PEDESTAL_FITS.items()}
    boots = {
        name: bootstrap_power_law(x, loss, start=fit, n_boot=n_boot, rng=make_rng(seed, key))
        for name, fit in fits.items()
    }
    return fits, boots


def exponent_estimates(fits: dict[str, PowerLawFit], boots: dict[str, pd.DataFrame]) -> dict[str, Estimate]:
    """Each fit's exponent with its 95 % bootstrap interval."""
    return {name: bootstrap_estimate(fit.exponent, boots[name]["exponent"]) for name, fit in fits.items()}


GAP_RESOLUTION = 1e-3
"""Exponent gaps below this are rounding: two fits that converge to the same law differ by less."""


def exponent_gap(
    upper: PowerLawFit, upper_boot: pd.DataFrame, lower: PowerLawFit, lower_boot: pd.DataFrame
) -> Estimate:
    """``upper``'s exponent minus ``lower``'s, with the 95 % percentile interval of the same difference taken
    resample by resample (both bootstraps must come from :func:`pedestal_fits` with the same seed and key, so that
    resample ``i`` of each is drawn from the same points: the difference is paired)."""
    paired = upper_boot["exponent"].to_numpy() - lower_boot["exponent"].to_numpy()
    return bootstrap_estimate(upper.exponent - lower.exponent, paired)


def gap_is_positive(gap: Estimate) -> Test:
    """The rule "the gap is positive" (beyond :data:`GAP_RESOLUTION`): decisive when its whole interval is."""
    holds = gap.value > GAP_RESOLUTION
    return Test(bool(holds), bool(gap.low > GAP_RESOLUTION) if holds else bool(gap.high <= GAP_RESOLUTION))


EXPONENT_TOLERANCE = 0.2
"""A fitted exponent "recovers" a reference exponent when their paired difference is within this fraction of it."""


def recovers_exponent(gap: Estimate, reference: Estimate, tolerance: float = EXPONENT_TOLERANCE) -> Test:
    """The rule |fitted − reference| ≤ ``tolerance`` · reference on the paired difference ``gap`` (from
    :func:`exponent_gap`): decisive when the gap's whole interval is inside (or outside) that band."""
    return within(gap, 0.0, tolerance * reference.value)


def evidence_of_runs(synthetic: bool) -> dict:
    """The kind of evidence a fit to the training runs gives, as ``ledger.check`` keywords: runs drawn from a
    published floored law only return the law's own consequences (``assumed``); a user's real runs are
    measured, and the floored law can fail to describe them."""
    if synthetic:
        return {"kind": ASSUMED}
    return {
        "kind": MEASURED,
        "can_fail_because": "real runs need not follow a floored power law: the fits can disagree",
    }


def pedestal_table(
    fits: dict[str, PowerLawFit], boots: dict[str, pd.DataFrame], *, base_compute: float
) -> pd.DataFrame:
    """The pedestal comparison, one row per frontier fit: exponent with its 95 % bootstrap interval, the floor,
    the compute multiplier to halve the loss above the floor (eq. multiplier), and the multiplier to lower the
    total loss by 10 % from ``base_compute`` (∞ when that target lies below the fitted floor)."""
    rows = {}
    for name, fit in fits.items():
        lo, hi = percentile_interval(boots[name]["exponent"])
        rows[name] = {
            "exponent": fit.exponent,
            "exponent 95% low": lo,
            "exponent 95% high": hi,
            "floor E": fit.floor,
            "compute × to halve loss above floor": compute_multiplier(2.0, fit.exponent),
            "compute × for 10% lower total loss": fit.multiplier_to_reach(
                base_compute, 0.9 * float(fit.loss(base_compute))
            ),
        }
    return pd.DataFrame(rows).T


def isoflop_points(law: ChinchillaLaw, *, budgets, sizes_per_budget: int, noise_sigma: float, rng) -> pd.DataFrame:
    """Synthetic training runs: for each compute budget C, ``sizes_per_budget`` model sizes log-spaced from
    N_opt/8 to 8·N_opt, D = C/(6N), loss from ``law`` times log-normal noise of standard deviation
    ``noise_sigma`` (an IsoFLOP sweep in the style of Hoffmann et al.'s Approach 2; the noise is our choice)."""
    rows = []
    for c in np.asarray(budgets, float):
        n_opt, _ = compute_optimal_allocation(law, c)
        for n in n_opt * np.logspace(-np.log10(8), np.log10(8), sizes_per_budget):
            rows.append({"N": n, "D": c / (6 * n), "C": c})
    data = pd.DataFrame(rows)
    noise = noise_sigma * rng.standard_normal(len(data)) if noise_sigma > 0 else 0.0
    data["loss"] = law.loss(data["N"], data["D"]) * np.exp(noise)
    return data


def compute_frontier(data: pd.DataFrame, *, n_bins: int) -> pd.DataFrame:
    """The lowest loss in each of ``n_bins`` log-spaced compute bins: the empirical compute-optimal frontier."""
    edges = np.logspace(np.log10(data["C"].min()), np.log10(data["C"].max()) * (1 + 1e-12), n_bins + 1)
    bins = np.digitize(data["C"], edges[1:-1])
    best = data.loc[data.groupby(bins)["loss"].idxmin()]
    return best.sort_values("C").reset_index(drop=True)


def load_loss_csv(path: str | Path, *, parameter: str = "LOSS_CSV") -> pd.DataFrame:
    """Read a user's training runs: columns ``N, D, loss`` (or ``N, C, loss``), or Epoch's
    ``Model Size, Training FLOP, loss``. Returns columns ``N, D, C, loss``; a bad file raises
    :class:`ParameterError` naming ``parameter`` and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"{parameter}={str(path)!r}: no such file; pass a CSV with columns N, D, loss")
    try:
        data = pd.read_csv(path)
    except Exception as error:  # noqa: BLE001 - any parse error becomes a parameter error
        raise ParameterError(f"{parameter}={str(path)!r} is not a readable CSV: {error}") from error
    data = data.rename(columns={"Model Size": "N", "Training FLOP": "C", "Training Tokens": "D"})
    if "loss" not in data or "N" not in data or not ({"D", "C"} & set(data.columns)):
        raise ParameterError(
            f"{parameter}={str(path)!r} has columns {list(data.columns)}; it needs N, D (or C), loss "
            "(or Epoch's 'Model Size', 'Training FLOP', 'loss')"
        )
    if "D" not in data:
        data["D"] = data["C"] / (6 * data["N"])
    if "C" not in data:
        data["C"] = 6 * data["N"] * data["D"]
    data = data[["N", "D", "C", "loss"]].dropna()
    values = data.to_numpy(float)
    if len(data) < 10 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ParameterError(f"{parameter}={str(path)!r} needs at least 10 rows of finite, positive N, D, loss")
    return data.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------------
# 5. A scaling law measured here: tiny GPT-2 models on a Markov corpus with a known entropy rate
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarkovCorpus:
    """A first-order Markov language over ``vocab`` tokens: ``transitions[a]`` is the distribution of the token
    after ``a``. Its entropy rate is the exact irreducible loss (the pedestal) of any model.

    The logit matrix has singular values decaying as a power law ``k^{-decay}``, so a model whose width
    limits the rank it can represent meets a loss that falls with width: a controllable toy of a scaling law.
    A small generator private to this chapter; it could be promoted to the shared ``toyworld``.
    """

    transitions: np.ndarray

    @classmethod
    def random(cls, vocab: int, *, decay: float, scale: float, rng: np.random.Generator) -> MarkovCorpus:
        """Logits ``scale · U diag(k^{-decay}) Vᵀ`` with random orthogonal ``U, V``; rows soft-maxed."""
        left, _ = np.linalg.qr(rng.standard_normal((vocab, vocab)))
        right, _ = np.linalg.qr(rng.standard_normal((vocab, vocab)))
        spectrum = scale * np.arange(1, vocab + 1, dtype=float) ** -decay
        logits = (left * spectrum) @ right.T * np.sqrt(vocab)
        probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return cls(probs / probs.sum(axis=-1, keepdims=True))

    @property
    def vocab(self) -> int:
        return self.transitions.shape[0]

    def stationary(self, iterations: int = 1000) -> np.ndarray:
        """The stationary distribution π of the chain, by power iteration."""
        pi = np.full(self.vocab, 1.0 / self.vocab)
        for _ in range(iterations):
            pi = pi @ self.transitions
        return pi

    def entropy_rate(self) -> float:
        """H = Σ_a π(a) H(next | a) in nats per token."""
        p = self.transitions
        return float(self.stationary() @ -(p * np.log(p)).sum(axis=-1))

    def sample(self, n_sequences: int, length: int, rng: np.random.Generator) -> np.ndarray:
        """``n_sequences`` token sequences of ``length``, started from the stationary distribution."""
        tokens = np.empty((n_sequences, length), dtype=np.int64)
        tokens[:, 0] = rng.choice(self.vocab, size=n_sequences, p=self.stationary())
        cumulative = np.cumsum(self.transitions, axis=-1)
        for t in range(1, length):
            cdf = cumulative[tokens[:, t - 1]]
            tokens[:, t] = np.minimum((cdf < rng.random((n_sequences, 1))).sum(axis=1), self.vocab - 1)
        return tokens


@dataclass(frozen=True)
class TrainingSpec:
    """One tiny GPT-2 run: width ``n_embd`` (the knob we scale), fixed depth, steps and batch."""

    n_embd: int
    n_layer: int = 1
    n_head: int = 1
    steps: int = 200
    batch_size: int = 32
    seq_len: int = 32
    learning_rate: float = 3e-3


def build_gpt2(spec: TrainingSpec, vocab: int):
    """A ``transformers`` GPT2LMHeadModel of the spec's width (no dropout)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=vocab,
        n_positions=spec.seq_len,
        n_embd=spec.n_embd,
        n_layer=spec.n_layer,
        n_head=spec.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=None,  # GPT-2's defaults (50256) lie outside our vocabulary
        eos_token_id=None,
    )
    model = GPT2LMHeadModel(config)
    model.loss_type = "ForCausalLM"  # the class name does not map to a loss in transformers 5; this is what it uses
    return model


def non_embedding_parameters(model) -> int:
    """Kaplan et al.'s N: parameters excluding the token and position embeddings (the head is tied)."""
    embeddings = {id(p) for p in (model.transformer.wte.weight, model.transformer.wpe.weight)}
    return sum(p.numel() for p in model.parameters() if id(p) not in embeddings)


def heldout_loss(model, tokens: np.ndarray) -> float:
    """Mean cross-entropy (nats) of next-token prediction on held-out sequences; the chain's entropy rate is
    its floor."""
    import torch

    with torch.no_grad():
        inputs = torch.as_tensor(tokens)
        logits = model(input_ids=inputs).logits[:, :-1]
        targets = inputs[:, 1:]
        return float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)))


def train_tiny_gpt2(spec: TrainingSpec, corpus: MarkovCorpus, heldout: np.ndarray, *, seed: int) -> dict:
    """Train one model on fresh samples every step (no repeated data: the run is capacity- and step-limited),
    AdamW with cosine decay; return its size and held-out loss."""
    import torch

    from .seeding import make_rng

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = build_gpt2(spec, corpus.vocab)
    optimiser = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=spec.steps)
    rng = make_rng(seed, "markov-train", spec.n_embd)
    model.train()
    for _ in range(spec.steps):
        batch = torch.as_tensor(corpus.sample(spec.batch_size, spec.seq_len, rng))
        loss = model(input_ids=batch, labels=batch).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    model.eval()
    return {
        "n_embd": spec.n_embd,
        "seed": seed,
        "N": non_embedding_parameters(model),
        "loss": heldout_loss(model, heldout),
    }


# ---------------------------------------------------------------------------------------------------------
# 6. Roughness: fractional Brownian motion, structure functions, and approximation exponents
# ---------------------------------------------------------------------------------------------------------


def fractional_brownian_motion(n: int, hurst: float, rng: np.random.Generator) -> np.ndarray:
    """A fBm path B_H at n+1 equispaced points of [0, 1] (B_H(0) = 0), exact in law, by circulant embedding of
    the fractional Gaussian noise covariance ½(|k+1|^{2H} − 2|k|^{2H} + |k−1|^{2H}) (Davies and Harte)."""
    if not 0 < hurst < 1:
        raise ValueError("the Hurst exponent must lie in (0, 1)")
    k = np.arange(n + 1, dtype=float)
    covariance = 0.5 * ((k + 1) ** (2 * hurst) - 2 * k ** (2 * hurst) + np.abs(k - 1) ** (2 * hurst))
    circulant_row = np.concatenate([covariance, covariance[-2:0:-1]])
    eigenvalues = np.clip(np.fft.fft(circulant_row).real, 0, None)
    m = len(circulant_row)
    noise = rng.standard_normal(m) + 1j * rng.standard_normal(m)
    gaussian_noise = np.fft.fft(np.sqrt(eigenvalues / m) * noise)[:n].real
    return np.concatenate([[0.0], np.cumsum(gaussian_noise)]) * n ** (-hurst)


def structure_function(path: np.ndarray, lags, order: float = 2.0) -> np.ndarray:
    """S_p(r) = ⟨|u(x + r) − u(x)|^p⟩ at integer lags r (turbulence's structure function)."""
    return np.array([np.mean(np.abs(path[r:] - path[:-r]) ** order) for r in lags])


def scaling_exponent(x, y) -> float:
    """Slope of log y against log x by least squares: the exponent of y ∝ x^{slope}."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def piecewise_linear_error(path: np.ndarray, n_knots: int) -> float:
    """Mean squared error of the least-squares piecewise-linear fit with ``n_knots`` equispaced knots on [0, 1]:
    a model with ``n_knots`` parameters learning the path (hat-function basis)."""
    x = np.linspace(0.0, 1.0, len(path))
    knots = np.linspace(0.0, 1.0, n_knots)
    basis = np.stack([np.interp(x, knots, np.eye(n_knots)[j]) for j in range(n_knots)], axis=1)
    coefficients, *_ = np.linalg.lstsq(basis, path, rcond=None)
    return float(np.mean((basis @ coefficients - path) ** 2))


def roughness_exponents(
    hursts, knot_counts, *, n_points: int, n_paths: int, seed: int, n_boot: int = 200
) -> pd.DataFrame:
    """For each Hurst exponent: the structure-function estimate of H (ζ_2 = 2H) and the exponent of the
    approximation error against capacity (MSE ∝ K^{-2H} expected), from the errors averaged over ``n_paths``
    paths, with a 95 % interval from ``n_boot`` bootstrap resamples of the paths."""
    from .seeding import make_rng

    rows = []
    lags = np.unique(np.logspace(0, np.log10(n_points // 16), 12).astype(int))
    for hurst in hursts:
        rng = make_rng(seed, "fbm", int(round(1000 * hurst)))
        paths = [fractional_brownian_motion(n_points, hurst, rng) for _ in range(n_paths)]
        s2 = np.mean([structure_function(p, lags) for p in paths], axis=0)
        per_path = np.array([[piecewise_linear_error(p, k) for k in knot_counts] for p in paths])
        errors = per_path.mean(axis=0)
        resampled = per_path[rng.integers(0, n_paths, (n_boot, n_paths))].mean(axis=1)
        exponent = bootstrap_estimate(
            -scaling_exponent(knot_counts, errors), [-scaling_exponent(knot_counts, e) for e in resampled]
        )
        rows.append(
            {
                "H": hurst,
                "zeta_2 (measured)": scaling_exponent(lags, s2),
                "error exponent (measured)": exponent.value,
                "error exponent 95% low": exponent.low,
                "error exponent 95% high": exponent.high,
                "2H (theory)": 2 * hurst,
                "errors": errors,
            }
        )
    return pd.DataFrame(rows).set_index("H")


# ---------------------------------------------------------------------------------------------------------
# Exercise checker
# ---------------------------------------------------------------------------------------------------------


def check_tenfold_per_halving_exponent(answer: float) -> bool:
    """Exercise 1: the exponent γ at which halving the reducible loss costs exactly 10× compute,
    2^{1/γ} = 10, i.e. γ = ln 2 / ln 10 ≈ 0.301. Returns whether ``answer`` is within 1e-3 of it."""
    return abs(float(answer) - math.log(2) / math.log(10)) < 1e-3


PARAMETERS = {
    "LAW": Choice("epoch", "hoffmann"),
    "NOISE_SIGMA": Real(0.0, 0.2),
    "LOSS_CSV": File("a CSV file of runs"),
}
"""The chapter's parameters besides ``SCALE`` and ``SEED`` (its notebook's ``parameters`` cell), declared once:
the notebook checks them with :func:`llmtheory.params.check_parameters`, the command line before it runs."""
