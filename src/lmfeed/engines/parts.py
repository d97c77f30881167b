"""Part stores: what one task of a distributed ``prepare`` writes, and the merge that joins them into the store.

A part is a store-like directory (``tokens.npy``, ``doc_starts.npy``, ``metadata.json`` with format
``"lmfeed-part"``) holding one task's documents with separators between them, but none before the first. A part
whose task starts inside a text file's document begins with that document's continuation: its ids before
``doc_starts[0]`` belong to the previous part's last document. Parts appear whole (temp name + rename) and carry a
key of everything that decides their bytes, so a rerun keeps the ones that are still right.

The merge reads the parts in plan order and writes exactly the stream the single-machine ``prepare`` writes:
documents in corpus order, a separator before each but the first, continuations joined without one, and (with a
validation split) each document routed by its index in the whole corpus, as ``prepare`` routes it.
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lmfeed.engines.location import PartsLocation
from lmfeed.engines.plan import PlannedTask, Unit
from lmfeed.store.encode_pool import Task, encoder
from lmfeed.store.format import DOC_STARTS, TOKENS
from lmfeed.store.merge import _write_documents
from lmfeed.store.prepare import _PIECE_CHARS, _pieces, val_mask
from lmfeed.store.writer import StoreWriter
from lmfeed.text.backends import Backend
from lmfeed.text.sources import _FIX_UTF8, _PY_ERRORS, InputFile, RawRecord, ReadStats, iter_document_blocks

__all__ = ["EngineError", "PartOptions", "PartResult", "write_part", "part_key", "part_name", "read_part",
           "merge_parts"]

PART_FORMAT = "lmfeed-part"
PART_VERSION = 1
_BLOCK = 1 << 20
_MERGE_TOKENS = 1 << 24
_MERGE_DOCS = 4096


class EngineError(ConnectionError):
    """The engine could not run the work: no cluster to reach, a worker lost more often than ``max_retries``, or an
    output directory that the nodes do not share."""


@dataclasses.dataclass(frozen=True)
class PartOptions:
    """What every task needs to encode alike: the tokenizer and the options of ``prepare`` that change ids."""

    tokenizer: Any  # a registered name (str) or a tiktoken.Encoding: both pickle
    fingerprint: str
    backend: Backend
    allow_special: bool
    errors: str
    field: str
    dtype: str
    eot_id: int | None
    splittable: bool


@dataclasses.dataclass(frozen=True)
class PartResult:
    """What a finished task reports: its index, tokens and documents written, and whether it was already done."""

    index: int
    num_tokens: int
    num_documents: int
    reused: bool = False


def part_key(task: PlannedTask, files: Sequence[InputFile], options: PartOptions, stamps: Sequence[Any]) -> str:
    """A short hash of everything that decides a part's bytes: its units, their files (path, size, mtime) and the
    encoding options. ``stamps[i]`` is file ``i``'s ``(size, mtime_ns)``."""
    spec = {
        "version": PART_VERSION,
        "units": [[files[u.file].name, str(files[u.file].path), getattr(files[u.file], "url", None),
                   list(stamps[u.file]), u.start, u.end, u.continues, u.row_groups] for u in task.units],
        "options": {k: v for k, v in dataclasses.asdict(options).items() if k not in ("tokenizer", "backend")},
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def part_name(task: PlannedTask, key: str) -> str:
    return f"part-{task.index:05d}-{key}"


# ---- reading a task's units --------------------------------------------------------------------------------------


def _range_blocks(file: InputFile, unit: Unit, py_errors: str, field: str, doc: int,
                  counter: list[int]) -> Iterator[tuple[int, str | RawRecord]]:
    """Documents of bytes ``[unit.start, unit.end)`` of an uncompressed file, as ``iter_document_blocks`` gives
    them; byte offsets in errors are the file's."""
    assert file.path is not None and unit.end is not None
    with open(file.path, "rb") as f:
        f.seek(unit.start)
        left = unit.end - unit.start
        if file.format == "jsonl":
            offset = unit.start
            while left > 0:
                raw = f.readline(left)
                if not raw:
                    break
                line_offset, offset, left = offset, offset + len(raw), left - len(raw)
                if raw.isspace():
                    continue
                try:
                    text = RawRecord(raw, file.name, 0, line_offset, field, py_errors).text()
                except ValueError:  # a range does not know its line numbers: count them, on this failure only
                    lineno = _line_number(file.path, line_offset)
                    RawRecord(raw, file.name, lineno, line_offset, field, py_errors).text()  # the same, numbered
                    raise
                yield doc + counter[0], text
                counter[0] += 1
            return
        decoder = codecs.getincrementaldecoder("utf-8")(errors=py_errors)
        offset = unit.start
        yielded = False
        while True:
            data = f.read(min(_BLOCK, left))
            left -= len(data)
            final = not data
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(data, final)
            except UnicodeDecodeError as exc:
                at = offset - pending + exc.start
                raise ValueError(f"{file.name}: byte {at:,} is not valid UTF-8 (0x{exc.object[exc.start]:02x}: "
                                 f"{exc.reason}). {_FIX_UTF8}") from None
            offset += len(data)
            if text or (final and not yielded):
                yielded = True
                yield doc + counter[0], text
            if final:
                counter[0] += 1
                return


def _unit_blocks(task: PlannedTask, files: Sequence[InputFile], options: PartOptions
                 ) -> Iterator[tuple[int, str | RawRecord]]:
    """The task's documents as ``(local_index, block)``; a whole file is read by the text stage itself."""
    counter = [0]
    for unit in task.units:
        file = files[unit.file]
        if unit.row_groups:
            from lmfeed.text.parquet import iter_row_group_texts

            for text in iter_row_group_texts(file.path, field=options.field, name=file.name,
                                             row_groups=range(unit.start, unit.end or 0)):
                yield counter[0], text
                counter[0] += 1
        elif unit.end is None:
            stats = ReadStats()
            for doc, block in iter_document_blocks([file], field=options.field, errors=options.errors,  # type: ignore[arg-type]
                                                   stats=stats, raw_below=_PIECE_CHARS):
                yield counter[0] + doc, block
            counter[0] += stats.documents
        else:
            yield from _range_blocks(file, unit, _PY_ERRORS[options.errors], options.field, 0, counter)


# ---- writing a part ----------------------------------------------------------------------------------------------

def write_part(task: PlannedTask, files: Sequence[InputFile], options: PartOptions, parts: PartsLocation,
               key: str) -> PartResult:
    """Encode one task into part ``part-INDEX-KEY`` at ``parts`` (skipped when that part is already there, whole).

    Runs anywhere: in a Ray worker, or in this process. The part appears whole; a rerun of a task that already
    wrote it (a worker lost after the rename) finds it and keeps it, since the same task writes the same bytes.
    """
    if not parts.visible():  # never created here: on a node without the shared filesystem it is missing
        import socket

        raise EngineError(f"Node {socket.gethostname()} cannot see {parts}, where the parts go: OUT must be on a "
                          "filesystem every node sees (or pass parts= an fsspec URL every node can write).")
    name = part_name(task, key)
    done = parts.metadata(name)
    if done is not None and done.get("format") == PART_FORMAT and done.get("version") == PART_VERSION:
        return PartResult(task.index, done["num_tokens"], done["num_documents"], reused=True)
    if options.backend != "tiktoken" and options.tokenizer == "gpt2":
        from lmfeed.text.backends import preload

        preload()  # a new worker builds fastokens on a thread while tiktoken's encoding is built, as prepare does
    dtype = options.dtype
    eot_array = np.array([0 if options.eot_id is None else options.eot_id], dtype=dtype)
    with parts.staging(name) as tmp:
        writer = StoreWriter(tmp, dtype=dtype, eot_id=options.eot_id)
        try:
            # bos=False: the engine writes EOS-style (or separator-free) stores, as its merge joins them
            with encoder(1, (options.tokenizer, options.allow_special, dtype, options.backend, False),
                         eot_array) as run:
                for result in run(_tasks(task, files, options)):
                    for ids, starts in result.values():
                        writer.write_chunk(ids, starts)
            writer.finish({"format": PART_FORMAT, "version": PART_VERSION, "task": task.index, "key": key,
                           "continues": task.units[0].continues})
        except BaseException:
            writer.close()
            raise
    return PartResult(task.index, writer.num_tokens, writer.num_documents)


def _tasks(task: PlannedTask, files: Sequence[InputFile], options: PartOptions) -> Iterator[Task]:
    """The encode pool's tasks (~1 MB each) for this part, exactly as ``prepare`` makes them for one part."""
    started = False
    first_doc = True
    batch: Task = []
    size = 0
    for doc, text, starts in _pieces(_unit_blocks(task, files, options), options.splittable, _PIECE_CHARS):
        if first_doc and doc == 0 and task.units[0].continues:
            starts = False  # the previous part's last document goes on here
        first_doc = first_doc and doc == 0
        separator = starts and started and options.eot_id is not None
        started = started or starts
        batch.append((0, text, starts, separator))
        size += len(text) + 64
        if size >= _PIECE_CHARS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


# ---- reading parts and merging them ------------------------------------------------------------------------------


def read_part(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A part's ``(tokens, doc_starts)``, memory-mapped read-only."""
    tokens = np.load(path / TOKENS, mmap_mode="r") if (path / TOKENS).stat().st_size > 128 else np.zeros(0)
    starts = np.load(path / DOC_STARTS) if (path / DOC_STARTS).stat().st_size > 128 else np.zeros(0, np.int64)
    return tokens, starts


def merge_parts(parts: Iterable[Path], writers: Sequence[StoreWriter], *, val_fraction: float = 0.0,
                seed: int = 0) -> int:
    """Append the parts (local directories, in plan order) to the store writers (``[train]``, or ``[train, val]``).

    Returns:
        The number of documents in the corpus (every part's, both splits').
    """
    index = 0  # documents merged so far: the corpus index of the next one
    last = 0  # the writer holding the last document (where a continuation goes)
    for path in parts:
        tokens, starts = read_part(path)
        lead = int(starts[0]) if len(starts) else len(tokens)
        if lead:  # the previous part's last document goes on
            _copy(writers[last], tokens, 0, lead, np.zeros(0, np.int64))
        if not len(starts):
            continue
        if not val_fraction:
            w = writers[0]
            if w.num_documents and w.eot_id is not None:
                w.write_chunk(np.array([w.eot_id], dtype=w.dtype), np.zeros(0, np.int64))
            _copy(w, tokens, lead, len(tokens), starts - lead)
        else:
            sep = 1 if writers[0].eot_id is not None else 0
            ends = np.append(starts[1:] - sep, len(tokens))
            for a in range(0, len(starts), _MERGE_DOCS):
                ks = np.arange(index + a, index + min(a + _MERGE_DOCS, len(starts)))
                val = val_mask(ks, val_fraction=val_fraction, seed=seed)
                for part in (0, 1):
                    docs = [tokens[starts[j]:ends[j]] for j in (np.flatnonzero(val == bool(part)) + a).tolist()]
                    _write_documents(writers[part], docs)
            last = int(val_mask(np.array([index + len(starts) - 1]), val_fraction=val_fraction, seed=seed)[0])
        index += len(starts)
    return index


def _copy(writer: StoreWriter, tokens: np.ndarray, a: int, b: int, starts: np.ndarray) -> None:
    """Append ``tokens[a:b]`` a block at a time; ``starts`` are document starts relative to ``a``."""
    for lo in range(a, b, _MERGE_TOKENS):
        hi = min(lo + _MERGE_TOKENS, b)
        i, j = np.searchsorted(starts, [lo - a, hi - a])
        writer.write_chunk(np.asarray(tokens[lo:hi]), starts[i:j] - (lo - a))
    tail = starts[np.searchsorted(starts, b - a):]  # empty documents at the very end start at b
    if len(tail):
        writer.write_chunk(np.zeros(0, dtype=writer.dtype), tail - (b - a))


def _line_number(path: Path, offset: int) -> int:
    """The line (from 1) that starts at byte ``offset`` of ``path``."""
    newlines = 0
    with open(path, "rb") as f:
        left = offset
        while left > 0:
            data = f.read(min(_BLOCK, left))
            if not data:
                break
            newlines += data.count(b"\n")
            left -= len(data)
    return newlines + 1
