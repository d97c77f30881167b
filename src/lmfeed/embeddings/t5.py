"""T5's relative position bias: a learned scalar per head for each bucket of log-spaced distances.

Raffel et al., "Exploring the Limits of Transfer Learning with a Unified Text-to-Text Transformer" (JMLR 2020),
https://arxiv.org/abs/1910.10683, section 2.1. The relative position of key j to query i is ``j - i``. It is
mapped to one of ``num_buckets`` buckets exactly as T5's reference ``_relative_position_bucket`` (Mesh
TensorFlow; Hugging Face's port) does:

- bidirectional: half the buckets for keys after the query (``j - i > 0``), half for the rest; then on
  ``n = |j - i|``:
- causal: ``n = max(i - j, 0)`` (keys after the query share bucket 0 with distance 0);
- ``n < max_exact`` (half the buckets at hand) gets its own bucket ``n``;
- larger ``n`` goes to ``max_exact + int(log(n / max_exact) / log(max_distance / max_exact) * (buckets - max_exact))``
  (computed in float32, as the reference), capped at the last bucket: every distance ``>= max_distance`` shares it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lmfeed._validate import as_bool, as_int
from lmfeed.embeddings._checks import as_id_tensor, check_relative_positions
from lmfeed.embeddings.alibi import relative_positions

__all__ = ["RelativePositionBias", "relative_position_bucket"]

# Initial spread of the learned biases (GPT-2's std for its tables); T5 itself uses d_model^-0.5.
INIT_STD = 0.02


def relative_position_bucket(
    relative_position: torch.Tensor, *, bidirectional: bool = True, num_buckets: int = 32, max_distance: int = 128
) -> torch.Tensor:
    """T5's bucket of each relative position (key - query); same shape, int64, values in ``[0, num_buckets)``."""
    n = relative_position.to(torch.int64)
    buckets = torch.zeros_like(n)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (n > 0).to(torch.int64) * num_buckets  # keys after the query: upper half
        n = n.abs()
    else:
        n = (-n).clamp(min=0)  # keys after the query count as distance 0
    max_exact = num_buckets // 2
    # log-spaced buckets for n >= max_exact; clamping first only avoids log(0) on entries where() discards
    scaled = torch.log(n.clamp(min=max_exact).to(torch.float32) / max_exact) / math.log(max_distance / max_exact)
    large = (max_exact + (scaled * (num_buckets - max_exact)).to(torch.int64)).clamp(max=num_buckets - 1)
    return buckets + torch.where(n < max_exact, n, large)


class RelativePositionBias(nn.Module):
    """T5's learned relative position bias: ``bias[h, i, j] = weight[bucket(j - i), h]``, float32.

    ``bias(q_len, k_len)`` returns ``(H, q_len, k_len)`` for queries that are the last ``q_len`` of ``k_len``
    positions (a decoding step is ``bias(1, k_len)``), ready for ``scaled_dot_product_attention``'s
    ``attn_mask``. T5's encoder uses ``bidirectional=True``, its decoder ``bidirectional=False``.

    Past the longest length: every distance ``>= max_distance`` falls in the last bucket of its direction,
    so any length works and far tokens all get the same learned bias.

    Args:
        num_heads: H.
        num_buckets: number of buckets (32 in T5), split in two halves when bidirectional.
        max_distance: distance from which all keys share the last bucket (128 in T5).
        bidirectional: True (default) distinguishes keys before and after the query; False is causal.
        device: where to create the table (``"meta"`` for a shape-only module).
        dtype: the table's dtype; the bias returned is float32 regardless.

    Attributes:
        weight: ``(num_buckets, H)`` trainable table (Hugging Face's ``relative_attention_bias.weight``),
            initialised N(0, 0.02^2).

    Example:
        >>> t5 = RelativePositionBias(12)
        >>> t5.bucket(torch.tensor([-200, -9, -1, 0, 1, 9, 200]))   # tensor([15, 8, 1, 0, 17, 24, 31])
        >>> t5(4, 4).shape                                          # torch.Size([12, 4, 4])
    """

    def __init__(
        self,
        num_heads: int,
        *,
        num_buckets: int = 32,
        max_distance: int = 128,
        bidirectional: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.num_heads = as_int("num_heads", num_heads)
        self.bidirectional = as_bool("bidirectional", bidirectional)
        smallest = 4 if self.bidirectional else 2  # at least one exact and one log-spaced bucket per direction
        self.num_buckets = as_int("num_buckets", num_buckets, minimum=smallest)
        max_exact = (self.num_buckets // 2 if self.bidirectional else self.num_buckets) // 2
        self.max_distance = as_int(
            "max_distance",
            max_distance,
            minimum=max_exact + 1,
            fix=f"The exact buckets already cover distances below {max_exact}; use e.g. max_distance=128.",
        )
        self.weight = nn.Parameter(torch.empty(self.num_buckets, self.num_heads, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """(Re)draw the learned biases, N(0, 0.02^2), from torch's global RNG."""
        with torch.no_grad():
            nn.init.normal_(self.weight, mean=0.0, std=INIT_STD)

    def bucket(self, relative_position: torch.Tensor) -> torch.Tensor:
        """T5's bucket function with this module's settings: int64 buckets, same shape as the input.

        Args:
            relative_position: integer tensor of key position - query position (any shape).
        """
        check_relative_positions(relative_position)
        return relative_position_bucket(
            relative_position,
            bidirectional=self.bidirectional,
            num_buckets=self.num_buckets,
            max_distance=self.max_distance,
        )

    def relative_bias(self, relative_position: torch.Tensor) -> torch.Tensor:
        """Bias for arbitrary relative positions ``(..., q_len, k_len)``: float32 ``(..., H, q_len, k_len)``."""
        values = nn.functional.embedding(self.bucket(relative_position), self.weight)  # (..., q, k, H)
        return values.movedim(-1, -3).to(torch.float32)

    def forward(self, q_len: int, k_len: int) -> torch.Tensor:
        """Bias ``(H, q_len, k_len)``, float32, for queries that are the last ``q_len`` of ``k_len`` positions."""
        return self.relative_bias(relative_positions(q_len, k_len, device=self.weight.device))

    def from_positions(self, position_ids: torch.Tensor) -> torch.Tensor:
        """Bias from position ids ``(T,)`` or ``(B, T)``: ``(H, T, T)`` or ``(B, H, T, T)``."""
        positions = as_id_tensor("position_ids", position_ids, limit=None, limit_name="", fix="Positions count from 0.")
        return self.relative_bias(positions.unsqueeze(-2) - positions.unsqueeze(-1))

    def extra_repr(self) -> str:
        return (
            f"num_heads={self.num_heads}, num_buckets={self.num_buckets}, max_distance={self.max_distance}, "
            f"bidirectional={self.bidirectional}"
        )
