"""Several corpora in set proportions: ``create_dataloader({"web": 0.7, "code": 0.3}, ...)``.

Each global position p of an epoch draws its source k with probability ``weights[k]`` (a counter-based stream:
block b of 4,096 draws is keyed by (epoch seed, b), as for random offsets). The j-th draw of source k takes that
source's window ``perm_k[j mod n_k]``, where ``perm_k`` is a shuffle of the source's n_k windows keyed by (epoch
seed, k, j // n_k): a source is read without repeats until all its windows have been used, then reshuffled. So a
small, heavily weighted source repeats (is up-sampled) and a large, lightly weighted one is not read to its end.
A source read with ``sampling="random"`` has no windows to permute: its j-th draw is a uniformly random offset
from a counter-based stream keyed by (epoch seed, k, j // 4,096), like a single source's random offsets.
Sources may be sliding windows, document-safe windows, random offsets or packed rows (:mod:`lmfeed.loading.parts`).

Every choice is a function of (seed, epoch, position), so ranks share one global order as for plain windows, and
a resumed loader recomputes where each source stands by replaying the draws up to its position (cheap: numpy,
4,096 draws at a time), from counters alone. A batch's positions are mapped a block at a time with numpy (no
Python loop per window), and each source fills its rows of the batch with one gather.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lmfeed.loading.batch import WindowBatch, stack_batches
from lmfeed.loading.sampler import _BLOCK, block_rng, epoch_seed_for, shuffled_order
from lmfeed.loading.windows import SlidingWindowDataset

__all__ = ["MixtureDataset", "MixtureOrder", "normalized_weights"]


def normalized_weights(weights: Sequence[float], names: Sequence[str]) -> np.ndarray:
    """Weights as probabilities; each must be a positive finite number.

    Raises:
        TypeError, ValueError: a weight that is not a positive number (the message names its source).
    """
    values = []
    for name, w in zip(names, weights, strict=True):
        if isinstance(w, bool) or not isinstance(w, (int, float)):
            raise TypeError(f"The weight of {name} must be a number, but got {w!r}. Use e.g. {{{name!r}: 0.5}}.")
        if not np.isfinite(w) or w <= 0:
            raise ValueError(f"The weight of {name} must be a positive number, but got {w}. Drop the source instead.")
        values.append(float(w))
    p = np.array(values)
    return p / p.sum()


class MixtureOrder:
    """Maps global positions to ``(source, window)`` rows, shape ``(B, 2)``; see the module notes."""

    needs_seed = True

    def __init__(self, sizes: Sequence[int], weights: np.ndarray, num_samples: int, *, shuffle: bool = True,
                 random: Sequence[bool] | None = None) -> None:
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.weights = weights
        self.num_items = num_samples
        self.shuffle = shuffle
        self.random = [False] * len(self.sizes) if random is None else [bool(r) for r in random]

    def for_epoch(self, epoch_seed: int | None) -> Callable[[np.ndarray], np.ndarray]:
        assert epoch_seed is not None  # needs_seed: WindowBatchSampler.resolve_epoch_seed always gives one
        cursor = _Cursor(self, int(epoch_seed))
        return cursor.items


class _Cursor:
    """Walks an epoch's draws forward, block by block, keeping how many times each source was drawn before."""

    def __init__(self, order: MixtureOrder, epoch_seed: int) -> None:
        self.order = order
        self.epoch_seed = epoch_seed
        self.perms: dict[tuple[int, int], np.ndarray] = {}
        self._rewind()

    def _rewind(self) -> None:
        self.block = -1
        self.counts_before = np.zeros(len(self.order.sizes), dtype=np.int64)  # draws of each source before block
        self.choices = np.empty(0, dtype=np.int64)
        self.rank_in_source = np.empty(0, dtype=np.int64)

    def _advance_to(self, block: int) -> None:
        if block < self.block:  # positions only move forward within a pass; replay if asked to go back
            self._rewind()
        while self.block < block:
            if self.block >= 0:
                self.counts_before += np.bincount(self.choices, minlength=len(self.order.sizes))
            self.block += 1
            rng = block_rng(self.epoch_seed, self.block)
            self.choices = rng.choice(len(self.order.sizes), size=_BLOCK, p=self.order.weights)
            # how many earlier positions in this block drew the same source
            rank = np.empty(_BLOCK, dtype=np.int64)
            for k in range(len(self.order.sizes)):
                where = np.flatnonzero(self.choices == k)
                rank[where] = np.arange(len(where))
            self.rank_in_source = rank

    def _perm(self, source: int, cycle: int) -> np.ndarray:
        key = (source, cycle)
        perm = self.perms.get(key)
        if perm is None:
            n = int(self.order.sizes[source])
            order = shuffled_order(n, epoch_seed_for(self.epoch_seed & (2**62 - 1), source * 1_000_003 + cycle))
            perm = order.numpy()
            if len(self.perms) > 2 * len(self.order.sizes):
                self.perms.clear()
            self.perms[key] = perm
        return perm

    def _offsets(self, source: int, block: int) -> np.ndarray:
        key = (-1 - source, block)  # negative keys: random offsets, apart from the permutations
        values = self.perms.get(key)
        if values is None:
            seed = np.random.SeedSequence([self.epoch_seed & (2**63 - 1), 1 + source, block])
            values = np.random.Generator(np.random.PCG64(seed)).integers(
                0, int(self.order.sizes[source]), size=_BLOCK, dtype=np.int64)
            if len(self.perms) > 2 * len(self.order.sizes):
                self.perms.clear()
            self.perms[key] = values
        return values

    def _windows(self, source: int, draws: np.ndarray) -> np.ndarray:
        """The items of source ``source`` for its draws ``draws`` (ascending within a block)."""
        n = int(self.order.sizes[source])
        out = np.empty(len(draws), dtype=np.int64)
        if self.order.random[source]:
            blocks = draws // _BLOCK
            for block in np.unique(blocks).tolist():
                mask = blocks == block
                out[mask] = self._offsets(source, block)[draws[mask] % _BLOCK]
            return out
        if not self.order.shuffle:
            return draws % n
        cycles = draws // n
        for cycle in np.unique(cycles).tolist():
            mask = cycles == cycle
            out[mask] = self._perm(source, cycle)[draws[mask] % n]
        return out

    def items(self, positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64)
        rows = np.empty((len(positions), 2), dtype=np.int64)
        blocks = positions // _BLOCK
        for block in np.unique(blocks).tolist():  # a batch spans one or two blocks of 4,096 positions
            self._advance_to(block)
            mask = blocks == block
            offset = positions[mask] % _BLOCK
            sources = self.choices[offset]
            draws = self.counts_before[sources] + self.rank_in_source[offset]
            found = np.empty(len(offset), dtype=np.int64)
            for k in np.unique(sources).tolist():
                here = sources == k
                found[here] = self._windows(k, draws[here])
            rows[mask, 0], rows[mask, 1] = sources, found
        return rows


class MixtureDataset(Dataset):
    """The items of several sources (windows, offsets or packed rows); addressed by ``(source, item)`` rows."""

    def __init__(self, sources: Sequence[Any], names: Sequence[str]) -> None:
        self.sources = list(sources)
        self.names = list(names)
        # plain windows from every source: each gathers its rows straight into one buffer, converted once
        self._plain = all(isinstance(s, SlidingWindowDataset) and s.plain for s in self.sources)
        if self._plain:
            self._dtype = np.result_type(*(s.token_ids.dtype for s in self.sources))
            self._width = self.sources[0].max_length + 1

    def __len__(self) -> int:
        return sum(len(s) for s in self.sources)

    def window_rows(self, rows: np.ndarray) -> np.ndarray:
        """Plain windows only: the ``(B, L + 1)`` ids of ``(source, window)`` rows, in the sources' common dtype."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1, 2)
        out = np.empty((len(rows), self._width), dtype=self._dtype)
        chosen, items = rows[:, 0], rows[:, 1]
        for k, source in enumerate(self.sources):  # a few sources: no sort (np.unique) per batch
            index = np.flatnonzero(chosen == k)
            if len(index):
                out[index] = source.chunk(source.window_starts(items[index]))
        return out

    def __getitems__(self, rows: np.ndarray) -> WindowBatch:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1, 2)
        if self._plain:
            out = self.window_rows(rows)
            return WindowBatch(torch.from_numpy(out[:, :-1].astype(np.int64)),
                               torch.from_numpy(out[:, 1:].astype(np.int64)))
        parts = []
        for k in np.unique(rows[:, 0]).tolist():  # one gather per source
            index = np.flatnonzero(rows[:, 0] == k)
            parts.append((index, self.sources[k].__getitems__(rows[index, 1])))
        return stack_batches(parts, len(rows))

    def __getitem__(self, row: Sequence[int]) -> tuple[torch.Tensor, ...]:
        return self.__getitems__(np.asarray([row]))[0]
