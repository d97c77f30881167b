"""The numbers a trained model must beat, and the one that says a position table has learned order.

- :func:`unigram_cross_entropy`: predict every token from its frequency alone (counted on the training split,
  add-one smoothed), scored on the validation targets. A model that does not go below this has learned nothing
  about context.
- :func:`position_structure`: after centring a ``(T, D)`` position table, the mean cosine similarity of positions
  1 apart minus that of positions at least T/4 apart. A random table gives about 0; a table that has learned that
  nearby positions are alike gives a clearly positive number (a sinusoidal table: about 0.5 and more).

Example:
    >>> counts_from = np.array([0, 0, 1, 2])          # ids seen in training (vocab of 3)
    >>> round(unigram_cross_entropy(counts_from, np.array([0, 2]), vocab_size=3), 4)   # p = (3/7, 2/7, 2/7)
    1.0498
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lmfeed._validate import as_int

__all__ = ["position_structure", "token_counts", "unigram_cross_entropy", "unigram_log_probs"]

_CHUNK = 1 << 24  # ids counted per bincount, so a memory-mapped store stays mostly paged out


def token_counts(train_ids: Any, vocab_size: int) -> np.ndarray:
    """``(vocab_size,)`` int64: how often each id occurs, counted in chunks (a memory map stays mostly paged out)."""
    vocab_size = as_int("vocab_size", vocab_size)
    counts = np.zeros(vocab_size, dtype=np.int64)
    for start in range(0, len(train_ids), _CHUNK):
        chunk = np.asarray(train_ids[start:start + _CHUNK], dtype=np.int64)
        if chunk.size and (chunk.min() < 0 or chunk.max() >= vocab_size):
            raise ValueError(f"train ids must be in [0, vocab_size={vocab_size:,}), but hold {int(chunk.min())} .. "
                             f"{int(chunk.max())}. Count with the tokenizer's n_vocab.")
        counts += np.bincount(chunk, minlength=vocab_size)
    return counts


def unigram_log_probs(train_ids: Any, vocab_size: int, *, counts: np.ndarray | None = None) -> np.ndarray:
    """``(vocab_size,)`` float64: ``log((count(id) + 1) / (N + vocab_size))`` over the training ids (add-one).

    ``counts`` (from :func:`token_counts`) saves counting again.
    """
    if counts is None:
        counts = token_counts(train_ids, vocab_size)
    return np.log(counts + 1.0) - np.log(counts.sum() + float(len(counts)))


def unigram_cross_entropy(train_ids: Any, targets: Any, *, vocab_size: int,
                          counts: np.ndarray | None = None) -> float:
    """Mean ``-log p(target)`` in nats under the add-one unigram model of ``train_ids``.

    Args:
        train_ids: 1-D ids of the training split (an array, a memory map, a list).
        targets: the ids to score, any shape (the validation loader's targets; ``-100`` entries are skipped, as
            ``cross_entropy(ignore_index=-100)`` skips them).
        vocab_size: V; every id must be below it.
        counts: the training split's :func:`token_counts`, if already counted (``train_ids`` is then unused).

    Returns:
        The cross-entropy in nats, comparable with a model's validation loss on the same targets.

    Raises:
        ValueError: ids outside ``[0, vocab_size)``, or no target to score.
    """
    log_p = unigram_log_probs(train_ids, vocab_size, counts=counts)
    flat = np.asarray(targets, dtype=np.int64).reshape(-1)
    flat = flat[flat != -100]
    if flat.size == 0:
        raise ValueError("No validation targets to score the unigram baseline on. Give the validation split text.")
    if flat.min() < 0 or flat.max() >= vocab_size:
        raise ValueError(f"targets must be in [0, vocab_size={vocab_size:,}), but hold {int(flat.min())} .. "
                         f"{int(flat.max())}.")
    return float(-log_p[flat].mean())


def position_structure(table: Any) -> float:
    """Mean cosine similarity of positions 1 apart minus that of positions >= T/4 apart, after centring.

    Centring (subtracting the mean position vector) removes what every position shares, so only how positions
    differ is compared.

    Args:
        table: ``(T, D)`` position vectors (a tensor or an array), T >= 4.

    Returns:
        A float in [-2, 2]: about 0 for a random table; positive when nearby positions are more alike than far ones.

    Raises:
        ValueError: a table that is not 2-D or has fewer than 4 positions.
    """
    x = np.asarray(table.detach().cpu() if hasattr(table, "detach") else table, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 4:
        raise ValueError(f"position_structure needs a (T, D) table with T >= 4, but got shape {x.shape}.")
    x = x - x.mean(axis=0)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    sim = unit @ unit.T  # (T, T)
    t = x.shape[0]
    distance = np.abs(np.arange(t)[:, None] - np.arange(t)[None, :])
    return float(sim[distance == 1].mean() - sim[distance >= max(2, t // 4)].mean())
