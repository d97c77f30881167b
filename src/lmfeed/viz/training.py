"""Pictures of a training run, redrawn at each evaluation: the embeddings before and after, and the loss.

Files written into the run directory (PNG, 800 x 500 pixels or 1000 x 800 for the 2 x 2 position figure):

- ``loss.png``: training and validation loss against tokens seen, with the unigram baseline as a line;
- ``token-embeddings.png``: the chosen words' rows of the token table, PCA to 2-D, at step 0 and now
  (the view ``lmfeed demo`` draws), and ``neighbours.md``: each word's nearest tokens by cosine, before and after;
- ``position-embeddings.png`` (learned tables only): the position table and its position-by-position cosine
  similarity at step 0 and now, titled with the position-structure figure
  (:func:`lmfeed.model.baseline.position_structure`).

Words are chosen from the run's own vocabulary: groups that a model of the default corpus (the Python reference)
can learn (keywords, built-in types, number words, English function words), keeping those that are one token and
occur in the training split; without enough of them, the most frequent word tokens.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lmfeed.viz.plots import DPI, FIGSIZE, _as_array, _pyplot, _save, cosine_similarity_matrix, pca_2d

__all__ = ["TRAINING_WORDS", "choose_words", "length_comparison_table", "nearest_neighbours", "plot_length_comparison",
           "write_training_plots"]

TRAINING_WORDS: dict[str, tuple[str, ...]] = {
    "keywords": ("if", "else", "for", "while", "return", "def", "class", "import", "try", "with", "yield", "lambda"),
    "types": ("int", "str", "list", "dict", "tuple", "float", "bool", "set", "bytes", "object"),
    "numbers": ("one", "two", "three", "four", "zero", "first", "second", "single"),
    "function words": ("the", "of", "and", "to", "in", "is", "that", "it", "be", "an"),
}
_PER_GROUP = 8
_MIN_COUNT = 3


def _piece(enc: Any, token: int) -> str:
    text = enc.decode([int(token)])
    shown = text.strip() or repr(text)
    return shown if shown.isprintable() else repr(text)


def choose_words(enc: Any, counts: np.ndarray) -> tuple[list[int], list[str], list[str]]:
    """``(ids, labels, groups)`` of up to 8 words per group that are one token (after a space) and occur in training.

    Falls back to the 24 most frequent alphabetic word tokens when fewer than 8 words qualify.
    """
    ids: list[int] = []
    labels: list[str] = []
    groups: list[str] = []
    for group, words in TRAINING_WORDS.items():
        kept = 0
        for word in words:
            pieces = enc.encode_ordinary(" " + word)
            if len(pieces) == 1 and counts[pieces[0]] >= _MIN_COUNT and kept < _PER_GROUP:
                ids.append(pieces[0])
                labels.append(word)
                groups.append(group)
                kept += 1
    if len(ids) >= 8:
        return ids, labels, groups
    ids, labels, groups = [], [], []
    for token in np.argsort(-counts, kind="stable"):
        text = enc.decode([int(token)])
        if text.startswith(" ") and text[1:].isalpha():
            ids.append(int(token))
            labels.append(text[1:])
            groups.append("most frequent")
            if len(ids) == 24:
                break
    return ids, labels, groups


def nearest_neighbours(table: Any, query: Sequence[int], candidates: np.ndarray, *, k: int = 5) -> list[list[int]]:
    """For each query id, the ``k`` candidate ids whose rows of ``table`` have the highest cosine (itself excluded)."""
    x = _as_array(table)
    rows = x[np.asarray(candidates)]
    rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    out = []
    for q in query:
        v = x[q] / max(np.linalg.norm(x[q]), 1e-12)
        order = np.argsort(-(rows @ v), kind="stable")
        out.append([int(candidates[i]) for i in order if candidates[i] != q][:k])
    return out


def _write_text(path: Path, text: str) -> Path:
    from lmfeed.model.train import _write_whole  # the run directory's one atomic text write

    _write_whole(path, text)
    return path


def _loss_plot(metrics: list[dict[str, Any]], baseline: float, path: Path, step: int) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    train = [(r["tokens"], r["train_loss"]) for r in metrics if r.get("train_loss") is not None]
    val = [(r["tokens"], r["val_loss"]) for r in metrics if r.get("val_loss") is not None]
    if train:
        ax.plot(*zip(*train, strict=True), color="tab:blue", lw=1.2, label="training loss (mean since last log)")
    if val:
        ax.plot(*zip(*val, strict=True), "o-", color="tab:orange", ms=4, label="validation loss")
    ax.axhline(baseline, color="tab:gray", ls="--", lw=1.2, label=f"unigram baseline {baseline:.2f}")
    last = val[-1][1] if val else None
    gap = f": validation {last:.3f}, {baseline - last:+.3f} nats below the baseline" if last is not None else ""
    ax.set_title(f"Loss at step {step:,}{gap}")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("cross-entropy (nats per token)")
    lows = [v for _, v in train + val] + [baseline]
    ax.set_ylim(min(lows) - 0.3, max(baseline + 1.5, min(max(v for _, v in train + val), baseline + 4.0)))
    ax.legend(loc="upper right", fontsize=9)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _pca_panels(before: np.ndarray, after: np.ndarray, labels: list[str], groups: list[str], path: Path,
                step: int) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=FIGSIZE, dpi=DPI, layout="constrained")
    names = list(dict.fromkeys(groups))
    colours = plt.get_cmap("tab10")
    for ax, rows, title in ((axes[0], before, "step 0 (random)"), (axes[1], after, f"step {step:,} (trained)")):
        coords, explained = pca_2d(rows)
        for g, name in enumerate(names):
            mask = np.array([x == name for x in groups])
            ax.scatter(coords[mask, 0], coords[mask, 1], s=14, color=colours(g), label=name)
            for (x, y), text in zip(coords[mask], np.asarray(labels, dtype=object)[mask], strict=True):
                ax.annotate(text, (x, y), xytext=(2, 2), textcoords="offset points", fontsize=7, color=colours(g))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f"PC 1 ({explained[0]:.0%} of variance)", fontsize=8)
        ax.set_ylabel(f"PC 2 ({explained[1]:.0%})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.margins(0.1)
    axes[1].legend(fontsize=7, loc="best")
    fig.suptitle(f"{len(labels)} token embeddings, PCA to 2-D: before and after training")
    return _save(fig, path)


def _position_panels(before: np.ndarray, after: np.ndarray, scores: tuple[float, float], path: Path,
                     step: int) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10.0, 8.0), dpi=DPI, layout="constrained")
    for col, (table, name, score) in enumerate(((before, "step 0", scores[0]), (after, f"step {step:,}", scores[1]))):
        limit = float(np.abs(table).max()) or 1.0
        image = axes[0, col].imshow(table, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit,
                                    interpolation="antialiased")
        axes[0, col].set_title(f"position table, {name}", fontsize=10)
        axes[0, col].set_xlabel("embedding dimension", fontsize=8)
        axes[0, col].set_ylabel("position", fontsize=8)
        fig.colorbar(image, ax=axes[0, col], shrink=0.8)
        sim = cosine_similarity_matrix(table - table.mean(axis=0))
        image = axes[1, col].imshow(sim, cmap="RdBu_r", vmin=-1.0, vmax=1.0, interpolation="nearest")
        axes[1, col].set_title(f"cosine similarity (centred), {name}: structure {score:+.3f}", fontsize=10)
        axes[1, col].set_xlabel("position j", fontsize=8)
        axes[1, col].set_ylabel("position i", fontsize=8)
        fig.colorbar(image, ax=axes[1, col], shrink=0.8)
    fig.suptitle("Learned positions: structure = mean cos of positions 1 apart - of positions >= T/4 apart")
    return _save(fig, path)


def write_training_plots(
    run_dir: str | os.PathLike[str],
    *,
    step: int,
    tokenizer: Any,
    metrics: list[dict[str, Any]],
    baseline: float,
    token_before: Any,
    token_after: Any,
    train_counts: np.ndarray,
    position_before: Any = None,
    position_after: Any = None,
) -> list[Path]:
    """Draw (or redraw) a run's pictures and its neighbour table; returns the paths written.

    Args:
        run_dir: the run directory (it exists).
        step: the step the "after" tables are from.
        tokenizer: the run's tokenizer (``encode_ordinary``, ``decode``).
        metrics: the run's metrics records so far (``tokens``, ``train_loss``, ``val_loss``).
        baseline: the unigram cross-entropy of the validation split.
        token_before, token_after: ``(V, D)`` token tables at step 0 and now.
        train_counts: ``(V,)`` token counts of the training split (to choose words and neighbour candidates).
        position_before, position_after: ``(T, D)`` learned position tables, or None for other schemes.
    """
    from lmfeed.model.baseline import position_structure

    out = Path(run_dir)
    before, after = _as_array(token_before), _as_array(token_after)
    paths = [_loss_plot(metrics, baseline, out / "loss.png", step)]
    ids, labels, groups = choose_words(tokenizer, train_counts)
    if len(ids) >= 2:
        paths.append(_pca_panels(before[ids], after[ids], labels, groups, out / "token-embeddings.png", step))
        # neighbours among tokens seen at least 5 times: rare tokens barely move from their random start
        candidates = np.flatnonzero(train_counts >= 5)
        shown = [i for g in dict.fromkeys(groups) for i in [j for j, x in enumerate(groups) if x == g][:3]]
        near_before = nearest_neighbours(before, [ids[i] for i in shown], candidates)
        near_after = nearest_neighbours(after, [ids[i] for i in shown], candidates)
        lines = [f"# Nearest tokens by cosine similarity of the token embeddings: step 0 and step {step:,}", "",
                 f"Candidates: the {len(candidates):,} tokens seen at least 5 times in the training split.", "",
                 "| word | step 0 (random) | after training |", "| --- | --- | --- |"]
        for i, b, a in zip(shown, near_before, near_after, strict=True):
            cells = [", ".join(_piece(tokenizer, t).replace("|", "\\|") for t in ts) for ts in (b, a)]
            lines.append(f"| {labels[i]} | {cells[0]} | {cells[1]} |")
        paths.append(_write_text(out / "neighbours.md", "\n".join(lines) + "\n"))
    if position_before is not None and position_after is not None:
        pb, pa = _as_array(position_before), _as_array(position_after)
        scores = (position_structure(pb), position_structure(pa))
        paths.append(_position_panels(pb, pa, scores, out / "position-embeddings.png", step))
    return paths


def plot_length_comparison(results: Sequence[Any], path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Validation loss against evaluation length, one line per position scheme (Press et al. 2022, Figure 1).

    Args:
        results: :class:`lmfeed.model.compare.SchemeResult` rows (``scheme``, ``train_length``, ``losses``).
        path: the PNG to write (800 x 500 pixels).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    markers = "osD^vP*Xh<>"
    styles = ["-", "--", "-.", ":"]
    for i, r in enumerate(results):
        points = [(n, v) for n, v in sorted(r.losses.items()) if v is not None]
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        label = r.scheme + (" (no positions past T)" if len(points) == 1 else "")
        ax.plot(xs, ys, marker=markers[i % len(markers)], ls=styles[i % len(styles)], ms=5, lw=1.4, label=label)
    t = results[0].train_length
    ax.axvline(t, color="tab:gray", lw=1, ls=":")
    ax.annotate(f"trained at T = {t}", (t, 1), xycoords=("data", "axes fraction"), xytext=(4, -14),
                textcoords="offset points", fontsize=8, color="tab:gray")
    ax.set_xscale("log", base=2)
    lengths = sorted({n for r in results for n in r.losses})
    ax.set_xticks(lengths, [str(n) for n in lengths])
    ax.set_xlabel("evaluation length L (tokens per window)")
    ax.set_ylabel("validation loss (nats per token)")
    ax.set_title(title or "Train short, test long: each scheme trained at T, evaluated at T .. 8T")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return _save(fig, path)


def length_comparison_table(results: Sequence[Any]) -> str:
    """The comparison as a Markdown table: one row per scheme, one column per evaluation length."""
    lengths = sorted({n for r in results for n in r.losses})
    t = results[0].train_length
    head = "| scheme | " + " | ".join(f"L = {n}" + (" (T)" if n == t else f" ({n // t}T)") for n in lengths)
    lines = [head + " | train loss |", "| --- |" + " ---: |" * (len(lengths) + 1)]
    for r in results:
        cells = [f"{r.losses[n]:.3f}" if r.losses.get(n) is not None else "n/a" for n in lengths]
        train = f"{r.train_loss:.3f}" if r.train_loss is not None else ""
        lines.append(f"| {r.scheme} | " + " | ".join(cells) + f" | {train} |")
    if any(v is None for r in results for v in r.losses.values()):
        lines += ["", "n/a: a learned table has one vector per position 0 .. T-1, so it cannot run past T."]
    return "\n".join(lines) + "\n"
