"""``lmfeed merge``: join shards (or any stores) into one store."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="merge")
@click.argument("stores", nargs=-1, required=True, metavar="STORE...", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(), help="The merged store's directory.")
@click.option("--force", is_flag=True, help="Replace an existing store.")
def command(stores: tuple[Path, ...], output: str, force: bool) -> None:
    """Join STORE... into one store at OUTPUT.

    Shards of one `lmfeed prepare --num-shards N` run merge (in any order) into exactly the store a single run
    would have written; other stores are concatenated in the order given.

    \b
    Example:
        lmfeed merge shards/web.* -o web.store
    """
    from lmfeed.cli import count
    from lmfeed.store.merge import merge
    from lmfeed.store.prepare import TrainVal

    result = merge(list(stores), output, force=force)
    for s in list(result) if isinstance(result, TrainVal) else [result]:
        click.echo(f"Wrote {s.path}: {len(s):,} tokens in {count(s.num_documents, 'document')} ({s.metadata['dtype']})")
