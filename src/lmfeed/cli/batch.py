"""``lmfeed batch``: one batch of the loader, drawn as the seed draws it, or as JSON for scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


@click.command(name="batch", short_help="Show batch K: each input row over its target row.")
@click.argument("source", required=False, type=click.Path(path_type=Path))
@click.option("--batch-size", default=8, show_default=True, help="Windows per batch (B).")
@click.option("--max-length", default=4, show_default=True, help="Tokens per window (T).")
@click.option("--stride", default=4, show_default=True, help="Distance between window starts.")
@click.option("--shuffle/--no-shuffle", default=False, show_default=True, help="Shuffle the windows, as in training.")
@click.option("--seed", type=int, default=None, help="Seed for --shuffle (default: torch's global RNG, as DataLoader).")
@click.option("--drop-last/--no-drop-last", default=True, show_default=True,
              help="Drop the last batch when it has fewer than --batch-size windows, as create_dataloader does.")
@click.option("--index", "index", default=0, show_default=True,
              help="Which batch, counting from 0; negative counts from the end (-1 is the last).")
@click.option("--samples", type=int, default=None, help="Show at most this many samples (default: all).")
@click.option("--width", default=80, show_default=True, help="Terminal columns for the table.")
@click.option("--truncate", is_flag=True, help="Cut each sample at --width columns (with a note) instead of wrapping.")
@click.option("--packing", type=click.Choice(["best_fit", "crop"]), default=None,
              help="Show packed rows: whole documents in rows of max_length + 1 tokens (best_fit: best-fit decreasing, "
                   "every token once; crop: nanochat's rows, each opened by a document). Marks document starts (│) "
                   "and padding.")
@click.option("--documents", is_flag=True,
              help="Head each column with its position in its document (0 at every document start, │ before it).")
@click.option("--json", "as_json", is_flag=True, help="Print the batch as JSON (ids and pieces) for scripts.")
@click.option("--tokenizer", default=None,
              help="For a text SOURCE: gpt2 (default) or a tokenizer.json (a store uses its own tokenizer).")
def command(source: Path | None, batch_size: int, max_length: int, stride: int, shuffle: bool, seed: int | None,
            drop_last: bool, index: int, samples: int | None, width: int, truncate: bool, packing: str | None,
            documents: bool, as_json: bool, tokenizer: str | None) -> None:
    """Print batch INDEX of create_dataloader(SOURCE, ...): each sample's input row over its target row.

    Each token shows its id and its decoded piece (· space, ↵ newline, → tab, ␀ ␛ ... other control characters);
    the target row is the input row shifted by one token. SOURCE is a UTF-8 text file or a token store made by
    `lmfeed prepare`; with no SOURCE, the Python language reference that ships with every Python, its topics joined
    by <|endoftext|>.

    \b
    Example:
        lmfeed batch
        lmfeed batch the-verdict.txt --max-length 8 --index 2
        lmfeed batch corpus.store --shuffle --seed 0 --json | jq '.inputs[0]'
        lmfeed batch --packing best_fit --max-length 16 --batch-size 2 --index -1
    """
    import textwrap

    import torch

    from lmfeed._validate import as_int
    from lmfeed.loading.loader import create_dataloader
    from lmfeed.text.tokenizer import get_tokenizer
    from lmfeed.viz.table import format_batch

    width = as_int("width", width, minimum=40)
    if samples is not None:
        samples = as_int("samples", samples)
    if seed is not None and not shuffle:
        raise click.UsageError("--seed orders a shuffle; pass --shuffle with it.")
    source_arg, name, found = _source(source)
    enc: Any = found
    if enc is None:
        enc = get_tokenizer(tokenizer or "gpt2")
    elif tokenizer is not None:  # a store: read only with its own vocabulary (create_dataloader checks it)
        enc = get_tokenizer(tokenizer)
    documents = documents or packing is not None
    loader = create_dataloader(source_arg, batch_size=batch_size, max_length=max_length, stride=stride,
                               shuffle=shuffle, seed=seed, drop_last=drop_last, tokenizer=enc,
                               packing=packing, return_documents=documents)  # type: ignore[arg-type]
    num_batches = len(loader)
    k = index + num_batches if index < 0 else index
    if not 0 <= k < num_batches:
        raise ValueError(
            f"--index {index} does not exist: max_length={max_length}, stride={stride}, batch_size={batch_size} give "
            f"{num_batches:,} batches: 0 to {num_batches - 1:,}, or -1 to -{num_batches:,} from the end. "
            f"Pass an --index in that range."
        )
    # batch k is a function of k (the order is a function of seed and epoch): start the pass at it, as a resumed
    # loader does, instead of gathering the k batches before it
    state = loader.state_dict()
    state["position"] = k * batch_size
    loader.load_state_dict(state)
    batch = next(iter(loader))
    inputs, targets = batch[:2]
    positions = batch[2] if documents else None
    # padding slots of a packed row: after the last real token, whose target (the first pad) is ignored
    padding = None
    if packing is not None:
        padding = torch.zeros_like(inputs, dtype=torch.bool)
        padding[:, 1:] = targets[:, :-1] == -100
        padding = padding.cummax(dim=1).values  # the rest of the row is padding too
    _check_ids(source_arg, max(int(inputs.max()), int(targets.max())), enc)

    if as_json:
        def pieces(rows: list[list[int]]) -> list[list[str]]:
            return [[enc.decode_single_token_bytes(t).decode("utf-8", errors="backslashreplace") for t in row]
                    for row in rows]

        x, y = inputs.tolist(), targets.tolist()
        result = {
            "source": name, "index": k, "num_batches": num_batches, "batch_size": batch_size,
            "max_length": max_length, "stride": stride, "shuffle": shuffle, "seed": seed, "drop_last": drop_last,
            "inputs": x, "targets": y, "input_pieces": pieces(x),
            "target_pieces": [[p if t >= 0 else "" for p, t in zip(row, ts, strict=True)]
                              for row, ts in zip(pieces([[max(t, 0) for t in r] for r in y]), y, strict=True)],
        }
        if documents:
            result.update(position_ids=batch.position_ids.tolist(), document_ids=batch.document_ids.tolist(),
                          cu_seqlens=batch.cu_seqlens.tolist(), max_seqlen=batch.max_seqlen)
        if packing is not None:
            result.update(packing=packing, pad_id=loader.pad_id, padding_fraction=loader.padding_fraction,
                          cropped_fraction=loader.cropped_fraction, padding=padding.tolist())  # type: ignore[union-attr]
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    order = f"shuffled (seed {seed})" if shuffle and seed is not None else "shuffled" if shuffle else "in order"
    header = [f"batch {k:,} of batches 0 to {num_batches - 1:,} ({order}) from {name}",
              f"inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)}, int64;",
              "target[t] = input[t + 1]: the token to predict"]
    if packing is not None:
        header[0] = f"packed batch {k:,} of 0 to {num_batches - 1:,} ({order}, packing={packing}) from {name}"
        header.append(f"rows of max_length + 1 = {max_length + 1:,} tokens; padding {loader.padding_fraction:.2%} "
                      f"of all slots (pad id {loader.pad_id}), {loader.cropped_fraction:.2%} of tokens cropped")
    if documents:
        header.append("pos: the position in its document; │ marks a document start"
                      + ("; <pad> padding; -100 a target that is not learned" if packing is not None else ""))
    for line in header:
        click.echo(textwrap.fill(line, width, subsequent_indent="  ", break_on_hyphens=False))
    click.echo()
    click.echo(format_batch(inputs, targets, enc, width=width, max_samples=samples,
                            overflow="truncate" if truncate else "wrap", position_ids=positions,
                            padding=None if padding is None else padding.tolist()))


def _check_ids(source: object, top: int, enc: Any) -> None:
    """Ids the tokenizer cannot decode can only come from a damaged store: say where, not ``KeyError: 65535``."""
    from lmfeed.store.format import StoreError, TokenStore

    if top < enc.n_vocab:
        return
    if isinstance(source, TokenStore):
        source.verify()  # names the file, the first bad id and its offset
    raise StoreError(f"The batch holds id {top}, at or above the vocabulary size {enc.n_vocab:,}. The source is "
                     "damaged; run `lmfeed info --verify` on it.")


def _source(source: Path | None) -> tuple[object, str, Any]:
    """What to hand to create_dataloader, a name for it, and the tokenizer that decodes it (None: GPT-2)."""
    from lmfeed.cli import check_source, count

    check_source(source)
    if source is None:
        from lmfeed.text.sources import DEFAULT_CORPUS_NAME, python_reference
        from lmfeed.text.tokenizer import ENDOFTEXT

        return ENDOFTEXT.join(python_reference()), DEFAULT_CORPUS_NAME, None
    if source.is_dir():
        from lmfeed.store.format import TokenStore

        store = TokenStore.open(source)
        return store, f"{source} (token store, {count(store.num_documents, 'document')})", store.tokenizer
    return source, str(source), None  # a text file: create_dataloader reads it and names it in its errors
