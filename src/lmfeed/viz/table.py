"""Batches drawn as text: each sample a block, each token its id over its decoded piece, targets under inputs.

The seed draws a batch as samples of tokens; this draws the real one, aligned so that the shift by one shows::

    sample 0     pos 0     pos 1     pos 2      pos 3
      input         40       367      2885       1464
                     I      ·HAD   ·always   ·thought
      target       367      2885      1464       1807
                  ·HAD   ·always  ·thought      ·Jack

Whitespace is made visible (``·`` space, ``↵`` newline, ``→`` tab); a piece that is part of a multi-byte character
shows its bytes as ``\\xNN``. Wide batches wrap into blocks that fit the terminal width, or are cut with a note.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from lmfeed.text.tokenizer import Tokenizer

__all__ = ["format_batch", "visible_piece"]

# Whitespace as dots and arrows; every other control character never raw (it could move the cursor or recolour the
# terminal): on a terminal as its Unicode control picture (NUL -> ␀, ESC -> ␛, DEL -> ␡), in pictures, whose font has
# no control pictures, as its escape (\x00); C1 controls always as escapes.
_ESCAPED = {chr(c): f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_WHITESPACE = {" ": "·", "\n": "↵", "\t": "→"}
_VISIBLE = str.maketrans({**_ESCAPED, **{chr(c): chr(0x2400 + c) for c in range(0x20)}, "\x7f": "\u2421",
                          **_WHITESPACE, "\r": "␍"})
_VISIBLE_IN_FIGURES = str.maketrans({**_ESCAPED, **_WHITESPACE})


def visible_piece(enc: Tokenizer, token_id: int, *, max_chars: int = 16, for_figures: bool = False) -> str:
    """The text of one token with whitespace and control characters made visible, shortened to ``max_chars``.

    ``for_figures`` writes control characters other than space, newline and tab as escapes (``\x00``), which every
    font can draw, instead of control pictures (``␀``).

    Example:
        >>> visible_piece(get_tokenizer(), 995), visible_piece(get_tokenizer(), 188)
        ('·world', '␀')
    """
    piece = enc.decode_single_token_bytes(int(token_id)).decode("utf-8", errors="backslashreplace")
    piece = piece.translate(_VISIBLE_IN_FIGURES if for_figures else _VISIBLE)
    if len(piece) > max_chars:
        piece = piece[: max_chars - 1] + "…"
    return piece


def format_batch(
    inputs: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    enc: Tokenizer,
    *,
    width: int = 80,
    max_samples: int | None = None,
    overflow: Literal["wrap", "truncate"] = "wrap",
    position_ids: Sequence[Sequence[int]] | None = None,
    padding: Sequence[Sequence[bool]] | None = None,
) -> str:
    """The batch ``(B, T)`` as text blocks no wider than ``width`` columns.

    Args:
        inputs, targets: ``(B, T)`` ids (tensors or nested lists).
        enc: the tokenizer that decodes them.
        width: terminal columns (default 80); wider batches wrap, each part headed by its positions.
        max_samples: show at most this many samples, then a line saying how many were left out.
        overflow: what to do with positions that do not fit in ``width``: ``"wrap"`` (default) continues them in
            further blocks; ``"truncate"`` shows only the first block of each sample and ends with a note saying
            how many positions were left out.
        position_ids: ``(B, T)`` positions in their documents: each column is headed ``pos p`` with them, and
            ``│`` before a document start (a position 0 after the first column).
        padding: ``(B, T)`` bool, True for padding slots: their input shows ``<pad>``. A target of -100 (not
            learned: padding, or a crossing into the next document) shows as ``-100`` over ``-``.
    """
    if overflow not in ("wrap", "truncate"):
        raise ValueError(f"Unknown overflow {overflow!r}. Choose one of: 'wrap', 'truncate'.")
    rows_in = [list(map(int, row)) for row in inputs]
    rows_out = [list(map(int, row)) for row in targets]
    rows_pos = None if position_ids is None else [list(map(int, row)) for row in position_ids]
    rows_pad = None if padding is None else [list(map(bool, row)) for row in padding]
    shown = len(rows_in) if max_samples is None else min(max_samples, len(rows_in))
    label = 10  # "  target  " column
    lines: list[str] = []
    kept: list[int] = []  # truncate: positions each shown sample kept
    for b in range(shown):
        cells = []
        for j, (x, y) in enumerate(zip(rows_in[b], rows_out[b], strict=True)):
            head = f"pos {j}"
            if rows_pos is not None:
                p = rows_pos[b][j]
                head = ("│" if p == 0 and j else "") + f"pos {p}"
            piece_in = "<pad>" if rows_pad is not None and rows_pad[b][j] else visible_piece(enc, x)
            column = [head, str(x), piece_in, str(y), visible_piece(enc, y) if y >= 0 else "-"]
            cells.append((max(map(len, column)) + 2, column))
        start = 0
        while start < len(cells):
            used, stop = label, start
            while stop < len(cells) and (stop == start or used + cells[stop][0] <= width):
                used += cells[stop][0]
                stop += 1
            part = cells[start:stop]
            heads = [f"sample {b}" if start == 0 else "", "  input", "", "  target", ""]
            for r, head in enumerate(heads):
                line = head.ljust(label) + "".join(c[r].rjust(w) for w, c in part)
                lines.append(line.rstrip()[: max(width, label + part[0][0])])
            start = stop
            if overflow == "truncate":
                kept.append(stop)
                break
        lines.append("")
    if shown < len(rows_in):
        lines.append(f"... {len(rows_in) - shown} more samples not shown")
    else:
        lines.pop()
    length = len(rows_in[0]) if rows_in else 0
    if kept and min(kept) < length:
        first = f"{min(kept)}" if min(kept) == max(kept) else f"{min(kept)} to {max(kept)}"
        lines.append(f"... cut to fit {width} columns: each sample shows its first {first} of {length} positions")
    return "\n".join(lines)
