"""What a batch holds: the stacked tensors every loader mode hands to its collate function.

Plain windows give ``[inputs, targets]``; ``return_positions=True`` adds ``position_ids``; ``return_documents=True``
gives a :class:`DocumentBatch`, a named tuple of everything attention needs to stay inside documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from lmfeed.loading.documents import cu_seqlens

__all__ = ["DocumentBatch", "WindowBatch"]


class DocumentBatch(NamedTuple):
    """A batch with its documents (``create_dataloader(..., return_documents=True)``); unpacks like a tuple.

    Attributes:
        inputs: ``(B, T)`` int64 token ids (padding slots of packed rows hold ``loader.pad_id``).
        targets: ``(B, T)`` int64, the inputs shifted by one; -100 where nothing is to be predicted (padding, and
            with ``ignore_cross_document_targets`` the first token of the next document).
        position_ids: ``(B, T)`` int64, 0 at the first token of every document (and of every row).
        document_ids: ``(B, T)`` int64, 0, 1, 2, ... along each row, one per document (padding is one more).
        cu_seqlens: int32 ``(num_documents + 1,)`` cumulative document lengths over the flattened ``(B * T)``
            batch, for varlen kernels (``lmfeed.loading.documents.cu_seqlens``).
        max_seqlen: the longest document in the batch, in tokens.

    Example:
        >>> inputs, targets, position_ids, document_ids, cu, longest = batch  # doctest: +SKIP
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    position_ids: torch.Tensor
    document_ids: torch.Tensor
    cu_seqlens: torch.Tensor
    max_seqlen: int


class WindowBatch(Sequence):
    """A batch from a dataset's ``__getitems__``: the stacked tensors, which lmfeed's collate takes as they are, seen
    by any other collate function as the usual sequence of ``(input, target[, position_ids[, document_ids]])`` rows
    (built only when asked for, so the fast path pays nothing for them).
    """

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, position_ids: torch.Tensor | None = None,
                 document_ids: torch.Tensor | None = None, *, documents: bool = False,
                 cu_seqlens: torch.Tensor | None = None) -> None:
        self.inputs = inputs
        self.targets = targets
        self.position_ids = position_ids
        self.document_ids = document_ids
        self.documents = documents  # collate as a DocumentBatch
        self.cu_seqlens = cu_seqlens  # when the dataset knows them already (packing), else computed on collate

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(t for t in (self.inputs, self.targets, self.position_ids, self.document_ids) if t is not None)

    def collated(self) -> list[torch.Tensor] | DocumentBatch:
        """What the loader yields: a list ``[inputs, targets(, position_ids)]``, or a :class:`DocumentBatch`."""
        if self.documents and self.position_ids is not None and self.document_ids is not None:
            if self.cu_seqlens is not None:
                cu, longest = self.cu_seqlens, int((self.cu_seqlens[1:] - self.cu_seqlens[:-1]).max())
            else:
                cu, longest = cu_seqlens(self.document_ids)
            return DocumentBatch(self.inputs, self.targets, self.position_ids, self.document_ids, cu, longest)
        return [t for t in (self.inputs, self.targets, self.position_ids) if t is not None]

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return tuple(t[i] for t in self.tensors())


def stack_batches(parts: list[tuple[np.ndarray, WindowBatch]], size: int) -> WindowBatch:
    """One batch of ``size`` rows from batches that each fill the rows ``index`` (a blend's sources)."""
    first = parts[0][1]
    if len(parts) == 1:
        return first
    shape = (size, first.inputs.shape[1])

    def stacked(pick: Any) -> torch.Tensor | None:
        if pick(first) is None:
            return None
        out = np.empty(shape, dtype=np.int64)
        for index, batch in parts:
            out[index] = pick(batch).numpy()
        return torch.from_numpy(out)

    inputs, targets = stacked(lambda b: b.inputs), stacked(lambda b: b.targets)
    assert inputs is not None and targets is not None  # every batch has them
    return WindowBatch(inputs, targets, stacked(lambda b: b.position_ids), stacked(lambda b: b.document_ids),
                       documents=first.documents)
