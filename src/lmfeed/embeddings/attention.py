"""The smallest correct multi-head causal self-attention, with a choice of relative position scheme.

Relative schemes act inside attention, so this is where they are used and tested:

- ``"rope"``: queries and keys rotated by :class:`RotaryEmbedding` (Su et al.);
- ``"alibi"``: :class:`ALiBiBias` added to the logits (Press et al.);
- ``"t5"``: T5's learned :class:`RelativePositionBias`, causal buckets (Raffel et al.);
- ``None``: no positions here (use an absolute scheme in :class:`InputEmbedding`).

``InputEmbedding(..., positional="none")`` followed by ``CausalSelfAttention(..., positional="rope")`` is a
complete, trainable relative-position front end.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from lmfeed._validate import as_choice, as_int, as_probability
from lmfeed.embeddings._checks import as_id_tensor, check_position_shape
from lmfeed.embeddings.alibi import ALiBiBias
from lmfeed.embeddings.rotary import RotaryEmbedding
from lmfeed.embeddings.t5 import RelativePositionBias

__all__ = ["CausalSelfAttention", "RelativeScheme"]

RelativeScheme = Literal["rope", "alibi", "t5"]
SCHEMES: tuple[RelativeScheme | None, ...] = (None, "rope", "alibi", "t5")


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention ``(B, T, D) -> (B, T, D)`` through ``scaled_dot_product_attention``.

    ``q, k, v = split(W_qkv x)`` into H heads of ``head_dim = D / H``; the chosen scheme rotates q and k or
    adds a bias ``(H, T, T)`` to the logits; token i attends to tokens ``j <= i`` (by order in the sequence);
    the heads are joined and projected by ``W_out``.

    Args:
        embed_dim: D, the width of the token vectors; must be divisible by ``num_heads``.
        num_heads: H.
        positional: None (default), ``"rope"``, ``"alibi"`` or ``"t5"``.
        dropout: dropout on the attention weights and on the output while training (nanoGPT's places).
        rope_base: RoPE's base (10000.0), used with ``positional="rope"``.
        device: where to create the weights; ``dtype``: their dtype.

    Attributes:
        qkv: ``nn.Linear(D, 3 * D)``, the query, key and value projections (in that order).
        out: ``nn.Linear(D, D)``, the output projection.
        rope, alibi, t5: the scheme's module (only the chosen one exists).

    Past the longest length: there is no length limit here; each scheme documents its own behaviour.

    Example:
        >>> emb = InputEmbedding(50257, 256, context_length=4, positional="none")
        >>> attn = CausalSelfAttention(256, 8, positional="rope")
        >>> attn(emb(torch.tensor([[40, 367, 2885, 1464]] * 8))).shape   # torch.Size([8, 4, 256])
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        positional: RelativeScheme | None = None,
        dropout: float = 0.0,
        rope_base: float = 10000.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.embed_dim = as_int("embed_dim", embed_dim)
        self.num_heads = as_int("num_heads", num_heads)
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}; each head gets "
                "embed_dim / num_heads dimensions. Pick num_heads among the divisors of embed_dim."
            )
        self.head_dim = self.embed_dim // self.num_heads
        self.positional = as_choice("positional", positional, SCHEMES)
        self.dropout = as_probability("dropout", dropout)
        self.qkv = nn.Linear(self.embed_dim, 3 * self.embed_dim, device=device, dtype=dtype)
        self.out = nn.Linear(self.embed_dim, self.embed_dim, device=device, dtype=dtype)
        self.residual_dropout = nn.Dropout(self.dropout)
        if self.positional == "rope":
            self.rope = RotaryEmbedding(self.head_dim, base=rope_base)
        elif self.positional == "alibi":
            self.alibi = ALiBiBias(self.num_heads)
        elif self.positional == "t5":
            self.t5 = RelativePositionBias(self.num_heads, bidirectional=False, device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        """Redraw the projections (``nn.Linear``'s init) and rebuild or redraw the scheme's tensors."""
        self.qkv.reset_parameters()
        self.out.reset_parameters()
        for name in ("rope", "alibi", "t5"):
            if hasattr(self, name):
                getattr(self, name).reset_parameters()

    def forward(self, x: torch.Tensor, position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Attend causally.

        Args:
            x: ``(B, T, D)`` floating tensor.
            position_ids: integer ``(T,)`` or ``(B, T)``; default ``0 .. T-1``. They set RoPE's angles and the
                distances of ALiBi and T5 (e.g. restarting at 0 after each end-of-text id); the causal mask
                always follows the order of the tokens. Unused when ``positional=None``.

        Returns:
            ``(B, T, D)``, the dtype of ``x``.

        Raises:
            ValueError: ``x`` is not ``(B, T, embed_dim)``; position ids of the wrong shape or negative.
            TypeError: ``x`` is not floating, or position ids are not an integer tensor.
        """
        if not isinstance(x, torch.Tensor) or not x.dtype.is_floating_point:
            got = f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise TypeError(f"x must be a floating tensor (B, T, embed_dim), e.g. the output of InputEmbedding, but "
                            f"got {got}. Embed token ids first: CausalSelfAttention takes vectors, not ids.")
        if x.dim() != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(
                f"x must be (B, T, embed_dim={self.embed_dim}), but has shape {tuple(x.shape)}. "
                "Add a batch dimension with x.unsqueeze(0), or build the layer with the input's width."
            )
        batch, length, _ = x.shape
        if position_ids is not None:
            position_ids = as_id_tensor(
                "position_ids", position_ids, limit=None, limit_name="", fix="Positions count from 0."
            ).to(x.device)
            check_position_shape(position_ids, length, batch, what=f"x of shape {tuple(x.shape)}")

        # (B, T, 3D) -> three (B, H, T, head_dim)
        q, k, v = self.qkv(x).view(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        mask: torch.Tensor | None = None
        if self.positional == "rope":
            q, k = self.rope(q, k, position_ids)
        elif self.positional in ("alibi", "t5"):
            scheme = self.alibi if self.positional == "alibi" else self.t5
            if position_ids is None:
                bias = scheme(length, length)  # (H, T, T)
            else:
                bias = scheme.from_positions(position_ids)  # (H, T, T) or (B, H, T, T)
            future = torch.ones(length, length, dtype=torch.bool, device=x.device).triu(1)
            mask = bias.masked_fill(future, float("-inf")).to(q.dtype)
        y = nn.functional.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=mask is None,
        )  # (B, H, T, head_dim)
        y = y.transpose(1, 2).reshape(batch, length, self.embed_dim)
        return self.residual_dropout(self.out(y))

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, positional={self.positional!r}"
