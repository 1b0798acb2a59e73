"""Scale tiers and parameter validation shared by every chapter.

Every notebook has a cell tagged ``parameters`` (``SCALE``, ``SEED``, maybe ``MODEL`` and its own knobs)
and validates them in the next cell with :func:`check_scale`, :func:`check_choice` and friends, so a
wrong value fails at once with a message that names the parameter and the allowed values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

SCALES: tuple[str, ...] = ("smoke", "book", "full")
"""``smoke``: every code path runs (≤ 45 s); ``book``: the rendered book (≤ 3 min); ``full``: no limit."""

T = TypeVar("T")


class ParameterError(ValueError):
    """A notebook or CLI parameter has a value outside its allowed set."""


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``; otherwise raise :class:`ParameterError` listing them."""
    allowed = tuple(allowed)
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ParameterError(f"{name}={value!r} is not valid; choose one of: {choices}")
    return value


def check_scale(scale: str) -> str:
    """Validate the ``SCALE`` parameter."""
    return check_choice("SCALE", scale, SCALES)


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Validate an integer parameter (``bool`` is refused) within optional bounds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(f"{name}={value!r} must be an integer")
    if minimum is not None and value < minimum:
        raise ParameterError(f"{name}={value!r} must be ≥ {minimum}")
    if maximum is not None and value > maximum:
        raise ParameterError(f"{name}={value!r} must be ≤ {maximum}")
    return value


def check_float(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None) -> float:
    """Validate a real parameter within optional closed bounds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(f"{name}={value!r} must be a number")
    if minimum is not None and value < minimum:
        raise ParameterError(f"{name}={value!r} must be ≥ {minimum}")
    if maximum is not None and value > maximum:
        raise ParameterError(f"{name}={value!r} must be ≤ {maximum}")
    return float(value)


def check_seed(seed: Any) -> int:
    """Validate the ``SEED`` parameter: a non-negative integer."""
    return check_int("SEED", seed, minimum=0)


def by_scale(scale: str, *, smoke: T, book: T, full: T) -> T:
    """Pick the value for the current tier: ``by_scale(SCALE, smoke=200, book=2000, full=20000)``."""
    return {"smoke": smoke, "book": book, "full": full}[check_scale(scale)]
