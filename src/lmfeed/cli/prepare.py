"""``lmfeed prepare``: tokenize files, directories or JSON Lines into a memory-mapped token store."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, Literal

import click

if TYPE_CHECKING:  # the click.Choice options below let only these names through
    from lmfeed._api import Engine
    from lmfeed.text.backends import Backend
    from lmfeed.text.sources import DecodeErrors, InputFormat
    from lmfeed.text.tokenizer import Separator


@click.command(name="prepare")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("-o", "--output", required=True, type=click.Path(), help="The store's directory.")
@click.option("--tokenizer", default="gpt2", show_default=True,
              help="A name (gpt2), a tokenizer.json or a directory holding one, or a .tiktoken file.")
@click.option("--pattern", default=None,
              help="For a .tiktoken file that is not one of OpenAI's: the split pattern, a name (r50k_base, "
                   "cl100k_base, o200k_base, ...) or a regex.")
@click.option("--special-token", "special_tokens", multiple=True, metavar="TOKEN=ID",
              help="With --pattern: a special token and its id, e.g. '<|endoftext|>=100257' (repeatable).")
@click.option("--backend", type=click.Choice(["auto", "tiktoken", "fastokens"]), default="auto", show_default=True,
              help="What encodes (same ids either way); "
                   "auto: fastokens when installed and self-checked, else tiktoken.")
@click.option("--glob", default="*", show_default=True,
              help="Files to take from directories, relative to each, at any depth: '*.txt', 'sub/*.md', '**'.")
@click.option("--include-hidden", is_flag=True,
              help="Also read hidden files and directories (.env, .git/) and version-control directories.")
@click.option("--field", default="text", show_default=True,
              help="The JSON Lines field or Parquet column holding the text.")
@click.option("--on-bad-record", type=click.Choice(["error", "skip"]), default="error", show_default=True,
              help="A record whose field is missing, null or not a string: stop with an error naming it, or skip it "
                   "(counted in the summary and the store's metadata).")
@click.option("--format", "format_", type=click.Choice(["auto", "text", "jsonl", "parquet"]), default="auto",
              show_default=True,
              help="How to read inputs; auto: *.parquet (or PAR1 first bytes) as Parquet, *.jsonl and *.ndjson as "
                   "JSON Lines, the rest as text. gzip, zstd, bzip2, xz are recognised by their first bytes.")
@click.option("--errors", type=click.Choice(["strict", "replace", "skip"]), default="strict", show_default=True,
              help="Bytes that are not UTF-8: stop with an error, replace them with U+FFFD, or skip them.")
@click.option("--allow-special", is_flag=True, help="Encode a literal <|endoftext|> in a document as the special id.")
@click.option("--separator", type=click.Choice(["auto", "eos", "bos", "none"]), default="auto", show_default=True,
              help="Between documents: eos (the end-of-text id after each but the last), bos (the begin id before "
                   "each), none; auto: eos when the tokenizer has one, else bos. Recorded in the store.")
@click.option("--no-eot", is_flag=True, help="Do not separate documents (the same as --separator none).")
@click.option("--workers", type=int, default=None, help="Encoding processes, one core each [default: all cores].")
@click.option("--num-shards", type=int, default=1, show_default=True,
              help="Split the documents into this many shards...")
@click.option("--shard-index", type=int, default=0, show_default=True,
              help="...and prepare this one (document k goes to shard k mod N).")
@click.option("--val-fraction", type=float, default=0.0, show_default=True,
              help="Put this fraction of documents in a validation store: writes OUTPUT/train and OUTPUT/val.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Decides which documents are validation documents.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where to encode: this machine's processes, or a Ray cluster's CPUs (same bytes either way; "
                   "OUTPUT must be on a filesystem every node sees).")
@click.option("--address", default=None, metavar="auto|HOST:PORT",
              help="With --engine ray: the cluster [default: RAY_ADDRESS, else a local Ray on 127.0.0.1].")
@click.option("--parts", default=None, metavar="URL",
              help="With --engine ray: put the part stores at this fsspec URL (s3://bucket/prefix) instead of "
                   "beside OUTPUT, for nodes without a shared filesystem; merged here.")
@click.option("--num-tasks", type=int, default=None,
              help="With --engine ray: about how many tasks to cut the inputs into [default: 4 per CPU].")
@click.option("--force", is_flag=True, help="Replace an existing store.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--progress", is_flag=True,
              help="A progress bar even when stderr is not a terminal (default: only on one).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(inputs: tuple[str, ...], output: str, tokenizer: str, backend: Backend, glob: str, field: str,
            on_bad_record: Literal["error", "skip"], format_: InputFormat, errors: DecodeErrors, allow_special: bool,
            separator: Separator, no_eot: bool, workers: int | None,
            num_shards: int, shard_index: int, val_fraction: float, seed: int, engine: Engine, address: str | None,
            num_tasks: int | None, parts: str | None, force: bool, quiet: bool, progress: bool, as_json: bool,
            include_hidden: bool, pattern: str | None, special_tokens: tuple[str, ...]) -> None:
    """Tokenize INPUT... (files, directories, .jsonl, .parquet, .zst/.gz, s3:// URLs, -) into a token store.

    A document is a file, a JSON Lines record or a Parquet row. Documents are encoded as ordinary text and
    separated by the end-of-text id. A directory is searched recursively for files matching --glob, in sorted
    order; links to directories are followed (each directory read once); hidden files and directories (.name),
    version-control directories (.git, .hg, .svn, CVS, ...) and lmfeed's own stores and staging directories are
    skipped (--include-hidden reads the hidden ones and version-control directories). The store (tokens.npy,
    doc_starts.npy, metadata.json) appears at OUTPUT only when complete, and
    its bytes are the same for any --workers.

    \b
    Example:
        lmfeed prepare the-verdict.txt -o verdict.store
        lmfeed prepare corpus/ --glob '*.txt' -o corpus.store --val-fraction 0.1
        lmfeed prepare web.jsonl.gz --num-shards 8 --shard-index 3 -o shards/web.3
        lmfeed prepare corpus/ --tokenizer my-bpe/tokenizer.json -o corpus.store
        lmfeed prepare fineweb/ --glob '*.parquet' -o fineweb.store
        lmfeed prepare s3://bucket/dclm/*.jsonl.zst --on-bad-record skip -o dclm.store
        lmfeed prepare corpus/ -o corpus.store --engine ray --num-tasks 64

    With --engine ray a failed run keeps its finished parts beside OUTPUT: run the same command again to go on.
    """
    if backend != "tiktoken" and tokenizer == "gpt2" and engine == "local":
        from lmfeed.text import early_load

        early_load.start()  # fastokens builds while the imports below run, not after them
    from lmfeed._api import prepare
    from lmfeed.cli import count
    from lmfeed.store.prepare import TrainVal

    result = prepare(list(inputs), output, tokenizer=_tokenizer(tokenizer, pattern, special_tokens), backend=backend,
                     glob=glob,
                     field=field, format=format_,
                     errors=errors, allow_special=allow_special, eot=not no_eot, workers=workers,
                     separator=separator, on_bad_record=on_bad_record,
                     num_shards=num_shards, shard_index=shard_index, val_fraction=val_fraction, seed=seed,
                     force=force, progress=not quiet and (progress or sys.stderr.isatty()), engine=engine,
                     address=address, num_tasks=num_tasks, parts=parts, include_hidden=include_hidden)
    stores = list(result) if isinstance(result, TrainVal) else [result]
    if as_json:
        rows = [{"path": str(s.path), "tokens": len(s), "documents": s.num_documents, "dtype": s.metadata["dtype"],
                 "bytes": s.nbytes_on_disk()} for s in stores]
        click.echo(json.dumps(rows if len(rows) > 1 else rows[0], indent=2))
        return
    for s in stores:
        bad = s.metadata.get("bad_records")
        skipped = f"; {count(bad['skipped'], 'bad record')} skipped" if isinstance(bad, dict) else ""
        click.echo(f"Wrote {s.path}: {len(s):,} tokens in {count(s.num_documents, 'document')} "
                   f"({s.metadata['dtype']}, {s.nbytes_on_disk():,} bytes{skipped})")


def _tokenizer(tokenizer: str, pattern: str | None, special_tokens: tuple[str, ...]) -> Any:
    """``--tokenizer`` as given, or with ``--pattern`` the tiktoken file loaded with that pattern and specials."""
    if pattern is None:
        if special_tokens:
            raise click.UsageError("--special-token goes with --pattern (a .tiktoken file that is not OpenAI's).")
        return tokenizer
    from lmfeed.text.tiktoken_file import load_tiktoken_file

    specials: dict[str, int] = {}
    for item in special_tokens:
        token, sep, number = item.rpartition("=")
        if not sep or not token or not number.isdigit():
            raise click.UsageError(f"--special-token {item!r} is not TOKEN=ID, e.g. '<|endoftext|>=100257'.")
        specials[token] = int(number)
    return load_tiktoken_file(tokenizer, pattern=pattern, special_tokens=specials)
