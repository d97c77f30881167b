"""Item 2 of #15: the loader reads the store its windows were computed from, whatever happens at the path later.

A store replaced at its path (``prepare --force``) or a relative path read after ``os.chdir`` must neither feed
batches of another corpus under the old window count nor fail: in this process the loader keeps reading the file it
opened; a spawned worker (which reopens by path) refuses a replaced store by name.
"""

import os
import pickle
import shutil

import pytest
import torch

import lmfeed.loading.windows
from lmfeed import create_dataloader
from lmfeed.store.format import StoreChangedError, TokenStore
from lmfeed.store.prepare import prepare


def _write(root, docs):
    root.mkdir()
    for i, doc in enumerate(docs):
        (root / f"{i:02d}.txt").write_text(doc, encoding="utf-8")
    return root


@pytest.fixture()
def two_corpora(tmp_path):
    from lmfeed.text.sources import python_reference

    docs = python_reference()
    a = _write(tmp_path / "a", docs[:6])
    b = _write(tmp_path / "b", docs[20:40])  # another corpus, more tokens: the old window count would fit inside
    return a, b


def batches(loader):
    return [tuple(t.clone() for t in b) for b in loader]


def same(a, b):
    return len(a) == len(b) and all(
        all(torch.equal(x, y) for x, y in zip(p, q, strict=True)) for p, q in zip(a, b, strict=True))


KW = {"batch_size": 4, "max_length": 32, "stride": 32, "shuffle": False}


def test_a_store_replaced_mid_epoch_keeps_feeding_the_old_data(two_corpora, tmp_path, monkeypatch):
    a, b = two_corpora
    store = prepare(a, tmp_path / "data.store", workers=1)
    expected = batches(create_dataloader(store.path, **KW))
    monkeypatch.setattr(lmfeed.loading.windows, "_REOPEN_AFTER_BYTES", 2048)  # reopen every few batches
    loader = create_dataloader(store.path, **KW)
    got, it = [], iter(loader)
    for _ in range(3):
        got.append(tuple(t.clone() for t in next(it)))
    prepare(b, tmp_path / "data.store", workers=1, force=True)  # the path now holds another corpus
    got += [tuple(t.clone() for t in x) for x in it]
    assert same(got, expected)
    assert same(batches(loader), expected)  # a whole second pass too


def test_a_relative_store_path_survives_chdir(two_corpora, tmp_path, monkeypatch):
    a, b = two_corpora
    prepare(a, tmp_path / "data.store", workers=1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    prepare(b, elsewhere / "data.store", workers=1)  # a store of the same name in the directory we move to
    monkeypatch.chdir(tmp_path)
    expected = batches(create_dataloader(tmp_path / "data.store", **KW))
    monkeypatch.setattr(lmfeed.loading.windows, "_REOPEN_AFTER_BYTES", 2048)
    from pathlib import Path

    loader = create_dataloader(Path("data.store"), **KW)
    dataset = pickle.dumps(loader.dataset)
    os.chdir(elsewhere)
    assert same(batches(loader), expected)
    worker_copy = pickle.loads(dataset)  # as a spawned worker reopens it
    first = torch.cat([x[0] for x in expected])
    assert torch.equal(worker_copy.__getitems__(range(len(first))).inputs, first)
    store = pickle.loads(pickle.dumps(TokenStore.open(Path("data.store"))))  # opened here: the other corpus
    assert len(store) == len(TokenStore.open(elsewhere / "data.store"))


def test_a_spawned_worker_refuses_a_replaced_store(two_corpora, tmp_path):
    a, b = two_corpora
    store = prepare(a, tmp_path / "data.store", workers=1)
    loader = create_dataloader(store.path, **KW)
    dataset, pickled_store = pickle.dumps(loader.dataset), pickle.dumps(store)
    prepare(b, tmp_path / "data.store", workers=1, force=True)
    with pytest.raises(StoreChangedError, match=r"data.store.* no longer .*tokens.npy.*inode.*Build the loader"):
        pickle.loads(dataset)
    with pytest.raises(StoreChangedError, match="no longer the one"):
        pickle.loads(pickled_store)


def test_a_store_modified_in_place_is_refused_on_reopen(two_corpora, tmp_path):
    a, _ = two_corpora
    store = prepare(a, tmp_path / "data.store", workers=1)
    dataset = pickle.dumps(create_dataloader(store.path, **KW).dataset)
    tokens = store.path / "tokens.npy"
    copy = tmp_path / "copy.npy"
    shutil.copyfile(tokens, copy)
    os.replace(copy, tokens)  # same bytes, another file: not provably the same data, so refused
    with pytest.raises(StoreChangedError, match="another file"):
        pickle.loads(dataset)


def test_workers_read_the_opened_store_after_it_is_replaced(two_corpora, tmp_path, monkeypatch):
    a, b = two_corpora
    store = prepare(a, tmp_path / "data.store", workers=1)
    expected = batches(create_dataloader(store.path, **KW))
    monkeypatch.setattr(lmfeed.loading.windows, "_REOPEN_AFTER_BYTES", 2048)  # forked workers inherit it
    loader = create_dataloader(store.path, **KW, num_workers=1)
    prepare(b, tmp_path / "data.store", workers=1, force=True)
    assert same(batches(loader), expected)  # forked workers inherit the open file
