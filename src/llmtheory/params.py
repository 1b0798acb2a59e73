"""Scale tiers and parameter validation shared by every chapter.

Every notebook has a cell tagged ``parameters`` (``SCALE``, ``SEED``, maybe ``MODEL`` and its own knobs). Its
chapter module declares them once, as ``PARAMETERS`` (a mapping from each name to a checker: :class:`Int`,
:class:`Real`, :class:`Choice`, :class:`Model`, :class:`ListOf`, :class:`Folder`, :class:`File`, :class:`Text`,
:class:`Optional`, or any function ``checker(name, value)``), and the notebook's next cell validates them all in
one line::

    check_parameters(globals(), spectral_ball.PARAMETERS)

so a wrong value fails at once with a message that names the parameter and the allowed values; the command line
(``python -m llmtheory run <slug> -p NAME=value``) checks the same declaration before it starts the notebook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
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


Checker = Callable[[str, Any], Any]
"""Validates one parameter: ``checker(name, value)`` returns the value (normalised) or raises ParameterError."""


@dataclass(frozen=True)
class Int:
    """An integer within optional bounds (:func:`check_int`)."""

    minimum: int | None = None
    maximum: int | None = None

    def __call__(self, name: str, value: Any) -> int:
        return check_int(name, value, minimum=self.minimum, maximum=self.maximum)


@dataclass(frozen=True)
class Real:
    """A real number within optional closed bounds (:func:`check_float`); an integer becomes a float."""

    minimum: float | None = None
    maximum: float | None = None

    def __call__(self, name: str, value: Any) -> float:
        return check_float(name, value, minimum=self.minimum, maximum=self.maximum)


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values (:func:`check_choice`)."""

    values: tuple

    def __init__(self, *values: Any):
        object.__setattr__(self, "values", tuple(values))

    def __call__(self, name: str, value: Any) -> Any:
        return check_choice(name, value, self.values)


@dataclass(frozen=True)
class Text:
    """A string; ``empty`` says whether "" is allowed (it usually means "not given")."""

    what: str = "a string"
    empty: bool = True

    def __call__(self, name: str, value: Any) -> str:
        if not isinstance(value, str) or not (value or self.empty):
            raise ParameterError(f"{name}={value!r} must be {self.what}")
        return value


@dataclass(frozen=True)
class Model(Text):
    """A model for :func:`llmtheory.zoo.load`: a non-empty string (whether it exists is checked when it loads)."""

    what: str = "a zoo name, a local folder or a Hugging Face model id"
    empty: bool = False


@dataclass(frozen=True)
class Folder:
    """An existing directory, or "" for none (when ``empty``)."""

    what: str = "a folder"
    empty: bool = True

    def exists(self, path: Path) -> bool:
        return path.is_dir()

    def __call__(self, name: str, value: Any) -> str:
        if value == "" and self.empty:
            return value
        if not isinstance(value, str | Path) or not self.exists(Path(value)):
            raise ParameterError(f"{name}={value!r} must be {self.what} that exists" + (' or ""' if self.empty else ""))
        return str(value)


@dataclass(frozen=True)
class File(Folder):
    """An existing file, or "" for none (when ``empty``)."""

    what: str = "a file"

    def exists(self, path: Path) -> bool:
        return path.is_file()


@dataclass(frozen=True)
class ListOf:
    """A list (or tuple) whose every item passes ``item``; of exactly ``length`` items when given, never empty."""

    item: Checker
    length: int | None = None
    what: str = ""

    def __call__(self, name: str, value: Any) -> list:
        size = f"{self.length} " if self.length else "a non-empty list of "
        shape = self.what or f"{size}items"
        if not isinstance(value, list | tuple) or not value or (self.length and len(value) != self.length):
            raise ParameterError(f"{name}={value!r} must be {shape}")
        return [self.item(f"{name}[{i}]", v) for i, v in enumerate(value)]


@dataclass(frozen=True)
class Optional:
    """``None``, or a value that passes ``inner``."""

    inner: Checker

    def __call__(self, name: str, value: Any) -> Any:
        return None if value is None else self.inner(name, value)


def check_values(values: Mapping[str, Any], spec: Mapping[str, Checker]) -> dict[str, Any]:
    """Check ``SCALE``, ``SEED`` and every parameter ``spec`` declares that ``values`` holds; return the normalised
    values (only those given: the command line checks the ones a user overrides)."""
    checkers = {"SCALE": lambda _name, value: check_scale(value), "SEED": lambda _name, value: check_seed(value)}
    checkers.update(spec)
    unknown = sorted(set(values) - set(checkers))
    if unknown:
        raise ParameterError(f"parameter(s) {', '.join(unknown)} not declared; declared: {', '.join(checkers)}")
    return {name: checkers[name](name, value) for name, value in values.items()}


def check_parameters(namespace: MutableMapping[str, Any], spec: Mapping[str, Checker]) -> None:
    """Validate a notebook's parameters in place: ``SCALE``, ``SEED`` and every name of ``spec`` must be set in
    ``namespace`` (the notebook's ``globals()``), and each is replaced by its checked, normalised value."""
    names = ("SCALE", "SEED", *spec)
    missing = [name for name in names if name not in namespace]
    if missing:
        raise ParameterError(f"parameter(s) {', '.join(missing)} declared but not set in the parameters cell")
    namespace.update(check_values({name: namespace[name] for name in names}, spec))
