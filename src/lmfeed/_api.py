"""``lmfeed.prepare``: one entry point for every engine, above both ``store`` and ``engines``.

``store`` never imports ``engines`` (the layout's arrows run text -> store -> engines), so the choice of engine is
made here, where the public name and the CLI meet: ``engine="local"`` runs ``lmfeed.store.prepare.prepare`` in this
machine's processes, ``engine="ray"`` runs ``lmfeed.engines.ray_engine.prepare_ray`` on a Ray cluster. Both write
the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

from lmfeed._validate import as_choice
from lmfeed.store.format import TokenStore
from lmfeed.store.prepare import TrainVal
from lmfeed.text.backends import Backend
from lmfeed.text.sources import DecodeErrors, InputFormat

__all__ = ["prepare", "Engine"]

Engine = Literal["local", "ray"]


def prepare(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Any,
    out: str | os.PathLike[str],
    *,
    tokenizer: Any = "gpt2",
    backend: Backend = "auto",
    glob: str = "*",
    field: str = "text",
    format: InputFormat = "auto",
    errors: DecodeErrors = "strict",
    allow_special: bool = False,
    eot: bool = True,
    separator: Literal["auto", "eos", "bos", "none"] = "auto",
    on_bad_record: Literal["error", "skip"] = "error",
    workers: int | None = None,
    num_shards: int = 1,
    shard_index: int = 0,
    val_fraction: float = 0.0,
    seed: int = 0,
    force: bool = False,
    progress: bool = False,
    engine: Engine = "local",
    address: str | None = None,
    num_tasks: int | None = None,
    parts: str | None = None,
    include_hidden: bool = False,
) -> TokenStore | TrainVal:
    """Tokenize text files, directories or JSON Lines into a token store at ``out``, on this machine or a cluster.

    Every option but ``engine``, ``address``, ``num_tasks`` and ``parts`` is ``lmfeed.store.prepare.prepare``'s (see
    there); the store's bytes are the
    same whatever the engine, the workers or the tasks.

    Args:
        engine: ``"local"`` (default: this machine's processes, ``workers`` of them) or ``"ray"`` (a Ray cluster's
            CPUs: ``pip install 'lmfeed[ray]'``; OUT must be on a filesystem every node sees).
        address: with ``engine="ray"``: ``None`` (default: ``RAY_ADDRESS``, the cluster this process is connected
            to, or else a local instance on 127.0.0.1), ``"auto"`` (the one ``ray start`` started here) or
            ``"HOST:PORT"``.
        num_tasks: with ``engine="ray"``: about how many tasks to cut the corpus into (default: 4 per CPU, each
            between 4 MB and 256 MB of input).
        parts: with ``engine="ray"``: where the part stores go: ``None`` (default: ``.OUT.parts`` beside OUT) or
            an fsspec URL every node can write (``s3://bucket/prefix``), read back and merged here.

    Returns:
        The opened store, or ``TrainVal(train, val)`` when ``val_fraction > 0``.

    Raises:
        ValueError: as ``lmfeed.store.prepare.prepare``, and options that do not go with the engine
            (``workers``/``num_shards`` with ``"ray"``; ``address``/``num_tasks`` with ``"local"``).
        lmfeed.engines.ray_engine.EngineError: the cluster cannot be reached, lost a task's worker more than its
            retries, or does not share OUT's filesystem.

    Example:
        >>> store = prepare(["story.txt"], "story.store", engine="ray", num_tasks=4)  # doctest: +SKIP
        >>> store.tokens[:2].tolist()  # doctest: +SKIP
        [15496, 995]
    """
    engine = as_choice("engine", engine, ("local", "ray"))
    if engine == "local":
        for name, value in (("address", address), ("num_tasks", num_tasks), ("parts", parts)):
            if value is not None:
                raise ValueError(f"{name}={value!r} is an option of engine='ray'. Pass engine='ray' "
                                 f"(--engine ray), or leave {name} out.")
        from lmfeed.store.prepare import prepare as prepare_local

        return prepare_local(inputs, out, tokenizer=tokenizer, backend=backend, glob=glob, field=field, format=format,
                             errors=errors, allow_special=allow_special, eot=eot, separator=separator,
                             on_bad_record=on_bad_record,
                             workers=workers,
                             num_shards=num_shards, shard_index=shard_index, val_fraction=val_fraction, seed=seed,
                             force=force, progress=progress, include_hidden=include_hidden)
    if workers is not None:
        raise ValueError(f"workers={workers!r} counts this machine's processes; with engine='ray' every CPU of the "
                         "cluster encodes (one task each). Leave workers (--workers) out, or use engine='local'.")
    if num_shards != 1 or shard_index != 0:
        raise ValueError("num_shards/shard_index split a run by hand (a Slurm array, then `lmfeed merge`); "
                         "engine='ray' plans its own tasks. Use one or the other.")
    if on_bad_record != "error":
        raise ValueError("on_bad_record='skip' (--on-bad-record skip) is read by engine='local' only. Use "
                         "engine='local', or leave it out.")
    from lmfeed.engines.ray_engine import prepare_ray

    return prepare_ray(inputs, out, tokenizer=tokenizer, backend=backend, glob=glob, field=field, format=format,
                       errors=errors, allow_special=allow_special, eot=eot, separator=separator,
                       val_fraction=val_fraction, seed=seed,
                       force=force, progress=progress, address=address, num_tasks=num_tasks, parts=parts,
                       include_hidden=include_hidden)
