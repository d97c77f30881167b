"""Put lmfeed's verified GPT-2 files where tiktoken looks for them, so ``tiktoken.get_encoding("gpt2")`` works offline.

The book's own code calls ``tiktoken.get_encoding("gpt2")``, which downloads ``vocab.bpe`` and ``encoder.json`` on
first use. tiktoken first looks in its cache: the directory ``TIKTOKEN_CACHE_DIR`` (else ``DATA_GYM_CACHE_DIR``,
else ``<tmp>/data-gym-cache``), a file named by the sha1 of the download URL, accepted when its sha256 is the one
tiktoken pins. lmfeed ships those two files (hash-checked, :mod:`lmfeed.text.tokenizer`); this writes them there,
under the names tiktoken's own loader asks for (found by asking it, not by copying its URLs), whole (temp name +
rename).

Example:
    >>> install_tiktoken_cache()  # doctest: +SKIP
    PosixPath('/tmp/data-gym-cache')
    >>> import tiktoken; tiktoken.get_encoding("gpt2").encode("Hello world")  # doctest: +SKIP
    [15496, 995]
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from lmfeed._files import written_whole

__all__ = ["install_tiktoken_cache", "tiktoken_cache_dir"]


def tiktoken_cache_dir() -> Path:
    """The directory tiktoken reads its cache from, chosen as ``tiktoken.load.read_file_cached`` chooses it.

    Raises:
        ValueError: ``TIKTOKEN_CACHE_DIR`` is set to the empty string, which turns tiktoken's cache off.
    """
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        chosen = os.environ["TIKTOKEN_CACHE_DIR"]
        if chosen == "":
            raise ValueError("TIKTOKEN_CACHE_DIR is set to '', which turns tiktoken's cache off, so tiktoken would "
                             "always download. Set it to a directory (or unset it), then run this again.")
        return Path(chosen)
    if os.environ.get("DATA_GYM_CACHE_DIR"):
        return Path(os.environ["DATA_GYM_CACHE_DIR"])
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def _gpt2_blobs() -> dict[str, bytes]:
    """tiktoken's GPT-2 download URLs -> lmfeed's verified bytes, found by running tiktoken's own GPT-2 constructor
    with its cache reader answered from lmfeed's files (matched by the sha256 tiktoken pins)."""
    import tiktoken.load
    from tiktoken_ext import openai_public

    from lmfeed.text.tokenizer import gpt2_file

    ours = {}
    for name in ("vocab.bpe", "encoder.json"):
        data = Path(gpt2_file(name)).read_bytes()  # hash-checked against the pinned sha256
        ours[hashlib.sha256(data).hexdigest()] = data
    asked: dict[str, bytes] = {}

    def answer(blobpath: str, expected_hash: str | None = None) -> bytes:
        if expected_hash not in ours:
            raise ValueError(f"tiktoken asked for {blobpath} with sha256 {expected_hash}, which is not one of "
                             "lmfeed's GPT-2 files; this tiktoken version is not supported here.")
        asked[blobpath] = ours[expected_hash]
        return ours[expected_hash]

    real = tiktoken.load.read_file_cached
    tiktoken.load.read_file_cached = answer
    try:
        openai_public.gpt2()
    finally:
        tiktoken.load.read_file_cached = real
    return asked


def install_tiktoken_cache(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Place GPT-2's ``vocab.bpe`` and ``encoder.json`` in tiktoken's cache; then ``tiktoken.get_encoding("gpt2")``
    needs no network.

    Args:
        cache_dir: where to write them. Default: the directory tiktoken reads (``TIKTOKEN_CACHE_DIR``, else
            ``DATA_GYM_CACHE_DIR``, else ``<tmp>/data-gym-cache``). Another directory is read by tiktoken only when
            ``TIKTOKEN_CACHE_DIR`` names it.

    Returns:
        The directory written to.

    Raises:
        ValueError: ``TIKTOKEN_CACHE_DIR`` is ``''`` (tiktoken's cache off), or the vocabulary files fail their
            hash check. OSError: the directory cannot be written.

    Example:
        >>> install_tiktoken_cache("/tmp/tiktoken")  # doctest: +SKIP
        PosixPath('/tmp/tiktoken')
    """
    import tiktoken.load

    directory = Path(cache_dir) if cache_dir is not None else tiktoken_cache_dir()
    if str(directory) == "":
        raise ValueError("cache_dir is ''. Pass a directory, or leave it out to use tiktoken's own.")
    directory.mkdir(parents=True, exist_ok=True)
    for blobpath, data in _gpt2_blobs().items():
        target = directory / hashlib.sha1(blobpath.encode()).hexdigest()  # tiktoken's cache key for the URL
        if target.is_file() and target.read_bytes() == data:
            continue
        with written_whole(target) as f:
            f.write(data)
        # tiktoken accepts a cached file only if its sha256 is the pinned one: check it the way tiktoken will
        if not tiktoken.load.check_hash(target.read_bytes(), hashlib.sha256(data).hexdigest()):
            raise OSError(f"{target} did not read back as written; the disk may be failing.")
    return directory
