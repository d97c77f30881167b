"""A short, printable account of each position scheme with a few of its real values (for ``lmfeed demo``).

Example:
    >>> print(describe_positional("alibi", num_heads=4, length=4))
    alibi: ALiBi, Press et al. 2022 (arXiv:2108.12409)
      acts in attention: adds -slope_h * |i - j| to the logit of query i, key j
      slopes (4 heads): 0.25, 0.0625, 0.015625, 0.00390625
      ...
"""

from __future__ import annotations

from typing import Literal

import torch

from lmfeed._validate import as_choice, as_int

__all__ = ["describe_positional", "positional_kinds", "relative_tables"]

_KINDS: dict[str, tuple[str, str]] = {
    # kind -> (title with paper, what it does and where)
    "learned": (
        "learned absolute, GPT-2 / the seed (nn.Embedding(context_length, D))",
        "added to the token embeddings: a trainable vector per position 0 .. context_length-1",
    ),
    "sinusoidal": (
        'sinusoidal absolute, Vaswani et al. 2017, "Attention Is All You Need" (arXiv:1706.03762)',
        "added to the token embeddings: PE[pos, 2i] = sin(pos / 10000^(2i/D)), PE[pos, 2i+1] = cos(same)",
    ),
    "none": ("no absolute positions", "token embeddings only; attention must supply the order (rope, alibi, t5)"),
    "rope": (
        "RoPE, Su et al. 2021, RoFormer (arXiv:2104.09864)",
        "acts in attention: rotates each (q, k) pair of dims by pos * 10000^(-2i/d), so q_m . k_n depends on m - n",
    ),
    "alibi": (
        "ALiBi, Press et al. 2022 (arXiv:2108.12409)",
        "acts in attention: adds -slope_h * |i - j| to the logit of query i, key j",
    ),
    "t5": (
        "T5 relative bias, Raffel et al. 2020 (arXiv:1910.10683)",
        "acts in attention: adds a learned per-head bias for the log-spaced bucket of j - i",
    ),
    "relative_key": (
        'BERT relative key, Shaw et al. 2018, "Self-Attention with Relative Position Representations" '
        "(arXiv:1803.02155)",
        "acts in attention: adds q_i . r_(i-j), a learned head_dim vector per distance clipped at max_distance-1",
    ),
    "relative_key_query": (
        'BERT relative key-query, Huang et al. 2020, "Improve Transformer Models with Better Relative Position '
        'Embeddings" (arXiv:2009.13658)',
        "acts in attention: adds q_i . r_(i-j) + k_j . r_(i-j), the same clipped learned table",
    ),
    "xl": (
        'Transformer-XL, Dai et al. 2019, "Attentive Language Models Beyond a Fixed-Length Context" '
        "(arXiv:1901.02860)",
        "acts in attention: (q_i + u) . k_j + (q_i + v) . W_R r_(i-j), r the sinusoid of i - j; attends to a memory",
    ),
}

# where each scheme acts: added to the token embeddings (InputEmbedding) or inside attention (CausalSelfAttention)
_ABSOLUTE = ("learned", "sinusoidal", "none")


def positional_kinds(where: Literal["input", "attention"] | None = None) -> tuple[str, ...]:
    """The one list of position schemes: every name ``lmfeed.GPT``, ``lmfeed train`` and ``lmfeed demo`` accept.

    Args:
        where: None (default) for all of them, the absolute kinds first; ``"input"`` for those
            :class:`InputEmbedding` adds to the token embeddings (learned, sinusoidal, none); ``"attention"`` for
            those :class:`CausalSelfAttention` applies (rope, alibi, t5, relative_key, relative_key_query, xl).
    """
    if where is None:
        return tuple(_KINDS)
    where = as_choice("where", where, ("input", "attention"))
    return tuple(k for k in _KINDS if (k in _ABSOLUTE) == (where == "input"))


def describe_positional(kind: str, *, embed_dim: int = 8, num_heads: int = 4, length: int = 4) -> str:
    """A few lines naming the scheme, its paper, its formula, and some of its values at small sizes.

    Learned tables are drawn under ``torch.manual_seed(123)`` inside a forked RNG, so the caller's random
    state is untouched and the text is the same on every run.

    Args:
        kind: one of :func:`positional_kinds`: ``"learned"``, ``"sinusoidal"``, ``"none"``, ``"rope"``,
            ``"alibi"``, ``"t5"``, ``"relative_key"``, ``"relative_key_query"``, ``"xl"``.
        embed_dim: D for the absolute kinds, head_dim for RoPE (default 8, small enough to print).
        num_heads: H for ALiBi, T5 and Transformer-XL (default 4).
        length: number of positions shown (default 4, the seed's max_length).

    Returns:
        Multi-line text without a trailing newline.
    """
    kind = as_choice("positional", kind, positional_kinds())
    embed_dim = as_int("embed_dim", embed_dim, minimum=2)
    num_heads = as_int("num_heads", num_heads)
    length = as_int("length", length)
    title, how = _KINDS[kind]
    lines = [f"{kind}: {title}", f"  {how}"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(123)
        lines += _values(kind, embed_dim, num_heads, length)
    return "\n".join(lines)


def _fmt(values: torch.Tensor) -> str:
    return "[" + ", ".join(f"{v + 0.0:+.4f}" for v in values.tolist()) + "]"  # + 0.0: no "-0.0000"


def _values(kind: str, embed_dim: int, num_heads: int, length: int) -> list[str]:
    # imported here: describe is imported by the package, and these modules import nothing from it
    from lmfeed.embeddings.absolute import LearnedPositionalEmbedding, SinusoidalPositionalEmbedding
    from lmfeed.embeddings.alibi import ALiBiBias
    from lmfeed.embeddings.relative_key import RelativeKeyPositions
    from lmfeed.embeddings.rotary import RotaryEmbedding
    from lmfeed.embeddings.t5 import RelativePositionBias
    from lmfeed.embeddings.transformer_xl import TransformerXLPositions

    positions = torch.arange(length)
    if kind == "none":
        return []
    if kind in ("relative_key", "relative_key_query"):
        reach = max(1, length // 2)  # small enough that the clipping shows
        table = RelativeKeyPositions(embed_dim, max_distance=reach + 1)
        index = table.index(positions, positions)
        lines = [f"  an example: a fresh {2 * reach + 1} x {embed_dim} table (max_distance={reach + 1}) drawn under "
                 "torch.manual_seed(123)",
                 f"  row read by query i (rows) x key j (columns): i - j clipped at +-{reach}, + {reach}:"]
        lines += [f"    {row}" for row in index.tolist()]
        with torch.no_grad():
            rows = table.weight[reach:]
        return lines + [f"  r_{d}: {_fmt(rows[d][:4])}" for d in range(len(rows))]
    if kind == "xl":
        width = 2 * num_heads * max(1, -(-embed_dim // (2 * num_heads)))  # embed_dim rounded up to a multiple of 2H
        xl = TransformerXLPositions(width, num_heads)
        with torch.no_grad():
            encoding = xl.encoding(positions)
            v_term = torch.einsum("hd,rhd->hr", xl.v, xl.projected(positions))[0]
        lines = [f"  r_d, the sinusoid of distance d (not learned), D={width}, first 4 values (sines; cosines follow):"]
        lines += [f"    r_{d}: {_fmt(encoding[d][:4])}" for d in range(length)]
        return lines + [
            f"  learned u and v, head 0 (a fresh layer under torch.manual_seed(123)): u {_fmt(xl.u[0][:4].detach())}, "
            f"v {_fmt(xl.v[0][:4].detach())}",
            f"  term d, v . W_R r_d, head 0, for d = 0..{length - 1}: {_fmt(v_term)}",
        ]
    if kind in ("learned", "sinusoidal"):
        pe: LearnedPositionalEmbedding | SinusoidalPositionalEmbedding
        if kind == "learned":  # a small example table of its own, not any model's
            pe = LearnedPositionalEmbedding(length, embed_dim)
            head = f"  an example: a fresh {length} x {embed_dim} table drawn under torch.manual_seed(123)"
        else:
            pe = SinusoidalPositionalEmbedding(embed_dim)
            head = f"  the first {length} positions at embed_dim={embed_dim} (the same at every run and in every model)"
        with torch.no_grad():
            table = pe(positions)
        return [head] + [f"  position {p}: {_fmt(table[p])}" for p in range(length)]
    if kind == "rope":
        rope = RotaryEmbedding(embed_dim)
        unit = torch.zeros(1, 1, length, embed_dim)
        unit[..., 0] = 1.0  # the same vector at every position, so only the rotation differs
        rotated, _ = rope(unit, unit)
        lines = [f"  e_0 rotated at position {p}: {_fmt(rotated[0, 0, p])}" for p in range(length)]
        scores = (rotated[0, 0] @ rotated[0, 0].T)[0]
        return lines + [f"  score(e_0 at 0, e_0 at n) for n = 0..{length - 1}: {_fmt(scores)}"]
    bias_module: ALiBiBias | RelativePositionBias
    bias_module = ALiBiBias(num_heads) if kind == "alibi" else RelativePositionBias(num_heads, bidirectional=False)
    lines = []
    if isinstance(bias_module, ALiBiBias):  # kind == "alibi"
        lines.append(f"  slopes ({num_heads} heads): " + ", ".join(f"{s:g}" for s in bias_module.slopes.tolist()))
    else:
        buckets = bias_module.bucket(-positions)  # keys 0, 1, 2 ... tokens before the query
        lines.append(f"  causal buckets for distances 0..{length - 1}: {buckets.tolist()}")
    with torch.no_grad():
        bias = bias_module(length, length)[0]  # head 0, (T, T)
    lines.append(f"  head 0 bias, query i (rows) x key j (columns), {length} x {length}; causal attention masks j > i:")
    return lines + [f"    {_fmt(row)}" for row in bias]


def relative_tables(model: torch.nn.Module, length: int) -> dict[str, torch.Tensor]:
    """The learned position tensors of the first layer of a relative scheme in ``model``, for before/after pictures.

    Args:
        model: any module (a :class:`CausalSelfAttention`, a ``lmfeed.GPT``); its first
            :class:`RelativeKeyPositions` or :class:`TransformerXLPositions` is read.
        length: how many distances ``0 .. length-1`` Transformer-XL's term d is computed for (the context length).

    Returns:
        CPU float32 copies, detached: ``{"relative_key": (2 * max_distance - 1, head_dim)}`` (BERT's table, row
        ``d + max_distance - 1`` for distance d) or ``{"xl_u": (H, head_dim), "xl_v": (H, head_dim),
        "xl_d": (H, length)}`` (term d, ``v . W_R r_d``, each head's preference for each distance);
        ``{}`` when the model has neither.

    Example:
        >>> relative_tables(CausalSelfAttention(256, 4, positional="xl"), 128)["xl_d"].shape   # torch.Size([4, 128])
    """
    from lmfeed.embeddings.relative_key import RelativeKeyPositions
    from lmfeed.embeddings.transformer_xl import TransformerXLPositions

    length = as_int("length", length)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, RelativeKeyPositions):
                return {"relative_key": module.weight.detach().float().cpu().clone()}
            if isinstance(module, TransformerXLPositions):
                distances = torch.arange(length, device=module.u.device)
                term_d = torch.einsum("hd,rhd->hr", module.v, module.projected(distances).to(module.v.dtype))
                copy = {"xl_u": module.u, "xl_v": module.v, "xl_d": term_d}
                return {name: t.detach().float().cpu().clone() for name, t in copy.items()}
    return {}
