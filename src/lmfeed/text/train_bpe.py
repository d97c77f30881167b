"""Train a byte-level BPE of your own vocabulary size: the seed's first parameter, ``vocab_size``, becomes a choice.

The tokenizer is GPT-2's kind: bytes are the alphabet (every text encodes, nothing is unknown), GPT-2's pre-tokenizer
split, no prefix space, and ``<|endoftext|>`` as a special token (id 0) that separates documents. Training is the
``tokenizers`` library's BPE trainer over the same documents ``prepare`` reads, and is deterministic: the same
corpus and ``vocab_size`` give the same ``tokenizer.json``, byte for byte.

Example:
    >>> enc = train_tokenizer(["corpus/"], vocab_size=8000, out="tokenizer.json")  # doctest: +SKIP
    >>> enc.n_vocab, enc.eot_token  # doctest: +SKIP
    (8000, 0)
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from lmfeed._files import written_whole
from lmfeed.text.hf_tokenizer import HFTokenizer

__all__ = ["train_tokenizer", "MIN_VOCAB_SIZE"]

logger = logging.getLogger(__name__)

ENDOFTEXT = "<|endoftext|>"
MIN_VOCAB_SIZE = 257  # the 256 bytes and <|endoftext|>
MAX_VOCAB_SIZE = 1 << 24
_CHUNK_CHARS = 1 << 20
_CUT = re.compile(r"\S(?=[ \n])")  # where GPT-2's pre-tokenizer always cuts: after a non-space, before a space


def _chunks(text: str) -> Iterator[str]:
    """``text`` in pieces of at most about 1 Mi characters, cut only between a non-space and a space (no word is
    split, so the trainer counts the same words)."""
    start = 0
    while len(text) - start > _CHUNK_CHARS:
        end, last = start + _CHUNK_CHARS, -1
        for m in _CUT.finditer(text, end - _CHUNK_CHARS // 2, end):
            last = m.end()
        if last < 0:
            break  # nowhere safe: the rest goes whole
        yield text[start:last]
        start = last
    yield text[start:]


def _is_inputs(corpus: Any) -> bool:
    if isinstance(corpus, (str, os.PathLike)):
        return True
    return isinstance(corpus, (list, tuple)) and bool(corpus) and all(isinstance(c, os.PathLike) for c in corpus)


def _documents(corpus: Any, *, field: str, glob: str, errors: str) -> Iterator[str]:
    """The documents of ``corpus``: read from paths as ``prepare`` reads them, or taken from an iterable."""
    if _is_inputs(corpus):
        from lmfeed.text.sources import expand_inputs, iter_document_blocks

        files = expand_inputs(corpus, glob=glob)
        current, parts = -1, list[str]()
        for doc, block in iter_document_blocks(files, field=field, errors=errors):  # type: ignore[arg-type]
            text = block if isinstance(block, str) else block.text()
            if doc != current and parts:
                yield from _chunks("".join(parts))
                parts = []
            current = doc
            parts.append(text)
            if sum(map(len, parts)) > 4 * _CHUNK_CHARS:  # a huge text file: hand it over as it comes
                whole = "".join(parts)
                pieces = list(_chunks(whole))
                yield from pieces[:-1]
                parts = [pieces[-1]]
        if parts:
            yield from _chunks("".join(parts))
        return
    if isinstance(corpus, (bytes, bytearray)):
        raise TypeError("corpus is bytes; decode it first (data.decode('utf-8')) or pass a file path.")
    try:
        items = iter(corpus)
    except TypeError:
        raise TypeError(f"corpus must be paths (str or Path), or an iterable of documents (str, or mappings with "
                        f"{field!r}), but got {type(corpus).__name__}.") from None
    for i, item in enumerate(items):
        if isinstance(item, str):
            yield from _chunks(item)
        elif isinstance(item, dict) or hasattr(item, "keys"):
            value = item.get(field) if hasattr(item, "get") else None
            if not isinstance(value, str):
                keys = ", ".join(map(repr, list(item)[:8]))
                raise ValueError(f"document {i:,} has no string {field!r} (its keys: {keys}). "
                                 "Pass field= to name the text field.")
            yield from _chunks(value)
        else:
            raise TypeError(f"document {i:,} is a {type(item).__name__}; documents must be str (or mappings with "
                            f"{field!r}). For files, pass their paths as pathlib.Path.")


def train_tokenizer(
    corpus: Any,
    *,
    vocab_size: int,
    out: str | os.PathLike[str] | None = None,
    field: str = "text",
    glob: str = "*",
    errors: str = "strict",
    min_frequency: int = 2,
    force: bool = False,
) -> HFTokenizer:
    """Train a byte-level BPE with ``vocab_size`` ids on ``corpus``; optionally save it as a ``tokenizer.json``.

    Args:
        corpus: inputs as ``prepare`` takes them (a path, or a list of ``pathlib.Path``: text files, JSON Lines,
            compressed files, directories), or an iterable of documents (``str``, or mappings with ``field``).
        vocab_size: ids in the vocabulary, at least 257 (the 256 bytes and ``<|endoftext|>``). A corpus with too few
            distinct pairs gives fewer (logged).
        out: where to write ``tokenizer.json`` (written whole: a temporary name, then renamed). Default: not saved.
        field: the JSON Lines / mapping field holding the text (default ``"text"``).
        glob: files to take from directories (default every file).
        errors: undecodable bytes: ``"strict"`` (default), ``"replace"``, ``"skip"``.
        min_frequency: a pair must occur this often to be merged (default 2).
        force: replace an existing ``out``.

    Returns:
        The trained tokenizer (``name`` is ``out`` when saved, else ``"trained-bpe-<vocab_size>"``).

    Raises:
        ValueError, TypeError: a bad ``vocab_size``, an empty corpus, a document that is not text.
        FileExistsError: ``out`` exists and ``force`` is not set. FileNotFoundError: a missing input.

    Example:
        >>> enc = train_tokenizer(["a b c a b"] * 100, vocab_size=300)
        >>> enc.eot_token, enc.decode(enc.encode_ordinary("a b c"))
        (0, 'a b c')
    """
    from lmfeed._validate import as_choice, as_int

    vocab_size = as_int("vocab_size", vocab_size, minimum=MIN_VOCAB_SIZE, maximum=MAX_VOCAB_SIZE,
                        fix="A byte-level BPE needs at least 256 byte tokens plus <|endoftext|>.")
    min_frequency = as_int("min_frequency", min_frequency, minimum=0)
    as_choice("errors", errors, ("strict", "replace", "skip"))
    out_path = None if out is None else Path(out)
    if out_path is not None:
        if out_path.is_dir():
            out_path = out_path / "tokenizer.json"
        if out_path.exists() and not force:
            raise FileExistsError(f"{str(out_path)!r} already exists. Pass force=True (--force) to replace it, or "
                                  "choose another path.")
        if not out_path.parent.is_dir():
            raise FileNotFoundError(f"Directory {str(out_path.parent)!r} does not exist. Create it first.")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from lmfeed.text.hf_backends import one_core_per_process

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[ENDOFTEXT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    seen = [0]

    def counted(docs: Iterable[str]) -> Iterator[str]:
        for d in docs:
            seen[0] += len(d)
            yield d

    one_core_per_process()
    tok.train_from_iterator(counted(_documents(corpus, field=field, glob=glob, errors=errors)), trainer=trainer)
    if seen[0] == 0:
        raise ValueError("The corpus is empty: no text to train on. Check the inputs.")
    got = tok.get_vocab_size(with_added_tokens=True)
    if got < vocab_size:
        logger.warning("lmfeed: the corpus gave only %s of the %s ids asked for (too few distinct pairs occur %s "
                       "times or more); use more text or a lower min_frequency", f"{got:,}", f"{vocab_size:,}",
                       min_frequency)
    text = tok.to_str()
    if out_path is None:
        return HFTokenizer(text, name=f"trained-bpe-{vocab_size}")
    with written_whole(out_path, "w", fsync=True) as f:
        f.write(text)
    return HFTokenizer(text, name=os.fspath(out if not Path(out).is_dir() else out_path))  # type: ignore[arg-type]
