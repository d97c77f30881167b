"""Pictures of what the model will see: position tables, their similarities, token embeddings, a batch, a store.

Every figure is 800 x 500 pixels (``FIGSIZE`` (8, 5) inches at ``DPI`` 100), fit for a README, written as a PNG under
a temporary name and renamed into place when whole. matplotlib is imported inside the functions, with the
non-interactive Agg backend, so importing this module (and starting ``lmfeed``) stays fast; install it with
``pip install 'lmfeed[plot]'``.

The numbers behind the pictures are plain functions, tested on their own: :func:`cosine_similarity_matrix`,
:func:`pca_2d`, :func:`token_counts`, :func:`document_lengths`.

Example:
    >>> paths = write_embedding_plots("pictures", embed_dim=64, num_positions=128, seed=123)  # doctest: +SKIP
    >>> [p.name for p in paths]  # doctest: +SKIP
    ['positional-embeddings.png', 'position-similarity.png', 'token-embeddings-pca.png']
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lmfeed._files import written_whole

if TYPE_CHECKING:
    import tiktoken
    import torch

    from lmfeed.store.format import TokenStore

__all__ = [
    "COMMON_WORDS",
    "DPI",
    "FIGSIZE",
    "cosine_similarity_matrix",
    "document_lengths",
    "pca_2d",
    "plot_batch_embeddings",
    "plot_document_lengths",
    "plot_position_similarity",
    "plot_positional_embeddings",
    "plot_token_embeddings_pca",
    "plot_top_tokens",
    "token_counts",
    "word_token_ids",
    "write_embedding_plots",
    "write_store_plots",
]

logger = logging.getLogger(__name__)

FIGSIZE = (8.0, 5.0)  # inches; at DPI 100 every picture is 800 x 500 pixels
DPI = 100

# Words that are one GPT-2 token each with a leading space, in groups that a trained model pulls together.
COMMON_WORDS: dict[str, tuple[str, ...]] = {
    "people": ("king", "queen", "man", "woman", "boy", "girl", "prince", "princess", "father", "mother"),
    "numbers": ("one", "two", "three", "four", "five", "six", "seven", "eight"),
    "colours": ("red", "green", "blue", "black", "white", "yellow"),
    "animals": ("cat", "dog", "horse", "bird", "fish", "cow"),
    "function words": ("the", "of", "and", "to", "in", "is", "that", "it", "for", "on"),
}

_MAX_DRAWN = 1024  # positions or dimensions in one picture: more than its pixels already, and bounded memory
_DIVERGING = "RdBu_r"  # blue negative, white 0, red positive


# ---- the numbers behind the pictures ----------------------------------------------------------------------------

def _as_array(t: Any) -> np.ndarray:
    """A tensor or array as float64 numpy (tensors detached and moved to the CPU)."""
    return np.asarray(t.detach().cpu() if hasattr(t, "detach") else t, dtype=np.float64)


def cosine_similarity_matrix(table: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(T, D)`` vectors -> ``(T, T)`` float64 cosine similarities; entry ``[i, j]`` compares rows i and j.

    A zero row has similarity 0 with everything (itself included) rather than NaN.
    """
    x = _as_array(table)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    return unit @ unit.T


def pca_2d(points: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project ``(N, D)`` points onto their two principal components (SVD of the centred points, no sklearn).

    Returns:
        ``(coords, explained)``: coords ``(N, 2)`` float64; explained ``(2,)``, the fraction of the total
        variance each component carries. The sign of each component is fixed so that its largest loading is
        positive, which makes the picture the same on every run.
    """
    x = _as_array(points)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"pca_2d needs (N, D) points with N >= 2 and D >= 2, but got shape {x.shape}.")
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)  # vt (min(N, D), D): the principal directions
    components = vt[:2]
    components = components * np.sign(components[np.arange(2), np.abs(components).argmax(axis=1)])[:, None]
    variance = s**2
    explained = variance[:2] / variance.sum() if variance.sum() > 0 else np.zeros(2)
    return centred @ components.T, explained


def word_token_ids(enc: tiktoken.Encoding, words: Sequence[str]) -> list[int]:
    """The GPT-2 id of each word as it appears inside a sentence (with a leading space: ``"king"`` -> ``" king"``).

    Raises:
        ValueError: a word that is not one token (the message gives its pieces and suggests another word).
    """
    ids = []
    for word in words:
        pieces = enc.encode_ordinary(" " + word.strip())
        if len(pieces) != 1:
            raise ValueError(
                f"{word!r} is {len(pieces)} GPT-2 tokens ({pieces}), not one; each point is one token's row. "
                "Choose common single-token words (e.g. king, queen, red, one)."
            )
        ids.append(pieces[0])
    return ids


def token_counts(tokens: np.ndarray, vocab_size: int, *, chunk: int = 1 << 24) -> np.ndarray:
    """How often each id occurs: ``(vocab_size,)`` int64, counted in chunks so a memory-mapped store stays paged out."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for start in range(0, len(tokens), chunk):
        counts += np.bincount(np.asarray(tokens[start:start + chunk]), minlength=vocab_size)[:vocab_size]
    return counts


def document_lengths(store: TokenStore) -> np.ndarray:
    """``(num_documents,)`` int64: each document's length in tokens, separators excluded."""
    return np.asarray(store.doc_ends, dtype=np.int64) - np.asarray(store.doc_starts, dtype=np.int64)


# ---- figures ----------------------------------------------------------------------------------------------------

def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ImportError("Pictures need matplotlib: pip install 'lmfeed[plot]'") from None
    matplotlib.use("Agg")  # no display, no GUI toolkit: PNG files only
    import matplotlib.pyplot as plt

    return plt


def _figure(plt: Any, ncols: int = 1, **kwargs: Any) -> tuple[Any, Any]:
    return plt.subplots(1, ncols, figsize=FIGSIZE, dpi=DPI, layout="constrained", **kwargs)


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    """Write the figure under a temporary name beside ``path``, then rename it into place."""
    import matplotlib.pyplot as plt

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with written_whole(target) as f:
            fig.savefig(f, format="png", dpi=DPI)  # no bbox_inches="tight": the pixel size stays FIGSIZE * DPI
    finally:
        plt.close(fig)
    logger.info("wrote %s", target)
    return target


def plot_positional_embeddings(learned: Any, sinusoidal: Any, path: str | os.PathLike[str]) -> Path:
    """Two heat maps, position (rows) x dimension (columns): a learned table at init beside the sinusoidal one.

    Args:
        learned, sinusoidal: ``(T, D)`` tables (tensors or arrays), e.g. 128 positions x 64 dimensions.
        path: the PNG to write (800 x 500 pixels).

    Returns:
        ``path`` as a ``Path``, once the file is whole (every ``plot_*`` function returns the path it wrote).
    """
    plt = _pyplot()
    fig, axes = _figure(plt, 2)
    for ax, (name, table) in zip(axes, (("learned (random at init)", learned), ("sinusoidal (fixed)", sinusoidal)),
                                 strict=True):
        values = _as_array(table)
        limit = float(np.abs(values).max()) or 1.0
        # antialiased: a table wider than the panel is averaged down, not sampled into moire stripes
        image = ax.imshow(values, aspect="auto", cmap=_DIVERGING, vmin=-limit, vmax=limit, interpolation="antialiased")
        ax.set_title(name)
        ax.set_xlabel("embedding dimension (index)")
        fig.colorbar(image, ax=ax, shrink=0.9, label="value")
    axes[0].set_ylabel("position in the window (token index)")
    t, d = _as_array(learned).shape
    fig.suptitle(f"Absolute positional embeddings: {t} positions x {d} dimensions")
    return _save(fig, path)


def plot_position_similarity(learned: Any, sinusoidal: Any, path: str | os.PathLike[str]) -> Path:
    """Cosine similarity between the vectors of every two positions, learned (at init) and sinusoidal.

    A random table is similar only to itself (a bright diagonal on noise); the sinusoidal one is banded: nearby
    positions are similar, and the similarity depends only on the distance ``i - j``.
    """
    plt = _pyplot()
    fig, axes = _figure(plt, 2)
    for ax, (name, table) in zip(axes, (("learned (random at init)", learned), ("sinusoidal (fixed)", sinusoidal)),
                                 strict=True):
        sim = cosine_similarity_matrix(_as_array(table))
        image = ax.imshow(sim, cmap=_DIVERGING, vmin=-1.0, vmax=1.0, interpolation="nearest")
        ax.set_title(name)
        ax.set_xlabel("position j (token index)")
    axes[0].set_ylabel("position i (token index)")
    fig.colorbar(image, ax=axes, shrink=0.8, label="cosine similarity")
    fig.suptitle("Similarity between positions: cos(PE[i], PE[j])")
    return _save(fig, path)


def plot_token_embeddings_pca(
    vectors: Any,
    labels: Sequence[str],
    path: str | os.PathLike[str],
    *,
    groups: Sequence[str] | None = None,
    title: str = "Token embeddings projected to 2-D (PCA)",
) -> Path:
    """Each token's embedding as a labelled point on the first two principal components.

    Args:
        vectors: ``(N, D)`` rows of the token embedding table.
        labels: N texts, one per point (e.g. the token's piece).
        path: the PNG to write (800 x 500 pixels).
        groups: N group names; each group gets a colour and a legend entry.
        title: the figure title (say whether the table is trained or random at init).
    """
    plt = _pyplot()
    coords, explained = pca_2d(vectors)
    if len(labels) != len(coords):
        raise ValueError(f"{len(labels)} labels for {len(coords)} points; pass one label per row.")
    fig, ax = _figure(plt)
    names = list(dict.fromkeys(groups)) if groups is not None else [None]
    colours = plt.get_cmap("tab10")
    for g, name in enumerate(names):
        # name is None only without groups
        mask = np.ones(len(coords), bool) if name is None or groups is None else np.array([x == name for x in groups])
        ax.scatter(coords[mask, 0], coords[mask, 1], s=18, color=colours(g), label=name)
        for (x, y), text in zip(coords[mask], np.asarray(labels, dtype=object)[mask], strict=True):
            ax.annotate(text, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=8, color=colours(g))
    ax.set_xlabel(f"principal component 1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"principal component 2 ({explained[1]:.0%} of variance)")
    ax.set_title(title)
    ax.margins(0.12)
    if groups is not None:
        ax.legend(fontsize=8, loc="best", title="group", title_fontsize=8)
    return _save(fig, path)


def plot_batch_embeddings(
    inputs: Any,
    embeddings: Any,
    enc: tiktoken.Encoding,
    path: str | os.PathLike[str],
    *,
    max_samples: int = 4,
    max_dims: int = 64,
) -> Path:
    """The seed's batch drawing as a picture: each token of each sample a row, pointing to its vector.

    Args:
        inputs: ``(B, T)`` token ids.
        embeddings: ``(B, T, D)`` their input embeddings.
        enc: decodes the ids for the row labels.
        path: the PNG to write (800 x 500 pixels).
        max_samples, max_dims: show the first samples and dimensions only (defaults 4 and 64), so labels stay legible.
    """
    from lmfeed.viz.table import visible_piece

    plt = _pyplot()
    ids = np.asarray(inputs)
    values = _as_array(embeddings)
    b, t, d = values.shape
    shown_b, shown_d = min(b, max_samples), min(d, max_dims)
    rows = values[:shown_b, :, :shown_d].reshape(shown_b * t, shown_d)
    fig, ax = _figure(plt)
    limit = float(np.abs(rows).max()) or 1.0
    image = ax.imshow(rows, aspect="auto", cmap=_DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
    labels = [f"sample {i}, pos {j}: '{visible_piece(enc, ids[i, j], max_chars=12, for_figures=True)}'"
              for i in range(shown_b) for j in range(t)]
    ax.set_yticks(range(len(labels)), labels, fontsize=7 if len(labels) > 24 else 8)
    for i in range(1, shown_b):
        ax.axhline(i * t - 0.5, color="black", linewidth=1.0)
    ax.set_xlabel(f"embedding dimension (index; first {shown_d} of {d})")
    fig.colorbar(image, ax=ax, label="value")
    more = f", first {shown_b} of {b} samples" if shown_b < b else ""
    ax.set_title(f"A batch of input embeddings ({b}, {t}, {d}): one row per token{more}")
    return _save(fig, path)


def plot_document_lengths(lengths: np.ndarray, path: str | os.PathLike[str], *, name: str = "the store") -> Path:
    """Histogram of document lengths in tokens, on logarithmic bins, with the median and mean marked."""
    plt = _pyplot()
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size == 0:
        raise ValueError(f"{name} has no documents to plot.")
    fig, ax = _figure(plt)
    positive = np.maximum(lengths, 1)  # an empty document is drawn in the first bin (log axis has no 0)
    low, high = positive.min(), positive.max()
    bins = np.logspace(np.log10(low), np.log10(high) + 1e-9, num=min(50, max(5, lengths.size // 2)) + 1)
    ax.hist(positive, bins=bins, color="tab:blue", edgecolor="white", linewidth=0.5)
    ax.set_xscale("log")
    median, mean = float(np.median(lengths)), float(lengths.mean())
    ax.axvline(max(median, 1), color="tab:orange", linestyle="--", label=f"median {median:,.0f} tokens")
    ax.axvline(max(mean, 1), color="tab:red", linestyle=":", label=f"mean {mean:,.0f} tokens")
    ax.set_xlabel("document length (tokens, log scale)")
    ax.set_ylabel("documents (count)")
    ax.set_title(f"Document lengths in {name}: {lengths.size:,} documents, {int(lengths.sum()):,} tokens")
    ax.legend()
    return _save(fig, path)


def plot_top_tokens(counts: np.ndarray, enc: tiktoken.Encoding, path: str | os.PathLike[str], *, top: int = 20,
                    exclude: Sequence[int] = (), name: str = "the store") -> Path:
    """Horizontal bars: the ``top`` most frequent tokens (default 20), labelled by id and visible piece."""
    from lmfeed.viz.table import visible_piece

    plt = _pyplot()
    counts = np.asarray(counts, dtype=np.int64).copy()
    total = int(counts.sum())
    counts[list(exclude)] = 0
    order = np.argsort(-counts, kind="stable")[:top]
    order = order[counts[order] > 0]
    fig, ax = _figure(plt)
    # quoted, in a monospace font, so that a lone space '·' or a newline '↵' reads as a token of its own
    quoted = [f"'{visible_piece(enc, int(i), max_chars=10, for_figures=True)}'" for i in order]
    pad = max(map(len, quoted), default=0)
    labels = [f"{q.ljust(pad)} {int(i):>5}" for q, i in zip(quoted, order, strict=True)]
    share = counts[order] / max(total, 1) * 100
    bars = ax.barh(range(len(order)), share, color="tab:blue")
    ax.bar_label(bars, [f"{int(c):,}" for c in counts[order]], padding=3, fontsize=7)
    ax.set_yticks(range(len(order)), labels, fontsize=8, family="monospace")
    ax.invert_yaxis()  # most frequent at the top
    ax.set_xlim(0, float(share.max()) * 1.12 if len(share) else 1.0)  # room for the count labels
    ax.set_xlabel("share of all tokens (%); the number at each bar is its count")
    ax.set_ylabel("token: 'piece' id   (· space, ↵ newline)")
    ax.set_title(f"The {len(order)} most frequent tokens in {name} ({total:,} tokens)")
    return _save(fig, path)


# ---- writers used by the CLI ------------------------------------------------------------------------------------

def write_embedding_plots(
    out_dir: str | os.PathLike[str],
    *,
    embed_dim: int = 64,
    num_positions: int = 128,
    seed: int = 123,
    words: Sequence[str] | None = None,
    token_table: Any = None,
) -> list[Path]:
    """Write the position and token-embedding pictures into ``out_dir`` and return their paths.

    Files: ``positional-embeddings.png`` (heat maps), ``position-similarity.png`` (cosine similarity),
    ``token-embeddings-pca.png`` (the words' rows, PCA to 2-D).

    Args:
        out_dir: created if missing.
        embed_dim: D of the tables drawn (default 64: every column stays visible).
        num_positions: positions drawn (default 128).
        seed: ``torch.manual_seed`` for the random tables (default 123, the seed's). Drawn inside a forked RNG, so
            the caller's random state is untouched.
        words: the words to place (default: :data:`COMMON_WORDS`, 40 words in 5 groups).
        token_table: a ``(vocab_size, D)`` token embedding weight to use instead of a fresh random one (e.g. the
            one ``lmfeed demo`` just built); it is described as random at init.

    Raises:
        ValueError: bad sizes, or a word that is not a single GPT-2 token.
    """
    import torch

    from lmfeed._validate import as_int, as_seed
    from lmfeed.embeddings import LearnedPositionalEmbedding, SinusoidalPositionalEmbedding, TokenEmbedding
    from lmfeed.text.tokenizer import get_tokenizer

    fit = f"A picture is {FIGSIZE[0] * DPI:.0f} pixels wide: more rows or columns would only blur. Draw fewer"
    # too small and too large need different fixes: the hint for one must not be given for the other
    embed_dim = as_int("embed_dim", embed_dim, minimum=2,
                       fix="The pictures need at least 2 dimensions (the PCA is 2-D): use --embed-dim 2 or more.")
    embed_dim = as_int("embed_dim", embed_dim, maximum=_MAX_DRAWN, fix=fit + " (--embed-dim).")
    num_positions = as_int("num_positions", num_positions, minimum=2,
                           fix="A similarity picture needs at least 2 positions: use --positions 2 or more.")
    num_positions = as_int("num_positions", num_positions, maximum=_MAX_DRAWN, fix=fit + " (--positions).")
    seed = as_seed("seed", seed)
    enc = get_tokenizer("gpt2")
    if words is None:
        groups = [g for g, ws in COMMON_WORDS.items() for _ in ws]
        words = [w for ws in COMMON_WORDS.values() for w in ws]
    else:
        groups = None
        words = [w for w in words if w.strip()]
        if len(words) < 2:
            raise ValueError(f"A 2-D projection needs at least 2 words, but got {len(words)}. "
                             "Pass e.g. king,queen,man.")
    ids = word_token_ids(enc, words)
    out = Path(out_dir)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        if token_table is None:
            token_table = TokenEmbedding(enc.n_vocab, embed_dim).weight  # the seed's order: token table first
        learned = LearnedPositionalEmbedding(num_positions, embed_dim)(torch.arange(num_positions))
    sinusoidal = SinusoidalPositionalEmbedding(embed_dim)(torch.arange(num_positions))
    rows = token_table[torch.tensor(ids)].detach()
    d = rows.shape[1]
    return [
        plot_positional_embeddings(learned, sinusoidal, out / "positional-embeddings.png"),
        plot_position_similarity(learned, sinusoidal, out / "position-similarity.png"),
        plot_token_embeddings_pca(
            rows, [enc.decode([i]).strip() for i in ids], out / "token-embeddings-pca.png", groups=groups,
            title=f"{len(ids)} token embeddings (D = {d}), PCA to 2-D: random at init, so no groups yet",
        ),
    ]


def write_store_plots(store: TokenStore, out_dir: str | os.PathLike[str], *, top: int = 20) -> list[Path]:
    """Write ``document-lengths.png`` and ``top-tokens.png`` for a token store and return their paths.

    End-of-text separators are left out of the token counts (they are between documents, not in them).
    """
    from lmfeed._validate import as_int

    top = as_int("top", top)
    enc = store.tokenizer
    out = Path(out_dir)
    name = store.path.name or str(store.path)
    counts = token_counts(store.tokens, enc.n_vocab)
    if store.eot_id is not None:
        counts[store.eot_id] = 0
    return [
        plot_document_lengths(document_lengths(store), out / "document-lengths.png", name=name),
        plot_top_tokens(counts, enc, out / "top-tokens.png", top=top, name=name),
    ]
