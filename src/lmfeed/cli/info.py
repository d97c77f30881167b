"""``lmfeed info``: what a token store holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from lmfeed.store.format import TokenStore  # imported lazily at run time, as the command does


@click.command(name="info")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--head", default=32, show_default=True, help="How many of the first tokens to show, decoded.")
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
@click.option("--verify", is_flag=True,
              help="Also read every id and check it is below the vocabulary size, and every separator in place "
                   "(reads the whole store; opening checks only sizes and the document index).")
def command(store: Path, head: int, as_json: bool, verify: bool) -> None:
    """Show a token store: tokens, documents, dtype, tokenizer, bytes on disk, and its first tokens decoded.

    \b
    Example:
        lmfeed info verdict.store
        lmfeed info verdict.store --verify
        lmfeed info verdict.store --json
    """
    from lmfeed._validate import as_int
    from lmfeed.store.format import TokenStore, is_split_dir

    head = as_int("--head", head, minimum=0)
    paths = [store / "train", store / "val"] if is_split_dir(store) else [store]
    stores = [TokenStore.open(p) for p in paths]
    reports = [_report(s, head) for s in stores]
    for s, r in zip(stores, reports, strict=True):
        if verify:
            r["verified"] = s.verify()
    if as_json:
        click.echo(json.dumps(reports if len(reports) > 1 else reports[0], indent=2))
        return
    for i, r in enumerate(reports):
        if i:
            click.echo("")
        tok = r["tokenizer"]
        click.echo(f"store:      {r['path']}")
        click.echo(f"tokens:     {r['tokens']:,}")
        click.echo(f"documents:  {r['documents']:,}")
        click.echo(f"dtype:      {r['dtype']}")
        click.echo(f"tokenizer:  {tok['name']} ({tok['n_vocab']:,} ids, vocabulary {tok['fingerprint'][:12]})")
        click.echo(f"separator:  {'none' if r['eot_id'] is None else r['eot_id']}")
        click.echo(f"on disk:    {r['bytes']:,} bytes")
        if r["shard"]:
            click.echo(f"shard:      {r['shard']['shard_index']} of {r['shard']['num_shards']}")
        if r["split"]:
            click.echo(f"split:      {r['split']['part']} "
                       f"(val_fraction {r['split']['val_fraction']}, seed {r['split']['seed']})")
        click.echo(f"sources:    {', '.join(s['input'] for s in r['sources'])}")
        click.echo(f"first {len(r['head_ids'])} tokens: {r['head_ids']}")
        click.echo(f"decoded:    {r['head_text']!r}")
        if "verified" in r:
            v = r["verified"]
            click.echo(f"verified:   {v['tokens']:,} ids below {tok['n_vocab']:,}, "
                       f"{v['separators']:,} separators in place")


def _report(store: TokenStore, head: int) -> dict:
    from lmfeed.store.format import TOKENS, check_ids

    check_ids(store.tokens[:head], store.vocab_size, where=store.path / TOKENS)  # decode would fail with a bare id
    ids = store.tokens[:head].tolist()
    m = store.metadata
    return {"path": str(store.path), "tokens": len(store), "documents": store.num_documents, "dtype": m["dtype"],
            "tokenizer": m["tokenizer"], "eot_id": store.eot_id, "bytes": store.nbytes_on_disk(),
            "shard": m.get("shard"), "split": m.get("split"), "sources": m.get("sources", []),
            "format_version": m["version"], "head_ids": ids, "head_text": store.tokenizer.decode(ids)}
