"""One matplotlib style for the whole book, and one way to save and show a figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt

from .paths import figures_dir

# Okabe & Ito's colour-blind-safe palette.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#E69F00",  # orange
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)


def use_book_style() -> None:
    """Apply the book's style to every later figure."""
    mpl.rcParams.update(
        {
            "figure.figsize": (7.0, 4.2),
            "figure.dpi": 110,
            "savefig.dpi": 130,
            "savefig.bbox": "tight",
            "axes.prop_cycle": mpl.cycler(color=PALETTE),
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "legend.fontsize": 9,
            "legend.frameon": False,
            "font.size": 10,
        }
    )


def figure_path(slug: str, name: str) -> Path:
    return figures_dir() / slug / f"{name}.png"


def show(fig: plt.Figure, *, slug: str, name: str) -> None:
    """Save ``fig`` as ``<figures_dir>/<slug>/<name>.png`` (see :func:`figure_path`), display that PNG once,
    and close the figure. Displaying the saved file (rather than the figure) renders each figure once, not twice;
    returning nothing keeps a path from being echoed under the figure when ``show`` ends a cell.
    """
    path = figure_path(slug, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path)
    finally:
        plt.close(fig)
    from IPython import get_ipython
    from IPython.display import Image, display

    if get_ipython() is not None:
        display(Image(filename=str(path)))


def set_log_ticks(ax: plt.Axes, values, axis: str = "x") -> None:
    """A log axis whose ticks are exactly ``values``, labelled plainly (no crowded minor labels)."""
    values = sorted(set(values))
    setter = ax.set_xscale if axis == "x" else ax.set_yscale
    setter("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(mpl.ticker.FixedLocator(values))
    target.set_major_formatter(mpl.ticker.FixedFormatter([f"{v:g}" for v in values]))
    target.set_minor_locator(mpl.ticker.NullLocator())
