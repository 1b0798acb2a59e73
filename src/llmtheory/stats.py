"""Small statistics several chapters share: rates from log–log fits, intervals over seeds, permutation nulls."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x: the empirical rate exponent of y ∝ x^slope."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def loglog_slope_with_stderr(x, ys) -> tuple[float, float]:
    """Slope against log x of the replicate-mean of log ``ys`` (replicates × len(x)), i.e. of the log of the
    geometric mean, which equals the mean of the per-replicate slopes; and the standard error of that slope
    from the spread of the per-replicate slopes."""
    log_x, log_ys = np.log(np.asarray(x, float)), np.log(np.asarray(ys, float))
    per_replicate = np.polyfit(log_x, log_ys.T, 1)[0]
    pooled = np.polyfit(log_x, log_ys.mean(axis=0), 1)[0]
    return float(pooled), float(per_replicate.std(ddof=1) / np.sqrt(len(per_replicate)))


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t confidence interval (0 for a single value)."""
    values = np.asarray(values, float)
    if len(values) < 2:
        return float(values.mean()), 0.0
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean()), float(half)


def bootstrap_mean(values, rng: np.random.Generator, draws: int = 2000, confidence: float = 0.95):
    """The mean of ``values`` (per-item scores or paired differences) with its percentile bootstrap interval, as a
    :class:`llmtheory.claims.Estimate`; the interval always contains the mean."""
    from .claims import Estimate

    values = np.asarray(values, float)
    if values.size == 0:
        raise ValueError("values is empty: there is nothing to bootstrap")
    means = values[rng.integers(0, len(values), (draws, len(values)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    value = float(values.mean())
    return Estimate(value, float(min(low, value)), float(max(high, value)))


def bootstrap_two_level(values, rng: np.random.Generator, draws: int = 2000, confidence: float = 0.95):
    """The mean of a ``(replicates, items)`` array (seeds × problems, the same items in every replicate) with a
    two-level percentile bootstrap: resample replicates, then items (one item draw shared by the drawn replicates,
    since they are the same items), as a :class:`llmtheory.claims.Estimate` that always contains the mean."""
    from .claims import Estimate

    values = np.asarray(values, float)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"values must be a non-empty (replicates, items) array; got shape {values.shape}")
    replicates, items = values.shape
    means = np.array([values[rng.integers(0, replicates, replicates)][:, rng.integers(0, items, items)].mean()
                      for _ in range(draws)])  # fmt: skip
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    value = float(values.mean())
    return Estimate(value, float(min(low, value)), float(max(high, value)))


@dataclass(frozen=True)
class NullComparison:
    """An observed statistic, the mean of its permutation null, and the one-sided p-value ``P(null ≥ obs)``."""

    observed: float
    null_mean: float
    p_value: float
    draws: int = 0

    @property
    def excess(self) -> float:
        return self.observed - self.null_mean

    @property
    def p_text(self) -> str:
        """``p = 0.123``, or ``p ≤ 0.005 (the floor with 200 draws)`` when no null draw reached the observed value."""
        if self.draws and self.p_value <= 1 / (1 + self.draws) + 1e-12:
            return f"p ≤ {1 / (1 + self.draws):.3f} (the floor with {self.draws} draws)"
        return f"p = {self.p_value:.3f}"


def permutation_null(observed: float, null: np.ndarray) -> NullComparison:
    """Compare ``observed`` with its null samples (``bechdel-eq-null``, ``same_lesson-eq-null``):
    p = (1 + #{null ≥ obs}) / (1 + P); NaN draws are dropped, and a NaN observation or no draw gives NaN."""
    null = null[~np.isnan(null)]
    if not len(null) or np.isnan(observed):
        return NullComparison(float(observed), np.nan, np.nan)
    p_value = float((1 + (null >= observed - 1e-12).sum()) / (1 + len(null)))
    return NullComparison(float(observed), float(null.mean()), p_value, len(null))
