"""Encoding a ``tokenizer.json`` in bulk: ``tokenizers`` (the reference) or fastokens behind a self-check.

The same contract as ``lmfeed.text.backends`` for GPT-2: ``encode(texts) -> (ids, offsets)``, ordinary text (special
tokens in a document are text, no post-processor tokens). fastokens loads the very same ``tokenizer.json`` text;
it is used only after it encodes ``SELF_CHECK_TEXTS`` (one by one and as one batch) exactly as ``tokenizers`` does,
in this process; otherwise the reference encodes, with a one-line warning.

Threads: the reference's ``encode_batch`` runs on every core (Rayon). Inside ``prepare`` each worker process is one
core, so ``prepare`` turns that off (``TOKENIZERS_PARALLELISM=false``) before its workers start.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from lmfeed.text.hf_tokenizer import HFTokenizer, encode_with_specials

__all__ = ["hf_batch_encoder", "hf_select_backend", "one_core_per_process"]

logger = logging.getLogger(__name__)

_fast: dict[str, tuple[Any, str]] = {}  # fingerprint -> (encode or None, why not), once per process


def one_core_per_process() -> None:
    """Keep ``tokenizers`` on one thread in this process (and in the processes it forks), unless the user chose."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _reference(enc: HFTokenizer) -> Any:
    tok = enc.tokenizer

    def encode(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        encodings = tok.encode_batch(list(texts), add_special_tokens=False)
        arrays = [np.asarray(e.ids, dtype=np.uint32) for e in encodings]
        ids = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint32)
        return ids, np.cumsum([0] + [len(a) for a in arrays], dtype=np.int64)

    return encode


def _load_fast(enc: HFTokenizer) -> tuple[Any, str]:
    """(encode, "") when fastokens loads this tokenizer.json and passes the self-check, else (None, why not)."""
    if enc.fingerprint in _fast:
        return _fast[enc.fingerprint]
    from lmfeed.text.backends import SELF_CHECK_TEXTS, fastokens_available, self_check

    if not fastokens_available():
        result: tuple[Any, str] = (None, "fastokens is not installed")
    else:
        os.environ["FASTOKENS_BPE_THREADS"] = "1"  # one core per process, as for GPT-2
        try:
            import fastokens

            fast = fastokens.Tokenizer.from_json_str(enc.json_text)

            def encode(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
                ids, offsets = fast.encode_batch_flat(list(texts), add_special_tokens=False, split_special_tokens=True)
                return np.frombuffer(ids, dtype="<u4"), np.frombuffer(offsets, dtype="<u8").astype(np.int64)

            specials = [t for t in sorted(enc.special_tokens_set)[:4]]
            texts = [*SELF_CHECK_TEXTS, " ".join(specials) + " a" + "".join(specials) + "b"]
            problem = self_check(encode, enc, texts)
            result = (None, problem.replace("tiktoken", "tokenizers")) if problem else (encode, "")
        except Exception as exc:  # noqa: BLE001 - any failure to load means: do not use it
            why = " ".join(str(exc).split())[:160]
            result = (None, f"fastokens cannot load {enc.name} ({type(exc).__name__}: {why})")
    _fast[enc.fingerprint] = result
    return result


def hf_select_backend(backend: str, enc: HFTokenizer) -> Literal["tiktoken", "fastokens"]:
    """``"tiktoken"`` (here: the reference, ``tokenizers``) or ``"fastokens"``, as ``backends.select_backend``.

    Raises:
        ValueError: ``backend="fastokens"`` but fastokens is missing, cannot load the file, or fails the self-check.
    """
    if backend == "tiktoken":
        return "tiktoken"
    encode, why = _load_fast(enc)
    if encode is not None:
        return "fastokens"
    if backend == "fastokens":
        raise ValueError(f"backend='fastokens' cannot be used for {enc.name}: {why}. Use backend='auto' or "
                         "'tiktoken' (which for a tokenizer.json means the tokenizers library, the reference).")
    from lmfeed.text.backends import fastokens_available

    if fastokens_available():
        logger.warning("lmfeed: encoding %s with tokenizers, not fastokens: %s", enc.name, why)
    return "tiktoken"


def hf_batch_encoder(backend: str, enc: HFTokenizer, *, allow_special: bool = False) -> Any:
    """``encode(texts) -> (ids, offsets)`` for a ``tokenizer.json``: the ids of ``tokenizers``.

    Args:
        backend: ``"auto"``, ``"tiktoken"`` (the reference) or ``"fastokens"``.
        enc: the tokenizer.
        allow_special: a literal end-of-document token (``enc.eos_name``, else ``enc.bos_name``) in a text becomes
            its id; every other special token stays text.
    """
    encode = _reference(enc) if hf_select_backend(backend, enc) == "tiktoken" else _load_fast(enc)[0]
    token = enc.eos_name or enc.bos_name
    if not allow_special or token is None:
        return encode
    allowed = {token: enc.encode_single_token(token)}

    def parts(pieces: list[str]) -> list[np.ndarray]:
        ids, offsets = encode(pieces)
        bounds = offsets.tolist()
        return [ids[bounds[i] : bounds[i + 1]] for i in range(len(pieces))]

    def encode_special(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        arrays = [encode_with_specials(parts, t, allowed) if token in t else parts([t])[0] for t in texts]
        ids = np.concatenate(arrays).astype(np.uint32, copy=False) if arrays else np.zeros(0, dtype=np.uint32)
        return ids, np.cumsum([0] + [len(a) for a in arrays], dtype=np.int64)

    return encode_special
