"""Absolute positional embeddings: one vector per position, added to the token embeddings (GPT, Vaswani et al.).

Both take position ids and return vectors, so they swap freely:
``pe(position_ids)`` with ``position_ids`` of shape ``(T,)`` or ``(B, T)`` returns ``(T, D)`` or ``(B, T, D)``.

- :class:`LearnedPositionalEmbedding`: a trainable table ``(context_length, D)``, the seed's
  ``pos_embedding_layer = torch.nn.Embedding(context_length, output_dim)`` (GPT-2's ``wpe``).
- :class:`SinusoidalPositionalEmbedding`: the fixed encoding of Vaswani et al. (2017), no parameters.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lmfeed._validate import as_choice, as_int
from lmfeed.embeddings._checks import as_base, as_id_tensor, empty_table
from lmfeed.embeddings.token import INITS, Init, _from_pretrained, init_table, lookup

__all__ = ["LearnedPositionalEmbedding", "SinusoidalPositionalEmbedding", "sinusoidal_table"]


class LearnedPositionalEmbedding(nn.Embedding):
    """A trainable vector per position ``0 .. context_length - 1``, as in GPT-2 (``wpe``) and the seed.

    The seed's pipeline: ``LearnedPositionalEmbedding(4, 256)(torch.arange(4))`` is ``(4, 256)``, which
    broadcasts onto token embeddings ``(8, 4, 256)``. It is an ``nn.Embedding`` (a subclass), so code that
    initialises or wraps embeddings by ``isinstance(m, nn.Embedding)`` (nanoGPT's ``_init_weights``) reaches it.

    Past the longest length: there is no vector for a position ``>= context_length``; asking for one is a
    ValueError (a learned table cannot extrapolate). Build with a larger ``context_length`` instead.

    Args:
        context_length: number of positions, the longest sequence the model takes (the seed's ``max_length``).
        embed_dim: D, equal to the token embedding's.
        init: ``"torch"`` (default, N(0, 1) like ``nn.Embedding``) or ``"gpt2"`` (N(0, 0.02^2)).
        device: where to create the table (``"meta"`` for a shape-only module).
        dtype: the table's dtype.

    Attributes:
        weight: the ``(context_length, embed_dim)`` table, trainable; state-dict key ``weight`` like ``nn.Embedding``.

    Example:
        >>> torch.manual_seed(123)
        >>> pe = LearnedPositionalEmbedding(4, 256)
        >>> pe(torch.arange(4)).shape                      # torch.Size([4, 256])
        >>> pe(torch.tensor([[0, 1, 0, 1]])).shape         # torch.Size([1, 4, 256]): restarts per document
    """

    def __init__(
        self,
        context_length: int,
        embed_dim: int,
        *,
        init: Init = "torch",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        context_length = as_int("context_length", context_length)
        embed_dim = as_int("embed_dim", embed_dim)
        init = as_choice("init", init, INITS)
        table = empty_table("The positional embedding table", context_length, embed_dim, device=device,
                            dtype=dtype, fix="Lower context_length or embed_dim.")
        super().__init__(context_length, embed_dim, _weight=table)  # takes the table as it is: no draw here
        self.context_length, self.embed_dim, self.init = context_length, embed_dim, init
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """(Re)draw the table from torch's global RNG with the chosen ``init``."""
        init_table(self.weight, self.init)
        self._fill_padding_idx_with_zero()

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        """Vectors for the given positions.

        Args:
            position_ids: integer tensor ``(T,)`` or ``(B, T)`` (any shape works), values in
                ``[0, context_length)``.

        Returns:
            ``position_ids.shape + (embed_dim,)``: ``(T, D)`` or ``(B, T, D)``.

        Raises:
            TypeError: not an integer tensor.
            ValueError: a position is negative or ``>= context_length`` (checked on the device on CUDA).
        """
        ids = as_id_tensor(
            "position_ids",
            position_ids,
            limit=self.context_length,
            limit_name="context_length",
            fix=(
                "A learned table has no vector past its last position: build it with a larger context_length, "
                "or feed shorter sequences."
            ),
        )
        return lookup(self, ids)

    def extra_repr(self) -> str:
        return f"{self.context_length}, {self.embed_dim}, init={self.init!r}"

    @classmethod
    def from_pretrained(cls, embeddings: torch.Tensor, freeze: bool = True, padding_idx: int | None = None,
                        max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> LearnedPositionalEmbedding:
        """A module holding ``embeddings`` ``(context_length, embed_dim)``, as ``nn.Embedding.from_pretrained``."""
        return _from_pretrained(cls, embeddings, freeze=freeze, padding_idx=padding_idx, max_norm=max_norm,
                                norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


def sinusoidal_table(position_ids: torch.Tensor, embed_dim: int, base: float = 10000.0) -> torch.Tensor:
    """The fixed encoding of "Attention Is All You Need", float32: ``position_ids.shape + (embed_dim,)``.

    ``PE[pos, 2i] = sin(pos / base^(2i/D))`` and ``PE[pos, 2i+1] = cos(pos / base^(2i/D))``. For an odd D
    the last column is the sine of the last pair.
    """
    # (D/2,) inverse frequencies base^(-2i/D), float32 whatever the default dtype
    exponents = torch.arange(0, embed_dim, 2, dtype=torch.float32, device=position_ids.device) / embed_dim
    inv_freq = 1.0 / (base**exponents)
    angles = position_ids.to(torch.float32).unsqueeze(-1) * inv_freq  # (..., T, ceil(D/2))
    # stack then flatten interleaves: sin_0, cos_0, sin_1, cos_1, ...
    table = torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)
    return table[..., :embed_dim]


class SinusoidalPositionalEmbedding(nn.Module):
    """The fixed sinusoidal encoding of Vaswani et al., "Attention Is All You Need" (2017), section 3.5.

    ``PE[pos, 2i] = sin(pos / base^(2i/D))``, ``PE[pos, 2i+1] = cos(pos / base^(2i/D))``,
    https://arxiv.org/abs/1706.03762. No parameters and no buffers: the table is computed for the positions
    asked for, in float32 (so positions past 256 stay distinct even when the output is bfloat16), and cast
    to ``dtype`` at the end.

    Past the longest length: any non-negative position works; there is no table to run out of. Whether a
    model trained on short sequences generalises to longer ones is another matter (the paper hoped so).

    Args:
        embed_dim: D, equal to the token embedding's (an odd D is allowed: the last column is a sine).
        base: the wavelength scale, 10000.0 in the paper; wavelengths run from 2*pi to base*2*pi.
        scale: the table's amplitude (1.0, the paper's). Added to token embeddings drawn N(0, 0.02^2), a unit table
            is 35x larger and drowns them; ``InputEmbedding(init="gpt2")`` passes ``0.02 * sqrt(2)``, so that its
            root mean square is a learned table's 0.02.

    Example:
        >>> pe = SinusoidalPositionalEmbedding(256)
        >>> pe(torch.arange(4)).shape             # torch.Size([4, 256]), adds onto (8, 4, 256)
        >>> pe(torch.tensor([0]))[0, :4]          # tensor([0., 1., 0., 1.]): sin(0), cos(0), ...
    """

    def __init__(self, embed_dim: int, *, base: float = 10000.0, scale: float = 1.0) -> None:
        super().__init__()
        self.embed_dim = as_int("embed_dim", embed_dim)
        self.base = as_base(base)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be a positive number such as 1.0, but got {scale!r}.")
        self.scale = float(scale)

    def reset_parameters(self) -> None:
        """Nothing to reset (no parameters, no buffers); present so every positional module offers it."""

    def forward(self, position_ids: torch.Tensor, *, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Encodings for the given positions.

        Args:
            position_ids: non-negative integer tensor ``(T,)`` or ``(B, T)``.
            dtype: output dtype (default: torch's default dtype). Computation is float32 regardless.

        Returns:
            ``(T, D)`` or ``(B, T, D)``.

        Raises:
            TypeError: not an integer tensor.
            ValueError: a negative position.
        """
        ids = as_id_tensor(
            "position_ids", position_ids, limit=None, limit_name="", fix="Positions count from 0."
        )
        table = sinusoidal_table(ids, self.embed_dim, self.base)
        if self.scale != 1.0:
            table = table * self.scale
        return table.to(dtype or torch.get_default_dtype())

    def extra_repr(self) -> str:
        return f"{self.embed_dim}, base={self.base}" + (f", scale={self.scale:g}" if self.scale != 1.0 else "")

