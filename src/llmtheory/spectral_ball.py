"""Uniform sampling from the unit spectral-norm ball {A ∈ R^{m×n} : ||A||₂ ≤ 1}.

The paper (authors and text unknown to us; only its abstract) proves that all singular values of such a
sample tend to 1 as the dimensions grow, and uses this to justify a simple approximate sampler for
LLM-sized matrices. This module implements, in the order the chapter explains them:

1. the joint density of the singular values (eq. ``joint``) and, for n = 2, its exact normaliser and
   E[σ_min] (sympy);
2. three exact samplers: truncating a Haar orthogonal matrix of size p = m + n + 1 (Życzkowski–Sommers), the
   same law from the first n columns of a Haar matrix (a Gaussian QR, much cheaper), the Gaussian polar
   construction X (XᵀX + YᵀY)^{-1/2}, and rejection from the Frobenius ball for small sizes;
3. the approximate sampler (a random semi-orthogonal matrix: every σ = 1) and two naive baselines;
4. the limiting law of the singular values when m/n → c (Wachter's law for a truncated Haar matrix),
   whose lower edge (c − 1)/(c + 1) shows where "all σ → 1" holds and where it does not;
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


def _haar_columns(p: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """The first n columns of `size` Haar-distributed p×p orthogonal matrices, shape (size, p, n).

    QR of a Gaussian p×n matrix, with the signs of R's diagonal moved into Q (Mezzadri 2007), is uniform on
    the Stiefel manifold; these are exactly the first n columns of a Haar matrix.
    """
    q, r = np.linalg.qr(rng.standard_normal((size, p, n)))
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[:, None, :]


@_tall
def sample_haar_truncation(m: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Exact sampler 1: the top-left m×n block of a Haar orthogonal matrix of size p = m + n + 1.

    The block's density is ∝ det(I − AᵀA)^{(p−m−n−1)/2} on the ball, constant when p = m + n + 1
    (Życzkowski & Sommers 2000). This version draws the full p×p Haar matrix (scipy), O(p³) per sample:
    it is the textbook construction and the expensive one.
    """
    p = m + n + 1
    full = stats.ortho_group.rvs(p, size=size, random_state=rng).reshape(size, p, p)
    return full[:, :m, :n]


@_tall
def sample_stiefel_truncation(m: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Exact sampler 1': the same block, from the first n columns of the Haar matrix only, O(p n²)."""
    return _haar_columns(m + n + 1, n, size, rng)[:, :m, :]


def _inverse_sqrt_psd(s: np.ndarray) -> np.ndarray:
    """S^{-1/2} for a stack of symmetric positive-definite matrices, by eigendecomposition."""
    eigenvalues, vectors = np.linalg.eigh(s)
    return (vectors / np.sqrt(eigenvalues)[:, None, :]) @ np.swapaxes(vectors, -1, -2)


@_tall
def sample_gaussian_polar(m: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Exact sampler 2: A = X (XᵀX + YᵀY)^{-1/2}, X ~ N(0,1)^{m×n}, Y ~ N(0,1)^{(n+1)×n}.

    Z = [X; Y] (p×n) has orthonormal polar factor Z (ZᵀZ)^{-1/2}, uniform on the Stiefel manifold, so A is its
    top m rows: the same law as the truncation samplers, from one Gram matrix instead of a QR.
    """
    x = rng.standard_normal((size, m, n))
    y = rng.standard_normal((size, n + 1, n))
    gram = np.swapaxes(x, -1, -2) @ x + np.swapaxes(y, -1, -2) @ y
    return x @ _inverse_sqrt_psd(gram)


@dataclass(frozen=True)
class RejectionResult:
    samples: np.ndarray
    proposals: int

    @property
    def acceptance_rate(self) -> float:
        return len(self.samples) / self.proposals


def sample_rejection(m: int, n: int, size: int, rng: np.random.Generator, batch: int = 4096) -> RejectionResult:
    """Exact sampler 3: uniform proposals in the Frobenius ball of radius √min(m,n), kept when ||A||₂ ≤ 1.

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
    return RejectionResult(np.concatenate(kept)[:size], proposals)


@_tall
def sample_semi_orthogonal(m: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """The approximate sampler (our reading of the paper's "simple" method): a Haar semi-orthogonal m×n matrix.

    Every singular value equals 1, the value the theorem says they all converge to; the singular vectors are
    Haar, as in the exact law.
    """
    return _haar_columns(m, n, size, rng)


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
    """Eq. (joint): ∏_{i<j} |σ_i² − σ_j²| ∏_i σ_i^{m−n} on [0, 1]^n (real case), for rows of ``sigma``."""
    sigma = np.atleast_2d(sigma)
    n = sigma.shape[1]
    sq = sigma**2
    vandermonde = np.prod([np.abs(sq[:, i] - sq[:, j]) for i in range(n) for j in range(i + 1, n)] or [1.0], axis=0)
    inside = np.all((sigma >= 0) & (sigma <= 1), axis=1)
    return np.where(inside, vandermonde * np.prod(sigma ** (m - n), axis=1), 0.0)


def two_column_law(m: sp.Expr | int | None = None) -> dict[str, sp.Expr]:
    """For n = 2: the normaliser Z(m) of eq. (joint) and E[σ_min], E[σ_max], integrated exactly by sympy.

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
    """Support [σ₋, σ₊] of the limiting singular-value law when m/n → ``ratio`` = c ≥ 1.

    For the top m×n block of a Haar matrix of size p with n/p → α, m/p → β, the squared singular values follow
    Wachter's law on [λ₋, λ₊], λ± = (√(α(1−β)) ± √(β(1−α)))². Here p = m + n + 1, so α + β → 1, λ₊ = 1 and
    λ₋ = (β − α)², i.e. σ₋ = (c − 1)/(c + 1): the smallest singular value tends to 1 only when c → ∞.
    """
    if ratio < 1:
        raise ValueError(f"ratio={ratio!r} must be ≥ 1 (pass m/n with m ≥ n)")
    return (ratio - 1) / (ratio + 1), 1.0


def wachter_sigma_density(sigma: np.ndarray, ratio: float) -> np.ndarray:
    """Limiting density of one singular value σ when m/n → c (no atoms since α + β = 1).

    f_λ(λ) = √((λ − λ₋)(λ₊ − λ)) / (2π α λ (1 − λ)) with α = 1/(1 + c); σ = √λ, so f_σ(σ) = 2σ f_λ(σ²).
    For c = 1 it is the arcsine law of λ on [0, 1] (median σ = 1/√2).
    """
    low, _ = wachter_edges(ratio)
    alpha = 1 / (1 + ratio)
    lam = np.asarray(sigma, dtype=float) ** 2
    lam_low = low**2
    inside = (lam > lam_low) & (lam < 1)
    safe = np.where(inside, lam, 0.5)
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

    def loss(self, w: np.ndarray) -> float:
        residual = w @ self.inputs - self.targets
        return 0.5 * float(np.sum(residual**2)) / self.inputs.shape[1]


def zeroth_order_descent(
    problem: LeastSquaresProblem,
    sampler: Sampler,
    steps: int,
    rng: np.random.Generator,
    smoothing: float = 1e-3,
    learning_rate: float = 0.05,
) -> np.ndarray:
    """Two-point zeroth-order descent, W ← W − η ĝ with ĝ = (f(W + μA) − f(W − μA)) / (2μ) · A, A from ``sampler``.

    With A uniform in the spectral ball the step explores the geometry that spectral-norm (Muon-style)
    optimisers use. Returns the loss after every step (index 0 is the start, W = 0).
    """
    m, n = problem.targets.shape[0], problem.inputs.shape[0]
    w = np.zeros((m, n))
    losses = [problem.loss(w)]
    for direction in sampler(m, n, steps, rng):
        slope = (problem.loss(w + smoothing * direction) - problem.loss(w - smoothing * direction)) / (2 * smoothing)
        w = w - learning_rate * slope * direction
        losses.append(problem.loss(w))
    return np.array(losses)


# ---- Experiments the chapter runs ------------------------------------------------------------------------


def regime_statistics(shapes: list[tuple[int, int]], size: int, rng: np.random.Generator) -> pd.DataFrame:
    """σ statistics of exact samples (Haar truncation, n columns) for each (m, n), with the limiting values.

    Columns: m, n, ratio m/n, mean σ_min, median σ, the limit law's edge σ₋ = (c−1)/(c+1) and median.
    """
    rows = []
    for m, n in tqdm(shapes, desc="shapes", leave=False):
        sigma = singular_values(sample_stiefel_truncation(m, n, size, rng))
        ratio = m / n
        rows.append(
            {
                "m": m,
                "n": n,
                "ratio": ratio,
                "mean σ_min": sigma[:, -1].mean(),
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


def time_samplers(
    samplers: dict[str, Sampler],
    shapes: list[tuple[int, int]],
    rng: np.random.Generator,
    repeats: int = 3,
    skip: Callable[[str, int, int], bool] = lambda name, m, n: False,
) -> pd.DataFrame:
    """Median wall time (s) of drawing one m×n sample with each sampler; ``skip`` leaves out slow pairs."""
    rows = []
    for m, n in tqdm(shapes, desc="shapes", leave=False):
        for name, sampler in samplers.items():
            if skip(name, m, n):
                continue
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                sampler(m, n, 1, rng)
                times.append(time.perf_counter() - start)
            rows.append({"sampler": name, "m": m, "n": n, "seconds": float(np.median(times))})
    return pd.DataFrame(rows)


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
    rows, curves = [], {}
    for name, sampler in samplers.items():
        for rate in learning_rates:
            losses = zeroth_order_descent(problem, sampler, steps, np.random.default_rng(seed), learning_rate=rate)
            final = losses[-1] if np.isfinite(losses[-1]) else np.inf
            rows.append({"sampler": name, "learning rate": rate, "final loss": final})
            if final == min(r["final loss"] for r in rows if r["sampler"] == name):
                curves[name] = losses
    return pd.DataFrame(rows), curves


def householder_qr_flops(rows: int, cols: int) -> float:
    """Floating-point operations of a Householder QR of a rows×cols matrix, 2·rows·cols² − ⅔·cols³
    (Golub & Van Loan, Algorithm 5.2.1): a machine-independent cost model for the samplers."""
    return 2 * rows * cols**2 - 2 * cols**3 / 3


def sampler_flops(m: int, n: int) -> dict[str, float]:
    """QR cost of one m×n sample (m ≥ n) for the full-Haar, n-column-Haar and semi-orthogonal samplers."""
    p = m + n + 1
    return {
        "full Haar p×p (exact)": householder_qr_flops(p, p),
        "first n Haar columns (exact)": householder_qr_flops(p, n),
        "semi-orthogonal (approximate)": householder_qr_flops(m, n),
    }
