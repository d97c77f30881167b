"""Checks on the integer tensors the embeddings take (token ids, position ids), shared by every module here.

Ids arrive from many places: the loader's int64 batches, a uint16 memory map wrapped by ``torch.from_numpy``,
a hand-written ``torch.tensor([3])``. Any integer dtype is accepted and cast to int64 (the index type every
torch lookup wants); a bool or floating tensor is refused, because a float there almost always means the
ids and the embeddings were swapped, and a bool tensor would index as a mask. Values are checked against
their range so that a bad id is a ValueError naming the id, the limit and the fix, never an IndexError from
inside torch. On CUDA the range is checked on the device (``torch._assert_async``), because reading a value back
is a device sync on every forward: a bad id there fails at the next synchronising call with this module's message
in the device-side assert (CUDA cannot raise a Python error without a sync). Tensors on the ``meta`` device have
no values; only their dtype and shape are checked.
"""

from __future__ import annotations

import math
import os

import torch


def as_id_tensor(name: str, ids: object, *, limit: int | None, limit_name: str, fix: str) -> torch.Tensor:
    """Return ``ids`` as an int64 tensor whose values are in ``[0, limit)`` (``limit=None``: no upper bound).

    Args:
        name: the argument's name in messages (``"token_ids"``, ``"position_ids"``).
        ids: the tensor to check.
        limit: exclusive upper bound, e.g. ``vocab_size`` or ``context_length``.
        limit_name: how the limit is called in messages, e.g. ``"vocab_size"``.
        fix: the sentence telling the user what to do when a value is out of range.

    Raises:
        TypeError: ``ids`` is not a tensor, or is a bool or floating tensor.
        ValueError: a value is negative or ``>= limit``.
    """
    if not isinstance(ids, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of integer ids, but got {type(ids).__name__}. "
            f"Wrap it first: torch.as_tensor({name})."
        )
    if ids.dtype == torch.bool or ids.dtype.is_floating_point or ids.dtype.is_complex:
        raise TypeError(
            f"{name} must hold integer ids (any integer dtype, used as int64), but has dtype {ids.dtype}. "
            f"Pass the ids themselves, e.g. {name}.long() if they are whole numbers stored as floats; "
            "embeddings (floats) are what this layer returns, not what it takes."
        )
    ids = ids.to(torch.int64)
    if ids.device.type == "meta" or ids.numel() == 0:
        return ids
    if ids.device.type == "cuda":
        # reading min()/max() back would stall the CPU until the GPU catches up, every forward; the check runs on
        # the device instead and a bad id fails the next synchronising call (a device-side assert with this text)
        ok = (ids >= 0) if limit is None else (ids >= 0) & (ids < limit)
        bound = f"[0, {limit_name}={limit:,})" if limit is not None else ">= 0"
        assert_on_device(ok, f"{name} must be in {bound}, but holds an id outside it. {fix}")
        return ids
    low, high = int(ids.min()), int(ids.max())
    if low < 0:
        raise ValueError(f"{name} must not be negative, but contains {low} at index {_where(ids, ids < 0)}. {fix}")
    if limit is not None and high >= limit:
        raise ValueError(
            f"{name} must be < {limit_name}={limit:,}, but contains {high:,} at index "
            f"{_where(ids, ids >= limit)}. {fix}"
        )
    return ids


def assert_on_device(ok: torch.Tensor, message: str) -> None:
    """Check that ``ok`` (bool, on CUDA) is all True without reading it back: a device-side assert with ``message``.

    Reading a value back (``int()``, ``bool()``, ``.item()``) would stall the CPU until the GPU catches up, every
    forward; this fails the next synchronising call instead. CPU callers raise their full ValueError.
    """
    torch._assert_async(ok.all(), message)


def check_relative_positions(relative_position: object) -> None:
    """``relative_position`` (key position - query position) must be an integer tensor; the error names what came."""
    if not isinstance(relative_position, torch.Tensor):
        raise TypeError(f"relative_position must be an integer tensor of key position - query position, but got "
                        f"{type(relative_position).__name__}. Wrap it first: torch.as_tensor(relative_position).")
    if relative_position.dtype.is_floating_point or relative_position.dtype.is_complex:
        raise TypeError(f"relative_position must be an integer tensor of key position - query position, but has dtype "
                        f"{relative_position.dtype}. Build it from integer positions, e.g. "
                        "torch.arange(k)[None, :] - torch.arange(q)[:, None].")


def _where(ids: torch.Tensor, bad: torch.Tensor) -> tuple[int, ...]:
    """Index of the first offending element, as a tuple of ints (one per dimension)."""
    return tuple(int(i) for i in bad.nonzero()[0])


def check_position_shape(position_ids: torch.Tensor, length: int, batch: int | None, *, what: str) -> None:
    """Position ids must be ``(T,)`` or ``(B, T)`` matching the ``T`` (and ``B``) of what they position.

    Args:
        position_ids: int64 tensor already checked by :func:`as_id_tensor`.
        length: T, the number of tokens being positioned.
        batch: B, or None when the input has no batch dimension (then only ``(T,)`` fits).
        what: description of the input in messages, e.g. ``"token_ids of shape (8, 4)"``.

    Raises:
        ValueError: the shape does not fit.
    """
    shape = tuple(position_ids.shape)
    fits = shape == (length,) or (batch is not None and shape == (batch, length))
    if not fits:
        expected = f"({length},)" if batch is None else f"({length},) or ({batch}, {length})"
        raise ValueError(
            f"position_ids has shape {shape}, but {what} needs {expected}: one position per token. "
            f"Pass e.g. torch.arange({length}) or leave position_ids=None for 0..{length - 1}."
        )


def as_base(base: object) -> float:
    """``base`` for sinusoidal and rotary encodings: a finite number > 1."""
    if isinstance(base, bool) or not isinstance(base, (int, float)):
        raise TypeError(f"base must be a number > 1, but got {base!r} ({type(base).__name__}). Use e.g. base=10000.0.")
    if not (math.isfinite(base) and base > 1):
        raise ValueError(f"base must be a finite number > 1, but got {base}. Use the paper's base=10000.0.")
    return float(base)


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not every platform names them
        return None


def empty_table(what: str, rows: int, cols: int, *, device: torch.device | str | None,
                dtype: torch.dtype | None, fix: str) -> torch.Tensor:
    """``torch.empty(rows, cols)`` for a weight table, refused with a clear error when it cannot fit.

    On the CPU a table larger than the machine's physical memory is refused before allocating: with memory
    overcommit the allocation itself may succeed and the process be killed later, when the table is filled.

    Raises:
        ValueError: the table needs more memory than the device has (the message gives both and ``fix``).
    """
    kind = torch.device(device).type if device is not None else "cpu"
    itemsize = torch.empty((), dtype=dtype or torch.get_default_dtype(), device="meta").element_size()
    needed = rows * cols * itemsize
    total = _physical_memory() if kind == "cpu" else None
    message = f"{what} is {rows:,} x {cols:,} values, {_size(needed)}"
    if total is not None and needed > total:
        raise ValueError(f"{message}, but this machine has {_size(total)} of memory. {fix}")
    try:
        return torch.empty(rows, cols, device=device, dtype=dtype)
    except (RuntimeError, MemoryError) as exc:  # the device said no (e.g. a GPU without room)
        if "alloc" not in str(exc).lower() and not isinstance(exc, MemoryError):
            raise
        raise ValueError(f"{message}, more than {kind} can allocate now. {fix}") from None


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n} PB"  # unreachable


def check_position_steps(position_ids: torch.Tensor, *, needed_by: str, offset: int = 0) -> None:
    """Along each row, a position is the previous one + 1, or 0 where a new document begins (the first: any value).

    Schemes that read a distance table (Transformer-XL, BERT's relative keys) see a jump as tokens that are not
    there; it is almost always a bug (a dropped token, positions of another batch), so it is refused.

    Args:
        position_ids: int64 ``(T,)`` or ``(B, T)``; with a cache, the last cached position then the new ones.
        needed_by: who needs it, for the message, e.g. ``"positional='xl'"``.
        offset: how many leading columns are not the caller's (1 when the last cached position is prepended), so
            the index in the message is the caller's.

    Raises:
        ValueError: a step that is neither +1 nor a restart at 0, with where it is and the fix.
    """
    if position_ids.device.type == "meta" or position_ids.shape[-1] < 2:
        return
    previous, current = position_ids[..., :-1], position_ids[..., 1:]
    bad = (current != previous + 1) & (current != 0)
    if position_ids.device.type == "cuda":
        assert_on_device(~bad, f"position_ids jump (a step that is neither +1 nor a restart at 0), but {needed_by} "
                               "needs positions that count up by one. Leave position_ids=None.")
        return
    if bool(bad.any()):
        where = _where(position_ids[..., 1:], bad)
        before = int(previous[where])
        after = int(current[where])
        index = where[:-1] + (where[-1] + 1 - offset,)
        raise ValueError(
            f"position_ids jump from {before} to {after} at index {index}, but {needed_by} needs positions "
            "that count up by one, or restart at 0 where a new document begins (with a kv_cache: continue the "
            "cached positions). Leave position_ids=None (0 .. T-1, or the cache's next positions), or take them "
            "from a loader with return_positions=True."
        )
