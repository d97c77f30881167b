"""``create_dataloader``: the seed's ``create_dataloader_v1``, grown into a loader for training at scale.

With the seed's arguments it gives the seed's batches::

    >>> loader = create_dataloader(raw_text, batch_size=8, max_length=4, stride=4, shuffle=False)
    >>> inputs, targets = next(iter(loader))          # each (8, 4) int64; targets are inputs shifted by one

On top of that: token stores (memory-mapped, no copy), one vectorised gather per batch, orders that are pure
functions of (seed, epoch), shares of one global order per ``torch.distributed`` rank, and ``state_dict()`` /
``load_state_dict()`` to resume mid-epoch (also with workers, also on another world size).
"""

from __future__ import annotations

import logging
import os
import warnings
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from lmfeed._validate import as_bool, as_choice, as_int, as_seed
from lmfeed.loading.batch import WindowBatch
from lmfeed.loading.parts import LoaderOptions, OffsetDataset, Part, build_part
from lmfeed.loading.sampler import PassState, RandomOffsets, WindowBatchSampler, WindowOrder, WindowSampler
from lmfeed.loading.state import check_state, make_state
from lmfeed.loading.transport import RingBatches, ring_layout

__all__ = ["WindowLoader", "create_dataloader", "create_train_val_loaders"]

logger = logging.getLogger(__name__)

def collate_windows(data: Any) -> Any:
    """Take a :class:`WindowBatch` as it is (already stacked); anything else goes to torch's ``default_collate``."""
    if isinstance(data, WindowBatch):
        return data.collated()  # a list, as default_collate returns for (input, target) pairs, or a DocumentBatch
    return default_collate(data)


class _BatchedDataset(Protocol):
    """What every dataset ``create_dataloader`` builds offers: a whole batch from one call, and its length."""

    def __len__(self) -> int: ...

    def __getitems__(self, items: np.ndarray) -> WindowBatch: ...


_OffsetDataset = OffsetDataset  # the name before parts.py


class WindowLoader(DataLoader):
    """A ``torch.utils.data.DataLoader`` over windows that can say where it is and resume from there.

    Passes and epochs, the rules:

    - ``iter(loader)`` when no other pass is live starts the *training pass*: the rest of the current epoch (after
      :meth:`load_state_dict`: from the loaded position), otherwise the epoch from its beginning. A training pass
      abandoned midway is started again from its beginning by the next ``iter()``, as with ``DataLoader``.
    - When a training pass has handed out its last batch the epoch advances: with a seed the next pass walks a new
      order; without one it draws from torch's global RNG as ``DataLoader`` does. So a complete pass always
      advances the epoch, also one that only computes a loss over the whole loader.
    - ``iter(loader)`` while a training pass is live (its iterator exists and is not exhausted) starts a *nested
      pass*, as the book's ``evaluate_model`` does between training steps: it walks the live pass's epoch from the
      beginning (without a seed, a fresh shuffle drawn as ``DataLoader`` draws one) and changes nothing the
      training pass owns: not its position, its epoch or its epoch seed, even when it runs to the end.
    - ``state_dict()`` describes the training pass (or, between passes, where the next one starts); after
      receiving batch k, loaded into a new loader built with the same arguments (any ``num_workers``, any world
      size), it makes the next pass yield batch k + 1 onwards.

    ``batch_size``, ``drop_last`` and ``sampler`` report the configured values, as ``DataLoader`` does, so
    ``len(loader) * loader.batch_size`` is the number of windows an epoch delivers on this rank.
    """

    def __init__(self, dataset: Dataset, batch_sampler: WindowBatchSampler, *, num_workers: int, pin_memory: bool,
                 persistent_workers: bool = False, mode: Mapping[str, Any] | None = None) -> None:
        super().__init__(
            dataset,
            # torch's stubs type batch_sampler as Sampler[list]; a batch of indices may be any sequence (here a numpy
            # array, which DataLoader hands to the dataset's __getitems__ as it is)
            batch_sampler=batch_sampler,  # type: ignore[arg-type]
            num_workers=num_workers,
            collate_fn=collate_windows,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers and num_workers > 0,
        )
        self._mode: dict[str, Any] = dict(mode or {})
        self._next = PassState()  # where the next training pass starts (and the state between passes)
        self._resume = False
        self._live: weakref.ref[Iterator[Any]] | None = None  # the live training pass's iterator
        self._live_state: PassState | None = None

    @property
    def _window_sampler(self) -> WindowBatchSampler:
        """``batch_sampler`` as ``__init__`` took it (DataLoader's attribute is typed for any batch sampler)."""
        return cast(WindowBatchSampler, self.batch_sampler)

    def _get_iterator(self) -> Any:
        """With workers, batches cross through a shared ring of id buffers (:mod:`lmfeed.loading.transport`), not
        as tensors per batch; DataLoader's own iterator for anything the ring does not carry."""
        if self.num_workers > 0 and self.collate_fn is collate_windows:
            layout = ring_layout(self.dataset, self._window_sampler.batch_size)
            if layout is not None:
                return RingBatches(self, layout)
        return super()._get_iterator()

    # -- what DataLoader reports: the configured values, not the defaults a batch_sampler leaves behind ---------
    # DataLoader.__init__ assigns batch_size=None, drop_last=False and a SequentialSampler when it is given a
    # batch_sampler; the setters take those assignments, the getters report the sampler's real settings.
    @property
    def batch_size(self) -> int:
        """Windows per batch on this rank, B."""
        return self._window_sampler.batch_size

    @batch_size.setter
    def batch_size(self, value: Any) -> None:
        pass

    @property
    def drop_last(self) -> bool:
        """Whether the last incomplete batch (and under distributed, the tail that does not divide) is dropped."""
        return self._window_sampler.drop_last

    @drop_last.setter
    def drop_last(self, value: Any) -> None:
        pass

    @property  # type: ignore[override]
    def sampler(self) -> WindowSampler:
        """This rank's items of an epoch, one at a time (:class:`~lmfeed.loading.sampler.WindowSampler`)."""
        view = self.__dict__.get("_sampler_view")
        if view is None:
            view = WindowSampler(self._window_sampler, self._sampler_pass, shuffle=bool(self._mode.get("shuffle")))
            self.__dict__["_sampler_view"] = view
        return view

    @sampler.setter
    def sampler(self, value: Any) -> None:
        pass

    def _sampler_pass(self) -> PassState:
        live = self._live_pass()
        epoch = live.epoch if live is not None else self._next.epoch
        seed = live.epoch_seed if live is not None else self._next.epoch_seed if self._resume else None
        return PassState(epoch, 0, seed)

    # -- epochs -----------------------------------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        """The epoch the training pass is in (or the next one starts in)."""
        return self._next.epoch

    def set_epoch(self, epoch: int) -> None:
        """Start the next pass at the beginning of ``epoch`` (as ``DistributedSampler.set_epoch``)."""
        self._detach_live()
        self._next, self._resume = PassState(as_int("epoch", epoch, minimum=0)), False

    # -- packing --------------------------------------------------------------------------------------------
    def _packed(self) -> list[Any]:
        sources = getattr(self.dataset, "sources", [self.dataset])
        return [d for d in sources if hasattr(d, "padding_fraction")]

    @property
    def pad_id(self) -> int | None:
        """The id in padding slots of packed rows (their targets are -100); None when nothing is packed."""
        packed = self._packed()
        return packed[0].pad_id if packed else None

    @property
    def padding_fraction(self) -> float:
        """Padding slots over all slots of the packed rows (0.0 without packing)."""
        packed = self._packed()
        slots = sum(len(d) * (d.max_length + 1) for d in packed)
        return sum(d.packing.padding_slots for d in packed) / slots if slots else 0.0

    @property
    def cropped_fraction(self) -> float:
        """Document tokens left out by packing over all document tokens (0.0 without packing)."""
        packed = self._packed()
        tokens = sum(d.packing.document_tokens for d in packed)
        return sum(d.packing.cropped_tokens for d in packed) / tokens if tokens else 0.0

    # -- resume -----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Where the training pass is: ``{"epoch", "position", "epoch_seed", "mode", ...}``; a few plain values.

        A nested pass (an iterator made while the training pass is live) never shows here. See
        :mod:`lmfeed.loading.state` for the keys.
        """
        return make_state(self._next, self._window_sampler, self._mode)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume: the next pass yields the batches after the ones counted in ``state``.

        Raises:
            ValueError: not a lmfeed loader state, a missing key, a value out of range, or a state taken over
                other data, with another seed, or in another mode (``shuffle``, ``drop_last``, ``sampling``,
                ``respect_documents``, ``max_length``, ``stride``, source weights: the message names it).
            TypeError: a value of the wrong type.
        """
        start = check_state(state, self._window_sampler, self._mode)
        self._detach_live()
        self._next, self._resume = start, True

    def _live_pass(self) -> PassState | None:
        """The state of the live training pass, or None when no iterator of one is alive and unexhausted."""
        if self._live is None or self._live() is None:
            self._live, self._live_state = None, None
        return self._live_state

    def _detach_live(self) -> None:
        """A live training pass stops writing the loader's state (set_epoch or load_state_dict replaced it)."""
        self._live, self._live_state = None, None

    # -- iteration --------------------------------------------------------------------------------------------
    # DataLoader.__iter__ is declared to return its internal _BaseDataLoaderIter; a pass here is a plain iterator
    # that counts the batches it delivers (it wraps that one when there are workers)
    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        sampler = self._window_sampler
        live = self._live_pass()
        training = live is None
        resumed_midway = False
        if training:
            if not self._resume:
                self._next = PassState(self._next.epoch)
            self._resume = False
            run = PassState(self._next.epoch, self._next.position, self._next.epoch_seed)
            # the uninterrupted run drew this pass's base seed (below) when it started, before the state was saved
            resumed_midway = run.position > 0
        else:  # nested: the live pass's epoch from its start; its own shuffle without a seed, as DataLoader draws one
            assert live is not None
            run = PassState(live.epoch)
        total = sampler.batches_from(run.position)
        if total == 0:  # resumed where nothing is left for this world size (e.g. 2 windows, 4 ranks): epoch over
            if training:
                self._next = PassState(run.epoch + 1)
            return iter(())
        if self.num_workers == 0 and not self.pin_memory:
            # DataLoader draws a base seed for its workers from the global RNG when a pass starts; draw it too, so
            # that the global RNG (and so an unseeded shuffle) advances exactly as the seed's DataLoader does.
            if not resumed_midway:
                torch.empty((), dtype=torch.int64).random_(generator=self.generator)
            dataset = cast(_BatchedDataset, self.dataset)  # the windows, offsets or mixture create_dataloader built
            batches: Iterator[Any] = (collate_windows(dataset.__getitems__(ix)) for ix in sampler.batches(run))
        else:
            sampler.next_pass = run  # DataLoader's iterator calls iter(batch_sampler) as it is made
            generator = self.generator
            if resumed_midway:  # its base seed from a throwaway generator: the global RNG stays as saved
                self.generator = torch.Generator().manual_seed(run.position)
            try:
                if training or not self.persistent_workers:
                    batches = super().__iter__()
                else:  # a nested pass must not reset the training pass's persistent workers: it gets its own
                    batches = self._get_iterator()
            finally:
                sampler.next_pass, self.generator = None, generator
        counted = self._counted(batches, total, run, training)
        if training:
            self._live, self._live_state = weakref.ref(counted), run
        return counted

    def _counted(self, batches: Iterator[Any], total: int, run: PassState, training: bool) -> Iterator[Any]:
        sampler = self._window_sampler
        step = sampler.batch_size * sampler.world_size
        start = run.position
        for k, batch in enumerate(batches, start=1):
            run.position = start + k * step
            owns_state = training and self._live_state is run  # not detached by set_epoch / load_state_dict
            if owns_state:
                # the pass is complete once its last batch is handed out: the state moves to the next epoch
                self._next = PassState(run.epoch + 1) if k >= total else PassState(run.epoch, run.position,
                                                                                    run.epoch_seed)
            yield batch
        if training and self._live_state is run:
            self._live, self._live_state = None, None  # exhausted: the next iter() is a training pass again


_MAX_SAMPLES = 2**48  # windows per epoch: positions stay far inside int64 whatever the world size

_PATH_HINT = ("source is the string {0!r}, which names an existing path, and a str is read as raw text (as in the "
              "seed). To read the file or store, pass pathlib.Path({0!r}).")


def _names_a_path(source: Any) -> bool:
    """A short one-line str that names an existing file or directory: most likely a path passed as text."""
    return isinstance(source, str) and len(source) < 4096 and "\n" not in source and os.path.exists(source)


def _distributed_defaults(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is None and world_size is None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1
    if rank is None or world_size is None:
        raise ValueError(
            f"Pass both rank and world_size, or neither (got rank={rank}, world_size={world_size}); "
            "with neither, an initialised torch.distributed process group decides."
        )
    world_size = as_int("world_size", world_size, minimum=1)
    rank = as_int("rank", rank, minimum=0, maximum=world_size - 1,
                  fix=f"rank counts from 0 to world_size - 1 = {world_size - 1}.")
    return rank, world_size


def create_dataloader(
    source: Any,
    batch_size: int = 4,
    max_length: int = 256,
    stride: int = 128,
    shuffle: bool = True,
    drop_last: bool = True,
    num_workers: int = 0,
    *,
    tokenizer: Any = None,
    backend: Literal["auto", "tiktoken", "fastokens"] = "auto",
    seed: int | None = None,
    sampling: Literal["windows", "random"] = "windows",
    num_samples: int | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    respect_documents: bool = False,
    return_positions: bool = False,
    return_documents: bool = False,
    ignore_cross_document_targets: bool = False,
    packing: Literal["best_fit", "crop"] | None = None,
    long_documents: Literal["split", "crop"] = "split",
    pad_id: int | None = None,
    pin_memory: bool = False,
    persistent_workers: bool = False,
) -> WindowLoader:
    """Batches of (input, target) windows from text, a token store, or ids: the seed's ``create_dataloader_v1``.

    Args:
        source: raw text (``str``); a ``pathlib.Path``/``os.PathLike`` to a UTF-8 text file or to a token store;
            a :class:`~lmfeed.store.format.TokenStore`; a sequence, numpy array or tensor of token ids; or a mapping of
            sources (stores, store or file paths; ``str`` keys are paths here) to weights, e.g.
            ``{"data/web": 0.7, "data/code": 0.3}``: each window is drawn from a source with probability
            proportional to its weight (see :mod:`lmfeed.loading.blend`), ``num_samples`` per epoch (default: all
            their windows).
        batch_size: windows per batch, B (per rank under ``torch.distributed``). Default 4, as the seed's.
        max_length: tokens per window, T. Default 256.
        stride: distance between window starts. Default 128 (half overlap); ``stride > max_length`` skips tokens.
        shuffle: shuffle the windows each epoch. Without ``seed``, torch's global RNG decides exactly as in
            ``DataLoader(shuffle=True)``; with ``seed``, the order depends on (seed, epoch) only.
        drop_last: drop the last incomplete batch (and under distributed, the windows that do not divide evenly
            among ranks; without it they are padded by repeating windows from the start of the order).
        num_workers: worker processes, as in ``DataLoader``. 0 loads in the main process.
        tokenizer: a tokenizer name, ``tokenizer.json`` or tiktoken file path, or a tokenizer object. Default None:
            a store is read with the tokenizer that made it, text and ids with ``"gpt2"``. Given with a store, it
            must be the store's own vocabulary (fingerprints compared), else a ValueError names both.
        backend: what encodes text sources (:mod:`lmfeed.text.backends`; the ids are tiktoken's either way):
            ``"auto"`` takes the fast exact backend for long texts when it is installed and passes its self-check.
        seed: makes shuffling and random sampling reproducible and independent of the global RNG.
        sampling: ``"windows"`` (the sliding windows) or ``"random"`` (``num_samples`` windows at uniformly random
            token offsets per epoch, like nanoGPT's ``get_batch``).
        num_samples: windows per epoch for ``sampling="random"`` and for a mapping of sources.
        rank, world_size: this process's share; by default taken from an initialised ``torch.distributed``.
        respect_documents: windows never cross a document boundary (documents shorter than ``max_length + 1``
            tokens, separator included, give no window: a warning says how many tokens, and
            ``loader.dataset.dropped_tokens`` counts them; ``packing`` trains on them); with ``sampling="random"``,
            offsets are drawn uniformly among those whose window stays inside one document.
        return_positions: batches get a third tensor, ``position_ids`` (B, T): 0 at the first token of every
            document (:mod:`lmfeed.loading.documents`: with end-of-text after each document, the token after it).
        return_documents: batches are :class:`~lmfeed.loading.batch.DocumentBatch` named tuples
            ``(inputs, targets, position_ids, document_ids, cu_seqlens, max_seqlen)``, for attention that stays
            inside documents (``CausalSelfAttention(..., document_ids=)``, varlen kernels).
        ignore_cross_document_targets: the target that is the next document's first token is -100 (ignored by
            ``cross_entropy``), as Megatron's ``eod_mask_loss``.
        packing: ``"best_fit"`` (whole documents packed into rows of ``max_length + 1`` tokens, best-fit
            decreasing; every token once per epoch) or ``"crop"`` (nanochat's rows that each start at a document
            start and are filled, cropping); see :mod:`lmfeed.loading.packing`. Rows replace windows (``stride`` is
            not used); padding is ``pad_id`` with target -100; ``loader.padding_fraction``, ``cropped_fraction``.
        long_documents: with ``packing="best_fit"``, ``"split"`` (default) cuts a document longer than a row into
            row-sized pieces; ``"crop"`` keeps its first ``max_length + 1`` tokens.
        pad_id: the id of padding slots (default: the separator id, else 0); ``loader.pad_id`` reports it.
        pin_memory, persistent_workers: as in ``DataLoader``.

    Returns:
        A :class:`WindowLoader` (a ``DataLoader``): batches ``[inputs, targets]``, each ``(batch_size, max_length)``
        int64, and ``state_dict()``/``load_state_dict()``/``set_epoch()``.

    Raises:
        ValueError, TypeError: a bad argument, or too little text for one batch (the message says how much there
            is and what to change). FileNotFoundError: a path that does not exist.

    Example:
        >>> loader = create_dataloader("Hello, world. " * 20, batch_size=2, max_length=4, stride=4, shuffle=False)
        >>> [t.shape for t in next(iter(loader))]
        [torch.Size([2, 4]), torch.Size([2, 4])]
    """
    batch_size = as_int("batch_size", batch_size, minimum=1)
    max_length = as_int("max_length", max_length, minimum=1)
    stride = as_int("stride", stride, minimum=1)
    num_workers = as_int("num_workers", num_workers, minimum=0, maximum=max(64, 8 * (os.cpu_count() or 1)),
                         fix="Use about as many workers as CPU cores.")
    shuffle, drop_last = as_bool("shuffle", shuffle), as_bool("drop_last", drop_last)
    respect_documents, return_positions = as_bool("respect_documents", respect_documents), as_bool(
        "return_positions", return_positions)
    return_documents = as_bool("return_documents", return_documents)
    ignore_cross_document_targets = as_bool("ignore_cross_document_targets", ignore_cross_document_targets)
    pin_memory, persistent_workers = as_bool("pin_memory", pin_memory), as_bool("persistent_workers",
                                                                                persistent_workers)
    if seed is not None:
        seed = as_seed("seed", seed)
    if num_samples is not None:
        num_samples = as_int("num_samples", num_samples, minimum=1, maximum=_MAX_SAMPLES,
                             fix="An epoch of more windows (2**48) would never finish; ask for fewer per epoch.")
    sampling = as_choice("sampling", sampling, ("windows", "random"))
    if num_samples is not None and sampling == "windows" and not isinstance(source, Mapping):
        raise ValueError(
            f"num_samples={num_samples:,} is for sampling='random' (windows at random offsets) and for a mapping of "
            "sources; with sampling='windows' an epoch is every sliding window once. Pass sampling='random', or "
            "drop num_samples."
        )
    if _names_a_path(source):
        warnings.warn(f"{_PATH_HINT.format(source)} Training on the text of the name itself.", UserWarning,
                      stacklevel=2)
    backend = as_choice("backend", backend, ("auto", "tiktoken", "fastokens"))
    rank, world_size = _distributed_defaults(rank, world_size)

    packing = as_choice("packing", packing, (None, "best_fit", "crop"))
    long_documents = as_choice("long_documents", long_documents, ("split", "crop"))
    if pad_id is not None:
        pad_id = as_int("pad_id", pad_id, minimum=0)
    if packing is not None and sampling == "random" and not isinstance(source, Mapping):
        raise ValueError(f"packing={packing!r} serves packed rows, each once per epoch; sampling='random' draws "
                         "windows at random offsets. Pass one of them.")
    options = LoaderOptions(max_length=max_length, stride=stride, tokenizer=tokenizer, backend=backend,
                            sampling=sampling, respect_documents=bool(respect_documents),
                            return_positions=bool(return_positions), return_documents=bool(return_documents),
                            ignore_cross_document_targets=bool(ignore_cross_document_targets), packing=packing,
                            long_documents=long_documents, pad_id=pad_id)

    order: Any
    if isinstance(source, Mapping):
        from lmfeed.loading.blend import MixtureDataset, MixtureOrder, normalized_weights

        if not source:
            raise ValueError("The mapping of sources to weights is empty. "
                             "Pass e.g. {Path('web'): 0.7, Path('code'): 0.3}.")
        if sampling == "random" and num_samples is None:
            raise ValueError("sampling='random' needs num_samples, "
                             "the windows per epoch (e.g. num_samples=10_000).")
        names = [str(k) for k in source]
        weights = normalized_weights(list(source.values()), names)
        parts = [build_part(Path(k) if isinstance(k, str) else k, options, name=repr(n),
                            num_samples=num_samples or 0) for k, n in zip(source, names, strict=True)]
        dataset: Dataset = MixtureDataset([p.dataset for p in parts], names)
        if num_samples is None:
            num_samples = sum(p.size for p in parts)  # an epoch draws as many windows as all sources hold together
        order = MixtureOrder([p.size for p in parts], weights, num_samples, shuffle=shuffle,
                             random=[p.random for p in parts])
        num_tokens = parts[0].num_tokens
    else:
        if sampling == "random":
            if num_samples is None:
                raise ValueError("sampling='random' needs num_samples, "
                                 "the windows per epoch (e.g. num_samples=10_000).")
        try:
            part: Part = build_part(source, options, num_samples=num_samples or 0)
        except ValueError as error:
            if _names_a_path(source):
                raise ValueError(f"{_PATH_HINT.format(source)} ({error})") from None
            raise
        dataset, num_tokens = part.dataset, part.num_tokens
        if sampling == "random":
            order = RandomOffsets(int(num_samples), high=part.size)  # type: ignore[arg-type]
        else:
            order = WindowOrder(part.size, shuffle=shuffle)
    num_items = order.num_items
    if world_size > 1 and order.needs_seed and seed is None:
        # every rank must draw the same order; their global RNGs need not agree, so use DistributedSampler's 0
        logger.info("a random order under torch.distributed without a seed: using seed=0 on every rank")
        seed = 0
    sampler = WindowBatchSampler(order, batch_size, seed=seed, drop_last=drop_last, rank=rank,
                                 world_size=world_size)
    if len(sampler) == 0:
        if _names_a_path(source):
            raise ValueError(f"{_PATH_HINT.format(source)} ({num_tokens:,} tokens of text, too few for one "
                             f"batch of {batch_size})")
        share = f" per rank ({world_size} ranks)" if world_size > 1 else ""
        raise ValueError(
            f"batch_size={batch_size} with drop_last=True needs at least {batch_size} windows{share}, but "
            f"max_length={max_length}, stride={stride} cut {num_items:,} from {num_tokens:,} tokens. "
            "Lower batch_size, max_length or stride, pass drop_last=False, or add text."
        )
    # every setting that decides the order or the windows: a state is loaded only where they agree
    mode = {"shuffle": shuffle, "drop_last": drop_last, "sampling": sampling, "packing": packing,
            "long_documents": long_documents if packing == "best_fit" else None,
            "respect_documents": respect_documents, "max_length": max_length,
            "stride": stride if sampling == "windows" and packing is None else None,
            "weights": [float(w) for w in weights] if isinstance(source, Mapping) else None}
    return WindowLoader(dataset, sampler, num_workers=num_workers, pin_memory=pin_memory,
                        persistent_workers=persistent_workers, mode=mode)


def create_train_val_loaders(
    split: str | os.PathLike[str],
    batch_size: int = 4,
    max_length: int = 256,
    stride: int = 128,
    *,
    shuffle: bool = True,
    drop_last: bool = True,
    seed: int | None = None,
    val_batch_size: int | None = None,
    num_workers: int = 0,
    **options: Any,
) -> tuple[WindowLoader, WindowLoader]:
    """A shuffled training loader and a fixed-order validation loader from a split made by ``prepare``.

    Args:
        split: the directory ``lmfeed prepare --val-fraction F -o DIR`` wrote (it holds ``train/`` and ``val/``).
        batch_size, max_length, stride, seed, num_workers: as in :func:`create_dataloader`, for training.
        shuffle, drop_last: for the training loader (default True, True); the validation loader always keeps its
            windows in order and its last short batch.
        val_batch_size: the validation batch size (default: ``batch_size``).
        options: further :func:`create_dataloader` options for both (``rank``, ``world_size``,
            ``respect_documents``, ``return_positions``, ``pin_memory``, ...).

    Returns:
        ``(train, val)``. ``train`` shuffles with ``drop_last=True`` unless told otherwise; ``val`` keeps its windows
        in order and keeps the last short batch (``shuffle=False, drop_last=False``), so every evaluation sees the
        same batches.

    Raises:
        ValueError: ``split`` is not a split; TypeError: an option ``create_dataloader`` does not take (named), or
            one of the arguments above given again in ``options``.

    Example:
        >>> train, val = create_train_val_loaders(  # doctest: +SKIP
        ...     "corpus.split", batch_size=8, max_length=256, seed=0)
    """
    import inspect

    from lmfeed.store.format import is_split_dir

    known = set(inspect.signature(create_dataloader).parameters) - {"source", "batch_size", "max_length", "stride",
                                                                    "shuffle", "drop_last", "num_workers", "seed"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"create_train_val_loaders got an unknown option {unknown[0]!r}. It takes split, batch_size, "
                        "max_length, stride, shuffle, drop_last, seed, val_batch_size, num_workers, and these "
                        f"create_dataloader options: {', '.join(sorted(known))}.")
    shuffle, drop_last = as_bool("shuffle", shuffle), as_bool("drop_last", drop_last)
    root = Path(split)
    if not is_split_dir(root):
        raise ValueError(
            f"{str(root)!r} is not a train/validation split (no split.json). "
            f"Make one with `lmfeed prepare INPUT --val-fraction 0.1 -o {root}`."
        )
    train = create_dataloader(root / "train", batch_size, max_length, stride, shuffle, drop_last, num_workers,
                              seed=seed, **options)
    val = create_dataloader(root / "val", val_batch_size or batch_size, max_length, stride, False, False,
                            num_workers, seed=seed, **options)
    return train, val
