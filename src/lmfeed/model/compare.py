"""Train short, test long: one small GPT per position scheme, trained at T, evaluated at T, 2T, 4T and 8T.

The experiment of Press et al. 2022 ("Train Short, Test Long", Figure 1; arXiv:2108.12409): every scheme gets the same
model, data, steps and seed; only the positions differ. Each is trained with ``lmfeed.model.train.train`` at
context length T (its run directory keeps the checkpoint, metrics and pictures), then scored on the validation split
cut into non-overlapping windows of L = T, 2T, 4T, 8T tokens (the mean loss over every token of every window). A
learned table has no vector past position T - 1, so it is scored at T only; every other scheme runs on the longer
windows as it is (Transformer-XL without its memory: one window at a time, like the others).

Every scheme named by :func:`lmfeed.embeddings.positional_kinds` takes part unless ``schemes`` says otherwise, so a
scheme added to lmfeed joins the comparison without an edit here. A run directory that already holds a finished
scheme is reused; an unfinished one is resumed (a stopped comparison continues where it was).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from lmfeed._validate import as_int
from lmfeed.model.checkpoint import CHECKPOINT, load_checkpoint
from lmfeed.model.config import TrainConfig
from lmfeed.model.gpt import GPT

__all__ = ["SchemeResult", "compare_positions", "evaluate_lengths"]

_FREE = ("out_dir", "eval_every", "log_every", "device", "minutes")  # may differ in a reused run

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SchemeResult:
    """One scheme's row: validation loss at each evaluation length (None where the scheme cannot go)."""

    scheme: str
    train_length: int
    losses: dict[int, float | None]  # evaluation length L -> mean validation loss
    windows: dict[int, int]  # L -> validation windows scored
    train_loss: float | None  # the last logged training loss
    seconds: float


@torch.no_grad()
def evaluate_lengths(model: GPT, val_ids: Any, lengths: Sequence[int], *, batch_size: int = 8,
                     device: torch.device | str = "cpu") -> tuple[dict[int, float], dict[int, int]]:
    """Mean validation cross-entropy over non-overlapping windows of each length; ``model`` must accept the longest.

    Returns:
        ``(losses, windows)``: L -> mean loss over every target of every window, L -> number of windows.

    Raises:
        ValueError: a length with not even one window in the validation split (the message gives its size).
    """
    from lmfeed.loading.loader import create_dataloader

    model.eval()
    losses, counts = {}, {}
    for length in lengths:
        if len(val_ids) < length + 1:
            raise ValueError(f"The validation split has {len(val_ids):,} tokens, too few for one window of "
                             f"{length:,}. Lower --context-length or the lengths, or use a larger corpus.")
        loader = create_dataloader(val_ids, batch_size, length, length, shuffle=False, drop_last=False)
        total, n, windows = 0.0, 0, 0
        with torch.random.fork_rng(devices=[]):
            for inputs, targets, *_ in loader:
                _, loss = model(inputs.to(device), targets.to(device))
                total += float(loss) * targets.numel()
                n += targets.numel()
                windows += len(targets)
        losses[length], counts[length] = total / n, windows
    return losses, counts


def compare_positions(
    base: TrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    schemes: Sequence[str] | None = None,
    multiples: Sequence[int] = (1, 2, 4, 8),
    on_scheme: Callable[[str, int, int], None] | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> list[SchemeResult]:
    """Train ``base`` once per scheme at ``base.context_length`` and evaluate each at ``T * multiples``.

    Args:
        base: the model, data and training settings shared by every scheme (its ``positional`` and ``out_dir``
            are replaced per scheme).
        out_dir: the comparison's directory; scheme s trains in ``out_dir/runs/s``.
        schemes: which schemes (default: every one of :func:`lmfeed.embeddings.positional_kinds`).
        multiples: evaluation lengths as multiples of T (default 1, 2, 4, 8).
        on_scheme: called as ``on_scheme(scheme, i, n)`` before scheme i of n trains.
        on_log: passed to :func:`~lmfeed.model.train.train` (progress).

    Returns:
        One :class:`SchemeResult` per scheme, in order.

    Raises:
        ValueError: an unknown scheme, a bad multiple, a validation split too small for 8T.
    """
    from lmfeed._validate import as_choice
    from lmfeed.embeddings import positional_kinds
    from lmfeed.model.data import training_splits
    from lmfeed.model.train import train

    kinds = positional_kinds()
    chosen = list(kinds if schemes is None else schemes)
    for s in chosen:
        as_choice("scheme", s, kinds)
    if not chosen:
        raise ValueError("No scheme to compare. Leave --schemes out for all of them.")
    multiples = sorted({as_int("multiple", m, minimum=1) for m in multiples})
    base = base.validated()
    t = base.context_length
    lengths = [t * m for m in multiples]
    root = Path(out_dir)
    results = []
    for i, scheme in enumerate(chosen):
        run_dir = root / "runs" / scheme
        config = dataclasses.replace(base, positional=scheme, out_dir=str(run_dir))
        if on_scheme is not None:
            on_scheme(scheme, i, len(chosen))
        done = False
        if (run_dir / CHECKPOINT).is_file():
            saved = load_checkpoint(run_dir)
            asked = dataclasses.asdict(config).items()
            differs = [f"{k}={saved['config'].get(k)!r} there, {v!r} asked" for k, v in asked
                       if k not in _FREE and saved["config"].get(k) != v]
            if differs:
                raise ValueError(f"{str(run_dir)!r} holds a {scheme} run with other settings: {'; '.join(differs)}. "
                                 "Use another --out for other settings; nothing was changed.")
            done = saved["step"] >= config.steps
        result = None if done else train(config, resume=(run_dir / CHECKPOINT).is_file(), on_log=on_log)
        if result is not None and result.interrupted:
            raise KeyboardInterrupt  # Ctrl-C during a scheme: its checkpoint is saved; a re-run resumes it
        state = load_checkpoint(run_dir)
        splits = training_splits(base.source, base.tokenizer, run_dir=run_dir, write=False)
        reach = lengths if scheme != "learned" else [t]
        # the same weights in a model that accepts the longest window (only a learned table depends on T)
        model = GPT(splits.tokenizer.n_vocab, base.embed_dim, max(reach), base.num_layers, base.num_heads,
                    positional=scheme, dropout=base.dropout, tie_weights=base.tie_weights)
        model.load_state_dict(state["model"])
        losses, windows = evaluate_lengths(model, splits.val, reach, batch_size=base.batch_size)
        rows = [r for r in _metrics(run_dir) if r.get("train_loss") is not None]
        results.append(SchemeResult(
            scheme, t, {n: losses.get(n) for n in lengths}, windows,
            rows[-1]["train_loss"] if rows else None, float(state.get("elapsed_s", 0.0)),
        ))
        logger.info("%s: %s", scheme, losses)
    return results


def _metrics(run_dir: Path) -> list[dict[str, Any]]:
    import json

    path = run_dir / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []
