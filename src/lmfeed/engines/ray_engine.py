"""``prepare`` on a Ray cluster: plan tasks, encode each into a part store on the workers, merge them here.

```
driver (this process)                       Ray workers (one CPU each, on any node)
  expand inputs, plan tasks  ------------>  task k: read its files / byte ranges, encode, write
  check OUT's directory is shared            OUT/../.OUT.parts/part-k-KEY (whole, or not at all)
  wait, one progress bar     <------------  (tokens, documents); a lost worker: Ray runs k again
  merge the parts in plan order into OUT (staging directory + rename): the single-machine bytes
```

Parts live in ``.NAME.parts`` next to ``OUT`` (on a filesystem every node sees) and stay there when the run fails;
the same command run again skips every part already written and still valid (same files, sizes, modification times,
options). They are deleted once ``OUT`` is in place.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lmfeed._validate import as_choice, as_int, as_probability
from lmfeed.engines.location import PartsLocation
from lmfeed.engines.parts import (
    PART_FORMAT,
    EngineError,
    PartOptions,
    PartResult,
    merge_parts,
    part_key,
    part_name,
    write_part,
)
from lmfeed.engines.plan import PlannedTask, plan_tasks
from lmfeed.store.format import TokenStore
from lmfeed.store.prepare import (
    TrainVal,
    check_inputs_apart,
    check_not_empty,
    gpt2_splittable,
    input_files,
    separator_id,
    store_dtype,
    store_metadata,
)
from lmfeed.store.writer import StoreWriter, check_output, staging_dir, write_split_marker
from lmfeed.text.backends import Backend
from lmfeed.text.sources import DecodeErrors, InputFile, InputFormat

__all__ = ["EngineError", "prepare_ray", "parts_dir_for", "default_num_tasks"]

logger = logging.getLogger(__name__)

_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": a local Ray instance binds 127.0.0.1 only
_MIN_TASK_BYTES = 4 << 20
_MAX_TASK_BYTES = 256 << 20


def parts_dir_for(out: str | os.PathLike[str]) -> Path:
    """Where the part stores of a run writing ``out`` live: ``.NAME.parts`` beside it."""
    out = Path(os.path.abspath(out))
    return out.parent / f".{out.name}.parts"


def default_num_tasks(total_bytes: int, cpus: int) -> int:
    """Four tasks per CPU of the cluster (so a lost task costs little and the CPUs stay busy to the end), but tasks
    of at least 4 MB (Ray's overhead per task stays small; rounded up to a whole number of waves) and at most
    256 MB (a retry stays cheap)."""
    cpus = max(1, cpus)
    by_cpus = min(4 * cpus, -(-total_bytes // _MIN_TASK_BYTES))
    if by_cpus > cpus:
        by_cpus = -(-by_cpus // cpus) * cpus  # whole waves: no last wave with CPUs left idle
    return max(1, by_cpus, -(-total_bytes // _MAX_TASK_BYTES))


def _run_part(task: PlannedTask, files: Sequence[InputFile], options: PartOptions, parts: PartsLocation,
              key: str) -> PartResult:
    """The Ray task (its workers show ``ray::_run_part`` while running it)."""
    return write_part(task, files, options, parts, key)


def _probe(parts: PartsLocation, token: str, files: Sequence[tuple[str, int]]) -> list[str]:
    """Run on each node: what of the run's files it cannot see as the driver does."""
    import socket

    where = socket.gethostname()
    problems = []
    if parts.read_text(f".visible-{token}") != token:
        what = "the directory beside OUT" if not parts.is_url else "the parts URL"
        problems.append(f"node {where} cannot see {parts} ({what})")
    for path, size in files:
        try:
            found = os.stat(path).st_size
        except OSError:
            problems.append(f"node {where} cannot read input {path}")
            break
        if found != size:
            problems.append(f"node {where} sees input {path} with {found:,} bytes, not {size:,}")
            break
    return problems


def _connect(address: str | None) -> tuple[Any, bool]:
    """Import ray and connect (or start a local instance bound to 127.0.0.1); returns (ray, started_here)."""
    if address is None and not os.environ.get("RAY_ADDRESS"):
        # must be set before ray is imported: a local instance then listens on the loopback address only
        os.environ.setdefault(_LOOPBACK_ENV, "0")
    try:
        import ray
    except ImportError:
        raise ImportError("engine='ray' needs Ray: pip install 'lmfeed[ray]'.") from None
    if ray.is_initialized():
        return ray, False
    if address is None:
        address = os.environ.get("RAY_ADDRESS") or "local"  # "local": a new instance, never a stranger's cluster
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True)
    except ConnectionError as exc:
        raise EngineError(f"Cannot reach a Ray cluster at address={address!r} ({exc}). Start one with "
                          "`ray start --head`, or leave --address out to run on a local Ray instance.") from None
    return ray, True


def _start_probes(ray: Any, parts: PartsLocation, files: Sequence[InputFile]) -> tuple[list[Any], PartsLocation, str]:
    """Ask every node with CPUs whether it sees the parts directory and the inputs as this process does.

    The probes run while the first tasks start (a node that cannot see the directory also fails its tasks, which
    never create it); ``_check_probes`` collects them before any result is used.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = secrets.token_hex(8)
    # this process's own node sees what this process sees: only the other nodes are asked. (A probe there would also
    # hold one of its worker processes while the first tasks start, so that Ray boots one more: ~1 CPU-second.)
    here = ray.get_runtime_context().get_node_id()
    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0
             and n.get("NodeID") != here]
    if not nodes:
        return [], parts, token
    parts.write_text(f".visible-{token}", token)
    probe = ray.remote(_probe)
    sizes = ray.put([(str(f.path), f.size) for f in files if f.path is not None])  # URLs are each node's own
    refs = [probe.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
            .remote(parts, token, sizes) for n in nodes]
    return refs, parts, token


def _check_probes(ray: Any, refs: list[Any], parts: PartsLocation, token: str) -> None:
    """Every probe's answer, or an EngineError that names what some node cannot see."""
    if not refs:
        return
    try:
        problems = [p for found in ray.get(refs) for p in found]
    finally:
        parts.remove(f".visible-{token}")
    if problems:
        raise EngineError(shared_filesystem_message(problems))


def shared_filesystem_message(problems: Sequence[str]) -> str:
    """The error for nodes that do not share the output's (or the inputs') filesystem."""
    shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
    return (f"engine='ray' needs OUT and the inputs on a filesystem every node sees, but {shown}. Put them on a "
            "shared mount (NFS, Lustre, a cluster volume) at the same path on every node, or pass parts= "
            "(--parts) an fsspec URL every node can write (s3://bucket/prefix), or run on one machine without "
            "--engine ray.")


def prepare_ray(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
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
    separator: str = "auto",
    val_fraction: float = 0.0,
    seed: int = 0,
    force: bool = False,
    progress: bool = False,
    address: str | None = None,
    num_tasks: int | None = None,
    parts: str | None = None,
    max_retries: int = 3,
    include_hidden: bool = False,
) -> TokenStore | TrainVal:
    """``lmfeed.store.prepare.prepare`` run as Ray tasks: the same store, byte for byte (see the module docstring).

    Args:
        inputs, out, tokenizer, backend, glob, field, format, errors, allow_special, eot, val_fraction, seed, force,
            progress: as ``lmfeed.prepare``.
        address: the Ray cluster: ``None`` (default: the one this process is connected to, else ``RAY_ADDRESS``
            as ``ray job submit`` sets it, else a new local instance listening on 127.0.0.1 only), ``"auto"`` (the
            cluster ``ray start`` started on this machine), or ``"HOST:PORT"``.
        num_tasks: about how many tasks to cut the corpus into (default: ``default_num_tasks``).
        parts: where the part stores go: ``None`` (default: ``.NAME.parts`` beside ``out``, which must then be on
            a filesystem every node sees), or an fsspec URL every node can write (``s3://bucket/prefix``; the
            parts are merged here, downloaded one at a time). Only lmfeed's own ``part-*`` entries there are ever
            deleted.
        max_retries: how often Ray runs a task again whose worker process died (default 3). A task that fails on
            its input is not retried: the run fails with the file and offset.

    Returns:
        The opened store, or ``TrainVal(train, val)`` when ``val_fraction > 0``.

    Raises:
        ValueError: as ``prepare``; the message of a task that failed on its input also says where the finished
            parts are kept. EngineError: no cluster at ``address``, a worker lost more than ``max_retries`` times, or
            nodes that do not share OUT's filesystem. FileExistsError: ``out`` exists (pass ``force``).

    Example:
        >>> prepare_ray(["corpus/"], "corpus.store", num_tasks=8)  # doctest: +SKIP
        TokenStore('corpus.store', tokens=1,234,567, documents=80, dtype=uint16, tokenizer='gpt2')
    """
    from lmfeed.text.tokenizer import get_tokenizer, resolve_tokenizer, tokenizer_names, vocabulary_fingerprint

    enc = resolve_tokenizer(tokenizer)
    format = as_choice("format", format, ("auto", "text", "jsonl"))
    errors = as_choice("errors", errors, ("strict", "replace", "skip"))
    backend = as_choice("backend", backend, ("auto", "tiktoken", "fastokens"))
    val_fraction = as_probability("val_fraction", val_fraction, fix="Use e.g. val_fraction=0.1, or 0 for no split.")
    seed = as_int("seed", seed, minimum=0)
    max_retries = as_int("max_retries", max_retries, minimum=0)
    if num_tasks is not None:
        num_tasks = as_int("num_tasks", num_tasks, maximum=1_000_000)
    if address is not None and (not isinstance(address, str) or not address):
        raise ValueError(f"address must be 'auto' or 'HOST:PORT', but got {address!r}.")
    if not isinstance(field, str) or not field:
        raise ValueError(f"field must be a JSON key such as 'text', but got {field!r}.")
    eot_id = separator_id(enc, eot=eot, allow_special=allow_special, separator=separator)  # EOS or none only
    dtype = store_dtype(enc)
    files = input_files(inputs, glob=glob, format=format, include_hidden=include_hidden)
    for f in files:
        if getattr(f, "records", None) is not None:
            raise ValueError("engine='ray' reads files and URLs on other machines; documents from Python (an "
                             "iterable, a datasets.Dataset) live in this process. Write them to JSON Lines or "
                             "Parquet first, or use engine='local'.")
        if f.path is None and getattr(f, "url", None) is None:
            raise ValueError("engine='ray' cannot read stdin ('-'): its tasks read the inputs on other machines. "
                             "Save it to a file first, or run without --engine ray.")
    out_path = Path(out)
    if parts is not None and (not isinstance(parts, str) or "://" not in parts):
        raise ValueError(f"parts must be an fsspec URL such as 's3://bucket/prefix', but got {parts!r}. Leave it "
                         "out to keep the parts beside OUT.")
    location = PartsLocation(parts if parts is not None else str(parts_dir_for(out_path)))
    parts_dir = parts_dir_for(out_path)
    # OUT may lie inside an input directory: a rerun must not read the parts of the run it resumes as text
    files = [f for f in files if f.path is None or parts_dir not in Path(os.path.abspath(f.path)).parents]
    check_inputs_apart(files, out_path)
    check_output(out_path, force=force)
    # the workers get absolute paths: their working directory is not ours (names, for messages, stay as given)
    shipped = [f if f.path is None else replace(f, path=Path(os.path.abspath(f.path))) for f in files]
    stamps = [_stamp(f) for f in shipped]
    registered = enc.name in tokenizer_names() and vocabulary_fingerprint(get_tokenizer(enc.name)) == \
        vocabulary_fingerprint(enc)
    splittable = gpt2_splittable(enc)
    options = PartOptions(tokenizer=enc.name if registered else enc, fingerprint=vocabulary_fingerprint(enc),
                          backend=backend, allow_special=bool(allow_special), errors=errors, field=field,
                          dtype=dtype, eot_id=eot_id, splittable=splittable)

    ray, started = _connect(address)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        total = sum(f.size or 0 for f in shipped)
        planned = plan_tasks(shipped, num_tasks or default_num_tasks(total, cpus), gpt2_pattern=splittable)
        location.create()
        keys = [part_key(t, shipped, options, stamps) for t in planned]
        names = [part_name(t, k) for t, k in zip(planned, keys, strict=True)]
        _remove_other_parts(location, set(names))
        logger.info("%d tasks on %d CPUs into %s", len(planned), cpus, location)
        probes = _start_probes(ray, location, shipped)
        _run_tasks(ray, planned, keys, names, shipped, options, location, max_retries, progress, probes)
        return _merge(out_path, location, names, enc, files, allow_special=allow_special, errors=errors,
                      field=field, format=format, glob=glob, val_fraction=val_fraction, seed=seed, force=force,
                      dtype=dtype, eot_id=eot_id)
    finally:
        if started:
            ray.shutdown()


def _stamp(file: InputFile) -> tuple[int | None, int | None]:
    """``(size, mtime_ns)`` of a local file (a URL: its size as listed), so that a changed input changes its parts'
    keys."""
    if file.path is None:
        return file.size, None
    st = os.stat(file.path)
    return st.st_size, st.st_mtime_ns


def _remove_other_parts(parts: PartsLocation, keep: set[str]) -> None:
    """Delete parts of other plans (other inputs, options or task counts): they can never be merged into this run."""
    for entry in parts.names():
        if entry in keep or entry.startswith(".visible-"):
            continue
        logger.info("removing %s: a part of another plan", parts.join(entry))
        parts.remove(entry)


def _run_tasks(ray: Any, planned: list[PlannedTask], keys: list[str], names: list[str], files: list[InputFile],
               options: PartOptions, parts: PartsLocation, max_retries: int, progress: bool,
               probes: tuple[list[Any], PartsLocation, str]) -> None:
    """Run every task whose part is not there yet; one progress bar; the first failure (in plan order) raised."""
    done: dict[int, PartResult] = {}
    for t, name in zip(planned, names, strict=True):
        meta = parts.metadata(name)
        if meta is not None and meta.get("format") == PART_FORMAT:
            done[t.index] = PartResult(t.index, meta["num_tokens"], meta["num_documents"], reused=True)
    if done:
        logger.info("resuming: %d of %d parts are already done in %s", len(done), len(planned), parts)
    run = ray.remote(_run_part).options(num_cpus=1, max_retries=max_retries, retry_exceptions=False)
    files_ref = ray.put(files)
    pending = {run.remote(t, files_ref, options, parts, k): t.index
               for t, k in zip(planned, keys, strict=True) if t.index not in done}
    bar = _progress_bar(len(planned), progress)
    started_at = time.perf_counter()
    new_tokens = 0
    failures: dict[int, BaseException] = {}
    try:
        _check_probes(ray, *probes)
        if bar is not None:
            bar.update(len(done))
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                index = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    failures[index] = exc.cause if exc.cause is not None else exc
                    logger.error("task %d of %d failed: %s", index, len(planned), failures[index])
                    continue
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayError) as exc:
                    failures[index] = EngineError(
                        f"Task {index} ({_describe(planned[index], files)}) lost its worker more than "
                        f"max_retries={max_retries} times ({type(exc).__name__}). Check the nodes' memory and logs "
                        "(`ray logs`), then run the same command again: finished parts are kept.")
                    continue
                done[index] = result
                new_tokens += result.num_tokens
            if bar is not None:
                tokens = sum(r.num_tokens for r in done.values())
                rate = new_tokens / max(time.perf_counter() - started_at, 1e-9)
                bar.update(len(done) + len(failures) - bar.n)
                bar.set_postfix_str(f"{tokens:,} tokens, {rate / 1e6:.2f}M tok/s", refresh=True)
    except BaseException:
        for ref in pending:
            ray.cancel(ref)
        raise
    finally:
        if bar is not None:
            bar.close()
    if failures:
        first = min(failures)
        cause = failures[first]
        kept = (f"{len(done)} of {len(planned)} parts are done and kept in {parts}: run the same command again "
                "to prepare only the rest.")
        if isinstance(cause, EngineError):
            raise cause
        if isinstance(cause, ValueError):
            raise ValueError(f"{cause} ({kept})") from None
        raise EngineError(f"Task {first} ({_describe(planned[first], files)}) failed: "
                          f"{type(cause).__name__}: {cause}. {kept}") from None


def _describe(task: PlannedTask, files: list[InputFile]) -> str:
    u = task.units[0]
    where = files[u.file].name + (f" from {'row group' if u.row_groups else 'byte'} {u.start:,}" if u.start else "")
    return where + (f" and {len(task.units) - 1} more" if len(task.units) > 1 else "")


def _merge(out: Path, parts: PartsLocation, names: list[str], enc: Any, files: list[InputFile], *,
           allow_special: bool, errors: str, field: str, format: str, glob: str, val_fraction: float, seed: int,
           force: bool, dtype: str, eot_id: int | None) -> TokenStore | TrainVal:
    split_names = ["train", "val"] if val_fraction else [""]
    with staging_dir(out, force=force) as tmp:
        writers = [StoreWriter(tmp / n if n else tmp, dtype=dtype, eot_id=eot_id) for n in split_names]
        try:
            documents = merge_parts(_fetched(parts, names, tmp), writers, val_fraction=val_fraction, seed=seed)
            check_not_empty(documents, writers, split_names, 1, val_fraction, files)
        except BaseException:
            for w in writers:
                w.close()
            raise
        metadata = store_metadata(enc, files, documents=documents, allow_special=allow_special, errors=errors,
                                  field=field, format=format, glob=glob, separator="eos", separator_id=eot_id)
        for n, w in zip(split_names, writers, strict=True):
            w.finish({**metadata, "split": {"part": n, "val_fraction": val_fraction, "seed": seed} if n else None})
        if val_fraction:
            write_split_marker(tmp, split_names)
    parts.remove_all()
    if val_fraction:
        return TrainVal(TokenStore.open(out / "train", tokenizer=enc), TokenStore.open(out / "val", tokenizer=enc))
    return TokenStore.open(out, tokenizer=enc)


def _fetched(parts: PartsLocation, names: list[str], staging: Path) -> Iterator[Path]:
    """Each part as a local directory, in order; from a URL one at a time, into a scratch directory beside the
    store being written (deleted with it, whatever happens)."""
    scratch = staging.parent / f".{staging.name}.fetch"
    try:
        for name in names:
            with parts.fetch(name, scratch) as local:
                yield local
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="task", desc="prepare (ray)", file=sys.stderr, dynamic_ncols=True)
