"""A small text for training tests: cut so that its training split makes an exact number of batches."""

from __future__ import annotations

from pathlib import Path

from lmfeed.text.sources import python_reference
from lmfeed.text.tokenizer import get_tokenizer


def write_corpus(path: Path, *, batches: int = 5, batch_size: int = 4, max_length: int = 16) -> Path:
    """Write a GPT-2 text whose training split (a text file's first ~90%) gives exactly ``batches`` full batches."""
    from lmfeed.model.data import training_splits

    enc = get_tokenizer("gpt2")
    ids = enc.encode_ordinary("\n".join(python_reference()[:10]))
    n = int(batches * batch_size * max_length / 0.9)
    while True:
        path.write_text(enc.decode(ids[:n]))
        windows = (len(training_splits(path, "gpt2").train) - max_length - 1) // max_length + 1
        if windows // batch_size == batches:
            return path
        n += 8 if windows // batch_size < batches else -8
