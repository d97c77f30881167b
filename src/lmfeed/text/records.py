"""Documents from Python: any iterable of strings or of mappings with the text field, and Hugging Face ``datasets``.

A ``datasets.Dataset`` or ``IterableDataset`` is streamed, never materialised: only the text column is read, a
batch of rows at a time (``Dataset.iter``), so memory follows the batch, not the dataset.

Example:
    >>> list(iter_record_texts([{"text": "a"}, "b"], field="text", name="docs"))
    ['a', 'b']
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["BadRecordError", "describe", "is_dataset", "iter_record_texts"]

_BATCH = 1000


class BadRecordError(ValueError):
    """A record without a string text field (missing, null, or another type): names the record, field and keys."""


def is_dataset(obj: Any) -> bool:
    """Whether ``obj`` is a ``datasets.Dataset`` or ``IterableDataset`` (without importing ``datasets``)."""
    return type(obj).__module__.startswith("datasets.") and type(obj).__name__ in ("Dataset", "IterableDataset")


def describe(obj: Any) -> str:
    """How an in-memory input is named in messages and metadata: ``<datasets.Dataset>``, ``<list>``, ..."""
    kind = type(obj)
    return f"<datasets.{kind.__name__}>" if is_dataset(obj) else f"<{kind.__name__}>"


def _column_check(ds: Any, field: str, name: str) -> None:
    columns = getattr(ds, "column_names", None)
    if columns is not None and field not in columns:
        raise BadRecordError(f"{name} has no column {field!r}; its columns: {', '.join(map(repr, columns))}. Pass "
                             "field= with the one that holds the text.")
    features = getattr(ds, "features", None)
    feature = features.get(field) if features is not None else None
    dtype = getattr(feature, "dtype", None)
    if dtype is not None and dtype not in ("string", "large_string"):
        raise BadRecordError(f"{name}: column {field!r} holds {dtype}, not text (string). Pass field= with a string "
                             "column.")


def _rows(records: Any, field: str, name: str) -> Iterator[Any]:
    """Rows of ``records``: for a dataset, the values of ``field`` a batch at a time; else the items themselves."""
    if is_dataset(records):
        _column_check(records, field, name)
        ds = records.select_columns([field]) if hasattr(records, "select_columns") else records
        if hasattr(ds, "iter"):
            for batch in ds.iter(batch_size=_BATCH):
                yield from ({field: v} for v in batch[field])
            return
        yield from ds
        return
    if isinstance(records, (str, bytes, bytearray)):
        raise TypeError(f"{name}: a single {type(records).__name__} is not an iterable of documents. Pass a list of "
                        "documents, or a file path.")
    try:
        it = iter(records)
    except TypeError:
        raise TypeError(f"inputs must be paths, or an iterable of documents (str, or mappings with {field!r}), but "
                        f"got {type(records).__name__}.") from None
    yield from it


def iter_record_texts(records: Any, *, field: str, name: str, on_bad_record: str = "error",
                      skipped: list[int] | None = None) -> Iterator[str]:
    """The text of each record: a ``str`` is a document; a mapping's ``field`` is one.

    Args:
        records: an iterable of ``str`` or mappings, or a ``datasets`` dataset.
        field: the text field of mappings. name: for messages.
        on_bad_record: a record without a string ``field``: ``"error"`` (default) raises; ``"skip"`` leaves it out
            and counts it in ``skipped[0]``.

    Raises:
        BadRecordError (a ValueError): a bad record under ``"error"``: names its index, the field and its keys.
        TypeError: an item that is neither a ``str`` nor a mapping, or ``records`` that is not iterable.
    """
    for i, item in enumerate(_rows(records, field, name)):
        if isinstance(item, str):
            yield item
            continue
        if not isinstance(item, Mapping):
            raise TypeError(f"{name}: record {i:,} is a {type(item).__name__}; records must be str or mappings with "
                            f"{field!r}.")
        text = item.get(field)
        if isinstance(text, str):
            yield text
            continue
        if on_bad_record == "skip":
            if skipped is not None:
                skipped[0] += 1
            continue
        what = "has no" if field not in item else f"has a {type(text).__name__} for its"
        keys = ", ".join(map(repr, list(item)[:8])) or "none"
        raise BadRecordError(f"{name}: record {i:,} {what} {field!r} field (its keys: {keys}). Pass field= with the "
                             "text field, or on_bad_record='skip' (--on-bad-record skip) to leave such records out.")
