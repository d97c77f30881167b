"""Inputs at fsspec URLs (``s3://``, ``gs://``, ``hf://``, ``memory://``, ...), with globs, read as streams.

A URL names a file, a "directory" (a prefix: every file under it matching ``glob``), or a glob itself
(``s3://bucket/web/*.parquet``). Files are listed in sorted order, so the document order never depends on the store.
The protocol's own package does the work (``s3fs`` for ``s3://``: the ``s3`` extra). The output store stays local.

Example:
    >>> [u for u, _ in expand_url("memory://corpus", glob="*.txt")]  # doctest: +SKIP
    ['memory://corpus/a.txt', 'memory://corpus/b.txt']
"""

from __future__ import annotations

import fnmatch
from typing import Any

__all__ = ["RemoteError", "expand_url", "is_url", "open_url"]


class RemoteError(FileNotFoundError):
    """A URL that names nothing, or that cannot be read (no such bucket or key, no permission, no network)."""


def is_url(name: str) -> bool:
    """Whether ``name`` is an fsspec URL such as ``s3://bucket/key`` (``file://`` included)."""
    head, sep, _ = name.partition("://")
    return bool(sep) and head.replace("+", "").replace("-", "").isalnum() and len(head) > 1


def _fs(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ModuleNotFoundError:
        raise ModuleNotFoundError("URL inputs need fsspec (and the protocol's package): pip install 'lmfeed[s3]' "
                                  "for s3://.") from None
    try:
        return fsspec.core.url_to_fs(url)  # type: ignore[no-any-return,unused-ignore]
    except (ImportError, ValueError) as exc:
        protocol = url.partition("://")[0]
        raise RemoteError(f"{url}: cannot open {protocol}:// URLs ({' '.join(str(exc).split())[:160]}). Install the "
                          f"protocol's package (for s3://: pip install 'lmfeed[s3]').") from None


def _why(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def expand_url(url: str, *, glob: str = "*") -> list[tuple[str, int | None]]:
    """The files a URL names, as ``(url, size)`` in sorted order.

    Raises:
        RemoteError (a FileNotFoundError): nothing at the URL, or it cannot be listed or read (with the reason and
            the fix).
    """
    fs, path = _fs(url)
    protocol = url.partition("://")[0]

    def full(p: str) -> str:
        return p if "://" in p else f"{protocol}://{p.lstrip('/') if protocol != 'file' else p}"

    try:
        if any(c in path for c in "*?["):
            found = sorted(p for p in fs.glob(path) if fs.isfile(p))
            if not found:
                raise RemoteError(f"{url}: no files match. Check the URL and the pattern.")
            return [(full(p), fs.info(p).get("size")) for p in found]
        if fs.isfile(path):
            return [(url, fs.info(path).get("size"))]
        if fs.isdir(path):
            base = path.rstrip("/")
            def wanted(p: str) -> bool:
                parts = [part for part in p[len(base):].split("/") if part]
                return bool(parts) and fnmatch.fnmatch(parts[-1], glob) and not any(x.startswith(".") for x in parts)

            members = sorted(p for p in fs.find(base) if wanted(p))
            if not members:
                raise RemoteError(f"{url}: no files matching glob {glob!r} under it. Check the URL or pass another "
                                  "--glob.")
            return [(full(p), fs.info(p).get("size")) for p in members]
    except RemoteError:
        raise
    except PermissionError as exc:
        raise RemoteError(f"{url}: not readable with these credentials ({_why(exc)}). Check the bucket's permissions "
                          "and your credentials (for s3://: AWS_PROFILE or AWS_ACCESS_KEY_ID).") from None
    except (OSError, ValueError) as exc:
        raise RemoteError(f"{url}: cannot be read ({_why(exc)}). Check the URL, the network and your credentials."
                          ) from None
    raise RemoteError(f"{url}: no such file or prefix. Check the URL (bucket, key) and your credentials.")


def open_url(url: str) -> Any:
    """A binary file object for ``url`` (a context manager).

    Raises:
        RemoteError: it cannot be opened (with the reason).
    """
    fs, path = _fs(url)
    try:
        return fs.open(path, "rb")
    except PermissionError as exc:
        raise RemoteError(f"{url}: not readable with these credentials ({_why(exc)}). Check the permissions.") from None
    except (OSError, ValueError) as exc:
        raise RemoteError(f"{url}: cannot be opened ({_why(exc)}). Check the URL and your credentials.") from None
