"""``lmfeed compare-positions``: train short, test long; one small GPT per position scheme (Press et al. 2022)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import click

from lmfeed.model.config import TrainConfig

# The full comparison (about 20-30 minutes on 2 CPU cores) and --quick (a few minutes).
FULL = {"embed_dim": 128, "num_layers": 3, "num_heads": 4, "context_length": 64, "batch_size": 16, "steps": 200,
        "eval_every": 100}
QUICK = {"embed_dim": 64, "num_layers": 2, "num_heads": 4, "context_length": 32, "batch_size": 8, "steps": 60,
         "eval_every": 60}


def _default(name: str) -> str:
    return f"[default: {FULL[name]}; --quick {QUICK[name]}]"


@click.command(name="compare-positions")
@click.argument("source", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("lmfeed-positions"), show_default=True,
              help="Directory for the table, the plot and one run per scheme (runs/SCHEME).")
@click.option("--schemes", default=None, help="Comma-separated schemes. [default: every one lmfeed has]")
@click.option("--quick", is_flag=True, help="A small model and few steps: a few minutes in all.")
@click.option("--context-length", type=int, default=None, help=f"T, the training length. {_default('context_length')}")
@click.option("--steps", type=int, default=None, help=f"Training steps per scheme. {_default('steps')}")
@click.option("--embed-dim", type=int, default=None, help=f"D. {_default('embed_dim')}")
@click.option("--num-layers", type=int, default=None, help=_default("num_layers"))
@click.option("--num-heads", type=int, default=None, help=_default("num_heads"))
@click.option("--batch-size", type=int, default=None, help=_default("batch_size"))
@click.option("--tokenizer", default=TrainConfig.tokenizer, show_default=True, help="As for `lmfeed train`.")
@click.option("--lr", type=float, default=None, help=f"[default: {TrainConfig.lr}]")
@click.option("--seed", type=int, default=None, help=f"The same for every scheme. [default: {TrainConfig.seed}]")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def command(source: Path | None, out_dir: Path, schemes: str | None, quick: bool, tokenizer: str, device: str,
            quiet: bool, **options: Any) -> None:
    """Train one small GPT per position scheme at length T; evaluate each at T, 2T, 4T and 8T.

    The same model, data, steps and seed for every scheme; only the positions differ. A learned table cannot
    go past T (the table says so); the others run on the longer windows as they are. Writes compare.md (the
    table), compare.json and compare.png (validation loss against length, one line per scheme) into --out.
    A stopped comparison continues where it was when run again with the same options.

    \b
    Example:
        lmfeed compare-positions --quick
        lmfeed compare-positions --schemes learned,sinusoidal,rope,alibi
    """
    from lmfeed.model.compare import compare_positions
    from lmfeed.viz.training import length_comparison_table, plot_length_comparison

    settings = {**(QUICK if quick else FULL), **{k: v for k, v in options.items() if v is not None}}
    base = TrainConfig(source=None if source is None else str(source), tokenizer=tokenizer, device=device,
                       log_every=20, **settings)
    chosen = None if schemes is None else [s.strip() for s in schemes.split(",") if s.strip()]

    def announce(scheme: str, i: int, n: int) -> None:
        if not quiet:
            click.echo(f"[{i + 1}/{n}] {scheme}: training at T={base.context_length} for {base.steps} steps", err=True)

    def progress(row: dict[str, Any]) -> None:
        if row.get("train_loss") is not None:
            click.echo(f"  step {row['step']}/{row['steps']}  loss {row['train_loss']:.3f}", err=True)

    try:
        results = compare_positions(base, out_dir, schemes=chosen, on_scheme=announce,
                                    on_log=None if quiet else progress)
    except KeyboardInterrupt:
        click.echo(f"Interrupted: finished schemes are kept in {out_dir}/runs; run the same command to continue.",
                   err=True)
        sys.exit(130)
    table = length_comparison_table(results)
    what = (f"{base.embed_dim}-dim, {base.num_layers} layers, {base.num_heads} heads, trained at "
            f"T={base.context_length} for {base.steps} steps of {base.batch_size} windows, tokenizer {tokenizer}")
    from lmfeed.model.train import _write_whole

    _write_whole(out_dir / "compare.md", f"Validation loss (nats per token); {what}\n\n{table}")
    _write_whole(out_dir / "compare.json", json.dumps({"settings": dataclasses.asdict(base), "results": [
        {**dataclasses.asdict(r), "losses": {str(k): v for k, v in r.losses.items()},
         "windows": {str(k): v for k, v in r.windows.items()}} for r in results]}, indent=2) + "\n")
    try:
        plot = plot_length_comparison(results, out_dir / "compare.png")
    except ImportError:
        plot = None
    click.echo(f"Validation loss (nats per token); {what}\n")
    click.echo(table.rstrip())
    click.echo(f"\nwritten: {out_dir / 'compare.md'}, {out_dir / 'compare.json'}" + (f", {plot}" if plot else ""))
