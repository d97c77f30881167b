"""One attention layer's memory of past keys and values: Transformer-XL's ``mems`` and a decoder's KV cache.

:class:`CausalSelfAttention` called with ``kv_cache=cache`` attends over the cached tokens and the new ones, then
appends the new keys and values (and their positions and documents) to the cache. Two uses, one object:

- **Transformer-XL's segment recurrence** (Dai et al. 2019, section 3.2): ``KVCache(max_length=M)`` keeps the last
  M tokens, so segment s+1 attends to the end of segment s; distances are counted across the boundary from the
  positions stored with the keys.
- **Generation**: ``KVCache()`` keeps every token, so each decoding step computes only the new token's q, k, v.

What is stored is detached from the graph: gradients stop at the boundary, as the paper's ``SG(h)`` does. (The
paper caches the layer's input and recomputes keys and values from it; caching the keys and values themselves is
the same forward pass, and the same gradients except that ``W_k`` and ``W_v`` get none through the memory.)
Keys are stored as the scheme made them (RoPE's are rotated at their own positions).

A model keeps one cache per layer: ``caches = [KVCache(max_length=M) for _ in model.blocks]``.
"""

from __future__ import annotations

import torch

from lmfeed._validate import as_int

__all__ = ["KVCache"]


class KVCache:
    """Past keys, values, positions and document ids of one attention layer.

    Args:
        max_length: keep at most this many tokens, the most recent (Transformer-XL's ``mem_len``); default None
            keeps every token (generation).

    Attributes:
        keys, values: ``(B, H, M, head_dim)`` tensors, or None while empty.
        position_ids: ``(B, M)`` int64, the position of every cached token, or None while empty.
        document_ids: ``(B, M)`` int64 when the tokens came with document ids, else None.

    Example:
        >>> attn = CausalSelfAttention(256, 4, positional="xl")
        >>> cache = KVCache(max_length=512)
        >>> y1 = attn(segment_1, kv_cache=cache)    # (8, 512, 256); the cache now holds its 512 tokens
        >>> y2 = attn(segment_2, kv_cache=cache)    # attends to segment_1 too, positions 512 .. 1023
        >>> len(cache)                              # 512: the last 512 tokens
    """

    def __init__(self, *, max_length: int | None = None) -> None:
        self.max_length = None if max_length is None else as_int(
            "max_length", max_length, fix="It is how many past tokens the cache keeps; None keeps them all.")
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None
        self.position_ids: torch.Tensor | None = None
        self.document_ids: torch.Tensor | None = None

    def __len__(self) -> int:
        """M, the number of cached tokens (per row)."""
        return 0 if self.keys is None else self.keys.shape[-2]

    def reset(self) -> None:
        """Forget every cached token (before a new batch of texts)."""
        self.keys = self.values = self.position_ids = self.document_ids = None

    def check(self, batch: int, num_heads: int, head_dim: int) -> None:
        """Refuse a cache made by another layer or for another batch, naming both shapes and the fix.

        Raises:
            ValueError: the cached keys are not ``(batch, num_heads, M, head_dim)``.
        """
        if self.keys is None:
            return
        cached_batch, cached_heads, length, cached_dim = self.keys.shape
        if (cached_batch, cached_heads, cached_dim) != (batch, num_heads, head_dim):
            raise ValueError(
                f"kv_cache holds keys of shape {tuple(self.keys.shape)} (batch {cached_batch}, {cached_heads} heads of "
                f"{cached_dim}), but this layer makes batch {batch}, {num_heads} heads of {head_dim}. A memory "
                "must come from the same layer and the same batch: use one KVCache per layer, and cache.reset() "
                "(or a new KVCache) before a batch of another size."
            )

    def next_position_ids(self, length: int) -> torch.Tensor | None:
        """The positions that continue the cache: ``(B, length)`` int64, or None while empty."""
        if self.position_ids is None:
            return None
        start = self.position_ids[:, -1:] + 1  # (B, 1)
        return start + torch.arange(length, device=start.device)

    def append(
        self,
        keys: torch.Tensor,
        values: torch.Tensor,
        position_ids: torch.Tensor,
        document_ids: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Join the new tokens after the cached ones, keep the last ``max_length``, return everything joined.

        Args:
            keys, values: ``(B, H, T, head_dim)`` of the new tokens (with their graph).
            position_ids: ``(B, T)`` int64 positions of the new tokens.
            document_ids: ``(B, T)`` int64 or None.

        Returns:
            ``(keys, values, position_ids, document_ids)`` over ``M + T`` tokens: the cached ones (detached) then
            the new ones (still in the graph), for this call's attention.
        """
        if self.keys is not None and self.values is not None and self.position_ids is not None:
            keys = torch.cat([self.keys.to(keys.dtype), keys], dim=-2)
            values = torch.cat([self.values.to(values.dtype), values], dim=-2)
            position_ids = torch.cat([self.position_ids, position_ids], dim=-1)
            if document_ids is not None and self.document_ids is not None:
                document_ids = torch.cat([self.document_ids, document_ids], dim=-1)
        keep = keys.shape[-2] if self.max_length is None else min(self.max_length, keys.shape[-2])
        self.keys, self.values = keys[..., -keep:, :].detach(), values[..., -keep:, :].detach()
        self.position_ids = position_ids[:, -keep:]
        self.document_ids = None if document_ids is None else document_ids[:, -keep:]
        return keys, values, position_ids, document_ids

    def __repr__(self) -> str:
        return f"KVCache(max_length={self.max_length}, cached={len(self)})"
