"""Where text comes from: the embedded default corpus and UTF-8 text files, read with clear errors.

A corpus is a sequence of documents (strings). The default corpus is ``pydoc_data.topics``, the Python language
reference that ships with every CPython: 79 documents, ~465,000 characters of English prose and code.

For ``lmfeed prepare`` this module also streams corpora larger than memory: ``expand_inputs`` turns the
command line's inputs (files, directories, ``.gz``, JSON Lines, ``-`` for stdin) into a sorted list of files, and
``iter_document_blocks`` reads them as documents (a text file is one document, a JSON Lines record is one document),
each handed out as consecutive blocks of decoded text so that a 10 GB file never sits in memory whole. Bytes are
decoded as UTF-8 exactly as they are, with no newline translation (``read_text`` does the same).
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import gzip
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from lmfeed.text.compression import decompressed, detect, strip_suffix
from lmfeed.text.parquet import PARQUET_MAGIC
from lmfeed.text.records import BadRecordError
from lmfeed.text.remote import is_url

__all__ = [
    "python_reference",
    "read_text",
    "DEFAULT_CORPUS_NAME",
    "InputFile",
    "ReadStats",
    "expand_inputs",
    "iter_document_batches",
    "iter_document_blocks",
    "RawRecord",
    "RawRecords",
]

DEFAULT_CORPUS_NAME = "the Python language reference (pydoc_data.topics)"


def python_reference() -> list[str]:
    """The default corpus: the Python language reference's 79 topics, in a fixed (sorted by topic) order.

    Example:
        >>> docs = python_reference()
        >>> len(docs) > 50 and all(isinstance(d, str) for d in docs)
        True
    """
    from pydoc_data.topics import topics

    return [topics[name] for name in sorted(topics)]


def read_text(path: str | os.PathLike[str], *, errors: str = "strict") -> str:
    """Read a UTF-8 text file.

    Args:
        path: the file.
        errors: ``"strict"`` (default) refuses undecodable bytes; ``"replace"`` puts U+FFFD in their place.

    Raises:
        FileNotFoundError: the path does not exist (or is a directory).
        ValueError: the file is not valid UTF-8; the message gives the byte offset and the fix.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"No such file: {str(p)!r}. Check the path.")
    if p.is_dir():
        raise FileNotFoundError(f"{str(p)!r} is a directory, not a text file. Name a file inside it.")
    data = p.read_bytes()
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{str(p)!r} is not valid UTF-8: byte {exc.start:,} is 0x{data[exc.start]:02x} ({exc.reason}). "
            "Convert the file to UTF-8, or put U+FFFD in place of each bad byte: in Python, pass the text of "
            "lmfeed.text.sources.read_text(path, errors='replace'); on the command line, make a store with "
            "`lmfeed prepare FILE --errors replace -o STORE` and use STORE."
        ) from None


# ----------------------------------------------------------------------------------------------------------------
# Streaming inputs for `lmfeed prepare`.

InputFormat = Literal["auto", "text", "jsonl", "parquet"]
FileFormat = Literal["text", "jsonl", "parquet", "records"]
BadRecords = Literal["error", "skip"]
DecodeErrors = Literal["strict", "replace", "skip"]

STDIN = "-"
_PY_ERRORS = {"strict": "strict", "replace": "replace", "skip": "ignore"}
_JSONL_SUFFIXES = (".jsonl", ".ndjson")
_FIX_UTF8 = ("Convert the input to UTF-8, or pass errors='replace' (--errors replace) to substitute U+FFFD, "
             "or errors='skip' (--errors skip) to drop such bytes.")


class BinaryReader(Protocol):
    """What reading an input needs of its stream (a file, a gzip stream, or stdin counting its bytes)."""

    def read(self, n: int = -1, /) -> bytes: ...

    def readline(self) -> bytes: ...


@dataclasses.dataclass(frozen=True)
class InputFile:
    """One file to read: a text file (one document) or a JSON Lines file (one document per record).

    Attributes:
        name: how the file is named in messages and metadata: the input as given, or ``given_dir/relative/path``
            for a file found in a directory; ``"-"`` for stdin.
        path: the file, or ``None`` for stdin.
        format: ``"text"`` or ``"jsonl"``.
        compressed: gzip-compressed (the name ends in ``.gz``).
        size: bytes on disk (compressed bytes for ``.gz``); ``None`` for stdin.
        input: the input argument this file came from.
    """

    name: str
    path: Path | None
    format: FileFormat
    compressed: bool
    size: int | None
    input: str
    compression: str | None = None  # "gzip", "zstd", "bz2", "xz": from the file's first bytes
    url: str | None = None  # an fsspec URL (path is then None)
    records: Any = dataclasses.field(default=None, compare=False, repr=False)  # documents from Python

    @property
    def is_stdin(self) -> bool:
        return self.name == STDIN and self.path is None and self.url is None and self.records is None

    @contextlib.contextmanager
    def open(self) -> Iterator[tuple[BinaryReader, Callable[[], int]]]:
        """Open for binary reading; yields ``(stream, position)`` where ``position()`` is the on-disk bytes consumed."""
        kind = self.compression or ("gzip" if self.compressed else None)
        if self.url is not None:
            from lmfeed.text.remote import open_url

            with open_url(self.url) as remote:
                yield (decompressed(remote, kind, self.name) if kind else remote), remote.tell
            return
        if self.path is None:
            stream = sys.stdin.buffer
            consumed = [0]

            class _Counting:  # stdin cannot tell(): count what passes through
                def read(self, n: int = -1) -> bytes:
                    data = stream.read(n)
                    consumed[0] += len(data)
                    return data

                def readline(self) -> bytes:
                    data = stream.readline()
                    consumed[0] += len(data)
                    return data

            counting = _Counting()
            source: BinaryReader = counting
            if self.compressed:  # typeshed asks fileobj for seek(), which GzipFile only calls to rewind: never here
                source = gzip.GzipFile(fileobj=counting, mode="rb")  # type: ignore[call-overload]
            yield source, lambda: consumed[0]
            return
        with open(self.path, "rb") as raw:
            yield (decompressed(raw, kind, self.name) if kind else raw), raw.tell


@dataclasses.dataclass
class ReadStats:
    """Counters that ``iter_document_blocks`` keeps up to date as it reads (for progress bars and metadata)."""

    bytes_read: int = 0  # on-disk bytes consumed so far, over all files
    documents: int = 0  # documents seen so far, selected or not
    skipped: int = 0  # bad records left out (on_bad_record="skip"): not documents, no index


def _format_of(name: str, format: InputFormat, head: bytes = b"") -> FileFormat:
    """By ``format``, else by name and first bytes: Parquet (``PAR1``, ``*.parquet``), JSON Lines (``*.jsonl``,
    ``*.ndjson``, and ``*.json`` when compressed, as Dolma and RedPajama ship), else text."""
    if format != "auto":
        return format
    stem = strip_suffix(name).lower()
    if head.startswith(PARQUET_MAGIC) or stem.endswith(".parquet"):
        return "parquet"
    if stem.endswith(_JSONL_SUFFIXES) or (stem != name.lower() and stem.endswith(".json")):
        return "jsonl"
    return "text"


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(8)
    except OSError:
        return b""


def _local(name: str, path: Path, format: InputFormat, given: str) -> InputFile:
    head = _head(path)
    kind = detect(head)
    return InputFile(name, path, _format_of(path.name, format, head), kind is not None, path.stat().st_size, given,
                     compression=kind)


def _remote(url: str, glob: str, format: InputFormat) -> list[InputFile]:
    from lmfeed.text.remote import expand_url, open_url

    files = []
    for member, size in expand_url(url, glob=glob):
        with open_url(member) as f:
            head = f.read(8)
        kind = detect(head)
        files.append(InputFile(member, None, _format_of(member.rsplit("/", 1)[-1], format, head), kind is not None,
                               size, url, compression=kind, url=member))
    return files


def expand_inputs(
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    glob: str = "*",
    format: InputFormat = "auto",
    include_hidden: bool = False,
    skip_dir: Callable[[Path], bool] | None = None,
) -> list[InputFile]:
    """Turn inputs (files, directories, ``"-"`` for stdin) into the list of files to read, in a fixed order.

    Directories are searched recursively for files matching ``glob`` (``lmfeed.text.walk``: links to directories
    followed, each directory once; hidden files and directories and version-control directories skipped unless
    ``include_hidden``), in sorted order of their relative paths, so the document order never depends on the file
    system. ``format="auto"`` reads ``*.jsonl`` and ``*.ndjson`` (also gzipped) as JSON Lines and everything else
    as text.

    Args:
        inputs: one input or several, in order: ``str`` or ``os.PathLike`` paths (``bytes`` paths are decoded).
        glob: the pattern for files inside directories, relative to each (default ``"*"``: every file, at any
            depth). Examples: ``"*.txt"``, ``"sub/*.md"``, ``"**"``.
        format: ``"auto"`` (default), ``"text"`` or ``"jsonl"`` for every file.
        include_hidden: also read hidden files (``.env``) and directories (``.git/``) inside directories.
        skip_dir: directories inside an input for which this says True are not read (``prepare`` skips token
            stores and staging directories this way).

    Returns:
        The files, in reading order.

    Raises:
        FileNotFoundError: an input does not exist.
        TypeError: an input is not a path.
        ValueError: no inputs, stdin named twice or closed, a glob that is absolute or leaves the directory, or a
            directory with no matching file.

    Example:
        >>> [f.name for f in expand_inputs(["notes.txt", "-"])]  # doctest: +SKIP
        ['notes.txt', '-']
    """
    from lmfeed.text.records import describe, is_dataset
    from lmfeed.text.walk import WalkStats, check_glob, walk_files

    paths = (str, bytes, os.PathLike)
    if isinstance(inputs, paths):
        inputs = [inputs]
    elif is_dataset(inputs) or (isinstance(inputs, Iterable) and not isinstance(inputs, (list, tuple))) or (
            isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], Mapping)):
        # documents from Python: a dataset, a generator or iterator, a list of mappings (a list of str is paths)
        return [InputFile(describe(inputs), None, "records", False, None, describe(inputs), records=inputs)]
    if not isinstance(inputs, Iterable):
        raise TypeError(f"inputs must be a path (str or os.PathLike), '-' for stdin, or a list of them, but got "
                        f"{inputs!r} ({type(inputs).__name__}). Documents from Python come as an iterator of str or "
                        "mappings (iter(docs)), a list of mappings, or a datasets.Dataset.")
    given = []
    for i in inputs:
        if not isinstance(i, paths):
            raise TypeError(f"Each input must be a path (str or os.PathLike) or '-', but got {i!r} "
                            f"({type(i).__name__}). To pass documents, pass an iterator of them: iter(docs).")
        given.append(os.fsdecode(i))
    check_glob(glob)
    if not given:
        raise ValueError("No inputs. Name at least one text file, JSON Lines file, directory, or '-' for stdin.")
    if given.count(STDIN) > 1:
        raise ValueError("stdin ('-') is named more than once; it can be read only once.")
    files: list[InputFile] = []
    for name in given:
        if name == STDIN:
            if sys.stdin is None or sys.stdin.closed:  # `<&-`: Python sets sys.stdin to None
                raise ValueError("stdin ('-') is closed: there is nothing to read. Pipe the text in "
                                 "(`cat FILE | lmfeed prepare - ...`) or name the files.")
            files.append(InputFile(STDIN, None, format if format != "auto" else "text", False, None, STDIN))
            continue
        if is_url(name):
            files.extend(_remote(name, glob, format))
            continue
        path = Path(name)
        if not name:
            raise ValueError("An input is the empty string ''. Name a file, a directory, or '-' for stdin.")
        if path.is_dir():
            walked = WalkStats()
            found = walk_files(path, glob, include_hidden=include_hidden, skip_dir=skip_dir, stats=walked)
            if not found:
                hidden = (f" ({walked.hidden:,} hidden file{'s' if walked.hidden != 1 else ''} or version-control "
                          "directories skipped: --include-hidden reads them)") if walked.hidden else ""
                raise ValueError(f"Directory {name!r} has no files matching glob {glob!r}{hidden}. "
                                 "Check the directory or pass another --glob.")
            for p in found:
                member = f"{name.rstrip('/')}/{p.relative_to(path).as_posix()}"
                files.append(_local(member, p, format, name))
        elif path.exists():
            files.append(_local(name, path, format, name))
        else:
            raise FileNotFoundError(f"No such file or directory: {name!r}. Check the path.")
    return files


def iter_document_blocks(
    files: Sequence[InputFile],
    *,
    field: str = "text",
    errors: DecodeErrors = "strict",
    select: Callable[[int], bool] | None = None,
    block_size: int = 1 << 20,
    stats: ReadStats | None = None,
    raw_below: int = 0,
    on_bad_record: BadRecords = "error",
) -> Iterator[tuple[int, str | RawRecord]]:
    """Read documents as ``(document_index, text_block)`` pairs, in order, in constant memory.

    A text file is one document, handed out in blocks of about ``block_size`` bytes of decoded text; a JSON Lines
    record (blank lines skipped) is one document, handed out as one block. Every selected document yields at least
    one block (``""`` for an empty one), and its blocks are consecutive. Documents that ``select`` refuses are
    counted (their index is used up) but not decoded, and text files among them are not even opened.

    Args:
        files: from ``expand_inputs``.
        field: the JSON Lines field that holds the text (default ``"text"``).
        errors: what to do with bytes that are not UTF-8: ``"strict"`` (default) raises, ``"replace"`` substitutes
            U+FFFD, ``"skip"`` drops them.
        select: ``select(document_index) -> bool``, or ``None`` for every document.
        block_size: bytes read at a time from a text file.
        stats: updated in place as reading goes (bytes consumed, documents seen).
        raw_below: JSON Lines records shorter than this many bytes come as a ``RawRecord`` (call ``.text()``), so
            that the decoding can happen elsewhere (default 0: always text). Not with ``on_bad_record="skip"``,
            which must decode a record to know whether it is a document.
        on_bad_record: a record (JSON Lines line, Parquet row, Python item) without a string ``field``:
            ``"error"`` (default) raises naming the file, row and field; ``"skip"`` leaves it out (no document
            index) and counts it in ``stats.skipped``.

    Raises:
        ValueError: undecodable bytes (names the file and the byte offset, and for JSON Lines the line), a JSON
            Lines line that is not a JSON object with a string ``field``, or a corrupt ``.gz`` file.
    """
    py_errors = _PY_ERRORS[errors]
    stats = stats if stats is not None else ReadStats()
    for file in files:
        done_before = stats.bytes_read
        try:
            if file.format == "jsonl":
                yield from _jsonl_blocks(file, field, py_errors, select, stats,
                                         0 if on_bad_record == "skip" else raw_below, on_bad_record)
            elif file.format in ("parquet", "records"):
                yield from _row_blocks(file, field, select, stats, on_bad_record)
            elif select is not None and not select(stats.documents) and not file.is_stdin:
                stats.documents += 1  # not ours: skip the file unread
            else:
                yield from _text_blocks(file, py_errors, select, block_size, stats)
        except (EOFError, gzip.BadGzipFile) as exc:
            raise ValueError(f"{file.name}: not a readable gzip file ({exc}). "
                             "Check the file, or decompress it first.") from None
        if file.size is not None:
            stats.bytes_read = done_before + file.size


def iter_document_batches(
    files: Sequence[InputFile],
    *,
    field: str = "text",
    errors: DecodeErrors = "strict",
    block_size: int = 1 << 20,
    stats: ReadStats | None = None,
    raw_below: int = 1 << 20,
) -> Iterator[tuple[int, str | RawRecord | RawRecords]]:
    """:func:`iter_document_blocks` for every document, JSON Lines records shorter than ``raw_below`` bytes handed
    out ~``block_size`` bytes of lines at a time as one :class:`RawRecords` (its documents are numbered
    ``index .. index + count - 1``), so that reading a million tiny records costs no Python object per record.

    Raises:
        ValueError: as :func:`iter_document_blocks` (a record's own errors come from ``RawRecords.texts()``).
    """
    py_errors = _PY_ERRORS[errors]
    stats = stats if stats is not None else ReadStats()
    for file in files:
        if file.format != "jsonl" or not raw_below:
            yield from iter_document_blocks([file], field=field, errors=errors, block_size=block_size, stats=stats,
                                            raw_below=raw_below)
            continue
        done_before = stats.bytes_read
        try:
            yield from _jsonl_batches(file, field, py_errors, stats, raw_below, block_size)
        except (EOFError, gzip.BadGzipFile) as exc:
            raise ValueError(f"{file.name}: not a readable gzip file ({exc}). "
                             "Check the file, or decompress it first.") from None
        if file.size is not None:
            stats.bytes_read = done_before + file.size


def _text_blocks(file: InputFile, py_errors: str, select: Callable[[int], bool] | None, block_size: int,
                 stats: ReadStats) -> Iterator[tuple[int, str]]:
    index = stats.documents
    stats.documents += 1
    wanted = select is None or select(index)
    decoder = codecs.getincrementaldecoder("utf-8")(errors=py_errors)
    offset = 0  # uncompressed bytes handed to the decoder so far
    yielded = False
    base = stats.bytes_read
    head = b""
    with file.open() as (stream, position):
        while True:
            data = stream.read(block_size)
            final = not data
            if offset == 0:
                head = data[:2]
            if wanted:
                pending = len(decoder.getstate()[0])
                try:
                    text = decoder.decode(data, final)
                except UnicodeDecodeError as exc:
                    at = offset - pending + exc.start
                    bad = exc.object[exc.start]
                    raise ValueError(
                        f"{file.name}: byte {at:,} is not valid UTF-8 (0x{bad:02x}: {exc.reason}). "
                        f"{_gzip_hint(head)}{_FIX_UTF8}"
                    ) from None
                if text or (final and not yielded):
                    yielded = True
                    yield index, text
            offset += len(data)
            stats.bytes_read = base + position()
            if final:
                return


def _row_blocks(file: InputFile, field: str, select: Callable[[int], bool] | None, stats: ReadStats,
                on_bad_record: str) -> Iterator[tuple[int, str]]:
    """Parquet rows or Python records: each one a document, in one block."""
    skipped = [0]
    if file.format == "records":
        from lmfeed.text.records import iter_record_texts

        texts = iter_record_texts(file.records, field=field, name=file.name, on_bad_record=on_bad_record,
                                  skipped=skipped)
        yield from _indexed(texts, select, stats, skipped)
        return
    from lmfeed.text.parquet import iter_row_group_texts

    if file.path is not None:
        yield from _indexed(iter_row_group_texts(file.path, field=field, name=file.name,
                                                 on_bad_record=on_bad_record, skipped=skipped), select, stats, skipped)
        return
    with file.open() as (stream, _):
        yield from _indexed(iter_row_group_texts(stream, field=field, name=file.name, on_bad_record=on_bad_record,
                                                 skipped=skipped), select, stats, skipped)


def _indexed(texts: Iterator[str], select: Callable[[int], bool] | None, stats: ReadStats,
             skipped: list[int]) -> Iterator[tuple[int, str]]:
    for text in texts:
        index = stats.documents
        stats.documents += 1
        if select is None or select(index):
            yield index, text
    stats.skipped += skipped[0]


def _jsonl_blocks(file: InputFile, field: str, py_errors: str, select: Callable[[int], bool] | None, stats: ReadStats,
                  raw_below: int, on_bad_record: str = "error") -> Iterator[tuple[int, str | RawRecord]]:
    base = stats.bytes_read
    offset = 0
    with file.open() as (stream, position):
        for lineno, raw in enumerate(iter(stream.readline, b""), start=1):
            line_offset, offset = offset, offset + len(raw)
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):  # a byte-order mark is not part of the record
                raw, line_offset = raw[len(codecs.BOM_UTF8):], len(codecs.BOM_UTF8)
            if lineno % 256 == 0:
                stats.bytes_read = base + position()
            if raw.isspace():
                continue  # blank lines are not records (isspace: no copy of the line, unlike strip)
            record = RawRecord(raw, file.name, lineno, line_offset, field, py_errors)
            text: str | RawRecord | None = None
            if on_bad_record == "skip":  # decoded here: a bad record is not a document and takes no index
                try:
                    text = record.text()
                except BadRecordError:
                    stats.skipped += 1
                    continue
            index = stats.documents
            stats.documents += 1
            if select is not None and not select(index):
                continue
            if text is None:
                text = record if len(raw) < raw_below else record.text()
            yield index, text
        stats.bytes_read = base + position()


def _jsonl_batches(file: InputFile, field: str, py_errors: str, stats: ReadStats, raw_below: int,
                   block_size: int) -> Iterator[tuple[int, str | RawRecord | RawRecords]]:
    """``_jsonl_blocks`` for every record, ~``block_size`` bytes of whole lines at a time: short records travel
    as one :class:`RawRecords` per block, a record of ``raw_below`` bytes or more as its decoded text."""
    base = stats.bytes_read
    offset, lineno = 0, 1  # of the block's first byte and line
    with file.open() as (stream, position):
        while True:
            data = stream.read(block_size)
            if not data:
                break
            if not data.endswith(b"\n"):
                data += stream.readline()  # whole lines only
            start = 0
            if lineno == 1 and data.startswith(codecs.BOM_UTF8):  # a byte-order mark is not part of the record
                start = len(codecs.BOM_UTF8)
            lines = data[start:].split(b"\n")
            if lines[-1] == b"":
                lines.pop()  # after the last newline
            long = len(data) >= raw_below and any(len(line) >= raw_below - 1 for line in lines)
            if not long:
                count = sum(1 for line in lines if line and not line.isspace())
                if count:
                    yield stats.documents, RawRecords(data[start:], file.name, lineno, offset + start, field,
                                                      py_errors, count)
                    stats.documents += count
            else:  # a long record among them: each record on its own, the long one decoded here and cut later
                at = offset + start
                for k, line in enumerate(lines):
                    raw = line + b"\n" if k < len(lines) - 1 or data.endswith(b"\n") else line
                    if not raw.isspace() and raw:
                        record = RawRecord(raw, file.name, lineno + k, at, field, py_errors)
                        yield stats.documents, (record if len(raw) < raw_below else record.text())
                        stats.documents += 1
                    at += len(raw)
            offset += len(data)
            lineno += data.count(b"\n")
            stats.bytes_read = base + position()
        stats.bytes_read = base + position()


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # \ud800-\udfff: half of a UTF-16 pair, maybe alone


@dataclasses.dataclass(frozen=True)
class RawRecords:
    """Consecutive JSON Lines records read but not yet decoded (blank lines among them); ``texts()`` decodes them.

    Attributes:
        data: the lines' bytes. name: the file's name. lineno: the first line's number (from 1). offset: its byte
        offset in the (uncompressed) file. field, errors: as :class:`RawRecord`. count: records (non-blank lines).
    """

    data: bytes
    name: str
    lineno: int
    offset: int
    field: str
    errors: str
    count: int

    def __len__(self) -> int:
        return len(self.data)

    def texts(self) -> list[str]:
        """The records' texts, in order; exactly what :meth:`RawRecord.text` gives for each (and the same errors).

        Raises:
            ValueError: as :meth:`RawRecord.text`, naming the record's own line.
        """
        lines = [line for line in self.data.split(b"\n") if line and not line.isspace()]
        if _SURROGATE_ESCAPE.search(self.data) is None:  # else RawRecord checks each escape, line by line
            try:  # the common block: one JSON array, parsed by one call in C
                records = json.loads((b"[" + b",".join(lines) + b"]").decode("utf-8", self.errors))
                texts = [record[self.field] for record in records]
                if len(texts) == self.count and all(type(t) is str for t in texts):
                    return texts
            except Exception:  # noqa: BLE001 - anything unusual: RawRecord decides, with its exact message
                pass
        out: list[str] = []
        offset = self.offset
        for k, line in enumerate(self.data.split(b"\n")):
            if line and not line.isspace():
                out.append(RawRecord(line + b"\n", self.name, self.lineno + k, offset, self.field, self.errors).text())
            offset += len(line) + 1
        return out


@dataclasses.dataclass(frozen=True)
class RawRecord:
    """A JSON Lines record read but not yet decoded; ``text()`` decodes it (``prepare`` does so in its workers).

    Attributes:
        data: the line's bytes. name: the file's name. lineno: its line number (from 1). offset: the line's byte
        offset in the (uncompressed) file. field: the field holding the text. errors: Python's decode errors mode.
    """

    data: bytes
    name: str
    lineno: int
    offset: int
    field: str
    errors: str

    def __len__(self) -> int:
        return len(self.data)

    def text(self) -> str:
        """The record's text.

        Raises:
            ValueError: naming the file and line: undecodable bytes (with the byte offset), not JSON, not an object,
                no such field, or a field that is not a string.
        """
        where, field = f"{self.name}:{self.lineno}", self.field
        try:
            line = self.data.decode("utf-8", errors=self.errors)
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"{where}: byte {self.offset + exc.start:,} of the file is not valid UTF-8 "
                f"(0x{self.data[exc.start]:02x}: {exc.reason}). "
                f"{_gzip_hint(self.data) if self.lineno == 1 else ''}{_FIX_UTF8}"
            ) from None
        skip = " Or pass --on-bad-record skip (on_bad_record='skip') to leave such records out."
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            hint = _gzip_hint(self.data) if self.lineno == 1 else ""
            raise BadRecordError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}). "
                             f"{hint}Fix the line, or remove it.{skip}") from None
        except RecursionError:  # Python's parser recurses once per level of nesting
            raise BadRecordError(f"{where}: the record is nested too deeply to parse (more than about "
                             f"{sys.getrecursionlimit():,} levels of arrays or objects). Fix the line, or remove "
                             f"it.{skip}") from None
        if not isinstance(record, dict):
            raise BadRecordError(f"{where}: the line is a JSON {_json_type(record)}, "
                             f"not an object with a {field!r} field.{skip}")
        if field not in record:
            keys = ", ".join(map(repr, list(record)[:8])) or "none"
            raise BadRecordError(f"{where}: the record has no field {field!r} (its fields: {keys}). "
                                 f"Pass the right one with --field (field=...).{skip}")
        text = record[field]
        if not isinstance(text, str):
            what = "null" if text is None else f"a JSON {_json_type(text)}"
            raise BadRecordError(f"{where}: field {field!r} is {what}, not a string. Fix the record, or remove it."
                                 f"{skip}")
        if b"\\u" in self.data:  # only a \u escape can give a lone surrogate: strict UTF-8 never decodes one
            text = self._surrogates(text, where)
        return text

    def _surrogates(self, text: str, where: str) -> str:
        """Lone surrogates (half of a UTF-16 pair, from an escape like ``\\ud800``) are not text: under ``strict``
        an error, under ``replace`` U+FFFD, under ``skip`` dropped, as undecodable bytes are."""
        found = _LONE_SURROGATE.search(text)
        if found is None:
            return text
        if self.errors == "strict":
            raise ValueError(
                f"{where}: field {self.field!r} holds a lone surrogate (\\u{ord(found.group()):04x}, half of a UTF-16 "
                f"pair) at character {found.start():,}: it is not text. {_FIX_UTF8}")
        return _LONE_SURROGATE.sub("\ufffd" if self.errors == "replace" else "", text)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def _json_type(value: object) -> str:
    """The JSON name of a parsed value's type: object, array, string, number, boolean, null."""
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _gzip_hint(head: bytes) -> str:
    """A sentence for text that starts with gzip's magic bytes, else ''."""
    if head[:2] != b"\x1f\x8b":
        return ""
    return ("The input looks gzip-compressed (it starts with bytes 1f 8b): name the file with its .gz suffix, or "
            "decompress it first (gunzip -c FILE.gz | lmfeed prepare - ...). ")
