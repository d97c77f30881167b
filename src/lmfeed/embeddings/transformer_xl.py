"""Transformer-XL's relative attention: a sinusoid of the distance, projected, and two learned biases per head.

Dai, Yang, Yang, Carbonell, Le and Salakhutdinov, "Transformer-XL: Attentive Language Models Beyond a Fixed-Length
Context" (ACL 2019), https://arxiv.org/abs/1901.02860, section 3.3. The logit of query i and key j is

    A_ij = q_i . k_j  +  q_i . W_R r_{i-j}  +  u . k_j  +  v . W_R r_{i-j}          (terms a, b, c, d)
         = (q_i + u) . k_j  +  (q_i + v) . W_R r_{i-j}

scaled by ``1/sqrt(head_dim)`` as a whole (the reference's ``(AC + BD) * scale``). ``r_d`` is the sinusoid of the
distance ``d = i - j`` (query position minus key position), not learned: ``[sin(d * f), cos(d * f)]`` with
``f_m = 1 / base^(2m / D)``, the sines in the first half, as the reference's ``PositionalEmbedding``;
``W_R`` (``r_net``, ``D -> D``, no bias) and ``u``, ``v`` (``r_w_bias``, ``r_r_bias``, one ``head_dim`` vector per
head) are learned. The first pair is the content score (``q + u`` goes to scaled-dot-product attention as the
query); the second, the position score, is computed without building ``(T, T, D)``: ``W_R r`` for the distances in
use only, ``(R, D)``, then ``(q + v) @ (W_R r).T`` ``(B, H, T, R)`` and one gather per pair (the paper's relative
shift does the same for the single case of a full causal window).

The memory the encoding exists for is a :class:`~lmfeed.embeddings.kv_cache.KVCache` passed to
:class:`CausalSelfAttention`: the previous segment's keys and values, with their positions, so distances are
counted across the boundary and a model reads a text longer than its training window segment by segment.
"""

from __future__ import annotations

import torch
from torch import nn

from lmfeed._validate import as_int
from lmfeed.embeddings._checks import as_base
from lmfeed.embeddings._shift import lowest_distance, runs_of_positions, skew

__all__ = ["TransformerXLPositions"]

# The reference's init_std for r_w_bias and r_r_bias (and GPT-2's for its tables).
INIT_STD = 0.02


class TransformerXLPositions(nn.Module):
    """Transformer-XL's position terms: ``W_R``, ``u``, ``v`` and the sinusoid of the distance.

    Args:
        embed_dim: D, the width of ``r`` and of ``W_R`` (``D -> D``); even (sines and cosines pair up).
        num_heads: H; ``head_dim = D / H``.
        base: the sinusoid's base (10000.0, the paper's).
        device: where to create the weights (``"meta"`` for a shape-only module); ``dtype``: their dtype.

    Attributes:
        r_net: ``nn.Linear(D, D, bias=False)``, the projection ``W_R`` of the distance encoding.
        u: ``(H, head_dim)``, the content bias (the reference's ``r_w_bias``), N(0, 0.02^2).
        v: ``(H, head_dim)``, the position bias (``r_r_bias``), N(0, 0.02^2).

    Past the longest length: the sinusoid is defined for every distance, so any length works; with a cache,
    the keys reach back over the memory as well.

    Example:
        >>> xl = TransformerXLPositions(256, 4)
        >>> xl.encoding(torch.tensor([0, 1])).shape                 # torch.Size([2, 256]): r_0, r_1
        >>> q = torch.randn(8, 4, 16, 64)                           # (B, H, T, head_dim)
        >>> xl(q, torch.arange(16), torch.arange(16)).shape         # torch.Size([8, 4, 16, 16]): terms b + d
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        base: float = 10000.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.embed_dim = as_int("embed_dim", embed_dim)
        self.num_heads = as_int("num_heads", num_heads)
        if self.embed_dim % 2 or self.embed_dim % self.num_heads:
            fits = 2 * self.num_heads * max(1, -(-self.embed_dim // (2 * self.num_heads)))  # rounded up to 2H
            raise ValueError(
                f"Transformer-XL needs an even embed_dim divisible by num_heads, but got embed_dim={self.embed_dim}, "
                f"num_heads={self.num_heads}: the distance encoding pairs a sine and a cosine. Use e.g. "
                f"embed_dim={fits}."
            )
        self.head_dim = self.embed_dim // self.num_heads
        self.base = as_base(base)
        self.r_net = nn.Linear(self.embed_dim, self.embed_dim, bias=False, device=device, dtype=dtype)
        self.u = nn.Parameter(torch.empty(self.num_heads, self.head_dim, device=device, dtype=dtype))
        self.v = nn.Parameter(torch.empty(self.num_heads, self.head_dim, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Redraw ``W_R`` (``nn.Linear``'s init), ``u`` and ``v`` (N(0, 0.02^2))."""
        self.r_net.reset_parameters()
        with torch.no_grad():
            nn.init.normal_(self.u, mean=0.0, std=INIT_STD)
            nn.init.normal_(self.v, mean=0.0, std=INIT_STD)

    def encoding(self, distances: torch.Tensor) -> torch.Tensor:
        """``r_d``, the sinusoid of each distance: float64 ``distances.shape + (D,)``, sines then cosines.

        Computed in float64 from the distances every call (``R x D`` values: cheap), so that neither a long
        distance nor a model cast to bfloat16 loses the angles' precision; :meth:`projected` casts the result.
        """
        steps = torch.arange(0, self.embed_dim, 2, dtype=torch.float64, device=distances.device) / self.embed_dim
        angles = distances.to(torch.float64).unsqueeze(-1) / self.base**steps  # (..., D/2)
        return torch.cat([angles.sin(), angles.cos()], dim=-1)

    def projected(self, distances: torch.Tensor) -> torch.Tensor:
        """``W_R r_d`` split into heads: ``distances.shape + (H, head_dim)``, in ``r_net``'s dtype."""
        values = self.r_net(self.encoding(distances).to(self.r_net.weight.dtype))
        return values.view(*distances.shape, self.num_heads, self.head_dim)

    def content_query(self, q: torch.Tensor) -> torch.Tensor:
        """``q + u``, the query of terms a and c: ``(B, H, T, head_dim)`` -> the same."""
        return q + self.u.to(q.dtype).unsqueeze(-2)

    def forward(
        self,
        q: torch.Tensor,
        query_positions: torch.Tensor,
        key_positions: torch.Tensor,
        *,
        allowed: torch.Tensor | None = None,
        scale: float = 1.0,
    ) -> torch.Tensor:
        """Terms b + d, ``scale * (q_i + v) . W_R r_{i-j}`` (attention passes the ``1/sqrt(head_dim)`` of a + c).

        Args:
            q: ``(B, H, T_q, head_dim)`` queries.
            query_positions: integer ``(T_q,)`` or ``(B, T_q)``.
            key_positions: integer ``(T_k,)`` or ``(B, T_k)``.
            allowed: optional bool ``(T_q, T_k)`` or ``(B, T_q, T_k)``, the pairs attention keeps; the others get
                an arbitrary finite value (they are masked anyway), so only the distances in use are encoded.
            scale: multiplies ``q + v`` (cheaper than scaling the ``(B, H, T_q, T_k)`` result); default 1.

        Returns:
            ``(B, H, T_q, T_k)`` in q's dtype.
        """
        query = (q + self.v.to(q.dtype).unsqueeze(-2)) * scale  # (B, H, T_q, head_dim)
        batch, heads, length_q, _ = q.shape
        length_k = key_positions.shape[-1]
        if runs_of_positions(query_positions, key_positions):
            # the relative shift: distances T_k-1 down to the lowest in use, read back by key
            low = lowest_distance(length_q, length_k, allowed)
            distances = torch.arange(length_k - 1, low - 1, -1, device=q.device)  # (R,), decreasing
            rows = self.projected(distances).to(q.dtype)  # (R, H, head_dim)
            return skew(query @ rows.permute(1, 2, 0), length_q - 1, length_k)  # (B, H, T_q, T_k)
        distance = query_positions.to(torch.int64).unsqueeze(-1) - key_positions.to(torch.int64).unsqueeze(-2)
        if allowed is not None:
            distance = distance.masked_fill(~allowed, 0)  # distance 0 is always in use (the diagonal)
        low, high = int(distance.min()), int(distance.max())
        rows = self.projected(torch.arange(low, high + 1, device=q.device)).to(q.dtype)  # (R, H, head_dim)
        by_distance = query @ rows.permute(1, 2, 0)  # (B, H, T_q, R)
        index = (distance - low).unsqueeze(-3).expand(batch, heads, length_q, length_k)
        return by_distance.gather(-1, index)

    def terms(
        self, q: torch.Tensor, k: torch.Tensor, query_positions: torch.Tensor, key_positions: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The paper's four terms one by one, unscaled, each ``(B, H, T_q, T_k)`` (for pictures and teaching).

        ``a = q_i . k_j`` (content), ``b = q_i . W_R r_{i-j}`` (position through the query), ``c = u . k_j``
        (a global preference for some keys), ``d = v . W_R r_{i-j}`` (a global preference for some distances).
        """
        distance = query_positions.to(torch.int64).unsqueeze(-1) - key_positions.to(torch.int64).unsqueeze(-2)
        low = int(distance.min())
        rows = self.projected(torch.arange(low, int(distance.max()) + 1, device=q.device)).to(q.dtype)
        batch, heads, length_q, _ = q.shape
        index = (distance - low).unsqueeze(-3).expand(batch, heads, length_q, distance.shape[-1])
        by_distance = (q @ rows.permute(1, 2, 0)).gather(-1, index)  # (B, H, T_q, T_k)
        v_by_distance = torch.einsum("hd,rhd->hr", self.v.to(q.dtype), rows)  # (H, R)
        return {
            "a": q @ k.transpose(-1, -2),
            "b": by_distance,
            "c": (k @ self.u.to(q.dtype).unsqueeze(-1)).transpose(-1, -2).expand_as(by_distance),
            "d": v_by_distance.unsqueeze(-2).expand(batch, heads, length_q, -1).gather(-1, index),
        }

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, base={self.base:g}"
