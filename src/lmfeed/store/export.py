"""``export``: write a store's ids in the raw formats other trainers read.

- ``"nanogpt"``: the bare uint16 ids, as nanoGPT's ``data/*/prepare.py`` writes ``train.bin`` and its ``train.py``
  reads it (``np.memmap(path, dtype=np.uint16, mode="r")``).
- ``"llmc"``: llm.c's GPT-2 token file: a header of 256 int32 (magic 20240520, version 1, the token count, zeros)
  followed by the uint16 ids.

The token stream is copied as it is (separators between documents), a block at a time, to a temporary name that is
renamed into place when whole.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Literal

import numpy as np

from lmfeed._files import written_whole
from lmfeed._validate import as_choice
from lmfeed.store.format import TOKENS, TokenStore, check_ids
from lmfeed.store.writer import check_apart, check_parent, output_path

__all__ = ["export"]

ExportFormat = Literal["nanogpt", "llmc"]
_BLOCK = 1 << 24
_LLMC_MAGIC, _LLMC_VERSION = 20240520, 1


def export(store: TokenStore | str | os.PathLike[str], out: str | os.PathLike[str], *,
           format: ExportFormat = "nanogpt", force: bool = False, eot_after_last: bool = False) -> Path:
    """Write ``store``'s ids to the file ``out`` in ``format``; return its path.

    Args:
        store: a store or its path.
        out: the file to write (must not exist unless ``force``); never the store itself or a file inside it.
        format: ``"nanogpt"`` (default: raw uint16) or ``"llmc"`` (llm.c's 1,024-byte header, then uint16).
        force: replace an existing file.
        eot_after_last: also end the last document with the end-of-text id, as nanoGPT's ``prepare.py`` scripts
            do (they append it to every document); default False: separators only between documents.

    Raises:
        ValueError: the store holds uint32 ids (both formats are uint16), too many for llm.c's int32 count, an id
            at or above the vocabulary size (a StoreError naming the offset), an output that is or lies inside the
            store, or ``eot_after_last`` for a store without separators.
        FileExistsError: ``out`` exists and ``force`` is not set.
        OSError: the disk filled up (the message names the file; nothing is left behind).

    Example:
        >>> export("corpus.store", "train.bin")  # doctest: +SKIP
        PosixPath('train.bin')
        >>> np.memmap("train.bin", dtype=np.uint16, mode="r")[:2]  # doctest: +SKIP
        memmap([15496,   995], dtype=uint16)
    """
    format = as_choice("format", format, ("nanogpt", "llmc"))
    if not isinstance(eot_after_last, bool):
        raise TypeError(f"eot_after_last must be True or False, but got {eot_after_last!r}.")
    path = output_path(out, what="the .bin file to write")
    store = store if isinstance(store, TokenStore) else TokenStore.open(store)
    if eot_after_last and store.eot_id is None:
        raise ValueError(f"{str(store.path)!r} has no end-of-text id (prepared with --no-eot), so there is none to "
                         "put after the last document. Leave out eot_after_last (--eot-after-last).")
    trailer = np.array([store.eot_id] if eot_after_last and len(store) else [], dtype="<u2")
    if store.tokens.dtype != np.uint16:
        raise ValueError(f"{format} files hold uint16 ids, but {str(store.path)!r} holds {store.tokens.dtype} "
                         f"(its vocabulary has {store.metadata['tokenizer'].get('n_vocab', '?')} ids). Use the store's "
                         "tokens.npy directly.")
    if format == "llmc" and len(store) >= 2**31:
        raise ValueError(f"llm.c's header counts tokens in an int32, but the store has {len(store):,}. "
                         "Export shards of it.")
    check_apart(path, [store.path], role="the store being exported")
    if (path.exists() or path.is_symlink()) and not force:
        raise FileExistsError(f"{str(path)!r} already exists. Pass --force (force=True) to replace it.")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a directory; name the .bin file to write, "
                                f"e.g. {str(path / 'train.bin')!r}.")
    check_parent(path)
    existed = path.exists()
    try:
        with written_whole(path, fsync=True) as f:
            if format == "llmc":
                header = np.zeros(256, dtype="<i4")
                header[:3] = (_LLMC_MAGIC, _LLMC_VERSION, len(store) + len(trailer))
                f.write(header.tobytes())
            for a in range(0, len(store), _BLOCK):
                block = store.tokens[a : a + _BLOCK]
                check_ids(block, store.vocab_size, where=store.path / TOKENS, offset=a)  # never export a bad id
                f.write(np.ascontiguousarray(block, dtype="<u2").tobytes())
            f.write(trailer.tobytes())
    except OSError as exc:  # written_whole has removed its temporary file
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            kept = f"; the file already at {str(path)!r} is unchanged" if existed else ""
            raise OSError(exc.errno, f"No space left on the device while writing {str(path)!r} "
                          f"({len(store) * 2:,} bytes needed). Free space there, or choose another output; nothing "
                          f"was written{kept}.") from None
        raise
    return path
