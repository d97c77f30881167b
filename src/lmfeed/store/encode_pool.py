"""Encoding in worker processes for ``prepare``: results come back in the order tasks were made.

A task is a list of pieces ``(part, text, starts_document, separator_before)``; its result is, per part (0 train,
1 validation), the ids with separators in place and the offsets where documents start. With one worker the tasks
are encoded in this process; with more, a ``multiprocessing.Pool`` encodes them, at most ``2 * workers + 1`` in
flight, so memory stays flat and the output order (hence the store's bytes) never depends on ``workers``.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from lmfeed.text.sources import RawRecord, RawRecords

if TYPE_CHECKING:
    from lmfeed.text.backends import Backend

__all__ = ["Task", "encoder", "sigterm_as_interrupt"]

_worker: dict[str, Any] = {}


def _init_worker(tokenizer: Any, allow_special: bool, dtype: str, backend: Backend, bos: bool,
                 parent: int | None) -> None:
    from lmfeed.text.backends import batch_encoder
    from lmfeed.text.tokenizer import resolve_tokenizer

    enc = resolve_tokenizer(tokenizer)
    # after a fork the parent's loaded (and self-checked) fastokens is inherited: no second load
    _worker.update(encode=batch_encoder(backend, enc, allow_special=allow_special), dtype=np.dtype(dtype), bos=bos)
    if parent is not None:  # a pool process: the parent handles Ctrl-C, and a killed parent must not leave us behind
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # the parent's SIGTERM-as-interrupt handler was inherited: the pool's terminate() must end us quietly
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})  # held while the pool forked us
        # A killed parent leaves nobody reading our results: the next one we send would end in a BrokenPipeError
        # traceback on the terminal. With SIGPIPE at its default the write ends us quietly instead, and on Linux
        # the kernel kills us the moment the parent dies.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        _die_with_parent()

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGKILL when the parent exits (``prctl(PR_SET_PDEATHSIG)``); elsewhere nothing
    (the watch thread below still ends an orphan within a second)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


Task = list[tuple[int, str | RawRecord | RawRecords, bool, bool]]  # (part, text, starts_document, separator_before)
# A RawRecords entry is many whole documents: separator_before is the first one's; the separator array ("eot",
# empty without separators) goes before each later one.
# EOS style: the separator comes before every document but the first, and doc_starts point after it;
# BOS style: it comes before every document, and doc_starts point at it.


def _encode_task(task: Task) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Encode a task's pieces; per part, the ids (separators in place) and the offsets where documents start."""
    dtype = _worker["dtype"]
    eot = _worker.get("eot")
    bos = _worker["bos"]
    # one call for the whole task: the fast backend encodes a batch without a Python object per id
    texts: list[str] = []
    first: list[int] = []  # where each entry's texts begin in texts
    for _, text, _, _ in task:
        first.append(len(texts))
        if isinstance(text, RawRecords):
            texts.extend(text.texts())
        else:
            texts.append(text.text() if isinstance(text, RawRecord) else text)
    ids, offsets = _worker["encode"](texts)  # (total,) uint32, (len(texts) + 1,)
    if len(ids) and int(ids.max()) > np.iinfo(dtype).max:  # never narrow silently
        raise ValueError(f"Token id {int(ids.max())} does not fit {dtype}.")
    ids = ids.astype(dtype, copy=False)  # once per task, not once per piece
    if any(isinstance(text, RawRecords) for _, text, _, _ in task):
        assert eot is not None  # encoder() sets it in every process that runs tasks
        return _encode_records(task, ids, offsets, first, eot, bos)
    bounds = offsets.tolist()
    out: dict[int, tuple[list[np.ndarray], list[int], int]] = {}
    for i, (part, _, starts, separator) in enumerate(task):
        arrays, doc_starts, n = out.get(part, ([], [], 0))
        if starts and bos:
            doc_starts.append(n)
        if separator:
            assert eot is not None  # encoder() sets it in every process that runs tasks
            arrays.append(eot)
            n += 1
        if starts and not bos:
            doc_starts.append(n)
        arrays.append(ids[bounds[i] : bounds[i + 1]])
        out[part] = (arrays, doc_starts, n + bounds[i + 1] - bounds[i])
    return {part: (np.concatenate(a) if a else np.zeros(0, dtype), np.array(s, dtype=np.int64))
            for part, (a, s, _) in out.items()}


def _encode_records(task: Task, ids: np.ndarray, offsets: np.ndarray, first: list[int], eot: np.ndarray,
                    bos: bool) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``_encode_task`` for tasks holding :class:`RawRecords`: the separators and starts of their many documents
    placed with whole-array operations (no Python step per document)."""
    out: dict[int, tuple[list[np.ndarray], list[np.ndarray], int]] = {}
    ends = [*first[1:], len(offsets) - 1]
    for (part, text, starts, separator), a, b in zip(task, first, ends, strict=True):
        arrays, doc_starts, n = out.get(part, ([], [], 0))
        rel = offsets[a : b + 1] - offsets[a]  # (docs + 1,): where each document's ids begin in this entry
        block = ids[offsets[a] : offsets[b]]
        docs = b - a
        inner = isinstance(text, RawRecords) and len(eot) > 0  # a separator before each later document
        if inner:
            block = np.insert(block, rel[1:docs], eot[0])
        if separator:
            block = np.concatenate([eot, block])
        # separators up to and including document j's own: its text starts that many ids later
        own = np.arange(docs, dtype=np.int64) * inner + (1 if separator else 0)
        text_starts = n + rel[:docs] + own
        has = np.ones(docs, dtype=bool) if inner else np.zeros(docs, dtype=bool)
        if docs:
            has[0] = bool(separator)
        if starts or isinstance(text, RawRecords):  # a piece that continues a document starts none
            doc_starts.append(text_starts - (has & bos))  # BOS style: a document starts at its separator
        arrays.append(block)
        out[part] = (arrays, doc_starts, n + len(block))
    return {part: (np.concatenate(a) if a else np.zeros(0, ids.dtype),
                   np.concatenate(s).astype(np.int64) if s else np.zeros(0, np.int64))
            for part, (a, s, _) in out.items()}


@contextlib.contextmanager
def encoder(workers: int, init_args: tuple[Any, bool, str, Backend, bool],
            eot: np.ndarray) -> Iterator[Callable[[Iterable[Task]], Iterator[Any]]]:
    """Yield ``run(tasks) -> results`` in task order: inline for 1 worker, else a process pool, bounded in flight."""
    if workers == 1:
        _init_worker(*init_args, None)
        _worker["eot"] = eot
        yield lambda tasks: map(_encode_task, tasks)
        return
    import multiprocessing

    def run(tasks: Iterable[Task]) -> Iterator[Any]:
        inflight: collections.deque = collections.deque()
        assert pool is not None  # run is handed out only once the pool exists
        for task in tasks:
            inflight.append(pool.apply_async(_encode_task, (task,)))
            if len(inflight) > 2 * workers:
                yield inflight.popleft().get()
        while inflight:
            yield inflight.popleft().get()

    # A Ctrl-C or kill that lands while the pool forks can be swallowed by at-fork handlers ("Exception ignored"),
    # and the run would go on: hold those signals until the pool exists, then take them here, where we clean up.
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    pool = None
    try:
        pool = multiprocessing.Pool(workers, initializer=_init_worker_eot, initargs=(*init_args, os.getpid(), eot))
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        yield run
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        if pool is not None:
            pool.terminate()
            pool.join()
        raise
    pool.close()
    pool.join()


def _init_worker_eot(tokenizer: Any, allow_special: bool, dtype: str, backend: Backend, bos: bool, parent: int,
                     eot: np.ndarray) -> None:
    _init_worker(tokenizer, allow_special, dtype, backend, bos, parent)
    _worker["eot"] = eot


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM (``kill``) into KeyboardInterrupt while preparing, so the staging directory is cleaned up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
