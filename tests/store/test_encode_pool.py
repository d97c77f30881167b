"""Encode workers after their parent is killed: they end quietly, with no BrokenPipeError traceback (#15, item 29)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

# A parent that starts two workers and hands one a task that takes a while; the test kills the parent with SIGKILL
# while the task runs, so the worker finishes with nobody left to read its result. The watch thread (which ends an
# orphan within a second) is switched off, so that only what the worker does on its own is tested.
_PARENT = r"""
import sys, threading, time, types
import numpy as np
from lmfeed.store import encode_pool
from lmfeed.text import backends

encode_pool.threading = types.SimpleNamespace(Thread=lambda *a, **k: types.SimpleNamespace(start=lambda: None),
                                              current_thread=threading.current_thread,
                                              main_thread=threading.main_thread)

def slow(backend, enc, *, allow_special=False):
    def encode(texts):
        print("encoding", flush=True)
        time.sleep(1.5)
        return np.array([1, 2], dtype=np.uint32), np.array([0, 2])
    return encode

backends.batch_encoder = slow
with encode_pool.encoder(2, ("gpt2", False, "uint16", "tiktoken", False), np.array([50256], dtype=np.uint16)) as run:
    results = run([[(0, "hello", True, False)]])
    next(results)
"""


@pytest.mark.slow
def test_orphaned_workers_end_without_a_traceback():
    proc = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "encoding\n"  # a worker has the task
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    err = proc.stderr.read()  # until the worker, which shares the pipe, is gone too
    proc.wait()
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
