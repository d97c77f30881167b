"""create_dataloader over token stores: no copy, the same batches as the text, documents from the index."""

import numpy as np
import pytest
import torch

import lmfeed.loading.windows
from lmfeed import create_dataloader, create_train_val_loaders, get_tokenizer
from lmfeed.store.format import TokenStore
from lmfeed.store.prepare import prepare


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from lmfeed.text.sources import python_reference

    docs = python_reference()[:12]
    root = tmp_path_factory.mktemp("corpus")
    for i, doc in enumerate(docs):
        (root / f"{i:02d}.txt").write_text(doc, encoding="utf-8")
    store = prepare(root, root.parent / "corpus.store", workers=1)
    return docs, store


def batches(loader):
    return [tuple(t.clone() for t in b) for b in loader]


def same(a, b):
    return len(a) == len(b) and all(all(torch.equal(x, y) for x, y in zip(p, q, strict=True))
                                    for p, q in zip(a, b, strict=True))


def test_store_path_store_and_text_give_the_same_batches(corpus):
    docs, store = corpus
    kwargs = dict(batch_size=4, max_length=32, stride=16, seed=1)
    from_text = batches(create_dataloader("<|endoftext|>".join(docs), **kwargs))
    assert same(batches(create_dataloader(store.path, **kwargs)), from_text)
    assert same(batches(create_dataloader(store, **kwargs)), from_text)


def test_store_ids_are_not_copied(corpus):
    _, store = corpus
    loader = create_dataloader(store.path, batch_size=2, max_length=8, stride=8)
    ids = loader.dataset.token_ids
    assert isinstance(ids, np.memmap) and not ids.flags.writeable
    assert ids.dtype == np.uint16


def test_workers_reopen_the_store_and_agree(corpus):
    _, store = corpus
    kwargs = dict(batch_size=4, max_length=16, stride=16, seed=4)
    assert same(batches(create_dataloader(store.path, **kwargs, num_workers=2)),
                batches(create_dataloader(store.path, **kwargs)))


def test_long_epochs_reopen_the_memory_map(corpus, monkeypatch):
    _, store = corpus
    monkeypatch.setattr(lmfeed.loading.windows, "_REOPEN_AFTER_BYTES", 4096)  # reopen every few batches
    loader = create_dataloader(store.path, batch_size=8, max_length=64, stride=64, shuffle=False)
    first_map = loader.dataset.token_ids
    got = batches(loader)
    assert loader.dataset.token_ids is not first_map  # the map was dropped and opened again
    monkeypatch.setattr(lmfeed.loading.windows, "_REOPEN_AFTER_BYTES", 1 << 40)
    assert same(got, batches(create_dataloader(store.path, batch_size=8, max_length=64, stride=64, shuffle=False)))


def test_documents_from_the_store_index_match_scanning_the_text(corpus):
    docs, store = corpus
    kwargs = dict(batch_size=2, max_length=64, stride=32, shuffle=False, drop_last=False, respect_documents=True)
    from_store = create_dataloader(store.path, **kwargs)
    from_text = create_dataloader("<|endoftext|>".join(docs), **kwargs)
    assert same(batches(from_store), batches(from_text))
    assert from_store.dataset.dropped_tokens == from_text.dataset.dropped_tokens
    enc = get_tokenizer()
    for inputs, _ in from_store:
        for row in inputs:
            assert enc.eot_token not in row.tolist()


def test_positions_restart_in_store_batches(corpus):
    _, store = corpus
    loader = create_dataloader(store.path, batch_size=16, max_length=128, stride=128, shuffle=False,
                               return_positions=True)
    starts = set(store.doc_starts.tolist())
    k, saw_restart = 0, False
    for inputs, _, positions in loader:
        for row, pos in zip(inputs.tolist(), positions.tolist(), strict=True):
            s = 128 * k  # brute force: count from the window start, back to 0 at every document start of the index
            expected, p = [], 0
            for j in range(len(row)):
                p = 0 if j == 0 or s + j in starts else p + 1
                expected.append(p)
                saw_restart |= j > 0 and s + j in starts
            assert pos == expected
            # EOS style: the end-of-text token is the last of its document, never position 0 (but at a window start)
            assert all(pos[j] > 0 for j, t in enumerate(row) if t == store.eot_id and j > 0)
            k += 1
    assert saw_restart


def test_train_and_validation_loaders_from_a_split(corpus, tmp_path):
    docs, _ = corpus
    root = tmp_path / "docs"
    root.mkdir()
    for i, doc in enumerate(docs):
        (root / f"{i:02d}.txt").write_text(doc, encoding="utf-8")
    prepare(root, tmp_path / "split", workers=1, val_fraction=0.25, seed=0)
    train, val = create_train_val_loaders(tmp_path / "split", batch_size=4, max_length=32, stride=32, seed=0)
    assert same(batches(val), batches(val))  # the validation order is fixed
    first, second = batches(train), batches(train)
    assert not same(first, second)  # training reshuffles each epoch
    assert sum(len(b[0]) for b in batches(val)) == len(val.dataset)  # no validation window dropped
    with pytest.raises(ValueError, match="not a train/validation split"):
        create_train_val_loaders(tmp_path / "docs")


def test_a_store_without_separators_uses_its_document_index(tmp_path):
    for name, word in (("a.txt", "alpha beta gamma "), ("b.txt", "delta epsilon ")):
        (tmp_path / name).write_text(word * 40, encoding="utf-8")
    store = prepare(tmp_path, tmp_path / "s", eot=False, workers=1)
    assert isinstance(store, TokenStore) and store.eot_id is None and store.separator == "none"
    assert store.separator_id is None and store.num_documents == 2
    loader = create_dataloader(store.path, batch_size=2, max_length=8, stride=8, respect_documents=True,
                               shuffle=False, drop_last=False, return_positions=True)
    boundary = int(store.doc_starts[1])
    for _inputs, _, positions in loader:
        assert (positions[:, 0] == 0).all()
    starts = loader.dataset.window_starts(np.arange(len(loader.dataset)))
    assert all(not (s < boundary < s + 9) for s in starts.tolist())  # no window (with its target) crosses
