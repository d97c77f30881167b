"""A small GPT: GPT-2's decoder on lmfeed's embeddings, with every position scheme lmfeed has.

    token_ids (B, T) --InputEmbedding--> x (B, T, D)            token table + absolute positions (or none)
        num_layers x  x = x + attn(ln_1(x))                    CausalSelfAttention: rope / alibi / t5 act here
                      x = x + mlp(ln_2(x))                     Linear(D, 4D) -> GELU -> Linear(4D, D)
    ln_f(x) --lm_head--> logits (B, T, V)                      lm_head shares the token table (tie_weights)

The layers are those of the seed's book (``llms_from_scratch.ch04.GPTModel``: pre-LayerNorm blocks, GELU with the
tanh approximation, eps 1e-5); with the same weights copied in, the logits are the book's (tested to 1e-5).
Initialisation is GPT-2's: every weight N(0, 0.02^2), biases 0, and the two projections that write into the residual
stream (``attn.out``, ``mlp.proj``) N(0, (0.02 / sqrt(2 * num_layers))^2), so the residual's variance does not grow
with depth (Radford et al. 2019, section 2.3; nanoGPT's ``_init_weights``).

Every scheme named by :func:`lmfeed.embeddings.positional_kinds` is accepted: the absolute ones
(``InputEmbedding``'s: learned, sinusoidal, none) go into the input embedding; every other one into attention, so a
scheme added there is a GPT scheme without an edit here.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from lmfeed._validate import as_choice, as_int, as_probability, check_heads
from lmfeed.embeddings import CausalSelfAttention, InputEmbedding, KVCache, positional_kinds
from lmfeed.embeddings.input import POSITIONALS as ABSOLUTE_KINDS

__all__ = ["GPT", "MLP", "Block", "is_absolute"]

GPT2_STD = 0.02


def is_absolute(positional: str) -> bool:
    """Whether a scheme is added to the token embeddings (learned, sinusoidal, none) or acts in attention."""
    return positional in ABSOLUTE_KINDS


class MLP(nn.Module):
    """GPT-2's feed-forward layer: ``(B, T, D) -> Linear(D, 4D) -> GELU (tanh) -> Linear(4D, D) -> dropout``."""

    def __init__(self, embed_dim: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc = nn.Linear(embed_dim, 4 * embed_dim)
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2's "gelu_new", the book's GELU
        self.proj = nn.Linear(4 * embed_dim, embed_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(self.gelu(self.fc(x))))


class Block(nn.Module):
    """One pre-LayerNorm decoder block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``; ``(B, T, D) -> (B, T, D)``."""

    def __init__(self, embed_dim: int, num_heads: int, *, positional: str | None, dropout: float) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(embed_dim, eps=1e-5)
        self.attn = CausalSelfAttention(embed_dim, num_heads, positional=positional, dropout=dropout)  # type: ignore[arg-type]
        self.ln_2 = nn.LayerNorm(embed_dim, eps=1e-5)
        self.mlp = MLP(embed_dim, dropout=dropout)

    def forward(self, x: torch.Tensor, position_ids: torch.Tensor | None = None, *,
                document_ids: torch.Tensor | None = None, kv_cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), position_ids, document_ids=document_ids, kv_cache=kv_cache)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """GPT-2's decoder: token ids ``(B, T)`` -> logits ``(B, T, V)``, and the loss when targets are given.

    Args:
        vocab_size: V, the number of token ids (50,257 for GPT-2's BPE; a trained BPE of 8,192 is ~6x cheaper here,
            because the output layer dominates a small model's work).
        embed_dim: D (768 in GPT-2 small, 128 in ``lmfeed train``'s default); must be divisible by ``num_heads``.
        context_length: the longest sequence accepted (T <= context_length) and the learned table's size.
        num_layers: decoder blocks (12 in GPT-2 small).
        num_heads: H attention heads per block.
        positional: one of :func:`lmfeed.embeddings.positional_kinds`: ``"learned"`` (default, GPT-2's),
            ``"sinusoidal"``, ``"none"`` (absolute, added to the token embeddings), ``"rope"``, ``"alibi"``, ``"t5"``
            (relative, in attention; the input embedding then carries no positions).
        dropout: on the embeddings, the attention weights and the residual branches while training (default 0.0).
        tie_weights: the output layer uses the token table (GPT-2's weight tying; default True).

    Attributes:
        embedding: the :class:`~lmfeed.InputEmbedding` (``embedding.token_embedding.weight`` is the token table).
        blocks: ``nn.ModuleList`` of ``num_layers`` :class:`Block`.
        ln_f: the final ``nn.LayerNorm``.
        lm_head: ``nn.Linear(D, V, bias=False)``; its weight is the token table when ``tie_weights``.

    Raises:
        ValueError, TypeError: a size that is not a positive integer, ``embed_dim`` not divisible by ``num_heads``,
            an unknown ``positional`` (the message lists them), a dropout outside [0, 1).

    Example:
        >>> torch.manual_seed(123)
        >>> model = GPT(vocab_size=50257, embed_dim=64, context_length=8, num_layers=2, num_heads=4)
        >>> ids = torch.tensor([[15496, 995, 11, 314]])            # "Hello world, I"
        >>> logits, loss = model(ids, targets=torch.tensor([[995, 11, 314, 716]]))
        >>> logits.shape, round(loss.item(), 1)                    # (torch.Size([1, 4, 50257]), 10.8): ~ln(50257)
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        context_length: int,
        num_layers: int,
        num_heads: int,
        *,
        positional: str = "learned",
        dropout: float = 0.0,
        tie_weights: bool = True,
    ) -> None:
        super().__init__()
        self.vocab_size = as_int("vocab_size", vocab_size)
        self.embed_dim = as_int("embed_dim", embed_dim)
        self.context_length = as_int("context_length", context_length)
        self.num_layers = as_int("num_layers", num_layers)
        self.num_heads = as_int("num_heads", num_heads)
        check_heads(self.embed_dim, self.num_heads)
        self.positional = as_choice("positional", positional, positional_kinds())
        self.dropout = as_probability("dropout", dropout)
        if not isinstance(tie_weights, bool):
            raise TypeError(f"tie_weights must be True or False, but got {tie_weights!r}.")
        self.tie_weights = tie_weights
        absolute = self.positional if is_absolute(self.positional) else "none"
        relative = None if is_absolute(self.positional) else self.positional
        self.embedding = InputEmbedding(self.vocab_size, self.embed_dim, self.context_length,
                                        positional=absolute, dropout=self.dropout, init="gpt2")  # type: ignore[arg-type]
        self.blocks = nn.ModuleList(
            Block(self.embed_dim, self.num_heads, positional=relative, dropout=self.dropout)
            for _ in range(self.num_layers)
        )
        self.ln_f = nn.LayerNorm(self.embed_dim, eps=1e-5)
        self.lm_head = nn.Linear(self.embed_dim, self.vocab_size, bias=False)
        if tie_weights:
            self.lm_head.weight = self.embedding.token_embedding.weight  # one (V, D) table, read both ways
        self._init_weights()

    def config(self) -> dict[str, Any]:
        """The constructor's arguments, enough to build the same shape again: ``GPT(**model.config())``."""
        return {
            "vocab_size": self.vocab_size, "embed_dim": self.embed_dim, "context_length": self.context_length,
            "num_layers": self.num_layers, "num_heads": self.num_heads, "positional": self.positional,
            "dropout": self.dropout, "tie_weights": self.tie_weights,
        }

    def _init_weights(self) -> None:
        """GPT-2's initialisation (the embedding tables were drawn N(0, 0.02^2) by ``InputEmbedding(init="gpt2")``)."""
        residual_std = GPT2_STD / math.sqrt(2 * self.num_layers)
        with torch.no_grad():
            for name, module in self.named_modules():
                if isinstance(module, nn.Linear):
                    if module is self.lm_head and self.tie_weights:
                        continue  # it is the token table, already drawn
                    residual = name.endswith(("attn.out", "mlp.proj"))
                    nn.init.normal_(module.weight, mean=0.0, std=residual_std if residual else GPT2_STD)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)

    @property
    def learned_positions(self) -> torch.Tensor | None:
        """The learned ``(context_length, D)`` position table, or None for every other scheme."""
        pe = self.embedding.position_embedding
        weight = getattr(pe, "weight", None) if self.positional == "learned" else None
        return weight if isinstance(weight, torch.Tensor) else None

    def num_parameters(self, *, non_embedding: bool = False) -> int:
        """Trainable parameters, the tied table counted once; ``non_embedding=True`` leaves out the embedding tables."""
        total = sum(p.numel() for p in self.parameters())
        if non_embedding:
            total -= sum(p.numel() for p in self.embedding.parameters())
            if not self.tie_weights:
                total -= self.lm_head.weight.numel()
        return total

    def forward(
        self,
        token_ids: torch.Tensor,
        targets: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        *,
        document_ids: torch.Tensor | None = None,
        kv_cache: list[KVCache] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for every position and, with targets, the mean next-token cross-entropy.

        Args:
            token_ids: integer ``(B, T)``, ids in ``[0, vocab_size)``, ``T <= context_length``.
            targets: integer ``(B, T)``, the ids that follow (the loader's targets); ``-100`` is ignored.
            position_ids: integer ``(T,)`` or ``(B, T)`` (default ``0 .. T-1``), passed to the embedding and to
                every block (a loader's ``return_positions=True`` restarts them at each document).
            document_ids: integer ``(B, T)``: attention stays inside each document; passed to every block.
            kv_cache: one :class:`~lmfeed.KVCache` per block (``[KVCache() for _ in model.blocks]``) for decoding:
                each block attends to its cached tokens too and appends these; positions then continue from the
                cache (``past .. past + T - 1``) unless given. ``past + T`` must stay within ``context_length`` for a
                learned table.

        Returns:
            ``(logits, loss)``: logits ``(B, T, V)`` float; loss a scalar, or None without targets (nanoGPT's form).

        Raises:
            ValueError, TypeError: from the embedding and attention checks (bad ids, T > context_length, shapes);
                targets whose shape is not the ids'.
        """
        caches: list[KVCache | None] = [None] * self.num_layers
        if kv_cache is not None:
            if not isinstance(kv_cache, (list, tuple)) or len(kv_cache) != self.num_layers:
                raise ValueError(f"kv_cache must be a list of {self.num_layers} KVCache, one per block: "
                                 "[KVCache() for _ in model.blocks].")
            caches = list(kv_cache)
            past = len(kv_cache[0])
            if position_ids is None and past and isinstance(token_ids, torch.Tensor):
                position_ids = torch.arange(past, past + token_ids.shape[-1], device=token_ids.device)
        x = self.embedding(token_ids, position_ids)  # (B, T, D)
        for block, cache in zip(self.blocks, caches, strict=True):
            x = block(x, position_ids, document_ids=document_ids, kv_cache=cache)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        if targets is None:
            return logits, None
        if not isinstance(targets, torch.Tensor) or targets.shape != token_ids.shape:
            got = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
            raise ValueError(f"targets must have the shape of token_ids {tuple(token_ids.shape)}, but got {got}. "
                             "Pass the loader's targets (the inputs shifted by one).")
        loss = nn.functional.cross_entropy(logits.flatten(0, -2).float(), targets.reshape(-1).long(),
                                           ignore_index=-100)
        return logits, loss

    def extra_repr(self) -> str:
        return (f"vocab_size={self.vocab_size}, embed_dim={self.embed_dim}, context_length={self.context_length}, "
                f"num_layers={self.num_layers}, num_heads={self.num_heads}, positional={self.positional!r}")
