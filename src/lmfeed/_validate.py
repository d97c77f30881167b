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
            f"Pass a whole number{f' >= {minimum}' if minimum is not None else ''}, "
            f"e.g. {name}={_example(value, minimum, maximum)}."
        )
    number = operator.index(value)
    if minimum is not None and number < minimum:
        hint = fix or f"Use {name} >= {minimum}."
        raise ValueError(f"{name} must be at least {minimum}, but got {number}. {hint}")
    if maximum is not None and number > maximum:
        hint = fix or f"Use {name} <= {maximum:,}."
        raise ValueError(f"{name} must be at most {maximum:,}, but got {number:,}. {hint}")
    return number


def _example(value: Any, minimum: int | None, maximum: int | None) -> int:
    """A whole number inside [minimum, maximum] for the message: the value itself when it is one ('300', 300.0)."""
    try:
        whole = float(value)
        example = int(whole) if whole.is_integer() and not isinstance(value, bool) else 4
    except (TypeError, ValueError, OverflowError):
        example = 4
    if minimum is not None:
        example = max(example, minimum)
    if maximum is not None:
        example = min(example, maximum)
    return example


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


def as_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool (numpy's included), else a TypeError: ``shuffle="False"`` is truthy, and
    would silently mean the opposite of what it says."""
    kind = type(value)
    if isinstance(value, bool) or (kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")):  # np.True_
        return bool(value)
    hint = f" (a string: {name}={value.strip().lower() == 'true'} without quotes?)" if isinstance(value, str) and \
        value.strip().lower() in ("true", "false") else ""
    raise TypeError(f"{name} must be True or False, but got {value!r} ({type(value).__name__}){hint}.")


SEED_MAX = 2**64 - 1  # torch.manual_seed and numpy's SeedSequence both take seeds in [0, 2**64)


def as_seed(name: str, value: Any) -> int:
    """Return ``value`` as a seed in ``[0, 2**64 - 1]``, the range ``torch.manual_seed`` takes, else a clear error
    (torch's own is "Overflow when unpacking long long")."""
    example = f"{name} 123" if name.startswith("--") else f"{name}=123"
    return as_int(name, value, minimum=0, maximum=SEED_MAX,
                  fix=f"A seed is a whole number from 0 to 2**64 - 1 = {SEED_MAX:,}, e.g. {example}.")


def check_heads(embed_dim: int, num_heads: int) -> None:
    """Raise ValueError unless ``num_heads`` divides ``embed_dim`` (each head gets ``embed_dim / num_heads``)."""
    if embed_dim % num_heads:
        raise ValueError(
            f"embed_dim={embed_dim} is not divisible by num_heads={num_heads}; each head gets "
            "embed_dim / num_heads dimensions. Pick num_heads among the divisors of embed_dim."
        )
