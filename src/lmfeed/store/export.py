"""``export``: write a store's ids in the raw formats other trainers read.

- ``"nanogpt"``: the bare uint16 ids, as nanoGPT's ``data/*/prepare.py`` writes ``train.bin`` and its ``train.py``
  reads it (``np.memmap(path, dtype=np.uint16, mode="r")``).
- ``"llmc"``: llm.c's GPT-2 token file: a header of 256 int32 (magic 20240520, version 1, the token count, zeros)
  followed by the uint16 ids.

The token stream is copied as it is (separators between documents), a block at a time, to a temporary name that is
renamed into place when whole.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from lmfeed._validate import as_choice
from lmfeed.store.format import TokenStore
from lmfeed.store.writer import check_parent

__all__ = ["export"]

ExportFormat = Literal["nanogpt", "llmc"]
_BLOCK = 1 << 24
_LLMC_MAGIC, _LLMC_VERSION = 20240520, 1


def export(store: TokenStore | str | os.PathLike[str], out: str | os.PathLike[str], *,
           format: ExportFormat = "nanogpt", force: bool = False) -> Path:
    """Write ``store``'s ids to the file ``out`` in ``format``; return its path.

    Args:
        store: a store or its path.
        out: the file to write (must not exist unless ``force``).
        format: ``"nanogpt"`` (default: raw uint16) or ``"llmc"`` (llm.c's 1,024-byte header, then uint16).
        force: replace an existing file.

    Raises:
        ValueError: the store holds uint32 ids (both formats are uint16), or too many for llm.c's int32 count.
        FileExistsError: ``out`` exists and ``force`` is not set.

    Example:
        >>> export("corpus.store", "train.bin")  # doctest: +SKIP
        PosixPath('train.bin')
        >>> np.memmap("train.bin", dtype=np.uint16, mode="r")[:2]  # doctest: +SKIP
        memmap([15496,   995], dtype=uint16)
    """
    format = as_choice("format", format, ("nanogpt", "llmc"))
    store = store if isinstance(store, TokenStore) else TokenStore.open(store)
    if store.tokens.dtype != np.uint16:
        raise ValueError(f"{format} files hold uint16 ids, but {str(store.path)!r} holds {store.tokens.dtype} "
                         f"(its vocabulary has {store.metadata['tokenizer'].get('n_vocab', '?')} ids). Use the store's "
                         "tokens.npy directly.")
    if format == "llmc" and len(store) >= 2**31:
        raise ValueError(f"llm.c's header counts tokens in an int32, but the store has {len(store):,}. "
                         "Export shards of it.")
    path = Path(out)
    if (path.exists() or path.is_symlink()) and not force:
        raise FileExistsError(f"{str(path)!r} already exists. Pass --force (force=True) to replace it.")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a directory; name the .bin file to write, "
                                f"e.g. {str(path / 'train.bin')!r}.")
    check_parent(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            if format == "llmc":
                header = np.zeros(256, dtype="<i4")
                header[:3] = (_LLMC_MAGIC, _LLMC_VERSION, len(store))
                f.write(header.tobytes())
            for a in range(0, len(store), _BLOCK):
                f.write(np.ascontiguousarray(store.tokens[a : a + _BLOCK], dtype="<u2").tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
