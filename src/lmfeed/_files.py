"""Files that appear whole: written under a temporary name beside the target, then renamed into place.

Every file lmfeed writes outside a store (a checkpoint, a tokenizer, a picture, a cache entry, an exported
``.bin``, the training log's tables) goes through :func:`written_whole`, so a crash, a full disk or Ctrl-C leaves
either the old file or the new one at the path, never half of one, and no temporary file behind. Stores have their
own staging directory (:mod:`lmfeed.store.writer`), which renames a whole directory the same way.

Example:
    >>> with written_whole("notes.txt", "w") as f:  # doctest: +SKIP
    ...     f.write("hello")
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["written_whole"]


def _temporary_beside(path: str | os.PathLike[str]) -> Path:
    """A name for a temporary file beside ``path`` (hidden, unique to this process and call)."""
    target = Path(path)
    return target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


@contextmanager
def written_whole(path: str | os.PathLike[str], mode: str = "wb", *, fsync: bool = False,
                  encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on a clean exit rename it to ``path``, else delete it.

    Args:
        path: the file to write; its directory must exist.
        mode: ``"wb"`` (default) or ``"w"`` (text; ``encoding`` then defaults to UTF-8).
        fsync: flush the file to the disk before the rename (for what must survive a power cut: a tokenizer, an
            export).
        encoding: for text mode.

    The temporary file gets the permissions the umask gives (not ``mkstemp``'s private 0600): what is written is
    shared like any file the user makes.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', but got {mode!r}.")
    target = Path(path)
    tmp = _temporary_beside(target)
    text = mode == "w"
    try:
        with open(tmp, "x" if text else "xb", encoding=(encoding or "utf-8") if text else None) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
