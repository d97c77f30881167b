"""Blends of sources in every loader mode: random offsets, respect_documents, packing; a source that gives nothing
to draw is refused when the loader is built, by name (#15 item 10: it was a ZeroDivisionError at the first batch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmfeed import create_dataloader, prepare
from lmfeed.loading.parts import EmptySourceError

EOT = 50256


@pytest.fixture
def two_stores(tmp_path):
    from pydoc_data.topics import topics

    names = sorted(topics)
    for part, chosen in (("a", names[:12]), ("b", names[12:30])):
        folder = tmp_path / part
        folder.mkdir()
        for i, name in enumerate(chosen):
            (folder / f"{i:02d}.txt").write_text(topics[name], encoding="utf-8")
        prepare(folder, tmp_path / f"{part}.store", workers=1)
    return tmp_path / "a.store", tmp_path / "b.store"


def test_random_offsets_in_each_source_drawn_in_proportion(two_stores):
    a, b = two_stores
    kwargs = {"batch_size": 16, "max_length": 32, "sampling": "random", "num_samples": 4096, "seed": 1}
    loader = create_dataloader({a: 0.25, b: 0.75}, **kwargs)
    rows = np.concatenate(list(loader.batch_sampler))  # (source, offset) per draw
    assert abs(float((rows[:, 0] == 1).mean()) - 0.75) < 0.03
    sizes = [p.windows.num_tokens - 32 for p in loader.dataset.sources]
    for k in (0, 1):
        offsets = rows[rows[:, 0] == k, 1]
        assert offsets.min() >= 0 and offsets.max() < sizes[k]
        assert len(set(offsets.tolist())) > 0.5 * len(offsets)  # offsets, not a handful of windows
    first = next(iter(create_dataloader({a: 0.25, b: 0.75}, **kwargs)))
    for row, (k, offset) in zip(first[0], rows[:16], strict=True):  # the batch holds exactly those offsets
        ids = loader.dataset.sources[k].windows.token_ids
        assert row.tolist() == ids[offset : offset + 32].tolist()
    again = create_dataloader({a: 0.25, b: 0.75}, **kwargs)
    it = iter(again)
    skipped = [next(it) for _ in range(5)]
    resumed = create_dataloader({a: 0.25, b: 0.75}, **kwargs)
    resumed.load_state_dict(again.state_dict())
    full = list(create_dataloader({a: 0.25, b: 0.75}, **kwargs))
    assert all(torch.equal(x[0], y[0]) for x, y in zip(full[5:], resumed, strict=True))
    assert all(torch.equal(x[0], y[0]) for x, y in zip(full[:5], skipped, strict=True))


def test_random_offsets_respect_documents_in_a_blend(two_stores):
    a, b = two_stores
    loader = create_dataloader({a: 1, b: 1}, batch_size=32, max_length=64, sampling="random", num_samples=512,
                               seed=0, respect_documents=True, return_positions=True)
    for inputs, _, positions in loader:
        assert (inputs[:, :-1] != EOT).all()  # no input crosses into another document (only the last may end one)
        assert (positions == torch.arange(64)).all()  # inside one document: no restart


def test_windows_respecting_documents_and_packing_in_a_blend(two_stores):
    a, b = two_stores
    windows = create_dataloader({a: 1, b: 2}, batch_size=8, max_length=64, stride=64, seed=0,
                                respect_documents=True)
    for inputs, _ in windows:
        assert (inputs[:, :-1] != EOT).all()
    packed = create_dataloader({a: 1, b: 2}, batch_size=8, max_length=256, seed=0, packing="best_fit",
                               return_documents=True)
    assert packed.pad_id == EOT and 0 <= packed.padding_fraction < 0.05
    total = sum(len(p) for p in packed.dataset.sources)
    assert len(packed.batch_sampler) * 8 <= total
    for batch in packed:
        assert batch.inputs.shape == (8, 256) and (batch.position_ids[:, 0] == 0).all()
        assert int(batch.cu_seqlens[-1]) == 8 * 256


def test_a_source_without_a_window_is_refused_when_the_loader_is_built(two_stores, tmp_path):
    a, _ = two_stores
    short = tmp_path / "short.txt"
    short.write_text("only a few words here", encoding="utf-8")
    with pytest.raises(EmptySourceError, match=r"source '.*short.txt' gives no window: max_length=64 needs 65"):
        create_dataloader({a: 1, short: 1}, batch_size=2, max_length=64)
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(12):  # 12 documents of 16 tokens: enough tokens for a window, none in one document
        (docs / f"{i:02d}.txt").write_text("a short document " * 5, encoding="utf-8")
    store = prepare(docs, tmp_path / "docs.store", workers=1).path
    # the case of #15 item 10: every document is shorter than a window
    with pytest.raises(ValueError, match=r"source '.*docs.store' gives no window: respect_documents=True"):
        create_dataloader({a: 1, store: 1}, batch_size=2, max_length=64, respect_documents=True)
    with pytest.raises(ValueError, match=r"source '.*docs.store' gives no window: respect_documents=True"):
        create_dataloader({a: 1, store: 1}, batch_size=2, max_length=64, respect_documents=True,
                          sampling="random", num_samples=10)
    # packing trains on exactly those short documents
    packed = create_dataloader({a: 1, store: 1}, batch_size=2, max_length=64, packing="best_fit")
    assert len(packed.dataset.sources[1]) >= 1


@pytest.mark.slow
def test_workers_serve_the_same_document_batches(two_stores):
    a, b = two_stores
    for kwargs in ({"packing": "best_fit", "return_documents": True},
                   {"sampling": "random", "num_samples": 96, "respect_documents": True, "return_positions": True}):
        make = lambda n, kw=kwargs: create_dataloader({a: 1, b: 2}, batch_size=8, max_length=64, seed=4,  # noqa: E731
                                                      num_workers=n, **kw)
        alone, workers = list(make(0)), list(make(2))
        assert len(alone) == len(workers) > 0
        for x, y in zip(alone, workers, strict=True):
            assert all(torch.equal(p, q) if isinstance(p, torch.Tensor) else p == q
                       for p, q in zip(x, y, strict=True))
