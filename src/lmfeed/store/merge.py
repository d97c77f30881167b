"""``merge``: join stores into one, rebuilding the single-run store from shards prepared on many machines.

Shards of one run (``prepare(..., num_shards=N, shard_index=I)`` for I = 0..N-1) hold documents ``k`` with
``k % N == I``, in order. Merging takes document ``k`` from shard ``k % N`` for k = 0, 1, 2, ... (skipping, in a
train/validation split, the documents of the other part), so the merged store has the same bytes as one
``prepare`` of the whole corpus: tokens, document index and metadata. Stores that are not shards are concatenated
in the order given. Memory stays flat: ids are copied a block at a time.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lmfeed.store.format import TOKENS, StoreError, TokenStore, check_ids, is_split_dir
from lmfeed.store.prepare import TrainVal, val_mask
from lmfeed.store.writer import StoreWriter, check_apart, output_path, staging_dir, write_split_marker

__all__ = ["merge"]

_SAME_RUN = ("sources", "corpus_documents", "options", "split", "tokenizer", "eot_id", "dtype", "separator")
_BLOCK_DOCS = 4096
_BLOCK_TOKENS = 1 << 24


def merge(inputs: Sequence[str | os.PathLike[str] | TokenStore], out: str | os.PathLike[str], *,
          force: bool = False) -> TokenStore | TrainVal:
    """Join stores (or train/validation splits) into one at ``out``, and open it.

    Args:
        inputs: the stores. All shards of one prepare run (in any order: each names its index), or ordinary
            stores, concatenated in the order given. Train/validation splits merge part by part.
        out: the merged store's directory (must not exist unless ``force``).
        force: replace an existing store at ``out``.

    Every input stays open while merging (two memory-mapped files each): when the soft limit on open files is too
    low for that, it is raised towards the hard limit for this process, or an OSError says what to allow.

    Returns:
        The merged store, or ``TrainVal(train, val)`` for splits.

    Raises:
        ValueError: no inputs; stores made with different tokenizers or options; shards of different runs, or a
            shard missing or given twice (the message names the indices).
        FileExistsError: ``out`` exists and ``force`` is not set.

    Example:
        >>> merge(["corpus.shard0", "corpus.shard1"], "corpus.store")  # doctest: +SKIP
        TokenStore('corpus.store', tokens=2,048, documents=3, dtype=uint16, tokenizer='gpt2')
    """
    if isinstance(inputs, (str, os.PathLike, TokenStore)):
        inputs = [inputs]
    if not inputs:
        raise ValueError("No stores to merge. Name at least one.")
    splits = [not isinstance(i, TokenStore) and is_split_dir(i) for i in inputs]
    if any(splits) and not all(splits):
        raise ValueError("Some inputs are train/validation splits and some are single stores; merge like with like.")
    out_path = output_path(out)
    _room_for_open_files(len(inputs))
    check_apart(out_path, [i.path if isinstance(i, TokenStore) else i for i in inputs], role="an input store")
    with staging_dir(out_path, force=force) as tmp:
        if all(splits):
            dirs = [Path(i) for i in inputs if not isinstance(i, TokenStore)]  # every one, as all are splits
            for part in ("train", "val"):
                _merge_into(tmp / part, [TokenStore.open(d / part) for d in dirs])
            write_split_marker(tmp, ["train", "val"])
        else:
            stores = [i if isinstance(i, TokenStore) else TokenStore.open(i) for i in inputs]
            _merge_into(tmp, stores)
        for written in ([tmp / "train", tmp / "val"] if all(splits) else [tmp]):
            TokenStore.open(written)  # the merged store opens, with every check, before it takes the name
    if all(splits):
        return TrainVal(TokenStore.open(out_path / "train"), TokenStore.open(out_path / "val"))
    return TokenStore.open(out_path)


_FILES_PER_STORE = 2  # tokens.npy and doc_starts.npy stay open (memory-mapped) while a store is read
_SPARE_FILES = 32  # the writer's two files, the interpreter's own, a margin


def _room_for_open_files(num_stores: int) -> None:
    """Merging keeps every input open at once (shards interleave): raise the soft limit on open files towards the
    hard one if that is needed, or say how many files it takes and how to allow them."""
    need = _FILES_PER_STORE * num_stores + _SPARE_FILES
    try:
        import resource
    except ImportError:  # not on a POSIX system: nothing to ask
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        raise OSError(errno.EMFILE,
                      f"Merging {num_stores:,} stores keeps about {need:,} files open ({_FILES_PER_STORE} per store), "
                      f"but this process may open at most {hard:,} (ulimit -Hn). Raise the limit (ulimit -n {need}, "
                      "as root or in limits.conf), or merge fewer stores at a time (whole stores, not shards of one "
                      "run, can be merged in groups).")
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def _what_decides_the_ids(store: TokenStore) -> dict[str, Any]:
    """What two stores must share to be joined: the vocabulary, the dtype, the separator and how a literal
    ``<|endoftext|>`` was encoded. Per-source options (glob, errors, field, format) may differ: each source keeps
    its own in ``sources``."""
    m = store.metadata
    tok = m["tokenizer"]
    separator = m.get("separator") or ("eos" if m["eot_id"] is not None else "none")
    return {"vocabulary": f"{tok['name']} ({tok['n_vocab']:,} ids, fingerprint {tok['fingerprint'][:12]})",
            "dtype": m["dtype"],
            "separator": separator if m["eot_id"] is None else f"{separator} (id {m['eot_id']})",
            "allow_special": m.get("options", {}).get("allow_special", False)}


def _merge_into(directory: Path, stores: list[TokenStore]) -> None:
    first = stores[0]
    want = _what_decides_the_ids(first)
    for s in stores[1:]:
        got = _what_decides_the_ids(s)
        for key in want:
            if got[key] != want[key]:
                raise ValueError(f"{s.path} and {first.path} differ in {key} ({got[key]} vs {want[key]}), which "
                                 "decides the ids; only stores with the same ids for the same text can be merged.")
    writer = StoreWriter(directory, dtype=first.metadata["dtype"], eot_id=first.eot_id)
    try:
        shards = [s.metadata.get("shard") for s in stores]
        if all(shards):
            metadata = _merge_shards(writer, stores)
        elif any(shards):
            raise ValueError("Some inputs are shards and some are not; merge all shards of one run, or whole stores.")
        else:
            metadata = _concatenate(writer, stores)
    except BaseException:
        writer.close()
        raise
    writer.finish(metadata)


def _merge_shards(writer: StoreWriter, stores: list[TokenStore]) -> dict[str, Any]:
    n = stores[0].metadata["shard"]["num_shards"]
    by_index: dict[int, TokenStore] = {}
    for s in stores:
        shard = s.metadata["shard"]
        for key in _SAME_RUN:
            if s.metadata.get(key) != stores[0].metadata.get(key) or shard["num_shards"] != n:
                raise ValueError(f"{s.path} is not a shard of the same run as {stores[0].path} (they differ in "
                                 f"{key if shard['num_shards'] == n else 'num_shards'}). "
                                 "Merge the shards of one prepare run.")
        if shard["shard_index"] in by_index:
            raise ValueError(f"Shard {shard['shard_index']} of {n} is given twice: "
                             f"{by_index[shard['shard_index']].path} and {s.path}.")
        by_index[shard["shard_index"]] = s
    missing = sorted(set(range(n)) - set(by_index))
    if missing:
        raise ValueError(f"Shards {', '.join(map(str, missing))} of {n} are missing; merge needs all {n} shards.")
    shards = [by_index[i] for i in range(n)]
    meta = stores[0].metadata
    split = meta.get("split")
    taken = np.zeros(n, dtype=np.int64)  # documents taken so far from each shard
    total = meta["corpus_documents"]
    for k0 in range(0, total, _BLOCK_DOCS):
        ks = np.arange(k0, min(k0 + _BLOCK_DOCS, total))
        if split:  # keep the documents of this part only, as prepare did
            ks = ks[val_mask(ks, val_fraction=split["val_fraction"], seed=split["seed"]) == (split["part"] == "val")]
        owners = ks % n
        pieces: list[np.ndarray] = []
        for i in owners.tolist():
            if taken[i] >= shards[i].num_documents:
                raise StoreError(f"{shards[i].path} has fewer documents ({shards[i].num_documents:,}) than its run's "
                                 f"{total:,} documents give shard {i}; the shard is damaged. Prepare it again.")
            pieces.append(_with_bos(shards[i], int(taken[i])))
            taken[i] += 1
        if pieces and int(max((int(p.max()) for p in pieces if len(p)), default=0)) >= shards[0].vocab_size:
            for store in shards:
                store.verify()  # names the shard, the id and its offset
        _write_documents(writer, pieces)
    for i, store in enumerate(shards):
        if taken[i] != store.num_documents:
            raise StoreError(f"{store.path} has {store.num_documents:,} documents, but its run gives shard {i} "
                             f"{int(taken[i]):,}; the shard is damaged. Prepare it again.")
    return {k: v for k, v in meta.items() if k not in ("num_tokens", "num_documents")} | {"shard": None}


def _with_bos(store: TokenStore, i: int) -> np.ndarray:
    """Document ``i`` as the writer takes it: in a BOS-style store with the BOS that opens it (the writer adds EOS
    separators itself, never BOS ones)."""
    doc = store.document(i)
    if store.separator != "bos":
        return doc
    start = int(store.doc_starts[i])
    return store.tokens[start : start + 1 + len(doc)]


def _write_documents(writer: StoreWriter, docs: list[np.ndarray]) -> None:
    """Append whole documents in one write, separators between them (and before them if the store has any)."""
    if not docs:
        return
    sep = writer.eot_id is not None
    lengths = np.array([len(d) for d in docs], dtype=np.int64)
    starts = np.zeros(len(docs), dtype=np.int64)
    lead = 1 if sep and writer.num_documents else 0
    starts[0] = lead
    starts[1:] = lead + np.cumsum(lengths[:-1] + sep)
    if sep:
        eot = np.array([writer.eot_id], dtype=writer.dtype)
        parts = [eot] * lead
        for i, d in enumerate(docs):
            if i:
                parts.append(eot)
            parts.append(d)
    else:
        parts = docs
    writer.write_chunk(np.concatenate(parts).astype(writer.dtype, copy=False), starts)


def _concatenate(writer: StoreWriter, stores: list[TokenStore]) -> dict[str, Any]:
    for store in stores:
        if store.num_documents == 0:
            continue
        if writer.num_documents and writer.eot_id is not None:
            writer.write_chunk(np.array([writer.eot_id], dtype=writer.dtype), np.zeros(0, dtype=np.int64))
        starts = np.asarray(store.doc_starts)
        n = len(store)
        for a in range(0, n, _BLOCK_TOKENS):
            b = min(a + _BLOCK_TOKENS, n)
            lo, hi = np.searchsorted(starts, [a, b])
            check_ids(store.tokens[a:b], store.vocab_size, where=store.path / TOKENS, offset=a)
            writer.write_chunk(store.tokens[a:b], starts[lo:hi] - a)
        tail = starts[np.searchsorted(starts, n):]  # empty last documents start at n
        writer.write_chunk(np.zeros(0, dtype=writer.dtype), tail - n)
    first = stores[0].metadata
    split = first.get("split") if all(s.metadata.get("split") == first.get("split") for s in stores) else None
    options = [s.metadata.get("options", {}) for s in stores]
    return {k: v for k, v in first.items() if k not in ("num_tokens", "num_documents")} | {
        # each source keeps the options it was read with; the store's own are those all its sources share
        "sources": [{**src, "options": src.get("options", opts)} for s, opts in zip(stores, options, strict=True)
                    for src in s.metadata.get("sources", [])],
        "options": {k: v for k, v in options[0].items() if all(o.get(k) == v for o in options)},
        # the documents of the corpus the merged store is taken from: the sum of those corpora where all are the
        # same part of a split, else the merged store is its own corpus
        "corpus_documents": (sum(s.metadata.get("corpus_documents", s.num_documents) for s in stores) if split
                             else sum(s.num_documents for s in stores)),
        "shard": None,
        "split": split,
    }
