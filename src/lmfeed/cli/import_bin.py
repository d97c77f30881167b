"""``lmfeed import``: nanoGPT's train.bin or llm.c's token shards back into a store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from lmfeed.store.import_bin import ImportFormat


@click.command(name="import")
@click.argument("files", nargs=-1, required=True, metavar="FILE...", type=click.Path(path_type=Path))
@click.option("--format", "format_", type=click.Choice(["auto", "nanogpt", "llmc"]), default="auto",
              show_default=True,
              help="auto: llm.c when the file starts with its magic number, else nanoGPT's raw uint16 ids.")
@click.option("-o", "--output", required=True, type=click.Path(), help="The store's directory.")
@click.option("--tokenizer", default="gpt2", show_default=True, help="The tokenizer the ids are from.")
@click.option("--force", is_flag=True, help="Replace an existing store.")
def command(files: tuple[Path, ...], format_: ImportFormat, output: str, tokenizer: str, force: bool) -> None:
    """Make a token store of FILE... (nanoGPT .bin or llm.c shards), documents cut at end-of-text.

    One end-of-text at the very start or end of a file opens or closes a document (as llm.c and nanoGPT write
    them); every other one separates two documents, as in a prepared store. Files join in the order given. Every
    id is checked against the vocabulary. `lmfeed batch train.bin` and create_dataloader(Path("train.bin")) read
    such a file directly, without a store.

    \b
    Example:
        lmfeed import data/shakespeare/train.bin -o shakespeare.store
        lmfeed import fineweb_train_*.bin -o fineweb.store
    """
    from lmfeed.cli import count
    from lmfeed.store.import_bin import import_tokens

    store = import_tokens(list(files), output, format=format_, tokenizer=tokenizer, force=force)
    click.echo(f"Wrote {store.path}: {len(store):,} tokens in {count(store.num_documents, 'document')} "
               f"({store.metadata['dtype']}, {store.nbytes_on_disk():,} bytes)")
