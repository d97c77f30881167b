"""tiktoken-format rank files (``*.tiktoken``: one ``base64-token rank`` a line), as a ``tiktoken.Encoding``.

This is the format of OpenAI's ``r50k_base``, ``p50k_base``, ``cl100k_base`` and ``o200k_base`` files and of Llama 3's
``tokenizer.model``. The file holds the ranks only: the split pattern and the special tokens are not in it. OpenAI's
published files are recognised by their sha256 (the hashes tiktoken itself expects, read from ``tiktoken_ext``), and
take that encoding's pattern and special tokens. Any other file needs ``pattern`` (a known encoding's name, or a
regex) and, if it should have any, ``special_tokens``.

Example:
    >>> enc = load_tiktoken_file("r50k_base.tiktoken")  # doctest: +SKIP
    >>> enc.name, enc.encode("Hello world")  # doctest: +SKIP
    ('r50k_base', [15496, 995])
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tiktoken

__all__ = ["TiktokenFileError", "known_patterns", "load_tiktoken_file", "parse_ranks", "recognise"]


class TiktokenFileError(ValueError):
    """A tiktoken rank file that cannot be used: a bad line, duplicate ranks or tokens, an unknown pattern."""


@functools.cache
def _published() -> dict[str, dict[str, Any]]:
    """tiktoken's own encodings: name -> {"hash": the sha256 it expects of the rank file, "pat_str", "special_tokens",
    "explicit_n_vocab"}. Read by running tiktoken_ext's constructors with the file loader replaced (no network)."""
    from tiktoken_ext import openai_public

    found: dict[str, dict[str, Any]] = {}
    seen: dict[str, str] = {}

    def capture(_blobpath: str, expected_hash: str | None = None) -> dict[bytes, int]:
        seen["hash"] = expected_hash or ""
        return {}

    def refuse(*_args: Any, **_kwargs: Any) -> dict[bytes, int]:
        seen["hash"] = ""
        return {}

    original = (openai_public.load_tiktoken_bpe, openai_public.data_gym_to_mergeable_bpe_ranks)
    openai_public.load_tiktoken_bpe, openai_public.data_gym_to_mergeable_bpe_ranks = capture, refuse
    try:
        for name, constructor in openai_public.ENCODING_CONSTRUCTORS.items():
            seen.clear()
            try:
                spec = constructor()
            except Exception:  # noqa: BLE001 - a constructor this version does not run offline: skip it
                continue
            found[name] = {"hash": seen.get("hash", ""), "pat_str": spec["pat_str"],
                           "special_tokens": dict(spec["special_tokens"]),
                           "explicit_n_vocab": spec.get("explicit_n_vocab")}
    finally:
        openai_public.load_tiktoken_bpe, openai_public.data_gym_to_mergeable_bpe_ranks = original
    return found


def known_patterns() -> dict[str, str]:
    """Pattern names ``pattern=`` accepts (tiktoken's encodings, e.g. ``"r50k_base"``, ``"cl100k_base"``) -> regex."""
    return {name: spec["pat_str"] for name, spec in _published().items()}


def recognise(data: bytes) -> str | None:
    """The name of tiktoken's published encoding whose rank file is ``data`` (by sha256), else ``None``.

    Example:
        >>> recognise(b"not a rank file") is None
        True
    """
    digest = hashlib.sha256(data).hexdigest()
    return next((name for name, spec in _published().items() if spec["hash"] == digest), None)


def parse_ranks(data: bytes, *, name: str = "the file") -> dict[bytes, int]:
    """The ranks of a tiktoken rank file: ``base64-token rank`` a line (blank lines skipped).

    Raises:
        TiktokenFileError: a line that is not ``base64 integer``, two tokens with one rank, or one token twice
            (each names the line numbers).
    """
    ranks: dict[bytes, int] = {}
    line_of_rank: dict[int, int] = {}
    line_of_token: dict[bytes, int] = {}
    for lineno, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 2:
                raise ValueError
            token, rank = base64.b64decode(parts[0], validate=True), int(parts[1])
            if rank < 0:
                raise ValueError
        except (ValueError, binascii.Error):
            raise TiktokenFileError(f"{name}: line {lineno:,} is not 'base64-token rank' ({line[:60]!r}). A tiktoken "
                                    "file has one token in base64 and its rank on each line.") from None
        if rank in line_of_rank:
            raise TiktokenFileError(f"{name}: rank {rank:,} appears twice (lines {line_of_rank[rank]:,} and "
                                    f"{lineno:,}). Each rank must belong to one token; fix or regenerate the file.")
        if token in line_of_token:
            raise TiktokenFileError(f"{name}: token {token!r} appears twice (lines {line_of_token[token]:,} and "
                                    f"{lineno:,}). Each token must have one rank; fix or regenerate the file.")
        line_of_rank[rank], line_of_token[token] = lineno, lineno
        ranks[token] = rank
    if not ranks:
        raise TiktokenFileError(f"{name}: no ranks in the file. Name a tiktoken rank file (one 'base64 rank' a line).")
    return ranks


def load_tiktoken_file(path: str | os.PathLike[str], *, pattern: str | None = None,
                       special_tokens: Mapping[str, int] | None = None) -> tiktoken.Encoding:
    """Load a tiktoken rank file as a ``tiktoken.Encoding``.

    Args:
        path: the file.
        pattern: the split regex, or a known encoding's name (``known_patterns()``). Default: taken from the
            published encoding the file is (recognised by sha256); required for any other file.
        special_tokens: ``{token: id}`` (default: the published encoding's, or none for another file).

    Returns:
        The encoding: named after the published encoding it is (``"r50k_base"``), else the path as given.

    Raises:
        FileNotFoundError: no such file. TiktokenFileError (a ValueError): a bad line, duplicate ranks, an unknown
            pattern name or a regex that does not compile, no pattern for an unrecognised file, or a special token
            whose id is a rank.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"No such tiktoken file: {str(p)!r}. Check the path.")
    shown = os.fspath(path)
    data = p.read_bytes()
    ranks = parse_ranks(data, name=shown)
    known = recognise(data)
    published = _published().get(known) if known else None
    if pattern is None:
        if published is None:
            names = ", ".join(sorted(known_patterns()))
            raise TiktokenFileError(f"{shown} is not one of OpenAI's published tiktoken files (by sha256), so its "
                                    "split "
                                    f"pattern is unknown: pass pattern= (--pattern), a name among {names}, or a regex.")
        pat_str = published["pat_str"]
    else:
        pat_str = _pattern(pattern)
    if special_tokens is None:
        special_tokens = published["special_tokens"] if published is not None else {}
    clash = sorted(set(special_tokens.values()) & set(ranks.values()))
    if clash:
        raise TiktokenFileError(f"{shown}: special token id {clash[0]:,} is already the rank of an ordinary token. "
                                f"Give special tokens ids from {max(ranks.values()) + 1:,} up.")
    name = known if known is not None and pattern is None and special_tokens == published["special_tokens"] else shown  # type: ignore[index]
    try:
        return tiktoken.Encoding(name=name, pat_str=pat_str, mergeable_ranks=ranks, special_tokens=dict(special_tokens))
    except ValueError as exc:
        raise TiktokenFileError(f"{shown}: tiktoken refuses it ({exc}). Check the pattern and special tokens."
                                ) from None


def _pattern(pattern: str) -> str:
    """A known encoding's regex by name, or ``pattern`` itself after checking that it compiles."""
    known = known_patterns()
    if pattern in known:
        return known[pattern]
    import regex

    looks_like_name = pattern.replace("_", "").isalnum()
    try:
        regex.compile(pattern)
    except regex.error as exc:
        raise TiktokenFileError(f"pattern {pattern!r} is neither a known pattern name ({', '.join(sorted(known))}) nor "
                                f"a regex that compiles ({exc}). Pass one of those names, or a valid regex.") from None
    if looks_like_name:
        raise TiktokenFileError(f"Unknown pattern name {pattern!r}. Known names: {', '.join(sorted(known))}; or pass "
                                "the regex itself.")
    return pattern
