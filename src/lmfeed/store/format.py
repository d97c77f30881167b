"""The token store: a corpus tokenized once, memory-mapped for training, self-describing.

A store is a directory of three files, all readable without lmfeed:

```
STORE/
  tokens.npy       1-D token ids, uint16 (vocabulary of at most 65,536 ids) or uint32; numpy memory-maps it
  doc_starts.npy   1-D int64, the offset in tokens.npy where each document starts
  metadata.json    format and version, tokenizer name and vocabulary fingerprint, dtype, counts, sources
```

The token stream is every document encoded as ordinary text, with the end-of-text id between documents (a
separator: none after the last one), so document ``i`` is ``tokens[doc_starts[i] : doc_ends[i]]`` where
``doc_ends[i] = doc_starts[i + 1] - 1`` (or ``len(tokens)`` for the last one); without end-of-text ids
(``eot_id`` null) the ``- 1`` goes. Read it from anywhere with ``numpy.load("STORE/tokens.npy", mmap_mode="r")``.

A ``prepare`` with a validation split writes a directory holding two stores, ``train/`` and ``val/``, and a
``split.json``. ``metadata.json`` is written last, and the whole directory is renamed into place when complete, so
a directory without it is an interrupted run and never opens.

Example:
    >>> store = TokenStore.open("corpus.store")  # doctest: +SKIP
    >>> store.tokens[:2], len(store), store.num_documents  # doctest: +SKIP
    (memmap([15496,   995], dtype=uint16), 2048, 3)
    >>> store.tokenizer.decode(store.document(0)[:2].tolist())  # doctest: +SKIP
    'Hello world'
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tiktoken

from lmfeed._validate import as_int

__all__ = ["FORMAT", "FORMAT_VERSION", "StoreChangedError", "StoreError", "StoreIdentity", "TokenStore", "is_split_dir"]

logger = logging.getLogger(__name__)

FORMAT = "lmfeed-token-store"
FORMAT_VERSION = 1
SPLIT_FORMAT = "lmfeed-split"
METADATA = "metadata.json"
TOKENS = "tokens.npy"
DOC_STARTS = "doc_starts.npy"
SPLIT = "split.json"
_DTYPES = ("uint16", "uint32")


class StoreError(ValueError):
    """The directory is not a complete, valid token store (missing, truncated, foreign or newer format)."""


class StoreChangedError(StoreError):
    """The store at a path is no longer the one that was opened there (replaced, e.g. by ``prepare --force``)."""


@dataclass(frozen=True)
class StoreIdentity:
    """Which store a path held when it was opened: the resolved directory, and ``tokens.npy``'s device, inode,
    size and modification time. Reopening by path (a DataLoader worker, an unpickled store) compares them, so a
    store replaced at the same path, or a relative path read from another working directory, is never read in its
    place.
    """

    path: Path  # absolute, symlinks resolved
    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, directory: Path, stat: os.stat_result) -> StoreIdentity:
        """The identity of the store in ``directory`` whose ``tokens.npy`` has ``stat``."""
        return cls(directory.resolve(), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)

    def check(self, stat: os.stat_result) -> None:
        """Raise StoreChangedError unless ``stat`` (of the ``tokens.npy`` found now) is the one recorded."""
        now = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if now == (self.device, self.inode, self.size, self.mtime_ns):
            return
        changes = []
        if (stat.st_dev, stat.st_ino) != (self.device, self.inode):
            changes.append("another file (inode)")
        if stat.st_size != self.size:
            changes.append(f"{self.size:,} -> {stat.st_size:,} bytes")
        if stat.st_mtime_ns != self.mtime_ns:
            changes.append("modified")
        raise StoreChangedError(
            f"The token store at {str(self.path)!r} is no longer the one that was opened there: its {TOKENS} is "
            f"{', '.join(changes)} (replaced by `lmfeed prepare --force`, a copy or a merge?). Reading it would mix "
            "two corpora under windows computed from the first. Build the loader (or open the store) again to read "
            "the new one."
        )


def is_split_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a train/validation split written by ``prepare(val_fraction=...)``."""
    return (Path(path) / SPLIT).is_file()


def read_npy_header(path: Path) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """Return ``(dtype, shape, fortran_order, data_offset)`` of a ``.npy`` file, or raise StoreError."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise StoreError(f"{path} is a .npy file of version {version}, which lmfeed does not read.")
            return dtype, shape, fortran, f.tell()
    except FileNotFoundError:
        raise StoreError(f"{path} is missing: the store is incomplete. Prepare it again.") from None
    except (ValueError, OSError) as exc:
        if isinstance(exc, StoreError):
            raise
        raise StoreError(f"{path} is not a readable .npy file ({exc}). "
                         "The store is damaged; prepare it again.") from None


def _open_array(path: Path, dtype: str, length: int) -> np.ndarray:
    """Memory-map a 1-D .npy array read-only after checking dtype, shape and file size against the metadata."""
    found, shape, fortran, offset = read_npy_header(path)
    if found != np.dtype(dtype) or fortran or shape != (length,):
        raise StoreError(
            f"{path} holds a {found} array of shape {shape}, but the metadata says {dtype} of shape ({length},). "
            "The file does not belong to this store; prepare it again."
        )
    expected = offset + length * np.dtype(dtype).itemsize
    size = path.stat().st_size
    if size != expected:
        what = "truncated" if size < expected else "longer than its header says"
        raise StoreError(
            f"{path} is {what}: {size:,} bytes, but {length:,} {dtype} values need {expected:,}. "
            "The store is damaged (an interrupted copy?); prepare it again."
        )
    if length == 0:  # numpy cannot memory-map zero bytes
        empty = np.zeros(0, dtype=dtype)
        empty.flags.writeable = False
        return empty
    return np.load(path, mmap_mode="r")


class TokenStore:
    """A prepared corpus: read-only memory-mapped token ids, a document index, and the tokenizer that made them.

    Open one with ``TokenStore.open(path)``; write one with ``lmfeed.prepare`` or ``lmfeed prepare``. Nothing is read
    into memory but the metadata; ``tokens`` pages in on demand. A store pickles as its path (plus an explicitly
    given tokenizer), so DataLoader workers reopen the memory map instead of copying ids.

    Attributes:
        path: the store's directory.
        tokens: (N,) read-only ``np.memmap`` of ids, uint16 or uint32.
        metadata: the parsed ``metadata.json``.
        eot_id: the separator id between documents, or ``None`` for a store prepared with ``--no-eot``.
    """

    def __init__(self, path: Path, metadata: dict[str, Any], tokens: np.ndarray, doc_starts: np.ndarray,
                 tokenizer: tiktoken.Encoding | None = None) -> None:
        self.path = path
        self.metadata = metadata
        self.tokens = tokens
        self.doc_starts = doc_starts
        self.eot_id: int | None = metadata["eot_id"]
        self._explicit_tokenizer = tokenizer
        self._tokenizer = tokenizer
        self._doc_ends: np.ndarray | None = None
        self.identity: StoreIdentity | None = None  # set by open(): what reopening by path must find again

    # ---- opening -------------------------------------------------------------------------------------------

    @staticmethod
    def is_store(path: str | os.PathLike[str]) -> bool:
        """Cheap check: does ``path`` hold a complete store's metadata? (Reads only ``metadata.json``.)"""
        try:
            with open(Path(path) / METADATA, encoding="utf-8") as f:
                return json.load(f).get("format") == FORMAT
        except (OSError, ValueError, AttributeError):
            return False

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, tokenizer: tiktoken.Encoding | None = None) -> TokenStore:
        """Open and validate a store without reading its ids into memory.

        Args:
            path: the store's directory.
            tokenizer: the ``tiktoken.Encoding`` to decode with, for a store written with a tokenizer that
                ``lmfeed.text.tokenizer.get_tokenizer`` does not know; its vocabulary fingerprint must match the
                store's.

        Returns:
            The store.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            StoreError (a ValueError): not a store, an interrupted one, a newer format, a truncated or foreign
                file, counts that disagree, or a tokenizer whose vocabulary is not the store's.
        """
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"No such store: {str(p)!r}. Create it with `lmfeed prepare INPUT -o {p}`.")
        if not p.is_dir():
            raise StoreError(f"{str(p)!r} is a file, not a token store "
                             "(a store is a directory made by `lmfeed prepare`).")
        meta_path = p / METADATA
        if not meta_path.is_file():
            if is_split_dir(p):
                raise StoreError(f"{str(p)!r} holds a train/validation split: "
                                 f"open {str(p / 'train')!r} or {str(p / 'val')!r}.")
            if (p / TOKENS).exists() or ".tmp-" in p.name:
                raise StoreError(f"{str(p)!r} is an incomplete store (an interrupted `lmfeed prepare`?): "
                                 f"it has no {METADATA}. Prepare it again.")
            raise StoreError(f"{str(p)!r} is not a token store: it has no {METADATA}. "
                             "Create one with `lmfeed prepare`.")
        try:
            metadata = json.loads(meta_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise StoreError(f"{meta_path} is not valid JSON ({exc}). "
                             "The store is damaged; prepare it again.") from None
        _check_metadata(meta_path, metadata)
        tokens = _open_array(p / TOKENS, metadata["dtype"], metadata["num_tokens"])
        doc_starts = _open_array(p / DOC_STARTS, "int64", metadata["num_documents"])
        if len(doc_starts) and (doc_starts[0] != 0 or not 0 <= doc_starts[-1] <= len(tokens)):
            raise StoreError(f"{p / DOC_STARTS} does not index {p / TOKENS} "
                             f"(first {doc_starts[0]}, last {doc_starts[-1]}, "
                             f"{len(tokens):,} tokens). The store is damaged; prepare it again.")
        store = cls(p, metadata, tokens, doc_starts)
        store.identity = StoreIdentity.of(p, os.stat(p / TOKENS))
        if tokenizer is not None:
            store._set_tokenizer(tokenizer)
        return store

    # ---- what it holds -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.metadata["num_tokens"])

    @property
    def num_documents(self) -> int:
        return int(self.metadata["num_documents"])

    @property
    def dtype(self) -> np.dtype:
        return self.tokens.dtype

    @property
    def separator(self) -> str:
        """How documents are marked: ``"eos"`` (a separator closes each document but the last), ``"bos"`` (one opens
        each document) or ``"none"``. Stores written before the field: ``"eos"`` with an ``eot_id``, else ``"none"``."""
        recorded = self.metadata.get("separator")
        if recorded in ("eos", "bos", "none"):
            return str(recorded)
        return "eos" if self.eot_id is not None else "none"

    @property
    def separator_id(self) -> int | None:
        """The id of the separator (``separator_id`` in the metadata, else ``eot_id``); ``None`` for ``"none"``."""
        if self.separator == "none":
            return None
        recorded = self.metadata.get("separator_id", self.eot_id)
        return None if recorded is None else int(recorded)

    @property
    def doc_ends(self) -> np.ndarray:
        """(num_documents,) int64: where each document ends (exclusive), separators excluded. Computed once."""
        if self._doc_ends is None:
            ends = np.empty(self.num_documents, dtype=np.int64)
            if self.num_documents:
                ends[:-1] = self.doc_starts[1:] - (1 if self.eot_id is not None else 0)
                ends[-1] = len(self)
            ends.flags.writeable = False
            self._doc_ends = ends
        return self._doc_ends

    def document(self, i: int) -> np.ndarray:
        """The ids of document ``i`` (negative counts from the end), without separators: a read-only view.

        Raises:
            IndexError: ``i`` is not in ``[-num_documents, num_documents)``.
        """
        i = as_int("i", i, minimum=None)
        n = self.num_documents
        if not -n <= i < n:
            raise IndexError(f"document {i} does not exist: the store has {n:,} documents (0 to {n - 1:,}).")
        i %= n
        end = int(self.doc_starts[i + 1]) - (self.eot_id is not None) if i + 1 < n else len(self)
        return self.tokens[int(self.doc_starts[i]) : end]

    @property
    def tokenizer(self) -> tiktoken.Encoding:
        """The tokenizer that wrote the store (for decoding), checked against the recorded vocabulary fingerprint.

        Raises:
            StoreError: the tokenizer is not one lmfeed knows (open with ``tokenizer=``), or its vocabulary differs.
        """
        if self._tokenizer is None:
            from lmfeed.text.tokenizer import get_tokenizer

            name = self.metadata["tokenizer"]["name"]
            try:
                enc = get_tokenizer(name)
            except ValueError:
                raise StoreError(
                    f"{str(self.path)!r} was written with tokenizer {name!r}, which lmfeed does not know. "
                    "Pass it explicitly: TokenStore.open(path, tokenizer=enc)."
                ) from None
            self._set_tokenizer(enc)  # checks enc, then keeps it
            return enc
        return self._tokenizer

    def _set_tokenizer(self, enc: tiktoken.Encoding) -> None:
        from lmfeed.text.tokenizer import vocabulary_fingerprint

        if not isinstance(enc, tiktoken.Encoding):
            raise TypeError(f"tokenizer must be a tiktoken.Encoding, but got {type(enc).__name__}.")
        want = self.metadata["tokenizer"]["fingerprint"]
        if vocabulary_fingerprint(enc) != want:
            raise StoreError(
                f"Tokenizer {enc.name!r} does not have the vocabulary that wrote {str(self.path)!r} "
                f"(fingerprint {vocabulary_fingerprint(enc)[:12]}..., store {want[:12]}...). Use the same tokenizer."
            )
        self._tokenizer = enc

    def nbytes_on_disk(self) -> int:
        """Bytes of the store's files on disk."""
        return sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())

    def __repr__(self) -> str:
        return (f"TokenStore({str(self.path)!r}, tokens={len(self):,}, documents={self.num_documents:,}, "
                f"dtype={self.metadata['dtype']}, tokenizer={self.metadata['tokenizer']['name']!r})")

    # ---- pickling: by path, never the ids ------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self.path), "tokenizer": self._explicit_tokenizer, "identity": self.identity}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Reopen by the resolved path (any working directory), refusing a store that was replaced meanwhile."""
        identity: StoreIdentity | None = state.get("identity")
        other = TokenStore.open(identity.path if identity else state["path"], tokenizer=state["tokenizer"])
        if identity is not None and other.identity is not None:
            identity.check(os.stat(identity.path / TOKENS))
        self.__dict__.update(other.__dict__)
        self.identity = identity or other.identity


def _check_metadata(where: Path, m: Any) -> None:
    """Raise StoreError unless ``m`` is version-1 store metadata with well-typed fields."""
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise StoreError(f"{where} is not lmfeed token-store metadata (no \"format\": \"{FORMAT}\").")
    version = m.get("version")
    if version != FORMAT_VERSION:
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise StoreError(f"{where} is store format version {version}; "
                             f"this lmfeed reads version {FORMAT_VERSION}. Upgrade lmfeed.")
        raise StoreError(f"{where} has format version {version!r}; this lmfeed reads version {FORMAT_VERSION}.")
    problems = []
    if m.get("dtype") not in _DTYPES:
        problems.append(f"dtype {m.get('dtype')!r} is not one of {_DTYPES}")
    for key in ("num_tokens", "num_documents"):
        if not isinstance(m.get(key), int) or isinstance(m.get(key), bool) or m[key] < 0:
            problems.append(f"{key} {m.get(key)!r} is not a count")
    if not (m.get("eot_id") is None or (isinstance(m.get("eot_id"), int) and m["eot_id"] >= 0)):
        problems.append(f"eot_id {m.get('eot_id')!r} is not an id")
    if "separator" in m and m["separator"] not in ("eos", "bos", "none"):
        problems.append(f"separator {m['separator']!r} is not one of 'eos', 'bos', 'none'")
    tok = m.get("tokenizer")
    if not (isinstance(tok, dict) and isinstance(tok.get("name"), str) and isinstance(tok.get("fingerprint"), str)):
        problems.append("tokenizer has no name and fingerprint")
    if problems:
        raise StoreError(f"{where} is damaged: {'; '.join(problems)}. Prepare the store again.")
