"""Shared fixtures. Tests use only files inside the repository and the Python standard library's own text."""

from __future__ import annotations

import os

# Before any test module imports ray (test_plan's probe test does, through ray.util): a local Ray instance then
# binds 127.0.0.1 only. Set later, it is too late: Ray reads it at import, and would listen on the machine's address.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import pytest  # noqa: E402
from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None)
settings.load_profile("ci")


@pytest.fixture(scope="session")
def reference_text() -> str:
    """~465 KB of English prose and code that every CPython ships: the Python language reference."""
    from lmfeed.text.sources import python_reference

    return "<|endoftext|>".join(python_reference())


@pytest.fixture(scope="session")
def short_text() -> str:
    """A few thousand characters: one topic of the language reference."""
    from pydoc_data.topics import topics

    return topics["assignment"]


@pytest.fixture(scope="session")
def bpe_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A byte-level BPE of 2,000 ids trained here on the language reference, saved as a tokenizer.json."""
    from lmfeed.text.sources import python_reference
    from lmfeed.text.train_bpe import train_tokenizer

    out = tmp_path_factory.mktemp("bpe") / "tokenizer.json"
    train_tokenizer(python_reference(), vocab_size=2000, out=out)
    return str(out)


@pytest.fixture(scope="session")
def big_bpe_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A byte-level BPE of 70,000 ids (above uint16) trained here on 40,000 seeded random words (~3 s)."""
    import random

    from lmfeed.text.train_bpe import train_tokenizer

    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(7)) for _ in range(40_000)]
    docs = [" ".join(words[i : i + 100]) for i in range(0, len(words), 100)]
    out = tmp_path_factory.mktemp("bigbpe") / "tokenizer.json"
    train_tokenizer(docs, vocab_size=70_000, out=out, min_frequency=1)
    return str(out)
