"""The one definition of document boundaries, against a brute-force reference written here."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from lmfeed import create_dataloader
from lmfeed.loading.documents import (
    cu_seqlens,
    document_boundaries,
    document_spans,
    starts_from_index,
    starts_from_tokens,
)

SEP = 99


def stream_of(lengths: list[int], style: str) -> tuple[list[int], list[int]]:
    """Documents of ``lengths`` ordinary tokens (ids 1..9), joined in ``style``: (ids, where each document starts)."""
    ids: list[int] = []
    starts: list[int] = []
    for i, n in enumerate(lengths):
        starts.append(len(ids))
        if style == "bos":
            ids.append(SEP)
        ids += [1 + (i + j) % 9 for j in range(n)]
        if style == "eos" and i < len(lengths) - 1:
            ids.append(SEP)  # the store's layout: a separator after every document but the last
    return ids, starts


def reference(ids: list[int], window_start: int, length: int, doc_starts: list[int]) -> tuple[list[int], list[int]]:
    """Brute force: walk the window token by token; a token opens a document if it is the window's first or
    a document of the corpus begins at it."""
    docs, positions = [], []
    d, p = -1, 0
    for j in range(length):
        if j == 0 or window_start + j in doc_starts:
            d, p = d + 1, 0
        else:
            p += 1
        docs.append(d)
        positions.append(p)
    return docs, positions


streams = st.tuples(st.lists(st.integers(0, 12), min_size=1, max_size=8), st.sampled_from(["eos", "bos"]))


@settings(max_examples=150, deadline=None)
@given(streams, st.integers(1, 16), st.data())
def test_tokens_and_index_agree_with_brute_force(stream, length, data):
    lengths, style = stream
    ids, starts = stream_of(lengths, style)
    if len(ids) < length:
        return
    window_starts = np.array(data.draw(st.lists(st.integers(0, len(ids) - length), min_size=1, max_size=4)))
    rows = torch.tensor([ids[s : s + length] for s in window_starts.tolist()])
    from_tokens = document_boundaries(rows, separator=style, separator_id=SEP)
    from_index = document_boundaries(window_starts=window_starts, length=length, doc_starts=np.array(starts))
    expected = [reference(ids, s, length, starts) for s in window_starts.tolist()]
    for got in (from_tokens, from_index):
        assert got[0].tolist() == [e[0] for e in expected]
        assert got[1].tolist() == [e[1] for e in expected]


def test_the_rule_on_gpt2_ids():
    eot = 50256
    eos = torch.tensor([[11, 12, eot, 13, 14, eot, 15]])
    document_ids, position_ids = document_boundaries(eos, separator="eos", separator_id=eot)
    assert document_ids.tolist() == [[0, 0, 0, 1, 1, 1, 2]]
    assert position_ids.tolist() == [[0, 1, 2, 0, 1, 2, 0]]  # end-of-text is the last token of its document
    bos = torch.tensor([[eot, 11, 12, eot, 13]])
    document_ids, position_ids = document_boundaries(bos, separator="bos", separator_id=eot)
    assert document_ids.tolist() == [[0, 0, 0, 1, 1]] and position_ids.tolist() == [[0, 1, 2, 0, 1]]
    # a window that starts inside a document counts from 0 at its first token
    assert document_boundaries(eos[:, 1:], separator_id=eot)[1].tolist() == [[0, 1, 0, 1, 2, 0]]


def test_the_index_decides_over_a_literal_separator_inside_a_document():
    ids = torch.tensor([[11, 50256, 12, 13]])  # one document with --allow-special: 50256 is text here
    _, positions = document_boundaries(window_starts=np.array([0]), length=4, doc_starts=np.array([0]))
    assert positions.tolist() == [[0, 1, 2, 3]]
    assert document_boundaries(ids, separator_id=50256)[1].tolist() == [[0, 1, 0, 1]]


def test_a_style_without_its_id_and_no_input_are_errors():
    with pytest.raises(ValueError, match="separator_id"):
        starts_from_tokens(torch.tensor([[1, 2]]), separator="eos")
    with pytest.raises(ValueError, match="one of"):
        starts_from_tokens(torch.tensor([[1, 2]]), separator="after", separator_id=1)
    with pytest.raises(ValueError, match="needs token_ids"):
        document_boundaries()
    assert starts_from_tokens(torch.tensor([[1, 99, 2]]), separator="none").tolist() == [[True, False, False]]


@given(st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=10), min_size=1, max_size=4))
def test_cu_seqlens_are_the_runs_of_each_row(rows):
    length = max(len(r) for r in rows)
    padded = [sorted(r + [r[-1]] * (length - len(r))) for r in rows]  # ids non-decreasing along a row
    cu, longest = cu_seqlens(torch.tensor(padded))
    runs = []
    for row in padded:  # brute force: the lengths of the runs of equal ids, row by row
        n = 1
        for a, b in itertools.pairwise(row):
            if a == b:
                n += 1
            else:
                runs.append(n)
                n = 1
        runs.append(n)
    assert cu.dtype == torch.int32
    assert cu.tolist() == np.concatenate(([0], np.cumsum(runs))).tolist() and longest == max(runs)


@given(streams)
def test_spans_from_tokens_equal_the_index(stream):
    lengths, style = stream
    ids, starts = stream_of(lengths, style)
    if not ids:
        return
    found, spans = document_spans(np.array(ids), separator=style, separator_id=SEP)
    # empty documents leave no token to find them by: compare with the index's non-empty ones
    index, index_spans = document_spans(np.array(ids), separator=style, separator_id=SEP, doc_starts=np.array(starts))
    keep = index_spans > 0
    assert found.tolist() == index[keep].tolist() and spans.tolist() == index_spans[keep].tolist()
    assert spans.sum() == len(ids)


def test_starts_from_index_marks_column_zero_and_every_start_inside():
    got = starts_from_index(np.array([0, 2, 5]), 4, np.array([0, 3, 4, 8]))
    assert got.int().tolist() == [[1, 0, 0, 1], [1, 1, 1, 0], [1, 0, 0, 1]]


def test_loader_positions_documents_and_cross_targets():
    eot = 50256
    docs = [[11, 12, 13], [14, 15], [16, 17, 18, 19, 20]]
    ids = docs[0] + [eot] + docs[1] + [eot] + docs[2]
    loader = create_dataloader(ids, batch_size=1, max_length=len(ids) - 1, stride=1, shuffle=False,
                               return_documents=True, ignore_cross_document_targets=True)
    batch = next(iter(loader))
    inputs, targets, positions, document_ids, cu, longest = batch
    assert inputs.tolist() == [ids[:-1]]
    assert positions.tolist() == [[0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 3]]
    assert document_ids.tolist() == [[0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2]]
    # the end-of-text's target (the next document's first token) is ignored; predicting end-of-text is kept
    assert targets.tolist() == [[12, 13, eot, -100, 15, eot, -100, 17, 18, 19, 20]]
    assert cu.tolist() == [0, 4, 7, 11] and longest == 4
    assert batch.document_ids is document_ids
    plain = create_dataloader(ids, batch_size=1, max_length=len(ids) - 1, stride=1, shuffle=False)
    assert next(iter(plain))[1].tolist() == [ids[1:]]  # nothing changes unless asked
