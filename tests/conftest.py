"""Shared fixtures. Tests use only files inside the repository and the Python standard library's own text."""

from __future__ import annotations

import pytest
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
