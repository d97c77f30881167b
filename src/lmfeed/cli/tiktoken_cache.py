"""``lmfeed tiktoken-cache``: put GPT-2's verified files in tiktoken's cache, so ``tiktoken.get_encoding("gpt2")``
(the book's own code) runs offline."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command("tiktoken-cache")
@click.option("--dir", "cache_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write there instead of tiktoken's cache directory (TIKTOKEN_CACHE_DIR, else DATA_GYM_CACHE_DIR, "
                   "else <tmp>/data-gym-cache); tiktoken reads it when TIKTOKEN_CACHE_DIR names it.")
def command(cache_dir: Path | None) -> None:
    """Place GPT-2's vocab.bpe and encoder.json where tiktoken looks for them, so that
    tiktoken.get_encoding("gpt2") needs no network (the files are the hash-checked ones lmfeed ships).

    \b
    Example:
        lmfeed tiktoken-cache
        python -c 'import tiktoken; print(tiktoken.get_encoding("gpt2").encode("Hello world"))'   # [15496, 995]
    """
    from lmfeed.text.tiktoken_cache import install_tiktoken_cache, tiktoken_cache_dir

    directory = install_tiktoken_cache(cache_dir)
    click.echo(f"Placed GPT-2's vocab.bpe and encoder.json in {directory}, named as tiktoken looks them up: "
               'tiktoken.get_encoding("gpt2") now works offline.')
    if os.path.abspath(directory) != os.path.abspath(tiktoken_cache_dir()):  # written where tiktoken does not look
        click.echo(f"tiktoken reads {tiktoken_cache_dir()} now: set TIKTOKEN_CACHE_DIR={directory} for it to read "
                   "these.")
