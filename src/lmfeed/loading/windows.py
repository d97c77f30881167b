"""Sliding windows over a token stream: the (input, target) pairs a language model trains on.

For ``max_length`` L and ``stride`` S over N ids, window k starts at s = k*S for every s with s + L < N, and

    input  = ids[s     : s + L]
    target = ids[s + 1 : s + L + 1]      # the same tokens shifted left by one: target[j] follows input[j]

For ids [40, 367, 2885, 1464, 1807, 3619, 402, 271, 10899] ("I HAD always thought Jack Gisburn rather a cheap")
with max_length=4, stride=4:

    window 0   input  [   40,   367,  2885,  1464]      s = 0
               target [  367,  2885,  1464,  1807]
    window 1   input  [ 1807,  3619,   402,   271]      s = 4
               target [ 3619,   402,   271, 10899]
    (s = 8 would need ids[8:13]; 8 + 4 < 9 is false, so there are 2 windows)

These are exactly the windows of the seed's ``GPTDatasetV1``. A ``stride`` larger than ``max_length`` is allowed
and skips ``stride - max_length`` tokens between windows; a ``stride`` smaller than ``max_length`` overlaps them.

The ids are held once (a 1-D numpy array or a read-only memory map); a window is a slice of it, and a batch is one
vectorised gather, so memory grows with the number of tokens, never with windows x max_length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lmfeed._validate import as_bool, as_int
from lmfeed.loading.batch import WindowBatch
from lmfeed.loading.documents import (
    IGNORE_INDEX,
    Separator,
    document_spans,
    documents_from_starts,
    starts_from_index,
    starts_from_tokens,
)

__all__ = ["SlidingWindowDataset", "WindowBatch", "as_token_array", "document_window_starts", "num_windows",
           "restart_positions"]

# Reopen a memory map after this many bytes of ids have been gathered through it, so that a long epoch over a
# file larger than memory does not grow a worker's resident set towards the whole file.
_REOPEN_AFTER_BYTES = 256 * 1024 * 1024
_INT64_MAX = 2**63 - 1  # batches are int64: a larger id cannot be served as itself


def num_windows(num_tokens: int, max_length: int, stride: int) -> int:
    """How many windows ``max_length``/``stride`` cut from ``num_tokens`` ids: #{s = k*stride : s + max_length < N}.

    Example:
        >>> num_windows(9, 4, 4), num_windows(5, 4, 4), num_windows(4, 4, 4)
        (2, 1, 0)
    """
    if num_tokens <= max_length:
        return 0
    return (num_tokens - max_length - 1) // stride + 1


def as_token_array(token_ids: Any, *, name: str = "token_ids") -> np.ndarray:
    """Return ``token_ids`` as a 1-D non-negative integer numpy array, without copying arrays and tensors.

    Lists and other sequences are converted once, to uint16 when every id fits (GPT-2's 50,257 ids do), else
    uint32 or int64. Numpy arrays (memory maps included) and CPU tensors are kept as they are.

    Raises:
        TypeError: not integers (floats, bools, strings).
        ValueError: not 1-D, or a negative id.
    """
    if isinstance(token_ids, torch.Tensor):
        if token_ids.is_floating_point() or token_ids.is_complex() or token_ids.dtype == torch.bool:
            raise TypeError(
                f"{name} must hold integer token ids, but the tensor has dtype {token_ids.dtype}. "
                "Convert it with .long(), or pass the text itself."
            )
        array = token_ids.detach().cpu().numpy()
    elif isinstance(token_ids, np.ndarray):
        array = token_ids
    elif isinstance(token_ids, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of integer ids, not {type(token_ids).__name__}.")
    elif isinstance(token_ids, Sequence) or hasattr(token_ids, "__array__"):
        try:
            array = np.asarray(token_ids)
        except ValueError:  # ragged nesting
            array = np.empty(0, dtype=object)
        if array.dtype == object:
            _refuse_huge_python_ints(token_ids, name)
            raise TypeError(f"{name} must be a flat sequence of integer ids; could not read it as one.")
        if array.size == 0:  # np.asarray([]) is float64; no ids is still a (too short) stream of ids
            array = array.astype(np.uint16)
        if array.size and array.dtype.kind in "iu":
            lo, hi = int(array.min()), int(array.max())
            if lo >= 0 and hi <= _INT64_MAX:  # above: a uint64 array, refused below with the id
                array = array.astype(np.uint16 if hi < 2**16 else np.uint32 if hi < 2**32 else np.int64)
    else:
        raise TypeError(
            f"{name} must be a list, numpy array or tensor of integer ids, but got {type(token_ids).__name__}."
        )
    if array.dtype.kind not in "iu" or array.dtype == np.bool_:
        raise TypeError(
            f"{name} must hold integer token ids, but has dtype {array.dtype}. Convert with .astype(np.int64), "
            "or pass the text itself."
        )
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D (one token stream), but has shape {tuple(array.shape)}. Flatten it with .reshape(-1)."
        )
    if array.dtype.kind == "u" and array.dtype.itemsize == 8 and array.size and int(array.max()) > _INT64_MAX:
        position = int(np.argmax(array))
        raise ValueError(
            f"{name} holds the id {int(array[position]):,} at position {position:,}, above {_INT64_MAX:,} (2**63 - 1), "
            "the largest id an int64 batch can hold. Token ids are below the vocabulary size; check how the ids "
            "were made."
        )
    if array.dtype.kind == "i" and array.size and int(array.min()) < 0:
        position = int(np.argmin(array))
        raise ValueError(
            f"{name} holds a negative id, {int(array[position])}, at position {position:,}. Token ids are >= 0."
        )
    return array


def _refuse_huge_python_ints(token_ids: Any, name: str) -> None:
    """A list numpy could not hold as one integer dtype: name the first id past int64, if that is why."""
    for position, value in enumerate(token_ids):
        if isinstance(value, int) and not isinstance(value, bool) and not -_INT64_MAX - 1 <= value <= _INT64_MAX:
            raise ValueError(
                f"{name} holds the id {value:,} at position {position:,}, outside int64 (the largest id an int64 "
                "batch can hold is 2**63 - 1). Token ids are below the vocabulary size; check how the ids were made."
            )


class SlidingWindowDataset(Dataset):
    """The (input, target) windows of a token stream, exactly as the seed's ``GPTDatasetV1`` cuts them.

    Args:
        token_ids: the 1-D token stream (list, numpy array or memory map, or integer tensor). Arrays and tensors
            are not copied.
        max_length: tokens per window, L (the model's context length during training). At least 1.
        stride: distance between window starts, S. At least 1; ``stride > max_length`` skips tokens.
        starts: optional explicit window start positions (int64, each with s + L < N) instead of ``k * stride``;
            used for windows that respect document boundaries. Windows are then ``starts[k]``.
        eot_id: the separator id (GPT-2's end-of-text, 50256); the same as ``separator_id``.
        separator: how the stream marks documents: ``"eos"`` (default), ``"bos"`` or ``"none"``
            (:mod:`lmfeed.loading.documents`).
        separator_id: the separator's id (default: ``eot_id``).
        doc_starts: a store's document index; when given it decides the boundaries, not the tokens.
        return_positions: also return ``position_ids`` ``(max_length,)``: 0 at the first token of every document.
        return_documents: also return ``document_ids``, and collate as a :class:`~lmfeed.loading.batch.DocumentBatch`.
        ignore_cross_document_targets: set to -100 the target that is the first token of the next document
            (Megatron's ``eod_mask_loss``).
        reopen: for memory-mapped ids, a function that opens the map again (see the module notes); lmfeed's
            stores pass one.

    Items are ``(input, target)`` int64 tensors of shape ``(max_length,)`` (plus ``position_ids`` and
    ``document_ids`` when asked).
    ``len(dataset)`` is ``num_windows(N, max_length, stride)``.

    Raises:
        ValueError: ``max_length``/``stride`` below 1, or the stream is too short for one window (the message says
            how many tokens there are and how many one window needs).

    Example:
        >>> ds = SlidingWindowDataset([40, 367, 2885, 1464, 1807, 3619, 402, 271, 10899], max_length=4, stride=4)
        >>> len(ds), ds[1][0].tolist(), ds[1][1].tolist()
        (2, [1807, 3619, 402, 271], [3619, 402, 271, 10899])
    """

    # Set by create_dataloader(respect_documents=True) only: tokens in documents too short for one window.
    dropped_tokens: int

    def __init__(
        self,
        token_ids: Any,
        max_length: int,
        stride: int,
        *,
        starts: np.ndarray | None = None,
        eot_id: int | None = None,
        separator: Separator = "eos",
        separator_id: int | None = None,
        doc_starts: np.ndarray | None = None,
        return_positions: bool = False,
        return_documents: bool = False,
        ignore_cross_document_targets: bool = False,
        reopen: Callable[[], np.ndarray] | None = None,
    ) -> None:
        self.max_length = as_int("max_length", max_length, minimum=1)
        self.stride = as_int("stride", stride, minimum=1)
        ids = as_token_array(token_ids)
        needed = self.max_length + 1
        if len(ids) < needed:
            raise ValueError(
                f"max_length={self.max_length} needs at least {needed:,} tokens (the inputs plus one target), "
                f"but the text has {len(ids):,}. Lower max_length or add text."
            )
        self.eot_id = eot_id
        self.separator = separator
        self.separator_id = eot_id if separator_id is None else separator_id
        self.doc_starts = None if doc_starts is None else np.asarray(doc_starts, dtype=np.int64)
        needs = [name for name, on in (("return_positions", return_positions), ("return_documents", return_documents),
                                       ("ignore_cross_document_targets", ignore_cross_document_targets)) if on]
        if needs and self.doc_starts is None and separator != "none" and self.separator_id is None:
            raise ValueError(f"{needs[0]}=True needs the separator id documents are marked with (eot_id=50256 for "
                             "GPT-2), or a store's document index (doc_starts).")
        self.return_positions = as_bool("return_positions", return_positions)
        self.return_documents = as_bool("return_documents", return_documents)
        self.ignore_cross_document_targets = as_bool("ignore_cross_document_targets", ignore_cross_document_targets)
        self._starts = None if starts is None else np.asarray(starts, dtype=np.int64)
        if self._starts is not None and self._starts.size and int(self._starts.max()) + needed > len(ids):
            raise ValueError("starts must satisfy s + max_length < len(token_ids) for every window.")
        self._reopen = reopen
        self._set_ids(ids)

    def _set_ids(self, ids: np.ndarray) -> None:
        self.token_ids = ids
        self._gathered_bytes = 0
        # (num_tokens - L, L + 1) view of every possible window start: indexing it is one gather, no copy before.
        self._all_windows = np.lib.stride_tricks.sliding_window_view(ids, self.max_length + 1)

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    def __len__(self) -> int:
        if self._starts is not None:
            return len(self._starts)
        return num_windows(len(self.token_ids), self.max_length, self.stride)

    def window_starts(self, indices: np.ndarray) -> np.ndarray:
        """Token offsets where windows ``indices`` start."""
        if self._starts is not None:
            return self._starts[indices]
        return indices * self.stride

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        n = len(self)
        i = as_int("index", index, minimum=None)
        if not -n <= i < n:
            raise IndexError(f"window index {i} is out of range for {n:,} windows.")
        return self.gather(self.window_starts(np.array([i % n])))[0]

    def __getitems__(self, indices: Sequence[int]) -> WindowBatch:
        """A whole batch in one vectorised gather; ``torch.utils.data.DataLoader`` calls this with a batch's indices."""
        return self.gather(self.window_starts(np.asarray(indices, dtype=np.int64)))

    @property
    def plain(self) -> bool:
        """Whether a batch is only inputs and targets (no positions, documents or ignored targets to compute)."""
        return not (self.return_positions or self.return_documents or self.ignore_cross_document_targets)

    def window_rows(self, indices: np.ndarray) -> np.ndarray:
        """The ``(B, L + 1)`` ids of windows ``indices`` in the stored dtype (what the ring transport sends)."""
        return self.chunk(self.window_starts(np.asarray(indices, dtype=np.int64)))

    def chunk(self, starts: np.ndarray) -> np.ndarray:
        """The ``(B, L + 1)`` ids of the windows at ``starts``, in the stored dtype: inputs and the last target."""
        chunk = self._all_windows[starts]  # the only copy
        if self._reopen is not None:
            self._gathered_bytes += chunk.nbytes
            if self._gathered_bytes > _REOPEN_AFTER_BYTES:
                self._set_ids(self._reopen())
        return chunk

    def gather(self, starts: np.ndarray) -> WindowBatch:
        """The windows starting at token offsets ``starts`` (B,): inputs and targets ``(B, max_length)`` int64."""
        chunk = self.chunk(starts)  # (B, L + 1): the only copy, in the stored dtype
        inputs = torch.from_numpy(chunk[:, :-1].astype(np.int64))  # contiguous, as .view(-1) in a loss needs
        targets = torch.from_numpy(chunk[:, 1:].astype(np.int64))
        positions = documents = None
        if self.return_positions or self.return_documents or self.ignore_cross_document_targets:
            full = torch.from_numpy(chunk)  # (B, L + 1) in the stored dtype: the boundaries cover the last target
            begins = self.document_starts(starts, full)
            documents, positions = documents_from_starts(begins[:, :-1])
            if self.ignore_cross_document_targets:
                targets[begins[:, 1:]] = IGNORE_INDEX  # predicting the next document's first token
        return WindowBatch(inputs, targets, positions if self.return_positions or self.return_documents else None,
                           documents if self.return_documents else None, documents=self.return_documents)

    def document_starts(self, starts: np.ndarray, rows: torch.Tensor) -> torch.Tensor:
        """``(B, L + 1)`` bool, True where a document begins in the windows at ``starts`` (their ``rows``): from the
        store's index when there is one, else from the separator tokens (:mod:`lmfeed.loading.documents`)."""
        if self.doc_starts is not None:
            return starts_from_index(starts, rows.shape[1], self.doc_starts)
        return starts_from_tokens(rows, separator=self.separator, separator_id=self.separator_id)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # the window view is rebuilt on arrival: pickled, numpy would write out every window, (N - L) x (L + 1) ids
        # (800 MB for 100,000 in-memory ids at max_length 1024, to each worker a spawn context starts)
        state["_all_windows"] = None
        if self._reopen is not None:  # never pickle a memory map's contents into a worker: reopen it there
            state["token_ids"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._set_ids(self._reopen() if self.token_ids is None else self.token_ids)

    def __repr__(self) -> str:
        return (
            f"SlidingWindowDataset(num_tokens={self.num_tokens:,}, max_length={self.max_length}, "
            f"stride={self.stride}, windows={len(self):,})"
        )


def restart_positions(token_ids: torch.Tensor, eot_id: int, *, separator: Separator = "eos") -> torch.Tensor:
    """Position ids ``(B, T)``: 0 at the first token of every document (and of the row), counting up inside it.

    EOS style (default): the separator is the last token of the document it closes, so the token *after* it gets 0;
    BOS style: the separator itself gets 0 (see :mod:`lmfeed.loading.documents`).

    Example:
        >>> restart_positions(torch.tensor([[11, 12, 50256, 13, 14]]), 50256).tolist()
        [[0, 1, 2, 0, 1]]
    """
    return documents_from_starts(starts_from_tokens(token_ids, separator=separator, separator_id=eot_id))[1]


def document_window_starts(
    token_ids: np.ndarray, max_length: int, stride: int, *, eot_id: int | None, doc_starts: np.ndarray | None = None,
    separator: Separator = "eos",
) -> tuple[np.ndarray, int]:
    """Window starts that keep every window inside one document: ``(starts, dropped_tokens)``.

    Document i spans ``[doc_starts[i], doc_starts[i + 1])``, its end-of-text separator included, so a window's last
    target may be the end-of-text token (the model learns where documents end) but no input crosses into the next
    document. Inside a document windows start every ``stride`` tokens, as in the plain stream. Documents shorter
    than ``max_length + 1`` tokens give no window (they are skipped, not packed); ``dropped_tokens`` counts them.
    Without ``doc_starts`` (a store's index), documents are found by scanning for ``eot_id`` (the separator id; with
    ``separator="bos"`` it opens each document, and its span starts there).

    Example:
        >>> ids = np.array([1, 2, 3, 4, 5, 50256, 6, 7, 50256, 8, 9, 10, 11, 12])
        >>> starts, dropped = document_window_starts(ids, 3, 2, eot_id=50256)
        >>> starts.tolist(), dropped  # documents of 6, 3 and 5 tokens: the 3-token one is too short
        ([0, 2, 9], 3)
    """
    doc_starts, lengths = document_spans(token_ids, separator=separator, separator_id=eot_id, doc_starts=doc_starts)
    counts = np.where(lengths > max_length, (lengths - max_length - 1) // stride + 1, 0)
    dropped = int(lengths[counts == 0].sum())
    first = np.repeat(doc_starts, counts)
    within = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return first + within * stride, dropped


class DocumentOffsets:
    """Every token offset whose window stays inside one document, numbered 0 .. ``len(self) - 1`` without listing them.

    The random-offset counterpart of :func:`document_window_starts` (which lists the windows at a stride): document i
    of ``L`` tokens (separator included) has ``L - max_length`` offsets, so a uniform draw over ``range(len(self))``
    is a uniform draw over the document-safe offsets. Memory is O(documents), not O(tokens).

    Example:
        >>> ids = np.array([1, 2, 3, 4, 5, 50256, 6, 7, 50256, 8, 9, 10, 11, 12])
        >>> table = DocumentOffsets(ids, 3, eot_id=50256)
        >>> len(table), table.offsets(np.arange(len(table))).tolist(), table.dropped_tokens
        (5, [0, 1, 2, 9, 10], 3)
    """

    def __init__(self, token_ids: np.ndarray, max_length: int, *, eot_id: int | None,
                 doc_starts: np.ndarray | None = None, separator: Separator = "eos") -> None:
        doc_starts, lengths = document_spans(token_ids, separator=separator, separator_id=eot_id,
                                             doc_starts=doc_starts)
        counts = np.maximum(lengths - max_length, 0)
        self.dropped_tokens = int(lengths[counts == 0].sum())
        keep = counts > 0
        self._starts = doc_starts[keep]
        self._ends = np.cumsum(counts[keep])  # offsets numbered before the end of each kept document

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def offsets(self, numbers: np.ndarray) -> np.ndarray:
        """Token offsets of the document-safe windows numbered ``numbers`` (any shape, values in ``[0, len)``)."""
        doc = np.searchsorted(self._ends, numbers, side="right")
        before = np.where(doc > 0, self._ends[np.maximum(doc - 1, 0)], 0)
        return self._starts[doc] + (numbers - before)
