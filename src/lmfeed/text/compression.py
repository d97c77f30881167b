"""Compressed inputs, recognised by their first bytes (not their names): gzip, zstd, bzip2, xz.

``detect(head)`` names the compression of a file from its magic bytes; ``decompressed(raw, kind, name)`` wraps a
binary stream so that reading it gives the uncompressed bytes, streaming (memory follows the read size, never the
file). A truncated or corrupt file is a ``CorruptInputError`` naming the file and the byte offset on disk where
decoding failed, never a short read taken for the end: a zstd stream that stops inside a frame is an error (the
``zstandard`` stream reader would end quietly there), and so is a gzip, bzip2 or xz stream without its end marker.

Example:
    >>> detect(b"\\x28\\xb5\\x2f\\xfd\\x00"), detect(b"BZh91AY"), detect(b"plain text")
    ('zstd', 'bz2', None)
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from typing import Any

__all__ = ["COMPRESSED_SUFFIXES", "CorruptInputError", "MAGIC", "decompressed", "detect", "strip_suffix"]

# the first bytes of each format (RFC 1952, RFC 8878, bzip2's "BZh" + block size, xz's 6-byte header magic)
MAGIC: dict[str, bytes] = {
    "gzip": b"\x1f\x8b",
    "zstd": b"\x28\xb5\x2f\xfd",
    "bz2": b"BZh",
    "xz": b"\xfd7zXZ\x00",
}
COMPRESSED_SUFFIXES = (".gz", ".zst", ".zstd", ".bz2", ".xz")
_READ = 1 << 16


class CorruptInputError(ValueError):
    """A compressed input that ends early or does not decode; names the file and the byte offset."""


def detect(head: bytes) -> str | None:
    """The compression whose magic bytes ``head`` starts with (``"gzip"``, ``"zstd"``, ``"bz2"``, ``"xz"``), or None."""
    for kind, magic in MAGIC.items():
        if head.startswith(magic):
            return kind
    return None


def strip_suffix(name: str) -> str:
    """``name`` without a compression suffix (``web.jsonl.zst`` -> ``web.jsonl``)."""
    lower = name.lower()
    for suffix in COMPRESSED_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _fix(kind: str) -> str:
    tool = {"gzip": "gzip -t", "zstd": "zstd -t", "bz2": "bzip2 -t", "xz": "xz -t"}[kind]
    return f"Check it with `{tool}` and copy or download it again."


class _ZstdRaw(io.RawIOBase):
    """zstd frames, one after another, decoded as a stream; an incomplete last frame is an error."""

    def __init__(self, raw: Any, name: str) -> None:
        import zstandard

        self._raw, self._name = raw, name
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._error = zstandard.ZstdError
        self._buf = b""
        self._in_frame = False
        self._done = False

    def readable(self) -> bool:
        return True

    def _offset(self) -> int:
        try:
            return int(self._raw.tell())
        except (OSError, AttributeError, ValueError):
            return -1

    def readinto(self, b: Any) -> int:
        while not self._buf:
            if self._done:
                return 0
            data = self._raw.read(_READ)
            if not data:
                if self._in_frame:
                    raise CorruptInputError(f"{self._name}: the zstd stream ends inside a frame at byte "
                                            f"{self._offset():,} (a truncated file). {_fix('zstd')}")
                self._done = True
                return 0
            while data:
                if not self._in_frame:
                    self._obj = self._dctx.decompressobj()
                    self._in_frame = True
                try:
                    self._buf += self._obj.decompress(data)
                except self._error as exc:
                    raise CorruptInputError(f"{self._name}: corrupt zstd data before byte {self._offset():,} ({exc}). "
                                            f"{_fix('zstd')}") from None
                if self._obj.eof:
                    self._in_frame = False
                    data = self._obj.unused_data
                else:
                    data = b""
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class _Checked:
    """A gzip, bzip2 or xz reader whose errors name the file and the offset on disk."""

    def __init__(self, stream: Any, raw: Any, kind: str, name: str) -> None:
        self._stream, self._raw, self._kind, self._name = stream, raw, kind, name

    def _call(self, method: str, *args: Any) -> bytes:
        try:
            return getattr(self._stream, method)(*args)  # type: ignore[no-any-return,unused-ignore]
        except (EOFError, OSError, lzma.LZMAError, gzip.BadGzipFile) as exc:
            try:
                at = f" at byte {int(self._raw.tell()):,}"
            except (OSError, AttributeError, ValueError):
                at = ""
            what = "ends early (a truncated file)" if isinstance(exc, EOFError) else f"is corrupt ({exc})"
            raise CorruptInputError(f"{self._name}: the {self._kind} stream {what}{at}. {_fix(self._kind)}") from None

    def read(self, n: int = -1, /) -> bytes:
        return self._call("read", n)

    def readline(self) -> bytes:
        return self._call("readline")


def decompressed(raw: Any, kind: str, name: str) -> Any:
    """A reader (``read``, ``readline``) of the uncompressed bytes of ``raw``, compressed with ``kind``.

    Raises (while reading):
        CorruptInputError (a ValueError): the stream is truncated or corrupt (names ``name`` and the byte offset).
    """
    if kind == "zstd":
        return _Checked(io.BufferedReader(_ZstdRaw(raw, name), buffer_size=_READ), raw, kind, name)
    if kind == "gzip":
        return _Checked(gzip.GzipFile(fileobj=raw, mode="rb"), raw, kind, name)
    if kind == "bz2":
        return _Checked(bz2.BZ2File(raw, mode="rb"), raw, kind, name)
    if kind == "xz":
        return _Checked(lzma.LZMAFile(raw, mode="rb"), raw, kind, name)
    raise ValueError(f"Unknown compression {kind!r}; lmfeed reads {', '.join(MAGIC)}.")
