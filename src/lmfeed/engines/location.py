"""Where part stores live: a directory every node sees (the default, beside OUT), or an fsspec URL.

A ``PartsLocation`` is a plain value (its root, a path or a URL), so it travels to the workers. On a shared
filesystem a part is written in a temporary directory beside its final name and renamed into place; at a URL
(``s3://bucket/prefix``, any fsspec filesystem every node can write) it is written on the worker's local disk and
uploaded file by file, ``metadata.json`` last, so a part without it is not there yet. The driver reads parts back
one at a time for the merge (from a URL: downloaded to a temporary directory beside OUT, then deleted).

Only names this module makes are ever listed or deleted: ``part-NNNNN-KEY``, its temporary
``.part-NNNNN-KEY.tmp-HEX`` and ``.visible-TOKEN``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["PartsLocation", "OURS"]

OURS = re.compile(r"part-\d{5,}-[0-9a-f]{16}|\.part-\d{5,}-[0-9a-f]{16}\.tmp-[0-9a-f]{8}|\.visible-[0-9a-f]{16}")
_FILES = ("tokens.npy", "doc_starts.npy", "metadata.json")  # uploaded in this order: the metadata marks it whole


@dataclasses.dataclass(frozen=True)
class PartsLocation:
    """A directory of parts: ``root`` is a local path or an fsspec URL (``scheme://...``)."""

    root: str

    @property
    def is_url(self) -> bool:
        return "://" in self.root

    def __str__(self) -> str:
        return self.root

    def _fs(self) -> tuple[Any, str]:
        import fsspec

        fs, path = fsspec.core.url_to_fs(self.root)
        return fs, path.rstrip("/")

    def join(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}" if self.is_url else os.path.join(self.root, name)

    def create(self) -> None:
        """Make the directory (a URL's prefix needs nothing on object stores; elsewhere it is made)."""
        if self.is_url:
            fs, path = self._fs()
            fs.makedirs(path, exist_ok=True)
        else:
            os.makedirs(self.root, exist_ok=True)

    def visible(self) -> bool:
        """Whether this process sees the directory (a worker's check before it writes anything)."""
        if self.is_url:
            return True  # an object store has no directories to miss; a write that fails says why
        return os.path.isdir(self.root)

    def write_text(self, name: str, text: str) -> None:
        if self.is_url:
            fs, path = self._fs()
            fs.pipe_file(f"{path}/{name}", text.encode())
        else:
            Path(self.root, name).write_text(text)

    def read_text(self, name: str) -> str | None:
        try:
            if self.is_url:
                fs, path = self._fs()
                return fs.cat_file(f"{path}/{name}").decode()
            return Path(self.root, name).read_text()
        except (OSError, UnicodeDecodeError):
            return None

    def remove(self, name: str) -> None:
        if not OURS.fullmatch(name):
            raise ValueError(f"refusing to delete {self.join(name)!r}: not a part of lmfeed's")
        if self.is_url:
            fs, path = self._fs()
            with contextlib.suppress(FileNotFoundError):
                fs.rm(f"{path}/{name}", recursive=True)
            return
        p = Path(self.root, name)
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)

    def names(self) -> list[str]:
        """Our entries here (parts and markers), sorted."""
        if self.is_url:
            fs, path = self._fs()
            try:
                found = [e.rstrip("/").rsplit("/", 1)[-1] for e in fs.ls(path, detail=False)]
            except FileNotFoundError:
                found = []
        else:
            found = os.listdir(self.root) if os.path.isdir(self.root) else []
        return sorted(n for n in found if OURS.fullmatch(n))

    def metadata(self, name: str) -> dict[str, Any] | None:
        """A whole part's ``metadata.json``, or ``None``."""
        text = self.read_text(f"{name}/metadata.json")
        if text is None:
            return None
        try:
            meta = json.loads(text)
        except ValueError:
            return None
        return meta if isinstance(meta, dict) else None

    @contextlib.contextmanager
    def staging(self, name: str) -> Iterator[Path]:
        """A local directory to write part ``name`` in; on success it is published whole, on error deleted."""
        import secrets

        base = self.root if not self.is_url else tempfile.gettempdir()
        tmp = Path(base, f".{name}.tmp-{secrets.token_hex(4)}")
        try:
            yield tmp
            self._publish(tmp, name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _publish(self, tmp: Path, name: str) -> None:
        if self.is_url:
            fs, path = self._fs()
            fs.makedirs(f"{path}/{name}", exist_ok=True)  # nothing on object stores; a directory elsewhere
            for f in _FILES:
                fs.put_file(str(tmp / f), f"{path}/{name}/{f}")
            return
        try:
            os.rename(tmp, Path(self.root, name))
        except OSError:  # another attempt of this task got there first: its part has the same bytes
            if self.metadata(name) is None:
                raise

    @contextlib.contextmanager
    def fetch(self, name: str, scratch: Path) -> Iterator[Path]:
        """A local directory holding part ``name`` (a URL's is downloaded into ``scratch`` and deleted after)."""
        if not self.is_url:
            yield Path(self.root, name)
            return
        fs, path = self._fs()
        local = scratch / name
        local.mkdir(parents=True)
        try:
            for f in _FILES:
                fs.get_file(f"{path}/{name}/{f}", str(local / f))
            yield local
        finally:
            shutil.rmtree(local, ignore_errors=True)

    def remove_all(self) -> None:
        """Delete our entries, and the directory itself when that leaves it empty (a local one)."""
        for name in self.names():
            self.remove(name)
        if not self.is_url:
            with contextlib.suppress(OSError):
                os.rmdir(self.root)
