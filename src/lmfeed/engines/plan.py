"""Planning a corpus into tasks for a distributed ``prepare``: whole files, and byte ranges of large ones.

A plan is a pure function of the input files (their order and sizes), the tokenizer's pre-tokenizer and
``num_tasks``, so every run of the same command over the same files makes the same tasks (which is what lets a
rerun reuse the parts that are already done). Tasks are about ``total_bytes / num_tasks`` bytes each:

```
files:   a.txt (small) | b.jsonl (large) ........................... | c.txt.gz | d.txt (large, GPT-2) .....
tasks:   [a.txt, b.jsonl 0:k1) [b.jsonl k1:k2) [b.jsonl k2:end, c.txt.gz]  [d.txt 0:m1) [d.txt m1:end)
                   ^ cut at the start of a line      ^ whole (compressed)        ^ cut where GPT-2 cuts anyway
```

Parquet files are cut between row groups (a row is a document, a row group is what pyarrow reads at once). JSON
Lines files are cut at line starts (a record is a document, so no document is split). A text file is one
document: it is cut only where its GPT-2 encoding is sure to cut anyway (a printable ASCII character followed by a
space or a newline; see ``lmfeed.store.prepare.safe_split``), and the task after the cut *continues* that document
(no separator, no new document start). Compressed files, files of other formats and text under a tokenizer with
another pre-tokenizer than GPT-2's are planned whole.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from lmfeed.text.sources import InputFile

__all__ = ["Unit", "PlannedTask", "plan_tasks", "splittable"]

# A printable ASCII non-space byte, then a space or a newline: ASCII bytes are never part of a multi-byte UTF-8
# sequence, so the decoded text has that character just before the cut whatever the decode-error mode, and GPT-2's
# pre-tokenizer always ends a piece there (a non-space followed by " " or "\n").
_TEXT_CUT = re.compile(rb"[\x21-\x7e][\n ]")
_SCAN = 1 << 20  # bytes read at a time while looking for a cut


@dataclasses.dataclass(frozen=True)
class Unit:
    """A part of one input file: bytes ``[start, end)`` (``end=None``: the whole file, read by the text stage).

    Attributes:
        file: index into the plan's file list.
        start: the first byte (0 for a whole file).
        end: one past the last byte, or ``None`` for the whole file.
        continues: the unit starts inside a text file's one document, continuing the previous unit's.
        row_groups: ``start`` and ``end`` count a Parquet file's row groups, not bytes.
    """

    file: int
    start: int = 0
    end: int | None = None
    continues: bool = False
    row_groups: bool = False  # a Parquet file's row groups [start, end), not bytes


@dataclasses.dataclass(frozen=True)
class PlannedTask:
    """One task: its index in the plan, its units (in reading order) and their bytes on disk."""

    index: int
    units: tuple[Unit, ...]
    size: int


def splittable(file: InputFile, *, gpt2_pattern: bool) -> bool:
    """Whether ``file`` can be cut into byte ranges: uncompressed JSON Lines, or uncompressed text under GPT-2."""
    if file.path is None or file.compressed or file.size is None or getattr(file, "compression", None):
        return False  # stdin, a URL, a compressed file (gzip by name, or any codec by its first bytes)
    return file.format == "jsonl" or (file.format == "text" and gpt2_pattern)


def _line_start_after(path: str, offset: int, size: int) -> int:
    """The first line start at or after ``offset`` (a cut before it), or ``size`` if there is none."""
    with open(path, "rb") as f:
        f.seek(offset - 1)
        if f.read(1) == b"\n":
            return offset
        f.readline()
        return min(f.tell(), size)


def _text_cut_after(path: str, offset: int, size: int) -> int:
    """The first safe cut at or after ``offset`` (between a printable ASCII byte and a space or newline)."""
    with open(path, "rb") as f:
        pos = offset - 1  # the byte before the cut is part of the pattern
        while pos < size - 1:
            f.seek(pos)
            data = f.read(_SCAN + 1)
            m = _TEXT_CUT.search(data)
            if m is not None:
                return pos + m.start() + 1
            pos += _SCAN
    return size


def _row_group_bytes(file: InputFile) -> list[int]:
    """Each row group's bytes on disk (its column chunks, compressed), from the Parquet footer alone."""
    from lmfeed.text.parquet import open_parquet

    meta = open_parquet(file.path, file.name).metadata
    return [sum(meta.row_group(g).column(c).total_compressed_size for c in range(meta.num_columns))
            for g in range(meta.num_row_groups)] or [0]


def plan_tasks(files: Sequence[InputFile], num_tasks: int, *, gpt2_pattern: bool) -> list[PlannedTask]:
    """Cut ``files`` into about ``num_tasks`` tasks of similar size, in reading order.

    Args:
        files: from ``lmfeed.text.sources.expand_inputs`` (every one with a size: no stdin).
        num_tasks: how many tasks to aim for (at least 1); fewer come out when files cannot be cut.
        gpt2_pattern: the tokenizer pre-tokenizes as GPT-2 does, so text files may be cut at safe points.

    Returns:
        The tasks; their units, read one after the other, cover every file exactly once.

    Example:
        >>> [t.units for t in plan_tasks(files, 2, gpt2_pattern=True)]  # doctest: +SKIP
        [(Unit(file=0, start=0, end=4104, continues=False),), (Unit(file=0, start=4104, end=None, continues=True),)]
    """
    total = sum(f.size or 0 for f in files)
    target = max(1, -(-total // max(1, num_tasks)))  # ceil: at most num_tasks tasks for files that cut anywhere
    tasks: list[PlannedTask] = []
    units: list[Unit] = []
    filled = 0

    def close() -> None:
        nonlocal units, filled
        if units:
            tasks.append(PlannedTask(len(tasks), tuple(units), filled))
        units, filled = [], 0

    for i, f in enumerate(files):
        size = f.size or 0
        pos, continues = 0, False
        if f.format == "parquet" and f.path is not None and size > target - filled:
            groups = _row_group_bytes(f)
            first = 0
            for g, nbytes in enumerate(groups[:-1]):  # the last group always goes to the unit after the loop
                filled += nbytes
                if filled >= target:
                    units.append(Unit(i, first, g + 1, row_groups=True))
                    close()
                    first = g + 1
            if first:
                units.append(Unit(i, first, len(groups), row_groups=True))
                filled += groups[-1]
                if filled >= target:
                    close()
                continue
            filled -= sum(groups[:-1])  # not cut: planned whole below
        elif splittable(f, gpt2_pattern=gpt2_pattern):
            assert f.path is not None
            find = _line_start_after if f.format == "jsonl" else _text_cut_after
            while size - pos > target - filled:
                cut = find(str(f.path), pos + max(1, target - filled), size)
                if cut >= size:
                    break
                units.append(Unit(i, pos, cut, continues))
                filled += cut - pos
                close()
                pos, continues = cut, f.format == "text"
        units.append(Unit(i, pos, None if pos == 0 else size, continues))
        filled += size - pos
        if filled >= target:
            close()
    close()
    return tasks
