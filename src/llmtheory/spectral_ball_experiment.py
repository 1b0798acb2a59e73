"""The figures of the spectral_ball chapter, apart from the method in :mod:`llmtheory.spectral_ball`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import spectral_ball
from .plotting import PALETTE, set_log_ticks


def plot_regimes(tall: pd.DataFrame, square: pd.DataFrame, four_to_one: pd.DataFrame, kappa_4: float):
    """The two regimes, from tables of :func:`~llmtheory.spectral_ball.regime_statistics`. Left: tall matrices
    (n = 4 columns, m rows) with the Wachter lower edge and the rate ``1 − κ₄/m`` of eq. ``spectral_ball-eq-rate``
    (from m = 16 on); right: square and 4:1 matrices with the edge (dashed) and median (dash-dotted) of their
    limit law, eq. ``spectral_ball-eq-wachter``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    ax[0].plot(tall["m"], tall["mean σ_min"], "o-", label="tall, n = 4: mean σ_min")
    ax[0].plot(tall["m"], tall["median σ"], "s-", label="tall, n = 4: median σ")
    ax[0].plot(tall["m"], tall["limit σ₋"], "k--", lw=1, label="(c − 1)/(c + 1), c = m/n")
    rate_m = tall["m"][tall["m"] >= 16]
    ax[0].plot(rate_m, 1 - kappa_4 / rate_m, ":", color=PALETTE[0], label="1 − κ₄/m (rate)")
    ax[0].set(xlabel="rows m (n = 4 columns)", ylabel="singular value", title="Tall: σ → 1")
    set_log_ticks(ax[0], tall["m"])
    for frame, name, colour in [(square, "square", PALETTE[1]), (four_to_one, "4:1", PALETTE[2])]:
        ax[1].plot(frame["n"], frame["mean σ_min"], "o-", color=colour, label=f"{name}: mean σ_min")
        ax[1].plot(frame["n"], frame["median σ"], "s:", color=colour, label=f"{name}: median σ")
        ax[1].axhline(frame["limit σ₋"].iloc[-1], color=colour, ls="--", lw=1)
        ax[1].axhline(frame["limit median"].iloc[-1], color=colour, ls="-.", lw=1)
    ax[1].set(xlabel="columns n (m = n or 4n)", title="Proportional: σ does not → 1")
    set_log_ticks(ax[1], square["n"])
    ax[0].legend(loc="lower right")
    ax[1].legend(loc="center right", bbox_to_anchor=(1.0, 0.33))
    for a in ax:
        a.axhline(1, color="grey", lw=0.8)
    return fig


def plot_singular_value_histograms(
    shapes: dict[str, tuple[int, int]], rng: np.random.Generator, samples: int = 4, zoom_below: float = 0.25
):
    """Histograms of all singular values of ``samples`` exact samples (:func:`~llmtheory.spectral_ball.
    sample_stiefel_truncation`) of each named shape (m, n), one panel each, against the limiting density of
    eq. ``spectral_ball-eq-wachter``. A shape whose limit law lives on [σ₋, 1] with 1 − σ₋ < ``zoom_below`` (a
    tall matrix: on [0, 1] its histogram is one bar against σ = 1) gets an inset zoomed on [σ₋ − (1 − σ₋), 1]."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(shapes), figsize=(11, 3.4), squeeze=False)
    axes = axes[0]
    grid = np.linspace(0, 1, 801)
    for ax, (name, (m, n)) in zip(axes, shapes.items(), strict=True):
        sigma = spectral_ball.singular_values(spectral_ball.sample_stiefel_truncation(m, n, samples, rng)).ravel()
        ratio = max(m, n) / min(m, n)
        ax.hist(sigma, bins=40, range=(0, 1), density=True, color=PALETTE[5], label="exact samples")
        ax.plot(grid, spectral_ball.wachter_sigma_density(grid, ratio), color=PALETTE[1], label="limit law")
        ax.set(title=f"{name}: {m}×{n}", xlabel="singular value σ", ylim=(0, 6))
        low = spectral_ball.wachter_edges(ratio)[0]
        if 1 - low < zoom_below:
            _zoom_inset(ax, sigma, ratio, start=max(0.0, low - (1 - low)))
    axes[0].set_ylabel("density")
    axes[0].legend(loc="upper left")
    return fig


def _zoom_inset(ax, sigma: np.ndarray, ratio: float, start: float) -> None:
    """An inset on the empty left of ``ax``: the histogram and limit density on [start, 1], its own y scale."""
    inset = ax.inset_axes([0.24, 0.3, 0.5, 0.58])
    counts, _, _ = inset.hist(sigma, bins=30, range=(start, 1), density=True, color=PALETTE[5])
    # the density has an inverse-square-root pole at σ = 1: stop the curve just short of it
    fine = np.linspace(start, 1, 2001)[:-1]
    inset.plot(fine, spectral_ball.wachter_sigma_density(fine, ratio), color=PALETTE[1])
    top = 1.3 * counts.max()
    inset.set(xlim=(start, 1), ylim=(0, top))
    inset.set_title(f"zoom: σ in [{start:.2f}, 1]", fontsize=8)
    inset.tick_params(labelsize=7)
    ax.indicate_inset((start, 0, 1 - start, ax.get_ylim()[1]), inset, edgecolor="0.4")
