"""Where text comes from: the embedded default corpus and UTF-8 text files, read with clear errors.

A corpus is a sequence of documents (strings). The default corpus is ``pydoc_data.topics``, the Python language
reference that ships with every CPython: 79 documents, ~465,000 characters of English prose and code.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["python_reference", "read_text", "DEFAULT_CORPUS_NAME"]

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
        raise FileNotFoundError(f"No such file: {str(p)!r}. Check the path, or run without it to use the default corpus.")
    if p.is_dir():
        raise FileNotFoundError(f"{str(p)!r} is a directory, not a text file. Name a file inside it.")
    data = p.read_bytes()
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{str(p)!r} is not valid UTF-8: byte {exc.start:,} is 0x{data[exc.start]:02x} ({exc.reason}). "
            "Convert the file to UTF-8, or read it with errors='replace' to substitute U+FFFD."
        ) from None
