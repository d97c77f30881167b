"""Token embeddings: one trainable vector of ``embed_dim`` numbers per id of the vocabulary.

This is the seed's ``torch.nn.Embedding(vocab_size, output_dim)``, with the same initialisation (so the same
seed gives the same table) and the same state-dict key (``weight``), plus checks that turn a bad id into a
clear error instead of an ``IndexError`` from inside torch.

Example (the seed's table, printed by ``torch.nn.Embedding(6, 3)`` after ``torch.manual_seed(123)``):
    >>> torch.manual_seed(123)
    >>> emb = TokenEmbedding(6, 3)
    >>> emb.weight[0]        # tensor([ 0.3374, -0.1778, -0.1690])
    >>> emb(torch.tensor([3]))  # tensor([[-0.4015,  0.9666, -1.1481]])
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from lmfeed._validate import as_bool, as_choice, as_int
from lmfeed.embeddings._checks import as_id_tensor, empty_table

__all__ = ["Init", "TokenEmbedding", "init_table", "lookup"]

Init = Literal["torch", "gpt2"]
INITS: tuple[Init, ...] = ("torch", "gpt2")

# GPT-2 initialises its embedding tables N(0, 0.02^2) (nanoGPT's _init_weights does the same).
GPT2_STD = 0.02


def init_table(weight: torch.Tensor, init: str) -> None:
    """Fill an embedding table in place: ``"torch"`` is N(0, 1), as ``nn.Embedding``; ``"gpt2"`` is N(0, 0.02^2).

    Both draw from torch's global RNG with one ``normal_`` call, exactly as ``nn.Embedding.reset_parameters``
    does, so a table made after ``torch.manual_seed(s)`` equals the one ``nn.Embedding`` would make.
    """
    with torch.no_grad():
        nn.init.normal_(weight, mean=0.0, std=1.0 if init == "torch" else GPT2_STD)


class TokenEmbedding(nn.Embedding):
    """A trainable lookup table ``(vocab_size, embed_dim)``: token ids ``(...)`` -> vectors ``(..., embed_dim)``.

    In the seed's pipeline ``TokenEmbedding(50257, 256)`` turns a batch of ids ``(8, 4)`` into ``(8, 4, 256)``.
    It *is* an ``nn.Embedding`` (a subclass), so code that finds embeddings by ``isinstance(m, nn.Embedding)``
    (nanoGPT's ``_init_weights``, FSDP wrap policies, weight tying helpers) treats it as one; it adds the checks
    and the ``init`` choice.

    Args:
        vocab_size: number of ids, e.g. 50,257 for GPT-2's BPE. Ids must be in ``[0, vocab_size)``.
        embed_dim: D, the length of each vector, e.g. 256 in the seed, 768 in GPT-2 small.
        init: ``"torch"`` (default): N(0, 1), ``nn.Embedding``'s own initialisation, so that
            ``torch.manual_seed(123); TokenEmbedding(6, 3).weight`` is the seed's table;
            ``"gpt2"``: N(0, 0.02^2), GPT-2's.
        device: where to create the table (``"meta"`` makes a shape-only module; see ``reset_parameters``).
        dtype: the table's dtype (default: torch's default dtype, float32).

    Attributes:
        weight: the ``(vocab_size, embed_dim)`` table, an ``nn.Parameter`` (trainable). Its state-dict key is
            ``weight``, as in ``nn.Embedding``, so either module's state dict loads into the other.
        num_embeddings, embedding_dim: ``nn.Embedding``'s names for ``vocab_size`` and ``embed_dim``.

    Raises:
        TypeError, ValueError: from the constructor for a non-integer or non-positive size or an unknown init;
            from ``forward`` for ids that are not an integer tensor or are outside ``[0, vocab_size)``.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        *,
        init: Init = "torch",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        vocab_size = as_int("vocab_size", vocab_size)
        embed_dim = as_int("embed_dim", embed_dim)
        init = as_choice("init", init, INITS)
        table = empty_table("The token embedding table", vocab_size, embed_dim, device=device, dtype=dtype,
                            fix="Lower embed_dim or vocab_size, or create it on device='meta' first.")
        super().__init__(vocab_size, embed_dim, _weight=table)  # takes the table as it is: no draw here
        self.vocab_size, self.embed_dim, self.init = vocab_size, embed_dim, init
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """(Re)draw the table from torch's global RNG with the chosen ``init``.

        After building on the meta device, ``module.to_empty(device="cpu")`` then ``reset_parameters()``
        gives a usable module.
        """
        init_table(self.weight, self.init)
        self._fill_padding_idx_with_zero()

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Look up each id.

        Args:
            token_ids: integer tensor of any shape, typically ``(B, T)`` or ``(T,)``; any integer dtype
                (int8 ... int64, uint8, uint16 from a memory map) is accepted and used as int64.

        Returns:
            ``token_ids.shape + (embed_dim,)``, in the table's dtype; e.g. ``(8, 4)`` -> ``(8, 4, 256)``.

        Raises:
            TypeError: ``token_ids`` is not a tensor, or is a floating or bool tensor.
            ValueError: an id is negative or ``>= vocab_size`` (on CUDA the range is checked on the device,
                without a sync: see :func:`lmfeed.embeddings._checks.as_id_tensor`).
        """
        ids = as_id_tensor(
            "token_ids",
            token_ids,
            limit=self.vocab_size,
            limit_name="vocab_size",
            fix=(
                "Encode with the tokenizer this model was built for, or build the embedding with a vocab_size "
                "larger than the largest id (GPT-2's BPE needs vocab_size=50257)."
            ),
        )
        return lookup(self, ids)

    def extra_repr(self) -> str:
        return f"{self.vocab_size}, {self.embed_dim}, init={self.init!r}"

    @classmethod
    def from_pretrained(cls, embeddings: torch.Tensor, freeze: bool = True, padding_idx: int | None = None,
                        max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> TokenEmbedding:
        """A module holding ``embeddings`` ``(vocab_size, embed_dim)``, as ``nn.Embedding.from_pretrained``."""
        return _from_pretrained(cls, embeddings, freeze=freeze, padding_idx=padding_idx, max_norm=max_norm,
                                norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


def lookup(module: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
    """``nn.Embedding.forward`` on checked ids, honouring the ``nn.Embedding`` options a caller may have set."""
    return nn.functional.embedding(ids, module.weight, module.padding_idx, module.max_norm, module.norm_type,
                                   module.scale_grad_by_freq, module.sparse)


def _from_pretrained(cls, embeddings: torch.Tensor, *, freeze: bool, padding_idx: int | None,  # noqa: ANN001
                     max_norm: float | None, norm_type: float, scale_grad_by_freq: bool, sparse: bool):  # noqa: ANN202
    if not isinstance(embeddings, torch.Tensor) or embeddings.dim() != 2:
        got = tuple(embeddings.shape) if isinstance(embeddings, torch.Tensor) else type(embeddings).__name__
        raise ValueError(f"embeddings must be a 2-D tensor (rows, embed_dim), but got {got}.")
    rows, cols = embeddings.shape
    module = cls(rows, cols, device="meta")  # the shape only; the table is the one given
    module.weight = nn.Parameter(embeddings, requires_grad=not as_bool("freeze", freeze))
    if padding_idx is not None:
        padding_idx = as_int("padding_idx", padding_idx, minimum=-rows, maximum=rows - 1)
        padding_idx %= rows
    module.padding_idx, module.max_norm, module.norm_type = padding_idx, max_norm, norm_type
    module.scale_grad_by_freq, module.sparse = scale_grad_by_freq, sparse
    return module
