"""``lmfeed export``: write a store's ids as nanoGPT's or llm.c's .bin file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from lmfeed.store.export import ExportFormat


@click.command(name="export")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--format", "format_", type=click.Choice(["nanogpt", "llmc"]), default="nanogpt", show_default=True,
              help="nanogpt: raw uint16 ids (train.py's np.memmap); llmc: llm.c's 1,024-byte header, then uint16 ids.")
@click.option("-o", "--output", required=True, type=click.Path(), help="The .bin file to write.")
@click.option("--force", is_flag=True, help="Replace an existing file.")
@click.option("--eot-after-last", is_flag=True,
              help="End the last document with the end-of-text id too, as nanoGPT's prepare.py scripts do "
                   "(default: separators between documents only).")
def command(store: Path, format_: ExportFormat, output: str, force: bool, eot_after_last: bool) -> None:
    """Write STORE's token ids to a .bin file that nanoGPT's train.py (or llm.c) reads.

    The ids are checked against the vocabulary as they are copied. `lmfeed import` turns such a file back into a
    store.

    \b
    Example:
        lmfeed export verdict.store --format nanogpt -o data/verdict/train.bin
        lmfeed export verdict.store --format nanogpt --eot-after-last -o train.bin
    """
    from lmfeed.store.export import export

    path = export(store, output, format=format_, force=force, eot_after_last=eot_after_last)
    click.echo(f"Wrote {path}: {path.stat().st_size:,} bytes ({format_})")
