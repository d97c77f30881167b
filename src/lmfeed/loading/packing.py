"""Packing: whole documents placed into rows of ``max_length + 1`` tokens, instead of windows that skip short ones.

A row of ``C = max_length + 1`` slots gives one (input, target) pair: ``input = row[:-1]``, ``target = row[1:]``.
Two packers, both over the document spans of :mod:`lmfeed.loading.documents` (each span holds its separator):

- ``"best_fit"``: best-fit decreasing (the packer of TRL, OLMo-core, nanochat's SFT). A document longer than a row
  is cut into ``C``-token pieces (each a row of its own) and a remainder (or, with ``long_documents="crop"``, only its
  first ``C`` tokens are kept); the pieces shorter than a row, longest first, each go into the open row with the
  least room that still holds them, or a new row. Every token of every document is in exactly one row (with
  ``"split"``), and the slots left over are padding: ``pad_id`` in the inputs, -100 in the targets.
- ``"crop"``: nanochat's BOS-aligned best fit. Rows are filled one after the other from a buffer of the next
  ``buffer_size`` documents: the longest document that still fits goes in; when none fits, the shortest is cropped
  to fill the row exactly (its rest is dropped). Every row starts at a document start and only the last may pad.

For documents of 5, 3, 2 and 6 tokens and ``max_length=4`` (C = 5), ``"best_fit"`` gives::

    row 0  [d0 d0 d0 d0 d0]        a document that fills a row
    row 1  [d3 d3 d3 d3 d3]        d3's first piece (5 of its 6 tokens)
    row 2  [d1 d1 d1 d2 d2]        3 + 2: the best fit for d2 is the row d1 left 2 slots in
    row 3  [d3 .  .  .  . ]        d3's remainder, then 4 padding slots

The packing depends on the documents and ``max_length`` only; an epoch serves its rows in the order of
``WindowOrder`` (a pure function of (seed, epoch)), so ranks share it and a state resumes it like windows. A batch's
rows are gathered in one call through the stream's window view, as plain windows are; the rows that hold several
segments are then refilled, one slice copy per segment.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from lmfeed.loading.batch import WindowBatch
from lmfeed.loading.documents import IGNORE_INDEX
from lmfeed.loading.windows import _REOPEN_AFTER_BYTES

__all__ = ["PackedDataset", "Packing", "pack_best_fit", "pack_crop"]

PackingMode = Literal["best_fit", "crop"]
LongDocuments = Literal["split", "crop"]


@dataclass(frozen=True)
class Packing:
    """Where every piece of every document sits: segment k holds ``lengths[k]`` tokens of the stream from
    ``sources[k]``, in row ``rows[k]`` from slot ``slots[k]``; segments are sorted by row, then slot.

    Attributes:
        capacity: slots per row, ``max_length + 1``.
        num_rows: rows of the packing.
        document_tokens: tokens in the documents packed (before any crop).
        cropped_tokens: document tokens left out (``long_documents="crop"`` or ``packing="crop"``).
    """

    capacity: int
    num_rows: int
    rows: np.ndarray
    slots: np.ndarray
    sources: np.ndarray
    lengths: np.ndarray
    document_tokens: int
    cropped_tokens: int

    @property
    def padding_slots(self) -> int:
        return self.num_rows * self.capacity - int(self.lengths.sum())

    @property
    def padding_fraction(self) -> float:
        """Padding slots over all slots (0.0 when there are no rows)."""
        total = self.num_rows * self.capacity
        return self.padding_slots / total if total else 0.0

    @property
    def cropped_fraction(self) -> float:
        """Document tokens left out over all document tokens."""
        return self.cropped_tokens / self.document_tokens if self.document_tokens else 0.0

    @property
    def row_pointers(self) -> np.ndarray:
        """``(num_rows + 1,)``: the segments of row r are ``[row_pointers[r], row_pointers[r + 1])``."""
        return np.searchsorted(self.rows, np.arange(self.num_rows + 1), side="left")


def _segments(capacity: int, rows: list[int], slots: list[int], sources: list[int], lengths: list[int],
              num_rows: int, document_tokens: int, cropped: int) -> Packing:
    r, s = np.asarray(rows, dtype=np.int64), np.asarray(slots, dtype=np.int64)
    order = np.lexsort((s, r))
    return Packing(capacity, num_rows, r[order], s[order], np.asarray(sources, dtype=np.int64)[order],
                   np.asarray(lengths, dtype=np.int64)[order], document_tokens, cropped)


def pack_best_fit(starts: np.ndarray, lengths: np.ndarray, max_length: int, *,
                  long_documents: LongDocuments = "split") -> Packing:
    """Best-fit decreasing of the documents ``(starts, lengths)`` into rows of ``max_length + 1`` slots.

    Args:
        starts, lengths: ``(num_documents,)`` int64 spans in the stream
            (:func:`~lmfeed.loading.documents.document_spans`).
        max_length: T; rows hold ``T + 1`` tokens.
        long_documents: ``"split"`` (default: every token kept, in row-sized pieces) or ``"crop"`` (only the first
            ``T + 1`` tokens of a longer document).

    Returns:
        The :class:`Packing`.

    Example:
        >>> p = pack_best_fit(np.array([0, 5, 8, 10]), np.array([5, 3, 2, 6]), 4)
        >>> p.num_rows, p.padding_slots
        (4, 4)
    """
    capacity = max_length + 1
    starts, lengths = np.asarray(starts, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
    keep = lengths > 0
    starts, lengths = starts[keep], lengths[keep]
    rows: list[int] = []
    slots: list[int] = []
    sources: list[int] = []
    sizes: list[int] = []
    cropped = 0
    # whole rows first: the full C-token pieces of long documents (vectorised), or their cropped first C tokens
    long = lengths >= capacity
    if long_documents == "crop":
        full_starts = starts[long]
        cropped = int((lengths[long] - capacity).sum())
        rest_starts, rest_lengths = starts[~long], lengths[~long]
    else:
        pieces = lengths // capacity
        full_starts = np.repeat(starts, pieces) + capacity * (
            np.arange(int(pieces.sum())) - np.repeat(np.cumsum(pieces) - pieces, pieces))
        rest_lengths = lengths - pieces * capacity
        rest_starts = starts + pieces * capacity
        rest_starts, rest_lengths = rest_starts[rest_lengths > 0], rest_lengths[rest_lengths > 0]
    num_rows = len(full_starts)
    rows += list(range(num_rows))
    slots += [0] * num_rows
    sources += full_starts.tolist()
    sizes += [capacity] * num_rows
    # then best fit, longest first (ties in stream order): the open row with the least room that holds the piece
    order = np.lexsort((rest_starts, -rest_lengths))
    room_keys: list[int] = []  # sorted distinct rooms of open rows
    rooms: dict[int, list[int]] = {}  # room -> rows with that much room (a stack)
    used: dict[int, int] = {}
    for start, size in zip(rest_starts[order].tolist(), rest_lengths[order].tolist(), strict=True):
        i = bisect.bisect_left(room_keys, size)
        if i < len(room_keys):
            room = room_keys[i]
            row = rooms[room].pop()
            if not rooms[room]:
                del rooms[room]
                room_keys.pop(i)
        else:
            row, room = num_rows, capacity
            num_rows += 1
            used[row] = 0
        rows.append(row)
        slots.append(used[row])
        sources.append(start)
        sizes.append(size)
        used[row] += size
        left = room - size
        if left:
            if left not in rooms:
                rooms[left] = []
                bisect.insort(room_keys, left)
            rooms[left].append(row)
    return _segments(capacity, rows, slots, sources, sizes, num_rows, int(lengths.sum()), cropped)


def pack_crop(starts: np.ndarray, lengths: np.ndarray, max_length: int, *, buffer_size: int = 1000) -> Packing:
    """nanochat's BOS-aligned best fit: rows filled from a buffer of documents, the shortest cropped when none fits.

    Args:
        starts, lengths: ``(num_documents,)`` int64 spans, in stream order.
        max_length: T; rows hold ``T + 1`` tokens.
        buffer_size: documents the packer chooses among (nanochat: 1000).

    Returns:
        The :class:`Packing`: every row starts at a document start; only the last row may hold padding.

    Example:
        >>> p = pack_crop(np.array([0, 5, 8, 10]), np.array([5, 3, 2, 6]), 4)
        >>> p.num_rows, p.cropped_tokens, p.padding_slots
        (3, 1, 0)
    """
    capacity = max_length + 1
    starts, lengths = np.asarray(starts, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
    keep = lengths > 0
    starts, lengths = starts[keep].tolist(), lengths[keep].tolist()
    keys: list[int] = []  # sorted distinct lengths in the buffer
    buffer: dict[int, list[int]] = {}  # length -> stream starts (first in, first out)
    held = 0
    following = 0  # next document to enter the buffer

    def take(i: int) -> tuple[int, int]:
        nonlocal held
        size = keys[i]
        start = buffer[size].pop(0)
        if not buffer[size]:
            del buffer[size]
            keys.pop(i)
        held -= 1
        return start, size

    rows: list[int] = []
    slots: list[int] = []
    sources: list[int] = []
    sizes: list[int] = []
    cropped = 0
    num_rows = 0
    while True:
        while held < buffer_size and following < len(starts):
            size = lengths[following]
            if size not in buffer:
                buffer[size] = []
                bisect.insort(keys, size)
            buffer[size].append(starts[following])
            held += 1
            following += 1
        if not held:
            break
        used = 0
        while used < capacity and held:
            room = capacity - used
            i = bisect.bisect_right(keys, room) - 1  # the longest document that fits
            if i >= 0:
                start, size = take(i)
            else:  # none fits: crop the shortest to fill the row
                start, size = take(0)
                cropped += size - room
                size = room
            rows.append(num_rows)
            slots.append(used)
            sources.append(start)
            sizes.append(size)
            used += size
            while held < buffer_size and following < len(starts):  # keep the buffer full, as nanochat does
                nxt = lengths[following]
                if nxt not in buffer:
                    buffer[nxt] = []
                    bisect.insort(keys, nxt)
                buffer[nxt].append(starts[following])
                held += 1
                following += 1
        num_rows += 1
    return _segments(capacity, rows, slots, sources, sizes, num_rows, int(sum(lengths)), cropped)


class PackedDataset(Dataset):
    """The packed rows of a token stream: item r is row r as ``(input, target)``, each ``(max_length,)``.

    Args:
        token_ids: the 1-D stream (numpy array or memory map).
        packing: the :class:`Packing` of its documents.
        pad_id: the id in padding slots of the inputs (their targets are -100).
        return_positions, return_documents, ignore_cross_document_targets: as for
            :class:`~lmfeed.loading.windows.SlidingWindowDataset`; every segment (a document, a piece of one, or the
            padding) is a document here, and positions restart at 0 at each.
        reopen: for memory-mapped ids, a function that opens the map again.

    Attributes:
        padding_fraction, cropped_fraction, pad_id, dropped_tokens (always 0: nothing is skipped).
    """

    def __init__(self, token_ids: np.ndarray, packing: Packing, *, pad_id: int, return_positions: bool = False,
                 return_documents: bool = False, ignore_cross_document_targets: bool = False,
                 reopen: Callable[[], np.ndarray] | None = None) -> None:
        self.packing = packing
        self.max_length = packing.capacity - 1
        self.pad_id = int(pad_id)
        self.return_positions = return_positions
        self.return_documents = return_documents
        self.ignore_cross_document_targets = ignore_cross_document_targets
        self._reopen = reopen
        self._set_ids(token_ids)
        self._pointers = packing.row_pointers
        self._fill = np.bincount(packing.rows, weights=packing.lengths, minlength=packing.num_rows).astype(np.int64)
        self._tile()
        # rows that are one whole C-token piece (most rows of long documents) are gathered like plain windows, through
        # a (N - C + 1, C) view of the stream; the others are gathered from offset 0 and then filled segment by segment
        counts = np.diff(self._pointers)
        self._whole = (counts == 1) & (self._fill == packing.capacity)
        self._row_starts = np.where(
            self._whole, packing.sources[np.minimum(self._pointers[:-1], len(packing.sources) - 1)], 0)
        self.dropped_tokens = 0

    def _set_ids(self, ids: np.ndarray) -> None:
        self.token_ids = ids
        self._gathered_bytes = 0
        capacity = self.packing.capacity
        # (N - C + 1, C) view of the stream (no copy): a whole row is one row of it, as for plain windows
        self._windows = np.lib.stride_tricks.sliding_window_view(ids, capacity) if len(ids) >= capacity else None

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def padding_fraction(self) -> float:
        return self.packing.padding_fraction

    @property
    def cropped_fraction(self) -> float:
        return self.packing.cropped_fraction

    def __len__(self) -> int:
        return self.packing.num_rows

    def _tile(self) -> None:
        """Every row's segments with its padding as one more segment, in order (row, slot), so that they tile the
        rows: ``_table`` ``(segments, 5)`` int64 of (length, slot, source, rank within the row, real), and ``_tiles``
        ``(num_rows + 1,)`` pointers into it; computed once, so that a row's layout is one slice of it."""
        p, capacity = self.packing, self.packing.capacity
        counts = np.diff(self._pointers)
        room = capacity - self._fill
        has_pad = room > 0
        per_row = counts + has_pad
        before = np.cumsum(per_row) - per_row  # where each row's segments begin in the tiling
        within = np.arange(len(p.lengths)) - np.repeat(np.cumsum(counts) - counts, counts)
        total = int(per_row.sum())
        self._tiles = np.append(before, total)
        table = np.zeros((total, 5), dtype=np.int64)  # padding reads nothing (real = 0) and is filled with pad_id
        at = np.repeat(before, counts) + within
        table[at] = np.stack([p.lengths, p.slots, p.sources, within, np.ones_like(within)], axis=1)
        pad_at = before[has_pad] + counts[has_pad]
        table[pad_at, 0], table[pad_at, 1], table[pad_at, 3] = room[has_pad], self._fill[has_pad], counts[has_pad]
        self._table = table
        self._arange = np.arange(capacity, dtype=np.int64)

    def __getitems__(self, indices: Sequence[int]) -> WindowBatch:
        chosen = np.asarray(indices, dtype=np.int64)
        batch, capacity = len(chosen), self.packing.capacity
        if self._windows is None:  # a stream shorter than one row: no whole rows
            rows = np.zeros((batch, capacity), dtype=self.token_ids.dtype)
        else:
            rows = self._windows[self._row_starts[chosen]]  # one gather, as for plain windows: the only copy
        positions = documents = None
        if self._needs_positions:
            positions = np.empty((batch, capacity), dtype=np.int64)
            positions[:] = self._arange
            documents = np.zeros((batch, capacity), dtype=np.int64) if self.return_documents else None
        padding = self._fill_rows(rows, positions, documents, chosen, np.flatnonzero(~self._whole[chosen]))
        self._count(rows.nbytes)
        inputs = rows[:, :-1].astype(np.int64)  # contiguous, as .view(-1) in a loss needs
        targets = rows[:, 1:].astype(np.int64)
        for i, slot in padding:  # slots from ``slot`` on are padding: inputs pad_id, targets (shifted by one) -100
            inputs[i, slot:] = self.pad_id
            targets[i, slot - 1:] = IGNORE_INDEX
        if self.ignore_cross_document_targets and positions is not None:
            targets[positions[:, 1:] == 0] = IGNORE_INDEX
        position_ids = cu = None
        if positions is not None and (self.return_positions or self.return_documents):
            position_ids = np.ascontiguousarray(positions[:, :-1])
        if documents is not None and position_ids is not None:
            # every segment starts at position 0 (a row's first slot included): those are the cu_seqlens
            cu = torch.from_numpy(np.append(np.flatnonzero(position_ids.ravel() == 0), position_ids.size)
                                  .astype(np.int32))
        return WindowBatch(
            torch.from_numpy(inputs), torch.from_numpy(targets),
            None if position_ids is None else torch.from_numpy(position_ids),
            None if documents is None else torch.from_numpy(np.ascontiguousarray(documents[:, :-1])),
            documents=self.return_documents, cu_seqlens=cu,
        )

    def _fill_rows(self, rows: np.ndarray, positions: np.ndarray | None, documents: np.ndarray | None,
                   chosen: np.ndarray, at: np.ndarray) -> list[tuple[int, int]]:
        """Fill the rows ``at`` of the batch (rows ``chosen[at]`` of the packing, several segments each) in place,
        with their positions and document numbers where asked; returns the ``(row, first padding slot)`` of each
        padded row."""
        ids, arange, table, tiles = self.token_ids, self._arange, self._table, self._tiles
        padding = []
        for i, r in zip(at.tolist(), chosen[at].tolist(), strict=True):
            # a copy of each segment's slice: a row holds few segments, fewer calls than a per-token index
            for length, slot, source, rank, real in table[tiles[r]:tiles[r + 1]].tolist():
                end = slot + length
                if real:
                    rows[i, slot:end] = ids[source:source + length]
                else:  # a row's padding: its last segment, to the row's end
                    rows[i, slot:end] = 0
                    padding.append((i, slot))
                if positions is not None:
                    positions[i, slot:end] = arange[:length]
                if documents is not None:
                    documents[i, slot:end] = rank
        return padding

    def _count(self, nbytes: int) -> None:
        """Reopen a memory map after 256 MB gathered through it, as windows do, so that a long epoch over a file larger
        than memory does not grow the resident set towards the whole file."""
        if self._reopen is not None:
            self._gathered_bytes += nbytes
            if self._gathered_bytes > _REOPEN_AFTER_BYTES:
                self._set_ids(self._reopen())

    @property
    def _needs_positions(self) -> bool:
        return self.return_positions or self.return_documents or self.ignore_cross_document_targets

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        n = len(self)
        if not -n <= int(index) < n:
            raise IndexError(f"row {index} is out of range for {n:,} packed rows.")
        return self.__getitems__([int(index) % n])[0]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_windows"] = None  # a view, rebuilt on arrival (pickled, numpy would write out every window)
        if self._reopen is not None:  # workers reopen the memory map instead of receiving its contents
            state["token_ids"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._set_ids(self._reopen() if self.token_ids is None else self.token_ids)

    def __repr__(self) -> str:
        return (f"PackedDataset(rows={len(self):,}, max_length={self.max_length}, "
                f"padding={self.padding_fraction:.2%}, cropped={self.cropped_fraction:.2%})")
