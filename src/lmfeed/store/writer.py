"""Writing token stores: append ids in constant memory, then publish the directory atomically.

A store is written into a temporary sibling directory (``.NAME.tmp-PID-RANDOM``), its ``metadata.json`` last,
every file fsync'ed, and the directory renamed to ``NAME`` only when whole. A killed run leaves only the temporary
directory, which never opens as a store (no metadata) and which the next run for the same name removes.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

from lmfeed.store.format import DOC_STARTS, METADATA, SPLIT, TOKENS, TokenStore, is_split_dir

__all__ = ["StoreWriter", "check_output", "check_parent", "npy_header", "staging_dir", "write_json"]

logger = logging.getLogger(__name__)

_HEADER_BYTES = 128  # fixed, so the header can be written last with the final shape: room for 20+ digit shapes


def npy_header(dtype: DTypeLike, length: int) -> bytes:
    """A ``.npy`` version 1.0 header for a 1-D little-endian array of ``length`` values, exactly 128 bytes.

    The format (numpy's NEP 1): magic ``\\x93NUMPY``, version ``1 0``, a uint16 header length, then a Python dict
    literal padded with spaces and ending in a newline, the total a multiple of 64 so the data is aligned.
    """
    descr = np.lib.format.dtype_to_descr(np.dtype(dtype).newbyteorder("<"))
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': ({length:d},), }}"
    room = _HEADER_BYTES - 10 - 1  # 10 = magic + version + length field; 1 = final newline
    if len(text) > room:
        raise ValueError(f"{length:,} values do not fit a {_HEADER_BYTES}-byte .npy header.")
    body = (text + " " * (room - len(text)) + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + (len(body)).to_bytes(2, "little") + body


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write deterministic JSON (sorted keys, 2-space indent, trailing newline) and fsync it."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be fsync'ed
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class StoreWriter:
    """Append-only writer of one store directory: ids and document starts stream to disk as they come.

    Args:
        directory: a new directory to create (inside a staging directory).
        dtype: ``"uint16"`` or ``"uint32"``.
        eot_id: the separator written between documents by ``add_document``, or ``None``.
    """

    def __init__(self, directory: Path, *, dtype: str, eot_id: int | None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.dtype = np.dtype(dtype)
        self.eot_id = eot_id
        self.num_tokens = 0
        self.num_documents = 0
        self._tokens = open(directory / TOKENS, "wb", buffering=1 << 20)
        self._starts = open(directory / DOC_STARTS, "wb", buffering=1 << 16)
        self._tokens.write(npy_header(self.dtype, 0))
        self._starts.write(npy_header(np.int64, 0))
        self._eot = None if eot_id is None else np.array([eot_id], dtype=self.dtype)

    def write_chunk(self, ids: np.ndarray, starts: np.ndarray) -> None:
        """Append ids (separators already in place) and the offsets within ``ids`` where documents start."""
        if len(starts):
            (np.asarray(starts, dtype=np.int64) + self.num_tokens).astype("<i8").tofile(self._starts)
            self.num_documents += len(starts)
        if len(ids):
            self._tokens.write(np.ascontiguousarray(ids, dtype=self.dtype.newbyteorder("<")).data.cast("B"))
            self.num_tokens += len(ids)

    def add_document(self, ids: np.ndarray) -> None:
        """Append one whole document, with the separator before it if it is not the first."""
        if self.num_documents and self._eot is not None:
            self.write_chunk(self._eot, np.zeros(0, dtype=np.int64))
        self.write_chunk(ids, np.zeros(1, dtype=np.int64))

    def finish(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """Write the final headers and ``metadata.json`` (with the counts filled in), fsync, close; return it."""
        for f, dtype, n in ((self._tokens, self.dtype, self.num_tokens), (self._starts, np.int64, self.num_documents)):
            f.flush()
            f.seek(0)
            f.write(npy_header(dtype, n))
            f.flush()
            os.fsync(f.fileno())
            f.close()
        metadata = {**metadata, "dtype": self.dtype.name, "num_tokens": self.num_tokens,
                    "num_documents": self.num_documents, "eot_id": self.eot_id}
        write_json(self.directory / METADATA, metadata)
        _fsync_dir(self.directory)
        return metadata

    def close(self) -> None:
        """Close the files without finishing (on error)."""
        self._tokens.close()
        self._starts.close()


def _replaceable(path: Path) -> bool:
    """Whether --force may replace ``path``: only a store, a split of stores, or an empty directory."""
    if TokenStore.is_store(path) or is_split_dir(path):
        return True
    return path.is_dir() and not any(path.iterdir())


def check_output(out: Path, *, force: bool) -> None:
    """Refuse an output that exists (without force) or that force must not delete; check the parent exists.

    What killed runs left next to ``out`` is cleaned up first (see ``_remove_stale``), so the check sees ``out`` as
    it will stay.
    """
    if out.parent.is_dir():
        _remove_stale(Path(os.path.abspath(out)))
    if out.exists() or out.is_symlink():
        if not force:
            raise FileExistsError(f"{str(out)!r} already exists. "
                                  "Pass --force (force=True) to replace it, or choose another output.")
        if not _replaceable(out):
            raise FileExistsError(f"{str(out)!r} exists and is not a token store; "
                                  "refusing to replace it even with --force. Choose another output.")
    check_parent(out)


def check_parent(out: Path) -> None:
    """The directory ``out`` goes in exists and is writable, or a clear error that says so."""
    parent = out.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"Cannot write {str(out)!r}: directory {str(parent)!r} does not exist. "
                                "Create it first.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"Cannot write {str(out)!r}: directory {str(parent)!r} is not writable. "
                              "Choose a writable location.")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(out: Path) -> None:
    """Clean up after runs that were killed (their process is gone): delete their staging directories, and put
    back a store that a killed ``--force`` had moved aside (only where renames cannot swap) if ``out`` is missing."""
    ours = re.compile(re.escape(f".{out.name}.") + r"(tmp|old)-(\d+)-[0-9a-f]{8}")  # exactly staging_dir's names
    for name in sorted(os.listdir(out.parent)):
        match = ours.fullmatch(name)
        if match is None or _pid_alive(int(match[2])):
            continue
        kind, d = match[1], out.parent / name
        if kind == "old" and not (out.exists() or out.is_symlink()):
            logger.info("restoring %s, moved aside by an interrupted run", out)
            os.rename(d, out)
        else:
            logger.info("removing %s, left by an interrupted run", d)
            shutil.rmtree(d, ignore_errors=True) if d.is_dir() and not d.is_symlink() else d.unlink()


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):  # an old kernel, or a file system without it
        return False
    raise OSError(err, os.strerror(err), str(b))


@contextlib.contextmanager
def staging_dir(out: Path, *, force: bool) -> Iterator[Path]:
    """Yield a fresh staging directory next to ``out``; on success rename it to ``out``, on any error delete it.

    With ``force`` an existing store at ``out`` is swapped with the new one in one step (on Linux; elsewhere moved
    aside, replaced, then deleted, and put back by the next run if a kill fell in between), then deleted: ``out``
    always holds one whole store, the old or the new.
    """
    check_output(Path(out), force=force)  # also cleans up after killed runs
    out = Path(os.path.abspath(out))
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        tmp.mkdir()
    except PermissionError:
        raise PermissionError(f"Cannot write {str(out)!r}: permission denied in {str(out.parent)!r}. "
                              "Choose a writable location.") from None
    try:
        yield tmp
        _fsync_dir(tmp)
        old = None
        if out.exists() or out.is_symlink():
            check_output(out, force=force)  # the world may have changed while we worked
            if _exchange(tmp, out):
                old = tmp  # now holding the old store
            else:
                old = out.parent / f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
                os.rename(out, old)
                try:
                    os.rename(tmp, out)
                except BaseException:
                    os.rename(old, out)  # put the old store back before the new one is deleted below
                    raise
        else:
            os.rename(tmp, out)
        _fsync_dir(out.parent)
        if old is not None:
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(exc.errno, f"No space left on the device while writing {str(out)!r}. Free space there, or "
                          f"choose another output; nothing was written, and a store already at {str(out)!r} is "
                          "unchanged.") from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_split_marker(directory: Path, parts: list[str]) -> None:
    """Mark ``directory`` as a train/validation split holding the stores ``parts``."""
    write_json(directory / SPLIT, {"format": "lmfeed-split", "version": 1, "parts": parts})
