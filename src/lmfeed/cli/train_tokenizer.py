"""``lmfeed train-tokenizer``: a byte-level BPE of your own vocabulary size, saved as a ``tokenizer.json``."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command(name="train-tokenizer")
@click.argument("inputs", nargs=-1, required=True, metavar="CORPUS...")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="The tokenizer.json to write (a directory: OUTPUT/tokenizer.json).")
@click.option("--vocab-size", type=int, required=True,
              help="Ids in the vocabulary (at least 257: 256 bytes + <|endoftext|>).")
@click.option("--min-frequency", type=int, default=2, show_default=True,
              help="A pair must occur this often to be merged.")
@click.option("--glob", default="*", show_default=True, help="Files to take from directories (searched recursively).")
@click.option("--field", default="text", show_default=True, help="The JSON Lines field holding the text.")
@click.option("--errors", type=click.Choice(["strict", "replace", "skip"]), default="strict", show_default=True,
              help="Bytes that are not UTF-8: stop with an error, replace them with U+FFFD, or skip them.")
@click.option("--force", is_flag=True, help="Replace an existing OUTPUT.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(inputs: tuple[str, ...], output: Path, vocab_size: int, min_frequency: int, glob: str, field: str,
            errors: str, force: bool, as_json: bool) -> None:
    """Train a byte-level BPE on CORPUS... (the inputs `lmfeed prepare` reads) and write it as a tokenizer.json.

    GPT-2's kind of tokenizer (bytes as the alphabet, GPT-2's pre-tokenizer split, <|endoftext|> as id 0),
    trained by the tokenizers library; the same corpus gives the same file. Use it with --tokenizer OUTPUT
    everywhere, and in Python as create_dataloader(..., tokenizer="OUTPUT").

    \b
    Example:
        lmfeed train-tokenizer corpus/ --vocab-size 8000 -o tokenizer.json
        lmfeed prepare corpus/ --tokenizer tokenizer.json -o corpus.store
    """
    from lmfeed.text.train_bpe import train_tokenizer

    enc = train_tokenizer([Path(i) for i in inputs], vocab_size=vocab_size, out=output, field=field, glob=glob,
                          errors=errors, min_frequency=min_frequency, force=force)
    if as_json:
        click.echo(json.dumps({"path": enc.name, "vocab_size": enc.n_vocab, "eot_id": enc.eot_token,
                               "fingerprint": enc.fingerprint}, indent=2))
        return
    click.echo(f"Wrote {enc.name}: byte-level BPE, {enc.n_vocab:,} ids, <|endoftext|> = {enc.eot_token}")
