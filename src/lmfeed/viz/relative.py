"""Pictures of the learned relative schemes: BERT's distance table, Transformer-XL's u, v and term d.

``relative-positions.png`` (800 x 500 pixels for BERT's table, 1000 x 800 for Transformer-XL), drawn from
:func:`lmfeed.embeddings.relative_tables` at step 0 and now (``lmfeed train``) or once (``lmfeed demo``):

- ``relative_key`` / ``relative_key_query``: the table ``r_d``, distance (rows, ``-(max_distance-1)`` at the top)
  by head dimension, before and after training. A causal model reads only ``d >= 0`` (and ``d < T``): the other
  rows keep their random start, so the trained band shows where attention looked.
- ``xl``: term d, ``v . W_R r_d``, each head's learned preference for a distance whatever the content (a line per
  head), and the bias vectors ``u`` (terms c: a preference for some keys) and ``v``, heads by dimension.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from lmfeed.viz.plots import DPI, FIGSIZE, _as_array, _pyplot, _save

__all__ = ["plot_relative_positions"]


def plot_relative_positions(before: dict[str, Any], after: dict[str, Any] | None, path: str | os.PathLike[str], *,
                            step: int | None = None, context_length: int | None = None) -> Path:
    """Draw a relative scheme's learned tensors at step 0 and, if given, now.

    Args:
        before: :func:`lmfeed.embeddings.relative_tables` of the model at step 0 (``"relative_key"``, or
            ``"xl_u"``, ``"xl_v"``, ``"xl_d"``).
        after: the same now, or None for one column (a fresh model).
        path: the PNG to write (written whole, then renamed into place).
        step: the step of ``after``, for its title.
        context_length: BERT's table is drawn for distances ``-(context_length-1) .. context_length-1`` only (the
            ones a window can hold); default: every row.

    Returns:
        The path written.

    Raises:
        ValueError: ``before`` holds neither scheme's tensors.
    """
    columns = [(before, "step 0" if after is not None else "at initialisation")]
    if after is not None:
        columns.append((after, f"step {step:,}" if step is not None else "now"))
    if "relative_key" in before:
        return _key_table(columns, path, context_length)
    if {"xl_u", "xl_v", "xl_d"} <= set(before):
        return _xl_terms(columns, path)
    raise ValueError(f"before holds {sorted(before)}, not a relative scheme's tensors. Pass "
                     "lmfeed.embeddings.relative_tables(model, context_length) of a model with positional="
                     "'relative_key', 'relative_key_query' or 'xl'.")


def _key_table(columns: list[tuple[dict[str, Any], str]], path: str | os.PathLike[str],
               context_length: int | None) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(columns), figsize=FIGSIZE, dpi=DPI, layout="constrained", squeeze=False)
    full = (_as_array(columns[0][0]["relative_key"]).shape[0] - 1) // 2  # max_distance - 1
    reach = full if context_length is None else min(full, max(1, context_length - 1))
    rows = slice(full - reach, full + reach + 1)  # distances -reach .. reach
    limit = max(float(np.abs(_as_array(t["relative_key"])[rows]).max()) for t, _ in columns) or 1.0
    for ax, (tables, name) in zip(axes[0], columns, strict=True):
        table = _as_array(tables["relative_key"])[rows]  # (2 * reach + 1, head_dim)
        image = ax.imshow(table, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="antialiased",
                          extent=(-0.5, table.shape[1] - 0.5, reach + 0.5, -reach - 0.5))
        ax.axhline(-0.5, color="black", linewidth=0.6)
        ax.set_title(f"distance table r_d, {name}", fontsize=10)
        ax.set_xlabel("head dimension", fontsize=8)
        ax.set_ylabel("distance d = i - j (clipped at +-max_distance-1)", fontsize=8)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle("BERT's relative positions (Shaw et al. 2018): one learned vector per distance; "
                 "a causal model reads d >= 0 only", fontsize=10)
    return _save(fig, path)


def _xl_terms(columns: list[tuple[dict[str, Any], str]], path: str | os.PathLike[str]) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(2, len(columns), figsize=(10.0, 8.0), dpi=DPI, layout="constrained", squeeze=False)
    term_limit = max(float(np.abs(_as_array(t["xl_d"])).max()) for t, _ in columns) * 1.05 or 1.0
    bias_limit = max(float(np.abs(np.concatenate([_as_array(t["xl_u"]), _as_array(t["xl_v"])])).max())
                     for t, _ in columns) or 1.0
    for col, (tables, name) in enumerate(columns):
        term_d = _as_array(tables["xl_d"])  # (H, T)
        for head, curve in enumerate(term_d):
            axes[0, col].plot(np.arange(len(curve)), curve, linewidth=1.0, label=f"head {head}")
        axes[0, col].set_ylim(-term_limit, term_limit)  # the same scale before and after
        axes[0, col].set_title(f"term d = v . W_R r_d, {name}", fontsize=10)
        axes[0, col].set_xlabel("distance d = i - j", fontsize=8)
        axes[0, col].set_ylabel("added to the logit (before 1/sqrt(head_dim))", fontsize=8)
        axes[0, col].legend(fontsize=7, loc="best")
        heads = term_d.shape[0]
        both = np.concatenate([_as_array(tables["xl_u"]), _as_array(tables["xl_v"])])  # (2H, head_dim)
        image = axes[1, col].imshow(both, aspect="auto", cmap="RdBu_r", vmin=-bias_limit, vmax=bias_limit,
                                    interpolation="nearest")
        axes[1, col].set_yticks(range(2 * heads), [f"u{h}" for h in range(heads)] + [f"v{h}" for h in range(heads)],
                                fontsize=7)
        axes[1, col].set_title(f"u (term c: u . k_j) and v, per head, {name}", fontsize=10)
        axes[1, col].set_xlabel("head dimension", fontsize=8)
        fig.colorbar(image, ax=axes[1, col], shrink=0.8)
    fig.suptitle("Transformer-XL (Dai et al. 2019): A_ij = q.k + q.W_R r_(i-j) + u.k + v.W_R r_(i-j)", fontsize=10)
    return _save(fig, path)
