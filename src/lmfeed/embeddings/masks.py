"""Document masks: attention that stays inside each document of a packed row, and causal within it.

Query i may attend key j when ``j <= i`` and ``document_ids[i] == document_ids[j]`` (Megatron's
``reset_attention_mask``): a block-diagonal causal mask. Three ways to apply it:

- a boolean ``(B, 1, T, T)`` mask through ``scaled_dot_product_attention`` (:func:`document_causal_mask`), on any
  device; memory O(B T^2) bits;
- FlexAttention's ``create_block_mask`` (:func:`flex_block_mask`), which skips whole blocks that cross documents
  (fused under ``torch.compile``; on CPU without it, an unfused reference path);
- varlen kernels on a GPU: flatten the batch to ``(B * T, H, head_dim)`` and hand them the cumulative document
  lengths (``lmfeed.loading.documents.cu_seqlens(document_ids)``, or a ``DocumentBatch``'s ``cu_seqlens`` and
  ``max_seqlen``): ``torch.nn.attention.varlen.varlen_attn(q, k, v, cu, cu, max_seqlen, max_seqlen,
  window_size=(-1, 0))`` or flash-attn's ``flash_attn_varlen_func(..., causal=True)``; no T x T mask at all.

Document ids come from the loader (``create_dataloader(..., return_documents=True)``), numbered along each row.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["causal_allowed", "cu_seqlens_of", "document_causal_mask", "flex_attention_available", "flex_block_mask"]


def cu_seqlens_of(document_ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``(cu_seqlens int32, max_seqlen)`` of ``document_ids`` ``(B, T)``, on their device, for varlen kernels.

    The loader's ``lmfeed.loading.documents.cu_seqlens`` computes the same (embeddings import nothing from
    loading; a test holds the two equal): a segment starts at every row start and wherever the id changes.
    """
    ids = document_ids.reshape(1, -1) if document_ids.dim() == 1 else document_ids
    change = torch.ones_like(ids, dtype=torch.bool)
    change[:, 1:] = ids[:, 1:] != ids[:, :-1]
    offsets = torch.nonzero(change.reshape(-1)).flatten()
    cu = torch.cat((offsets, torch.tensor([ids.numel()], device=ids.device))).to(torch.int32)
    return cu, int((cu[1:] - cu[:-1]).max())


def document_causal_mask(document_ids: torch.Tensor) -> torch.Tensor:
    """Boolean mask, True where query i may attend key j: ``j <= i`` and the same document.

    Args:
        document_ids: integer ``(B, T)`` or ``(T,)``.

    Returns:
        ``(B, 1, T, T)`` bool (or ``(T, T)`` for ``(T,)`` ids), for ``scaled_dot_product_attention``'s
        ``attn_mask`` (the 1 broadcasts over heads).

    Example:
        >>> document_causal_mask(torch.tensor([0, 0, 1])).int().tolist()
        [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    """
    mask = causal_allowed(document_ids.shape[-1], device=document_ids.device, document_ids=document_ids)
    return mask if document_ids.dim() == 1 else mask.unsqueeze(1)


def causal_allowed(length: int, past: int = 0, *, device: torch.device | str | None = None,
                   document_ids: torch.Tensor | None = None,
                   key_document_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Boolean ``(T, M + T)`` (or ``(..., T, M + T)`` with ids): query i, after ``past`` cached keys, may attend key j.

    The one definition of the document-causal rule: ``j <= past + i`` and, with ``document_ids``, the same document
    (``key_document_ids`` ``(..., M + T)`` for the keys, default ``document_ids`` itself when nothing is cached).

    Example:
        >>> causal_allowed(2, 1).int().tolist()
        [[1, 1, 0], [1, 1, 1]]
    """
    keys = torch.arange(past + length, device=device)
    allowed = keys <= past + torch.arange(length, device=device)[:, None]  # (T, M + T): j <= M + i
    if document_ids is not None:
        keys_documents = document_ids if key_document_ids is None else key_document_ids
        allowed = allowed & (keys_documents.unsqueeze(-2) == document_ids.unsqueeze(-1))
    return allowed


def flex_attention_available() -> bool:
    """Whether this torch has FlexAttention (``torch.nn.attention.flex_attention``, torch >= 2.5)."""
    try:
        from torch.nn.attention import flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


def flex_block_mask(document_ids: torch.Tensor) -> Any:
    """FlexAttention's ``BlockMask`` for the document-causal mask of ``document_ids`` ``(B, T)``.

    Raises:
        RuntimeError: this torch has no FlexAttention (use the boolean mask: ``kernel="sdpa"``).

    Example:
        >>> block_mask = flex_block_mask(torch.tensor([[0, 0, 1, 1]]))  # doctest: +SKIP
        >>> flex_attention(q, k, v, block_mask=block_mask)              # doctest: +SKIP
    """
    if not flex_attention_available():
        raise RuntimeError(f"torch {torch.__version__} has no FlexAttention (torch >= 2.5). Use kernel='sdpa'.")
    from torch.nn.attention.flex_attention import create_block_mask

    ids = document_ids if document_ids.dim() == 2 else document_ids.unsqueeze(0)
    batch, length = ids.shape

    def mask_mod(b: torch.Tensor, h: torch.Tensor, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        return (ids[b, q] == ids[b, kv]) & (kv <= q)

    return create_block_mask(mask_mod, batch, None, length, length, device=str(ids.device))
