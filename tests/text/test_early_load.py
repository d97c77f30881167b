"""lmfeed.text.early_load: prepare's fast backend starts loading before the imports, with the same ids after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmfeed.text.backends import fastokens_available

pytestmark = pytest.mark.skipif(not fastokens_available(), reason="fastokens is not installed")

SRC = str(Path(__file__).resolve().parents[2] / "src")

# in a fresh process (the early load is once per process): start it, then use the backend as prepare does
_PROBE = """
import json, sys
from lmfeed.text import early_load
started = early_load.start()
from lmfeed.text import backends
from lmfeed.text.tokenizer import get_tokenizer
enc = get_tokenizer("gpt2")
assert backends.select_backend("auto", enc) == "fastokens"
encode = backends.batch_encoder("fastokens", enc)
texts = sys.argv[1:]
ids, offsets = encode(texts)
print(json.dumps({"started": started, "ids": [x.tolist() for x in backends.split_batch(ids, offsets)],
                  "want": [enc.encode_ordinary(t) for t in texts], "done": "done" in early_load._state}))
"""

TEXTS = ["Hello world", "  spaces\n\n  and tabs\t", "I'll 're 12,345 \u4e2d\u6587", "emoji \U0001f600"]


def _probe(cache: Path) -> dict:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONPATH": SRC}
    out = subprocess.run([sys.executable, "-c", _PROBE, *TEXTS], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_early_load_starts_only_from_the_cached_file_and_gives_tiktokens_ids(tmp_path) -> None:  # noqa: ANN001
    first = _probe(tmp_path)  # no cached tokenizer.json yet: nothing starts early; the backend writes the file
    assert first["started"] is False and first["ids"] == first["want"]
    cached = list((tmp_path / "lmfeed").glob("gpt2-tokenizer-*.json"))
    assert len(cached) == 1
    second = _probe(tmp_path)  # now it starts from that file, and the backend takes what it built
    assert second["started"] is True and second["done"] is True
    assert second["ids"] == second["want"] == first["want"]


def test_a_cached_file_that_is_not_the_pinned_one_is_never_used(tmp_path) -> None:  # noqa: ANN001
    _probe(tmp_path)
    (cached,) = (tmp_path / "lmfeed").glob("gpt2-tokenizer-*.json")
    pinned = cached.read_bytes()
    # a valid tokenizer.json with one merge changed: loads fine, encodes differently; the hash check refuses it
    data = json.loads(pinned)
    data["model"]["merges"] = data["model"]["merges"][1:]
    cached.write_text(json.dumps(data), encoding="utf-8")
    got = _probe(tmp_path)
    assert got["started"] is True and got["ids"] == got["want"]
    assert cached.read_bytes() == pinned  # generated again from the hash-checked vocabulary files
