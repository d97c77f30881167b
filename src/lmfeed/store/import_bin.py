"""``import_tokens``: turn the token files other trainers write back into a store, the way ``export`` writes them.

- ``"nanogpt"``: nanoGPT's ``train.bin``, bare uint16 ids (``data/*/prepare.py`` appends the end-of-text id to every
  document, so such a file usually ends with one).
- ``"llmc"``: llm.c's token shards: a header of 256 int32 (magic 20240520, version 1, the token count) then uint16
  ids (its ``fineweb.py`` puts the end-of-text id before every document).
- ``"auto"`` (default): llm.c when the file starts with its magic number, else nanoGPT.

Documents are cut at every end-of-text id, which becomes the separator between them, as in a prepared store; one
end-of-text at the very start or the very end of a file opens or closes a document (nanoGPT's and llm.c's
layouts) and is not an empty document of its own. So ``import_tokens(export(S))`` gives back ``S``'s ids and
documents, with or without ``eot_after_last``, whenever ``S``'s first and last documents are not empty. Several
files join in the order given, a separator between them. Every id is checked against the vocabulary; memory stays
flat (a block at a time from a memory map).

Example:
    >>> store = import_tokens(["data/shakespeare/train.bin"], "shakespeare.store")  # doctest: +SKIP
    >>> store.num_documents, store.tokens[:2].tolist()  # doctest: +SKIP
    (1, [5962, 22307])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lmfeed._validate import as_choice
from lmfeed.store.format import TokenStore, check_ids
from lmfeed.store.writer import StoreWriter, check_apart, output_path, staging_dir

__all__ = ["ImportFormat", "import_tokens", "read_token_file"]

ImportFormat = Literal["auto", "nanogpt", "llmc"]
LLMC_MAGIC, LLMC_VERSION, LLMC_HEADER_BYTES = 20240520, 1, 1024
_BLOCK = 1 << 24


def read_token_file(path: str | os.PathLike[str], format: ImportFormat = "auto") -> tuple[np.ndarray, str]:
    """The ids of a nanoGPT or llm.c token file as a read-only (N,) uint16 memory map, and the format found.

    Raises:
        FileNotFoundError: no such file. ValueError: a size that is not whole uint16 ids, an llm.c header with
            another magic number or version, or a count that disagrees with the file's size.
    """
    format = as_choice("format", format, ("auto", "nanogpt", "llmc"))
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"No such token file: {str(p)!r}. Check the path.")
    size = p.stat().st_size
    header = np.fromfile(p, dtype="<i4", count=min(256, size // 4))
    if format == "auto":
        format = "llmc" if len(header) >= 1 and header[0] == LLMC_MAGIC else "nanogpt"
    offset = 0
    if format == "llmc":
        if len(header) < 256 or header[0] != LLMC_MAGIC:
            raise ValueError(f"{str(p)!r} is not an llm.c token file: it does not start with the magic number "
                             f"{LLMC_MAGIC} and a 1,024-byte header. Pass --format nanogpt for a raw uint16 file.")
        if header[1] != LLMC_VERSION:
            raise ValueError(f"{str(p)!r} is llm.c token file version {int(header[1])}; lmfeed reads version "
                             f"{LLMC_VERSION} (GPT-2's uint16 ids).")
        offset, count = LLMC_HEADER_BYTES, int(header[2])
        if size != offset + 2 * count:
            raise ValueError(f"{str(p)!r} says it holds {count:,} tokens ({offset + 2 * count:,} bytes with its "
                             f"header), but it is {size:,} bytes: truncated or damaged.")
    elif size % 2:
        raise ValueError(f"{str(p)!r} is {size:,} bytes, an odd number: not whole uint16 ids (nanoGPT's format). "
                         "Check the file.")
    n = (size - offset) // 2
    if n == 0:
        return np.zeros(0, dtype=np.uint16), format
    return np.memmap(p, dtype="<u2", mode="r", offset=offset, shape=(n,)), format


def import_tokens(inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
                  *, format: ImportFormat = "auto", tokenizer: Any = "gpt2", force: bool = False) -> TokenStore:
    """Make a store at ``out`` from nanoGPT ``.bin`` or llm.c token files, documents cut at end-of-text; open it.

    Args:
        inputs: one file or several, joined in order.
        out: the store's directory (must not exist unless ``force``).
        format: ``"auto"`` (default: llm.c by its magic number, else nanoGPT), ``"nanogpt"`` or ``"llmc"``.
        tokenizer: the tokenizer the ids are from (default ``"gpt2"``: both formats hold GPT-2 ids); it decides
            the end-of-text id and the vocabulary the ids are checked against.
        force: replace an existing store at ``out``.

    Returns:
        The opened store.

    Raises:
        ValueError: a file that is not of the format, an id at or above the vocabulary size (naming the file and
            the offset), a tokenizer without an end-of-text token, or an output that is one of the inputs.
        FileNotFoundError: an input is missing. FileExistsError: ``out`` exists and ``force`` is not set.

    Example:
        >>> import_tokens("train.bin", "train.store").tokens[:2].tolist()  # doctest: +SKIP
        [15496, 995]
    """
    from lmfeed.store.prepare import store_metadata
    from lmfeed.text.tokenizer import ENDOFTEXT, resolve_tokenizer

    if isinstance(inputs, (str, bytes, os.PathLike)):
        inputs = [inputs]
    paths = [Path(os.fsdecode(i)) for i in inputs]
    if not paths:
        raise ValueError("No token files to import. Name at least one .bin file.")
    enc = resolve_tokenizer(tokenizer)
    if ENDOFTEXT not in enc.special_tokens_set:
        raise ValueError(f"Tokenizer {enc.name!r} has no {ENDOFTEXT} token to cut documents at.")
    eot = enc.encode_single_token(ENDOFTEXT)
    if enc.n_vocab > 2**16:
        raise ValueError(f"nanoGPT and llm.c files hold uint16 ids, but tokenizer {enc.name!r} has {enc.n_vocab:,}.")
    out_path = output_path(out)
    check_apart(out_path, paths, role="an input")
    arrays = [read_token_file(p, format) for p in paths]  # every file checked before any work
    with staging_dir(out_path, force=force) as tmp:
        writer = StoreWriter(tmp, dtype="uint16", eot_id=eot)
        try:
            for p, (ids, _) in zip(paths, arrays, strict=True):
                _import_one(writer, ids, p, eot, enc.n_vocab)
        except BaseException:
            writer.close()
            raise
        metadata = store_metadata(enc, [], documents=writer.num_documents, allow_special=False, errors="strict",
                                  field="", format="tokens", glob="", separator="eos", separator_id=eot)
        metadata["sources"] = [{"input": str(p), "files": 1, "bytes": p.stat().st_size, "format": found}
                               for p, (_, found) in zip(paths, arrays, strict=True)]
        metadata["options"] = {"allow_special": False}
        metadata["split"] = None
        writer.finish(metadata)
        TokenStore.open(tmp)  # every check before the store takes its name
    return TokenStore.open(out_path, tokenizer=enc)


def _import_one(writer: StoreWriter, ids: np.ndarray, path: Path, eot: int, n_vocab: int) -> None:
    """Append one file's documents: cut at each end-of-text, one at either end of the file dropped."""
    n = len(ids)
    lead = 1 if n and ids[0] == eot else 0
    trail = 1 if n - lead and ids[n - 1] == eot else 0
    if writer.num_documents:
        writer.write_chunk(np.array([eot], dtype=np.uint16), np.zeros(0, dtype=np.int64))  # between files
    writer.write_chunk(np.zeros(0, dtype=np.uint16), np.zeros(1, dtype=np.int64))  # the file's first document
    after_eot = False
    for a in range(lead, n - trail, _BLOCK):
        block = np.asarray(ids[a : min(a + _BLOCK, n - trail)])
        check_ids(block, n_vocab, where=path, offset=a)
        starts = np.flatnonzero(block == eot) + 1  # a document starts after every end-of-text
        if after_eot:
            starts = np.concatenate([[0], starts])
        after_eot = bool(len(starts)) and starts[-1] == len(block)
        if after_eot:
            starts = starts[:-1]  # it starts in the next block (or is an empty last document)
        writer.write_chunk(block, starts)
    if after_eot:
        writer.write_chunk(np.zeros(0, dtype=np.uint16), np.zeros(1, dtype=np.int64))
