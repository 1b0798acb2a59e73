"""Small statistics several chapters share: rates from log–log fits and intervals over seeds."""

from __future__ import annotations

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
