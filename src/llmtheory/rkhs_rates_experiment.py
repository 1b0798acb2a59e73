"""The experiments of the rkhs_rates chapter, apart from the method in :mod:`llmtheory.rkhs_rates`.

Each experiment returns a tidy table (one row per fit) for the notebook to plot: the rates over n for each loss
and smoothness, the robustness to heavy-tailed noise, the bias–variance split, the paper's own simulation design
(its official R code's targets and grid), then the estimates with intervals and the rules' outcomes that the
claims rest on, and the chapter's summaries and figures.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from .claims import Control, Estimate, all_of, at_least, at_most, within
from .rkhs_rates import (
    KERNELS,
    LOSSES,
    ROBUST_NOISES,
    Loss,
    fit_all_losses,
    fourier_target,
    irls,
    isotropic_matern_gram,
    l2_error,
    noise,
    predicted_heavy_tail_ratio,
    rate_exponent,
    ridge_errors,
    robust_gcv,
    spectral,
    tensor_matern_gram,
    tensor_slope_with_log,
)
from .seeding import make_rng
from .stats import loglog_slope_with_stderr


def _uniform_design(seed: int, n: int, dim: int, *keys) -> np.ndarray:
    return make_rng(seed, "design", *keys, n, dim).uniform(size=(n, dim))


def _test_points(seed: int, dim: int, size: int = 1000) -> np.ndarray:
    """A grid on [0, 1] in d = 1, a fixed uniform sample of [0, 1]^d otherwise (for ‖f̂ − f₀‖²_{L²})."""
    if dim == 1:
        return np.linspace(0, 1, size)[:, None]
    return make_rng(seed, "test points", dim).uniform(size=(size, dim))


@threadpool_limits.wrap(limits=1)  # chapters run side by side: one BLAS thread each
def rates_experiment(
    seed: int,
    ns,
    smoothnesses,
    replicates: int,
    lambdas,
    *,
    sigma: float = 0.5,
    dim: int = 1,
    kernels=("isotropic",),
    length_scale: float = 1.0,
) -> pd.DataFrame:
    """Squared-loss f̂ with λ by GCV and, as baselines, with the oracle λ and with λ *fixed* at the value GCV
    chose at the smallest n (a rule without λ → 0: the control of the rate claim), on uniform designs of
    every size n, for targets of every smoothness t; same design and noise for every t and kernel."""
    test = _test_points(seed, dim)
    targets_on_test = {t: fourier_target(test, t) for t in smoothnesses}
    rows = []
    for rep in tqdm(range(replicates), desc=f"replicates (d = {dim})"):
        fixed: dict[tuple[str, float], int] = {}  # (kernel, t) → index of GCV's λ at the smallest n
        for n in sorted(ns):
            X = _uniform_design(seed, n, dim, "rates", rep)
            eps = noise(make_rng(seed, "rates noise", rep, n, dim), n, "gaussian", sigma)
            for kernel in kernels:
                gram = partial(KERNELS[kernel], length_scale=length_scale)
                spec, cross = spectral(gram(X)), gram(test, X)
                for t in smoothnesses:
                    y, f_test = fourier_target(X, t) + eps, targets_on_test[t]
                    path = robust_gcv(spec, y, Loss("squared"), lambdas)
                    errors = ridge_errors(spec, y, lambdas, cross, f_test)
                    fixed.setdefault((kernel, t), path.best_index)
                    rows.append(
                        dict(
                            dim=dim,
                            kernel=kernel,
                            smoothness=t,
                            n=n,
                            replicate=rep,
                            gcv_error=l2_error(spec, path.best, cross, f_test),
                            oracle_error=float(errors.min()),
                            fixed_lambda_error=float(errors[fixed[(kernel, t)]]),
                            gcv_lambda=path.best.lam,
                            oracle_lambda=lambdas[int(errors.argmin())],
                        )
                    )
    return pd.DataFrame(rows)


@threadpool_limits.wrap(limits=1)  # chapters run side by side: one BLAS thread each
def robustness_experiment(
    seed: int,
    ns,
    smoothness: float,
    replicates: int,
    lambdas,
    *,
    sigma: float = 0.5,
    length_scale: float = 1.0,
    noises=ROBUST_NOISES,
) -> pd.DataFrame:
    """The four losses of ``fit_all_losses`` on the same data under each noise law of ``noises``."""
    test = _test_points(seed, 1)
    f_test = fourier_target(test, smoothness)
    rows = []
    for rep in tqdm(range(replicates), desc="replicates (robustness)"):
        for n in ns:
            X = _uniform_design(seed, n, 1, "robust", rep)
            spec = spectral(isotropic_matern_gram(X, length_scale=length_scale))
            cross = isotropic_matern_gram(test, X, length_scale=length_scale)
            for kind in noises:
                y = fourier_target(X, smoothness) + noise(make_rng(seed, "robust", kind, rep, n), n, kind, sigma)
                for loss, fit in fit_all_losses(spec, y, lambdas).items():
                    rows.append(
                        dict(
                            noise=kind,
                            loss=loss,
                            n=n,
                            replicate=rep,
                            lam=fit.lam,
                            iterations=fit.iterations,
                            error=l2_error(spec, fit, cross, f_test),
                        )
                    )
    return pd.DataFrame(rows)


GCV_LAMBDAS = np.logspace(-10, 0, 31)
GCV_TUNED = "least squares, λ by GCV"


@threadpool_limits.wrap(limits=1)  # chapters run side by side: one BLAS thread each
def bias_variance_experiment(
    seed: int,
    n: int,
    smoothnesses,
    replicates: int,
    lambdas,
    *,
    sigma: float = 0.5,
    huber_c: float = 1.345,
    length_scale: float = 1.0,
    gcv_lambdas=GCV_LAMBDAS,
) -> pd.DataFrame:
    """Monte-Carlo bias² and variance of f̂_λ, the two terms of eq. ``rkhs_rates-eq-decomposition`` (squared and
    Huber loss, fixed λ, fixed design, fresh Gaussian noise per replicate, the same noise draws for every target),
    integrated over [0, 1]: variance = mean_x Var_r f̂_r(x), bias² = mean_x (mean_r f̂_r(x) − f₀(x))² − variance / R,
    and the bias² of the noiseless fit (exact for least squares, which is linear in y). ``attrs`` holds the spread
    across targets (``variance_spread``) of Huber's variance and, as a control, of least squares with λ
    chosen by GCV over ``gcv_lambdas`` in each replicate (a linear smoother whose λ, hence variance, depends
    on f₀)."""
    test = _test_points(seed, 1)
    X = _uniform_design(seed, n, 1, "bias-variance")
    spec = spectral(isotropic_matern_gram(X, length_scale=length_scale))
    cross = isotropic_matern_gram(test, X, length_scale=length_scale)
    noises = [noise(make_rng(seed, "bias-variance", r), n, "gaussian", sigma) for r in range(replicates)]
    losses = {"least squares": Loss("squared"), "Huber": Loss("huber", huber_c * sigma)}
    rows, curves_by = [], {}
    for t in tqdm(smoothnesses, desc="targets (bias-variance)"):
        f_design, f_test = fourier_target(X, t), fourier_target(test, t)
        for name, loss in losses.items():
            for lam in lambdas:
                curves = np.array(
                    [
                        cross @ spec.representer_coefficients(irls(spec, f_design + eps, lam, loss).coef)
                        for eps in noises
                    ]
                )
                curves_by[(name, lam, t)] = curves
                variance = float(curves.var(axis=0, ddof=1).mean())
                bias2 = float(np.mean((curves.mean(axis=0) - f_test) ** 2)) - variance / replicates
                noiseless = cross @ spec.representer_coefficients(irls(spec, f_design, lam, loss).coef)
                rows.append(
                    dict(
                        loss=name,
                        smoothness=t,
                        lam=lam,
                        variance=variance,
                        bias2=bias2,
                        noiseless_bias2=float(np.mean((noiseless - f_test) ** 2)),
                    )
                )
        curves_by[(GCV_TUNED, 0.0, t)] = np.array(
            [
                cross
                @ spec.representer_coefficients(
                    robust_gcv(spec, f_design + eps, Loss("squared"), gcv_lambdas).best.coef
                )
                for eps in noises
            ]
        )
    table = pd.DataFrame(rows)
    rng = make_rng(seed, "bias-variance bootstrap")
    table.attrs["variance_spread"] = variance_spread(curves_by, "Huber", rng)
    table.attrs["gcv_variance_spread"] = variance_spread(curves_by, GCV_TUNED, rng)
    return table


def variance_spread(curves_by: dict, loss: str, rng: np.random.Generator, n_boot: int = 400) -> Estimate:
    """max over λ of (largest / smallest integrated variance across targets) for ``loss``, with a 95%
    bootstrap interval over noise replicates (the same resampled replicates for every target and λ, since
    the targets share their noise draws). ``curves_by[(loss, λ, t)]`` is replicates × grid."""
    keys = [k for k in curves_by if k[0] == loss]
    lambdas, targets = sorted({k[1] for k in keys}), sorted({k[2] for k in keys})
    replicates = curves_by[keys[0]].shape[0]

    def statistic(idx):
        variances = np.array(
            [[curves_by[(loss, lam, t)][idx].var(axis=0, ddof=1).mean() for t in targets] for lam in lambdas]
        )
        return float(np.max(variances.max(axis=1) / variances.min(axis=1)))

    boots = [statistic(rng.integers(0, replicates, replicates)) for _ in range(n_boot)]
    value = statistic(np.arange(replicates))
    low, high = np.quantile(boots, [0.025, 0.975])
    return Estimate(value, min(low, value), max(high, value))


# ----------------------------------------------------------------------------------------------------
# The paper's own simulation design (Simulation_d1.R, Simulation_d2.R of the official code).

PAPER_LOSSES = ("least squares", "LAD", "Huber")


def paper_target(X: np.ndarray, beta: float, n_terms: int = 50) -> np.ndarray:
    """The official code's targets, exponent a = 2β + 2/3: f₀(x) = Σ_{k≤50} k^{−a} cos 2πkx in d = 1 and
    f₀(x) = Σ_{j,k≤50} (jk)^{−a} sin 2πjx₁ sin 2πkx₂ in d = 2 (a product of two sine series). Not normalised."""
    k = np.arange(1, n_terms + 1)
    amplitude = k ** -(2 * beta + 2 / 3)
    if X.shape[1] == 1:
        return np.cos(2 * np.pi * np.outer(X[:, 0], k)) @ amplitude
    if X.shape[1] == 2:
        return np.prod([np.sin(2 * np.pi * np.outer(X[:, j], k)) @ amplitude for j in (0, 1)], axis=0)
    raise ValueError(f"the paper's targets are for d = 1 or 2, not d = {X.shape[1]}")


def paper_grid(dim: int) -> np.ndarray:
    """The official code's evaluation grids: 300 points on [0, 1]; 50 × 50 on [0, 1]²."""
    if dim == 1:
        return np.linspace(0, 1, 300)[:, None]
    axis = np.linspace(0, 1, 50)
    return np.array([(a, b) for b in axis for a in axis])


@threadpool_limits.wrap(limits=1)  # chapters run side by side: one BLAS thread each
def paper_design_experiment(seed: int, replicates: int, betas, lambdas, *, n: int = 200, dims=(1, 2)) -> pd.DataFrame:
    """The official simulation: n = 200 uniform points, y = f₀(x) + ε with ε standard Gaussian or Student t₂
    (scale 1), Matérn-5/2 (length-scale 1) in d = 1 and its tensor product in d = 2, least squares, LAD
    and Huber with λ by robust GCV; the MSE on the grid. One design and one draw of each noise per replicate
    is shared by the three β (common random numbers; the official code draws afresh for every β)."""
    rows = []
    for rep in tqdm(range(replicates), desc="replicates (paper design)"):
        for dim in dims:
            X, grid = _uniform_design(seed, n, dim, "paper", rep), paper_grid(dim)
            gram = isotropic_matern_gram if dim == 1 else tensor_matern_gram
            spec, cross = spectral(gram(X)), gram(grid, X)
            for kind in ("gaussian", "t2"):
                eps = noise(make_rng(seed, "paper noise", kind, rep, dim), n, kind, 1.0)
                for beta in betas:
                    fits = fit_all_losses(spec, paper_target(X, beta) + eps, lambdas, losses=PAPER_LOSSES)
                    f_grid = paper_target(grid, beta)
                    for loss, fit in fits.items():
                        mse = l2_error(spec, fit, cross, f_grid)
                        rows.append(dict(dim=dim, beta=beta, noise=kind, loss=loss, replicate=rep, mse=mse))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------
# The quantities the chapter's claims rest on: estimates with intervals, and the rules' outcomes.


def slope_estimate(results: pd.DataFrame, value: str, confidence: float = 0.95) -> Estimate:
    """The log–log slope of the geometric mean over replicates of ``value`` against n (equal to the mean of
    the per-replicate slopes) with a Student-t interval from their spread (``loglog_slope_with_stderr``).
    The figures plot the same geometric mean (``plot_error_against_n``)."""
    from scipy import stats

    table = results.pivot_table(index="replicate", columns="n", values=value)
    slope, se = loglog_slope_with_stderr(table.columns.to_numpy(float), table.to_numpy())
    return Estimate.from_stderr(slope, se, z=float(stats.t.ppf(0.5 + confidence / 2, len(table) - 1)))


def per_replicate_slopes(results: pd.DataFrame, value: str) -> pd.Series:
    """The log–log slope of ``value`` against n for each replicate (indexed by replicate)."""
    table = results.pivot_table(index="replicate", columns="n", values=value)
    slopes = np.polyfit(np.log(table.columns.to_numpy(float)), np.log(table.to_numpy()).T, 1)[0]
    return pd.Series(slopes, index=table.index)


def paired_slope_difference(results: pd.DataFrame, value: str, other: str, confidence: float = 0.95) -> Estimate:
    """Mean over replicates of (slope of ``value`` − slope of ``other``) on the same data, with a Student-t
    interval: the paired comparison of two tunings of one estimator."""
    from scipy import stats

    diff = per_replicate_slopes(results, value) - per_replicate_slopes(results, other)
    z = float(stats.t.ppf(0.5 + confidence / 2, len(diff) - 1))
    return Estimate.from_stderr(float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff))), z=z)


def rate_claim(rates: pd.DataFrame, tolerance: float) -> dict:
    """The one-dimensional rate claim (eq. ``rkhs_rates-eq-rate``). Rule, for every t: GCV's slope within
    ``tolerance`` of −2t/(2t+1) (95% interval) and steeper than the slope of λ fixed at GCV's choice at the smallest
    n (paired per-replicate difference GCV − fixed below 0, 95% interval). Control: the fixed-λ estimator (no
    λ → 0) under the rule's first clause alone: its paired clause would be the negation of the claim's, so a control
    judged on it could never pass while the claim does, and "does not discriminate" would be unreachable by
    construction."""
    groups = dict(tuple(rates.groupby("smoothness")))

    def near_theory(value):
        return [within(slope_estimate(g, value), -rate_exponent(t, 1), tolerance) for t, g in groups.items()]

    steeper = [at_most(paired_slope_difference(g, "gcv_error", "fixed_lambda_error"), 0.0) for g in groups.values()]
    return dict(
        ours="GCV slopes "
        + ", ".join(
            f"t={t}: {slope_estimate(g, 'gcv_error'):.2f}, minus fixed λ "
            f"{paired_slope_difference(g, 'gcv_error', 'fixed_lambda_error'):.2f} (theory {-rate_exponent(t, 1):.2f})"
            for t, g in groups.items()
        ),
        holds=all_of(*near_theory("gcv_error"), *steeper),
        control=Control(
            "λ fixed at GCV's choice at the smallest n, slope within the tolerance of theory (the paired clause "
            "would be the claim's own clause negated)",
            ours=", ".join(f"t={t}: {slope_estimate(g, 'fixed_lambda_error'):.2f}" for t, g in groups.items()),
            holds=all_of(*near_theory("fixed_lambda_error")),
        ),
    )


def paired_noise_difference(robust: pd.DataFrame, loss: str, noise_kind: str, confidence: float = 0.95) -> Estimate:
    """Mean over replicates of (slope under ``noise_kind`` − slope under Gaussian noise) for one loss, with a
    Student-t interval: the two noises share every design, so the pairing removes the design's part of the
    spread and the common offset of both slopes from the asymptotic rate (the pre-asymptotic regime)."""
    from scipy import stats

    own = robust[robust.loss == loss]
    diff = per_replicate_slopes(own[own.noise == noise_kind], "error") - per_replicate_slopes(
        own[own.noise == "gaussian"], "error"
    )
    z = float(stats.t.ppf(0.5 + confidence / 2, len(diff) - 1))
    return Estimate.from_stderr(float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff))), z=z)


def robust_rate(robust: pd.DataFrame, smoothness: float, tolerance: float, noise_kind: str = "cauchy") -> dict:
    """The robust-rate claim: for each robust loss, its slope under ``noise_kind`` minus its own slope under
    Gaussian noise (:func:`paired_noise_difference`) within ``tolerance`` of 0; the control is least squares
    under the same rule. Testable only if every robust loss's interval is narrower than the tolerance (a
    half-width above it cannot decide the rule either way)."""
    theory = -rate_exponent(smoothness, 1)
    losses = [loss for loss in LOSSES if loss in set(robust.loss)]
    diffs = {loss: paired_noise_difference(robust, loss, noise_kind) for loss in losses}
    heavy = {
        loss: slope_estimate(robust[(robust.loss == loss) & (robust.noise == noise_kind)], "error") for loss in losses
    }
    robust_losses = [loss for loss in losses if loss != "least squares"]
    widest = max((diffs[loss].high - diffs[loss].low) / 2 for loss in robust_losses)
    ls = diffs["least squares"]
    return dict(
        ours=", ".join(f"{loss} {heavy[loss]:.2f}, minus Gaussian {diffs[loss]:+.2f}" for loss in robust_losses)
        + f" (theory {theory:.2f}); widest half-width {widest:.2f}",
        holds=all_of(*(within(diffs[loss], 0.0, tolerance) for loss in robust_losses)),
        control=Control(
            "least squares, same data",
            ours=f"slope {heavy['least squares']:.2f}, minus Gaussian {ls:+.2f}",
            holds=within(ls, 0.0, tolerance),
        ),
        testable=bool(widest < tolerance),
    )


def tensor_testable(smoothnesses, dims, ns, tolerance: float, half_widths=None) -> bool:
    """Whether a slope fit over ``ns`` can tell the tensor-product rate from the isotropic one: for some
    (d, t), Lin's rate with its log factor (``tensor_slope_with_log``, our reconstruction) is *steeper* than the
    isotropic exponent −2t/(2t+d) by more than the rule's tolerance, and (given ``half_widths``, the measured
    slope intervals' half-widths keyed by (d, t)) the interval of that slope is narrower than the tolerance.
    Otherwise the two kernels are predicted to give the same finite-n slope, or the run cannot resolve it."""
    for d in dims:
        for t in smoothnesses:
            advantage = -rate_exponent(t, d) - tensor_slope_with_log(t, d, ns)  # > 0: the tensor slope is steeper
            precise = half_widths is None or half_widths[(d, t)] < tolerance
            if advantage > tolerance and precise:
                return True
    return False


def tensor_claim(dims: pd.DataFrame, smoothnesses, ns, tolerance: float) -> dict:
    """The tensor-product claim: for every (d, t) the tensor slope within ``tolerance`` of Lin's rate with its
    log factor over ``ns``; control: the isotropic kernel under the same rule. Testable only where the two
    predictions differ by more than the tolerance (``tensor_testable``)."""
    slopes = {key: slope_estimate(group, "gcv_error") for key, group in dims.groupby(["dim", "smoothness", "kernel"])}
    cells = sorted({(d, t) for d, t, _ in slopes})
    predicted = {(d, t): tensor_slope_with_log(t, d, ns) for d, t in cells}

    def rule(kernel):
        return all_of(*(within(slopes[(d, t, kernel)], predicted[(d, t)], tolerance) for d, t in cells))

    def text(kernel):
        return "; ".join(f"d={d},t={t}: {slopes[(d, t, kernel)]:.2f}" for d, t in cells)

    advantage = max(-rate_exponent(t, d) - predicted[(d, t)] for d, t in cells)
    half = {(d, t): (slopes[(d, t, "tensor")].high - slopes[(d, t, "tensor")].low) / 2 for d, t in cells}
    return dict(
        ours=f"tensor slopes {text('tensor')}; largest predicted advantage of the tensor slope over the isotropic "
        f"one over n = {list(ns)}: {advantage:.2f}; slope interval half-widths "
        f"{min(half.values()):.2f}–{max(half.values()):.2f}",
        holds=rule("tensor"),
        control=Control("isotropic kernel, same data", ours=text("isotropic"), holds=rule("isotropic")),
        testable=tensor_testable(smoothnesses, sorted({d for d, _ in cells}), ns, tolerance, half),
    )


def tensor_level_claim(dims: pd.DataFrame, confidence: float = 0.95) -> dict:
    """At the largest d and n of the run, for every t: the geometric mean over replicates of the tensor
    kernel's error over the isotropic kernel's on the same data (paired), with a Student-t interval on the
    mean log ratio. Rule: at most 1 for every t (the tensor-product estimator is the more accurate one)."""
    from scipy import stats

    top = dims[(dims.dim == dims.dim.max()) & (dims.n == dims.n.max())]
    ratios = {}
    for t, group in top.groupby("smoothness"):
        wide = group.pivot_table(index="replicate", columns="kernel", values="gcv_error")
        logs = np.log(wide["tensor"] / wide["isotropic"])
        half = float(stats.t.ppf(0.5 + confidence / 2, len(logs) - 1) * logs.std(ddof=1) / np.sqrt(len(logs)))
        ratios[t] = Estimate(*np.exp([logs.mean(), logs.mean() - half, logs.mean() + half]).tolist())
    return dict(
        ours=f"tensor / isotropic error at d = {top.dim.max()}, n = {top.n.max()}: "
        + ", ".join(f"t={t}: {r:.2f}" for t, r in ratios.items()),
        holds=all_of(*(at_most(r, 1.0) for r in ratios.values())),
    )


def ratio_of_means(numerator, denominator, rng: np.random.Generator, n_boot: int = 1000) -> Estimate:
    """mean(numerator) / mean(denominator) with a 95% paired bootstrap interval over replicates."""
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    idx = rng.integers(0, len(numerator), (n_boot, len(numerator)))
    boots = numerator[idx].mean(axis=1) / denominator[idx].mean(axis=1)
    value = numerator.mean() / denominator.mean()
    low, high = np.quantile(boots, [0.025, 0.975])
    return Estimate(float(value), float(min(low, value)), float(max(high, value)))


def heavy_tail_ratios(paper: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Per (d, β, loss): MSE under t₂ / MSE under Gaussian noise, with a bootstrap interval (the two noises
    share the design of each replicate, so the resampling is paired)."""
    rows = []
    for (dim, beta, loss), group in paper.groupby(["dim", "beta", "loss"]):
        wide = group.pivot_table(index="replicate", columns="noise", values="mse")
        rng = make_rng(seed, "paper bootstrap", dim, beta, loss)
        rows.append(dict(dim=dim, beta=beta, loss=loss, ratio=ratio_of_means(wide["t2"], wide["gaussian"], rng)))
    return pd.DataFrame(rows)


PAPER_BAND = (0.8, 1.25)  # ratio / prediction counted as "as predicted" (a two-sided tolerance, symmetric in log)


def ratio_to_prediction(paper: pd.DataFrame, loss: str, predictions: dict, seed: int, n_boot: int = 1000) -> Estimate:
    """The geometric mean over the (d, β) cells of (MSE ratio t₂ / Gaussian) / ``predictions[β]`` for one loss,
    with a 95% bootstrap interval that resamples replicates jointly (a replicate's designs and noise are shared
    by its cells, so the cells are not independent)."""
    cells = []  # per (d, β): the MSEs under each noise, replicate by replicate, and the prediction
    for (_, beta), group in paper[paper.loss == loss].groupby(["dim", "beta"]):
        wide = group.pivot_table(index="replicate", columns="noise", values="mse")
        cells.append((wide["t2"].to_numpy(), wide["gaussian"].to_numpy(), predictions[beta]))

    def statistic(index):  # index: replicates (1-d) or bootstrap resamples of them (2-d)
        logs = [np.log(t2[index].mean(-1) / gaussian[index].mean(-1) / predicted) for t2, gaussian, predicted in cells]
        return np.exp(np.mean(logs, axis=0))

    replicates = len(cells[0][0])
    boots = statistic(make_rng(seed, "paper geometric mean", loss).integers(0, replicates, (n_boot, replicates)))
    value = float(statistic(np.arange(replicates)))
    low, high = np.quantile(boots, [0.025, 0.975])
    return Estimate(value, float(min(low, value)), float(max(high, value)))


def paper_design_rule(paper: pd.DataFrame, seed: int) -> dict:
    """For LAD and Huber, :func:`ratio_to_prediction` against its own prediction
    (:func:`predicted_heavy_tail_ratio`) inside :data:`PAPER_BAND` on its interval; control: least squares
    under the same rule with the larger robust prediction of each β (its own asymptotic variance is infinite
    under t₂)."""
    betas = sorted(set(paper.beta))
    own = {
        loss: ratio_to_prediction(paper, loss, {b: predicted_heavy_tail_ratio(loss, b) for b in betas}, seed)
        for loss in ("LAD", "Huber")
    }
    largest = {b: max(predicted_heavy_tail_ratio(loss, b) for loss in ("LAD", "Huber")) for b in betas}
    ls = ratio_to_prediction(paper, "least squares", largest, seed)

    def rule(estimate):
        return all_of(at_least(estimate, PAPER_BAND[0]), at_most(estimate, PAPER_BAND[1]))

    return dict(
        ours="geometric mean over (d, β) of ratio / prediction: " + ", ".join(f"{k} {v:.2f}" for k, v in own.items()),
        holds=all_of(*(rule(v) for v in own.values())),
        control=Control("least squares, against the larger robust prediction", ours=f"{ls:.2f}", holds=rule(ls)),
    )


# ----------------------------------------------------------------------------------------------------
# Summaries and figures for the chapter.


def slope_table(results: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Per group: the log–log slope of ``value`` against n (``loglog_slope_with_stderr``) and its standard error."""
    rows = []
    for key, group in results.groupby(by):
        table = group.pivot_table(index="replicate", columns="n", values=value)
        slope, se = loglog_slope_with_stderr(table.columns.to_numpy(float), table.to_numpy())
        rows.append(dict(zip(by, key, strict=True)) | {"slope": slope, "slope_se": se})
    return pd.DataFrame(rows)


def plot_error_against_n(
    ax, results: pd.DataFrame, value: str, label: str, color, theory: float | None = None, **style
) -> None:
    """Geometric mean of the error over replicates (the mean whose log–log slope ``slope_estimate`` reports)
    against n on log–log axes, error bars ×/÷ exp(one standard error of the mean log); with ``theory``, a
    dotted line of slope −theory through the first point."""
    summary = np.log(results[value]).groupby(results["n"]).agg(["mean", "sem"]).fillna(0.0)
    ns, centre = summary.index.to_numpy(float), np.exp(summary["mean"].to_numpy())
    spread = np.exp(summary["sem"].to_numpy())
    yerr = [centre - centre / spread, centre * spread - centre]
    ax.errorbar(ns, centre, yerr=yerr, label=label, color=color, capsize=3, **style)
    if theory is not None:
        ax.plot(ns, centre[0] * (ns / ns[0]) ** -theory, ":", color=color, lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(ns, [f"{n:.0f}" for n in ns])
    ax.xaxis.set_minor_formatter(NullFormatter())
