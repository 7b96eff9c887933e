"""Local checks that run before any request, so bad input never costs quota or a token."""

from __future__ import annotations

from ._errors import InvalidIdError, InvalidInputError

__all__ = ["check_id", "check_non_negative", "check_optional_id", "check_positive"]


def check_id(value: object, what: str) -> str:
    """Return ``value`` if it is a non-empty string of ASCII digits, else raise.

    Ints are accepted and turned into strings (ids exceed 32 bits; keep them as text).

    >>> check_id(1767024000004595194, "datasource_id")
    '1767024000004595194'
    """
    if isinstance(value, bool):
        raise InvalidIdError(f"{what} must be a string of digits, got {value!r}")
    if isinstance(value, int) and value >= 0:
        return str(value)
    if not isinstance(value, str):
        raise InvalidIdError(f"{what} must be a string of digits, got {type(value).__name__}")
    if not value or not value.isascii() or not value.isdigit():
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise InvalidIdError(f"{what} must be a non-empty string of digits, got {shown!r}")
    return value


def check_optional_id(value: object, what: str) -> str | None:
    """Like :func:`check_id` but ``None`` passes through."""
    return None if value is None else check_id(value, what)


def check_positive(value: float, what: str) -> float:
    """A number > 0 (timeouts, rates)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidInputError(f"{what} must be a positive number, got {value!r}")
    return float(value)


def check_non_negative(value: float, what: str) -> float:
    """A number >= 0 (delays, jitter)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise InvalidInputError(f"{what} must be a number >= 0, got {value!r}")
    return float(value)
