"""Regularised M-estimation in a reproducing kernel Hilbert space (Kalogridis, arXiv 2606.22993).

The estimator of the paper is

    f̂ = argmin_{f ∈ H}  (1/n) Σ_i ρ(y_i − f(x_i)) + λ ‖f‖²_H             (rkhs_rates-eq-estimator)

for a loss ρ that may be convex (squared, Huber, absolute / quantile) or bounded and non-convex (Tukey's
biweight). By the representer theorem the minimiser lies in span{k(x_i, ·)}, so with the Gram matrix
K = U diag(e) Uᵀ and features A = U diag(√e) (K = A Aᵀ) the problem becomes a finite ridge problem in
d ∈ ℝʳ, f = A d, ‖f‖²_H = ‖d‖². We solve it by iteratively reweighted least squares (IRLS; ADMM for the
quantile loss), choose λ by the robust generalised cross-validation of the paper's code, and measure rates
against the standard theory:

    ‖f̂ − f₀‖² ≍ n^{−sb/(sb+1)}   (eigenvalues μ_j ≍ j^{−b}, f₀ in [H]^s)        (rkhs_rates-eq-rate)

which for a Sobolev space H^m on [0,1]^d (b = 2m/d) and a target of smoothness t = s·m is n^{−2t/(2t+d)},
and for the tensor-product (mixed-smoothness) space is n^{−2t/(2t+1)} up to powers of log n.

Sections: kernels (sklearn), the spectral form of the representer theorem, losses and their IRLS working
problems, the IRLS fit, robust GCV, targets and noise for the simulations, the rate formulas and the asymptotic
efficiency of the robust losses. The chapter's experiments are in :mod:`llmtheory.rkhs_rates_experiment`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
from scipy import linalg
from sklearn.gaussian_process.kernels import Matern

from .params import Real

# ----------------------------------------------------------------------------------------------------
# Kernels: isotropic Matérn (a Sobolev kernel: its RKHS on [0,1]^d is H^{ν+d/2}) and its tensor product.


def isotropic_matern_gram(
    X: np.ndarray, Z: np.ndarray | None = None, *, nu: float = 2.5, length_scale: float = 1.0
) -> np.ndarray:
    """k(x, z) = Matérn_ν(‖x − z‖ / ℓ) on ℝ^d (sklearn's ``Matern``); RKHS norm-equivalent to H^{ν+d/2}."""
    return Matern(length_scale=length_scale, nu=nu)(X, Z)


def tensor_matern_gram(
    X: np.ndarray, Z: np.ndarray | None = None, *, nu: float = 2.5, length_scale: float = 1.0
) -> np.ndarray:
    """k(x, z) = Π_j Matérn_ν(|x_j − z_j| / ℓ): the tensor-product kernel whose RKHS is the Sobolev
    space of dominating mixed smoothness ν + 1/2 (the paper's tensor-product Sobolev spaces)."""
    Z = X if Z is None else Z
    gram = np.ones((X.shape[0], Z.shape[0]))
    for j in range(X.shape[1]):
        gram *= Matern(length_scale=length_scale, nu=nu)(X[:, [j]], Z[:, [j]])
    return gram


KERNELS = {"isotropic": isotropic_matern_gram, "tensor": tensor_matern_gram}


# ----------------------------------------------------------------------------------------------------
# The representer theorem in spectral coordinates.


@dataclass(frozen=True)
class Spectral:
    """Eq. ``rkhs_rates-eq-representer``: the Gram matrix K = U diag(e) Uᵀ of the design, kept to eigenvalues
    e_j > rank_tol · max(e).

    ``features`` A = U diag(√e) gives f = A d on the design and ‖f‖²_H = ‖d‖² for f = Σ α_i k(x_i, ·),
    d = diag(√e) Uᵀ α: the representer theorem turns eq. ``rkhs_rates-eq-estimator`` into a ridge problem in
    d ∈ ℝʳ.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray

    @property
    def n(self) -> int:
        return self.eigenvectors.shape[0]

    @cached_property
    def features(self) -> np.ndarray:
        # A = U diag(√e), so K = A Aᵀ
        return self.eigenvectors * np.sqrt(self.eigenvalues)

    def hat_trace(self, lam: float) -> float:
        """tr S_λ with S_λ = K (K + nλ I)^{-1} (eq. ``rkhs_rates-eq-gcv``), the effective degrees of freedom of the
        smoother."""
        return float(np.sum(self.eigenvalues / (self.eigenvalues + self.n * lam)))

    def representer_coefficients(self, coef: np.ndarray) -> np.ndarray:
        """α with f = Σ_i α_i k(x_i, ·) from the feature coefficients d (α = U diag(e^{-1/2}) d)."""
        return self.eigenvectors @ (coef / np.sqrt(self.eigenvalues))


def spectral(gram: np.ndarray, rank_tol: float = 1e-12) -> Spectral:
    """Eigendecompose the Gram matrix (``numpy.linalg.eigh``) and drop eigenvalues below ``rank_tol``
    times the largest: they are round-off for smooth kernels and change f̂ by at most ~rank_tol/λ."""
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    keep = eigenvalues > rank_tol * eigenvalues[-1]
    return Spectral(eigenvalues[keep][::-1].copy(), eigenvectors[:, keep][:, ::-1].copy())


# ----------------------------------------------------------------------------------------------------
# Losses. Every ρ is scaled so that ρ(r) ≈ r² near zero (squared, Huber, Tukey), and its IRLS working
# problem at residuals r⁰ is a weighted least-squares problem  Σ w_i (z_i − f_i)²  that majorises
# Σ ρ(y_i − f_i) up to a constant (an MM step), so every IRLS step decreases the objective.


@dataclass(frozen=True)
class Loss:
    """ρ for eq. ``rkhs_rates-eq-estimator``: ``squared`` r², ``huber`` (threshold c), ``quantile``
    2·r(τ − 1{r<0}) (τ = ½ is the absolute loss |r|), ``tukey`` biweight (c²/3)(1 − (1 − (r/c)²)³) for |r| ≤ c,
    bounded by c²/3."""

    name: str
    threshold: float = 1.0
    tau: float = 0.5

    def __post_init__(self):
        if self.name not in ("squared", "huber", "quantile", "tukey"):
            raise ValueError(f"loss {self.name!r}: choose squared, huber, quantile or tukey")

    def rho(self, r: np.ndarray) -> np.ndarray:
        c = self.threshold
        if self.name == "squared":
            return r**2
        if self.name == "huber":
            return np.where(np.abs(r) <= c, r**2, 2 * c * np.abs(r) - c**2)
        if self.name == "quantile":
            return 2 * r * (self.tau - (r < 0))
        u = np.minimum((r / c) ** 2, 1.0)
        return c**2 / 3 * (1 - (1 - u) ** 3)

    def working_problem(self, r: np.ndarray, floor: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
        """Weights w and response shift δ (z = y + δ) of the IRLS step at residuals r (eq. ``rkhs_rates-eq-irls``).

        For ρ(r) = g(r²) with g concave (squared, Huber, Tukey) w = ρ'(r)/(2r) and δ = 0. For the quantile
        loss, Hunter & Lange's (2000) majoriser gives w = 1/(2|r|) and δ = (2τ − 1)|r|; |r| is floored.
        """
        c = self.threshold
        # w_i = ρ'(r_i) / (2 r_i) of eq. rkhs_rates-eq-irls: 1 for squared loss (kernel ridge regression in one step)
        if self.name == "squared":
            return np.ones_like(r), np.zeros_like(r)
        # Huber: min(1, c/|r|)
        if self.name == "huber":
            return np.minimum(1.0, c / np.maximum(np.abs(r), floor)), np.zeros_like(r)
        # Tukey: (1 − (r/c)²)² inside [−c, c], 0 beyond
        if self.name == "tukey":
            return np.clip(1 - (r / c) ** 2, 0.0, None) ** 2, np.zeros_like(r)
        # quantile: Hunter and Lange's majoriser, w = 1/(2|r|) and shift δ = (2τ − 1)|r|
        a = np.maximum(np.abs(r), floor)
        return 1 / (2 * a), (2 * self.tau - 1) * a


# ----------------------------------------------------------------------------------------------------
# IRLS.


@dataclass
class Fit:
    """A fitted f̂: values on the design, feature coefficients d, λ, and the objective per IRLS step."""

    fitted: np.ndarray
    coef: np.ndarray
    lam: float
    objectives: list[float] = field(default_factory=list)

    @property
    def iterations(self) -> int:
        return len(self.objectives) - 1


def objective(spec: Spectral, y: np.ndarray, coef: np.ndarray, lam: float, loss: Loss) -> float:
    """Eq. ``rkhs_rates-eq-representer``: eq. ``rkhs_rates-eq-estimator`` evaluated at f = A d:
    (1/n) Σ ρ(y_i − f(x_i)) + λ ‖d‖²."""
    return float(np.mean(loss.rho(y - spec.features @ coef)) + lam * coef @ coef)


def weighted_ridge(spec: Spectral, z: np.ndarray, weights: np.ndarray, lam: float) -> np.ndarray:
    """One IRLS step, eq. ``rkhs_rates-eq-irls``: argmin_d (1/n) Σ w_i (z_i − (A d)_i)² + λ ‖d‖², i.e.
    (Aᵀ W A + nλ I) d = Aᵀ W z,
    solved by Cholesky (``scipy.linalg.cho_factor``). With w ≡ 1 it is kernel ridge regression."""
    if np.all(weights == 1.0):  # AᵀA = diag(e): the closed form of kernel ridge regression
        return np.sqrt(spec.eigenvalues) * (spec.eigenvectors.T @ z) / (spec.eigenvalues + spec.n * lam)
    A = spec.features
    Aw = A * weights[:, None]
    # (Aᵀ W A + nλ I) d = Aᵀ W (y + δ), z = y + δ
    system = A.T @ Aw + spec.n * lam * np.eye(A.shape[1])
    return linalg.cho_solve(linalg.cho_factor(system), Aw.T @ z)


def irls(
    spec: Spectral,
    y: np.ndarray,
    lam: float,
    loss: Loss,
    *,
    init: np.ndarray | None = None,
    max_iter: int = 200,
    tol: float = 1e-7,
) -> Fit:
    """Minimise eq. ``rkhs_rates-eq-estimator`` by iteratively reweighted least squares (eq. ``rkhs_rates-eq-irls``)
    from feature coefficients ``init`` (default: the kernel ridge fit). Each step solves the working problem of
    ``Loss.working_problem`` at the current residuals; it stops when the relative decrease of the objective is
    below ``tol``."""
    coef = weighted_ridge(spec, y, np.ones_like(y), lam) if init is None else init
    objectives = [objective(spec, y, coef, lam, loss)]
    for _ in range(0 if loss.name == "squared" and init is None else max_iter):
        # w_i = ρ'(r_i)/(2 r_i) and δ at the current residuals r
        weights, shift = loss.working_problem(y - spec.features @ coef)
        # d_new: the weighted ridge problem
        coef = weighted_ridge(spec, y + shift, weights, lam)
        objectives.append(objective(spec, y, coef, lam, loss))
        if objectives[-2] - objectives[-1] <= tol * max(objectives[-2], 1e-300):
            break
    return Fit(spec.features @ coef, coef, lam, objectives)


def quantile_admm(
    spec: Spectral,
    y: np.ndarray,
    lam: float,
    loss: Loss,
    *,
    init: np.ndarray | None = None,
    max_iter: int = 300,
    tol: float = 1e-5,
    check_every: int = 10,
) -> Fit:
    """Minimise eq. ``rkhs_rates-eq-estimator`` for the quantile loss by ADMM (Boyd et al. 2011, §6) on the split
    z = y − A d:

        d ← argmin λ‖d‖² + (c/2)‖A d − (y − z + u)‖²   (elementwise, since AᵀA = diag(e)),
        z ← prox of ρ_τ/(nc) at y − A d + u            (an asymmetric soft threshold),
        u ← u + y − A d − z,

    with the penalty c rebalanced against the primal and dual residuals every ``check_every`` steps. It has
    the same minimiser as IRLS with Hunter and Lange's majoriser (a unit test checks it), but a step costs
    three matrix–vector products instead of a Cholesky factorisation, and it does not slow down as
    residuals reach zero (IRLS needs hundreds of steps for LAD). ``objectives`` holds the start and the end.
    Our choice for speed: the paper's code uses a smoothed IRLS."""
    n, A, U, e = spec.n, spec.features, spec.eigenvectors, spec.eigenvalues
    coef = np.zeros(len(e)) if init is None else init.copy()
    start = objective(spec, y, coef, lam, loss)
    fitted = A @ coef
    z, u = y - fitted, np.zeros(n)
    c = 1.0 / (n * max(mad_scale(y), 1e-8))
    low, high, scale = -2 * (1 - loss.tau), 2 * loss.tau, tol * np.linalg.norm(y)
    steps = 0
    while steps < max_iter:
        steps += 1
        coef = c * np.sqrt(e) * (U.T @ (y - z + u)) / (2 * lam + c * e)
        fitted = A @ coef
        v, kappa, z_old = y - fitted + u, 1 / (n * c), z
        z = np.where(v > high * kappa, v - high * kappa, np.where(v < low * kappa, v - low * kappa, 0.0))
        u = u + (y - fitted - z)
        if steps % check_every:
            continue
        primal, dual = np.linalg.norm(y - fitted - z), c * np.linalg.norm(np.sqrt(e) * (U.T @ (z - z_old)))
        if primal <= scale and dual <= scale * c:
            break
        if primal > 10 * dual:
            c, u = 2 * c, u / 2
        elif dual > 10 * primal:
            c, u = c / 2, 2 * u
    return Fit(fitted, coef, lam, [start] + [np.nan] * (steps - 1) + [objective(spec, y, coef, lam, loss)])


def fit_loss(spec: Spectral, y: np.ndarray, lam: float, loss: Loss, *, init=None, max_iter: int = 200) -> Fit:
    """f̂_λ for any loss: ADMM for the quantile loss (``quantile_admm``), IRLS (``irls``) for the others."""
    if loss.name == "quantile":
        return quantile_admm(spec, y, lam, loss, init=init)
    return irls(spec, y, lam, loss, init=init, max_iter=max_iter)


# ----------------------------------------------------------------------------------------------------
# λ by robust generalised cross-validation (the paper's code): mean ρ(residuals) / (1 − tr S_λ / n)².


@dataclass
class GCVPath:
    lambdas: np.ndarray
    scores: np.ndarray
    best: Fit

    @property
    def best_index(self) -> int:
        return int(np.argmin(self.scores))


def robust_gcv(
    spec: Spectral,
    y: np.ndarray,
    loss: Loss,
    lambdas: np.ndarray,
    *,
    init: np.ndarray | None = None,
    max_iter: int = 200,
) -> GCVPath:
    """Eq. ``rkhs_rates-eq-gcv``: fit f̂_λ for every λ (largest first, each IRLS warm-started at the previous fit)
    and keep the λ that minimises GCV(λ) = (1/n) Σ ρ(y_i − f̂_λ(x_i)) / (1 − tr S_λ / n)², S_λ = K (K + nλ I)^{-1}."""
    order = np.argsort(lambdas)[::-1]
    scores = np.empty(len(lambdas))
    fits: dict[int, Fit] = {}
    for i in order:
        fit = fit_loss(spec, y, lambdas[i], loss, init=init, max_iter=max_iter)
        init = fit.coef if loss.name != "squared" else None
        # GCV(λ) = (1/n) Σ ρ(y_i − f̂_λ(x_i)) / (1 − tr S_λ / n)²
        scores[i] = np.mean(loss.rho(y - fit.fitted)) / (1 - spec.hat_trace(lambdas[i]) / spec.n) ** 2
        fits[i] = fit
    return GCVPath(np.asarray(lambdas), scores, fits[int(np.argmin(scores))])


def mad_scale(residuals: np.ndarray) -> float:
    """The normalised median absolute deviation 1.4826 · med|r − med r| (consistent at the Gaussian)."""
    return float(1.4826 * np.median(np.abs(residuals - np.median(residuals))))


LOSSES = ("least squares", "Huber", "LAD", "Tukey")


def fit_all_losses(
    spec: Spectral,
    y: np.ndarray,
    lambdas: np.ndarray,
    *,
    huber_c: float = 1.345,
    tukey_c: float = 4.685,
    losses=LOSSES,
) -> dict[str, Fit]:
    """The estimators of ``losses`` with λ by (robust) GCV: least squares; LAD (τ = ½); Huber and Tukey with
    thresholds c·σ̂, σ̂ the MAD of the LAD residuals. Both paths start from the LAD fit at the largest λ and are
    then warm-started along the path (``robust_gcv``), so Tukey's non-convex fit at smaller λ starts from its
    own fit at the previous λ, not from the LAD fit."""
    fits = {"least squares": robust_gcv(spec, y, Loss("squared"), lambdas).best}
    # LAD first: its residuals give the robust scale σ̂ of the Huber and Tukey thresholds, and their start
    lad = robust_gcv(spec, y, Loss("quantile", tau=0.5), lambdas).best
    scale = mad_scale(y - lad.fitted)
    fits["Huber"] = robust_gcv(spec, y, Loss("huber", huber_c * scale), lambdas, init=lad.coef).best
    fits["LAD"] = lad
    if "Tukey" in losses:
        fits["Tukey"] = robust_gcv(spec, y, Loss("tukey", tukey_c * scale), lambdas, init=lad.coef).best
    return {loss: fits[loss] for loss in losses}


# ----------------------------------------------------------------------------------------------------
# Simulation design: targets of known smoothness, noise laws, and the L² error of a fit.


def fourier_target(X: np.ndarray, smoothness: float, n_terms: int = 200) -> np.ndarray:
    """f₀(x) = Π_j g(x_j) / ‖g‖, g(x) = Σ_{k ≤ K} k^{−α} cos(2πkx), α = t + 1/2, normalised so that
    ‖f₀‖_{L²[0,1]^d} = 1. On the circle g lies in H^{t'} iff t' < t (Σ k^{2t'} k^{−2α} < ∞). On the interval
    [0, 1] (our kernels are not periodic) what matters is the singularity of the periodic function at x = 0:
    x^{α−1} (x^{α−1} log x for odd α), which gives the same smoothness t, *except* for even integers α, where
    g is a Bernoulli polynomial on [0, 1] (α = 2: π²(x² − x + 1/6)), infinitely smooth there; such t are
    refused. In d ≥ 2 the product has dominating mixed smoothness t and isotropic smoothness t."""
    alpha = smoothness + 0.5
    if float(alpha).is_integer() and int(alpha) % 2 == 0:
        raise ValueError(f"smoothness {smoothness}: t + 1/2 is an even integer, g is a polynomial on [0, 1]")
    k = np.arange(1, n_terms + 1)
    amplitude = k**-alpha
    norm = np.sqrt(np.sum(amplitude**2) / 2)
    values = np.ones(X.shape[0])
    for j in range(X.shape[1]):
        values *= np.cos(2 * np.pi * np.outer(X[:, j], k)) @ amplitude / norm
    return values


NOISES = ("gaussian", "t2", "cauchy", "contaminated")
ROBUST_NOISES = ("gaussian", "t2", "cauchy")  # the robustness experiment


def noise(rng: np.random.Generator, n: int, kind: str, sigma: float) -> np.ndarray:
    """σ·ε with ε standard Gaussian, Student t₂ (infinite variance), standard Cauchy (no mean: the sample mean
    of Cauchy noise does not average out), or a 90/10 mixture of N(0, 1) and N(0, 10²) (gross contamination).
    All are symmetric, so every loss here targets the same f₀."""
    if kind == "gaussian":
        return sigma * rng.standard_normal(n)
    if kind == "t2":
        return sigma * rng.standard_t(2, n)
    if kind == "cauchy":
        return sigma * rng.standard_cauchy(n)
    if kind == "contaminated":
        return sigma * rng.standard_normal(n) * np.where(rng.random(n) < 0.1, 10.0, 1.0)
    raise ValueError(f"noise {kind!r}: choose one of {NOISES}")


def l2_error(spec: Spectral, fit: Fit, cross_gram: np.ndarray, target_values: np.ndarray) -> float:
    """‖f̂ − f₀‖² on test points (a grid or a uniform sample): f̂(x) = Σ α_i k(x, x_i), ``cross_gram`` =
    k(test, design)."""
    return float(np.mean((cross_gram @ spec.representer_coefficients(fit.coef) - target_values) ** 2))


# ----------------------------------------------------------------------------------------------------
# Theory: rate exponents (rkhs_rates-eq-rate), and the empirical slope of log error against log n.


def rate_exponent(smoothness: float, dim: int, kernel: str = "isotropic") -> float:
    """Exponent r in ‖f̂ − f₀‖² ≍ n^{−r} (eq. ``rkhs_rates-eq-rate`` with s·b = 2t/d): 2t/(2t+d) for an isotropic
    Sobolev kernel; 2t/(2t+1) for the tensor-product kernel and a target of mixed smoothness t (log factors
    dropped)."""
    effective_dim = 1 if kernel == "tensor" else dim
    return 2 * smoothness / (2 * smoothness + effective_dim)


def tensor_slope_with_log(smoothness: float, dim: int, ns) -> float:
    """The least-squares log–log slope, over the sample sizes ``ns``, of Lin's (2000) mixed-smoothness rate
    n^{−2t/(2t+1)} (log n)^{2t(d−1)/(2t+1)}: what a finite-n fit of the tensor-product rate should show."""
    exponent = 2 * smoothness / (2 * smoothness + 1)
    log_n = np.log(np.asarray(ns, dtype=float))
    return float(np.polyfit(log_n, -exponent * log_n + exponent * (dim - 1) * np.log(log_n), 1)[0])


def ridge_errors(
    spec: Spectral, y: np.ndarray, lambdas: np.ndarray, cross_gram: np.ndarray, target_values: np.ndarray
) -> np.ndarray:
    """The true L² error of the squared-loss fit at every λ of the grid. Its minimum is the *oracle*
    baseline (not available in practice; it isolates the rate from the choice of λ)."""
    shrink = 1 / (spec.eigenvalues[:, None] + spec.n * np.asarray(lambdas)[None, :])
    alphas = spec.eigenvectors @ (shrink * (spec.eigenvectors.T @ y)[:, None])  # α_λ = (K + nλ)^{-1} y
    return np.mean((cross_gram @ alphas - target_values[:, None]) ** 2, axis=0)


@lru_cache(maxsize=32)  # a numerical integral, called once per cell of the paper's design
def asymptotic_variance_factor(loss: str, noise_kind: str, huber_k: float = 1.345) -> float:
    """The asymptotic variance of a location M-estimator under unit-scale noise: LAD 1/(4 g(0)²), g the noise
    density; Huber E ψ_c(ε)² / P(|ε| ≤ c)² with c = ``huber_k`` · σ̂, σ̂ the normalised MAD of the noise
    (as ``fit_all_losses`` sets it)."""
    from scipy import integrate, stats

    dist = {"gaussian": stats.norm(), "t2": stats.t(2)}[noise_kind]
    if loss == "LAD":
        return float(1 / (4 * dist.pdf(0) ** 2))
    c = huber_k * dist.ppf(0.75) / stats.norm.ppf(0.75)
    second_moment = integrate.quad(lambda x: min(x * x, c * c) * dist.pdf(x), -np.inf, np.inf)[0]
    return float(second_moment / (dist.cdf(c) - dist.cdf(-c)) ** 2)


def predicted_heavy_tail_ratio(loss: str, beta: float) -> float:
    """The MSE ratio t₂ / Gaussian that the asymptotic efficiency predicts on the paper's design: the variance
    factor ratio v(t₂)/v(Gaussian) enters the rate's constant as (σ²)^(2t/(2t+1)) with t = 2β + 1/6 (the
    target's coefficients k^{−(2β+2/3)} = k^{−(t+1/2)}). LAD: 1.27^(…), Huber (c = 1.345 σ̂): 1.85^(…)."""
    t = 2 * beta + 1 / 6
    factor = asymptotic_variance_factor(loss, "t2") / asymptotic_variance_factor(loss, "gaussian")
    return float(factor ** (2 * t / (2 * t + 1)))


@lru_cache(maxsize=8)  # the checker of Exercise 4 recomputes the answer cell's values
def eigenvalue_decay(dim: int, kernel: str, n: int = 1000, seed: int = 0, window=(5, 40)) -> float:
    """The fitted decay exponent b of μ_j ≍ j^{−b}, μ_j the eigenvalues of K/n on n uniform points
    (``default_rng(seed)``), from a log–log fit over window[0] ≤ j ≤ window[1] (Exercise 4)."""
    X = np.random.default_rng(seed).uniform(size=(n, dim))
    mu = np.sort(linalg.eigvalsh(KERNELS[kernel](X)))[::-1] / n  # eigenvalues only: cheaper than ``spectral``
    j = np.arange(1, len(mu) + 1)
    keep = (j >= window[0]) & (j <= window[1])
    return float(-np.polyfit(np.log(j[keep]), np.log(mu[keep]), 1)[0])


PARAMETERS = {
    "SIGMA": Real(1e-3, 10.0),
    "LENGTH_SCALE": Real(0.05, 10.0),
}
"""The chapter's parameters besides ``SCALE`` and ``SEED`` (its notebook's ``parameters`` cell), declared once:
the notebook checks them with :func:`llmtheory.params.check_parameters`, the command line before it runs."""
