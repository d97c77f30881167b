"""Start loading fastokens' GPT-2 tokenizer before anything heavy is imported: ``lmfeed prepare``'s start-up.

Building the fast backend (``fastokens.Tokenizer.from_json_str``, ~0.4 s, then a first call that sets up its
matcher, ~0.06 s) is the longest step of a ``prepare`` run's start, and it holds no GIL. Started here, from the
cached and hash-checked ``tokenizer.json``, it runs while the interpreter imports numpy, tiktoken and lmfeed's
modules (~0.3 s) and builds tiktoken's encoding, instead of after them. This module imports nothing outside the
standard library, so the command can start the load before its own imports. :mod:`lmfeed.text.backends` collects
the result (``taken()``) and still runs its self-check on it; with no cached file, or no fastokens, nothing starts
here and the backend loads as before.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["TOKENIZER_JSON_SHA256", "cache_dir", "gpt2_json_path", "start", "taken"]

# sha256 of the tokenizer.json lmfeed generates for GPT-2 (tests check it against the generator)
TOKENIZER_JSON_SHA256 = "2d0b5362e723d4ba0ad5f9ce74636acace31a03e588e00cc1be9c0891820eeb1"

_state: dict[str, Any] = {}  # "thread" while it runs; then "tokenizer" or "error"


def cache_dir() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/lmfeed``: where lmfeed caches generated vocabulary files."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lmfeed"


def gpt2_json_path(folder: Path | None = None) -> Path:
    """The cached GPT-2 ``tokenizer.json`` (its name carries the pinned hash)."""
    return (folder if folder is not None else cache_dir()) / f"gpt2-tokenizer-{TOKENIZER_JSON_SHA256[:16]}.json"


def start() -> bool:
    """Start the load on a thread when fastokens is installed and the cached file is there; True if started."""
    if _state or importlib.util.find_spec("fastokens") is None:
        return False
    path = gpt2_json_path()
    if not path.is_file():
        return False
    os.environ["FASTOKENS_BPE_THREADS"] = "1"  # read once, when its thread pool starts: before any large input

    def run() -> None:
        try:
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() != TOKENIZER_JSON_SHA256:
                raise ValueError(f"{path} is not the pinned GPT-2 tokenizer.json")
            import fastokens

            tokenizer = fastokens.Tokenizer.from_json_str(data.decode("utf-8"))
            tokenizer.encode_batch_flat(["warm up"])  # the first call sets up fastokens' matcher
            _state["tokenizer"] = tokenizer
        except Exception as exc:  # noqa: BLE001 - the backend then loads it the usual way and reports any failure
            _state["error"] = exc

    # not a daemon: a daemon thread still inside fastokens at interpreter shutdown aborts the process
    _state["thread"] = threading.Thread(target=run, name="lmfeed-fastokens-early")
    _state["thread"].start()
    return True


def taken() -> Any | None:
    """The tokenizer the early load built (waiting for it), or None when none was started or it failed; once."""
    thread = _state.get("thread")
    if thread is None:
        return None
    thread.join()  # before anyone forks: no thread of ours is ever copied into a worker
    tokenizer = _state.get("tokenizer")
    _state.clear()
    _state["done"] = True  # start() does nothing again in this process
    return tokenizer
