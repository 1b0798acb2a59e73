"""The figures of the spectral_ball chapter, apart from the method in :mod:`llmtheory.spectral_ball`."""

from __future__ import annotations

import pandas as pd

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
