"""ALiBi: attention with linear biases, a fixed per-head penalty on attention logits proportional to distance.

Press, Smith and Lewis, "Train Short, Test Long: Attention with Linear Biases Enables Input Length
Extrapolation" (ICLR 2022), https://arxiv.org/abs/2108.12409. Head h adds ``-slope_h * |i - j|`` to the logit
of query i and key j. No parameters: the slopes form a geometric sequence. For H a power of two they are
``2^(-8/H), 2^(-16/H), ..., 2^(-8)``; otherwise, as in the paper's reference ``get_slopes``, the slopes of the
closest smaller power of two P come first, then every other slope of 2P until there are H
(12 heads: ``2^-1 ... 2^-8``, then ``2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lmfeed._validate import as_int
from lmfeed.embeddings._checks import as_id_tensor, check_relative_positions

__all__ = ["ALiBiBias", "alibi_slopes", "relative_positions"]


def alibi_slopes(num_heads: int) -> list[float]:
    """The ``num_heads`` slopes of the ALiBi paper's reference implementation, as Python floats."""
    heads = as_int("num_heads", num_heads)
    power = 2 ** math.floor(math.log2(heads))  # closest power of two <= heads

    def geometric(n: int) -> list[float]:
        # for n a power of two: start = ratio = 2^(-8/n)
        return [2.0 ** (-8.0 * (i + 1) / n) for i in range(n)]

    return geometric(power) + geometric(2 * power)[0::2][: heads - power]


def relative_positions(q_len: int, k_len: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(q_len, k_len)`` int64 tensor of key position - query position, queries being the last ``q_len`` keys.

    Raises:
        ValueError: ``q_len > k_len`` or either is not a positive integer.
    """
    q_len = as_int("q_len", q_len)
    k_len = as_int("k_len", k_len)
    if q_len > k_len:
        raise ValueError(
            f"q_len={q_len:,} is larger than k_len={k_len:,}, but the queries are the last q_len of the k_len "
            "positions. Pass k_len >= q_len (with a cache: k_len = cached tokens + q_len)."
        )
    query = torch.arange(k_len - q_len, k_len, device=device)  # (q_len,)
    key = torch.arange(k_len, device=device)  # (k_len,)
    return key.unsqueeze(0) - query.unsqueeze(1)  # (q_len, k_len)


class ALiBiBias(nn.Module):
    """ALiBi's additive attention bias ``-slope_h * |i - j|`` for H heads, float32.

    ``bias(q_len, k_len)`` returns ``(H, q_len, k_len)``, ready for ``scaled_dot_product_attention``'s
    ``attn_mask`` (add a causal mask for a decoder; :class:`CausalSelfAttention` does). The queries are the
    last ``q_len`` of the ``k_len`` positions, so a decoding step with a cache is ``bias(1, k_len)``.

    Past the longest length: the bias is computed for any length (this is what ALiBi is for: train short,
    test long); the penalty keeps growing linearly with distance.

    Args:
        num_heads: H; any positive count (non-powers of two use the paper's interleaved extra slopes).

    Attributes:
        slopes: ``(H,)`` float32 buffer of slopes (``persistent=False``, rebuilt by :meth:`reset_parameters`).

    Example:
        >>> alibi = ALiBiBias(8)
        >>> alibi.slopes                      # tensor([0.5000, 0.2500, ..., 0.0039]): 2^-1 ... 2^-8
        >>> alibi(4, 4)[0]                    # head 0: -0.5 * |i - j|, shape (4, 4)
        >>> alibi(1, 5).shape                 # torch.Size([8, 1, 5]): one decoding step after 4 tokens
    """

    slopes: torch.Tensor

    def __init__(self, num_heads: int) -> None:
        super().__init__()
        self.num_heads = as_int("num_heads", num_heads)
        self.register_buffer("slopes", torch.empty(self.num_heads, dtype=torch.float32), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Rebuild ``slopes`` (e.g. after creation on the meta device and ``to_empty``)."""
        slopes = torch.tensor(alibi_slopes(self.num_heads), dtype=torch.float64)
        self.slopes = slopes.to(device=self.slopes.device, dtype=torch.float32)

    def relative_bias(self, relative_position: torch.Tensor) -> torch.Tensor:
        """Bias for arbitrary relative positions (key - query), e.g. built from per-token position ids.

        Args:
            relative_position: integer tensor ``(..., q_len, k_len)``.

        Returns:
            float32 ``(..., H, q_len, k_len)``: ``-slope_h * |relative_position|``.
        """
        check_relative_positions(relative_position)
        distance = relative_position.abs().to(torch.float32).unsqueeze(-3)  # (..., 1, q_len, k_len)
        return -self.slopes.view(-1, 1, 1).to(distance.device) * distance

    def forward(self, q_len: int, k_len: int) -> torch.Tensor:
        """Bias ``(H, q_len, k_len)``, float32, for queries that are the last ``q_len`` of ``k_len`` positions."""
        return self.relative_bias(relative_positions(q_len, k_len, device=self.slopes.device))

    def from_positions(self, position_ids: torch.Tensor) -> torch.Tensor:
        """Bias from position ids ``(T,)`` or ``(B, T)`` (queries and keys alike): ``(H, T, T)`` or ``(B, H, T, T)``.

        With positions that restart at 0 after each end-of-text id, distances inside a document are the
        true ones; masking attention across documents is the caller's job.
        """
        positions = as_id_tensor("position_ids", position_ids, limit=None, limit_name="", fix="Positions count from 0.")
        return self.relative_bias(positions.unsqueeze(-2) - positions.unsqueeze(-1))

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}"
