"""The figures of the scaling_exponents chapter, apart from the method in :mod:`llmtheory.scaling_exponents`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .plotting import PALETTE
from .scaling_exponents import MONTE_CARLO_EXPONENT, PowerLawFit


def plot_pedestal(
    runs: pd.DataFrame,
    frontier: pd.DataFrame,
    fits: dict[str, PowerLawFit],
    boots: dict[str, pd.DataFrame],
):
    """The pedestal figure. Left: the runs (columns ``C``, ``loss``), their compute frontier and each fit of
    :func:`~llmtheory.scaling_exponents.pedestal_fits` extrapolated to 1e26 FLOP, with the fitted floor dotted.
    Right: the bootstrap distribution of each fit's exponent against Monte Carlo's ½."""
    import matplotlib.pyplot as plt
    import matplotlib.ticker as ticker

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [1.4, 1]})
    ax.scatter(runs["C"], runs["loss"], s=6, color="0.7", label="runs")
    ax.scatter(frontier["C"], frontier["loss"], s=18, color="k", label="frontier (lowest loss per budget)")
    grid = np.logspace(np.log10(frontier["C"].min()), 26, 200)
    for (name, fit), colour in zip(fits.items(), PALETTE, strict=False):
        ax.plot(grid, fit.loss(grid), color=colour, label=f"{name}: γ = {fit.exponent:.3f}")
    ax.axhline(fits["power law + floor"].floor, color=PALETTE[1], ls=":", lw=1)
    ax.set(xscale="log", yscale="log", xlabel="training compute C (FLOP)", ylabel="loss (nats/token, log scale)")
    for axis_formatter in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
        axis_formatter(ticker.FormatStrFormatter("%.1f"))
    ax.set_title("Frontier fits, extrapolated to 1e26 FLOP")
    ax.legend(fontsize=8, loc="lower left")
    for (name, boot), colour in zip(boots.items(), PALETTE, strict=False):
        bx.hist(boot["exponent"], bins=30, color=colour, alpha=0.7, label=name)
    bx.axvline(MONTE_CARLO_EXPONENT, color="k", ls="--", label="Monte Carlo ½")
    bx.set(xlabel="fitted compute exponent γ", ylabel="bootstrap resamples", xlim=(0, 0.55))
    bx.set_title("Bootstrap distribution of the exponent")
    bx.legend(fontsize=8, loc="upper center")
    return fig
