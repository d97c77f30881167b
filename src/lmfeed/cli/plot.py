"""``lmfeed plot``: PNG pictures of the position tables, token embeddings and (for a store) its documents and tokens."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="plot", short_help="Write PNG pictures of positions, tokens, a store.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("lmfeed-plots"),
              show_default=True, help="Directory for the PNG files (created if missing).")
@click.option("--store", type=click.Path(path_type=Path), default=None,
              help="A token store (from `lmfeed prepare`): also plot its document lengths and most frequent tokens.")
@click.option("--embed-dim", default=64, show_default=True, help="Embedding dimension (D) of the tables drawn.")
@click.option("--positions", default=128, show_default=True, help="Positions drawn in the position pictures.")
@click.option("--seed", default=123, show_default=True, help="torch.manual_seed for the random tables.")
@click.option("--words", default=None,
              help="Comma-separated single-token words for the PCA picture (default: 40 common words in 5 groups).")
@click.option("--top", default=20, show_default=True, help="How many frequent tokens the store picture shows.")
def command(out_dir: Path, store: Path | None, embed_dim: int, positions: int, seed: int, words: str | None,
            top: int) -> None:
    """Write PNG pictures (800 x 500 pixels) and print their paths, one per line.

    \b
    positional-embeddings.png  learned (random at init) and sinusoidal tables, position x dimension
    position-similarity.png    cosine similarity between positions, for each
    token-embeddings-pca.png   the token embeddings of common words, projected to 2-D
    document-lengths.png       with --store: the documents' lengths in tokens
    top-tokens.png             with --store: the most frequent tokens

    \b
    Example:
        lmfeed plot --out pictures
        lmfeed plot --store corpus.store --words king,queen,man,woman
    """
    from lmfeed.viz.plots import write_embedding_plots, write_store_plots

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise click.ClickException("Pictures need matplotlib: pip install 'lmfeed[plot]'") from None
    opened = None
    if store is not None:  # open it first: a bad path fails before any picture is drawn
        from lmfeed.store.format import TokenStore

        opened = TokenStore.open(store)
    word_list = [w.strip() for w in words.split(",")] if words is not None else None
    paths = write_embedding_plots(out_dir, embed_dim=embed_dim, num_positions=positions, seed=seed, words=word_list)
    if opened is not None:
        paths += write_store_plots(opened, out_dir, top=top)
    for path in paths:
        click.echo(str(path))
