"""The checks, tables and figures of the augmentation_fourier chapter, apart from the method in
:mod:`llmtheory.augmentation_fourier`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .augmentation_fourier import (
    FiniteGroup,
    Irrep,
    RateEvidence,
    averaging_operator,
    expected_fourier_energy,
    feature_representation,
    fourier_transform,
    isotypic_projector,
    multiplicities,
    subset_measure,
)
from .plotting import PALETTE

# --------------------------------------------------------------------------------------------------
# The Fourier picture, checked on one subset
# --------------------------------------------------------------------------------------------------


def circle_multipliers_against_dft(cyclic: FiniteGroup, irreps: list[Irrep], subset) -> tuple[list[int], float]:
    """On ``C_m`` (element g is the shift x ↦ x + shift), the Fourier multipliers ``μ̂_S(π)`` of the uniform
    measure on ``subset`` are the DFT of ``1_S/|S|``: returns the shifts of ``subset`` and the largest gap between
    the two spectra (each sorted, rounded to 12 digits)."""
    shift = [int(cyclic.elements[g][0]) for g in subset]
    multipliers = [fourier_transform(subset_measure(cyclic, subset), r)[0, 0] for r in irreps]
    dft = np.fft.fft(np.bincount(shift, minlength=cyclic.order) / len(shift))
    error = np.abs(np.sort_complex(np.round(multipliers, 12)) - np.sort_complex(np.round(dft, 12))).max()
    return shift, float(error)


def block_norms(group: FiniteGroup, irreps: list[Irrep], subset) -> pd.DataFrame:
    """Per irrep π of ``group``: its dimension, its copies in the quadratic features, ``‖μ̂_S(π)‖_op`` and, where
    the features contain π, ``‖P_S E_π‖_op`` (the averaging operator on the features restricted to the isotypic
    component); the decomposition makes the two norms equal."""
    rho = feature_representation(group)
    counts = multiplicities(rho, irreps, group)
    operator, measure = averaging_operator(rho, subset), subset_measure(group, subset)
    return pd.DataFrame(
        [
            {
                "irrep": i,
                "d_π": r.dimension,
                "copies in features": int(round(c)),
                "‖μ̂_S(π)‖_op": np.linalg.norm(fourier_transform(measure, r), 2),
                "‖P_S E_π‖_op": np.linalg.norm(operator @ isotypic_projector(rho, r, group), 2) if c > 0.5 else np.nan,
            }
            for i, (r, c) in enumerate(zip(irreps, counts, strict=True))
        ]
    )


# --------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------


def risk_panel(ax, frame: pd.DataFrame, evidence: RateEvidence, title: str, orders=None) -> None:
    """Mean excess risk against n (log–log) per estimator, with its fitted slope, and the minimax rate dashed;
    ``orders`` (a growing group's order at each n) goes under the ticks."""
    import matplotlib.pyplot as plt

    means = frame.groupby(["estimator", "n"])["risk"].mean().unstack(0)
    for colour, label in zip(PALETTE, evidence.slopes, strict=False):
        ax.loglog(means.index, means[label], "o-", color=colour, label=f"{label}: slope {evidence.slopes[label]:.2f}")
    n0 = means.index.values
    ax.loglog(
        n0,
        means["full"].iloc[0] * (n0 / n0[0]) ** evidence.exponent,
        "k--",
        lw=1,
        label=f"minimax rate n^{evidence.exponent:.2f}",
    )
    ax.set(
        title=title,
        xlabel="sample size n" + (" (group order m)" if orders else ""),
        ylabel="excess risk (squared L² error)",
    )
    ax.set_xticks(
        n0,
        [f"{v:,}" + (f"\n(m = {m})" if orders else "") for v, m in zip(n0, orders or n0, strict=False)],
        rotation=0 if orders else 30,
    )
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.set_ylim(bottom=means.min().min() / 6)  # room for the legend below the curves
    ax.legend(fontsize=7, loc="lower left")


def plot_risk_curves(panels, orders=None):
    """Two :func:`risk_panel` side by side, one per ``(frame, evidence, title)`` in ``panels``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (frame, evidence, title) in zip(axes, panels, strict=True):
        risk_panel(ax, frame, evidence, title, orders=orders)
    return fig


def plot_approximation_error(panels):
    """Relative excess ``(R_k − R_G)/(R_none − R_G)`` against the subset size k, two panels, one per
    ``(frames, group_order, title)`` in ``panels``: the measured excess of each named frame of
    :func:`~llmtheory.augmentation_fourier.relative_excess` (95% intervals), the multiplier bound of the first,
    and the formula ``(|G|−k)/(k(|G|−1))`` of eq. ``augmentation_fourier-eq-energy``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0))
    for ax, (frames, order, title) in zip(axes, panels, strict=True):
        grid = np.linspace(1, order - 0.01, 400)
        ax.plot(grid, [expected_fourier_energy(order, k) for k in grid], "k-", lw=1, label="(|G|−k)/(k(|G|−1))")
        first = next(iter(frames.values()))
        ax.plot(first.k, first["bound: mean δ_S²"], "s--", color=PALETTE[1], label="multiplier bound: mean δ_S²")
        for (label, frame), colour, marker in zip(frames.items(), (PALETTE[0], PALETTE[2]), ("o", "D"), strict=False):
            ax.errorbar(
                frame.k,
                frame["measured"],
                yerr=1.96 * frame["standard error"],
                fmt=marker,
                color=colour,
                ms=7,
                capsize=3,
                label=label,
            )
        ax.set(
            xscale="log",
            yscale="log",
            title=title,
            xlabel="subset size k (group elements)",
            ylabel="(R_k − R_G) / (R_none − R_G)",
        )
        ax.set_ylim(bottom=min(f["measured"].min() for f in frames.values()) / 3)
        ticks = [1, *first.k, order]
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.legend(fontsize=8)
    return fig
