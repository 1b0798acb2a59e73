"""Deterministic randomness: one seed per chapter, independent streams per experiment, no global state."""

from __future__ import annotations

import random
import zlib

import numpy as np


def make_rng(seed: int, *keys: str | int) -> np.random.Generator:
    """A numpy Generator for ``seed`` and a path of keys, e.g. ``make_rng(SEED, "exact", 64)``.

    Distinct keys give independent streams; the same seed and keys always give the same stream
    (string keys are hashed with CRC32, which, unlike ``hash``, does not change between processes).
    """
    entropy = [int(seed)] + [k if isinstance(k, int) else zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(entropy)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's legacy global generator and torch (if installed)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - for third-party code that still uses the global state
    try:
        import torch
    except ImportError:  # torch is a dependency, but the numeric chapters must not need it
        return
    torch.manual_seed(seed)
