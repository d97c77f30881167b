"""The training and validation token streams of a run, split by whole documents.

``training_splits(source, tokenizer)`` accepts what ``lmfeed train`` does:

- ``None``: the embedded default corpus (the Python language reference, 79 documents), split by whole documents:
  the ones ``lmfeed prepare --val-fraction 0.1`` would put in validation (its default seed 0: 9 documents,
  22,277 GPT-2 tokens, 16%), so no document is in both splits;
- a split directory (``lmfeed prepare --val-fraction``): its ``train/`` and ``val/`` stores;
- a token store: its documents split the same way;
- a text file: one document, so the split is by position: the last 10% of its characters (from a line break)
  are validation.

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


def _val_mask(num_documents: int) -> np.ndarray:
    """Which documents are validation: prepare's choice at --val-fraction 0.1, seed 0; at least one each way."""
    from lmfeed.store.prepare import val_mask

    if num_documents < 2:
        raise ValueError(f"A split by whole documents needs at least 2 documents, but the source has "
                         f"{num_documents}. Make a split with `lmfeed prepare INPUT --val-fraction 0.1 -o DIR`, or "
                         "pass a text file (split by position).")
    mask = val_mask(np.arange(num_documents), val_fraction=VAL_FRACTION, seed=0)
    if not mask.any():
        mask[-1] = True
    if mask.all():
        mask[0] = False
    return mask


def _split_text(text: str) -> tuple[str, str]:
    """One document split by position: the last 10% of its characters (from a line or word break) is validation."""
    cut = int(len(text) * (1 - VAL_FRACTION))
    for sep in ("\n", " "):
        at = text.rfind(sep, 0, cut)
        if at > len(text) // 2:
            return text[:at], text[at:]
    return text[:cut], text[cut:]


def bpe_size(tokenizer: Any) -> int | None:
    """N for ``tokenizer="bpe:N"`` (train a byte-level BPE of N ids on the training split), else None."""
    if not (isinstance(tokenizer, str) and tokenizer.startswith("bpe:")):
        return None
    from lmfeed._validate import as_int

    number = tokenizer[4:]
    if not number.isdigit():
        raise ValueError(f"tokenizer={tokenizer!r}: bpe: takes a vocabulary size, e.g. bpe:8192.")
    return as_int("the bpe: vocabulary size", int(number), minimum=257,
                  fix="A byte-level BPE needs the 256 bytes and <|endoftext|>: bpe:257 or more, e.g. bpe:8192.")


def _tokenizer_for(tokenizer: Any, train_docs: list[str], run_dir: Path | None, write: bool) -> Any:
    """The tokenizer: resolved by name or path, or for ``bpe:N`` trained on the training documents only (the
    validation split stays unseen) and saved as ``run_dir/tokenizer.json``; a saved one is read back."""
    from lmfeed.text.tokenizer import get_tokenizer, resolve_tokenizer

    size = bpe_size(tokenizer)
    if size is None:
        return resolve_tokenizer(tokenizer)
    saved = None if run_dir is None else run_dir / "tokenizer.json"
    if saved is not None and saved.is_file():
        return get_tokenizer(str(saved))
    from lmfeed.text.train_bpe import train_tokenizer

    if saved is not None and write:
        saved.parent.mkdir(parents=True, exist_ok=True)
        return train_tokenizer(train_docs, vocab_size=size, out=saved)
    return train_tokenizer(train_docs, vocab_size=size)


def training_splits(source: str | os.PathLike[str] | None, tokenizer: Any = "gpt2", *,
                    run_dir: str | os.PathLike[str] | None = None, write: bool = True) -> Splits:
    """Train and validation ids from ``source`` (see the module docstring for each kind of source).

    Args:
        source: None (the default corpus), a split directory, a token store, or a UTF-8 text file.
        tokenizer: a name or path for :func:`lmfeed.get_tokenizer`, a tokenizer object, or ``"bpe:N"``: a
            byte-level BPE of N ids trained on the training split's documents (seconds), saved as
            ``run_dir/tokenizer.json`` (and read from there when it exists). A store or split uses the tokenizer it
            was made with (asking for another one is an error).
        run_dir: where a trained BPE is saved (default: not saved).
        write: whether this process saves it (False on every rank but 0).

    Returns:
        :class:`Splits`.

    Raises:
        FileNotFoundError: ``source`` does not exist. ValueError: a store made with another tokenizer, or a source
            too small to split.
    """
    from lmfeed.store.format import TokenStore, is_split_dir

    run = None if run_dir is None else Path(run_dir)
    if source is None:
        from lmfeed.text.sources import DEFAULT_CORPUS_NAME, python_reference

        texts = python_reference()
        mask = _val_mask(len(texts))
        train_texts = [t for t, m in zip(texts, mask, strict=True) if not m]
        val_texts = [t for t, m in zip(texts, mask, strict=True) if m]
        enc = _tokenizer_for(tokenizer, train_texts, run, write)
        train, val = (_ids(_encode_documents(d, enc), enc.n_vocab) for d in (train_texts, val_texts))
        what = f"{DEFAULT_CORPUS_NAME}: {len(train_texts)} documents for training, {len(val_texts)} for validation"
        return Splits(train, val, enc, f"{what}; {len(train):,} + {len(val):,} tokens")
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"No such file, store or split: {str(path)!r}. Check the path, or leave SOURCE out "
                                "to train on the default corpus (the Python language reference).")
    if path.is_dir() and bpe_size(tokenizer) is not None:
        raise ValueError(f"{str(path)!r} is already tokenized; tokenizer={tokenizer!r} trains a new BPE from text. "
                         "Pass a text source, or leave --tokenizer out to use the store's.")
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
        mask = _val_mask(len(docs))
        train = _ids([d for d, m in zip(docs, mask, strict=True) if not m], enc.n_vocab)
        val = _ids([d for d, m in zip(docs, mask, strict=True) if m], enc.n_vocab)
        return Splits(train, val, enc, f"{path} (a store): {int((~mask).sum()):,} documents for training, "
                                       f"{int(mask.sum()):,} for validation; {len(train):,} + {len(val):,} tokens")
    from lmfeed.text.sources import read_text

    head, tail = _split_text(read_text(path))
    enc = _tokenizer_for(tokenizer, [head], run, write)
    train, val = (_ids(_encode_documents([t], enc), enc.n_vocab) for t in (head, tail))
    return Splits(train, val, enc, f"{path} (one document, split by position): the first {len(train):,} tokens "
                                   f"for training, the last {len(val):,} for validation")


def _store_tokenizer(store: Any, tokenizer: Any) -> Any:
    """The store's own tokenizer; ``tokenizer`` must name it (the default ``"gpt2"`` is taken as 'not given')."""
    made_with = store.metadata["tokenizer"]["name"]
    if isinstance(tokenizer, str) and tokenizer not in ("gpt2", made_with):
        raise ValueError(f"{str(store.path)!r} was made with tokenizer {made_with!r}, but tokenizer={tokenizer!r} was "
                         f"asked for. Leave --tokenizer out (or pass {made_with!r}), or prepare the store again.")
    return store.tokenizer
