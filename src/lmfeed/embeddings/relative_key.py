"""BERT's relative positions: a learned vector per clipped distance ``i - j``, dotted with the query (and the key).

Shaw, Uszkoreit and Vaswani, "Self-Attention with Relative Position Representations" (NAACL 2018),
https://arxiv.org/abs/1803.02155, gives each distance a learned vector ``r_{i-j}`` of ``head_dim`` values, clipped
at ``max_distance - 1`` either way; Huang, Liang, Xu and Xiang, "Improve Transformer Models with Better Relative
Position Embeddings" (Findings of EMNLP 2020), https://arxiv.org/abs/2009.13658, adds the key's product with it.
Hugging Face's BERT called them ``position_embedding_type="relative_key"`` and ``"relative_key_query"``:

    relative_key:        logit_ij = (q_i . k_j + q_i . r_{i-j}) / sqrt(head_dim)
    relative_key_query:  logit_ij = (q_i . k_j + q_i . r_{i-j} + k_j . r_{i-j}) / sqrt(head_dim)

The table has ``2 * max_distance - 1`` rows; distance ``i - j`` (query position minus key position) reads row
``clip(i - j, -(max_distance - 1), max_distance - 1) + max_distance - 1``, Hugging Face's ``distance_embedding``
index (which does not clip: BERT never sees more than ``max_position_embeddings`` tokens). One table is shared by
every head, as in both papers and in BERT.

Nothing of shape ``(T, T, head_dim)`` is built: ``q @ table.T`` gives each query's product with every distance
in use, ``(B, H, T, R)``, and one gather picks ``r_{i-j}`` for every pair.
"""

from __future__ import annotations

import torch
from torch import nn

from lmfeed._validate import as_int
from lmfeed.embeddings._shift import lowest_distance, runs_of_positions, skew

__all__ = ["RelativeKeyPositions"]

# Hugging Face BERT's initializer_range: every table N(0, 0.02^2).
INIT_STD = 0.02


class RelativeKeyPositions(nn.Module):
    """The learned distance table of Shaw et al. and its logit terms ``q_i . r_{i-j}`` (and ``k_j . r_{i-j}``).

    Args:
        head_dim: the width of each head's queries and keys (``embed_dim / num_heads``).
        max_distance: distances ``|i - j| >= max_distance - 1`` share the last vector of their side (default 512,
            BERT's ``max_position_embeddings``); at least 1 (then every pair shares one vector).
        key_query: False (default) adds ``q_i . r_{i-j}`` (``relative_key``); True adds ``k_j . r_{i-j}`` too
            (``relative_key_query``).
        device: where to create the table (``"meta"`` for a shape-only module); ``dtype``: its dtype.

    Attributes:
        weight: ``(2 * max_distance - 1, head_dim)`` trainable table, row ``d + max_distance - 1`` for distance
            ``d = i - j`` (Hugging Face's ``distance_embedding.weight``), initialised N(0, 0.02^2).

    Past the longest length: distances beyond ``max_distance - 1`` are clipped, so any length works.

    Example:
        >>> rk = RelativeKeyPositions(64, max_distance=4)
        >>> rk.weight.shape                                       # torch.Size([7, 64]): distances -3 .. 3
        >>> rk.index(torch.arange(6), torch.arange(6))[5]         # tensor([6, 6, 6, 5, 4, 3]): 5..0 clipped at 3, + 3
        >>> q = k = torch.randn(2, 4, 6, 64)                      # (B, H, T, head_dim)
        >>> rk(q, k).shape                                        # torch.Size([2, 4, 6, 6]), unscaled
    """

    def __init__(
        self,
        head_dim: int,
        *,
        max_distance: int = 512,
        key_query: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.head_dim = as_int("head_dim", head_dim)
        self.max_distance = as_int(
            "max_distance", max_distance, minimum=1,
            fix="It counts the distances 0 .. max_distance-1 that get their own vector; use e.g. max_distance=512 "
                "(BERT's), or the model's context_length.",
        )
        self.key_query = bool(key_query)
        self.weight = nn.Parameter(torch.empty(2 * self.max_distance - 1, self.head_dim, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """(Re)draw the table, N(0, 0.02^2), from torch's global RNG."""
        with torch.no_grad():
            nn.init.normal_(self.weight, mean=0.0, std=INIT_STD)

    def index(self, query_positions: torch.Tensor, key_positions: torch.Tensor) -> torch.Tensor:
        """Row of the table for every (query, key) pair: int64 ``(..., T_q, T_k)``.

        Args:
            query_positions: integer ``(T_q,)`` or ``(B, T_q)``.
            key_positions: integer ``(T_k,)`` or ``(B, T_k)``.
        """
        distance = query_positions.to(torch.int64).unsqueeze(-1) - key_positions.to(torch.int64).unsqueeze(-2)
        reach = self.max_distance - 1
        return distance.clamp(-reach, reach) + reach

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        query_positions: torch.Tensor | None = None,
        key_positions: torch.Tensor | None = None,
        *,
        allowed: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The relative terms of the logits, before the ``1/sqrt(head_dim)`` they share with ``q . k``.

        Args:
            q: ``(B, H, T_q, head_dim)`` queries.
            k: ``(B, H, T_k, head_dim)`` keys.
            query_positions: integer ``(T_q,)`` or ``(B, T_q)``; default the last ``T_q`` of ``0 .. T_k-1``.
            key_positions: integer ``(T_k,)`` or ``(B, T_k)``; default ``0 .. T_k-1``.
            allowed: optional bool ``(T_q, T_k)`` or ``(B, T_q, T_k)``, the pairs attention will keep; the others
                get an arbitrary finite value (they are masked anyway), so only the distances in use are read.

        Returns:
            ``(B, H, T_q, T_k)`` in q's dtype: ``q_i . r_{i-j}``, plus ``k_j . r_{i-j}`` when ``key_query``.
        """
        length_q, length_k = q.shape[-2], k.shape[-2]
        if key_positions is None:
            key_positions = torch.arange(length_k, device=q.device)
        if query_positions is None:
            query_positions = torch.arange(length_k - length_q, length_k, device=q.device)
        # on CUDA, deciding the shift or reading the rows in use back (bool(), int()) is a device sync per forward:
        # there the whole table is gathered from instead (the same values, no read-back)
        on_device = q.device.type == "cuda"
        if not on_device and runs_of_positions(query_positions, key_positions):
            return self._shifted(q, k, lowest_distance(length_q, length_k, allowed))
        index = self.index(query_positions, key_positions)  # (T_q, T_k) or (B, T_q, T_k)
        if allowed is not None:
            index = index.masked_fill(~allowed, self.max_distance - 1)  # distance 0: always in use (the diagonal)
        if on_device:
            low, high = 0, self.weight.shape[0] - 1
        else:
            low, high = int(index.min()), int(index.max())  # only these rows are read: R = high - low + 1
        rows = self.weight[low : high + 1].to(q.dtype)  # (R, head_dim)
        index = (index - low).unsqueeze(-3)  # (B or 1, 1, T_q, T_k)
        batch, heads = q.shape[0], q.shape[1]
        by_query = (q @ rows.T).gather(-1, index.expand(batch, heads, length_q, length_k))  # (B, H, T_q, T_k)
        if not self.key_query:
            return by_query
        by_key = (k @ rows.T).gather(-1, index.transpose(-1, -2).expand(batch, heads, length_k, length_q))
        return by_query + by_key.transpose(-1, -2)  # k_j . r_{i-j}, laid out (T_q, T_k)

    def _shifted(self, q: torch.Tensor, k: torch.Tensor, low: int) -> torch.Tensor:
        """The terms when keys are one run of positions and the queries its last T_q: the relative shift."""
        length_q, length_k = q.shape[-2], k.shape[-2]
        reach = self.max_distance - 1
        distances = torch.arange(length_k - 1, low - 1, -1, device=q.device)  # (R,), decreasing
        rows = self.weight[distances.clamp(-reach, reach) + reach].to(q.dtype)  # (R, head_dim): r_{clip(d)}
        by_query = skew(q @ rows.T, length_q - 1, length_k)  # (B, H, T_q, T_k)
        if not self.key_query:
            return by_query
        # k_j . r_{i-j}: rows j, distances increasing from `low` along the columns, read back by query
        by_key = skew(k @ rows.flip(0).T, length_k - length_q - low, length_q)  # (B, H, T_k, T_q)
        return by_query + by_key.transpose(-1, -2)

    def distances(self) -> torch.Tensor:
        """The distance each row of :attr:`weight` stands for: ``-(max_distance-1) .. max_distance-1``, int64."""
        reach = self.max_distance - 1
        return torch.arange(-reach, reach + 1, device=self.weight.device)

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, max_distance={self.max_distance}, key_query={self.key_query}"
