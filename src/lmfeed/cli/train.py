"""``lmfeed train``: a small GPT trained from lmfeed's loader, with the baseline it must beat and pictures."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import click

from lmfeed.model.config import TrainConfig

_D = TrainConfig()  # the defaults, shown in --help (this import does not pull in torch)

def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _progress(row: dict[str, Any]) -> None:
    parts = [f"step {row['step']:,}/{row['steps']:,}"]
    if row.get("train_loss") is not None:
        parts.append(f"loss {row['train_loss']:.3f}")
    if row.get("val_loss") is not None:
        parts.append(f"val {row['val_loss']:.3f}")
    if row.get("tokens_per_s"):
        parts.append(f"{row['tokens_per_s']:,.0f} tok/s")
    if row.get("eta_s") is not None:
        parts.append(f"{_duration(row['eta_s'])} left")
    click.echo("  ".join(parts), err=True)


def _peak_memory_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@click.command(name="train")
@click.argument("source", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"The run directory (config.json, metrics.jsonl, checkpoint.pt, pictures). [default: {_D.out_dir}]")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Continue the run in this directory from its checkpoint, with its settings (--steps, --minutes, "
                   "--eval-every and --device may change).")
@click.option("--tokenizer", default=None,
              help="gpt2, a tokenizer.json path, or bpe:N: a byte-level BPE of N ids trained on the training split "
                   f"(saved as RUN_DIR/tokenizer.json). [default: {_D.tokenizer}]")
@click.option("--positional", default=None,
              help="Position scheme: learned (GPT-2's), sinusoidal or none (added to the token embeddings), or one "
                   "that acts in attention: rope, alibi, t5, ... (an unknown name lists them all). "
                   f"[default: {_D.positional}]")
@click.option("--embed-dim", type=int, default=None, help=f"D. [default: {_D.embed_dim}]")
@click.option("--num-layers", type=int, default=None, help=f"Decoder blocks. [default: {_D.num_layers}]")
@click.option("--num-heads", type=int, default=None, help=f"Attention heads. [default: {_D.num_heads}]")
@click.option("--context-length", type=int, default=None,
              help=f"T, the window length (windows do not overlap). [default: {_D.context_length}]")
@click.option("--packing", type=click.Choice(["best_fit", "crop"]), default=None,
              help="Train on packed rows of whole documents (best_fit: every token once per epoch; crop: nanochat's "
                   "rows), each attending only within its document, positions from 0 in each. [default: windows]")
@click.option("--dropout", type=float, default=None, help=f"Dropout while training. [default: {_D.dropout}]")
@click.option("--batch-size", type=int, default=None,
              help=f"Windows per step (per rank under torchrun). [default: {_D.batch_size}]")
@click.option("--steps", type=int, default=None, help=f"Optimizer steps, the schedule's length. [default: {_D.steps}]")
@click.option("--minutes", type=float, default=None, help="Also stop (and save) after this much wall time.")
@click.option("--lr", type=float, default=None,
              help=f"Peak learning rate: AdamW, linear warm-up then cosine to lr/10. [default: {_D.lr}]")
@click.option("--weight-decay", type=float, default=None,
              help=f"AdamW weight decay on the matrices. [default: {_D.weight_decay}]")
@click.option("--grad-clip", type=float, default=None,
              help=f"Gradient norm clip, 0 for none. [default: {_D.grad_clip}]")
@click.option("--eval-every", type=int, default=None,
              help=f"Steps between evaluations (val loss, checkpoint, pictures). [default: {_D.eval_every}]")
@click.option("--log-every", type=int, default=None,
              help=f"Steps between progress lines and metrics records. [default: {_D.log_every}]")
@click.option("--seed", type=int, default=None, help=f"Seed of the weights and the batch order. [default: {_D.seed}]")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help=f"[default: {_D.device}]")
@click.option("--stop-after", type=int, default=None,
              help="Stop after this step and save, keeping the schedule of --steps (a job in time slots; resume "
                   "later).")
@click.option("--no-plots", is_flag=True, help="Do not draw pictures.")
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
@click.pass_context
def command(ctx: click.Context, source: Path | None, out_dir: Path | None, resume_dir: Path | None,
            stop_after: int | None, no_plots: bool, quiet: bool, **options: Any) -> None:
    """Train a small GPT on SOURCE and watch its embeddings learn.

    With no SOURCE it trains on the Python language reference that ships with every Python, split into training
    and validation by whole documents. SOURCE may be a text file (split by position), a token store or a split
    directory from `lmfeed prepare --val-fraction`. Prints the unigram baseline and the final validation loss;
    the run directory gets the pictures, redrawn at each evaluation. Ctrl-C saves a checkpoint and exits (130).

    \b
    Example:
        lmfeed train                                  # a few minutes on 2 CPU cores
        lmfeed train --resume lmfeed-run --steps 800  # continue it, longer
        lmfeed generate lmfeed-run --prompt "The with statement"
        torchrun --nproc-per-node 2 -m lmfeed train -o ddp-run
    """
    from lmfeed.model.checkpoint import load_checkpoint
    from lmfeed.model.train import train

    given = {k: v for k, v in options.items() if v is not None}
    if resume_dir is not None:
        if out_dir is not None and out_dir != resume_dir:
            raise click.UsageError("Pass the run directory once: --resume RUN_DIR (without -o).")
        if source is not None:
            raise ValueError("A resumed run reads the source it was started with; leave SOURCE out with --resume.")
        saved = load_checkpoint(resume_dir)["config"]  # FileNotFoundError / CheckpointError before anything else
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        config = TrainConfig(**{k: v for k, v in saved.items() if k in known})
        config = dataclasses.replace(config, **given, out_dir=str(resume_dir))
    else:
        config = TrainConfig(**given, source=None if source is None else str(source),
                             out_dir=str(out_dir or _D.out_dir))
    on_eval = None if no_plots else _draw
    result = train(config, resume=resume_dir is not None, on_log=None if quiet else _progress, on_eval=on_eval,
                   stop_after=stop_after)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun rank 0 reports
        return
    _report(result, config, no_plots)
    if result.reason == "interrupted":
        click.echo(f"Interrupted at step {result.step:,}: checkpoint saved. Continue with "
                   f"`lmfeed train --resume {result.run_dir}`.", err=True)
        sys.exit(130)


def _draw(ev: Any) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # pictures are optional: pip install 'lmfeed[plot]'
        return
    from lmfeed.viz.training import write_training_plots

    model = ev.model
    write_training_plots(
        ev.run_dir, step=ev.step, tokenizer=ev.tokenizer, metrics=ev.metrics, baseline=ev.baseline,
        token_before=ev.init_tables["token"], token_after=model.embedding.token_embedding.weight,
        train_counts=ev.train_counts, position_before=ev.init_tables.get("position"),
        position_after=model.learned_positions,
    )
    before = {k: v for k, v in ev.init_tables.items() if k == "relative_key" or k.startswith("xl_")}
    if before:  # BERT's distance table, or Transformer-XL's u, v and term d, at step 0 and now
        from lmfeed.embeddings import relative_tables
        from lmfeed.viz.relative import plot_relative_positions

        length = before["xl_d"].shape[-1] if "xl_d" in before else 1
        plot_relative_positions(before, relative_tables(model, length), ev.run_dir / "relative-positions.png",
                                step=ev.step, context_length=model.context_length)


def _report(result: Any, config: Any, no_plots: bool) -> None:
    echo = click.echo
    gap = result.baseline - result.val_loss
    echo(f"run              {result.run_dir}")
    echo(f"unigram baseline {result.baseline:.4f} nats (validation targets; counts from the training split, "
         "add-one smoothing)")
    echo(f"validation loss  {result.val_loss:.4f} nats at step {result.step:,}: {abs(gap):.4f} "
         f"{'below' if gap >= 0 else 'above'} the baseline")
    if result.position_structure is not None:
        before, after = result.position_structure
        echo(f"position structure {before:+.3f} at init -> {after:+.3f} now (mean cos of positions 1 apart minus "
             ">= T/4 apart, centred)")
    echo(f"time             {_duration(result.elapsed_s)} ({result.tokens_seen:,} tokens), peak memory "
         f"{_peak_memory_mb():,.0f} MB")
    if result.reason == "time limit":
        echo(f"stopped at the --minutes limit ({config.minutes:g}), before step {config.steps:,}; resume to finish")
    pictures = [p for p in ("loss.png", "token-embeddings.png", "position-embeddings.png", "relative-positions.png")
                if (result.run_dir / p).is_file()]
    if pictures and not no_plots:
        echo("pictures         " + ", ".join(str(result.run_dir / p) for p in pictures))
    table = result.run_dir / "neighbours.md"
    if table.is_file() and not no_plots:
        echo("")
        echo(table.read_text().rstrip())

