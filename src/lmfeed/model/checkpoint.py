"""Checkpoints that resume bit for bit: everything that decides the next step, written whole or not at all.

A checkpoint (``RUN_DIR/checkpoint.pt``, one ``torch.save`` dict) holds, after step ``step``:

    format, version      "lmfeed-checkpoint", 1
    config               the run's TrainConfig as a dict (the model's shape among it)
    model                the model's state_dict (unwrapped from DistributedDataParallel)
    optimizer, schedule  AdamW's and the learning-rate schedule's state_dicts
    loader               the training loader's state_dict(): epoch, position, seeds (a few integers)
    rng                  every RNG state: torch (CPU), CUDA (if any), numpy, Python's random, one per rank
    step, tokens_seen, elapsed_s
    init                 the token and position tables at step 0, for the "before" pictures

It is written under a temporary name beside the target and renamed into place (``os.replace``), so a crash or
Ctrl-C while saving leaves the previous checkpoint whole.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmfeed._files import written_whole

__all__ = ["CHECKPOINT", "CheckpointError", "capture_rng", "load_checkpoint", "restore_rng", "save_checkpoint"]

CHECKPOINT = "checkpoint.pt"
_FORMAT, _VERSION = "lmfeed-checkpoint", 1


class CheckpointError(ValueError):
    """A checkpoint that is missing its parts, damaged, or from another program or version."""


def capture_rng() -> dict[str, Any]:
    """The state of every random number generator a training step may draw from."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _numpy_state() -> dict[str, Any]:
    # tensors and plain numbers only, so that the checkpoint loads with torch.load(weights_only=True)
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def restore_rng(state: dict[str, Any]) -> None:
    """Put back what :func:`capture_rng` returned."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` to ``run_dir/checkpoint.pt`` atomically (temporary name, then ``os.replace``)."""
    target = Path(run_dir) / CHECKPOINT
    with written_whole(target) as f:
        torch.save({"format": _FORMAT, "version": _VERSION, **state}, f)
    return target


_REQUIRED = ("config", "model", "optimizer", "schedule", "loader", "rng", "step", "tokens_seen")


def load_checkpoint(run_dir: str | os.PathLike[str], *, purpose: str = "resume") -> dict[str, Any]:
    """Read ``run_dir/checkpoint.pt`` on the CPU, checking that it is whole and is lmfeed's.

    ``purpose`` ("resume" or "generate from") is what a missing checkpoint's message says there is nothing to do.

    Raises:
        FileNotFoundError: no run directory, or no checkpoint in it (the message says how to start a run).
        CheckpointError: the file does not load (truncated, damaged) or is not a lmfeed checkpoint of this
            version. Nothing in the run directory is changed either way.
    """
    run = Path(run_dir)
    path = run / CHECKPOINT
    if not path.is_file():
        where = "has no checkpoint.pt" if run.is_dir() else "does not exist"
        how = " (without --resume)" if purpose == "resume" else ", then pass that directory"
        raise FileNotFoundError(f"{str(run)!r} {where}, so there is nothing to {purpose}. Start a run with "
                                f"`lmfeed train -o {run}`{how}.")
    try:
        # weights_only: a checkpoint is tensors, numbers and strings; loading one runs no code
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, pickle errors, EOFError... for a damaged file
        raise CheckpointError(f"{str(path)!r} is damaged or not a checkpoint ({type(error).__name__}: "
                              f"{' '.join(str(error).split())[:200]}). Nothing was changed; resume from a copy, "
                              "or start a new run with another -o.") from None
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a lmfeed checkpoint. Pass the RUN_DIR that `lmfeed train` wrote.")
    if state.get("version") != _VERSION:
        raise CheckpointError(f"{str(path)!r} has checkpoint version {state.get('version')}, but this lmfeed reads "
                              f"version {_VERSION}. Resume it with the lmfeed that wrote it.")
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"{str(path)!r} lacks {', '.join(missing)}; it is incomplete. Nothing was changed.")
    return state

