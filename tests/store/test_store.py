"""TokenStore: opens only complete, valid stores; memory-maps read-only; pickles by path; survives a killed prepare."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lmfeed.store.format import StoreError, TokenStore
from lmfeed.store.prepare import prepare
from lmfeed.store.writer import npy_header
from lmfeed.text.tokenizer import ENDOFTEXT, get_tokenizer

ENC = get_tokenizer("gpt2")
DOCS = ["Hello world", "The second document.\nIt has two lines.", "", "Last one"]


@pytest.fixture
def store_path(tmp_path) -> Path:
    files = []
    for i, doc in enumerate(DOCS):
        files.append(tmp_path / f"{i}.txt")
        files[-1].write_text(doc)
    prepare(files, tmp_path / "store", workers=1)
    return tmp_path / "store"


def test_open_exposes_the_interface(store_path):
    store = TokenStore.open(store_path)
    assert isinstance(store.tokens, np.memmap) and not store.tokens.flags.writeable
    assert store.path == store_path and TokenStore.is_store(store_path)
    assert len(store) == len(ENC.encode(ENDOFTEXT.join(DOCS), allowed_special={ENDOFTEXT}))
    assert store.num_documents == 4 and store.eot_id == 50256
    assert store.doc_starts.dtype == np.int64 and store.doc_ends.dtype == np.int64
    for i, doc in enumerate(DOCS):
        assert store.tokens[store.doc_starts[i] : store.doc_ends[i]].tolist() == ENC.encode_ordinary(doc)
        assert store.document(i).tolist() == ENC.encode_ordinary(doc)
    assert store.document(-1).tolist() == ENC.encode_ordinary("Last one")
    with pytest.raises(IndexError, match="4 documents"):
        store.document(4)
    assert store.metadata["version"] == 1 and store.metadata["tokenizer"]["name"] == "gpt2"
    assert store.tokenizer is ENC
    with pytest.raises(ValueError, match="read-only"):
        store.tokens[0] = 1


def test_files_are_plain_npy_and_json(store_path):
    tokens = np.load(store_path / "tokens.npy")  # any numpy reads it, no lmfeed needed
    starts = np.load(store_path / "doc_starts.npy")
    meta = json.loads((store_path / "metadata.json").read_text())
    assert tokens.dtype == np.uint16 and starts.dtype == np.int64
    assert meta["num_tokens"] == len(tokens) and meta["num_documents"] == len(starts)
    assert tokens[starts[1] - 1] == meta["eot_id"]


def test_npy_header_is_numpys():
    import io

    for n in (0, 7, 10**15):
        buf = io.BytesIO(npy_header(np.uint16, n))
        assert np.lib.format.read_magic(buf) == (1, 0)
        assert np.lib.format.read_array_header_1_0(buf) == ((n,), False, np.dtype("<u2"))
        assert buf.tell() == 128


def test_pickles_by_path_not_ids(store_path):
    store = TokenStore.open(store_path)
    data = pickle.dumps(store)
    assert len(data) < 1000 and store.tokens.tobytes() not in data
    again = pickle.loads(data)
    assert isinstance(again.tokens, np.memmap) and np.array_equal(again.tokens, store.tokens)
    assert again.doc_starts.tolist() == store.doc_starts.tolist()


def test_truncated_store_is_refused(store_path):
    path = store_path / "tokens.npy"
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(StoreError, match="tokens.npy is truncated"):
        TokenStore.open(store_path)


def test_longer_file_is_refused(store_path):
    with open(store_path / "doc_starts.npy", "ab") as f:
        f.write(b"\0" * 8)
    with pytest.raises(StoreError, match="longer than its header"):
        TokenStore.open(store_path)


def test_foreign_files_are_refused(store_path, tmp_path):
    np.save(store_path / "tokens.npy", np.zeros(len(TokenStore.open(store_path)), dtype=np.float32))
    with pytest.raises(StoreError, match="float32"):
        TokenStore.open(store_path)
    (store_path / "tokens.npy").write_bytes(b"garbage, not numpy")
    with pytest.raises(StoreError, match="not a readable .npy"):
        TokenStore.open(store_path)
    (tmp_path / "random").mkdir()
    with pytest.raises(StoreError, match="not a token store"):
        TokenStore.open(tmp_path / "random")
    assert not TokenStore.is_store(tmp_path / "random")
    with pytest.raises(FileNotFoundError, match="lmfeed prepare"):
        TokenStore.open(tmp_path / "nothing")


@pytest.mark.parametrize("change, match", [
    ({"version": 2}, "version 2; this lmfeed reads version 1. Upgrade"),
    ({"format": "other"}, "not lmfeed token-store metadata"),
    ({"dtype": "float32"}, "dtype 'float32'"),
    ({"num_tokens": 3}, "shape"),
    ({"num_documents": -1}, "num_documents -1 is not a count"),
])
def test_metadata_is_validated(store_path, change, match):
    meta_path = store_path / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, **change}))
    with pytest.raises(StoreError, match=match):
        TokenStore.open(store_path)


# ---- interrupted runs ----------------------------------------------------------------------------------------

_RUN = """
import sys
from lmfeed.store.prepare import prepare
prepare(["-"], sys.argv[1], workers=int(sys.argv[2]))
"""


def _start_and_wait_for_staging(out: Path, workers: int) -> tuple[subprocess.Popen, Path]:
    """prepare reading stdin, kept open: it has begun writing and cannot finish until we say so."""
    proc = subprocess.Popen([sys.executable, "-c", _RUN, str(out), str(workers)], stdin=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdin.write(b"Some text that is being prepared.\n" * 1000)
    proc.stdin.flush()
    for _ in range(600):  # up to 60 s for start-up on a busy machine; not a timing assertion
        staging = list(out.parent.glob(f".{out.name}.tmp-*"))
        if staging and (staging[0] / "store" / "tokens.npy").exists():
            return proc, staging[0]
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode())
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("prepare never started writing")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_killed_run_leaves_nothing_that_opens_and_rerun_succeeds(tmp_path, workers):
    out = tmp_path / "store"
    proc, staging = _start_and_wait_for_staging(out, workers)
    proc.kill()  # SIGKILL: no chance to clean up
    proc.wait()
    assert not out.exists()
    assert staging.exists() and not TokenStore.is_store(staging)
    with pytest.raises(StoreError, match="incomplete"):
        TokenStore.open(staging)
    (tmp_path / "a.txt").write_text("Hello world")
    assert prepare([tmp_path / "a.txt"], out, workers=1).tokens.tolist() == [15496, 995]
    assert not staging.exists()  # the next run removed what the killed one left


def test_a_forked_child_does_not_keep_a_dead_runs_lock(tmp_path):
    # A run that dies (os._exit: no clean-up, as after SIGKILL) while a forked child of it (an encode worker) still
    # lives: the child must not hold the run's lock, or the next run would take the dead run for a live one.
    script = f"""
import os, sys, time
from pathlib import Path
from lmfeed.store.writer import staging_dir
with staging_dir(Path({str(tmp_path / "out")!r}), force=False) as tmp:
    child = os.fork()
    if child == 0:
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 1)
        os.dup2(null, 2)  # let the parent's output end while this child lives on
        time.sleep(30)
        os._exit(0)
    print(child, tmp.parent, flush=True)
    os._exit(0)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    child, run = proc.stdout.split()
    try:
        import fcntl

        fd = os.open(Path(run) / ".lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError while the child holds it
        finally:
            os.close(fd)
    finally:
        os.kill(int(child), signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_cleans_up(tmp_path, sig):
    out = tmp_path / "store"
    proc, staging = _start_and_wait_for_staging(out, 2)
    try:
        os.kill(proc.pid, sig)
        proc.stdin.close()  # were the signal lost, the run would now finish and write the store
        proc.wait(timeout=60)
    finally:
        proc.kill()  # never leave a run behind, whatever happened
    assert proc.returncode != 0
    assert not out.exists() and not staging.exists()
