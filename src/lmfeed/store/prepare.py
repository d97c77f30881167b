"""``prepare``: tokenize a corpus once, in parallel and in constant memory, into a token store.

The pipeline, one process reading and writing and ``workers`` processes encoding:

```
files --> documents (blocks of text) --> pieces (split at safe points) --> tasks (~1 MB) --> workers encode
                                                                                  |  in order,
                                                                                  |  at most 2*workers+1 in flight
                                           tokens.npy + doc_starts.npy  <--  main writes ids as they come back
```

The store's bytes depend only on the inputs and options, never on ``workers`` or the backend (tiktoken or
fastokens, which give the same ids; the metadata does not name the backend): tasks come back in the order they
were made. A document longer than ``piece_chars`` is cut only where the GPT-2 pre-tokenizer is sure to cut anyway
(see ``safe_split``), so cutting never changes an id.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from lmfeed._validate import as_choice, as_int, as_probability, as_seed
from lmfeed.store.encode_pool import Task, encoder, sigterm_as_interrupt
from lmfeed.store.format import DOC_STARTS, FORMAT, FORMAT_VERSION, TOKENS, TokenStore, is_split_dir, is_store_like
from lmfeed.store.writer import StoreWriter, check_apart, check_output, output_path, staging_dir, write_split_marker
from lmfeed.text.backends import Backend, preload, select_backend
from lmfeed.text.sources import (
    DecodeErrors,
    InputFile,
    InputFormat,
    RawRecord,
    RawRecords,
    ReadStats,
    expand_inputs,
    iter_document_batches,
    iter_document_blocks,
)
from lmfeed.text.tokenizer import Separator

__all__ = ["prepare", "TrainVal", "check_inputs_apart", "check_not_empty", "input_files", "safe_split", "separator_id",
           "store_dtype",
           "store_metadata", "val_mask"]

logger = logging.getLogger(__name__)

ENDOFTEXT = "<|endoftext|>"
_PIECE_CHARS = 1 << 20  # cut documents longer than this (where safe); also the target size of a task
_SPLIT_WINDOW = 1 << 16


class TrainVal(NamedTuple):
    """The two stores of a ``prepare`` with ``val_fraction > 0``."""

    train: TokenStore
    val: TokenStore


# ---- cutting long documents without changing ids ---------------------------------------------------------------

# GPT-2's pre-tokenizer (tiktoken's r50k pattern, also p50k's), as tiktoken 0.14 writes it:
#   '(?:[sdmt]|ll|ve|re) | ?\p{L}++ | ?\p{N}++ | ?[^\s\p{L}\p{N}]++ | \s++$ | \s+(?!\S) | \s
# No alternative that matches a non-space character can go on into a following space or newline, and none looks
# behind; the only anchor, `$`, is the end of the text and sits in whitespace alternatives. So between a
# non-space character and a following " " or "\n" the pattern always ends one match and starts the next, the
# same whether the text goes on or ends there: encode(a + b) == encode(a) + encode(b) for a ending in a non-space
# and b starting with " " or "\n". Python's \S excludes everything str.isspace() calls space, a superset of the
# regex's Unicode White_Space, so it never takes a space for a non-space.
# tests/test_prepare.py checks this with hypothesis against tiktoken itself.
_NEWLINE_CUT = re.compile(r"\S\n")
_SPACE_CUT = re.compile(r"\S ")
# A text with no space or newline (minified code, base64, a URL list) still has exact cuts: between two non-space
# characters of different classes, letter (\p{L}), digit (\p{N}) or other (neither, nor space), no match can go on,
# since each non-space alternative is a run of one class, except the contractions, which start at an apostrophe and
# go on into a letter: so never cut just after "'". Only ASCII characters are classified here, so that Unicode
# versions (Python's tables against the regex engine's) never matter. The cut is before text[p] for a match at p-1.
_P = r"!-/:-@\[-`{-~"  # ASCII punctuation and symbols, the apostrophe included
_P_NO_APOSTROPHE = r"!-&(-/:-@\[-`{-~"
_CLASS_CUT = re.compile(rf"[A-Za-z](?=[0-9{_P}])|[0-9](?=[A-Za-z{_P}])|[{_P_NO_APOSTROPHE}](?=[A-Za-z0-9])")
# A run longer than this with no cut at all (one class throughout, "aaaa...", or non-ASCII letters only) is one
# pre-token piece that BPE must see whole: it is encoded whole, with a warning (memory grows with it).
_UNCUT_WARN_CHARS = 16 << 20


def _gpt2_pattern() -> str:
    from tiktoken_ext.openai_public import r50k_pat_str

    return r50k_pat_str


def safe_split(text: str, start: int = 0) -> int:
    """The last position ``p > start`` where GPT-2's encoding may cut ``text`` without changing ids, or -1.

    Prefers a cut before a newline, then before a space, then between two non-space ASCII characters of different
    classes (letter, digit, other; never after an apostrophe); ``text[p - 1]`` is never whitespace.

    Example:
        >>> safe_split("Hello world\\nBye")
        11
    """
    for pattern in (_NEWLINE_CUT, _SPACE_CUT, _CLASS_CUT):
        for lo in (max(start, len(text) - _SPLIT_WINDOW), start):
            last = -1
            for m in pattern.finditer(text, lo):
                last = m.start() + 1
            if last > start:
                return last
            if lo == start:
                break
    return -1


def _pieces(blocks: Iterable[tuple[int, str | RawRecord | RawRecords]], splittable: bool,
            piece_chars: int) -> Iterator[tuple[int, str | RawRecord | RawRecords, bool]]:
    """Turn ``(document, block)`` pairs into ``(document, piece, starts_document)``, pieces cut at safe points.

    A ``RawRecord`` (a short JSON Lines record, decoded later in a worker) is always a whole document, and
    ``RawRecords`` whole documents.
    """
    pending: str | RawRecord | RawRecords
    current, pending, first, scanned = -1, "", True, 0
    for doc, block in blocks:
        if doc != current:
            if current >= 0:
                yield current, pending, first
            current, pending, first, scanned = doc, block, True, 0
        else:
            assert isinstance(pending, str) and isinstance(block, str)  # a RawRecord is a whole document
            pending += block
        while splittable and isinstance(pending, str) and len(pending) >= piece_chars:
            cut = safe_split(pending, scanned)
            if cut < 0:
                if scanned < _UNCUT_WARN_CHARS <= len(pending):
                    logger.warning("lmfeed: document %s has %s characters with no exact cut (one class of "
                                   "characters, no space): GPT-2 encodes it as one piece, so it is held and encoded "
                                   "whole; memory grows with its length", f"{current:,}", f"{len(pending):,}+")
                scanned = max(len(pending) - 1, 0)  # nowhere safe yet: wait for more text, rescan only the new part
                break
            yield current, pending[:cut], first
            pending, first, scanned = pending[cut:], False, 0
    if current >= 0:
        yield current, pending, first


# ---- the validation split ------------------------------------------------------------------------------------


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def val_mask(indices: np.ndarray, *, val_fraction: float, seed: int) -> np.ndarray:
    """Which documents (by index in the whole corpus) go to the validation store: a pure function of the seed.

    Each document is in validation with probability ``val_fraction``, independently of the others, of the number
    of documents, of shards and of workers.
    """
    with np.errstate(over="ignore"):
        key = _splitmix64(np.array([seed % 2**64], dtype=np.uint64))
        h = _splitmix64(np.asarray(indices, dtype=np.uint64) ^ key)
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53 < val_fraction


class _Parts:
    """Document index -> 0 (train) or 1 (validation), computed 4,096 documents at a time."""

    def __init__(self, val_fraction: float, seed: int) -> None:
        self.val_fraction, self.seed, self._block, self._mask = val_fraction, seed, -1, np.zeros(0, dtype=bool)

    def __call__(self, index: int) -> int:
        if not self.val_fraction:
            return 0
        block = index >> 12
        if block != self._block:
            self._block = block
            self._mask = val_mask(np.arange(block << 12, (block + 1) << 12), val_fraction=self.val_fraction,
                                  seed=self.seed)
        return int(self._mask[index & 4095])


# ---- prepare ---------------------------------------------------------------------------------------------------


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def prepare(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Iterable[Any],
    out: str | os.PathLike[str],
    *,
    tokenizer: Any = "gpt2",
    backend: Backend = "auto",
    glob: str = "*",
    field: str = "text",
    format: InputFormat = "auto",
    errors: DecodeErrors = "strict",
    allow_special: bool = False,
    eot: bool = True,
    separator: Literal["auto", "eos", "bos", "none"] = "auto",
    on_bad_record: Literal["error", "skip"] = "error",
    workers: int | None = None,
    num_shards: int = 1,
    shard_index: int = 0,
    val_fraction: float = 0.0,
    seed: int = 0,
    force: bool = False,
    progress: bool = False,
    include_hidden: bool = False,
) -> TokenStore | TrainVal:
    """Tokenize text files, directories or JSON Lines into a token store at ``out``, and open it.

    Each document (a file, or a JSON Lines record) is encoded as ordinary text, documents separated by the
    end-of-text id, so the ids equal ``enc.encode("<|endoftext|>".join(docs), allowed_special={"<|endoftext|>"})``
    for documents without a literal ``<|endoftext|>``. Memory stays flat whatever the corpus size; the store's bytes
    are the same for any number of workers; the store appears at ``out`` only when complete.

    Args:
        inputs: text files, JSON Lines (``*.jsonl``, ``*.ndjson``), Parquet (``*.parquet``, a row a document),
            compressed files (gzip, zstd, bzip2, xz: recognised by their first bytes), directories (searched
            recursively for ``glob``), fsspec URLs (``s3://bucket/prefix``, globs allowed), or ``"-"`` for stdin;
            one or a list. Or documents from Python: any iterable of ``str`` or of mappings with ``field`` that is
            not a list of paths (a generator, ``iter(docs)``, a list of dicts), or a ``datasets.Dataset`` /
            ``IterableDataset`` (streamed, never materialised).
        out: the store's directory (must not exist unless ``force``).
        tokenizer: a name or path for ``lmfeed.get_tokenizer`` (default ``"gpt2"``; a ``tokenizer.json``, a directory
            holding one, or a ``.tiktoken`` file), a ``tiktoken.Encoding``, or a loaded tokenizer.
        backend: what encodes: ``"auto"`` (default: fastokens for GPT-2 when it is installed and passes its
            self-check, else tiktoken), ``"tiktoken"`` or ``"fastokens"`` (see ``lmfeed.text.backends``). The ids, and
            the store's bytes, are the same with either.
        glob: which files to take from directories (default ``"*"``, every file).
        field: the JSON Lines field, Parquet column or mapping key holding the text (default ``"text"``).
        on_bad_record: a record whose field is missing, null or not a string: ``"error"`` (default: names the
            file, row and field, and the fields there are) or ``"skip"`` (left out, counted in the metadata's
            ``bad_records``).
        format: ``"auto"`` (default: by file name), ``"text"`` or ``"jsonl"``.
        errors: bytes that are not UTF-8: ``"strict"`` (default) raises, ``"replace"`` uses U+FFFD, ``"skip"`` drops.
        allow_special: encode a literal ``<|endoftext|>`` (a tokenizer.json's end-of-document token) in a document as
            the special id (default: as text).
        eot: put a separator between documents (default True); ``eot=False`` is ``separator="none"``.
        separator: how documents are separated, recorded in the store's metadata: ``"eos"`` (the end-of-document
            token, e.g. ``<|endoftext|>``, between documents: GPT-2's way), ``"bos"`` (the begin-of-document token,
            e.g. ``<s>``, opening every document: Llama's way), ``"none"``, or ``"auto"`` (default: ``"eos"`` when
            the tokenizer has such a token, else ``"bos"``, else ``"none"``).
        workers: encoding processes (default: every core this process may use); 1 encodes in this process. Each
            encodes on one thread, so this is the number of cores the encoding uses, whatever the backend.
        num_shards: prepare only every ``num_shards``-th document, starting at ``shard_index`` (document ``k`` goes
            to shard ``k % num_shards``); ``lmfeed.store.merge`` joins the shards into the single-run store.
        shard_index: this shard, in ``[0, num_shards)``.
        val_fraction: the probability that a document goes to a validation store (default 0: no split). With a
            split, ``out`` holds two stores, ``out/train`` and ``out/val``.
        seed: decides which documents are validation documents (default 0).
        force: replace an existing store at ``out``.
        progress: show a progress bar on stderr.
        include_hidden: inside directories, also read hidden files and directories (``.env``, ``.git/``) and
            version-control directories (default False: skipped). Token stores and staging directories inside
            input directories are always skipped, and links to directories followed, each directory once.

    Returns:
        The opened store, or ``TrainVal(train, val)`` when ``val_fraction > 0``.

    Raises:
        FileNotFoundError: an input is missing. FileExistsError: ``out`` exists (pass ``force``).
        ValueError: bad options (``backend="fastokens"`` when it cannot be used), undecodable input, a bad JSON Lines
            record, or an empty corpus (with the file, line or byte offset). PermissionError: ``out`` cannot be
            written.

    Example:
        >>> store = prepare(["story.txt"], "story.store", workers=1)  # doctest: +SKIP
        >>> store.tokens[:2].tolist(), store.tokenizer.decode(store.tokens[:2].tolist())  # doctest: +SKIP
        ([15496, 995], 'Hello world')
    """
    from lmfeed.text.hf_tokenizer import HFTokenizer
    from lmfeed.text.tokenizer import get_tokenizer, resolve_tokenizer, tokenizer_names, vocabulary_fingerprint

    if backend != "tiktoken" and tokenizer == "gpt2":
        preload()  # fastokens loads on a thread while tiktoken's encoding is built here
    enc = resolve_tokenizer(tokenizer)
    format = as_choice("format", format, ("auto", "text", "jsonl", "parquet"))
    on_bad_record = as_choice("on_bad_record", on_bad_record, ("error", "skip"))
    errors = as_choice("errors", errors, ("strict", "replace", "skip"))
    cores = _default_workers()
    workers = cores if workers is None else as_int(
        "workers", workers, maximum=max(64, 8 * cores),
        fix=f"Use about as many workers as CPU cores ({cores} here); workers=1 encodes in this process.")
    num_shards = as_int("num_shards", num_shards)
    shard_index = as_int("shard_index", shard_index, minimum=0, maximum=num_shards - 1,
                         fix=f"Shards are numbered 0 to {num_shards - 1}.")
    val_fraction = as_probability("val_fraction", val_fraction, fix="Use e.g. val_fraction=0.1, or 0 for no split.")
    seed = as_seed("seed", seed)  # [0, 2**64): val_mask reads it as one uint64, so a larger one would alias
    if not isinstance(field, str) or not field:
        raise ValueError(f"field must be a JSON key such as 'text', but got {field!r}.")
    separator, sep_id = resolve_separator(enc, eot=eot, allow_special=allow_special, separator=separator)
    eot_id = sep_id if separator == "eos" else None  # the id between documents (doc_ends drop it); BOS opens each
    hf = isinstance(enc, HFTokenizer)
    if hf:
        from lmfeed.text.hf_backends import one_core_per_process

        one_core_per_process()  # each worker is one core; set before the self-check so forks stay quiet
    dtype = store_dtype(enc)
    files = input_files(inputs, glob=glob, format=format, include_hidden=include_hidden)
    out = output_path(out)
    check_inputs_apart(files, out)
    check_output(out, force=force)  # fail before any work; staging_dir checks again at the end
    # loaded and self-checked here, before the pool forks, so workers inherit it and a fallback warns once
    chosen = select_backend(backend, enc)
    logger.info("encoding with %s", chosen)

    fingerprint = vocabulary_fingerprint(enc)
    registered = (not hf and enc.name in tokenizer_names()
                  and vocabulary_fingerprint(get_tokenizer(enc.name)) == fingerprint)
    splittable = gpt2_splittable(enc)
    if not splittable:
        logger.info("tokenizer %r has another pre-tokenizer than GPT-2's: documents are encoded whole", enc.name)
    parts = _Parts(val_fraction, seed)
    names = ["train", "val"] if val_fraction else [""]
    stats = ReadStats()
    select = None if num_shards == 1 else (lambda k: k % num_shards == shard_index)

    def tasks() -> Iterator[Task]:
        started = [False, False]  # per part: a document already written (so the next needs a separator)
        task: Task = []
        size = 0
        # short JSON Lines records travel undecoded, ~1 MB of lines at a time when no document is picked by its
        # index (no shards, no validation split) and none is skipped: this process does no work per record
        # (#15 item 19)
        blocks = (iter_document_batches(files, field=field, errors=errors, stats=stats, raw_below=_PIECE_CHARS)
                  if select is None and not val_fraction and on_bad_record == "error" else
                  iter_document_blocks(files, field=field, errors=errors, select=select, stats=stats,
                                       raw_below=_PIECE_CHARS, on_bad_record=on_bad_record))
        for doc, text, starts in _pieces(blocks, splittable, _PIECE_CHARS):
            part = parts(doc)
            # EOS between documents (not before the first); BOS before every document
            before = starts and sep_id is not None and (started[part] or separator == "bos")
            started[part] = True
            task.append((part, text, starts, before))
            size += len(text) + 64
            if size >= _PIECE_CHARS:
                yield task
                task, size = [], 0
        if task:
            yield task

    eot_array = np.array([] if sep_id is None else [sep_id], dtype=dtype)  # empty: no separators
    init = (enc.name if registered else enc, allow_special, dtype, chosen, separator == "bos")
    sizes = [f.size for f in files if f.size is not None]
    total = sum(sizes) if len(sizes) == len(files) else None  # None: some input (stdin) has no size
    bar = _progress_bar(total, progress)
    out_path = Path(out)
    try:
        with sigterm_as_interrupt(), staging_dir(out_path, force=force) as tmp:
            writers = [StoreWriter(tmp / name if name else tmp, dtype=dtype, eot_id=eot_id) for name in names]
            started_at = time.perf_counter()
            try:
                with encoder(workers, init, eot_array) as run:
                    for result in run(tasks()):
                        for part, (ids, starts) in result.items():
                            writers[part].write_chunk(ids, starts)
                        if bar is not None:
                            tokens = sum(w.num_tokens for w in writers)
                            bar.update(stats.bytes_read - bar.n)
                            rate = tokens / max(time.perf_counter() - started_at, 1e-9)
                            bar.set_postfix_str(f"{rate / 1e6:.2f}M tok/s, {tokens:,} tokens", refresh=False)
            except BaseException:
                for w in writers:
                    w.close()
                raise
            check_not_empty(stats.documents, writers, names, num_shards, val_fraction, files)
            metadata = store_metadata(enc, files, documents=stats.documents, allow_special=allow_special,
                                      errors=errors, field=field, format=format, glob=glob,
                                      shard=None if num_shards == 1 else (num_shards, shard_index),
                                      separator=separator, separator_id=sep_id,
                                      skipped_records=stats.skipped if on_bad_record == "skip" else None)
            for name, w in zip(names, writers, strict=True):
                split = {"part": name, "val_fraction": val_fraction, "seed": seed} if name else None
                w.finish({**metadata, "split": split})
            if val_fraction:
                write_split_marker(tmp, names)
    finally:
        if bar is not None:
            bar.close()
    if val_fraction:
        return TrainVal(TokenStore.open(out_path / "train", tokenizer=enc),
                        TokenStore.open(out_path / "val", tokenizer=enc))
    return TokenStore.open(out_path, tokenizer=enc)


def resolve_separator(enc: Any, *, eot: bool = True, allow_special: bool = False,
                      separator: str = "auto") -> tuple[Separator, int | None]:
    """How documents are separated and by which id: ``("eos" | "bos" | "none", id or None)``.

    ``separator="auto"`` takes the tokenizer's own way (EOS when it has one, else BOS, else none); ``eot=False`` is
    ``separator="none"``.

    Raises:
        ValueError: an unknown ``separator``, ``eot=False`` with ``"eos"`` or ``"bos"``, a tokenizer without the
            token asked for (names its special tokens and the other choices), or ``allow_special`` with a tokenizer
            that has no end-of-document token.
    """
    from lmfeed.text.hf_tokenizer import HFTokenizer
    from lmfeed.text.tokenizer import default_separator, separator_token

    separator = as_choice("separator", separator, ("auto", "eos", "bos", "none"))
    if not eot:
        if separator not in ("auto", "none"):
            raise ValueError(f"eot=False (--no-eot) and separator={separator!r} contradict each other. "
                             "Pass one of them.")
        separator = "none"
    elif separator == "auto":
        separator = default_separator(enc)
    found = separator_token(enc, separator)  # raises when the tokenizer lacks the token asked for
    if isinstance(enc, HFTokenizer):
        special = enc.eos_name or enc.bos_name
    else:
        special = ENDOFTEXT if ENDOFTEXT in enc.special_tokens_set else None
    if allow_special and special is None:
        raise ValueError(f"Tokenizer {enc.name!r} has no {ENDOFTEXT} (or other end-of-document) token; allow_special "
                         "has nothing to allow. Leave it out.")
    return separator, None if found is None else found[1]  # type: ignore[return-value]


def separator_id(enc: Any, *, eot: bool, allow_special: bool, separator: str = "auto") -> int | None:
    """The EOS id put between documents (``None`` without one), for engines that write EOS-style stores only.

    Raises:
        ValueError: as ``resolve_separator``, and a separator that resolves to ``"bos"``.
    """
    style, sep_id = resolve_separator(enc, eot=eot, allow_special=allow_special, separator=separator)
    if style == "bos":
        raise ValueError(f"separator='bos' (tokenizer {enc.name!r} opens documents with a BOS token) is prepared by "
                         "engine='local' only. Use engine='local', or pass separator='eos' or 'none'.")
    return sep_id


def gpt2_splittable(enc: Any) -> bool:
    """Whether long documents may be cut where GPT-2's pre-tokenizer cuts anyway (see ``safe_split``)."""
    from lmfeed.text.hf_tokenizer import HFTokenizer

    if isinstance(enc, HFTokenizer):
        return enc.gpt2_pretokenizer
    return bool(enc._pat_str == _gpt2_pattern())  # tiktoken has no public accessor for the pattern


def store_dtype(enc: Any) -> str:
    """``"uint16"`` when every id of ``enc`` fits 16 bits, else ``"uint32"``."""
    return "uint16" if enc.max_token_value < 2**16 else "uint32"


def store_metadata(enc: Any, files: list[InputFile], *, documents: int, allow_special: bool,
                   errors: str, field: str, format: str, glob: str,
                   shard: tuple[int, int] | None = None, separator: str = "eos",
                   separator_id: int | None = None, skipped_records: int | None = None) -> dict[str, Any]:
    """The ``metadata.json`` of a prepared store, without its counts and split (``StoreWriter.finish`` adds those).

    One place for it, so that every way of preparing (this module, ``lmfeed.engines``) writes the same bytes.
    """
    from lmfeed.text.tokenizer import vocabulary_fingerprint

    options = {"allow_special": bool(allow_special), "errors": errors, "field": field, "format": format,
               "glob": glob}
    bad = {} if skipped_records is None else {"bad_records": {"on_bad_record": "skip", "skipped": skipped_records}}
    return bad | {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "tokenizer": {"name": enc.name, "fingerprint": vocabulary_fingerprint(enc), "n_vocab": enc.n_vocab},
        "separator": separator if separator_id is not None else "none",
        "separator_id": separator_id,
        "files": {"tokens": TOKENS, "doc_starts": DOC_STARTS},
        "options": options,
        "sources": _sources(files, options),
        "corpus_documents": documents,
        "shard": None if shard is None else {"num_shards": shard[0], "shard_index": shard[1]},
    }


def input_files(inputs: Any, *, glob: str, format: InputFormat, include_hidden: bool) -> list[InputFile]:
    """``expand_inputs`` for preparing: directories are walked without lmfeed's own stores and staging directories,
    so a store written inside an input directory is never read back as text."""
    if not isinstance(include_hidden, bool):
        raise TypeError(f"include_hidden must be True or False, but got {include_hidden!r}.")
    return expand_inputs(inputs, glob=glob, format=format, include_hidden=include_hidden, skip_dir=is_store_like)


def check_inputs_apart(files: list[InputFile], out: Path) -> None:
    """The output is not an input, does not contain one and does not lie inside an input store (see check_apart).

    It may lie inside an input directory: the directory walk skips token stores and staging directories.
    """
    given = {f.input for f in files if f.path is not None}
    dirs = [g for g in given if os.path.isdir(g)]
    read: list[str | Path] = [g for g in given if g not in dirs]
    if out.exists() or out.is_symlink():  # only an existing output can be or hold a file that is read
        read += [f.path for f in files if f.path is not None]
    check_apart(out, read, role="an input", inside_ok=dirs)
    for d in dirs:
        if TokenStore.is_store(d) or is_split_dir(d):
            raise ValueError(f"{d!r} is a token store (binary ids), not text. Train on it with "
                             f"create_dataloader(Path({d!r})), or join stores with `lmfeed merge`.")


def check_not_empty(documents: int, writers: list[StoreWriter], names: list[str], num_shards: int,
                     val_fraction: float, files: list[InputFile]) -> None:
    named = f"{', '.join(f.name for f in files[:5])}{' ...' if len(files) > 5 else ''}"
    if documents == 0:
        raise ValueError(f"The corpus is empty: no documents in {named}. "
                         "Check the inputs (blank JSON Lines are skipped).")
    if num_shards == 1 and sum(w.num_tokens for w in writers) == 0:
        raise ValueError(f"The corpus is empty: {documents:,} document{'s' if documents != 1 else ''} in {named}, "
                         f"but no text in {'it' if documents == 1 else 'them'}. Check the inputs.")
    if num_shards == 1 and val_fraction:
        for name, w in zip(names, writers, strict=True):
            if w.num_documents == 0:
                raise ValueError(f"val_fraction={val_fraction} left the {name} store without documents "
                                 f"(the corpus has {documents:,}). Change val_fraction or seed, or add documents.")


def _sources(files: list[InputFile], options: dict[str, Any]) -> list[dict[str, Any]]:
    """Per input as given: how many files it named, their bytes on disk, and the options it was read with
    (deterministic: no times, no paths made absolute), so that a merged store still says how each part was read."""
    sources: dict[str, dict[str, Any]] = {}
    for f in files:
        s = sources.setdefault(f.input, {"input": f.input, "files": 0, "bytes": 0, "options": options})
        s["files"] += 1
        s["bytes"] = None if f.size is None or s["bytes"] is None else s["bytes"] + f.size
    return list(sources.values())


def _progress_bar(total: int | None, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="prepare", file=sys.stderr,
                dynamic_ncols=True, smoothing=0.1)
