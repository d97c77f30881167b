"""A small text for training tests: cut so that its training split makes an exact number of batches."""

from __future__ import annotations

import math
from pathlib import Path

from lmfeed.text.sources import python_reference
from lmfeed.text.tokenizer import get_tokenizer


def write_corpus(path: Path, *, batches: int = 5, batch_size: int = 4, max_length: int = 16) -> Path:
    """Write a GPT-2 text whose first 90% (the training split of a text file) gives ``batches`` full batches."""
    enc = get_tokenizer("gpt2")
    ids = enc.encode_ordinary("\n".join(python_reference()[:10]))
    train_tokens = batches * batch_size * max_length + 1
    total = math.ceil(train_tokens / 0.9) + 2
    path.write_text(enc.decode(ids[:total]))
    return path
