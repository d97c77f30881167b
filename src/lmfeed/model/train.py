"""Train a small GPT from lmfeed's loader: nanoGPT's ``train.py``, read top to bottom, as one function.

    config -> distributed set-up -> data (train / validation by whole documents) -> model -> optimizer and schedule
    -> resume (if asked) -> baseline -> one loop: step, log, and at each evaluation: val loss, checkpoint, pictures

The run directory holds ``config.json``, ``metrics.jsonl`` (one JSON line per logged step), ``checkpoint.pt``
(:mod:`lmfeed.model.checkpoint`: everything that decides the next step, written atomically) and, from the CLI, the
pictures. On the CPU with a fixed seed, a run stopped after step k and resumed to step n ends with the parameters of
a run that went to n without stopping, bit for bit (tested mid-epoch and across an epoch boundary).

Under ``torchrun`` every rank reads its share of each batch through the loader (``batch_size`` is per rank), the
model is wrapped in ``DistributedDataParallel`` (gloo on the CPU, nccl on GPUs), and rank 0 evaluates, writes the
checkpoint, the metrics and the pictures. On a GPU the forward runs under bf16 autocast and batches are copied from
pinned memory without blocking.

Example:
    >>> result = train(TrainConfig(out_dir="run", steps=50))   # doctest: +SKIP
    >>> result.val_loss < result.baseline                       # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmfeed._files import written_whole
from lmfeed._validate import as_int
from lmfeed.embeddings.describe import relative_tables
from lmfeed.model.baseline import position_structure, token_counts, unigram_cross_entropy
from lmfeed.model.checkpoint import CHECKPOINT, capture_rng, load_checkpoint, restore_rng, save_checkpoint
from lmfeed.model.config import TrainConfig
from lmfeed.model.data import Splits, training_splits
from lmfeed.model.gpt import GPT

__all__ = ["SHAPE_SETTINGS", "Evaluation", "TrainConfig", "TrainResult", "train"]

logger = logging.getLogger(__name__)

CONFIG, METRICS = "config.json", "metrics.jsonl"


# The settings that make the model's shape: resuming with any of them changed is refused, naming them.
SHAPE_SETTINGS = ("tokenizer", "positional", "embed_dim", "num_layers", "num_heads", "context_length", "tie_weights")
# The settings that decide each next step besides the shape: changed, the resumed run could not equal the other.
_TRAJECTORY_SETTINGS = ("source", "dropout", "batch_size", "lr", "warmup_steps", "weight_decay", "grad_clip", "seed",
                        "packing")


@dataclasses.dataclass
class Evaluation:
    """What an evaluation hands to ``on_eval`` (the CLI draws the pictures from it), on rank 0 only."""

    run_dir: Path
    step: int
    config: TrainConfig
    model: GPT
    tokenizer: Any
    metrics: list[dict[str, Any]]  # every line of metrics.jsonl so far
    baseline: float
    init_tables: dict[str, torch.Tensor]  # "token" (V, D), and "position" (T, D) for a learned table, at step 0
    train_counts: np.ndarray  # (V,) how often each id occurs in the training split
    final: bool


@dataclasses.dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int
    tokens_seen: int
    val_loss: float
    baseline: float
    elapsed_s: float
    interrupted: bool  # stopped by Ctrl-C / SIGTERM or the time limit before the last step (checkpoint saved)
    reason: str  # "done", "interrupted", "time limit", "stopped"
    position_structure: tuple[float, float] | None  # (at init, now) for a learned position table


def _setting_differences(saved: dict[str, Any], asked: TrainConfig, names: tuple[str, ...]) -> list[str]:
    return [f"{n}={saved.get(n)!r} in the checkpoint, {getattr(asked, n)!r} asked" for n in names
            if saved.get(n) != getattr(asked, n)]


def _schedule_lambda(config: TrainConfig) -> Callable[[int], float]:
    # a plain function, not the bound method: LambdaLR's state_dict then stores nothing of it
    return lambda step: config.lr_at(step)


class _StopSignal:
    """SIGINT / SIGTERM set a flag the loop reads after each step, so the checkpoint is of a finished step.

    A second Ctrl-C raises KeyboardInterrupt at once. Installed only in the main thread.
    """

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning("stopping after this step: saving a checkpoint (Ctrl-C again to quit without saving)")

    def __enter__(self) -> _StopSignal:
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _distributed(device: str) -> tuple[int, int, int, bool]:
    """``(rank, world_size, local_rank, created)``: joins the process group under torchrun (WORLD_SIZE > 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), False
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0, False
    gpu = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    dist.init_process_group(backend="nccl" if gpu else "gloo")
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), True


def _device(config: TrainConfig, local_rank: int) -> torch.device:
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("device='cuda' was asked for, but torch sees no CUDA GPU. Use --device cpu or auto.")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _write_whole(path: Path, text: str) -> None:
    with written_whole(path, "w") as f:
        f.write(text)


def _read_metrics(path: Path, up_to_step: int | None = None) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if up_to_step is None or r["step"] <= up_to_step]


def _batches(loader: Any) -> Iterator[Any]:
    """The loader's batches across epochs, forever (each finished pass moves the loader to the next epoch)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:  # a pass with nothing left (resumed at the very end of an epoch): the next one starts fresh
            continue


@torch.no_grad()
def _evaluate(model: GPT, loader: Any, device: torch.device, autocast: Any) -> float:
    """Mean cross-entropy over every validation target, each token weighted once (the last batch may be short).

    The RNGs are left as they were (the loader's pass start draws from torch's), so evaluating changes no step.
    """
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        return _evaluate_inner(model, loader, device, autocast)


def _evaluate_inner(model: GPT, loader: Any, device: torch.device, autocast: Any) -> float:
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for inputs, targets, *_ in loader:
        inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        with autocast():
            _, loss = model(inputs, targets)
        n = targets.numel()
        total += float(loss) * n
        count += n
    model.train(was_training)
    return total / count


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    on_eval: Callable[[Evaluation], None] | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """Train ``GPT`` as ``config`` says, writing the run directory ``config.out_dir``.

    Args:
        config: the run's :class:`TrainConfig`.
        resume: continue from ``out_dir/checkpoint.pt``. The model's shape must be the checkpoint's
            (:data:`SHAPE_SETTINGS`); ``steps``, ``minutes``, ``eval_every``, ``log_every`` and ``device`` may change.
        on_log: called on rank 0 with each metrics record (also written to ``metrics.jsonl``) plus ``eta_s``.
        on_eval: called on rank 0 after each evaluation with an :class:`Evaluation` (the CLI draws pictures).
        stop_after: stop after this step as Ctrl-C would (checkpoint saved), without changing the schedule
            (tests use it; a job split into time slots can too).

    Returns:
        :class:`TrainResult`.

    Raises:
        ValueError: a bad setting; a new run into a directory that already holds a checkpoint; a resume whose
            settings differ from the checkpoint's (each one named). FileNotFoundError: resuming a directory with
            no checkpoint. CheckpointError: a damaged checkpoint. Nothing in the run directory is changed by a
            refused run.
    """
    import torch.distributed as dist

    config = config.validated()
    run_dir = Path(config.out_dir)
    # -- refuse before touching anything -------------------------------------------------------------------------
    saved: dict[str, Any] | None = None
    if resume:
        saved = load_checkpoint(run_dir)  # FileNotFoundError / CheckpointError, run dir untouched
        differs = _setting_differences(saved["config"], config, SHAPE_SETTINGS)
        if differs:
            raise ValueError(f"Cannot resume {str(run_dir)!r} with another model shape: {'; '.join(differs)}. "
                             "Leave those settings out to resume, or train a new run with another -o.")
        differs = _setting_differences(saved["config"], config, _TRAJECTORY_SETTINGS)
        if differs:
            raise ValueError(f"Cannot resume {str(run_dir)!r} exactly with other training settings: "
                             f"{'; '.join(differs)}. Leave them out to resume, or train a new run with another -o.")
    elif (run_dir / CHECKPOINT).exists():
        raise ValueError(f"{str(run_dir)!r} already holds a run (checkpoint.pt). Continue it with --resume, or pass "
                         "another -o; nothing was changed.")

    # -- distributed, device -------------------------------------------------------------------------------------
    if stop_after is not None:
        stop_after = as_int("stop_after", stop_after, minimum=1)
    rank, world_size, local_rank, created_group = _distributed(config.device)
    master = rank == 0
    device = _device(config, local_rank)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True

    def autocast() -> Any:  # bf16 on GPUs; on the CPU float32 throughout (exact resume is tested there)
        return torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()

    # -- data ----------------------------------------------------------------------------------------------------
    from lmfeed.loading.loader import create_dataloader

    splits: Splits = training_splits(config.source, config.tokenizer, run_dir=run_dir, write=master)
    if world_size > 1:
        dist.barrier()  # a trained BPE is saved by rank 0 before anyone reads the run directory
    vocab_size = splits.tokenizer.n_vocab
    t = config.context_length
    # packing: whole documents in rows, each attending only to itself, positions from 0 in each (DocumentBatch)
    packed: dict[str, Any] = {"packing": config.packing, "return_documents": True} if config.packing else {}
    train_loader = create_dataloader(splits.train, config.batch_size, t, t, shuffle=True, drop_last=True,
                                     seed=config.seed, rank=rank, world_size=world_size, pin_memory=cuda, **packed)
    val_loader = create_dataloader(splits.val, config.batch_size, t, t, shuffle=False, drop_last=False,
                                   rank=0, world_size=1, pin_memory=cuda)  # rank 0 evaluates all of it

    # -- model, optimizer, schedule --------------------------------------------------------------------------------
    torch.manual_seed(config.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    model = GPT(vocab_size, config.embed_dim, t, config.num_layers, config.num_heads, positional=config.positional,
                dropout=config.dropout, tie_weights=config.tie_weights).to(device)
    init_tables = {"token": model.embedding.token_embedding.weight.detach().cpu().clone()}
    if model.learned_positions is not None:
        init_tables["position"] = model.learned_positions.detach().cpu().clone()
    init_tables.update(relative_tables(model, t))  # BERT's distance table or Transformer-XL's u, v, term d, at step 0
    # nanoGPT's groups: weight decay on matrices only, not on biases, LayerNorm or (1-D) scheme parameters
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=config.lr, betas=(0.9, 0.95), fused=True)  # one kernel: ~5x the loop on CPU
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule_lambda(config))
    step, tokens_seen, elapsed_before = 0, 0, 0.0

    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        train_loader.load_state_dict(saved["loader"])
        rngs = saved["rng"]
        restore_rng(rngs[rank] if len(rngs) == world_size else rngs[0])
        step, tokens_seen, elapsed_before = int(saved["step"]), int(saved["tokens_seen"]), float(saved["elapsed_s"])
        init_tables = saved["init"]
    ddp_model: Any = model
    if world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp_model = DistributedDataParallel(model, device_ids=[local_rank] if cuda else None)

    # -- run directory, baseline ---------------------------------------------------------------------------------
    metrics_path = run_dir / METRICS
    with torch.random.fork_rng(devices=[]):
        val_targets = np.concatenate([targets.numpy().reshape(-1) for _, targets, *_ in val_loader])
    train_counts = token_counts(splits.train, vocab_size)
    baseline = unigram_cross_entropy(splits.train, val_targets, vocab_size=vocab_size, counts=train_counts)
    metrics: list[dict[str, Any]] = []
    if master:
        run_dir.mkdir(parents=True, exist_ok=True)
        settings = {**dataclasses.asdict(config), "vocab_size": vocab_size, "world_size": world_size,
                    "data": splits.description, "baseline": baseline}
        _write_whole(run_dir / CONFIG, json.dumps(settings, indent=2) + "\n")
        metrics = _read_metrics(metrics_path, up_to_step=step if saved is not None else -1)
        _write_whole(metrics_path, "".join(json.dumps(r) + "\n" for r in metrics))  # drop lines past the checkpoint
    logger.info("data: %s; baseline %.4f nats; model %s parameters", splits.description, baseline,
                f"{model.num_parameters():,}")

    def checkpoint() -> None:
        rng = [capture_rng()]
        if world_size > 1:
            gathered: list[Any] = [None] * world_size
            dist.all_gather_object(gathered, rng[0])
            rng = gathered
        if master:
            save_checkpoint(run_dir, {
                "config": dataclasses.asdict(config), "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                "loader": train_loader.state_dict(), "rng": rng, "step": step, "tokens_seen": tokens_seen,
                "elapsed_s": elapsed_before + (time.perf_counter() - start), "init": init_tables,
                "val_loss": val_loss, "baseline": baseline,
            })

    def record(row: dict[str, Any], eta_s: float | None) -> None:
        if not master:
            return
        metrics.append(row)
        with open(metrics_path, "a") as f:  # a log: one whole line per record
            f.write(json.dumps(row) + "\n")
        if on_log is not None:
            on_log({**row, "eta_s": eta_s, "steps": config.steps})

    # -- the loop ------------------------------------------------------------------------------------------------
    val_loss = float(saved.get("val_loss", float("nan"))) if saved is not None else float("nan")
    start = time.perf_counter()
    window_start, window_tokens, losses = start, 0, []
    tokens_per_step = config.batch_size * t * world_size
    if step == 0 and master:  # the loss curve's first point, and the "before" pictures, from the untrained model
        val_loss = _evaluate(model, val_loader, device, autocast)
        record({"step": 0, "tokens": 0, "train_loss": None, "val_loss": val_loss, "lr": config.lr * config.lr_at(0),
                "tokens_per_s": None, "elapsed_s": 0.0}, None)
        if on_eval is not None:
            on_eval(Evaluation(run_dir, 0, config, model, splits.tokenizer, metrics, baseline, init_tables,
                               train_counts, False))
    batches = _batches(train_loader)
    reason = "done"
    ddp_model.train()
    with _StopSignal() as stop_signal:
        while step < config.steps:
            with torch.random.fork_rng(devices=[]):  # the loader's pass starts draw nothing from the global RNG
                inputs, targets, *documents = next(batches)
            inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
            masks = {}
            if config.packing:  # DocumentBatch: (..., position_ids, document_ids, cu_seqlens, max_seqlen)
                masks = {"position_ids": documents[0].to(device, non_blocking=True),
                         "document_ids": documents[1].to(device, non_blocking=True)}
            with autocast():
                _, loss = ddp_model(inputs, targets, **masks)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            schedule.step()
            step += 1
            tokens_seen += tokens_per_step
            window_tokens += tokens_per_step
            losses.append(loss.detach())

            # stop together: Ctrl-C / SIGTERM on any rank, rank 0's clock, or the caller's stop_after
            elapsed = elapsed_before + time.perf_counter() - start
            flags = torch.tensor([float(stop_signal.requested),
                                  float(config.minutes is not None and elapsed >= config.minutes * 60),
                                  float(stop_after is not None and step >= stop_after)])
            if world_size > 1:
                dist.all_reduce(flags, op=dist.ReduceOp.MAX)
            stopping = bool(flags.any()) and step < config.steps
            evaluating = step % config.eval_every == 0 or step == config.steps or stopping
            if step % config.log_every == 0 or evaluating:
                train_loss = torch.stack(losses).mean()
                if world_size > 1:
                    dist.all_reduce(train_loss)  # a sum (gloo has no average)
                    train_loss = train_loss / world_size
                now = time.perf_counter()
                rate = window_tokens / max(now - window_start, 1e-9)
                if evaluating and master:
                    val_loss = _evaluate(model, val_loader, device, autocast)
                row = {"step": step, "tokens": tokens_seen, "train_loss": float(train_loss),
                       "val_loss": val_loss if evaluating else None, "lr": optimizer.param_groups[0]["lr"],
                       "tokens_per_s": rate, "elapsed_s": elapsed}
                record(row, (config.steps - step) * tokens_per_step / max(rate, 1e-9))
                window_start, window_tokens, losses = time.perf_counter(), 0, []
            if evaluating:
                checkpoint()
                if master and on_eval is not None:
                    on_eval(Evaluation(run_dir, step, config, model, splits.tokenizer, metrics, baseline,
                                       init_tables, train_counts, step == config.steps or stopping))
                if world_size > 1:
                    dist.barrier()
            if stopping:
                reason = ("interrupted" if flags[0] else "time limit" if flags[1] else "stopped")
                break
    structure = None
    if "position" in init_tables:
        structure = (position_structure(init_tables["position"]),
                     position_structure(model.learned_positions))
    if world_size > 1:
        dist.barrier()
        if created_group:
            dist.destroy_process_group()
    return TrainResult(run_dir, step, tokens_seen, val_loss, baseline,
                       elapsed_before + time.perf_counter() - start, reason != "done", reason, structure)
