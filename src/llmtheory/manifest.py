"""``data/MANIFEST``: the sha256 of every shipped data file, so a corrupted or stale checkpoint is caught.

``python -m llmtheory.manifest --write`` rewrites it; ``--check`` (the default) exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from .paths import data_dir

MANIFEST_NAME = "MANIFEST"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def compute_manifest(folder: Path | None = None) -> dict[str, str]:
    """``{relative path: sha256}`` for every file under ``data/`` except the manifest itself."""
    folder = folder or data_dir()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)
    return {p.relative_to(folder).as_posix(): sha256(p) for p in files}


def format_manifest(entries: dict[str, str]) -> str:
    return "".join(f"{digest}  {name}\n" for name, digest in entries.items())


def read_manifest(folder: Path | None = None) -> dict[str, str]:
    folder = folder or data_dir()
    lines = (folder / MANIFEST_NAME).read_text().splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines if line.strip())}


def manifest_differences(folder: Path | None = None) -> list[str]:
    """Human-readable differences between ``data/MANIFEST`` and the files on disk (empty when they agree)."""
    recorded, actual = read_manifest(folder), compute_manifest(folder)
    problems = [f"missing file: {n}" for n in recorded.keys() - actual.keys()]
    problems += [f"not in MANIFEST: {n}" for n in actual.keys() - recorded.keys()]
    problems += [f"changed: {n}" for n in recorded.keys() & actual.keys() if recorded[n] != actual[n]]
    return sorted(problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmtheory.manifest", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite data/MANIFEST from the files")
    args = parser.parse_args(argv)
    if args.write:
        entries = compute_manifest()
        (data_dir() / MANIFEST_NAME).write_text(format_manifest(entries))
        print(f"wrote data/{MANIFEST_NAME}: {len(entries)} files")
        return 0
    problems = manifest_differences()
    print("\n".join(problems) or "data/MANIFEST matches the files")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
