"""The smallest correct multi-head causal self-attention, with a choice of relative position scheme.

Relative schemes act inside attention, so this is where they are used and tested:

- ``"rope"``: queries and keys rotated by :class:`RotaryEmbedding` (Su et al.);
- ``"alibi"``: :class:`ALiBiBias` added to the logits (Press et al.);
- ``"t5"``: T5's learned :class:`RelativePositionBias`, causal buckets (Raffel et al.);
- ``"relative_key"``, ``"relative_key_query"``: BERT's learned distance table :class:`RelativeKeyPositions`
  (Shaw et al. 2018; Huang et al. 2020), ``q_i . r_{i-j}`` (and ``k_j . r_{i-j}``) added to ``q_i . k_j``;
- ``"xl"``: Transformer-XL's relative attention :class:`TransformerXLPositions` (Dai et al. 2019), with
  ``u``, ``v`` and the projected sinusoid of the distance;
- ``None``: no positions here (use an absolute scheme in :class:`InputEmbedding`).

Every scheme takes a :class:`KVCache` (Transformer-XL's memory, a decoder's cache) and ``document_ids``.
``InputEmbedding(..., positional="none")`` followed by ``CausalSelfAttention(..., positional="rope")`` is a
complete, trainable relative-position front end. With ``document_ids`` (a packed row's documents, from
``create_dataloader(..., return_documents=True)``) each token attends only to earlier tokens of its own document
(:mod:`lmfeed.embeddings.masks`), so a packed row computes what each document alone would.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from lmfeed._validate import as_choice, as_int, as_probability, check_heads
from lmfeed.embeddings._checks import as_id_tensor, check_position_shape, check_position_steps
from lmfeed.embeddings.alibi import ALiBiBias
from lmfeed.embeddings.kv_cache import KVCache
from lmfeed.embeddings.masks import causal_allowed, cu_seqlens_of, flex_block_mask
from lmfeed.embeddings.relative_key import RelativeKeyPositions
from lmfeed.embeddings.rotary import RotaryEmbedding
from lmfeed.embeddings.t5 import RelativePositionBias
from lmfeed.embeddings.transformer_xl import TransformerXLPositions

__all__ = ["CausalSelfAttention", "Kernel", "RelativeScheme"]

RelativeScheme = Literal["rope", "alibi", "t5", "relative_key", "relative_key_query", "xl"]
# the schemes of this module, in describe.positional_kinds()'s order (a test keeps the two lists the same)
SCHEMES: tuple[RelativeScheme | None, ...] = (None, "rope", "alibi", "t5", "relative_key", "relative_key_query", "xl")
# schemes that read a table or an encoding by distance: positions must count up by one (or restart at 0)
STEPPED = ("relative_key", "relative_key_query", "xl")
Kernel = Literal["sdpa", "flex", "varlen"]
KERNELS: tuple[str, ...] = ("sdpa", "flex", "varlen")


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention ``(B, T, D) -> (B, T, D)`` through ``scaled_dot_product_attention``.

    ``q, k, v = split(W_qkv x)`` into H heads of ``head_dim = D / H``; the chosen scheme rotates q and k or
    adds a term ``(H, T, T)`` or ``(B, H, T, T)`` to the logits; token i attends to tokens ``j <= i`` (by order in
    the sequence, the cached tokens first), within its document when ``document_ids`` are given; the heads are
    joined and projected by ``W_out``.

    Args:
        embed_dim: D, the width of the token vectors; must be divisible by ``num_heads``.
        num_heads: H.
        positional: None (default), ``"rope"``, ``"alibi"``, ``"t5"``, ``"relative_key"``,
            ``"relative_key_query"`` or ``"xl"`` (Transformer-XL).
        dropout: dropout on the attention weights and on the output while training (nanoGPT's places).
        rope_base: RoPE's base (10000.0), used with ``positional="rope"``; Transformer-XL's sinusoid uses the same.
        max_distance: BERT's relative schemes clip ``|i - j|`` at ``max_distance - 1`` (default 512; table of
            ``2 * max_distance - 1`` vectors).
        kernel: how a document mask is applied: ``"sdpa"`` (default: a boolean block-diagonal causal mask through
            ``scaled_dot_product_attention``, any device), ``"flex"`` (FlexAttention's ``create_block_mask``; the
            scheme's logit term as a ``score_mod``) or ``"varlen"`` (``torch.nn.attention.varlen.varlen_attn`` over the
            flattened batch with ``cu_seqlens``: CUDA only, no bias schemes, no attention dropout).
        device: where to create the weights; ``dtype``: their dtype.

    Attributes:
        qkv: ``nn.Linear(D, 3 * D)``, the query, key and value projections (in that order).
        out: ``nn.Linear(D, D)``, the output projection.
        rope, alibi, t5, relative_key, xl: the scheme's module (only the chosen one exists; both BERT variants
            are ``relative_key``).

    Past the longest length: there is no length limit here; each scheme documents its own behaviour.

    Example:
        >>> emb = InputEmbedding(50257, 256, context_length=4, positional="none")
        >>> attn = CausalSelfAttention(256, 8, positional="xl")
        >>> x = emb(torch.tensor([[40, 367, 2885, 1464]] * 8))
        >>> attn(x).shape                                     # torch.Size([8, 4, 256])
        >>> cache = KVCache()
        >>> attn(x, kv_cache=cache); attn(x, kv_cache=cache)  # the second call attends to the first's 4 tokens too
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        positional: RelativeScheme | None = None,
        dropout: float = 0.0,
        rope_base: float = 10000.0,
        max_distance: int = 512,
        kernel: Kernel = "sdpa",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.embed_dim = as_int("embed_dim", embed_dim)
        self.num_heads = as_int("num_heads", num_heads)
        check_heads(self.embed_dim, self.num_heads)
        self.head_dim = self.embed_dim // self.num_heads
        self.positional = as_choice("positional", positional, SCHEMES)
        self.dropout = as_probability("dropout", dropout)
        self.kernel = as_choice("kernel", kernel, KERNELS)
        if self.kernel == "varlen" and self.positional not in (None, "rope"):
            raise ValueError(f"kernel='varlen' takes no attention bias, but positional={self.positional!r} adds one. "
                             "Use kernel='sdpa' or 'flex' with it, or positional='rope'.")
        self.qkv = nn.Linear(self.embed_dim, 3 * self.embed_dim, device=device, dtype=dtype)
        self.out = nn.Linear(self.embed_dim, self.embed_dim, device=device, dtype=dtype)
        self.residual_dropout = nn.Dropout(self.dropout)
        if self.positional == "rope":
            if self.head_dim < 2 or self.head_dim % 2:
                # RotaryEmbedding would name head_dim, which the caller never passed: name what they did pass
                even = [h for h in range(1, self.embed_dim + 1) if self.embed_dim % h == 0
                        and (self.embed_dim // h) % 2 == 0]
                raise ValueError(
                    f"positional='rope' rotates pairs of dimensions in each head, so head_dim = embed_dim / "
                    f"num_heads must be even, but embed_dim={self.embed_dim} / num_heads={self.num_heads} = "
                    f"{self.head_dim}. " + (f"Use num_heads in {_few(even)}, or a larger embed_dim." if even else
                                            f"Use an even embed_dim, e.g. embed_dim={self.embed_dim + 1}.")
                )
            self.rope = RotaryEmbedding(self.head_dim, base=rope_base)
        elif self.positional == "alibi":
            self.alibi = ALiBiBias(self.num_heads)
        elif self.positional == "t5":
            self.t5 = RelativePositionBias(self.num_heads, bidirectional=False, device=device, dtype=dtype)
        elif self.positional in ("relative_key", "relative_key_query"):
            self.relative_key = RelativeKeyPositions(
                self.head_dim, max_distance=max_distance, key_query=self.positional == "relative_key_query",
                device=device, dtype=dtype,
            )
        elif self.positional == "xl":
            self.xl = TransformerXLPositions(self.embed_dim, self.num_heads, base=rope_base, device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        """Redraw the projections (``nn.Linear``'s init) and rebuild or redraw the scheme's tensors."""
        self.qkv.reset_parameters()
        self.out.reset_parameters()
        for name in ("rope", "alibi", "t5", "relative_key", "xl"):
            if hasattr(self, name):
                getattr(self, name).reset_parameters()

    def forward(
        self,
        x: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        *,
        document_ids: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Attend causally, within documents, over the cached tokens and these.

        Args:
            x: ``(B, T, D)`` floating tensor.
            position_ids: integer ``(T,)`` or ``(B, T)``; default ``0 .. T-1``, or with a non-empty ``kv_cache`` the
                positions that continue it. They set RoPE's angles and the distances of every other scheme (e.g.
                restarting at 0 after each end-of-text id); the causal mask always follows the order of the
                tokens. For ``"xl"`` and the ``"relative_key"`` schemes each position must be the previous + 1
                or 0 (a new document). Unused when ``positional=None``.
            document_ids: integer ``(B, T)`` or ``(T,)``: token i attends only to earlier tokens with its id
                (default: one document). With a cache, give them on every call or on none.
            kv_cache: a :class:`KVCache`: attend to its tokens too (Transformer-XL's memory, or the tokens
                generated so far), then append these to it.

        Returns:
            ``(B, T, D)``, the dtype of ``x``.

        Raises:
            ValueError: ``x`` is not ``(B, T, embed_dim)``; position or document ids of the wrong shape, negative,
                or (for the distance schemes) jumping; a cache from another layer or batch size.
            TypeError: ``x`` is not floating, or position or document ids are not an integer tensor.
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
        what = f"x of shape {tuple(x.shape)}"
        if kv_cache is not None:
            if not isinstance(kv_cache, KVCache):
                raise TypeError(f"kv_cache must be a lmfeed KVCache, but got {type(kv_cache).__name__}. "
                                "Create one with KVCache(max_length=...) and pass the same object on every call.")
            kv_cache.check(batch, self.num_heads, self.head_dim)
        past = 0 if kv_cache is None else len(kv_cache)
        if position_ids is not None:
            position_ids = as_id_tensor(
                "position_ids", position_ids, limit=None, limit_name="", fix="Positions count from 0."
            ).to(x.device)
            check_position_shape(position_ids, length, batch, what=what)
        if document_ids is not None:
            document_ids = as_id_tensor(
                "document_ids", document_ids, limit=None, limit_name="", fix="Number documents from 0."
            ).to(x.device)
            _check_document_shape(document_ids, length, batch, what)
            document_ids = document_ids.expand(batch, length)
        cached_positions = None if kv_cache is None else kv_cache.position_ids  # (B, M), None while empty
        if cached_positions is not None and kv_cache is not None:
            if (document_ids is None) != (kv_cache.document_ids is None):
                had = "without" if kv_cache.document_ids is None else "with"
                raise ValueError(f"kv_cache holds tokens {had} document_ids, but this call passes "
                                 f"{'none' if document_ids is None else 'some'}. Pass document_ids on every call "
                                 "with this cache or on none, or kv_cache.reset() first.")
            if position_ids is None:
                position_ids = kv_cache.next_position_ids(length)
        if position_ids is not None and (self.positional in STEPPED or cached_positions is not None):
            steps = position_ids
            if cached_positions is not None:  # the first new position continues the cache's last (or restarts)
                steps = torch.cat([cached_positions[:, -1:], steps.expand(batch, length)], dim=-1)
            needed_by = f"positional={self.positional!r}" if self.positional in STEPPED else "a kv_cache"
            check_position_steps(steps, needed_by=needed_by, offset=0 if cached_positions is None else 1)

        # (B, T, 3D) -> three (B, H, T, head_dim)
        q, k, v = self.qkv(x).view(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if self.positional == "rope":
            q, k = self.rope(q, k, position_ids)
        query_positions = position_ids if position_ids is not None else torch.arange(length, device=x.device)
        key_positions, key_documents = query_positions, document_ids
        if kv_cache is not None:
            k, v, key_positions, key_documents = kv_cache.append(
                k, v, query_positions.expand(batch, length), document_ids)

        allowed = None  # (B or 1, T, M + T) bool, None: plain causal over these T tokens
        if past or document_ids is not None or self.positional not in (None, "rope"):
            allowed = causal_allowed(length, past, device=x.device, document_ids=document_ids,
                                     key_document_ids=key_documents)
        term = None  # the scheme's addition to the scaled logits, (H, T, M+T) or (B, H, T, M+T)
        if self.positional in ("alibi", "t5"):
            scheme = self.alibi if self.positional == "alibi" else self.t5
            relative = key_positions.unsqueeze(-2) - query_positions.unsqueeze(-1)  # key - query
            term = scheme.relative_bias(relative)
        elif self.positional in ("relative_key", "relative_key_query"):
            scale = 1.0 / math.sqrt(self.head_dim)  # on q and k (B, H, T, head_dim), not on the (B, H, T, T) term
            term = self.relative_key(q * scale, k * scale, query_positions, key_positions, allowed=allowed)
        elif self.positional == "xl":
            term = self.xl(q, query_positions, key_positions, allowed=allowed, scale=1.0 / math.sqrt(self.head_dim))
            q = self.xl.content_query(q)  # terms a + c: (q + u) . k
        if document_ids is not None and self.kernel != "sdpa" and not past:
            y = self._documents_kernel(q, k, v, term, document_ids, self.dropout if self.training else 0.0)
            y = y.transpose(1, 2).reshape(batch, length, self.embed_dim)
            return self.residual_dropout(self.out(y))
        mask: torch.Tensor | None = None
        if term is not None and allowed is not None:  # every scheme with a term has a mask
            mask = term.to(q.dtype).masked_fill(~allowed.unsqueeze(-3), float("-inf"))
        elif allowed is not None:
            mask = allowed.unsqueeze(-3)  # (B or 1, 1, T, M+T) bool: True attends
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

    def _documents_kernel(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None,
                          document_ids: torch.Tensor, dropout: float) -> torch.Tensor:
        """Document-masked attention through FlexAttention or a varlen kernel: ``(B, H, T, head_dim)``."""
        batch, heads, length, head_dim = q.shape
        if dropout:
            raise ValueError(f"kernel={self.kernel!r} has no attention dropout, but dropout={self.dropout} is set and "
                             "the layer is training. Use kernel='sdpa', or dropout=0.0.")
        if self.kernel == "flex":
            from torch.nn.attention.flex_attention import flex_attention

            score_mod = None
            if bias is not None:
                full = bias.to(q.dtype).expand(batch, heads, length, length)

                def score_mod(score: torch.Tensor, b: torch.Tensor, h: torch.Tensor, i: torch.Tensor,
                              j: torch.Tensor) -> torch.Tensor:
                    return score + full[b, h, i, j]

            return flex_attention(q, k, v, score_mod=score_mod, block_mask=flex_block_mask(document_ids))
        if q.device.type != "cuda":
            raise ValueError(f"kernel='varlen' runs on CUDA only, but x is on {q.device}. Use kernel='sdpa' or 'flex'.")
        from torch.nn.attention.varlen import varlen_attn

        cu, longest = cu_seqlens_of(document_ids)

        def flat(t: torch.Tensor) -> torch.Tensor:  # (B, H, T, d) -> (B * T, H, d)
            return t.transpose(1, 2).reshape(batch * length, heads, head_dim)

        y = varlen_attn(flat(q), flat(k), flat(v), cu, cu, longest, longest, window_size=(-1, 0))
        return y.view(batch, length, heads, head_dim).transpose(1, 2)  # type: ignore[union-attr]

    def extra_repr(self) -> str:
        kernel = f", kernel={self.kernel!r}" if self.kernel != "sdpa" else ""
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, positional={self.positional!r}{kernel}"


def _check_document_shape(document_ids: torch.Tensor, length: int, batch: int, what: str) -> None:
    shape = tuple(document_ids.shape)
    if shape not in ((length,), (batch, length)):
        raise ValueError(
            f"document_ids has shape {shape}, but {what} needs ({batch}, {length}) or ({length},): one document id "
            "per token. Take them from the loader, or leave document_ids=None for one document."
        )


def _few(values: list[int]) -> str:
    """``[1, 2, 4, 8, 16, 32, 64, 128]`` -> ``"1, 2, 4, ..., 128"``: the choices, short."""
    shown = values if len(values) <= 6 else [*values[:3], "...", values[-1]]
    return "{" + ", ".join(map(str, shown)) + "}"
