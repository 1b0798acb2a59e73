"""Helpers a chapter uses to show its code and its environment to the reader."""

from __future__ import annotations

import inspect
import platform
from importlib import metadata

from IPython.display import Markdown


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
