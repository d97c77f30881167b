"""Parquet inputs (FineWeb, FineWeb-Edu, ClimbMix): each row is a document, its text in one string column.

Read one row group at a time with pyarrow, and only the text column, so memory follows the row group, never the
file. ``num_row_groups`` and ``iter_row_group_texts(..., row_groups=[i])`` let an engine plan a task per row group.

Example:
    >>> for text in iter_row_group_texts("train-00000.parquet", field="text"):  # doctest: +SKIP
    ...     print(len(text))
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["ParquetError", "PARQUET_MAGIC", "check_text_column", "iter_row_group_texts", "num_row_groups",
           "open_parquet"]

PARQUET_MAGIC = b"PAR1"
_SLICE_ROWS = 1024  # rows turned into Python strings at a time, inside one row group


class ParquetError(ValueError):
    """A Parquet input that cannot be read as documents: not Parquet, truncated, corrupt, or no string ``field``."""


def _require_pyarrow() -> Any:
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise ModuleNotFoundError("Reading Parquet needs pyarrow: pip install 'lmfeed[parquet]'.") from None
    return pq


def open_parquet(source: Any, name: str) -> Any:
    """``pyarrow.parquet.ParquetFile`` of ``source`` (a path or a binary file object).

    Raises:
        ParquetError: not a Parquet file, or a truncated one (names the file and its size).
    """
    pq = _require_pyarrow()
    import pyarrow as pa

    try:
        return pq.ParquetFile(source)
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        size = _size(source)
        raise ParquetError(f"{name}: not a readable Parquet file{size} ({' '.join(str(exc).split())[:160]}). A "
                           "truncated download loses the footer at the end of the file: copy or download it again."
                           ) from None


def _size(source: Any) -> str:
    try:
        n = os.path.getsize(source) if isinstance(source, (str, os.PathLike)) else source.size
        return f" ({int(n):,} bytes; its footer should end at byte {int(n):,})"
    except (OSError, AttributeError, TypeError, ValueError):
        return ""


def check_text_column(pf: Any, field: str, name: str) -> None:
    """Raise ParquetError unless ``pf`` has a string column ``field`` (the message lists the columns there are)."""
    import pyarrow as pa

    schema = pf.schema_arrow
    if field not in schema.names:
        columns = ", ".join(f"{n} ({t})" for n, t in zip(schema.names, schema.types, strict=True))
        raise ParquetError(f"{name} has no column {field!r}; its columns: {columns}. Pass --field (field=) with "
                           "the one that holds the text.")
    kind = schema.field(field).type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)):
        raise ParquetError(f"{name}: column {field!r} holds {kind}, not text (string). Pass --field (field=) with "
                           "a string column.")


def num_row_groups(source: Any, *, name: str | None = None) -> int:
    """How many row groups a Parquet file has (the unit an engine can give to one task)."""
    return int(open_parquet(source, name or str(source)).num_row_groups)


def iter_row_group_texts(source: Any, *, field: str = "text", name: str | None = None,
                         row_groups: Sequence[int] | None = None,
                         on_bad_record: str = "error", skipped: list[int] | None = None,
                         progress: Any = None) -> Iterator[str]:
    """The text of every row, in order, one row group in memory at a time.

    Args:
        source: a path or a binary file object. name: for messages (default ``str(source)``).
        field: the string column (default ``"text"``).
        row_groups: only these row groups, in this order (default all).
        on_bad_record: a null value: ``"error"`` (default) raises naming the file, row group and row; ``"skip"``
            leaves it out and counts it in ``skipped[0]``.
        progress: called with the compressed bytes of each row group read.

    Raises:
        ParquetError: see ``open_parquet`` and ``check_text_column``; a null row under ``on_bad_record="error"``; a
            row group that does not decode (names its byte offset in the file).
    """
    import pyarrow as pa

    shown = name or str(source)
    pf = open_parquet(source, shown)
    check_text_column(pf, field, shown)
    groups = range(pf.num_row_groups) if row_groups is None else row_groups
    first_row = 0
    starts = [0]
    for g in range(pf.num_row_groups):
        starts.append(starts[-1] + pf.metadata.row_group(g).num_rows)
    for g in groups:
        meta = pf.metadata.row_group(g)
        first_row = starts[g]
        try:
            column = pf.read_row_group(g, columns=[field]).column(0)
        except (pa.ArrowException, OSError) as exc:
            offset = meta.column(0).file_offset if meta.num_columns else 0
            raise ParquetError(f"{shown}: row group {g} (from byte {offset:,}) does not decode "
                               f"({' '.join(str(exc).split())[:160]}). The file is corrupt: copy or download it again."
                               ) from None
        row = first_row
        for chunk in column.chunks:
            if pa.types.is_dictionary(chunk.type):
                chunk = chunk.dictionary_decode()
            for at in range(0, len(chunk), _SLICE_ROWS):
                for text in chunk.slice(at, _SLICE_ROWS).to_pylist():
                    if text is None:
                        if on_bad_record != "skip":
                            raise ParquetError(f"{shown}: row {row:,} (row group {g}) has a null {field!r}. Pass "
                                               "--on-bad-record skip (on_bad_record='skip') to leave such rows out.")
                        if skipped is not None:
                            skipped[0] += 1
                    else:
                        yield text
                    row += 1
        if progress is not None:
            progress(meta.total_byte_size)
