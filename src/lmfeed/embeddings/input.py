"""The input embedding of a GPT-style model: token embedding + absolute positional embedding, then dropout.

This is the seed's last step in one module:

    token_embeddings = token_embedding_layer(inputs)                 # (8, 4) -> (8, 4, 256)
    pos_embeddings = pos_embedding_layer(torch.arange(max_length))   # (4, 256)
    input_embeddings = token_embeddings + pos_embeddings             # (8, 4, 256)

The token table is built before the positional table, as in the seed, so under the same ``torch.manual_seed``
both tables (and so the output) equal the seed's two ``nn.Embedding`` layers exactly.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from lmfeed._validate import as_choice, as_int, as_probability
from lmfeed.embeddings._checks import as_id_tensor, check_position_shape
from lmfeed.embeddings.absolute import LearnedPositionalEmbedding, SinusoidalPositionalEmbedding
from lmfeed.embeddings.token import GPT2_STD, Init, TokenEmbedding

__all__ = ["InputEmbedding", "Positional"]

Positional = Literal["learned", "sinusoidal", "none"]
POSITIONALS: tuple[Positional, ...] = ("learned", "sinusoidal", "none")


class InputEmbedding(nn.Module):
    """Token ids ``(B, T)`` -> ``dropout(token_embedding + positional_embedding)``, ``(B, T, D)``.

    Args:
        vocab_size: number of token ids (50,257 for GPT-2's BPE).
        embed_dim: D (256 in the seed, 768 in GPT-2 small).
        context_length: the longest sequence T accepted (the seed's ``max_length``, 4 in its example,
            1024 in GPT-2); also the size of the learned positional table.
        positional: ``"learned"`` (default): a trainable table, GPT-2 / the seed; ``"sinusoidal"``: the fixed
            encoding of Vaswani et al.; ``"none"``: token embeddings only, for models whose attention
            carries the positions (``CausalSelfAttention(positional="rope" | "alibi" | "t5")``).
        dropout: probability of zeroing an element of the sum while training (GPT-2's embedding dropout);
            default 0.0, which changes nothing and draws no random numbers.
        init: initialisation of the trainable tables: ``"torch"`` (N(0, 1), ``nn.Embedding``'s; default)
            or ``"gpt2"`` (N(0, 0.02^2)).
        base: the sinusoidal encoding's base (10000.0); ignored by the other kinds.
        device: where to create the tables (``"meta"`` for a shape-only module; see ``reset_parameters``).
        dtype: the tables' dtype; a sinusoidal encoding is computed in float32 and cast to it.

    Attributes:
        token_embedding: the :class:`TokenEmbedding`.
        position_embedding: the :class:`LearnedPositionalEmbedding`, the
            :class:`SinusoidalPositionalEmbedding`, or None for ``positional="none"``.

    Past the longest length: a sequence longer than ``context_length`` is refused whatever the kind.
    With explicit ``position_ids``, a learned table refuses positions ``>= context_length``; a sinusoidal
    encoding computes any position (e.g. a decoding step at an offset past ``context_length``).

    Example (the seed's pipeline: GPT-2 vocabulary, 256 dimensions, a batch of 8 windows of 4 ids):
        >>> torch.manual_seed(123)
        >>> emb = InputEmbedding(50257, 256, context_length=4)
        >>> inputs = torch.tensor([[40, 367, 2885, 1464]] * 8)     # (8, 4) GPT-2 ids
        >>> emb(inputs).shape                                       # torch.Size([8, 4, 256])
        >>> emb(inputs, position_ids=torch.tensor([0, 1, 0, 1])).shape   # restart after <|endoftext|>
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        context_length: int,
        *,
        positional: Positional = "learned",
        dropout: float = 0.0,
        init: Init = "torch",
        base: float = 10000.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.context_length = as_int("context_length", context_length)
        self.positional = as_choice("positional", positional, POSITIONALS)
        p = as_probability("dropout", dropout)
        # Token table first, then the positional one: the seed's order, so a seed gives the seed's tables.
        self.token_embedding = TokenEmbedding(vocab_size, embed_dim, init=init, device=device, dtype=dtype)
        self.position_embedding: LearnedPositionalEmbedding | SinusoidalPositionalEmbedding | None
        if self.positional == "learned":
            self.position_embedding = LearnedPositionalEmbedding(
                self.context_length, embed_dim, init=init, device=device, dtype=dtype
            )
        elif self.positional == "sinusoidal":
            # at GPT-2's init the table is brought to a learned table's scale (rms 0.02): at unit amplitude it drowns
            # tokens drawn N(0, 0.02^2) (measured: a small GPT then stays at the unigram loss, 6.48 against 5.90)
            scale = 1.0 if init == "torch" else GPT2_STD * math.sqrt(2)
            self.position_embedding = SinusoidalPositionalEmbedding(embed_dim, base=base, scale=scale)
        else:
            self.position_embedding = None
        self.dropout = nn.Dropout(p)

    @property
    def vocab_size(self) -> int:
        return self.token_embedding.vocab_size

    @property
    def embed_dim(self) -> int:
        return self.token_embedding.embed_dim

    def reset_parameters(self) -> None:
        """Redraw the token table, then the positional table (the construction order, so a seed repeats)."""
        self.token_embedding.reset_parameters()
        if self.position_embedding is not None:
            self.position_embedding.reset_parameters()

    def forward(self, token_ids: torch.Tensor, position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Embed a batch of token ids.

        Args:
            token_ids: integer tensor ``(B, T)`` or ``(T,)``, ids in ``[0, vocab_size)``, T <= context_length.
                Any integer dtype is accepted and used as int64.
            position_ids: integer tensor ``(T,)`` or ``(B, T)``; default ``0 .. T-1`` for every row. A
                loader that restarts positions at 0 after each end-of-text id passes them here as ``(B, T)``.
                Ignored (but still checked) when ``positional="none"``.

        Returns:
            ``(B, T, D)`` (or ``(T, D)`` for ``(T,)`` ids with ``(T,)`` positions), in the tables' dtype.

        Raises:
            TypeError: ids or positions are not integer tensors.
            ValueError: an id outside ``[0, vocab_size)``; T > context_length; ids that are not 1-D or 2-D;
                position ids of the wrong shape, negative, or (learned) ``>= context_length``.
        """
        if isinstance(token_ids, torch.Tensor) and token_ids.dim() not in (1, 2):
            raise ValueError(
                f"token_ids must be (B, T) or (T,), but has shape {tuple(token_ids.shape)}. "
                "Reshape it, e.g. token_ids.view(-1, T)."
            )
        length = token_ids.shape[-1] if isinstance(token_ids, torch.Tensor) else 0
        if length > self.context_length:
            raise ValueError(
                f"The sequence has {length:,} tokens, but context_length={self.context_length:,}. "
                f"Cut it into windows of at most {self.context_length:,} tokens (max_length <= context_length), "
                "or build the embedding with a larger context_length."
            )
        x = self.token_embedding(token_ids)  # (B, T, D)
        if position_ids is None:
            if self.position_embedding is None:
                return self.dropout(x)
            position_ids = torch.arange(length, device=x.device)  # (T,), broadcast over the batch
        else:
            position_ids = as_id_tensor(
                "position_ids", position_ids, limit=None, limit_name="", fix="Positions count from 0."
            ).to(x.device)
            batch = token_ids.shape[0] if token_ids.dim() == 2 else None
            check_position_shape(position_ids, length, batch, what=f"token_ids of shape {tuple(token_ids.shape)}")
        if isinstance(self.position_embedding, SinusoidalPositionalEmbedding):
            x = x + self.position_embedding(position_ids, dtype=x.dtype)
        elif self.position_embedding is not None:
            x = x + self.position_embedding(position_ids)  # ValueError past context_length
        return self.dropout(x)

    def extra_repr(self) -> str:
        return f"context_length={self.context_length}, positional={self.positional!r}"
