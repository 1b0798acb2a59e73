import numpy as np
import pytest

from llmtheory.stats import loglog_slope, loglog_slope_with_stderr, mean_ci


def test_loglog_slope_recovers_a_power_law():
    x = np.array([10, 100, 1000])
    assert loglog_slope(x, 3 * x**-0.5) == pytest.approx(-0.5)


def test_slope_with_stderr_is_exact_without_noise_and_positive_with_it():
    x = np.array([10.0, 20.0, 40.0, 80.0])
    exact = np.vstack([x**-1.0, 2 * x**-1.0])
    assert loglog_slope_with_stderr(x, exact) == pytest.approx((-1.0, 0.0), abs=1e-12)
    noisy = exact * np.exp(np.random.default_rng(0).normal(0, 0.1, exact.shape))
    slope, se = loglog_slope_with_stderr(x, noisy)
    assert abs(slope + 1) < 0.3 and se > 0


def test_mean_ci_is_the_t_interval():
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302652729911275 * 1 / np.sqrt(3))
    assert mean_ci([5.0]) == (5.0, 0.0)
