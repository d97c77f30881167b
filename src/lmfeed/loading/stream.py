"""One token stream from any source: text, a text file, a token store, or ids.

``load_token_ids(source)`` returns the 1-D ids (a numpy array or a read-only memory map, never copied for a store
or an array) and what is known about them: the end-of-text id, a store's document index, and a way to reopen a
memory map (in a DataLoader worker, or to drop its resident pages during a long epoch).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from lmfeed.loading.windows import as_token_array
from lmfeed.text.backends import Backend, batch_encoder
from lmfeed.text.tokenizer import resolve_tokenizer

__all__ = ["load_token_ids"]


# Below this many characters tiktoken encodes the text before fastokens would have loaded (~0.3 s).
_FAST_TEXT_CHARS = 4 << 20


def load_token_ids(source: Any, *, tokenizer: Any = None, need_eot: bool = True,
                   backend: Backend = "auto") -> tuple[np.ndarray, dict[str, Any]]:
    """The 1-D token stream of ``source`` and what is known about it (``eot_id``, ``doc_starts``, ``reopen``, and how
    documents are marked: ``separator`` ``"eos"``/``"bos"``/``"none"`` with its ``separator_id``).

    ``source``: raw text (``str``), a text file path, a token store or its directory, or integer ids.
    Raw text and text files are one text encoded with ``allowed_special={"<|endoftext|>"}``, as the seed does.
    ``tokenizer`` None reads a store with the tokenizer that made it and text or ids with GPT-2's; a tokenizer given
    with a store must have the store's vocabulary. For ids, the tokenizer is built only when ``need_eot`` asks for
    its end-of-text id. ``backend`` encodes text (``lmfeed.text.backends``; the ids are tiktoken's either way):
    ``"auto"`` (default) takes fastokens only for texts of 4 Mi characters or more, where its load time pays off.
    """
    from lmfeed.store.format import TokenStore

    if isinstance(source, os.PathLike):
        path = Path(source)
        if path.is_dir():
            source = TokenStore.open(path)
        elif path.suffix == ".bin":  # nanoGPT's train.bin or an llm.c shard: token ids, not text
            from lmfeed.store.import_bin import read_token_file

            source, _ = read_token_file(path)
        else:
            from lmfeed.text.sources import read_text

            source = read_text(path)
    if isinstance(source, TokenStore):
        store = source
        _check_store_tokenizer(store, tokenizer)
        return store.tokens, {"eot_id": store.eot_id, "doc_starts": store.doc_starts,
                              "separator": store.separator, "separator_id": store.separator_id,
                              "reopen": StoreReopener(store)}
    if tokenizer is None:
        tokenizer = "gpt2"  # text and ids: the seed's tokenizer
    if isinstance(source, str):
        enc = resolve_tokenizer(tokenizer)
        if backend == "auto" and len(source) < _FAST_TEXT_CHARS:
            backend = "tiktoken"
        ids, _ = batch_encoder(backend, enc, allow_special=True)([source])  # (N,) uint32
        if len(ids) == 0 or int(ids.max()) < 2**16:
            ids = ids.astype(np.uint16)  # as as_token_array stores a list of GPT-2 ids
        return as_token_array(ids), {"eot_id": enc.eot_token, "doc_starts": None, "reopen": None,
                                     "separator": "eos", "separator_id": enc.eot_token}
    if isinstance(source, bytes):
        raise TypeError("source is bytes; decode it first (data.decode('utf-8')) or pass a file path.")
    ids = as_token_array(source, name="source")
    enc = resolve_tokenizer(tokenizer)  # checked for ids too: an unknown name is an error whatever the source
    eot = enc.eot_token if need_eot else None
    return ids, {"eot_id": eot, "doc_starts": None, "reopen": None, "separator": "eos" if need_eot else "none",
                 "separator_id": eot}


def _check_store_tokenizer(store: Any, tokenizer: Any) -> None:
    """A store is read only with the vocabulary it was made with: fingerprints compared, whatever the names say
    (two vocabularies both called ``gpt2`` are told apart; one tokenizer.json under two paths is one)."""
    from lmfeed.text.tokenizer import KNOWN_FINGERPRINTS, vocabulary_fingerprint

    if tokenizer is None:
        return  # read with its own vocabulary: the store's metadata already holds the separator and ids it needs
    made_with = store.metadata["tokenizer"]
    if isinstance(tokenizer, str) and KNOWN_FINGERPRINTS.get(tokenizer) == made_with["fingerprint"]:
        return  # a registered name whose pinned vocabulary made the store: no need to build it (time to first batch)
    enc = resolve_tokenizer(tokenizer)
    if vocabulary_fingerprint(enc) == made_with["fingerprint"]:
        return
    named = isinstance(tokenizer, (str, os.PathLike))
    asked = f"tokenizer={tokenizer!r}" if named else f"a tokenizer named {enc.name!r}"
    raise ValueError(
        f"{str(store.path)!r} was made with tokenizer {made_with['name']!r} "
        f"(vocabulary {made_with['fingerprint'][:12]}), "
        f"but {asked} has another vocabulary ({vocabulary_fingerprint(enc)[:12]}). Pass the tokenizer that made the "
        f"store (tokenizer={made_with['name']!r}), or prepare the store again with the tokenizer you want."
    )


class StoreReopener:
    """Opens a store's ids again (to drop the resident pages of a long epoch, or in a DataLoader worker), always
    the same data the windows were computed from.

    It holds ``tokens.npy`` open from the start, so in this process (and in forked workers, which inherit the
    descriptor) a reopen maps that same file again: a store replaced at the path (``prepare --force``) or an
    ``os.chdir`` changes nothing, and the old file's disk space is freed when the loader goes. Pickled (a spawned
    worker) it carries the resolved path and the file's identity (device, inode, size, modification time); the
    unpickled copy opens the path and refuses, with :class:`~lmfeed.store.format.StoreChangedError`, a file that is
    not the one recorded.
    """

    def __init__(self, store: Any) -> None:
        from lmfeed.store.format import TOKENS, StoreIdentity

        self.identity = store.identity or StoreIdentity.of(Path(store.path), os.stat(Path(store.path) / TOKENS))
        self.dtype = store.tokens.dtype
        self.count = len(store.tokens)
        self._file = open(self.identity.path / TOKENS, "rb")  # noqa: SIM115 - held for the loader's lifetime
        self.identity.check(os.fstat(self._file.fileno()))  # replaced between TokenStore.open and now?
        self._offset = _data_offset(self._file)

    def __call__(self) -> np.ndarray:
        if self._file is None:
            from lmfeed.store.format import TOKENS

            file = open(self.identity.path / TOKENS, "rb")  # noqa: SIM115
            try:
                self.identity.check(os.fstat(file.fileno()))
                self._offset = _data_offset(file)
            except BaseException:
                file.close()
                raise
            self._file = file
        if self.count == 0:
            return np.zeros(0, dtype=self.dtype)
        return np.memmap(self._file, dtype=self.dtype, mode="r", offset=self._offset, shape=(self.count,))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None  # a descriptor does not cross into a spawned process: reopen by path, checked
        return state

    def __del__(self) -> None:
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()


def _data_offset(file: Any) -> int:
    """Where the ids start in an open ``.npy`` file (after its header)."""
    file.seek(0)
    version = np.lib.format.read_magic(file)
    if version == (1, 0):
        np.lib.format.read_array_header_1_0(file)
    else:
        np.lib.format.read_array_header_2_0(file)
    return file.tell()
