"""The loader's resume state: what ``WindowLoader.state_dict()`` holds and what ``load_state_dict()`` checks.

A state is a few plain values (it survives JSON and ``torch.save``)::

    {"version": 2, "epoch": 3, "position": 96, "epoch_seed": 5017..., "seed": 1234, "num_items": 34753,
     "batch_size": 8, "world_size": 1,
     "mode": {"shuffle": True, "drop_last": True, "sampling": "windows", "respect_documents": False,
              "max_length": 4, "stride": 4, "weights": None}}

``position`` counts the global positions of the epoch's order consumed by delivered batches. ``mode`` records
every setting that decides the order or the windows, so that a state is loaded only into a loader that walks
the same order: a differing setting is refused by name, never resumed into another order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from lmfeed._validate import as_int
from lmfeed.loading.sampler import PassState, WindowBatchSampler, epoch_seed_for

__all__ = ["STATE_VERSION", "check_state", "make_state"]

logger = logging.getLogger(__name__)

STATE_VERSION = 2  # 2 adds "mode"; a version-1 state (no mode) still loads, with the mode unchecked
_REQUIRED = ("epoch", "position", "epoch_seed", "seed", "num_items", "batch_size", "world_size")
_FIX = "Pass the dict that WindowLoader.state_dict() returned, unchanged."


def make_state(pass_state: PassState, sampler: WindowBatchSampler, mode: Mapping[str, Any]) -> dict[str, Any]:
    """The state dict of a loader whose training pass stands at ``pass_state``."""
    return {
        "version": STATE_VERSION,
        "epoch": pass_state.epoch,
        "position": pass_state.position,
        "epoch_seed": pass_state.epoch_seed,
        "seed": sampler.seed,
        "num_items": sampler.num_items,
        "batch_size": sampler.batch_size,
        "world_size": sampler.world_size,
        "mode": dict(mode),
    }


def check_state(state: Any, sampler: WindowBatchSampler, mode: Mapping[str, Any]) -> PassState:
    """Validate ``state`` against the loader it is loaded into and return where the next pass starts.

    Raises:
        ValueError: not a lmfeed loader state, a missing key, a value out of range (a negative position, one past
            the end of the epoch, an epoch seed that does not belong to the seed), or a state taken over other data
            or in another mode (the message names the differing setting).
        TypeError: a value of the wrong type (e.g. ``"position": "12"``).
    """
    if not isinstance(state, Mapping) or "version" not in state:
        raise ValueError(f"Not a lmfeed loader state: got {_describe(state)}. {_FIX}")
    version = state["version"]
    if isinstance(version, bool) or version not in (1, STATE_VERSION):
        raise ValueError(f"The loader state has version {version!r}; this lmfeed reads versions 1 and "
                         f"{STATE_VERSION}. {_FIX}")
    missing = [key for key in _REQUIRED if key not in state]
    if missing:
        raise ValueError(f"The loader state has no {', '.join(map(repr, missing))} (it holds "
                         f"{', '.join(map(repr, sorted(map(str, state))))}). {_FIX}")
    epoch = _count(state, "epoch", minimum=0)
    position = _count(state, "position", minimum=0)
    num_items = _count(state, "num_items", minimum=0)
    _count(state, "batch_size", minimum=1)
    world_size = _count(state, "world_size", minimum=1)
    seed = _optional_seed(state, "seed")
    epoch_seed = _optional_seed(state, "epoch_seed")

    # the mode first: a differing setting explains a differing window count
    if version == 1:
        logger.warning("loading a version-1 loader state: it records no mode, so shuffle, drop_last, sampling, "
                       "respect_documents, max_length and stride are not checked against this loader")
    else:
        _check_mode(state.get("mode"), mode)
    if num_items != sampler.num_items:
        raise ValueError(
            f"The state was taken over {num_items:,} windows (or samples), but this loader has "
            f"{sampler.num_items:,}. Build the loader from the same data and max_length/stride/num_samples."
        )
    if seed != sampler.seed:
        raise ValueError(f"The state was taken with seed={seed}, but this loader has seed={sampler.seed}. "
                         "Build it with the same seed.")

    # the state's epoch length at its own world size (drop_last is this loader's: equal once the mode agrees)
    per_rank = num_items // world_size if sampler.drop_last else -(-num_items // world_size)
    end = per_rank * world_size
    if position > end:
        raise ValueError(
            f"The state's position={position:,} is past the end of an epoch: {num_items:,} windows at "
            f"world_size={world_size} give {end:,} positions. {_FIX}"
        )
    if epoch_seed is not None and not sampler.order.needs_seed:
        raise ValueError(f"The state has an epoch_seed ({epoch_seed}), but this loader's order draws none "
                         "(shuffle=False). Build the loader with shuffle=True, as the state was taken.")
    if epoch_seed is not None and sampler.seed is not None and epoch_seed != epoch_seed_for(sampler.seed, epoch):
        raise ValueError(f"The state's epoch_seed={epoch_seed} is not the one seed={sampler.seed} gives epoch {epoch}; "
                         f"the state was edited or mixed from two runs. {_FIX}")
    return PassState(epoch, position, epoch_seed)


def _check_mode(recorded: Any, mode: Mapping[str, Any]) -> None:
    if not isinstance(recorded, Mapping):
        raise ValueError(f"The loader state's 'mode' should be a dict of the loader's settings, but is "
                         f"{_describe(recorded)}. {_FIX}")
    for key, value in mode.items():
        if key not in recorded:
            raise ValueError(f"The loader state's mode has no {key!r} (it holds "
                             f"{', '.join(map(repr, sorted(map(str, recorded))))}). {_FIX}")
        theirs = recorded[key]
        if isinstance(value, list) and isinstance(theirs, (list, tuple)):
            theirs = list(theirs)
        if theirs != value or isinstance(theirs, bool) != isinstance(value, bool):  # True == 1, but not a mode
            what = "source weights" if key == "weights" else key
            raise ValueError(
                f"The state was taken with {what}={theirs!r}, but this loader has {what}={value!r}: the order of the "
                f"windows depends on it. Build the loader with {key}={theirs!r} to resume that run."
            )


def _count(state: Mapping[str, Any], key: str, *, minimum: int) -> int:
    return as_int(f"the loader state's {key!r}", state[key], minimum=minimum, fix=_FIX)


def _optional_seed(state: Mapping[str, Any], key: str) -> int | None:
    value = state[key]
    if value is None:
        return None
    return as_int(f"the loader state's {key!r}", value, minimum=0, maximum=2**64 - 1, fix=_FIX)


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return f"a dict with keys {', '.join(map(repr, sorted(map(str, value))))}" if value else "an empty dict"
    return f"{type(value).__name__} {value!r}"[:120]
