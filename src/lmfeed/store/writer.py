"""Writing token stores: append ids in constant memory, then publish the directory atomically.

A store is written into a staging directory next to it (``.NAME.tmp-PID-RANDOM/store``), its ``metadata.json``
last, every file fsync'ed, and renamed to ``NAME`` only when whole. The staging directory also holds the run's lock
file, flock'ed while the run lives. A killed run leaves only the staging directory, which never opens as a store (no
metadata) and which the next run for the same name removes once its lock is free.
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
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

from lmfeed.store.format import DOC_STARTS, METADATA, SPLIT, TOKENS, TokenStore, is_split_dir

__all__ = ["StoreWriter", "check_apart", "check_output", "check_parent", "npy_header", "output_path", "staging_dir",
           "write_json"]

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


def output_path(out: object, *, what: str = "the store's directory") -> Path:
    """``out`` as a Path, or a clear error: never ``Path("")``, which is ``"."``, the current directory.

    Raises:
        TypeError: ``out`` is not a ``str`` or ``os.PathLike`` path (``bytes`` are decoded).
        ValueError: ``out`` is empty.
    """
    if not isinstance(out, (str, bytes, os.PathLike)):
        raise TypeError(f"The output must be a path ({what}), but got {out!r} ({type(out).__name__}).")
    text = os.fsdecode(out)
    if not text.strip():
        raise ValueError(f"The output is empty ({text!r}): name {what}, e.g. -o corpus.store.")
    return Path(text)


def check_apart(out: str | os.PathLike[str], sources: Iterable[str | os.PathLike[str]], *, role: str,
                inside_ok: Iterable[str | os.PathLike[str]] = ()) -> None:
    """Refuse an output that is, contains, or lies inside one of ``sources`` (what the run reads).

    Writing there would replace (with ``--force``) or shadow the very data being read: ``export S -o S/tokens.npy``,
    ``prepare S -o S --force``, ``merge a b -o a --force``. Paths are compared after resolving symbolic links, so
    a link to the input is the input. ``inside_ok`` are sources (directory inputs of ``prepare``, whose walk skips
    stores) that the output may lie inside, but still not be or contain.

    Args:
        out: the output path (need not exist).
        sources: the paths read: files, directories, stores.
        role: what the sources are, for the message (``"an input"``, ``"the store being exported"``).
        inside_ok: sources the output may lie inside.

    Raises:
        ValueError: naming the output, the source and the fix.
    """
    o = Path(os.path.realpath(out))
    inside_ok = list(inside_ok)
    allowed = {Path(os.path.realpath(p)) for p in inside_ok}
    for source in [*inside_ok, *sources]:
        r = Path(os.path.realpath(source))
        if o == r:
            how = "is"
        elif r.is_relative_to(o):
            how = "contains"
        elif o.is_relative_to(r) and r not in allowed:
            how = "lies inside"
        else:
            continue
        raise ValueError(f"The output {str(out)!r} {how} {role} ({str(source)!r}): writing it would destroy what is "
                         "being read. Choose an output outside the inputs.")


def check_parent(out: Path) -> None:
    """The directory ``out`` goes in exists and is writable, or a clear error that says so."""
    parent = out.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"Cannot write {str(out)!r}: directory {str(parent)!r} does not exist. "
                                "Create it first.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"Cannot write {str(out)!r}: directory {str(parent)!r} is not writable. "
                              "Choose a writable location.")


_LOCK = ".lock"  # in a run's staging directory, flock'ed by that run for as long as it lives
_CONTENT = "store"  # the staging directory's sub-directory that becomes the store
_ASIDE = "old"  # where a --force run without an atomic swap moves the old store for a moment
_NO_LOCK_GRACE_S = 3600.0  # a staging directory with no lock file yet is being created (or was left mid-mkdir)


# Lock descriptors this process holds. A forked child (an encode worker) would share the lock through its copy of
# the descriptor and keep a killed run looking alive until it exits too: children close their copies at once.
_HELD_LOCKS: set[int] = set()


def _close_inherited_locks() -> None:
    for fd in _HELD_LOCKS:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_LOCKS.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


def _try_lock(fd: int) -> bool:
    """Take an exclusive flock without waiting; False if another process (in any PID namespace, on any host whose
    file system supports it) holds it."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _remove_stale(out: Path) -> None:
    """Clean up after runs that were killed: delete their staging directories, and put back a store that a killed
    ``--force`` had moved aside (only where renames cannot swap) if ``out`` is missing.

    A run is known to be dead when the lock file in its staging directory is not locked: the lock goes with the
    process (every process holding the open file, its workers too), whatever its PID namespace or host, so a live
    run on another container or NFS client is never taken for a dead one.
    """
    ours = re.compile(re.escape(f".{out.name}.") + r"tmp-\d+-[0-9a-f]{8}")  # exactly staging_dir's names
    for name in sorted(os.listdir(out.parent)):
        if ours.fullmatch(name) is None:
            continue
        d = out.parent / name
        try:
            fd = os.open(d / _LOCK, os.O_RDWR)
        except FileNotFoundError:
            with contextlib.suppress(OSError):  # being created this instant, or left by a kill before its lock
                if not any(os.scandir(d)) and time.time() - d.stat().st_mtime > _NO_LOCK_GRACE_S:
                    d.rmdir()
            continue
        except OSError:
            continue  # not ours to judge (no permission, not a directory)
        try:
            if not _try_lock(fd):
                continue  # a live run
            aside = d / _ASIDE
            if aside.is_dir() and not (out.exists() or out.is_symlink()):
                logger.info("restoring %s, moved aside by an interrupted run", out)
                os.rename(aside, out)
            logger.info("removing %s, left by an interrupted run", d)
            shutil.rmtree(d, ignore_errors=True)
        finally:
            os.close(fd)


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
    """Yield a fresh directory to write a store into; on success it becomes ``out``, on any error it is deleted.

    The directory is ``.NAME.tmp-PID-RANDOM/store`` next to ``out``; its parent holds the run's lock file (flock'ed
    while the run lives, so the next run can tell a dead run's leftovers from a live run's, see ``_remove_stale``).
    With ``force`` an existing store at ``out`` is swapped with the new one in one step (on Linux; elsewhere moved
    aside into the staging directory, replaced, then deleted, and put back by the next run if a kill fell in
    between), then deleted: ``out`` always holds one whole store, the old or the new.

    Raises:
        FileExistsError: ``out`` exists (without ``force``), also when another run wrote it while this one worked.
        OSError: the disk filled up; the message says whether a store was already at ``out`` (it is unchanged).
    """
    check_output(Path(out), force=force)  # also cleans up after killed runs
    out = Path(os.path.abspath(out))
    existed = out.exists() or out.is_symlink()
    run = out.parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        run.mkdir()
    except PermissionError:
        raise PermissionError(f"Cannot write {str(out)!r}: permission denied in {str(out.parent)!r}. "
                              "Choose a writable location.") from None
    lock = -1
    try:
        lock = os.open(run / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        _try_lock(lock)  # a new file: nobody else can hold it
        _HELD_LOCKS.add(lock)
        tmp = run / _CONTENT
        yield tmp
        _fsync_dir(tmp)
        if out.exists() or out.is_symlink():
            check_output(out, force=force)  # the world may have changed while we worked
            if not _exchange(tmp, out):  # after a swap tmp holds the old store, deleted with the run below
                aside = run / _ASIDE
                os.rename(out, aside)
                try:
                    os.rename(tmp, out)
                except BaseException:
                    os.rename(aside, out)  # put the old store back before the new one is deleted below
                    raise
        else:
            try:
                os.rename(tmp, out)
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                    raise FileExistsError(
                        f"{str(out)!r} already exists: another run wrote it while this one worked (this run's "
                        "result was discarded). Pass --force (force=True) to replace it, or choose another output."
                    ) from None
                raise
        _fsync_dir(out.parent)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            kept = f", and the store already at {str(out)!r} is unchanged" if existed else ""
            raise OSError(exc.errno, f"No space left on the device while writing {str(out)!r}. Free space there, or "
                          f"choose another output; nothing was written{kept}.") from None
        raise
    finally:
        shutil.rmtree(run, ignore_errors=True)
        if lock >= 0:
            _HELD_LOCKS.discard(lock)
            os.close(lock)


def write_split_marker(directory: Path, parts: list[str]) -> None:
    """Mark ``directory`` as a train/validation split holding the stores ``parts``."""
    write_json(directory / SPLIT, {"format": "lmfeed-split", "version": 1, "parts": parts})
