"""The training and validation token streams of a run, split by whole documents.

``training_splits(source, tokenizer)`` accepts what ``lmfeed train`` does:

- ``None``: the embedded default corpus (the Python language reference, 79 documents), split by whole documents:
  the ones ``lmfeed prepare --val-fraction 0.1`` would put in validation (its default seed 0: 9 documents,
  22,277 GPT-2 tokens, 16%), so no document is in both splits;
- a split directory (``lmfeed prepare --val-fraction``): its ``train/`` and ``val/`` stores;
- a token store: its documents split the same way;
- a text file: one document, so the split is by position: the last 10% of its tokens are validation.

Each split is one 1-D id stream with the tokenizer's end-of-text id closing each document (EOS style, as a store
holds it), ready for ``create_dataloader``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["VAL_FRACTION", "Splits", "training_splits"]

VAL_FRACTION = 0.1  # as `lmfeed prepare --val-fraction 0.1` (seed 0) chooses the validation documents


@dataclasses.dataclass(frozen=True)
class Splits:
    """The two id streams of a run and where they came from."""

    train: np.ndarray  # (N_train,) ids, uint16 or uint32 (a memory map for a split directory)
    val: np.ndarray  # (N_val,)
    tokenizer: Any  # what encoded them (``encode_ordinary``, ``decode``, ``n_vocab``, ``eot_token``)
    description: str  # one line for the run's header: what, how many documents and tokens in each split


def _ids(parts: list[np.ndarray], vocab: int) -> np.ndarray:
    joined = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return joined.astype(np.uint16 if vocab <= 1 << 16 else np.uint32)


def _encode_documents(docs: list[str], enc: Any) -> list[np.ndarray]:
    eot = enc.eot_token
    return [np.asarray(enc.encode_ordinary(d) + [eot], dtype=np.int64) for d in docs]


def _by_documents(docs: list[np.ndarray], vocab: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    if len(docs) < 2:
        raise ValueError(f"A split by whole documents needs at least 2 documents, but the source has {len(docs)}. "
                         "Make a split with `lmfeed prepare INPUT --val-fraction 0.1 -o DIR`, or pass a text file "
                         "(split by position).")
    mask = _val_mask(len(docs))
    val = [d for d, m in zip(docs, mask, strict=True) if m]
    train = [d for d, m in zip(docs, mask, strict=True) if not m]
    return _ids(train, vocab), _ids(val, vocab), len(train), len(val)


def _val_mask(num_documents: int) -> np.ndarray:
    """Which documents are validation: prepare's choice at --val-fraction 0.1, seed 0; at least one each way."""
    from lmfeed.store.prepare import val_mask

    mask = val_mask(np.arange(num_documents), val_fraction=VAL_FRACTION, seed=0)
    if not mask.any():
        mask[-1] = True
    if mask.all():
        mask[0] = False
    return mask


def training_splits(source: str | os.PathLike[str] | None, tokenizer: Any = "gpt2") -> Splits:
    """Train and validation ids from ``source`` (see the module docstring for each kind of source).

    Args:
        source: None (the default corpus), a split directory, a token store, or a UTF-8 text file.
        tokenizer: a name or path for :func:`lmfeed.get_tokenizer`, or a tokenizer object; a store or split uses the
            tokenizer it was made with (asking for another one is an error).

    Returns:
        :class:`Splits`.

    Raises:
        FileNotFoundError: ``source`` does not exist. ValueError: a store made with another tokenizer, or a source
            too small to split.
    """
    from lmfeed.store.format import TokenStore, is_split_dir
    from lmfeed.text.tokenizer import resolve_tokenizer

    if source is None:
        from lmfeed.text.sources import DEFAULT_CORPUS_NAME, python_reference

        enc = resolve_tokenizer(tokenizer)
        train, val, nt, nv = _by_documents(_encode_documents(python_reference(), enc), enc.n_vocab)
        what = f"{DEFAULT_CORPUS_NAME}: {nt} documents for training, {nv} for validation"
        return Splits(train, val, enc, f"{what}; {len(train):,} + {len(val):,} tokens")
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"No such file, store or split: {str(path)!r}. Check the path, or leave SOURCE out "
                                "to train on the default corpus (the Python language reference).")
    if is_split_dir(path):
        train_store, val_store = TokenStore.open(path / "train"), TokenStore.open(path / "val")
        enc = _store_tokenizer(train_store, tokenizer)
        return Splits(train_store.tokens, val_store.tokens, enc,
                      f"{path} (a split): {train_store.num_documents:,} documents, {len(train_store):,} tokens for "
                      f"training; {val_store.num_documents:,} documents, {len(val_store):,} tokens for validation")
    if path.is_dir():
        store = TokenStore.open(path)
        enc = _store_tokenizer(store, tokenizer)
        ends = np.asarray(store.doc_starts[1:].tolist() + [len(store)], dtype=np.int64)
        docs = [np.asarray(store.tokens[s:e]) for s, e in zip(store.doc_starts.tolist(), ends.tolist(), strict=True)]
        train, val, nt, nv = _by_documents(docs, enc.n_vocab)
        return Splits(train, val, enc, f"{path} (a store): {nt:,} documents for training, {nv:,} for validation; "
                                       f"{len(train):,} + {len(val):,} tokens")
    from lmfeed.text.sources import read_text

    enc = resolve_tokenizer(tokenizer)
    ids = np.asarray(enc.encode_ordinary(read_text(path)) + [enc.eot_token], dtype=np.int64)
    cut = len(ids) - max(1, int(len(ids) * VAL_FRACTION))
    return Splits(_ids([ids[:cut]], enc.n_vocab), _ids([ids[cut:]], enc.n_vocab), enc,
                  f"{path} (one document, split by position): the first {cut:,} tokens for training, the last "
                  f"{len(ids) - cut:,} for validation")


def _store_tokenizer(store: Any, tokenizer: Any) -> Any:
    """The store's own tokenizer; ``tokenizer`` must name it (the default ``"gpt2"`` is taken as 'not given')."""
    made_with = store.metadata["tokenizer"]["name"]
    if isinstance(tokenizer, str) and tokenizer not in ("gpt2", made_with):
        raise ValueError(f"{str(store.path)!r} was made with tokenizer {made_with!r}, but tokenizer={tokenizer!r} was "
                         f"asked for. Leave --tokenizer out (or pass {made_with!r}), or prepare the store again.")
    return store.tokenizer
