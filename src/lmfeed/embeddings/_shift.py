"""The relative shift: a ``(P, R)`` table of scores by distance laid out as ``(P, Q)`` scores by key, without a gather.

Transformer-XL's ``_rel_shift`` (Dai et al. 2019, appendix B), written for any shift: where every row of keys is
one run of consecutive positions, distance ``i - j`` moves by one per step along a row, so row ``p`` of the result
is row ``p`` of the table read from a start that moves back by one per row. Reading the padded table as a flat
buffer with a row stride one less than its width does that with views alone: forward and backward are plain copies
(a gather's backward is a scatter-add, several times slower on the CPU).
"""

from __future__ import annotations

import torch
from torch import nn


def skew(table: torch.Tensor, shift: int, width: int) -> torch.Tensor:
    """``out[..., p, q] = table[..., p, q - p + shift]`` wherever ``0 <= q - p + shift < R``; elsewhere arbitrary.

    Args:
        table: ``(..., P, R)``.
        shift: the column read at ``(p, q) = (0, 0)``; ``0 <= shift <= P``.
        width: Q, the number of columns of the result.

    Returns:
        ``(..., P, Q)``, a view of a padded copy of ``table`` (entries outside the range are padding or another
        row's values: finite, and the caller masks them).
    """
    rows, columns = table.shape[-2], table.shape[-1]
    padded_width = max(columns, width + 1)
    padded = nn.functional.pad(table, (0, padded_width - columns)).contiguous()  # (..., P, W)
    flat = padded.flatten(-2)  # (..., P * W)
    strided = flat[..., shift : shift + rows * (padded_width - 1)].unflatten(-1, (rows, padded_width - 1))
    return strided[..., :width]


def runs_of_positions(query_positions: torch.Tensor, key_positions: torch.Tensor) -> bool:
    """Whether every row of keys is one run ``p, p+1, ...`` and the queries are its last ``T_q`` (the shift applies)."""
    length_q = query_positions.shape[-1]
    if key_positions.shape[-1] > 1 and not bool((key_positions.diff(dim=-1) == 1).all()):
        return False
    return bool((key_positions[..., -length_q:] == query_positions).all())


def lowest_distance(length_q: int, length_k: int, allowed: torch.Tensor | None) -> int:
    """The lowest distance ``i - j`` a pair in use has, when the queries are the last ``T_q`` of a run of keys.

    0 when every allowed pair has its key at or before its query (causal attention); otherwise ``-(T_q - 1)``,
    the query at the start of the run against the last key.
    """
    if allowed is not None:
        past, device = length_k - length_q, allowed.device
        future = torch.arange(length_k, device=device) > past + torch.arange(length_q, device=device)[:, None]
        if not bool((allowed & future).any()):
            return 0
    return -(length_q - 1)
