"""How batches cross from ``DataLoader``'s worker processes to the training process: a shared ring of id buffers.

A batch of windows is one memory-mapped gather (tens of microseconds), so with ``num_workers > 0`` the cost is the
crossing, not the work: ``DataLoader`` sends every batch's tensors through a new shared-memory segment and a file
descriptor, and every batch through two queue messages; on 2 cores that caps any loader at a few M tokens/s.
Here the worker processes stay ``DataLoader``'s own (``worker_init_fn``, seeds, ``persistent_workers``,
``multiprocessing_context``, ``timeout``, error propagation: all as ``DataLoader`` does them); only the payload
changes:

```
 main process                                      worker k (DataLoader's)
 WindowBatchSampler --> groups of G batches ------> dataset.window_rows(batch) for each of the G batches
   (slot s, [ix_1 .. ix_G])   one queue message       writes each window's L + 1 ids, in the stored dtype
                                                       (uint16 for GPT-2), into ring[s * G + g]
 ring[s * G + g] --> inputs, targets int64  <------- returns (s, rows per batch): one small message per G batches
```

The ring is one shared tensor of ``(P + 1) * G`` batch slots, P = ``prefetch_factor * num_workers`` groups in
flight. ``DataLoader`` hands out group j only after group j - P has come back (it refills the prefetch queue as it
returns a result), and group j - P - 1, the last one to use slot j mod (P + 1), has then already been copied out
here: no slot is written while it is read, with no lock. Orders, resume counters and distributed shares stay the
sampler's, so every guarantee of the loader holds unchanged; the batches are equal, tensor for tensor.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["RingBatches", "ring_layout"]

_GROUP_BYTES = 4 << 20  # ids per group message at most: G = this // one batch's bytes, within [1, _MAX_GROUP]
_MAX_GROUP = 32  # on 2 cores a queue message costs ~0.3-0.6 ms, so 32 batches of 8 x 1024 spread it to ~15 us each


def _window_sources(dataset: Any) -> list[Any] | None:
    """The :class:`SlidingWindowDataset` objects a lmfeed dataset gathers from, or None for any other dataset."""
    from lmfeed.loading.windows import SlidingWindowDataset

    if isinstance(dataset, SlidingWindowDataset):
        return [dataset]
    inner = getattr(dataset, "windows", None)  # _OffsetDataset: random offsets over one source
    if isinstance(inner, SlidingWindowDataset):
        return [inner]
    sources = getattr(dataset, "sources", None)  # MixtureDataset: several sources
    if isinstance(sources, list) and sources and all(isinstance(s, SlidingWindowDataset) for s in sources):
        return sources
    return None


def ring_layout(dataset: Any, batch_size: int) -> tuple[int, np.dtype, int] | None:
    """``(max_length, stored dtype, group size G)`` when ``dataset`` can serve through the ring, else None.

    Only lmfeed's own window datasets of plain ``(input, target)`` batches qualify: their batches are windows of
    one stored stream, the target the input shifted by one, so a window's ``max_length + 1`` ids carry both.
    Batches with ``position_ids``, ``document_ids`` or masked targets go through ``DataLoader``'s own transport.
    """
    sources = _window_sources(dataset)
    if sources is None or len({s.max_length for s in sources}) != 1:
        return None
    if any(s.return_positions or s.return_documents or s.ignore_cross_document_targets for s in sources):
        return None  # batches with more than (input, target), or targets that are not the shifted inputs
    dtype = np.result_type(*(s.token_ids.dtype for s in sources if s.token_ids is not None))
    if dtype.kind not in "ui" or dtype.itemsize > 4:
        dtype = np.dtype(np.int64)
    max_length = sources[0].max_length
    batch_bytes = batch_size * (max_length + 1) * dtype.itemsize
    return max_length, dtype, max(1, min(_MAX_GROUP, _GROUP_BYTES // batch_bytes))


class _Group:
    """What the sampler hands a worker: the slot to write and the G batches of indices to write there."""

    __slots__ = ("slot", "batches")

    def __init__(self, slot: int, batches: list[Any]) -> None:
        self.slot, self.batches = slot, batches


class _GroupSampler:
    """The rest of a pass's batches (``source``, set per pass), G at a time, each group tagged with its ring slot."""

    def __init__(self, batch_sampler: Any, group: int, slots: int) -> None:
        self.batch_sampler, self.group, self.slots = batch_sampler, group, slots
        self.source: Iterator[Any] = iter(())

    def __len__(self) -> int:
        return -(-len(self.batch_sampler) // self.group)

    def __iter__(self) -> Iterator[_Group]:
        pending: list[Any] = []
        slot = 0
        for batch in self.source:
            pending.append(batch)
            if len(pending) == self.group:
                yield _Group(slot, pending)
                slot, pending = (slot + 1) % self.slots, []
        if pending:
            yield _Group(slot, pending)


class _RingDataset(Dataset):
    """In a worker: gathers a group's batches with the loader's dataset and writes their windows into the ring.

    Attributes not defined here are the wrapped dataset's, so a ``worker_init_fn`` that reads
    ``get_worker_info().dataset`` finds what it would find with ``DataLoader`` alone.
    """

    def __init__(self, dataset: Any, ring: torch.Tensor, group: int) -> None:
        self.dataset, self.ring, self.group = dataset, ring, group

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "ring", "group"):  # not set yet (unpickling): never recurse
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitems__(self, group: _Group) -> tuple[int, list[int]]:
        rows = []
        ring = self.ring.numpy()
        base = group.slot * self.group
        for g, indices in enumerate(group.batches):
            # (B, L + 1) in the stored dtype (ring_layout admits only datasets with window_rows): one copy, no int64
            chunk = self.dataset.window_rows(indices)
            ring[base + g, :len(chunk)] = chunk
            rows.append(len(chunk))
        return group.slot, rows


def _as_is(data: Any) -> Any:
    return data


class RingBatches:
    """One pass of a loader's batches through the ring: the iterator ``WindowLoader`` returns with workers.

    The first G batches of a pass are gathered here, in the training process, while the workers start (a batch
    is a pure function of its indices, so where it is gathered changes no id); the workers are started at the
    second batch and serve the rest. It owns a private ``DataLoader`` over :class:`_RingDataset` with the
    loader's worker settings, and resets like ``DataLoader``'s own iterator, so ``persistent_workers``
    keeps its processes (and its ring) across passes.
    """

    def __init__(self, loader: DataLoader, layout: tuple[int, np.dtype, int]) -> None:
        max_length, dtype, group = layout
        self._loader = loader
        self._prefetch = loader.prefetch_factor if loader.prefetch_factor is not None else 2
        self._slots = self._prefetch * loader.num_workers + 1  # groups in flight + the one copied out (module notes)
        self._group, self._dtype, self._max_length = group, dtype, max_length
        self._inner: DataLoader | None = None
        self._sampler = _GroupSampler(loader.batch_sampler, group, self._slots)
        # DataLoader's iterator draws its workers' base seed from the loader's generator (the global RNG without
        # one) before the sampler draws its shuffle; draw it at the same moment, so an unseeded shuffle comes out
        # as with DataLoader, and seed the workers from it when they start (persistent workers: once, as there)
        self._worker_seed = int(torch.empty((), dtype=torch.int64).random_(generator=loader.generator).item())
        self._start_pass()

    def _start_pass(self) -> None:
        # iter() of the batch sampler now, inside DataLoader.__iter__, as DataLoader's own iterator does: the
        # sampler may read the pass it starts from the loader at this moment; the first index is taken at once
        batch_sampler: Any = self._loader.batch_sampler
        source = iter(batch_sampler)
        self._head = list(itertools.islice(source, self._group))  # gathered here while the workers start
        self._sampler.source = source
        self._groups: Iterator[Any] | None = None
        self._batches: Iterator[list[torch.Tensor]] = iter(())

    def _start_workers(self) -> Iterator[Any]:
        loader = self._loader
        if self._inner is None:
            batch_size = loader.batch_sampler.batch_size  # type: ignore[union-attr]
            torch_dtype = torch.from_numpy(np.zeros(0, dtype=self._dtype)).dtype
            ring = torch.empty((self._slots * self._group, batch_size, self._max_length + 1), dtype=torch_dtype)
            ring.share_memory_()
            self._ring = ring.numpy()
            self._inner = DataLoader(
                _RingDataset(loader.dataset, ring, self._group),
                batch_sampler=self._sampler,  # type: ignore[arg-type]
                num_workers=loader.num_workers,
                collate_fn=_as_is,
                pin_memory=False,  # the int64 tensors are made here; pinned below when asked
                timeout=loader.timeout,
                worker_init_fn=loader.worker_init_fn,
                multiprocessing_context=loader.multiprocessing_context,
                generator=torch.Generator().manual_seed(self._worker_seed),
                prefetch_factor=self._prefetch,
                persistent_workers=loader.persistent_workers,
                in_order=True,  # the slot reasoning needs results in the order groups were handed out
            )
        return iter(self._inner)

    def _reset(self, loader: DataLoader, first_iter: bool = False) -> None:
        """A new pass over the same workers (``DataLoader.__iter__`` with ``persistent_workers`` calls this)."""
        self._start_pass()

    def __iter__(self) -> RingBatches:
        return self

    def __next__(self) -> Any:
        if self._head:
            batch = self._head.pop(0)
            if self._groups is None and len(self._head) < self._group - 1:  # from the second batch: start them
                self._groups = self._start_workers()
            dataset: Any = self._loader.dataset  # one of lmfeed's window datasets (ring_layout checked)
            return self._finish(dataset.__getitems__(batch).collated())
        while True:
            ready = next(self._batches, None)
            if ready is not None:
                return ready
            if self._groups is None:
                self._groups = self._start_workers()
            slot, rows = next(self._groups)  # StopIteration ends the pass
            self._batches = iter(self._copy_out(slot, rows))  # copied now: the slot may be written again after

    def _finish(self, tensors: Any) -> list[torch.Tensor]:
        return [t.pin_memory() for t in tensors] if self._loader.pin_memory else list(tensors)

    def _copy_out(self, slot: int, rows: list[int]) -> list[list[torch.Tensor]]:
        out = []
        for g, n in enumerate(rows):
            chunk = self._ring[slot * self._group + g, :n]  # (B, L + 1) in the stored dtype
            # contiguous inputs and targets, as SlidingWindowDataset.gather makes them (a loss may .view(-1) them)
            out.append(self._finish([torch.from_numpy(chunk[:, :-1].astype(np.int64)),
                                     torch.from_numpy(chunk[:, 1:].astype(np.int64))]))
        return out
