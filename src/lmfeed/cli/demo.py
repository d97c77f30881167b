"""``lmfeed demo``: the seed's whole pipeline, from text to (B, T, D) input embeddings, printed step by step."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import click

from lmfeed.cli._positional import PositionalChoice

if TYPE_CHECKING:
    from lmfeed.embeddings.attention import RelativeScheme
    from lmfeed.embeddings.input import Positional
    from lmfeed.loading.windows import SlidingWindowDataset


@click.command(name="demo")
@click.argument("source", required=False, type=click.Path(path_type=Path))
@click.option("--batch-size", default=8, show_default=True, help="Windows per batch (B).")
@click.option("--max-length", default=4, show_default=True, help="Tokens per window (T).")
@click.option("--stride", default=4, show_default=True, help="Distance between window starts.")
@click.option("--embed-dim", default=256, show_default=True, help="Embedding dimension (D).")
@click.option("--seed", default=123, show_default=True, help="torch.manual_seed for the embedding tables.")
@click.option("--positional", type=PositionalChoice(), default="learned", show_default=True,
              help="Position scheme: absolute (learned, sinusoidal) or relative, in attention (rope, alibi, t5, "
                   "BERT's relative_key and relative_key_query, Transformer-XL's xl).")
@click.option("--num-heads", default=4, show_default=True, help="Attention heads, for the schemes in attention.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("lmfeed-demo"),
              show_default=True, help="Directory for the demo's pictures (PNG).")
@click.option("--no-plots", is_flag=True, help="Do not write pictures.")
def command(source: Path | None, batch_size: int, max_length: int, stride: int, embed_dim: int, seed: int,
            positional: Positional | RelativeScheme, num_heads: int, out_dir: Path, no_plots: bool) -> None:
    """Run the seed's pipeline: tokens, sliding windows, one batch, token + position embeddings.

    With no SOURCE it uses the Python language reference that ships with every Python (pydoc_data.topics);
    SOURCE may be a UTF-8 text file or a token store made by `lmfeed prepare`.

    \b
    Example:
        lmfeed demo
        lmfeed demo the-verdict.txt --positional sinusoidal
        lmfeed demo --positional xl
    """
    import torch

    from lmfeed._validate import as_int, as_seed
    from lmfeed.cli import check_source, count
    from lmfeed.embeddings import CausalSelfAttention, InputEmbedding, describe_positional
    from lmfeed.loading.loader import create_dataloader
    from lmfeed.text.sources import DEFAULT_CORPUS_NAME, python_reference, read_text
    from lmfeed.text.tokenizer import ENDOFTEXT, get_tokenizer
    from lmfeed.viz.table import format_batch, visible_piece

    # checked first, before the corpus is read
    for name, value in (("batch_size", batch_size), ("max_length", max_length), ("stride", stride),
                        ("embed_dim", embed_dim), ("num_heads", num_heads)):
        as_int(name, value, minimum=1)
    as_seed("--seed", seed)  # torch.manual_seed's range, said plainly ("Overflow when unpacking long long")
    check_source(source)
    enc = get_tokenizer("gpt2")
    echo = click.echo
    if source is None:
        docs = python_reference()
        text: object = ENDOFTEXT.join(docs)  # documents separated by end-of-text, as a store holds them
        name, summary = DEFAULT_CORPUS_NAME, f"{len(docs):,} documents, {sum(map(len, docs)):,} characters"
    elif source.is_dir():
        from lmfeed.store.format import TokenStore

        text = store = TokenStore.open(source)
        name, summary = str(source), f"token store, {count(store.num_documents, 'document')}"
    else:
        text = read_text(source)
        name, summary = str(source), f"1 document, {len(text):,} characters"

    loader = create_dataloader(text, batch_size=batch_size, max_length=max_length, stride=stride, shuffle=False)
    windows = cast("SlidingWindowDataset", loader.dataset)  # one source, sampling="windows": the windows themselves
    # the modules are built before anything is printed: a bad size is one Error line, not a half-printed demo
    torch.manual_seed(seed)
    absolute = positional if positional in ("learned", "sinusoidal") else "none"
    embedding = InputEmbedding(enc.n_vocab, embed_dim, context_length=max_length, positional=absolute)
    if absolute == "none":
        # "none": attention with no position at all; else a scheme that acts in attention
        relative = None if positional == "none" else cast("RelativeScheme", positional)
        attention = CausalSelfAttention(embed_dim, num_heads, positional=relative)
    echo(f"lmfeed demo: the seed's pipeline on {name}\n")
    echo("1. tokens")
    echo(f"   corpus    {summary}")
    echo(f"   tokenizer GPT-2 BPE, {enc.n_vocab:,} ids, <|endoftext|> = {enc.eot_token}")
    echo(f"   tokens    {windows.num_tokens:,}")
    echo("\n2. sliding windows")
    echo(f"   max_length={max_length}, stride={stride}: {len(windows):,} (input, target) windows, "
         f"target = input shifted by one token")
    echo(f"   batch_size={batch_size}, drop_last: {len(loader):,} batches")

    inputs, targets = next(iter(loader))
    echo(f"\n3. the first batch: inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)}, int64\n")
    echo(format_batch(inputs, targets, enc, width=80, max_samples=4))

    with torch.no_grad():
        token_embeddings = embedding.token_embedding(inputs)
        x = embedding(inputs)
    rows = [(f"token_embedding = nn.Embedding({enc.n_vocab}, {embed_dim})",
             f"weight {_shape(embedding.token_embedding.weight)}, trainable"),
            ("token_embeddings = token_embedding(inputs)", _shape(token_embeddings))]
    if embedding.position_embedding is not None:
        with torch.no_grad():
            pos = embedding.position_embedding(torch.arange(max_length))
        rows += [(f"pos_embeddings = {absolute}_embedding(arange({max_length}))", _shape(pos)),
                 ("input_embeddings = token_embeddings + pos_embeddings", _shape(x))]
    else:
        with torch.no_grad():
            y = attention(x)
        rows += [("input_embeddings = token_embeddings (no absolute positions)", _shape(x)),
                 (f"CausalSelfAttention({embed_dim}, {num_heads}, positional={relative!r})(x)", _shape(y))]
    echo(f"\n4. embeddings, after torch.manual_seed({seed})")
    left = max(len(r[0]) for r in rows) + 3
    for code, shape in rows:
        echo(f"   {code.ljust(left)}{shape}")
    if embedding.position_embedding is not None:
        first = int(inputs[0, 0])
        shown = "its value" if embed_dim == 1 else (f"its {embed_dim} values" if embed_dim <= 4
                                                      else f"the first 4 of its {embed_dim} values")
        echo(f"\n   inputs[0, 0] = {first} {visible_piece(enc, first)}: {shown}")
        echo(f"     token embedding       {_values(token_embeddings[0, 0])}")
        echo(f"   + position 0 embedding  {_values(pos[0])}")
        echo(f"   = input embedding       {_values(x[0, 0])}")
    echo("\n5. the position scheme")
    echo("   " + describe_positional(positional, num_heads=num_heads, length=min(max_length, 4)).replace("\n", "\n   "))
    if not no_plots:
        _pictures(out_dir, inputs, x, embedding, enc, seed, text if source is not None and source.is_dir() else None,
                  attention if absolute == "none" else None)


def _pictures(out_dir: Path, inputs, x, embedding, enc, seed: int, store, attention) -> None:  # noqa: ANN001
    """Section 6: the batch, the position tables and the token table as PNGs (only if matplotlib is installed)."""
    click.echo(f"\n6. pictures in {out_dir}/")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        click.echo("   (none: pictures need matplotlib; pip install 'lmfeed[plot]')")
        return
    from lmfeed.viz.plots import plot_batch_embeddings, write_embedding_plots, write_store_plots

    paths = [plot_batch_embeddings(inputs, x, enc, out_dir / "batch-embeddings.png")]
    # position tables of 128 x at most 64 dims (wider ones blur at 800 pixels); the PCA uses the demo's token table
    paths += write_embedding_plots(out_dir, embed_dim=min(embedding.embed_dim, 64), seed=seed,
                                   token_table=embedding.token_embedding.weight)
    if store is not None:
        paths += write_store_plots(store, out_dir)
    if attention is not None:  # BERT's distance table, Transformer-XL's u, v and term d over 128 distances
        from lmfeed.embeddings import relative_tables
        from lmfeed.viz.relative import plot_relative_positions

        tables = relative_tables(attention, 128)
        if tables:
            paths.append(plot_relative_positions(tables, None, out_dir / "relative-positions.png",
                                                 context_length=max(x.shape[1], 32)))
    for path in paths:
        click.echo(f"   {path}")


def _shape(t) -> str:  # noqa: ANN001
    return "(" + ", ".join(str(n) for n in t.shape) + ")"


def _values(t) -> str:  # noqa: ANN001
    return "[" + ", ".join(f"{v:+.4f}" for v in t[:4].tolist()) + (", ...]" if len(t) > 4 else "]")
