"""Any Hugging Face ``tokenizer.json``, with the part of ``tiktoken.Encoding``'s interface that lmfeed uses.

The ids are those of the ``tokenizers`` library (the reference for the format): a document is encoded as ordinary
text, ``Tokenizer.encode(text, add_special_tokens=False)`` with ``encode_special_tokens = True``, so a literal
``<|endoftext|>`` (or ``</s>``) inside a document stays text and no post-processor adds a BOS of its own; lmfeed
puts the separator between documents itself (``prepare``'s ``separator``).

Which special token ends or opens a document comes from ``tokenizer_config.json`` beside the file (``eos_token``,
``bos_token``, as ``save_pretrained`` writes them) or, without one, from the usual names (``<|endoftext|>``,
``</s>``, ``<|end_of_text|>``, ``<eos>``; ``<s>``, ``<|begin_of_text|>``, ``<bos>``).

Example:
    >>> enc = load_tokenizer_json("tokenizer.json")  # doctest: +SKIP
    >>> enc.encode_ordinary("Hello world"), enc.n_vocab, enc.eot_token  # doctest: +SKIP
    ([15496, 995], 50257, 50256)
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = ["HFTokenizer", "TokenizerFileError", "load_tokenizer_json", "find_tokenizer_json"]

_EOS_NAMES = ("<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>", "<|eos|>")
_BOS_NAMES = ("<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>")
# what does not change a single id: the fingerprint leaves these out
_NOT_IDS = ("truncation", "padding", "decoder")


class TokenizerFileError(ValueError):
    """A tokenizer file that cannot be used: missing, not JSON, or not a tokenizer the ``tokenizers`` library loads."""


def find_tokenizer_json(path: str | os.PathLike[str]) -> Path:
    """The ``tokenizer.json`` named by ``path``: the file itself, or the one inside a directory.

    Raises:
        FileNotFoundError: no such file, or a directory without ``tokenizer.json``.
    """
    p = Path(path)
    if p.is_dir():
        if not (p / "tokenizer.json").is_file():
            raise FileNotFoundError(f"Directory {str(p)!r} has no tokenizer.json. Name the tokenizer file itself, or a "
                                    "directory written by save_pretrained.")
        return p / "tokenizer.json"
    if not p.is_file():
        raise FileNotFoundError(f"No such tokenizer file: {str(p)!r}. Check the path, or use tokenizer='gpt2'.")
    return p


class HFTokenizer:
    """A ``tokenizer.json`` loaded with ``tokenizers``, shaped like a ``tiktoken.Encoding`` for lmfeed's needs.

    Attributes:
        name: how it was named (the path as given): stores record it, and reopen it by it.
        n_vocab: ids run from 0 to ``n_vocab - 1`` (added tokens included).
        eot_token: the end-of-document (EOS) id, or ``None`` when the tokenizer has none.
        bos_token: the begin-of-document (BOS) id, or ``None``.
        json_text: the file's text (fastokens loads exactly this).
    """

    def __init__(self, json_text: str, *, name: str, eos: str | None = None, bos: str | None = None) -> None:
        from tokenizers import Tokenizer

        try:
            self._tok = Tokenizer.from_str(json_text)
        except Exception as exc:  # noqa: BLE001 - the Rust side raises plain Exception
            raise TokenizerFileError(f"{name}: not a tokenizer.json the tokenizers library can load "
                                     f"({' '.join(str(exc).split())[:200]}). Check the file (save it again with "
                                     "Tokenizer.save or save_pretrained), or use tokenizer='gpt2'.") from None
        self._tok.encode_special_tokens = True  # a literal special token in a document is text
        self.name = name
        self.json_text = json_text
        self._doc = json.loads(json_text)
        added = self._tok.get_added_tokens_decoder()
        self._special_tokens = {t.content: i for i, t in added.items() if t.special}
        self.n_vocab = max([self._tok.get_vocab_size(with_added_tokens=True) - 1, *added]) + 1
        self.max_token_value = self.n_vocab - 1
        self.eos_name = self._pick(eos, _EOS_NAMES)
        self.bos_name = self._pick(bos, _BOS_NAMES)
        self.eot_token: int | None = self._special_tokens.get(self.eos_name) if self.eos_name else None
        self.bos_token: int | None = self._special_tokens.get(self.bos_name) if self.bos_name else None

    def _pick(self, declared: str | None, names: Sequence[str]) -> str | None:
        if declared is not None and declared in self._special_tokens:
            return declared
        return next((n for n in names if n in self._special_tokens), None)

    # ---- tiktoken.Encoding's interface ---------------------------------------------------------------------

    @property
    def special_tokens_set(self) -> set[str]:
        return set(self._special_tokens)

    def encode_single_token(self, token: str) -> int:
        """The id of one token (a special token, or one piece of the vocabulary).

        Raises:
            KeyError: ``token`` is not one token of this vocabulary.
        """
        i = self._tok.token_to_id(token)
        if i is None:
            raise KeyError(token)
        return int(i)

    def encode_ordinary(self, text: str) -> list[int]:
        """``text``'s ids, special tokens in it taken as text (GPT-2's: ``"Hello world"`` -> ``[15496, 995]``)."""
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def encode_ordinary_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(e.ids) for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def encode(self, text: str, *, allowed_special: Literal["all"] | Collection[str] = frozenset(),
               disallowed_special: Literal["all"] | Collection[str] = "all") -> list[int]:
        """As ``tiktoken.Encoding.encode``: the allowed special tokens become their ids; a disallowed one is an error.

        Raises:
            ValueError: the text holds a special token that is neither allowed nor explicitly disallowed.
        """
        allowed = self.special_tokens_set if allowed_special == "all" else set(allowed_special)
        disallowed = (self.special_tokens_set - allowed) if disallowed_special == "all" else set(disallowed_special)
        for token in disallowed:
            if token in text:
                raise ValueError(f"Encountered text corresponding to disallowed special token {token!r}. If you want "
                                 f"this text to be encoded as a special token, pass it to `allowed_special`, e.g. "
                                 f"`allowed_special={{{token!r}, ...}}`. To encode it as normal text, use "
                                 "encode_ordinary.")
        return self.encode_to_numpy(text, allowed_special=allowed).tolist()

    def encode_to_numpy(self, text: str, *, allowed_special: Collection[str] = frozenset(),
                        disallowed_special: Any = ()) -> np.ndarray:
        """``encode``'s ids as a (N,) uint32 array (the allowed special tokens become their ids)."""
        allowed = [t for t in allowed_special if t in text]
        if not allowed:
            return np.asarray(self.encode_ordinary(text), dtype=np.uint32)
        def parts(pieces: list[str]) -> list[np.ndarray]:
            return [np.asarray(x, dtype=np.uint32) for x in self.encode_ordinary_batch(pieces)]

        return encode_with_specials(parts, text, {t: self._special_tokens[t] for t in allowed})

    def encode_batch(self, texts: Sequence[str], **kwargs: Any) -> list[list[int]]:
        return [self.encode(t, **kwargs) for t in texts]

    def decode(self, tokens: Sequence[int], errors: str = "replace") -> str:
        """The text of ``tokens`` (special tokens written out), as the tokenizer's decoder makes it."""
        return self._tok.decode([int(t) for t in tokens], skip_special_tokens=False)

    def decode_single_token_bytes(self, token: int) -> bytes:
        """One token's bytes (byte-level BPE: exactly its bytes; other models: its decoded text).

        Raises:
            KeyError: no token has this id.
        """
        return _token_bytes(self, int(token))

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        return b"".join(self.decode_single_token_bytes(t) for t in tokens)

    # ---- what lmfeed needs beyond tiktoken's interface ---------------------------------------------------

    @property
    def tokenizer(self) -> Any:
        """The underlying ``tokenizers.Tokenizer`` (``encode_special_tokens`` set: special tokens are text)."""
        return self._tok

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 over all that decides the ids: the model (vocabulary, merges), normalizer, pre-tokenizer, added
        tokens; not truncation, padding or the decoder. Key order and whitespace of the file do not matter."""
        decides = {k: v for k, v in self._doc.items() if k not in _NOT_IDS}
        return hashlib.sha256(json.dumps(decides, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    @functools.cached_property
    def gpt2_pretokenizer(self) -> bool:
        """Whether documents may be cut where GPT-2's pre-tokenizer is sure to cut (see ``store.prepare.safe_split``):
        no normalizer, a byte-level pre-tokenizer with GPT-2's regex and no prefix space, and no added token that
        holds whitespace (added tokens are matched before pre-tokenizing)."""
        pre = self._doc.get("pre_tokenizer") or {}
        if pre.get("type") == "Sequence" and len(pre.get("pretokenizers", [])) == 1:
            pre = pre["pretokenizers"][0]
        byte_level = pre.get("type") == "ByteLevel" and pre.get("use_regex", True) and not pre.get("add_prefix_space")
        spaced = any(any(c.isspace() for c in t.content) for t in self._tok.get_added_tokens_decoder().values()
                     if not t.special)
        return bool(byte_level) and self._doc.get("normalizer") is None and not spaced

    @functools.cached_property
    def byte_level(self) -> bool:
        """Whether the vocabulary is byte-level (GPT-2's printable stand-ins for bytes)."""
        return (self._doc.get("decoder") or {}).get("type") == "ByteLevel"

    def __repr__(self) -> str:
        return f"<HFTokenizer {self.name!r} n_vocab={self.n_vocab:,} eos={self.eos_name!r} bos={self.bos_name!r}>"

    def __getstate__(self) -> dict[str, Any]:
        return {"json_text": self.json_text, "name": self.name, "eos": self.eos_name, "bos": self.bos_name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["json_text"], name=state["name"], eos=state["eos"], bos=state["bos"])  # type: ignore[misc]


def encode_with_specials(encode_parts: Any, text: str, allowed: dict[str, int]) -> np.ndarray:
    """Encode ``text`` with the ``allowed`` special tokens as their ids and everything between as ordinary text,
    as tiktoken does (leftmost match, longest token first); ``encode_parts(list_of_str) -> list of uint32 arrays``."""
    import re

    pattern = re.compile("|".join(re.escape(t) for t in sorted(allowed, key=len, reverse=True)))
    parts, ids = [], []
    last = 0
    for m in pattern.finditer(text):
        parts.append(text[last : m.start()])
        ids.append(allowed[m.group()])
        last = m.end()
    parts.append(text[last:])
    encoded = encode_parts(parts)
    out: list[np.ndarray] = [encoded[0]]
    for special, piece in zip(ids, encoded[1:], strict=True):
        out += [np.array([special], dtype=np.uint32), piece]
    return np.concatenate(out).astype(np.uint32, copy=False)


def _token_bytes(enc: HFTokenizer, token: int) -> bytes:
    piece = enc._tok.id_to_token(token)
    if piece is None:
        raise KeyError(token)
    if token in enc._special_tokens.values():
        return piece.encode("utf-8")
    if enc.byte_level:
        from lmfeed.text.tokenizer import gpt2_byte_decoder

        table = gpt2_byte_decoder()
        if all(ord(c) in table for c in piece):
            return bytes(table[ord(c)] for c in piece)
    return enc._tok.decode([token], skip_special_tokens=False).encode("utf-8", errors="surrogatepass")


def _declared_roles(file: Path) -> tuple[str | None, str | None]:
    """``eos_token`` and ``bos_token`` from a ``tokenizer_config.json`` beside ``file``, if any."""
    config = file.parent / "tokenizer_config.json"
    try:
        doc = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None

    def content(v: Any) -> str | None:
        if isinstance(v, dict):
            v = v.get("content")
        return v if isinstance(v, str) else None

    return (content(doc.get("eos_token")), content(doc.get("bos_token"))) if isinstance(doc, dict) else (None, None)


def load_tokenizer_json(path: str | os.PathLike[str], *, name: str | None = None) -> HFTokenizer:
    """Load a ``tokenizer.json`` (a file, or a directory holding one as ``save_pretrained`` writes).

    Args:
        path: the file or directory.
        name: what the tokenizer is called in stores and messages (default: ``path`` as given).

    Returns:
        An :class:`HFTokenizer`.

    Raises:
        FileNotFoundError: no such file, or a directory without ``tokenizer.json``.
        TokenizerFileError (a ValueError): the file is not UTF-8 JSON, or ``tokenizers`` cannot load it.

    Example:
        >>> load_tokenizer_json("my-bpe/tokenizer.json").encode_ordinary("Hello")  # doctest: +SKIP
        [2, 118, 1021]
    """
    file = find_tokenizer_json(path)
    shown = os.fspath(path) if name is None else name
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TokenizerFileError(f"{str(file)!r} is not UTF-8 (byte {exc.start:,}): not a tokenizer.json. Check the "
                                 "file.") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise TokenizerFileError(f"{str(file)!r} is not valid JSON ({exc}). A tokenizer.json is written by "
                                 "Tokenizer.save or save_pretrained; check the file, or use tokenizer='gpt2'."
                                 ) from None
    if not isinstance(doc, dict) or "model" not in doc:
        raise TokenizerFileError(f"{str(file)!r} is JSON but not a tokenizer.json (it has no \"model\"). Name the "
                                 "tokenizer.json file, or use tokenizer='gpt2'.")
    eos, bos = _declared_roles(file)
    return HFTokenizer(text, name=shown, eos=eos, bos=bos)
