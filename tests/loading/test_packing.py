"""Packing: every token of every document once per epoch (best fit), BOS-aligned cropped rows (crop), and the
loader's modes (order, resume, ranks) over packed rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from lmfeed import create_dataloader
from lmfeed.loading.documents import document_spans
from lmfeed.loading.packing import pack_best_fit, pack_crop

SEP = 1_000_000  # above every ordinary id: ordinary ids are unique, so "exactly once" is checked by value


def corpus(lengths: list[int]) -> np.ndarray:
    """Documents of unique ids (counting up from 0), an end-of-text separator after each but the last."""
    ids, next_id = [], 0
    for i, n in enumerate(lengths):
        ids += list(range(next_id, next_id + n))
        next_id += n
        if i < len(lengths) - 1:
            ids.append(SEP)
    return np.array(ids, dtype=np.int64)


def reference_best_fit(sizes: list[int], capacity: int) -> list[int]:
    """Best-fit decreasing written plainly: the fill of every row (pieces of long documents split off first)."""
    rows: list[int] = []
    pieces = []
    for n in sizes:
        while n >= capacity:
            rows.append(capacity)
            n -= capacity
        if n:
            pieces.append(n)
    for n in sorted(pieces, reverse=True):
        fits = [i for i, used in enumerate(rows) if capacity - used >= n]
        if fits:
            best = min(fits, key=lambda i: capacity - rows[i])
            rows[best] += n
        else:
            rows.append(n)
    return rows


documents = st.lists(st.integers(0, 40), min_size=1, max_size=25)


@settings(max_examples=120, deadline=None)
@given(documents, st.integers(1, 16))
def test_best_fit_places_every_token_exactly_once(lengths, max_length):
    ids = corpus(lengths)
    starts, spans = document_spans(ids, separator="eos", separator_id=SEP)
    packing = pack_best_fit(starts, spans, max_length)
    capacity = max_length + 1
    pieces = zip(packing.sources, packing.lengths, strict=True)
    placed = np.concatenate([np.arange(s, s + n) for s, n in pieces] or [[]])
    assert sorted(placed.tolist()) == list(range(len(ids)))  # every stream offset once: tokens and separators
    fill = np.bincount(packing.rows, weights=packing.lengths, minlength=packing.num_rows)
    assert (fill <= capacity).all() and (fill > 0).all()
    assert sorted(fill.astype(int).tolist()) == sorted(reference_best_fit(spans.tolist(), capacity))
    assert packing.cropped_tokens == 0
    assert packing.padding_slots == packing.num_rows * capacity - len(ids)


@settings(max_examples=60, deadline=None)
@given(documents, st.integers(1, 12), st.integers(1, 5), st.booleans(), st.integers(0, 3))
def test_the_loader_serves_every_token_once_per_epoch(lengths, max_length, batch_size, shuffle, seed):
    eot, pad = 50256, 50000
    ids = np.where(corpus(lengths) == SEP, eot, corpus(lengths))  # GPT-2's end-of-text between the documents
    if len(ids) == 0:
        return
    loader = create_dataloader(torch.from_numpy(ids), batch_size=batch_size, max_length=max_length, shuffle=shuffle,
                               seed=seed, drop_last=False, packing="best_fit", respect_documents=True, pad_id=pad,
                               return_documents=True)
    for epoch in range(2):
        seen = []
        for inputs, targets, positions, document_ids, cu, longest in loader:
            runs = torch.ones_like(document_ids, dtype=torch.bool)  # brute force: a run begins where the id changes
            runs[:, 1:] = document_ids[:, 1:] != document_ids[:, :-1]
            assert cu.tolist() == torch.nonzero(runs.reshape(-1)).flatten().tolist() + [inputs.numel()]
            assert longest == int((cu[1:] - cu[:-1]).max())
            assert (positions[runs] == 0).all() and (positions[~runs] > 0).all()
            for x, y in zip(inputs.tolist(), targets.tolist(), strict=True):
                row = x + [y[-1]]
                seen += [t for t in row if t not in (eot, pad, -100)]
            is_pad = inputs == pad
            assert (targets[:, :-1][is_pad[:, 1:]] == -100).all()  # padding is never a target
            assert (positions[:, 0] == 0).all() and (document_ids[:, 0] == 0).all()
        assert sorted(seen) == [t for t in ids.tolist() if t != eot], epoch
        assert loader.epoch == epoch + 1


def test_best_fit_example_from_the_module_notes():
    p = pack_best_fit(np.array([0, 5, 8, 10]), np.array([5, 3, 2, 6]), 4)
    segments = list(zip(p.sources.tolist(), p.lengths.tolist(), p.rows.tolist(), strict=True))
    rows = [[(s, n) for s, n, r in segments if r == k] for k in range(p.num_rows)]
    assert rows == [[(0, 5)], [(10, 5)], [(5, 3), (8, 2)], [(15, 1)]]
    assert p.padding_slots == 4 and p.padding_fraction == 4 / 20


def test_long_documents_crop_keeps_the_first_row():
    p = pack_best_fit(np.array([0, 12]), np.array([12, 3]), 4, long_documents="crop")
    assert p.cropped_tokens == 7 and p.num_rows == 2
    assert p.cropped_fraction == 7 / 15


@settings(max_examples=80, deadline=None)
@given(documents, st.integers(1, 16), st.integers(1, 6))
def test_crop_rows_start_at_a_document_and_are_full(lengths, max_length, buffer_size):
    ids = corpus(lengths)
    starts, spans = document_spans(ids, separator="eos", separator_id=SEP)
    p = pack_crop(starts, spans, max_length, buffer_size=buffer_size)
    capacity = max_length + 1
    fill = np.bincount(p.rows, weights=p.lengths, minlength=p.num_rows)
    assert (fill[:-1] == capacity).all() and 0 < fill[-1] <= capacity if p.num_rows else True
    doc_start = set(starts.tolist())
    assert all(s in doc_start for s in p.sources.tolist())  # every segment is the start of a document
    assert len(set(p.sources.tolist())) == len(p.sources)  # each document at most once
    assert p.cropped_tokens == spans.sum() - p.lengths.sum()
    for s, n in zip(p.sources.tolist(), p.lengths.tolist(), strict=True):
        assert n <= spans[np.searchsorted(starts, s)]


def test_crop_example_from_its_docstring():
    p = pack_crop(np.array([0, 5, 8, 10]), np.array([5, 3, 2, 6]), 4)
    assert (p.num_rows, p.cropped_tokens, p.padding_slots) == (3, 1, 0)


def test_packed_batches_from_text_mark_documents_and_padding():
    eot = 50256
    text = "one two three<|endoftext|>four five<|endoftext|>six seven eight nine ten eleven twelve"
    loader = create_dataloader(text, batch_size=3, max_length=8, shuffle=False, drop_last=False,
                               packing="best_fit", respect_documents=True, return_documents=True)
    assert loader.pad_id == eot and 0 < loader.padding_fraction < 1 and loader.cropped_fraction == 0
    rows = list(loader)
    assert sum(len(r[0]) for r in rows) == len(loader.dataset)
    for inputs, _targets, positions, document_ids, cu, longest in rows:
        # positions restart at every document start (a segment of the row), padding targets are -100
        starts = torch.ones_like(document_ids, dtype=torch.bool)
        starts[:, 1:] = document_ids[:, 1:] != document_ids[:, :-1]
        assert (positions[starts] == 0).all() and (positions[~starts] > 0).all()
        assert int(cu[-1]) == inputs.numel() and longest == int((cu[1:] - cu[:-1]).max())
        runs = torch.ones_like(document_ids, dtype=torch.bool)  # brute force: where the id changes, or a row begins
        runs[:, 1:] = document_ids[:, 1:] != document_ids[:, :-1]
        assert cu.tolist() == torch.nonzero(runs.reshape(-1)).flatten().tolist() + [inputs.numel()]


def test_packing_resumes_and_shares_among_ranks():
    ids = corpus([5, 17, 3, 9, 30, 2, 11, 8, 4, 21])
    kwargs = {"batch_size": 2, "max_length": 6, "shuffle": True, "seed": 3, "packing": "best_fit",
              "respect_documents": True, "pad_id": 0}
    full = [b[0] for b in create_dataloader(torch.from_numpy(ids % 50000), **kwargs)]
    loader = create_dataloader(torch.from_numpy(ids % 50000), **kwargs)
    it = iter(loader)
    next(it), next(it)
    state = loader.state_dict()
    again = create_dataloader(torch.from_numpy(ids % 50000), **kwargs)
    again.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(full[2:], [b[0] for b in again], strict=True))
    shares = [[b[0] for b in create_dataloader(torch.from_numpy(ids % 50000), rank=r, world_size=2, **kwargs)]
              for r in range(2)]
    rows = sorted(tuple(row.tolist()) for share in shares for batch in share for row in batch)
    assert len(rows) == 2 * len(shares[0]) * 2 and len(set(rows)) == len(rows)  # disjoint shares of the rows


def test_packing_refuses_random_sampling_and_bad_modes():
    with pytest.raises(ValueError, match="sampling='random'"):
        create_dataloader("a b c " * 50, packing="best_fit", sampling="random", num_samples=4, max_length=4)
    with pytest.raises(ValueError, match="packing"):
        create_dataloader("a b c " * 50, packing="tight", max_length=4)


def test_short_documents_are_never_skipped_silently(caplog):
    text = "<|endoftext|>".join(["short one"] * 30 + ["a much longer document " * 20])
    with caplog.at_level("WARNING"):
        loader = create_dataloader(text, batch_size=1, max_length=16, stride=16, respect_documents=True)
    assert loader.dataset.dropped_tokens > 0
    assert "packing='best_fit'" in caplog.text and f"{loader.dataset.dropped_tokens:,}" in caplog.text
    packed = create_dataloader(text, batch_size=1, max_length=16, packing="best_fit", respect_documents=True)
    assert packed.dataset.dropped_tokens == 0


def reference_rows(ids, packing, pad):
    """Rows, positions, document numbers and padding of a packing, written plainly segment by segment."""
    capacity = packing.capacity
    rows = np.full((packing.num_rows, capacity), pad, dtype=np.int64)
    positions = np.zeros_like(rows)
    documents = np.zeros_like(rows)
    padded = np.ones_like(rows, dtype=bool)
    for r in range(packing.num_rows):
        segments = [k for k in range(len(packing.rows)) if packing.rows[k] == r]
        for rank, k in enumerate(sorted(segments, key=lambda k: packing.slots[k])):
            slot, n, source = int(packing.slots[k]), int(packing.lengths[k]), int(packing.sources[k])
            rows[r, slot:slot + n] = ids[source:source + n]
            positions[r, slot:slot + n] = np.arange(n)
            documents[r, slot:slot + n] = rank
            padded[r, slot:slot + n] = False
        fill = int((~padded[r]).sum())
        positions[r, fill:] = np.arange(capacity - fill)  # the padding is one more segment of its own
        documents[r, fill:] = len(segments)
    return rows, positions, documents, padded


@settings(max_examples=80, deadline=None)
@given(documents, st.integers(1, 12), st.sampled_from(["best_fit", "crop"]), st.booleans(), st.booleans())
def test_every_packed_row_holds_its_segments_in_place(lengths, max_length, mode, documents_too, ignore_cross):
    from lmfeed.loading.packing import PackedDataset

    ids = np.where(corpus(lengths) == SEP, 60_000, corpus(lengths)).astype(np.uint32)
    starts, spans = document_spans(ids, separator="eos", separator_id=60_000)
    packing = pack_best_fit(starts, spans, max_length) if mode == "best_fit" else pack_crop(starts, spans, max_length)
    if packing.num_rows == 0:
        return
    pad = 59_999
    dataset = PackedDataset(ids, packing, pad_id=pad, return_positions=True, return_documents=documents_too,
                            ignore_cross_document_targets=ignore_cross)
    rows, positions, docs, padded = reference_rows(ids, packing, pad)
    order = np.random.default_rng(max_length).permutation(packing.num_rows)
    for chunk in np.array_split(order, max(1, packing.num_rows // 3)):
        batch = dataset.__getitems__(chunk.tolist())
        want_targets = np.where(padded[chunk, 1:], -100, rows[chunk, 1:])
        if ignore_cross:
            want_targets[positions[chunk, 1:] == 0] = -100
        assert batch.inputs.tolist() == rows[chunk, :-1].tolist()
        assert batch.targets.tolist() == want_targets.tolist()
        assert batch.position_ids.tolist() == positions[chunk, :-1].tolist()
        if documents_too:
            assert batch.document_ids.tolist() == docs[chunk, :-1].tolist()


def test_a_memory_mapped_packing_reopens_its_map_and_serves_the_same_rows(tmp_path, monkeypatch):
    import lmfeed.loading.packing as packing_module
    from lmfeed.loading.packing import PackedDataset

    ids = np.where(corpus([30, 7, 50, 3, 12]) == SEP, 60_000, corpus([30, 7, 50, 3, 12])).astype(np.uint16)
    path = tmp_path / "ids.bin"
    ids.tofile(path)
    opened = []

    def reopen():
        opened.append(1)
        return np.memmap(path, dtype=np.uint16, mode="r")

    starts, spans = document_spans(ids, separator="eos", separator_id=60_000)
    packing = pack_best_fit(starts, spans, 16)
    plain = PackedDataset(ids, packing, pad_id=0)
    mapped = PackedDataset(reopen(), packing, pad_id=0, reopen=reopen)
    monkeypatch.setattr(packing_module, "_REOPEN_AFTER_BYTES", 40)  # every second batch reopens the map
    for r in range(packing.num_rows):
        a, b = plain.__getitems__([r]), mapped.__getitems__([r])
        assert a.inputs.tolist() == b.inputs.tolist() and a.targets.tolist() == b.targets.tolist()
    assert len(opened) > 2
