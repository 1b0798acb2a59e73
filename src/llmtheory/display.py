"""Helpers a chapter uses to show its code, its tables and its environment to the reader.

Importing this module (every chapter does, for :func:`versions` and :func:`show_source`) also makes the tables a
chapter displays read well: in a running IPython kernel, pandas frames, stylers and series (as one-column tables,
without pandas' "Name: …, dtype: …" line) show "—" where a value is missing instead of pandas' ``NaN``/``nan``,
and a note under the table says what the dash means (:func:`install_table_formatters`). A library function that
knows why its values are missing says so in ``frame.attrs["missing"]`` (for example ``"not run: above
FULL_HAAR_LIMIT"``), a chapter with :func:`missing_because`; the note then gives that reason.
"""

from __future__ import annotations

import html
import inspect
import platform
import re
from importlib import metadata

from IPython.display import Markdown

MISSING = "—"
"""What a reader sees in a table cell that has no value."""

MISSING_NOTE = "not run at this tier, or undefined for this row"
"""The note's reason when the table's data does not give one (``frame.attrs["missing"]``)."""

# A body cell whose whole text is pandas' mark for a missing value: NaN/NaT/<NA>/None from a numeric or object
# column, or "nan" that a chapter's own f"{x:.2f}" produced. Header cells (<th>) keep their labels.
_MISSING_CELL = re.compile(r"(<td\b[^>]*>)\s*(?:NaN|nan|NaT|None|&lt;NA&gt;|<NA>)\s*(</td>)")
_NUMBER_CELL = re.compile(r"<td\b(?![^>]*\bstyle=)([^>]*)>(\s*[-+−]?[\d.,]+(?:e[-+]\d+)?%?\s*)</td>")
"""A cell that holds one number: it must not wrap at its exponent's hyphen ("5.69e-" over "02")."""


def show_source(*objects) -> Markdown:
    """The source of functions or classes from the library, as a Markdown code block.

    Chapters call this where the text explains an algorithm, so the reader sees the one tested copy.
    """
    blocks = [inspect.getsource(obj).rstrip() for obj in objects]
    return Markdown("```python\n" + "\n\n\n".join(blocks) + "\n```")


def versions(*packages: str) -> str:
    """A one-line summary of Python and the given packages' versions (cell 1 of a chapter prints it)."""
    parts = [f"python {platform.python_version()}"]
    for name in packages:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return " · ".join(parts)


def glue(name: str, value, display: bool = False) -> None:
    """Make ``value`` citable in the chapter's prose as ``{glue:text}`name``` (myst-nb's glue).

    Outside Jupyter Book (Colab, plain Jupyter) myst-nb may be missing; then the value is only
    displayed when ``display`` is true, and the prose shows the name instead of the number.
    """
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # numpy scalars: glue formats from repr, and np.float64(...) is not a float
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            print(f"{name} = {value}")
        return
    myst_glue(name, value, display=display)


def reader_table_html(table_html: str | None, reason: str | None = None) -> str | None:
    """A pandas table's HTML with "—" in its missing cells and, when there were any, a note saying what "—" means;
    a cell that holds one number does not wrap.

    ``reason`` is why the values are missing (default :data:`MISSING_NOTE`). ``None`` in, ``None`` out (pandas
    returns no HTML when its notebook repr is switched off).
    """
    if table_html is None:
        return None
    table_html = _NUMBER_CELL.sub(r'<td\1 style="white-space:nowrap">\2</td>', table_html)
    shown, replaced = _MISSING_CELL.subn(rf"\g<1>{MISSING}\g<2>", table_html)
    if not replaced:
        return shown
    note = html.escape(reason or MISSING_NOTE)
    return f'{shown}\n<p class="llmtheory-table-note"><small>{MISSING} = {note}</small></p>'


def missing_because(table, reason: str):
    """``table`` (a DataFrame, or a Styler of one) with ``reason`` as the note under it when it shows "—", e.g. the
    last line of a cell: ``missing_because(timings.round(4), "not run: above FULL_HAAR_LIMIT")``."""
    data = getattr(table, "data", table)  # a Styler's frame
    data.attrs["missing"] = reason
    return table


def _missing_reason(data) -> str | None:
    reason = getattr(data, "attrs", {}).get("missing")
    return str(reason) if reason else None


def frame_html(frame) -> str | None:
    """A DataFrame as a chapter shows it: pandas' own notebook HTML, with :func:`reader_table_html` applied."""
    return reader_table_html(frame._repr_html_(), _missing_reason(frame))


def series_html(series) -> str | None:
    """A Series as a one-column table (its name the header) instead of pandas' text with "Name: …, dtype: …"."""
    return frame_html(series.to_frame(name=series.name if series.name is not None else ""))


def styler_html(styler) -> str | None:
    """A pandas ``Styler`` as a chapter shows it (its formats kept; missing cells as in :func:`frame_html`), with the
    ``dataframe`` class plain frames have, so that the book's theme pads its cells as theirs (a Styler's table has
    no class, and its numbers ran together: "0.7141.000")."""
    html = re.sub(r"<table(?![^>]*\bclass=)", '<table class="dataframe"', styler._repr_html_(), count=1)
    return reader_table_html(html, _missing_reason(styler.data))


def install_table_formatters(shell=None) -> bool:
    """Show pandas frames and stylers through :func:`frame_html`/:func:`styler_html` in ``shell`` (default: the
    running IPython kernel; nothing happens outside one). Returns whether they were installed.

    IPython prefers a printer registered for a type (or its base class) to the object's ``_repr_html_``.
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython is a dependency
            return False
        shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    import pandas as pd

    formatter = shell.display_formatter.formatters["text/html"]
    formatter.for_type(pd.DataFrame, frame_html)
    formatter.for_type(pd.Series, series_html)
    try:
        from pandas.io.formats.style import Styler  # needs jinja2
    except ImportError:  # pragma: no cover - jinja2 comes with Jupyter
        return True
    formatter.for_type(Styler, styler_html)
    return True


install_table_formatters()
