"""Uniform sampling from the unit spectral-norm ball {A ∈ R^{m×n} : ||A||₂ ≤ 1} (``spectral_ball-eq-ball``).

The paper (authors and text unknown to us; only its abstract) proves that all singular values of such a
sample tend to 1 as the dimensions grow, and uses this to justify a simple approximate sampler for
LLM-sized matrices. This module implements, in the order the chapter explains them:

1. the joint density of the singular values (``spectral_ball-eq-joint``) and, for n = 2, its exact normaliser and
   E[σ_min] (sympy);
2. three exact samplers: truncating a Haar orthogonal matrix of size p = m + n + 1 (Życzkowski–Sommers), the
   same law from the first n columns of a Haar matrix (a Gaussian QR, much cheaper), the Gaussian polar
   construction X (XᵀX + YᵀY)^{-1/2} (``spectral_ball-eq-polar``), and rejection from the Frobenius ball for
   small sizes;
3. the approximate sampler (a random semi-orthogonal matrix: every σ = 1) and two naive baselines;
4. the limiting law of the singular values when m/n → c (Wachter's law for a truncated Haar matrix,
   ``spectral_ball-eq-wachter``),
   whose lower edge (c − 1)/(c + 1) shows where "all σ → 1" holds and where it does not, and the rate
   1 − E σ_min ≈ κ_n / m of the tall regime (n fixed);
5. a zeroth-order optimiser whose perturbations are drawn from the ball (the paper's motivating use).

Where the paper is silent (which exact sampler it uses, what its simple method is) the choices are ours and
are said so in the chapter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sympy as sp
from scipy import stats
from tqdm.auto import tqdm

from .claims import Estimate, Test, all_of, at_least, at_most
from .params import Int, ListOf

Sampler = Callable[[int, int, int, np.random.Generator], np.ndarray]


def _check_shape(m: int, n: int, size: int) -> None:
    for name, value in (("m", m), ("n", n), ("size", size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer")


def _tall(sample_tall: Callable[[int, int, int, np.random.Generator], np.ndarray]) -> Sampler:
    """Extend a sampler written for m ≥ n to any shape: the uniform law on the ball is transpose-invariant."""

    def sampler(m: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
        _check_shape(m, n, size)
        if m >= n:
            return sample_tall(m, n, size, rng)
        return np.swapaxes(sample_tall(n, m, size, rng), -1, -2)

    sampler.__name__ = sample_tall.__name__
    sampler.__doc__ = sample_tall.__doc__
    sampler.__wrapped__ = sample_tall
    return sampler


def haar_columns(p: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """The first n columns of `size` Haar-distributed p×p orthogonal matrices, shape (size, p, n).

    QR of a Gaussian p×n matrix, with the signs of R's diagonal moved into Q (Mezzadri 2007), is uniform on
    the Stiefel manifold; these are exactly the first n columns of a Haar matrix.
    """
    q, r = np.linalg.qr(rng.standard_normal((size, p, n)))
    # Q·sign(diag R): the QR made unique, hence Haar (without it Q's law depends on the QR routine)
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[:, None, :]


@_tall
def sample_haar_truncation(m: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Exact sampler 1: the top-left m×n block of a Haar orthogonal matrix of size p = m + n + 1, uniform on the
    ball of eq. ``spectral_ball-eq-ball``.

    The block's density is ∝ det(I − AᵀA)^{(p−m−n−1)/2} on the ball, constant when p = m + n + 1
    (Życzkowski & Sommers 2000). This version draws the full p×p Haar matrix (scipy), O(p³) per sample:
    it is the textbook construction and the expensive one.
    """
    p = m + n + 1
    full = stats.ortho_group.rvs(p, size=size, random_state=rng).reshape(size, p, p)
    return full[:, :m, :n]


@_tall
def sample_stiefel_truncation(m: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Exact sampler 1': the same block, from the first n columns of the Haar matrix only, O(p n²): uniform on the
    ball of eq. ``spectral_ball-eq-ball``."""
    # the top m rows of n Haar columns of size p = m + n + 1
    return haar_columns(m + n + 1, n, size, rng)[:, :m, :]


def _inverse_sqrt_psd(s: np.ndarray) -> np.ndarray:
    """S^{-1/2} for a stack of symmetric positive-definite matrices, by eigendecomposition."""
    eigenvalues, vectors = np.linalg.eigh(s)
    return (vectors / np.sqrt(eigenvalues)[:, None, :]) @ np.swapaxes(vectors, -1, -2)


@_tall
def sample_gaussian_polar(m: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Exact sampler 2, eq. ``spectral_ball-eq-polar``: A = X (XᵀX + YᵀY)^{-1/2}, X ~ N(0,1)^{m×n},
    Y ~ N(0,1)^{(n+1)×n}.

    Z = [X; Y] (p×n) has orthonormal polar factor Z (ZᵀZ)^{-1/2}, uniform on the Stiefel manifold, so A is its
    top m rows: the same law as the truncation samplers, from one Gram matrix instead of a QR.
    """
    x = rng.standard_normal((size, m, n))
    y = rng.standard_normal((size, n + 1, n))
    # ZᵀZ = XᵀX + YᵀY for Z = [X; Y]
    gram = np.swapaxes(x, -1, -2) @ x + np.swapaxes(y, -1, -2) @ y
    # A = X (ZᵀZ)^{-1/2}: the top m rows of Z's polar factor
    return x @ _inverse_sqrt_psd(gram)


@dataclass(frozen=True)
class RejectionResult:
    samples: np.ndarray
    accepted: int  # proposals kept, including those beyond the ``size`` returned
    proposals: int

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.proposals


def sample_rejection(m: int, n: int, size: int, rng: np.random.Generator, batch: int = 4096) -> RejectionResult:
    """Exact sampler 3: uniform proposals in the Frobenius ball of radius √min(m,n), kept when ||A||₂ ≤ 1 (eq.
    ``spectral_ball-eq-ball``).

    ||A||_F ≤ √rank · ||A||₂, so the Frobenius ball of that radius contains the spectral ball; the acceptance
    rate is the ratio of their volumes and falls off so fast with size that this only serves small shapes.
    """
    _check_shape(m, n, size)
    dim, radius = m * n, np.sqrt(min(m, n))
    kept, proposals = [], 0
    while sum(len(k) for k in kept) < size:
        direction = rng.standard_normal((batch, dim))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        proposal = (direction * radius * rng.uniform(size=(batch, 1)) ** (1 / dim)).reshape(batch, m, n)
        kept.append(proposal[np.linalg.norm(proposal, ord=2, axis=(1, 2)) <= 1.0])
        proposals += batch
    samples = np.concatenate(kept)
    return RejectionResult(samples[:size], len(samples), proposals)


@_tall
def sample_semi_orthogonal(m: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """The approximate sampler (our reading of the paper's "simple" method): a Haar semi-orthogonal m×n matrix.

    Every singular value equals 1, the value the theorem says they all converge to; the singular vectors are
    Haar, as in the exact law.
    """
    # n Haar columns of size m: σ_1 = … = σ_n = 1
    return haar_columns(m, n, size, rng)


@_tall
def sample_truncation_one_row_too_many(m: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Control (not uniform): the top m×n block of a Haar matrix of size p = m + n + 2, one more than exact sampler 1'.

    Its density is ∝ det(I − AᵀA)^{1/2} on the ball (Życzkowski & Sommers 2000): the nearest wrong member of the
    family, which the references of :func:`agreement_with_references` should reject.
    """
    return haar_columns(m + n + 2, n, size, rng)[:, :m, :]


def sample_gaussian_over_spectral_norm(m: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Naive baseline: G / ||G||₂. On the sphere ||A||₂ = 1, never inside the ball; not uniform."""
    _check_shape(m, n, size)
    g = rng.standard_normal((size, m, n))
    return g / singular_values(g)[:, :1, None]


def sample_gaussian_scaled(m: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Naive baseline: G / (√m + √n), whose largest singular value is ≈ 1 (Bai–Yin) but can exceed it."""
    _check_shape(m, n, size)
    return rng.standard_normal((size, m, n)) / (np.sqrt(m) + np.sqrt(n))


EXACT_SAMPLERS: dict[str, Sampler] = {
    "Haar truncation (full p×p)": sample_haar_truncation,
    "Haar truncation (n columns)": sample_stiefel_truncation,
    "Gaussian polar": sample_gaussian_polar,
}


def singular_values(a: np.ndarray) -> np.ndarray:
    """Singular values of a stack of matrices, shape (size, min(m, n)), in descending order.

    Computed as square roots of the eigenvalues of the small Gram matrix (n×n for m ≥ n): ~10× faster than an SVD
    for tall LLM-sized matrices, with an absolute error of about √ε ≈ 1e-8 on singular values near 0, far below
    any statistic this chapter reports.
    """
    a = np.asarray(a)
    if a.shape[-2] < a.shape[-1]:
        a = np.swapaxes(a, -1, -2)
    eigenvalues = np.linalg.eigvalsh(np.swapaxes(a, -1, -2) @ a)
    return np.sqrt(np.clip(eigenvalues, 0.0, None))[..., ::-1]


# ---- The law of the singular values -------------------------------------------------------------------


def joint_density_unnormalised(sigma: np.ndarray, m: int) -> np.ndarray:
    """Eq. ``spectral_ball-eq-joint``: ∏_{i<j} |σ_i² − σ_j²| ∏_i σ_i^{m−n} on [0, 1]^n (real case), for rows of
    ``sigma``."""
    sigma = np.atleast_2d(sigma)
    n = sigma.shape[1]
    sq = sigma**2
    vandermonde = np.prod([np.abs(sq[:, i] - sq[:, j]) for i in range(n) for j in range(i + 1, n)] or [1.0], axis=0)
    inside = np.all((sigma >= 0) & (sigma <= 1), axis=1)
    return np.where(inside, vandermonde * np.prod(sigma ** (m - n), axis=1), 0.0)


def two_column_law(m: sp.Expr | int | None = None) -> dict[str, sp.Expr]:
    """For n = 2: the normaliser Z(m) of eq. ``spectral_ball-eq-joint`` and E[σ_min], E[σ_max], integrated exactly
    by sympy.

    By symmetry Z = 2 ∫₀¹ ∫₀^{s₁} (s₁² − s₂²)(s₁ s₂)^{m−2} ds₂ ds₁. The integral is done once with k = m − 2 ≥ 0
    symbolic, then evaluated at ``m`` (a number, or the symbol m when ``m`` is None).
    """
    s1, s2 = sp.symbols("s1 s2", positive=True)
    k = sp.Symbol("k", nonnegative=True)
    kernel = (s1**2 - s2**2) * (s1 * s2) ** k  # s1 = σ_max ≥ s2 = σ_min

    def ordered_integral(f):
        inner = sp.powsimp(sp.expand(sp.integrate(sp.expand(f * kernel), (s2, 0, s1), conds="none")), force=True)
        return sp.simplify(2 * sp.integrate(inner, (s1, 0, 1), conds="none"))

    normaliser = ordered_integral(sp.Integer(1))
    law = {
        "Z": normaliser,
        "E_min": ordered_integral(s2) / normaliser,
        "E_max": ordered_integral(s1) / normaliser,
    }
    m = sp.Symbol("m", positive=True) if m is None else sp.sympify(m)
    return {name: sp.factor(sp.simplify(expr.subs(k, m - 2))) for name, expr in law.items()}


def wachter_edges(ratio: float) -> tuple[float, float]:
    """Support [σ₋, σ₊] of the limiting singular-value law (eq. ``spectral_ball-eq-wachter``) when m/n → ``ratio``
    = c ≥ 1.

    For the top m×n block of a Haar matrix of size p with n/p → α, m/p → β, the squared singular values follow
    Wachter's law on [λ₋, λ₊], λ± = (√(α(1−β)) ± √(β(1−α)))². Here p = m + n + 1, so α + β → 1, λ₊ = 1 and
    λ₋ = (β − α)², i.e. σ₋ = (c − 1)/(c + 1): the smallest singular value tends to 1 only when c → ∞.
    """
    if ratio < 1:
        raise ValueError(f"ratio={ratio!r} must be ≥ 1 (pass m/n with m ≥ n)")
    # σ₋ = √λ₋ = β − α = (c − 1)/(c + 1) and σ₊ = √λ₊ = 1, since α + β = 1
    return (ratio - 1) / (ratio + 1), 1.0


def wachter_sigma_density(sigma: np.ndarray, ratio: float) -> np.ndarray:
    """Eq. ``spectral_ball-eq-wachter``: limiting density of one singular value σ when m/n → c (no atoms since
    α + β = 1).

    f_λ(λ) = √((λ − λ₋)(λ₊ − λ)) / (2π α λ (1 − λ)) with α = 1/(1 + c); σ = √λ, so f_σ(σ) = 2σ f_λ(σ²).
    For c = 1 it is the arcsine law of λ on [0, 1] (median σ = 1/√2).
    """
    low, _ = wachter_edges(ratio)
    alpha = 1 / (1 + ratio)
    lam = np.asarray(sigma, dtype=float) ** 2
    lam_low = low**2
    inside = (lam > lam_low) & (lam < 1)
    safe = np.where(inside, lam, (lam_low + 1) / 2)  # a point of the support, so that no sqrt sees a negative
    density = np.sqrt((safe - lam_low) * (1 - safe)) / (2 * np.pi * alpha * safe * (1 - safe))
    return np.where(inside, 2 * np.sqrt(safe) * density, 0.0)


def _wachter_sigma_cdf(ratio: float, grid: int = 20001) -> tuple[np.ndarray, np.ndarray]:
    """The limiting σ law's CDF on a fine grid of σ, by the trapezoid rule.

    The substitution σ² = λ₋ + (1 − λ₋) sin²θ removes the inverse-square-root singularities at both edges.
    """
    low, high = wachter_edges(ratio)
    theta = np.linspace(0, np.pi / 2, grid)
    sigma = np.sqrt(low**2 + (1 - low**2) * np.sin(theta) ** 2)
    jacobian = (1 - low**2) * np.sin(theta) * np.cos(theta) / np.maximum(sigma, 1e-300)
    weights = wachter_sigma_density(np.clip(sigma, low + 1e-12, high - 1e-12), ratio) * jacobian
    cdf = np.concatenate([[0], np.cumsum((weights[1:] + weights[:-1]) / 2 * np.diff(theta))])
    return sigma, cdf / cdf[-1]


def wachter_sigma_quantile(q: float, ratio: float) -> float:
    """Quantile of the limiting singular-value law (inverse of its CDF, interpolated)."""
    sigma, cdf = _wachter_sigma_cdf(ratio)
    return float(np.interp(q, cdf, sigma))


def wachter_sigma_mean(ratio: float) -> float:
    """Mean of the limiting singular-value law, E σ = ∫ (1 − F(σ)) dσ + σ₋ on [σ₋, 1]."""
    sigma, cdf = _wachter_sigma_cdf(ratio)
    return float(sigma[0] + np.sum((1 - (cdf[1:] + cdf[:-1]) / 2) * np.diff(sigma)))


def tall_rate_constant(n: int, size: int, rng: np.random.Generator) -> Estimate:
    """Eq. ``spectral_ball-eq-rate``: κ_n in 1 − E σ_min = κ_n / m + O(m⁻²) for n fixed, m → ∞, by Monte Carlo,
    with its 95% interval.

    In the polar construction (eq. ``spectral_ball-eq-polar``) XᵀX/m → I, so AᵀA ≈ I − YᵀY/m and
    1 − σ_min ≈ λ_max(YᵀY)/(2m) with Y ∈ R^{(n+1)×n} standard Gaussian: κ_n = E λ_max(YᵀY) / 2. For n = 2 this is
    5/2, the closed form of :func:`two_column_law`; as n grows κ_n → 2n, the rate of the Wachter edge
    1 − (c − 1)/(c + 1) ≈ 2n/m.
    """
    _check_shape(n, n, size)
    y = rng.standard_normal((size, n + 1, n))
    return Estimate.mean_of(np.linalg.eigvalsh(np.swapaxes(y, -1, -2) @ y)[:, -1] / 2)


# ---- Comparing samplers ------------------------------------------------------------------------------


def sigma_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 distance between the pooled singular values of two stacks of matrices."""
    return float(stats.wasserstein_distance(singular_values(a).ravel(), singular_values(b).ravel()))


def ks_pvalues(samples: dict[str, np.ndarray], reference: str) -> dict[str, float]:
    """Two-sample KS p-values of σ_min and σ_max of each stack against ``samples[reference]``."""
    ref = singular_values(samples[reference])
    out = {}
    for name, stack in samples.items():
        if name == reference:
            continue
        sv = singular_values(stack)
        out[f"{name}: σ_max"] = float(stats.ks_2samp(sv[:, 0], ref[:, 0]).pvalue)
        out[f"{name}: σ_min"] = float(stats.ks_2samp(sv[:, -1], ref[:, -1]).pvalue)
    return out


def agreement_with_references(
    samplers: dict[str, Sampler],
    size: int,
    rng: np.random.Generator,
    shapes: tuple[tuple[int, int], ...] = ((3, 2), (2, 2)),
    closed_form_rows: tuple[int, ...] = (2, 3, 5, 9),
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Test each sampler against two independent references; returns the tests and rejection's acceptance rates.

    One row per sampler and test: the KS p-values of σ_max and σ_min against rejection sampling (``size``
    samples at each of ``shapes``), and the z-score of the sampled mean σ_min of m×2 matrices (4·``size``
    samples) against the exact E σ_min of :func:`two_column_law`, for each m in ``closed_form_rows``.
    """
    rows, acceptance = [], {}
    for m, n in shapes:
        rejection = sample_rejection(m, n, size, rng)
        acceptance[f"{m}×{n}"] = rejection.acceptance_rate
        samples = {name: sampler(m, n, size, rng) for name, sampler in samplers.items()}
        for test, p in ks_pvalues({**samples, "rejection": rejection.samples}, reference="rejection").items():
            name, statistic = test.rsplit(": ", 1)
            rows.append({"sampler": name, "test": f"KS p-value, {statistic}, {m}×{n}", "value": p})
    for m in closed_form_rows:
        exact = float(two_column_law(m)["E_min"])
        for name, sampler in samplers.items():
            sigma_min = singular_values(sampler(m, 2, 4 * size, rng))[:, -1]
            z = (sigma_min.mean() - exact) / (sigma_min.std() / np.sqrt(len(sigma_min)))
            rows.append({"sampler": name, "test": f"z vs exact E σ_min, {m}×2", "value": float(z)})
    return pd.DataFrame(rows), acceptance


def worst_agreement(tests: pd.DataFrame) -> pd.DataFrame:
    """Per sampler, the smallest KS p-value and the largest |z| of :func:`agreement_with_references`."""
    is_ks = tests["test"].str.startswith("KS")
    ks, z = tests[is_ks], tests[~is_ks]
    return pd.DataFrame(
        {
            "min KS p": ks.groupby("sampler", sort=False)["value"].min(),
            "max |z|": z["value"].abs().groupby(z["sampler"], sort=False).max(),
        }
    )


KS_LEVEL = 1e-3
"""A KS p-value below this rejects agreement with rejection sampling (several tests run: a small level)."""
Z_LIMIT = 4.0
"""A sampled mean σ_min more than this many standard errors from the closed form rejects agreement."""


def agreement_summary(worst: pd.DataFrame) -> str:
    """One line for the ledger: the worst KS p-value and |z| over the samplers in ``worst``."""
    return f"min KS p = {worst['min KS p'].min():.3g} (rejection); max |z| = {worst['max |z|'].max():.2f} (closed form)"


def agrees(worst: pd.DataFrame) -> bool:
    """Whether every sampler in ``worst`` passes both references: KS p > KS_LEVEL and |z| < Z_LIMIT."""
    return bool((worst["min KS p"] > KS_LEVEL).all() and (worst["max |z|"] < Z_LIMIT).all())


@dataclass(frozen=True)
class Convergence:
    """Evidence for "σ_min → 1" in one regime: mean σ_min at the largest size, with its interval, and whether
    mean σ_min increases with size at every step."""

    estimate: Estimate
    increasing: bool
    shape: str


def convergence_to_one(frame: pd.DataFrame) -> Convergence:
    """:class:`Convergence` from a table of :func:`regime_statistics` (rows in order of growing size)."""
    last = frame.iloc[-1]
    return Convergence(
        Estimate(last["mean σ_min"], last["σ_min 95% low"], last["σ_min 95% high"]),
        bool(frame["mean σ_min"].is_monotonic_increasing),
        f"{int(last['m'])}×{int(last['n'])}",
    )


# ---- Application: zeroth-order optimisation with perturbations from the ball -----------------------------


@dataclass(frozen=True)
class LeastSquaresProblem:
    """f(W) = ½ ||W X − Y||²_F / k for W ∈ R^{m×n}, X ∈ R^{n×k}: a smooth test objective over matrices."""

    inputs: np.ndarray
    targets: np.ndarray

    @classmethod
    def random(cls, m: int, n: int, k: int, rng: np.random.Generator) -> LeastSquaresProblem:
        inputs = rng.standard_normal((n, k))
        return cls(inputs, rng.standard_normal((m, n)) @ inputs)

    def loss(self, w: np.ndarray) -> np.ndarray:
        """f(W), for one W or a stack of them (shape (..., m, n) → (...))."""
        n, k = self.inputs.shape
        residual = (w.reshape(-1, n) @ self.inputs).reshape(*w.shape[:-1], k) - self.targets  # one product per stack
        return 0.5 * np.einsum("...ij,...ij->...", residual, residual) / k


def zeroth_order_descent(
    problem: LeastSquaresProblem,
    sampler: Sampler,
    steps: int,
    rng: np.random.Generator,
    smoothing: float = 1e-3,
    learning_rates: tuple[float, ...] = (0.05,),
) -> np.ndarray:
    """Two-point zeroth-order descent (eq. ``spectral_ball-eq-zo``), W ← W − η ĝ with
    ĝ = (f(W + μA) − f(W − μA)) / (2μ) · A, A from ``sampler``; one run per learning rate η, all on the same
    directions A (run side by side).

    With A uniform in the spectral ball the step explores the geometry that spectral-norm (Muon-style)
    optimisers use. Returns the loss after every step, shape (steps + 1, len(learning_rates)); row 0 is W = 0.
    """
    m, n = problem.targets.shape[0], problem.inputs.shape[0]
    rates = np.asarray(learning_rates, float)[:, None, None]
    w = np.zeros((len(rates), m, n))
    losses = [problem.loss(w)]
    for direction in sampler(m, n, steps, rng):
        # (f(W + μA) − f(W − μA)) / (2μ): the directional derivative along A, for every η at once
        slope = (problem.loss(w + smoothing * direction) - problem.loss(w - smoothing * direction)) / (2 * smoothing)
        # W ← W − η ĝ, ĝ = slope · A
        w = w - rates * slope[:, None, None] * direction
        losses.append(problem.loss(w))
    return np.array(losses)


# ---- Experiments the chapter runs ------------------------------------------------------------------------


def regime_statistics(shapes: list[tuple[int, int]], size: int, rng: np.random.Generator) -> pd.DataFrame:
    """σ statistics of exact samples (Haar truncation, n columns) for each (m, n), with the limiting values.

    Columns: m, n, ratio m/n, mean σ_min with its 95% interval over the ``size`` samples (Student t), median σ,
    the limit law's edge σ₋ = (c−1)/(c+1) and median.
    """
    rows = []
    for m, n in tqdm(shapes, desc="shapes", leave=False):
        sigma = singular_values(sample_stiefel_truncation(m, n, size, rng))
        ratio = m / n
        sigma_min = Estimate.mean_of(sigma[:, -1])
        rows.append(
            {
                "m": m,
                "n": n,
                "ratio": ratio,
                "mean σ_min": sigma_min.value,
                "σ_min 95% low": sigma_min.low,
                "σ_min 95% high": sigma_min.high,
                "median σ": np.median(sigma),
                "limit σ₋": wachter_edges(ratio)[0],
                "limit median": wachter_sigma_quantile(0.5, ratio),
            }
        )
    return pd.DataFrame(rows)


def approximation_error(shapes: list[tuple[int, int]], size: int, rng: np.random.Generator) -> pd.DataFrame:
    """Wasserstein-1 distance between the σ laws of the exact sampler and each cheap alternative, per shape."""
    rows = []
    for m, n in tqdm(shapes, desc="shapes", leave=False):
        exact = sample_stiefel_truncation(m, n, size, rng)
        rows.append(
            {
                "m": m,
                "n": n,
                "ratio": m / n,
                "semi-orthogonal (approximate)": sigma_distance(sample_semi_orthogonal(m, n, size, rng), exact),
                "G / ||G||₂": sigma_distance(sample_gaussian_over_spectral_norm(m, n, size, rng), exact),
                "G / (√m + √n)": sigma_distance(sample_gaussian_scaled(m, n, size, rng), exact),
            }
        )
    return pd.DataFrame(rows)


def large_shape_distances(m: int, n: int, rng: np.random.Generator) -> tuple[Estimate, float]:
    """W₁ to one exact m×n sample's σ law, for the semi-orthogonal sampler and for G / ||G||₂.

    Semi-orthogonal samples have σ ≡ 1, so their W₁ is 1 − mean σ, given with ± 1.96 naive standard errors of the
    mean over the n singular values (conservative: singular values repel, so their mean varies less than that).
    """
    sigma = singular_values(sample_stiefel_truncation(m, n, 1, rng)).ravel()
    semi_orthogonal = Estimate.from_stderr(1 - sigma.mean(), sigma.std(ddof=1) / np.sqrt(len(sigma)))
    naive = singular_values(sample_gaussian_over_spectral_norm(m, n, 1, rng)).ravel()
    return semi_orthogonal, float(stats.wasserstein_distance(naive, sigma))


def shrinks_with_size(w1: pd.Series) -> bool:
    """Whether a W₁ that should go to 0 with size does so visibly: its value at the largest size (last entry) is at
    most half its value at the smallest (first entry)."""
    return bool(w1.iloc[-1] <= 0.5 * w1.iloc[0])


def tall_rate_estimate(frame: pd.DataFrame) -> Estimate:
    """m (1 − mean σ_min) at the largest m of a :func:`regime_statistics` table, with the 95% interval of the mean
    carried through (rate {eq}`spectral_ball-eq-rate`: it estimates κ_n)."""
    last = frame.iloc[-1]
    m = last["m"]
    return Estimate(m * (1 - last["mean σ_min"]), m * (1 - last["σ_min 95% high"]), m * (1 - last["σ_min 95% low"]))


def ratio_at_largest_shape(timings: pd.DataFrame, numerator: str, denominator: str) -> tuple[int, int, Estimate]:
    """(m, n, :func:`ratio_estimate` of paired times) at the largest shape of :func:`time_samplers` where both
    samplers ran."""
    both = timings[timings["sampler"].isin([numerator, denominator])]
    counts = both.groupby(["m", "n"])["sampler"].nunique()
    m, n = max(shape for shape, count in counts.items() if count == 2)
    paired = both[(both["m"] == m) & (both["n"] == n)].pivot(index="repeat", columns="sampler", values="seconds")
    return int(m), int(n), ratio_estimate(paired[numerator], paired[denominator])


def time_samplers(
    samplers: dict[str, Sampler],
    shapes: list[tuple[int, int]],
    rng: np.random.Generator,
    repeats: int = 3,
    skip: Callable[[str, int, int], bool] = lambda name, m, n: False,
) -> pd.DataFrame:
    """Wall time (s) of drawing one m×n sample with each sampler, one row per repeat; ``skip`` leaves out slow pairs.

    Within a repeat the samplers run one after the other, so that repeat r of two samplers is a paired
    measurement taken under the same machine load (see :func:`ratio_estimate`).
    """
    rows = []
    for m, n in tqdm(shapes, desc="shapes", leave=False):
        for repeat in range(repeats):
            for name, sampler in samplers.items():
                if skip(name, m, n):
                    continue
                start = time.perf_counter()
                sampler(m, n, 1, rng)
                rows.append({"sampler": name, "m": m, "n": n, "repeat": repeat, "seconds": time.perf_counter() - start})
    return pd.DataFrame(rows)


def ratio_estimate(numerator, denominator) -> Estimate:
    """The geometric mean of paired ratios ``numerator[i] / denominator[i]`` with its 95% Student-t interval on
    the log scale (times and losses are positive and skewed; their ratios multiply)."""
    log_ratio = Estimate.mean_of(np.log(np.asarray(numerator, float) / np.asarray(denominator, float)))
    return Estimate(*np.exp([log_ratio.value, log_ratio.low, log_ratio.high]))


def compare_zeroth_order(
    problem: LeastSquaresProblem,
    samplers: dict[str, Sampler],
    learning_rates: list[float],
    steps: int,
    seed: int,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Run :func:`zeroth_order_descent` for every sampler and learning rate on the same random streams.

    Each sampler gets the same tuning budget: its learning rate is the one with the lowest final loss.
    Returns a table (sampler, learning rate, final loss) and each sampler's loss curve at its best rate.
    """
    rows, curves, rates = [], {}, tuple(learning_rates)
    for name, sampler in samplers.items():
        losses = zeroth_order_descent(problem, sampler, steps, np.random.default_rng(seed), learning_rates=rates)
        final = np.where(np.isfinite(losses[-1]), losses[-1], np.inf)
        rows += [{"sampler": name, "learning rate": r, "final loss": f} for r, f in zip(rates, final, strict=True)]
        curves[name] = losses[:, np.argmin(final)]
    return pd.DataFrame(rows), curves


LOSS_BAND = (0.8, 1.25)
"""The application's rule: a final-loss ratio to the exact sampler inside this band counts as "no worse, no better"."""


def in_band(ratio: Estimate, band: tuple[float, float] = LOSS_BAND) -> Test:
    """The rule ``band[0] ≤ ratio ≤ band[1]``, decisive when the ratio's whole interval is inside or outside it."""
    return all_of(at_least(ratio, band[0]), at_most(ratio, band[1]))


PARAMETERS = {
    "LLM_SHAPE": ListOf(Int(minimum=1), length=2, what="[rows, columns], two positive integers"),
}
"""The chapter's parameters besides ``SCALE`` and ``SEED`` (its notebook's ``parameters`` cell), declared once:
the notebook checks them with :func:`llmtheory.params.check_parameters`, the command line before it runs."""
