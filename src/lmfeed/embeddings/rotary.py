"""Rotary position embedding (RoPE): rotate queries and keys by an angle proportional to their position.

Su et al., "RoFormer: Enhanced Transformer with Rotary Position Embedding" (2021), https://arxiv.org/abs/2104.09864.
Each pair of dimensions ``(a, b)`` of a head is rotated by ``pos * theta_i`` with ``theta_i = base^(-2i/d)``:

    a' = a cos(pos theta_i) - b sin(pos theta_i)
    b' = a sin(pos theta_i) + b cos(pos theta_i)

so that the score ``q_m . k_n`` depends on the positions only through ``m - n``. Two layouts of the pairs
exist in the wild and give the same model once the q/k projection weights are permuted:

- ``"half"``: dimension ``i`` pairs with ``i + d/2`` (GPT-NeoX, LLaMA's Hugging Face port);
- ``"interleaved"``: dimension ``2i`` pairs with ``2i + 1`` (the paper, GPT-J, Meta's original LLaMA).

:func:`interleaved_to_half` and :func:`half_to_interleaved` permute the output rows of a q or k projection
weight (``nn.Linear.weight``, ``(num_heads * head_dim, in_features)``) or bias from one layout to the other.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from lmfeed._validate import as_choice, as_int
from lmfeed.embeddings._checks import as_base, as_id_tensor

__all__ = ["RotaryEmbedding", "Convention", "half_to_interleaved", "interleaved_to_half"]

Convention = Literal["half", "interleaved"]
CONVENTIONS: tuple[Convention, ...] = ("half", "interleaved")


class RotaryEmbedding(nn.Module):
    """Rotary position embedding for queries and keys ``(B, H, T, head_dim)``.

    Angles are computed in float32 from integer positions, whatever the dtype of q and k, and the rotation
    is done in float32 (float64 for float64 inputs) and cast back; so bfloat16 inputs (8 bits of mantissa:
    256 and 257 are the same bfloat16 number) still see every position distinctly.

    Past the longest length: angles are computed for the positions asked for on every call (no cache to
    outgrow), so any position works; a model trained on short sequences may still not generalise past them.

    Args:
        head_dim: d, the size of one attention head; must be even (RoPE rotates pairs of dimensions).
        base: ``theta_i = base^(-2i/d)``; 10000.0 as in the paper and LLaMA.
        convention: ``"half"`` (default; pairs i and i + d/2) or ``"interleaved"`` (pairs 2i and 2i + 1).

    Attributes:
        inv_freq: the ``(head_dim // 2,)`` float32 buffer of ``theta_i``; not saved in the state dict
            (``persistent=False``), rebuilt by :meth:`reset_parameters`.

    Example:
        >>> rope = RotaryEmbedding(64)
        >>> q = k = torch.randn(8, 4, 16, 64)                     # (B, H, T, head_dim)
        >>> q_rot, k_rot = rope(q, k)                             # positions 0..15
        >>> q_step, k_step = rope(q[..., -1:, :], k[..., -1:, :], position_ids=torch.tensor([15]))
        >>> torch.allclose(q_step, q_rot[..., -1:, :], atol=1e-6)  # True: a decoding step at an offset
    """

    inv_freq: torch.Tensor

    def __init__(self, head_dim: int, *, base: float = 10000.0, convention: Convention = "half") -> None:
        super().__init__()
        self.head_dim = as_int("head_dim", head_dim, minimum=2)
        if self.head_dim % 2:
            raise ValueError(
                f"head_dim={self.head_dim} is odd, but RoPE rotates pairs of dimensions. "
                f"Use an even head_dim, e.g. {self.head_dim + 1} or {self.head_dim - 1} (embed_dim / num_heads)."
            )
        self.base = as_base(base)
        self.convention = as_choice("convention", convention, CONVENTIONS)
        self.register_buffer("inv_freq", torch.empty(self.head_dim // 2, dtype=torch.float32), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Rebuild ``inv_freq`` (e.g. after creation on the meta device and ``to_empty``)."""
        exponents = torch.arange(0, self.head_dim, 2, dtype=torch.float32, device=self.inv_freq.device)
        self.inv_freq = 1.0 / (self.base ** (exponents / self.head_dim))

    def angles(self, position_ids: torch.Tensor) -> torch.Tensor:
        """Rotation angles ``pos * theta_i`` in float32: ``position_ids.shape + (head_dim // 2,)``."""
        return position_ids.to(torch.float32).unsqueeze(-1) * self.inv_freq.to(position_ids.device)

    def rotate(self, x: torch.Tensor, position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Rotate one tensor (queries or keys) by position.

        Args:
            x: ``(B, H, T, head_dim)`` (or any ``(..., T, head_dim)`` with 1-D positions), floating.
            position_ids: integer ``(T,)`` or ``(B, T)``; default ``0 .. T-1``.

        Returns:
            Same shape and dtype as ``x``.

        Raises:
            TypeError: ``x`` is not a floating tensor; positions are not an integer tensor.
            ValueError: last dimension is not ``head_dim``; positions of the wrong shape or negative.
        """
        if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
            what = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise TypeError(f"RoPE rotates floating-point queries and keys, but got {what}.")
        if x.dim() < 2 or x.shape[-1] != self.head_dim:
            raise ValueError(
                f"RoPE expects (B, H, T, head_dim={self.head_dim}), but got shape {tuple(x.shape)}. "
                "Split heads first: x.view(B, T, H, head_dim).transpose(1, 2)."
            )
        length = x.shape[-2]
        if position_ids is None:
            position_ids = torch.arange(length, device=x.device)
        else:
            position_ids = as_id_tensor(
                "position_ids", position_ids, limit=None, limit_name="", fix="Positions count from 0."
            ).to(x.device)
            _check_rope_positions(position_ids, x)
        angles = self.angles(position_ids)  # (T, d/2) or (B, T, d/2), float32
        if angles.dim() == 3:
            angles = angles.unsqueeze(1)  # (B, 1, T, d/2): the same positions for every head
        cos, sin = angles.cos(), angles.sin()
        xf = x.to(torch.promote_types(x.dtype, torch.float32))  # bf16/fp16 -> float32; float64 stays
        if self.convention == "half":
            a, b = xf[..., : self.head_dim // 2], xf[..., self.head_dim // 2 :]
            out = torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)
        else:
            a, b = xf[..., 0::2], xf[..., 1::2]
            out = torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)
        return out.to(x.dtype)

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, position_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate queries and keys at the same positions.

        Args:
            q: queries ``(B, H, T, head_dim)``.
            k: keys ``(B, H_kv, T, head_dim)`` (``H_kv`` may differ from ``H``, as in grouped-query attention).
            position_ids: integer ``(T,)`` or ``(B, T)``; default ``0 .. T-1``. For a decoding step with a
                cache of ``n`` earlier tokens pass ``torch.arange(n, n + T)``.

        Returns:
            ``(q_rotated, k_rotated)``, same shapes and dtypes as ``q`` and ``k``.
        """
        if isinstance(q, torch.Tensor) and isinstance(k, torch.Tensor) and q.shape[-2] != k.shape[-2]:
            raise ValueError(
                f"q has {q.shape[-2]} positions but k has {k.shape[-2]}; rope(q, k) rotates both at the same "
                "positions. Rotate them separately with rope.rotate(x, position_ids)."
            )
        return self.rotate(q, position_ids), self.rotate(k, position_ids)

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, base={self.base}, convention={self.convention!r}"


def _check_rope_positions(position_ids: torch.Tensor, x: torch.Tensor) -> None:
    length, shape = x.shape[-2], tuple(position_ids.shape)
    ok = shape == (length,) or (position_ids.dim() == 2 and x.dim() == 4 and shape == (x.shape[0], length))
    if not ok:
        raise ValueError(
            f"position_ids has shape {shape}, but x of shape {tuple(x.shape)} needs ({length},)"
            f"{f' or ({x.shape[0]}, {length})' if x.dim() == 4 else ''}: one position per token. "
            f"Pass e.g. torch.arange(offset, offset + {length})."
        )


def interleaved_to_half(weight: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Permute a q or k projection from the ``"interleaved"`` layout to the ``"half"`` layout.

    Row ``2i + j`` of each head (j = 0, 1) moves to row ``j * d/2 + i``: the permutation Hugging Face's
    LLaMA conversion script applies to Meta's checkpoints. Queries computed with the result and rotated
    with ``convention="half"`` give the same attention scores as the original weight with ``"interleaved"``.

    Args:
        weight: ``(num_heads * head_dim, ...)``: an ``nn.Linear`` weight ``(out, in)`` or bias ``(out,)``.
        num_heads: number of heads the output rows are split into.

    Returns:
        A new tensor of the same shape.
    """
    heads, head_dim, rest = _split_heads(weight, num_heads)
    return weight.reshape(heads, head_dim // 2, 2, *rest).transpose(1, 2).reshape(weight.shape)


def half_to_interleaved(weight: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Inverse of :func:`interleaved_to_half`: row ``j * d/2 + i`` of each head moves to ``2i + j``."""
    heads, head_dim, rest = _split_heads(weight, num_heads)
    return weight.reshape(heads, 2, head_dim // 2, *rest).transpose(1, 2).reshape(weight.shape)


def _split_heads(weight: torch.Tensor, num_heads: int) -> tuple[int, int, tuple[int, ...]]:
    heads = as_int("num_heads", num_heads)
    if not isinstance(weight, torch.Tensor) or weight.dim() == 0:
        raise TypeError("weight must be a q or k projection tensor of shape (num_heads * head_dim, ...).")
    rows = weight.shape[0]
    if rows % heads or (rows // heads) % 2:
        raise ValueError(
            f"weight has {rows} output rows, which does not split into num_heads={heads} heads of an even "
            "head_dim. Pass the q or k projection (not the fused qkv one) and its number of heads."
        )
    return heads, rows // heads, tuple(weight.shape[1:])
