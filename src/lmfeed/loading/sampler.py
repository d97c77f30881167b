"""Which windows, in which order, on which rank: orders as pure functions of (seed, epoch, number of items).

The global order of an epoch is a sequence of *positions* p = 0, 1, 2, ... each mapped to an item:

- ``shuffle=False``: item p (windows in order);
- ``shuffle=True``: ``perm[p]`` with ``perm = torch.randperm(n, generator=Generator().manual_seed(epoch_seed))``.
  With ``seed=N`` the epoch seed is a hash of (N, epoch): the order depends on those two alone. Without a seed it is
  drawn from torch's global RNG at the start of the epoch, exactly as ``DataLoader(shuffle=True)``'s
  ``RandomSampler`` draws it, so ``torch.manual_seed(123)`` gives the same order as the seed's code;
- ``sampling="random"``: a uniformly random token offset in ``[0, num_tokens - max_length)`` per position, the way
  nanoGPT's ``get_batch`` draws them, from a counter-based stream (blocks of 4,096 draws keyed by
  (epoch seed, block)), so any position can be computed without the ones before it.

Rank r of W takes positions ``c + r, c + r + W, c + r + 2W, ...`` (c: positions already consumed). So after k full
batches on every rank the consumed positions are exactly the prefix ``[0, k * batch_size * W)`` of the global
order, whatever W is: a run can resume on another world size and carry on from the same global position. The
global order never depends on W.

An epoch has ``per_rank * W`` positions. With ``drop_last`` ``per_rank = n // W`` (the tail that does not divide is
dropped this epoch); otherwise ``per_rank = ceil(n / W)`` and positions past n wrap around to the start of the
order (padding by repeating, as ``DistributedSampler`` does). Every rank always gets the same number of batches,
so no rank waits forever in a collective.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.random  # noqa: F401 - numpy loads it on first use (~9 ms): here, not inside the first batch
import torch
from torch.utils.data import Sampler

__all__ = ["PassState", "RandomOffsets", "WindowBatchSampler", "WindowOrder", "WindowSampler", "block_rng",
           "epoch_seed_for", "shuffled_order"]

_BLOCK = 4096  # random offsets are drawn in blocks of this many positions
_CHUNK_ITEMS = 8192  # positions mapped to items per numpy call


def epoch_seed_for(seed: int, epoch: int) -> int:
    """A 63-bit seed that depends on (seed, epoch) alone, well mixed (seed 1 epoch 0 differs from seed 0 epoch 1)."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0]
    return int(state) & (2**63 - 1)


def draw_epoch_seed() -> int:
    """Draw a seed from torch's global RNG exactly as ``torch.utils.data.RandomSampler`` does."""
    return int(torch.empty((), dtype=torch.int64).random_().item())


def shuffled_order(n: int, epoch_seed: int) -> torch.Tensor:
    """The permutation ``RandomSampler`` would produce from ``epoch_seed``: ``(n,)`` int64."""
    generator = torch.Generator()
    generator.manual_seed(epoch_seed)
    return torch.randperm(n, generator=generator)


class WindowOrder:
    """Windows in order, or shuffled by ``shuffled_order(n, epoch_seed)``."""

    def __init__(self, num_items: int, *, shuffle: bool) -> None:
        self.num_items = num_items
        self.needs_seed = shuffle

    def for_epoch(self, epoch_seed: int | None) -> Callable[[np.ndarray], np.ndarray]:
        n = self.num_items
        if not self.needs_seed:
            return lambda positions: positions % n
        assert epoch_seed is not None  # WindowBatchSampler.resolve_epoch_seed gives one whenever needs_seed
        order = shuffled_order(n, epoch_seed).numpy()
        return lambda positions: order[positions % n]


class RandomOffsets:
    """A uniformly random token offset in ``[0, high)`` per position, from a counter-based stream: block b of
    4,096 draws is keyed by (epoch seed, b), so any position is computed without the ones before it."""

    needs_seed = True

    def __init__(self, num_samples: int, high: int) -> None:
        self.num_items = num_samples
        self.high = high

    def for_epoch(self, epoch_seed: int | None) -> Callable[[np.ndarray], np.ndarray]:
        assert epoch_seed is not None  # needs_seed: WindowBatchSampler.resolve_epoch_seed always gives one
        cache: dict[int, np.ndarray] = {}

        def offsets(positions: np.ndarray) -> np.ndarray:
            blocks = positions // _BLOCK
            out = np.empty(len(positions), dtype=np.int64)
            for block in np.unique(blocks):
                values = cache.get(int(block))
                if values is None:
                    values = block_rng(epoch_seed, int(block)).integers(0, self.high, size=_BLOCK, dtype=np.int64)
                    cache.clear()  # positions only move forward: keep one block
                    cache[int(block)] = values
                mask = blocks == block
                out[mask] = values[positions[mask] % _BLOCK]
            return out

        return offsets


def block_rng(epoch_seed: int, block: int) -> np.random.Generator:
    """The random stream of one block of positions: a function of (epoch seed, block) only."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([epoch_seed & (2**63 - 1), block])))


class Order(Protocol):
    num_items: int
    needs_seed: bool

    def for_epoch(self, epoch_seed: int | None) -> Callable[[np.ndarray], np.ndarray]: ...


@dataclass
class PassState:
    """Where one pass over an epoch stands: its epoch, the global positions consumed, and the epoch's seed.

    ``epoch_seed`` is ``None`` until the pass draws or derives it (lazily, at its first batch, exactly when
    ``RandomSampler`` draws its own). Each pass has its own, so a pass made while another is live (an evaluation
    inside a training loop) never moves the live one.
    """

    epoch: int = 0
    position: int = 0
    epoch_seed: int | None = None


class WindowBatchSampler(Sampler[np.ndarray]):
    """Yields this rank's batches of items (window indices, token offsets, or (source, window) rows).

    The loader owns the resume counters (it knows which batches were *delivered*, workers prefetch ahead): it hands
    each pass a :class:`PassState` (``batches(state)``, or ``next_pass`` before ``DataLoader`` calls ``iter()``).
    Without one, ``iter()`` starts from the ``epoch``, ``position`` and ``epoch_seed`` attributes.

    Args:
        order: maps global positions to items for an epoch (:class:`WindowOrder`, :class:`RandomOffsets`, or
            :class:`lmfeed.loading.blend.MixtureOrder`).
        batch_size: items per batch on this rank.
        seed: see the module notes; ``None`` follows torch's global RNG.
        drop_last: drop the last incomplete batch and the tail that does not divide among ranks.
        rank, world_size: this process's share.
    """

    def __init__(
        self,
        order: Order,
        batch_size: int,
        *,
        seed: int | None,
        drop_last: bool,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.order = order
        self.num_items = order.num_items
        self.batch_size = batch_size
        self.seed = seed
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.position = 0
        self.epoch_seed: int | None = None
        self.next_pass: PassState | None = None  # taken by the next iter(): the pass DataLoader is about to start

    @property
    def per_rank(self) -> int:
        """Positions each rank serves in a whole epoch."""
        n, w = self.num_items, self.world_size
        return n // w if self.drop_last else -(-n // w)

    @property
    def epoch_length(self) -> int:
        """Global positions in one epoch at this world size."""
        return self.per_rank * self.world_size

    def items_from(self, position: int) -> int:
        """How many items this rank serves from global ``position`` to the end of the epoch (equal on every rank)."""
        remaining = max(self.epoch_length - position, 0)
        return remaining // self.world_size if self.drop_last else -(-remaining // self.world_size)

    def batches_from(self, position: int) -> int:
        """How many batches this rank serves from global ``position`` to the end of the epoch."""
        items = self.items_from(position)
        return items // self.batch_size if self.drop_last else -(-items // self.batch_size)

    def __len__(self) -> int:
        return self.batches_from(0)

    def resolve_epoch_seed(self, state: PassState) -> int | None:
        """The seed of the pass's epoch order: derived from (seed, epoch), or drawn like RandomSampler; kept in it."""
        if state.epoch_seed is None and self.order.needs_seed:
            state.epoch_seed = draw_epoch_seed() if self.seed is None else epoch_seed_for(self.seed, state.epoch)
        return state.epoch_seed

    def __iter__(self) -> Iterator[np.ndarray]:
        state = self.next_pass  # left in place: DataLoader's iterator calls iter() twice as it is made (_reset)
        if state is None:
            state = PassState(self.epoch, self.position, self.epoch_seed)
        return self.batches(state)

    def batches(self, state: PassState) -> Iterator[np.ndarray]:
        """The batches of the pass ``state`` from its position on; its epoch seed is resolved at the first batch."""
        w, b = self.world_size, self.batch_size
        position = state.position  # read now: the pass is fixed when it is made, whatever happens before next()
        first = position + self.rank
        batches = self.batches_from(position)
        items = min(self.items_from(position), batches * b)  # without the dropped short batch
        per_chunk = max(1, _CHUNK_ITEMS // b)  # map many batches' positions at once: numpy calls amortised

        def generate() -> Iterator[np.ndarray]:
            items_at = self.order.for_epoch(self.resolve_epoch_seed(state))
            for k0 in range(0, batches, per_chunk):
                i0, i1 = k0 * b, min((k0 + per_chunk) * b, items)
                chunk = items_at(first + w * np.arange(i0, i1, dtype=np.int64))
                for j in range(0, i1 - i0, b):
                    yield chunk[j : j + b]  # numpy: DataLoader hands it to the dataset's __getitems__ as it is

        return generate()


class WindowSampler(Sampler[object]):
    """``loader.sampler``: this rank's items of an epoch one at a time, as a ``DataLoader``'s sampler reports them.

    Iterating walks the loader's current epoch from its start (the live training pass's epoch and shuffle, if one
    is live); it never moves the loader. ``len()`` is the items an epoch delivers on this rank, so it equals
    ``len(loader) * loader.batch_size`` with ``drop_last=True``. The attributes follow ``DistributedSampler``'s
    names: ``shuffle``, ``seed``, ``drop_last``, ``num_replicas``, ``rank``.
    """

    def __init__(self, batch_sampler: WindowBatchSampler, current: Callable[[], PassState], *, shuffle: bool) -> None:
        self.batch_sampler = batch_sampler
        self._current = current
        self.shuffle = shuffle
        self.seed = batch_sampler.seed
        self.drop_last = batch_sampler.drop_last
        self.num_replicas = batch_sampler.world_size
        self.rank = batch_sampler.rank

    @property
    def epoch(self) -> int:
        return self._current().epoch

    def __len__(self) -> int:
        s = self.batch_sampler
        return len(s) * s.batch_size if s.drop_last else s.items_from(0)

    def __iter__(self) -> Iterator[object]:
        for batch in self.batch_sampler.batches(self._current()):
            yield from batch.tolist()
