"""Argument checks shared by every public function: errors at the edge, with the value, the limit and the fix.

Inner code trusts what these functions let through.
"""

from __future__ import annotations

import operator
from typing import Any, TypeVar

_Choice = TypeVar("_Choice")  # one of the choices: a Literal type where the caller declares one


def as_int(name: str, value: Any, *, minimum: int | None = 1, maximum: int | None = None, fix: str = "") -> int:
    """Return ``value`` as a Python int, or raise TypeError/ValueError naming it, its limit and the fix.

    Booleans and floats are refused (``max_length=4.0`` or ``True`` is almost always a mistake); numpy and torch
    integer scalars are accepted.
    """
    if isinstance(value, bool) or not _is_integer(value):
        raise TypeError(
            f"{name} must be an integer, but got {value!r} ({type(value).__name__}). "
            f"Pass a whole number{f' >= {minimum}' if minimum is not None else ''}, e.g. {name}=4."
        )
    number = operator.index(value)
    if minimum is not None and number < minimum:
        hint = fix or f"Use {name} >= {minimum}."
        raise ValueError(f"{name} must be at least {minimum}, but got {number}. {hint}")
    if maximum is not None and number > maximum:
        hint = fix or f"Use {name} <= {maximum:,}."
        raise ValueError(f"{name} must be at most {maximum:,}, but got {number:,}. {hint}")
    return number


def _is_integer(value: Any) -> bool:
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def as_choice(name: str, value: Any, choices: tuple[_Choice, ...]) -> _Choice:
    """Return ``value`` if it is one of ``choices``, else a ValueError that lists them."""
    if value not in choices:
        known = ", ".join(repr(c) for c in choices)
        raise ValueError(f"Unknown {name} {value!r}. Choose one of: {known}.")
    return value


def as_probability(name: str, value: Any, *, fix: str = "") -> float:
    """Return ``value`` as a float in [0, 1), else a clear error (used for dropout and split fractions)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1), but got {value!r} ({type(value).__name__}).")
    number = float(value)
    if not 0.0 <= number < 1.0:
        raise ValueError(f"{name} must be in [0, 1), but got {number}. {fix or f'Use e.g. {name}=0.1.'}")
    return number
