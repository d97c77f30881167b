"""Several corpora in set proportions: ``create_dataloader({"web": 0.7, "code": 0.3}, ...)``.

Each global position p of an epoch draws its source k with probability ``weights[k]`` (a counter-based stream:
block b of 4,096 draws is keyed by (epoch seed, b), as for random offsets). The j-th draw of source k takes that
source's window ``perm_k[j mod n_k]``, where ``perm_k`` is a shuffle of the source's n_k windows keyed by (epoch
seed, k, j // n_k): a source is read without repeats until all its windows have been used, then reshuffled. So a
small, heavily weighted source repeats (is up-sampled) and a large, lightly weighted one is not read to its end.

Every choice is a function of (seed, epoch, position), so ranks share one global order as for plain windows, and
a resumed loader recomputes where each source stands by replaying the draws up to its position (cheap: numpy,
4,096 draws at a time), from counters alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from lmfeed.loading.sampler import _BLOCK, block_rng, epoch_seed_for, shuffled_order
from lmfeed.loading.windows import SlidingWindowDataset, WindowBatch

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

    def __init__(self, sizes: Sequence[int], weights: np.ndarray, num_samples: int, *, shuffle: bool = True) -> None:
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.weights = weights
        self.num_items = num_samples
        self.shuffle = shuffle

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

    def _window(self, source: int, draw: int) -> int:
        n = int(self.order.sizes[source])
        cycle, j = divmod(draw, n)
        if not self.order.shuffle:
            return j
        key = (source, cycle)
        perm = self.perms.get(key)
        if perm is None:
            order = shuffled_order(n, epoch_seed_for(self.epoch_seed & (2**62 - 1), source * 1_000_003 + cycle))
            perm = order.numpy()
            if len(self.perms) > 2 * len(self.order.sizes):
                self.perms.clear()
            self.perms[key] = perm
        return int(perm[j])

    def items(self, positions: np.ndarray) -> np.ndarray:
        rows = np.empty((len(positions), 2), dtype=np.int64)
        for i, p in enumerate(positions.tolist()):
            block, offset = divmod(p, _BLOCK)
            self._advance_to(block)
            source = int(self.choices[offset])
            draw = int(self.counts_before[source] + self.rank_in_source[offset])
            rows[i] = (source, self._window(source, draw))
        return rows


class MixtureDataset(Dataset):
    """The windows of several sources; items are addressed by ``(source, window)`` rows."""

    def __init__(self, sources: Sequence[SlidingWindowDataset], names: Sequence[str]) -> None:
        self.sources = list(sources)
        self.names = list(names)

    def __len__(self) -> int:
        return sum(len(s) for s in self.sources)

    def __getitems__(self, rows: np.ndarray) -> WindowBatch:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1, 2)
        parts = {}
        for k in np.unique(rows[:, 0]):
            mask = rows[:, 0] == k
            parts[int(k)] = (mask, self.sources[int(k)].__getitems__(rows[mask, 1]))
        first = next(iter(parts.values()))[1]
        shape = (len(rows), first.inputs.shape[1])
        inputs, targets = torch.empty(shape, dtype=torch.int64), torch.empty(shape, dtype=torch.int64)
        positions = torch.empty(shape, dtype=torch.int64) if first.position_ids is not None else None
        for mask, batch in parts.values():
            index = torch.from_numpy(np.flatnonzero(mask))
            inputs[index], targets[index] = batch.inputs, batch.targets
            if positions is not None:
                assert batch.position_ids is not None  # every source is built with the same return_positions
                positions[index] = batch.position_ids
        return WindowBatch(inputs, targets, positions)

    def __getitem__(self, row: Sequence[int]) -> tuple[torch.Tensor, ...]:
        return self.__getitems__(np.asarray([row]))[0]
