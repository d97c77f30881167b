"""From one source to the dataset a loader draws from: sliding windows, document-safe windows, random offsets, or
packed rows, with what each knows of documents (:mod:`lmfeed.loading.documents`).

``build_part(source, options)`` is used for a single source and for every source of a blend alike, so that each mode
works in both, and a source that gives nothing to draw is refused when the loader is built, by name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from lmfeed.loading.batch import WindowBatch
from lmfeed.loading.documents import document_spans
from lmfeed.loading.packing import PackedDataset, pack_best_fit, pack_crop
from lmfeed.loading.stream import load_token_ids
from lmfeed.loading.windows import (
    DocumentOffsets,
    SlidingWindowDataset,
    document_window_starts,
)

__all__ = ["EmptySourceError", "LoaderOptions", "OffsetDataset", "Part", "build_part"]

logger = logging.getLogger(__name__)


class EmptySourceError(ValueError):
    """A source gives no window (or row) under the loader's options; the message names it and says why."""


@dataclass(frozen=True)
class LoaderOptions:
    """The options of :func:`~lmfeed.loading.loader.create_dataloader` that decide what one source yields."""

    max_length: int
    stride: int
    tokenizer: Any = None  # None: a store's own; "gpt2" for text and ids
    backend: str = "auto"
    sampling: str = "windows"
    respect_documents: bool = False
    return_positions: bool = False
    return_documents: bool = False
    ignore_cross_document_targets: bool = False
    packing: Literal["best_fit", "crop"] | None = None
    long_documents: Literal["split", "crop"] = "split"
    pad_id: int | None = None

    @property
    def needs_documents(self) -> bool:
        return (self.respect_documents or self.return_positions or self.return_documents
                or self.ignore_cross_document_targets or self.packing is not None)


@dataclass
class Part:
    """One source, ready to draw from: ``dataset.__getitems__(items)`` with items in ``[0, size)``: window indices,
    numbers of random offsets (``random=True``: drawn with repeats), or packed rows."""

    dataset: Any
    size: int
    random: bool
    num_tokens: int


class OffsetDataset(Dataset):
    """The windows of a :class:`SlidingWindowDataset`, addressed by token offset instead of window index; with
    ``document_offsets``, by the number of a document-safe offset (:class:`~lmfeed.loading.windows.DocumentOffsets`)."""

    def __init__(self, windows: SlidingWindowDataset, num_samples: int,
                 document_offsets: DocumentOffsets | None = None) -> None:
        self.windows = windows
        self.num_samples = num_samples
        self.document_offsets = document_offsets
        self.dropped_tokens = getattr(windows, "dropped_tokens", 0)  # as on the windows, for respect_documents

    def __len__(self) -> int:
        return self.num_samples

    def _offsets(self, offsets: np.ndarray) -> np.ndarray:
        offsets = np.asarray(offsets, dtype=np.int64)
        return offsets if self.document_offsets is None else self.document_offsets.offsets(offsets)

    def __getitems__(self, offsets: np.ndarray) -> WindowBatch:
        return self.windows.gather(self._offsets(offsets))

    def window_rows(self, offsets: np.ndarray) -> np.ndarray:
        """The ``(B, L + 1)`` ids of the windows at these offset numbers, in the stored dtype."""
        return self.windows.chunk(self._offsets(offsets))

    def __getitem__(self, offset: int) -> tuple[torch.Tensor, ...]:
        return self.__getitems__(np.array([offset]))[0]


def build_part(source: Any, options: LoaderOptions, *, name: str | None = None, num_samples: int = 0) -> Part:
    """The dataset of one source under ``options``.

    Args:
        source: anything :func:`~lmfeed.loading.stream.load_token_ids` reads.
        options: the loader's options.
        name: the source's name in a blend (errors then name it and raise :class:`EmptySourceError` when it gives
            nothing); None for a single source.
        num_samples: samples per epoch for ``sampling="random"`` (the length the offset dataset reports).

    Raises:
        EmptySourceError: in a blend, a source without a window under the options (why is said).
        ValueError: a single source too short, or document options on a stream without documents.
    """
    o = options
    ids, info = load_token_ids(source, tokenizer=o.tokenizer, need_eot=o.needs_documents, backend=o.backend)  # type: ignore[arg-type]
    separator, separator_id = info.get("separator", "eos"), info.get("separator_id", info["eot_id"])
    doc_starts = info["doc_starts"]
    where = f"source {name}" if name is not None else "the source"
    if (o.respect_documents or o.packing) and separator == "none" and doc_starts is None:
        raise ValueError(f"respect_documents/packing need documents, but {where} has no separator and no document "
                         "index (a store prepared with --no-eot). Prepare it with a separator, or drop the option.")

    def empty(why: str) -> ValueError:
        if name is None:
            return ValueError(why)
        return EmptySourceError(f"{where} gives no window: {why} Give it more text or drop it from the mapping.")

    if o.packing is not None:
        starts, lengths = document_spans(ids, separator=separator, separator_id=separator_id, doc_starts=doc_starts)
        if o.packing == "best_fit":
            packing = pack_best_fit(starts, lengths, o.max_length, long_documents=o.long_documents)
        else:
            packing = pack_crop(starts, lengths, o.max_length)
        if packing.num_rows == 0:
            raise empty(f"it holds no tokens to pack ({len(ids):,} tokens).")
        pad_id = o.pad_id if o.pad_id is not None else (separator_id if separator_id is not None else 0)
        dataset = PackedDataset(ids, packing, pad_id=pad_id, return_positions=o.return_positions,
                                return_documents=o.return_documents,
                                ignore_cross_document_targets=o.ignore_cross_document_targets, reopen=info["reopen"])
        logger.info("packing=%r: %s rows from %s documents, %.2f%% padding, %.2f%% of tokens cropped", o.packing,
                    f"{len(dataset):,}", f"{len(starts):,}", 100 * packing.padding_fraction,
                    100 * packing.cropped_fraction)
        return Part(dataset, len(dataset), False, len(ids))

    window_starts, dropped, offsets = None, 0, None
    if o.respect_documents:
        if o.sampling == "random":
            offsets = DocumentOffsets(ids, o.max_length, eot_id=separator_id, doc_starts=doc_starts,
                                      separator=separator)
            dropped = offsets.dropped_tokens
        else:
            window_starts, dropped = document_window_starts(ids, o.max_length, o.stride, eot_id=separator_id,
                                                            doc_starts=doc_starts, separator=separator)
    if len(ids) < o.max_length + 1 and name is not None:
        raise empty(f"max_length={o.max_length} needs {o.max_length + 1:,} tokens, but it has {len(ids):,}.")
    windows = SlidingWindowDataset(ids, o.max_length, o.stride, starts=window_starts, eot_id=info["eot_id"],
                                   separator=separator, separator_id=separator_id, doc_starts=doc_starts,
                                   return_positions=o.return_positions, return_documents=o.return_documents,
                                   ignore_cross_document_targets=o.ignore_cross_document_targets,
                                   reopen=info["reopen"])
    if o.respect_documents:
        windows.dropped_tokens = dropped
        if dropped:
            logger.warning("respect_documents=True: %s of %s tokens are in documents shorter than max_length + 1 = %s "
                           "and give no window; pass packing='best_fit' to train on them too.", f"{dropped:,}",
                           f"{len(ids):,}", f"{o.max_length + 1:,}")
    if o.sampling == "random":
        size = len(offsets) if offsets is not None else windows.num_tokens - o.max_length
        if size == 0:
            raise empty(f"respect_documents=True with max_length={o.max_length}: no document is longer than "
                        f"{o.max_length} tokens, so no window fits inside one. Lower max_length, pass "
                        "packing='best_fit', or respect_documents=False.")
        return Part(OffsetDataset(windows, num_samples, offsets), size, True, len(ids))
    if len(windows) == 0:
        raise empty(f"respect_documents=True with max_length={o.max_length}: no document is longer than "
                    f"{o.max_length} tokens, so no window fits inside one. Lower max_length, pass "
                    "packing='best_fit', or respect_documents=False.")
    return Part(windows, len(windows), False, len(ids))
