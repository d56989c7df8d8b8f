"""Field checks shared by every config dataclass: one approach, one message style.

Each check raises :class:`~tinydancer.errors.ConfigError` (a ``ValueError``) worded as
``"<field>: expected <what>, got <repr>"``. Booleans are never accepted as numbers (``True`` is an
``int`` in Python, but ``max_tokens=True`` is a mistake), strings are never accepted as numbers
(``learning_rate="0.1"`` is caught here, not as a TypeError deep in training), and integers too large
for a float are not finite.

Examples:
    >>> check_int("epochs", 30, low=1)
    30
    >>> check_number("learning_rate", "0.1", low=0, low_open=True)
    Traceback (most recent call last):
    ...
    tinydancer.errors.ConfigError: learning_rate: expected a finite number > 0, got '0.1'
    >>> check_int("max_tokens", True, low=1)
    Traceback (most recent call last):
    ...
    tinydancer.errors.ConfigError: max_tokens: expected an integer >= 1, got True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from tinydancer.errors import ConfigError

T = TypeVar("T")


def finite_number(value: object) -> bool:
    """A real, finite number (bool excluded); huge ints that overflow float are not finite.

    Examples:
        >>> finite_number(0.5), finite_number(10**400), finite_number(True), finite_number(float("nan"))
        (True, False, False, False)
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    # Integer bounds print in full (2**63 - 1, not 9.22337e+18); float bounds in their shortest form.
    def show(bound: float) -> str:
        return str(bound) if isinstance(bound, int) else f"{bound:g}"

    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {show(low)}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {show(high)}")
    return " and ".join(parts)


def _in_bounds(value: float, low: float | None, high: float | None, low_open: bool, high_open: bool) -> bool:
    if low is not None and (value <= low if low_open else value < low):
        return False
    return not (high is not None and (value >= high if high_open else value > high))


def check_number(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite int or float within the bounds; returns it unchanged.

    Args:
        name: Field name for the message.
        value: The value to check.
        low: Lower bound (None: unbounded); ``low_open`` makes it strict.
        high: Upper bound (None: unbounded); ``high_open`` makes it strict.

    Raises:
        ConfigError: Not a finite number, a bool, or out of bounds.

    Examples:
        >>> check_number("sparsity", 0.5, low=0, high=1, low_open=True)
        0.5
        >>> check_number("sparsity", 0, low=0, high=1, low_open=True)
        Traceback (most recent call last):
        ...
        tinydancer.errors.ConfigError: sparsity: expected a finite number > 0 and <= 1, got 0
    """
    if not finite_number(value) or not _in_bounds(value, low, high, low_open, high_open):  # type: ignore[arg-type]
        bounds = _bounds(low, high, low_open, high_open)
        raise ConfigError(f"{name}: expected a finite number{' ' + bounds if bounds else ''}, got {value!r}")
    return value  # type: ignore[return-value]


def check_int(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    """An int (never a bool) within ``[low, high]``; returns it.

    Examples:
        >>> check_int("hidden_dim", 16, low=1, high=65536)
        16
        >>> check_int("hidden_dim", 2.0, low=1)
        Traceback (most recent call last):
        ...
        tinydancer.errors.ConfigError: hidden_dim: expected an integer >= 1, got 2.0
    """
    if isinstance(value, bool) or not isinstance(value, int) or not _in_bounds(value, low, high, False, False):
        bounds = _bounds(low, high, False, False)
        raise ConfigError(f"{name}: expected an integer{' ' + bounds if bounds else ''}, got {value!r}")
    return value


def check_bool(name: str, value: object) -> bool:
    """True or False only (``"no"`` would otherwise silently mean True).

    Examples:
        >>> check_bool("enable_circuit_breaker", "no")
        Traceback (most recent call last):
        ...
        tinydancer.errors.ConfigError: enable_circuit_breaker: expected True or False, got 'no'
    """
    if not isinstance(value, bool):
        raise ConfigError(f"{name}: expected True or False, got {value!r}")
    return value


def check_choice(name: str, value: T, choices: Collection[T]) -> T:
    """One of ``choices``, of the same type (``64.0`` is not ``64``, ``True`` is not ``1``).

    Examples:
        >>> check_choice("renderer", "xml", ("console", "json", "none"))
        Traceback (most recent call last):
        ...
        tinydancer.errors.ConfigError: renderer: expected one of ('console', 'json', 'none'), got 'xml'
        >>> check_choice("level", [], ("DEBUG", "INFO"))
        Traceback (most recent call last):
        ...
        tinydancer.errors.ConfigError: level: expected one of ('DEBUG', 'INFO'), got []
        >>> check_choice("dim", 64.0, (64, 128, 256))
        Traceback (most recent call last):
        ...
        tinydancer.errors.ConfigError: dim: expected one of (64, 128, 256), got 64.0
    """
    # Same type and equal: 64.0 is not the size 64, True is not 1, and an unhashable value is simply unknown.
    if not any(type(value) is type(choice) and value == choice for choice in choices):
        raise ConfigError(f"{name}: expected one of {tuple(choices)!r}, got {value!r}")
    return value


def check_text(name: str, value: object, *, allow_empty: bool = False) -> str:
    """A str without NUL bytes (non-empty unless ``allow_empty``).

    Examples:
        >>> check_text("service_name", "")
        Traceback (most recent call last):
        ...
        tinydancer.errors.ConfigError: service_name: expected a non-empty string without NUL bytes, got ''
    """
    if not isinstance(value, str) or "\x00" in value or (not value and not allow_empty):
        kind = "a string" if allow_empty else "a non-empty string"
        raise ConfigError(f"{name}: expected {kind} without NUL bytes, got {value!r}")
    return value


def check_optional(check: Callable[..., T], name: str, value: object, **options: Any) -> T | None:
    """None, or a value that ``check(name, value, **options)`` accepts; the message then says "None or ...".

    Args:
        check: One of the checks above.
        name: Field name for the message.
        value: The value to check.
        **options: The check's keyword options (bounds, ``allow_empty``).

    Raises:
        ConfigError: Not None and rejected by ``check``.

    Examples:
        >>> check_optional(check_number, "inference_timeout_s", None, low=0, low_open=True) is None
        True
        >>> check_optional(check_int, "w_rank", 0, low=1)
        Traceback (most recent call last):
        ...
        tinydancer.errors.ConfigError: w_rank: expected None or an integer >= 1, got 0
    """
    if value is None:
        return None
    try:
        return check(name, value, **options)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace(f"{name}: expected ", f"{name}: expected None or ", 1)) from None


__all__ = ["check_bool", "check_choice", "check_int", "check_number", "check_optional", "check_text", "finite_number"]
