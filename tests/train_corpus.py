"""A small text for training tests: cut so that its training split makes an exact number of batches."""

from __future__ import annotations

from pathlib import Path

from lmfeed.text.sources import python_reference
from lmfeed.text.tokenizer import get_tokenizer

TOKENIZER = "bpe:300"  # a byte-level BPE of 300 ids trained on the text: tiny output layers, fast tests


def write_corpus(path: Path, *, batches: int = 5, batch_size: int = 4, max_length: int = 16,
                 tokenizer: str = TOKENIZER) -> Path:
    """Write a text whose training split (a text file's first ~90%) gives exactly ``batches`` full batches."""
    from lmfeed.model.data import training_splits

    enc = get_tokenizer("gpt2")
    words = " ".join(python_reference()[:10]).split()
    # short lines: a text file's split falls on a line break, so the training split grows a few tokens at a time
    ids = enc.encode_ordinary("\n".join(" ".join(words[i:i + 4]) for i in range(0, len(words), 4)))
    n = int(batches * batch_size * max_length / 0.9 / 3)
    for _ in range(300):  # grow the text two GPT-2 tokens at a time (half a window or less) until it fits
        path.write_text(enc.decode(ids[:n]))
        windows = (len(training_splits(path, tokenizer).train) - max_length - 1) // max_length + 1
        if windows // batch_size == batches:
            return path
        n += 2
    raise AssertionError(f"no cut of the text gives {batches} batches")
