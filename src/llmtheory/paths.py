"""Where the book's files live: the repository root, its data and its build outputs."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The repository this package was installed from (an editable install, locally or in Colab).

    ``LLMTHEORY_ROOT`` overrides it. Raises ``FileNotFoundError`` with a hint when the package was
    installed without its repository (chapters, data and the zoo live in the repository, not the wheel).
    """
    if "LLMTHEORY_ROOT" in os.environ:
        return Path(os.environ["LLMTHEORY_ROOT"]).resolve()
    candidate = Path(__file__).resolve().parents[2]
    if (candidate / "notebooks").is_dir() and (candidate / "pyproject.toml").is_file():
        return candidate
    raise FileNotFoundError(
        "llmtheory is not installed from a clone of the book's repository; clone it and run "
        "`pip install -e .` there, or set LLMTHEORY_ROOT to the clone's path"
    )


def data_dir() -> Path:
    """``data/``: small shipped data and the model zoo."""
    return repo_root() / "data"


def build_dir() -> Path:
    """``_build/`` (never committed)."""
    return repo_root() / "_build"


def claims_dir(scale: str) -> Path:
    """Where ledgers of runs at ``scale`` are written; ``LLMTHEORY_CLAIMS_DIR`` overrides the base folder.

    One folder per tier, so a quick smoke run never overwrites the book-tier ledger that the book shows.
    """
    base = Path(os.environ["LLMTHEORY_CLAIMS_DIR"]) if "LLMTHEORY_CLAIMS_DIR" in os.environ else None
    return (base or build_dir() / "claims") / scale


def figures_dir() -> Path:
    """Where chapters save their figures (``_build/figures``); ``LLMTHEORY_FIGURES_DIR`` overrides it, so that the
    test suite's smoke runs never overwrite the book's figures and parallel test workers never share a file."""
    override = os.environ.get("LLMTHEORY_FIGURES_DIR")
    return Path(override) if override else build_dir() / "figures"
