"""Where documents begin inside a window: the one definition behind positions, masks, ``respect_documents`` and packing.

A corpus is a sequence of documents joined by a separator, in one of two styles (the store records which,
``TokenStore.separator``):

- ``"eos"`` (GPT-2's end-of-text *after* each document): the separator is the last token of the document it
  closes, and the token after it opens the next document;
- ``"bos"`` (a beginning-of-sequence token *before* each document): the BOS token is the first token of the
  document it opens;
- ``"none"``: nothing in the stream marks a boundary; only a store's document index (``doc_starts``) does.

Either way the first token of every document has position 0, the corpus's first document included, and a window
that starts inside a document counts from 0 at its first token (a model sees no further back). With GPT-2 ids
(50256 = end-of-text), EOS style::

    tokens        [  11,   12, 50256,   13,   14, 50256,   15]
    document_ids  [   0,    0,     0,    1,    1,     1,    2]
    position_ids  [   0,    1,     2,    0,    1,     2,    0]

and BOS style with 50256 as the BOS token::

    tokens        [50256,  11,   12, 50256,   13]
    document_ids  [    0,   0,    0,     1,    1]
    position_ids  [    0,   1,    2,     0,    1]

Everything is computed from one boolean tensor, ``starts`` ``(B, T)``: True where a document begins (always at
column 0). :func:`starts_from_tokens` reads it off the tokens, :func:`starts_from_index` off a store's document index
(the authority when present: a literal separator written inside a document with ``--allow-special`` is no boundary
there), and the packer writes it for the rows it builds. :func:`documents_from_starts` turns it into
``document_ids`` and ``position_ids``; :func:`cu_seqlens` into the cumulative lengths varlen kernels take.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from lmfeed._validate import as_choice

__all__ = [
    "IGNORE_INDEX",
    "SEPARATORS",
    "Separator",
    "cu_seqlens",
    "document_boundaries",
    "document_spans",
    "documents_from_starts",
    "starts_from_index",
    "starts_from_tokens",
]

Separator = Literal["eos", "bos", "none"]
SEPARATORS: tuple[str, ...] = ("eos", "bos", "none")
IGNORE_INDEX = -100  # the target torch.nn.functional.cross_entropy skips by default


def _check_separator(separator: object, separator_id: int | None) -> str:
    separator = as_choice("separator", separator, SEPARATORS)
    if separator != "none" and separator_id is None:
        raise ValueError(f"separator={separator!r} needs separator_id, the id that marks documents "
                         "(GPT-2: 50256, <|endoftext|>). Pass it, or separator='none'.")
    return separator


def starts_from_tokens(token_ids: torch.Tensor, *, separator: Separator = "eos",
                       separator_id: int | None = None) -> torch.Tensor:
    """``(B, T)`` bool: True where a document begins, read off the tokens of each row (column 0 always).

    Args:
        token_ids: integer ``(B, T)`` (or ``(T,)``): the rows of a batch, or a window with its last target.
        separator: ``"eos"`` (default: the token after a separator opens a document), ``"bos"`` (the separator
            opens its document) or ``"none"`` (only column 0).
        separator_id: the separator's id; needed unless ``separator="none"``.

    Example:
        >>> starts_from_tokens(torch.tensor([11, 12, 50256, 13]), separator_id=50256).tolist()
        [True, False, False, True]
    """
    style = _check_separator(separator, separator_id)
    sep = -1 if separator_id is None else int(separator_id)  # -1: no id matches (style "none")
    if token_ids.device.type == "cpu":  # numpy: one pass, no intra-op threads to wake for a small batch
        ids = token_ids.numpy()
        found = np.zeros(ids.shape, dtype=np.bool_)
        if style == "eos":
            np.equal(ids[..., :-1], sep, out=found[..., 1:])
        elif style == "bos":
            np.equal(ids, sep, out=found)
        found[..., 0] = True
        return torch.from_numpy(found)
    starts = torch.zeros(token_ids.shape, dtype=torch.bool, device=token_ids.device)
    if style == "eos":
        starts[..., 1:] = token_ids[..., :-1] == sep
    elif style == "bos":
        starts = torch.eq(token_ids, sep)
    starts[..., 0] = True
    return starts


def starts_from_index(window_starts: np.ndarray, length: int, doc_starts: np.ndarray) -> torch.Tensor:
    """``(B, length)`` bool: True where a document of the index begins in the windows starting at ``window_starts``.

    Args:
        window_starts: ``(B,)`` token offsets of the windows in the stream.
        length: tokens per row (``max_length``, or ``max_length + 1`` to cover the last target too).
        doc_starts: the store's ``(num_documents,)`` sorted offsets where documents begin.

    Example:
        >>> starts_from_index(np.array([0, 2]), 4, np.array([0, 3, 4])).int().tolist()
        [[1, 0, 0, 1], [1, 1, 1, 0]]
    """
    window_starts = np.asarray(window_starts, dtype=np.int64)
    doc_starts = np.asarray(doc_starts, dtype=np.int64)
    starts = np.zeros((len(window_starts), length), dtype=np.bool_)
    lo = np.searchsorted(doc_starts, window_starts + 1, side="left")  # first document start after column 0
    hi = np.searchsorted(doc_starts, window_starts + length, side="left")
    counts = hi - lo
    rows = np.repeat(np.arange(len(window_starts)), counts)
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    starts[rows, doc_starts[np.repeat(lo, counts) + within] - window_starts[rows]] = True
    starts[:, 0] = True
    return torch.from_numpy(starts)


def documents_from_starts(starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(document_ids, position_ids)``, int64 like ``starts``: documents numbered 0, 1, ... along each row, and
    each token's distance from its document's first token (the document of column 0 counts from column 0).

    Example:
        >>> documents_from_starts(torch.tensor([[True, False, False, True, False]]))
        (tensor([[0, 0, 0, 1, 1]]), tensor([[0, 1, 2, 0, 1]]))
    """
    if starts.device.type == "cpu":  # numpy's accumulate: a pass each, single-threaded
        found = starts.numpy().copy()
        found[..., 0] = True
        document_ids = np.cumsum(found, axis=-1, dtype=np.int64)
        document_ids -= 1
        steps = np.broadcast_to(np.arange(found.shape[-1], dtype=np.int64), found.shape)
        first = np.maximum.accumulate(np.where(found, steps, 0), axis=-1)
        return torch.from_numpy(document_ids), torch.from_numpy(steps - first)
    starts = starts.clone()
    starts[..., 0] = True
    ids = starts.cumsum(dim=-1) - 1
    steps_t = torch.arange(starts.shape[-1], device=starts.device).expand(starts.shape)
    first_t = torch.where(starts, steps_t, torch.zeros_like(steps_t)).cummax(dim=-1).values
    return ids, steps_t - first_t


def document_boundaries(
    token_ids: torch.Tensor | None = None,
    *,
    separator: Separator = "eos",
    separator_id: int | None = None,
    window_starts: np.ndarray | None = None,
    length: int | None = None,
    doc_starts: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``document_ids`` and ``position_ids`` ``(B, T)`` of a batch: from its tokens, or from a store's index.

    Args:
        token_ids: ``(B, T)`` integer rows; read with ``separator``/``separator_id`` (see the module notes).
        separator, separator_id: the corpus's style and id (``TokenStore.separator``, ``separator_id``).
        window_starts, length, doc_starts: instead of tokens, windows ``(B,)`` of ``length`` tokens at these offsets
            of a stream whose documents begin at ``doc_starts`` (the store's index).

    Returns:
        ``(document_ids, position_ids)``, int64 ``(B, T)``.

    Raises:
        ValueError: neither tokens nor an index given, or a separator style without its id.

    Example:
        >>> document_boundaries(torch.tensor([[11, 12, 50256, 13, 14]]), separator_id=50256)
        (tensor([[0, 0, 0, 1, 1]]), tensor([[0, 1, 2, 0, 1]]))
    """
    if doc_starts is not None:
        if window_starts is None or length is None:
            raise ValueError("document_boundaries with doc_starts needs window_starts and length too.")
        return documents_from_starts(starts_from_index(window_starts, int(length), doc_starts))
    if token_ids is None:
        raise ValueError("document_boundaries needs token_ids, or window_starts, length and doc_starts.")
    return documents_from_starts(starts_from_tokens(token_ids, separator=separator, separator_id=separator_id))


def cu_seqlens(document_ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Cumulative document lengths over the flattened batch, for varlen attention kernels: ``(cu_seqlens, max_seqlen)``.

    Every row is cut at its own boundaries and rows never join, so with ``q`` of shape ``(B * T, H, head_dim)``
    (``q.transpose(1, 2).reshape(B * T, H, head_dim)``) the kernel attends inside each document only, e.g.
    ``torch.nn.attention.varlen.varlen_attn(q, k, v, cu, cu, max_seqlen, max_seqlen, window_size=(-1, 0))`` or
    flash-attn's ``flash_attn_varlen_func(q, k, v, cu, cu, max_seqlen, max_seqlen, causal=True)``.

    Args:
        document_ids: ``(B, T)`` (or ``(T,)``) integer ids, constant within a document, changing at each boundary.

    Returns:
        ``cu_seqlens``: int32 ``(num_documents + 1,)``, starting at 0 and ending at ``B * T``; ``max_seqlen``: the
        longest document's length (an int).

    Example:
        >>> cu_seqlens(torch.tensor([[0, 0, 0, 1, 1], [0, 1, 1, 1, 1]]))
        (tensor([ 0,  3,  5,  6, 10], dtype=torch.int32), 4)
    """
    ids = document_ids.reshape(1, -1) if document_ids.dim() == 1 else document_ids
    if ids.device.type == "cpu":
        a = ids.numpy()
        change = np.ones(a.shape, dtype=np.bool_)
        np.not_equal(a[:, 1:], a[:, :-1], out=change[:, 1:])
        offsets = np.flatnonzero(change)
        cu = np.append(offsets, a.size).astype(np.int32)
        return torch.from_numpy(cu), int(np.diff(cu).max()) if len(cu) > 1 else 0
    batch, length = ids.shape
    change_t = torch.ones_like(ids, dtype=torch.bool)
    change_t[:, 1:] = ids[:, 1:] != ids[:, :-1]
    offsets_t = torch.nonzero(change_t.reshape(-1)).flatten()
    cu_t = torch.cat((offsets_t, torch.tensor([batch * length], device=ids.device))).to(torch.int32)
    return cu_t, int((cu_t[1:] - cu_t[:-1]).max()) if len(cu_t) > 1 else 0


def document_spans(token_ids: np.ndarray, *, separator: Separator, separator_id: int | None,
                   doc_starts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, lengths)`` int64 of every document of a stream, each span holding its separator (EOS: at its end;
    BOS: at its start): from the store's index, or by scanning the tokens with the rule above.

    Example:
        >>> document_spans(np.array([1, 2, 50256, 3, 50256, 4]), separator="eos", separator_id=50256)
        (array([0, 3, 5]), array([3, 2, 1]))
    """
    n = len(token_ids)
    if doc_starts is None:
        style = _check_separator(separator, separator_id)
        if style == "none" or n == 0:
            doc_starts = np.zeros(1 if n else 0, dtype=np.int64)
        else:
            hits = np.flatnonzero(np.asarray(token_ids) == separator_id)
            found = hits + 1 if style == "eos" else hits
            doc_starts = np.unique(np.concatenate(([0], found)))
            doc_starts = doc_starts[doc_starts < n]
    doc_starts = np.asarray(doc_starts, dtype=np.int64)
    return doc_starts, np.diff(np.append(doc_starts, n))
