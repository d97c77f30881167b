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
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tiktoken

from lmfeed._validate import as_int

__all__ = ["FORMAT", "FORMAT_VERSION", "StoreChangedError", "StoreError", "StoreIdentity", "TokenStore", "check_ids",
           "is_split_dir", "is_store_like"]

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


_STAGING_NAME = re.compile(r"\..+\.tmp-\d+-[0-9a-f]{8}")  # store.writer.staging_dir's names


def is_store_like(path: str | os.PathLike[str]) -> bool:
    """Whether a directory is lmfeed's own: a store, a split of stores, or a run's staging directory (never text).

    ``prepare`` skips such directories inside its input directories, so an output written inside the corpus is
    never read back as documents by the next run.
    """
    p = Path(path)
    return bool(_STAGING_NAME.fullmatch(p.name)) or TokenStore.is_store(p) or is_split_dir(p)


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
    except PermissionError:
        raise _unreadable(path) from None
    except (ValueError, OSError) as exc:
        if isinstance(exc, StoreError):
            raise
        raise StoreError(f"{path} is not a readable .npy file ({exc}). "
                         "The store is damaged; prepare it again.") from None


def _unreadable(path: Path) -> PermissionError:
    """A store file this user may not read: not damaged, so not a StoreError; say what to change."""
    return PermissionError(f"Cannot read {path}: permission denied. The store is not damaged; make it readable "
                           "(chmod -R a+rX on the store) or run as a user who may read it.")


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
    try:
        return np.load(path, mmap_mode="r")
    except PermissionError:
        raise _unreadable(path) from None


_CHECK_BLOCK = 1 << 20  # entries checked at a time: memory stays flat for any number of documents or tokens


def _check_doc_starts(path: Path, starts: np.ndarray, num_tokens: int, gap: int) -> None:
    """Raise StoreError unless ``starts`` begins at 0, never decreases (each entry at least ``gap`` above the one
    before: a separator between documents takes one token) and ends at most at ``num_tokens``. O(documents)."""
    n = len(starts)
    if n == 0:
        return
    fix = "The store is damaged; prepare it again."
    if int(starts[0]) != 0:
        raise StoreError(f"{path} does not start at token 0 (its first entry is {int(starts[0]):,}). {fix}")
    prev = -gap  # so that the first entry (0) passes
    for a in range(0, n, _CHECK_BLOCK):
        block = np.asarray(starts[a : a + _CHECK_BLOCK])
        steps = np.diff(block, prepend=np.int64(prev))
        bad = np.flatnonzero(steps < gap)
        if len(bad):
            i = a + int(bad[0])
            why = " (documents are separated by one token)" if gap and starts[i] == starts[i - 1] else ""
            raise StoreError(f"{path} is not in increasing order: entry {i:,} is {int(starts[i]):,}, after "
                             f"{int(starts[i - 1]):,} at entry {i - 1:,}{why}. {fix}")
        prev = int(block[-1])
    if prev > num_tokens:
        raise StoreError(f"{path} points past the end of the tokens: its last entry is {prev:,}, but there are "
                         f"{num_tokens:,} tokens. {fix}")


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
                 tokenizer: Any = None) -> None:
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
    def open(cls, path: str | os.PathLike[str], *, tokenizer: Any = None) -> TokenStore:
        """Open and validate a store without reading its ids into memory.

        Args:
            path: the store's directory.
            tokenizer: the tokenizer to decode with (a ``tiktoken.Encoding``, a loaded ``tokenizer.json``, or a name
                or path for ``lmfeed.get_tokenizer``), for a store whose recorded tokenizer cannot be found from here;
                its vocabulary fingerprint must match the store's.

        Returns:
            The store.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            StoreError (a ValueError): not a store, an interrupted one, a newer format, a truncated or foreign
                file, counts that disagree, or a tokenizer whose vocabulary is not the store's.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a store's directory (str or os.PathLike), but got {type(path).__name__}.")
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"No such store: {str(p)!r}. Create it with `lmfeed prepare INPUT -o {p}`.")
        if not p.is_dir():
            raise StoreError(f"{str(p)!r} is a file, not a token store "
                             "(a store is a directory made by `lmfeed prepare`).")
        if not os.access(p, os.R_OK | os.X_OK):
            raise _unreadable(p)
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
        except PermissionError:
            raise _unreadable(meta_path) from None
        except RecursionError:
            raise StoreError(f"{meta_path} is nested too deeply to be store metadata. The store is damaged; "
                             "prepare it again.") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise StoreError(f"{meta_path} is not valid JSON ({exc}). "
                             "The store is damaged; prepare it again.") from None
        _check_metadata(meta_path, metadata)
        tokens = _open_array(p / TOKENS, metadata["dtype"], metadata["num_tokens"])
        doc_starts = _open_array(p / DOC_STARTS, "int64", metadata["num_documents"])
        marked = metadata.get("separator", "eos" if metadata["eot_id"] is not None else "none") != "none"
        _check_doc_starts(p / DOC_STARTS, doc_starts, len(tokens), 1 if marked else 0)  # a separator takes a token
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
        return self.tokens[int(self.doc_starts[i]) + (self.separator == "bos") : end]

    @property
    def tokenizer(self) -> Any:
        """The tokenizer that wrote the store (for decoding), checked against the recorded vocabulary fingerprint.

        Raises:
            StoreError: the tokenizer is not one lmfeed knows (open with ``tokenizer=``), or its vocabulary differs.
        """
        if self._tokenizer is None:
            from lmfeed.text.tokenizer import get_tokenizer

            name = self.metadata["tokenizer"]["name"]
            try:
                enc = get_tokenizer(name)
            except (ValueError, OSError):
                raise StoreError(
                    f"{str(self.path)!r} was written with tokenizer {name!r}, which lmfeed does not know or cannot "
                    "find from here. Pass it explicitly: TokenStore.open(path, tokenizer=enc) (or its path)."
                ) from None
            self._set_tokenizer(enc)  # checks enc, then keeps it
            return enc
        return self._tokenizer

    def _set_tokenizer(self, enc: Any) -> None:
        from lmfeed.text.hf_tokenizer import HFTokenizer
        from lmfeed.text.tokenizer import resolve_tokenizer, vocabulary_fingerprint

        if isinstance(enc, (str, os.PathLike)):
            enc = resolve_tokenizer(enc)
        if not isinstance(enc, (tiktoken.Encoding, HFTokenizer)):
            raise TypeError(f"tokenizer must be a tiktoken.Encoding, a loaded tokenizer.json or a tokenizer's name or "
                            f"path, but got {type(enc).__name__}.")
        want = self.metadata["tokenizer"]["fingerprint"]
        if vocabulary_fingerprint(enc) != want:
            raise StoreError(
                f"Tokenizer {enc.name!r} does not have the vocabulary that wrote {str(self.path)!r} "
                f"(fingerprint {vocabulary_fingerprint(enc)[:12]}..., store {want[:12]}...). Use the same tokenizer."
            )
        where, fix = self.path / METADATA, "The store is damaged; prepare it again."
        if self.metadata["tokenizer"]["n_vocab"] != enc.n_vocab:
            raise StoreError(f"{where} says the vocabulary has {self.metadata['tokenizer']['n_vocab']:,} ids, but "
                             f"tokenizer {enc.name!r}, whose vocabulary it names, has {enc.n_vocab:,}. {fix}")
        for sep in {self.eot_id, self.separator_id} - {None}:
            if sep in enc._special_tokens.values():
                continue
            raise StoreError(f"{where} says documents are separated by id {sep:,}, which is not a special "
                             f"token of tokenizer {enc.name!r} (its special ids: "
                             f"{', '.join(map(str, sorted(enc._special_tokens.values())))}). {fix}")
        self._tokenizer = enc

    @property
    def vocab_size(self) -> int:
        """The number of ids of the vocabulary that wrote the store (``tokenizer.n_vocab`` in the metadata)."""
        return int(self.metadata["tokenizer"]["n_vocab"])

    def verify(self) -> dict[str, int]:
        """Read every id once and check it against the vocabulary, and every separator in place: O(tokens).

        ``TokenStore.open`` checks the metadata, the sizes and the document index (O(documents)) but not the ids,
        which would read the whole file; ``lmfeed info --verify`` runs this, and ``merge`` and ``export`` check the
        ids as they copy them.

        Returns:
            ``{"tokens": N, "separators": M}``: the ids and the separators checked.

        Raises:
            StoreError: an id at or above the vocabulary size (naming the file, the first such id, its offset and
                how many there are), or a document boundary without the separator.
        """
        n = len(self)
        for a in range(0, n, _CHECK_BLOCK):
            check_ids(self.tokens[a : a + _CHECK_BLOCK], self.vocab_size, where=self.path / TOKENS, offset=a,
                      rest=self.tokens[a + _CHECK_BLOCK :])
        separators = 0
        sep, bos = self.separator_id, self.separator == "bos"
        if sep is not None and self.num_documents > (0 if bos else 1):
            # EOS: the token before each document but the first closes the one before; BOS: each opens its own
            for a in range(0 if bos else 1, self.num_documents, _CHECK_BLOCK):
                at = np.asarray(self.doc_starts[a : a + _CHECK_BLOCK]) - (0 if bos else 1)
                at = at[at < n]  # an empty last BOS document cannot be told from none
                bad = np.flatnonzero(self.tokens[at] != sep)
                if len(bad):
                    i = a + int(bad[0])
                    where = "at" if bos else "before"
                    raise StoreError(
                        f"{self.path / TOKENS}: document {i:,} starts at token {int(self.doc_starts[i]):,}, but token "
                        f"{int(at[bad[0]]):,} {where} it is id {int(self.tokens[at[bad[0]]])}, not the "
                        f"separator {sep}. The store is damaged; prepare it again.")
                separators += len(at)
        return {"tokens": n, "separators": separators}

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
    if type(version) is not int or version != FORMAT_VERSION:  # type: True == 1 in Python, but is not a version
        if type(version) is int and version > FORMAT_VERSION:
            raise StoreError(f"{where} is store format version {version}; "
                             f"this lmfeed reads version {FORMAT_VERSION}. Upgrade lmfeed.")
        raise StoreError(f"{where} has format version {version!r}; this lmfeed reads version {FORMAT_VERSION}.")
    problems = []
    if m.get("dtype") not in _DTYPES:
        problems.append(f"dtype {m.get('dtype')!r} is not one of {_DTYPES}")
    for key in ("num_tokens", "num_documents"):
        if not _is_count(m.get(key)):
            problems.append(f"{key} {m.get(key)!r} is not a count")
    if "separator" in m and m["separator"] not in ("eos", "bos", "none"):
        problems.append(f"separator {m['separator']!r} is not one of 'eos', 'bos', 'none'")
    tok = m.get("tokenizer")
    n_vocab = None
    if not (isinstance(tok, dict) and isinstance(tok.get("name"), str) and isinstance(tok.get("fingerprint"), str)
            and _is_count(tok.get("n_vocab")) and tok["n_vocab"] > 0):
        problems.append("tokenizer has no name, fingerprint and n_vocab")
    else:
        n_vocab = tok["n_vocab"]
        if m.get("dtype") == "uint16" and n_vocab > 2**16:
            problems.append(f"dtype uint16 cannot hold the ids of a vocabulary of {n_vocab:,}")
    eot = m.get("eot_id")
    if not (eot is None or (_is_count(eot) and (n_vocab is None or eot < n_vocab))):
        problems.append(f"eot_id {eot!r} is not an id of the vocabulary"
                        f"{f' (0 to {n_vocab - 1:,})' if n_vocab is not None else ''}")
    sep = m.get("separator_id")
    if "separator_id" in m and not (sep is None or (_is_count(sep) and (n_vocab is None or sep < n_vocab))):
        problems.append(f"separator_id {sep!r} is not an id of the vocabulary")
    problems += _optional_problems(m)
    if problems:
        raise StoreError(f"{where} is damaged: {'; '.join(problems)}. Prepare the store again.")


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _optional_problems(m: dict[str, Any]) -> list[str]:
    """What is wrong with the fields that describe where a store came from (shard, split, sources, options).

    They do not decide the ids, but ``merge`` and ``lmfeed info`` read them: a damaged one is named here rather
    than found later as a KeyError.
    """
    problems = []
    shard = m.get("shard")
    if shard is not None and not (isinstance(shard, dict) and _is_count(shard.get("num_shards"))
                                  and shard["num_shards"] >= 1 and _is_count(shard.get("shard_index"))
                                  and shard["shard_index"] < shard["num_shards"]):
        problems.append(f"shard {shard!r} is not {{num_shards, shard_index}} with shard_index below num_shards")
    split = m.get("split")
    if split is not None and not (isinstance(split, dict) and split.get("part") in ("train", "val")
                                  and type(split.get("val_fraction")) in (int, float)
                                  and 0 <= split["val_fraction"] < 1 and _is_count(split.get("seed"))):
        problems.append(f"split {split!r} is not {{part: train or val, val_fraction in [0, 1), seed}}")
    sources = m.get("sources", [])
    if not (isinstance(sources, list) and all(isinstance(s, dict) and isinstance(s.get("input"), str)
                                               for s in sources)):
        problems.append(f"sources {str(sources)[:80]!r} is not a list of {{input, ...}}")
    if not isinstance(m.get("options", {}), dict):
        problems.append(f"options {m.get('options')!r} is not an object")
    corpus = m.get("corpus_documents")
    if corpus is not None:
        if not _is_count(corpus):
            problems.append(f"corpus_documents {corpus!r} is not a count")
        elif _is_count(m.get("num_documents")) and not problems:
            n = m["num_documents"]
            if shard is None and split is None and n != corpus:
                problems.append(f"num_documents {n:,} is not the corpus's {corpus:,} documents (corpus_documents)")
            elif shard is not None and split is None and n != len(range(shard["shard_index"], corpus,
                                                                        shard["num_shards"])):
                problems.append(f"num_documents {n:,} is not what shard {shard['shard_index']} of "
                                f"{shard['num_shards']} takes of {corpus:,} documents")
            elif n > corpus:
                problems.append(f"num_documents {n:,} is more than the corpus's {corpus:,} documents")
    return problems


def check_ids(ids: np.ndarray, vocab_size: int, *, where: str | os.PathLike[str], offset: int = 0,
              rest: np.ndarray | None = None) -> None:
    """Raise StoreError if an id in ``ids`` (a block of a file, starting at token ``offset``) is ``>= vocab_size``.

    The message names the file, the first such id and its offset, and (when ``rest``, the file's tokens after this
    block, is given) how many such ids the file has.
    """
    if not len(ids) or int(ids.max()) < vocab_size:
        return
    first = int(np.argmax(ids >= vocab_size))
    count = int(np.count_nonzero(ids >= vocab_size))
    if rest is not None:
        for a in range(0, len(rest), _CHECK_BLOCK):
            count += int(np.count_nonzero(rest[a : a + _CHECK_BLOCK] >= vocab_size))
    raise StoreError(
        f"{where}: token {offset + first:,} is id {int(ids[first])}, at or above the vocabulary size {vocab_size:,}"
        f"{f' ({count:,} such ids in the file)' if count > 1 else ''}. The file is damaged or was written with "
        "another vocabulary; prepare it again."
    )
