"""What the book is made of, read from its files (shared by test_book and test_notebooks)."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc() -> dict:
    return yaml.safe_load((ROOT / "_toc.yml").read_text())


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def toc_files() -> list[str]:
    """Every file entry of the table of contents, in order (without suffix)."""
    files = [toc()["root"]]
    for part in toc()["parts"]:
        files += [entry["file"] for entry in part["chapters"]]
    return files


def toc_notebooks() -> list[Path]:
    return [ROOT / f"{f}.ipynb" for f in toc_files() if f.startswith("notebooks/")]
