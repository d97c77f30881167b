"""prepare with any tokenizer: a tokenizer.json's ids are the tokenizers library's, the separator (eos, bos, none) is
the one asked for and recorded, uint32 above 65,536 ids, and a store is read only with its own vocabulary."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import tiktoken
from tokenizers import Tokenizer

from lmfeed.loading.loader import create_dataloader
from lmfeed.store.format import StoreError, TokenStore
from lmfeed.store.merge import merge
from lmfeed.store.prepare import prepare
from lmfeed.text.sources import python_reference
from lmfeed.text.tokenizer import ENDOFTEXT, get_tokenizer

prepare_module = importlib.import_module("lmfeed.store.prepare")


def ref_ids(path: str, text: str) -> list[int]:
    """The reference: the tokenizers library's ids of one document, special tokens in it taken as text."""
    tok = Tokenizer.from_file(path)
    tok.encode_special_tokens = True
    return tok.encode(text, add_special_tokens=False).ids


def write_docs(directory: Path, docs: list[str]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    for i, d in enumerate(docs):
        (directory / f"{i:03d}.txt").write_text(d, encoding="utf-8")
    return sorted(directory.iterdir())


def dir_bytes(path: Path) -> dict[str, bytes]:
    return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def docs() -> list[str]:
    return [*python_reference()[:12], f"a literal {ENDOFTEXT} stays text", ""]


@pytest.fixture(scope="module")
def bos_tokenizer(tmp_path_factory, bpe_path) -> str:
    """The trained BPE with <s> and </s> added, and a tokenizer_config.json naming them (as save_pretrained does)."""
    doc = json.loads(Path(bpe_path).read_text(encoding="utf-8"))
    n = len(doc["model"]["vocab"])
    for i, token in enumerate(["<s>", "</s>"]):
        doc["added_tokens"].append({"id": n + i, "content": token, "single_word": False, "lstrip": False,
                                    "rstrip": False, "normalized": False, "special": True})
    folder = tmp_path_factory.mktemp("bos")
    (folder / "tokenizer.json").write_text(json.dumps(doc), encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>"}))
    return str(folder)


def test_ids_are_the_reference_with_eos_between_and_any_workers(tmp_path, docs, bpe_path, monkeypatch):
    monkeypatch.setattr(prepare_module, "_PIECE_CHARS", 3000)  # long documents are cut, tasks interleave
    files = write_docs(tmp_path / "in", docs)
    one = prepare(files, tmp_path / "w1", tokenizer=bpe_path, workers=1)
    two = prepare(files, tmp_path / "w2", tokenizer=bpe_path, workers=2, backend="tiktoken")
    assert dir_bytes(one.path) == dir_bytes(two.path)
    want: list[int] = []
    for i, d in enumerate(docs):
        want += ([0] if i else []) + ref_ids(bpe_path, d)
    assert one.tokens.tolist() == want
    assert one.metadata["separator"] == "eos" and one.separator == "eos" and one.separator_id == 0 == one.eot_id
    assert [one.document(i).tolist() for i in range(len(docs))] == [ref_ids(bpe_path, d) for d in docs]
    assert one.tokenizer.decode(one.document(3).tolist()) == docs[3]  # reopened by the name it recorded


def test_bos_opens_every_document_and_doc_starts_point_at_it(tmp_path, docs, bos_tokenizer):
    enc = get_tokenizer(bos_tokenizer)
    bos = enc.bos_token
    files = write_docs(tmp_path / "in", docs[:4])
    store = prepare(files, tmp_path / "s", tokenizer=bos_tokenizer, separator="bos", workers=1)
    want: list[int] = []
    for d in docs[:4]:
        want += [bos, *ref_ids(bos_tokenizer + "/tokenizer.json", d)]
    assert store.tokens.tolist() == want
    assert (store.separator, store.separator_id, store.eot_id) == ("bos", bos, None)
    assert all(store.tokens[s] == bos for s in store.doc_starts.tolist())
    assert store.document(2).tolist() == ref_ids(bos_tokenizer + "/tokenizer.json", docs[2])
    # the default for this tokenizer is EOS (it has one): </s> between documents
    auto = prepare(files, tmp_path / "auto", tokenizer=bos_tokenizer, workers=1)
    assert auto.separator == "eos" and auto.separator_id == enc.eot_token


def test_bos_shards_merge_to_the_single_run(tmp_path, docs, bos_tokenizer):
    files = write_docs(tmp_path / "in", docs[:6])
    whole = prepare(files, tmp_path / "whole", tokenizer=bos_tokenizer, separator="bos", workers=1)
    shards = [prepare(files, tmp_path / f"s{k}", tokenizer=bos_tokenizer, separator="bos", workers=1, num_shards=2,
                      shard_index=k) for k in range(2)]
    merged = merge([s.path for s in shards], tmp_path / "merged")
    assert dir_bytes(merged.path) == dir_bytes(whole.path)


def test_separator_none_and_errors(tmp_path, docs, bpe_path):
    files = write_docs(tmp_path / "in", docs[:3])
    none = prepare(files, tmp_path / "none", tokenizer=bpe_path, separator="none", workers=1)
    assert none.tokens.tolist() == [i for d in docs[:3] for i in ref_ids(bpe_path, d)]
    assert (none.separator, none.separator_id) == ("none", None)
    with pytest.raises(ValueError, match=r"no begin-of-document token for separator='bos'.*separator='eos' or 'none'"):
        prepare(files, tmp_path / "x", separator="bos", workers=1)  # GPT-2 has no BOS
    with pytest.raises(ValueError, match="contradict"):
        prepare(files, tmp_path / "x", eot=False, separator="eos", workers=1)
    assert not (tmp_path / "x").exists()


def test_old_store_without_separator_reads_as_eos_or_none(tmp_path, docs):
    files = write_docs(tmp_path / "in", docs[:2])
    store = prepare(files, tmp_path / "s", workers=1)
    meta = json.loads((store.path / "metadata.json").read_text())
    for key in ("separator", "separator_id"):
        meta.pop(key)
    (store.path / "metadata.json").write_text(json.dumps(meta))
    old = TokenStore.open(store.path)
    assert (old.separator, old.separator_id) == ("eos", 50256)


@pytest.mark.slow
def test_uint32_for_a_trained_vocabulary_above_65536_ids(tmp_path, big_bpe_path):
    words = Tokenizer.from_file(big_bpe_path).get_vocab()
    high = sorted((i, w) for w, i in words.items())[-3:]  # the last merges: ids above 65,535
    text = " ".join(w.lstrip("\u0120") for _, w in high)
    files = write_docs(tmp_path / "in", [text, "abc"])
    store = prepare(files, tmp_path / "s", tokenizer=big_bpe_path, workers=2)
    assert store.tokens.dtype == np.uint32 and store.metadata["dtype"] == "uint32"
    assert store.tokens.tolist() == [*ref_ids(big_bpe_path, text), 0, *ref_ids(big_bpe_path, "abc")]
    assert int(store.tokens.max()) > 65_535


def test_create_dataloader_takes_a_tokenizer_json(tmp_path, docs, bpe_path):
    text = docs[0]
    loader = create_dataloader(text, batch_size=2, max_length=8, stride=8, shuffle=False, tokenizer=bpe_path)
    inputs, targets = next(iter(loader))
    ids = ref_ids(bpe_path, text)
    assert inputs[0].tolist() == ids[:8] and targets[0].tolist() == ids[1:9]
    store = prepare(write_docs(tmp_path / "in", docs[:4]), tmp_path / "s", tokenizer=bpe_path, workers=1)
    loader = create_dataloader(store.path, batch_size=2, max_length=8, stride=8, shuffle=False, tokenizer=bpe_path)
    assert next(iter(loader))[0][0].tolist() == store.tokens[:8].tolist()


def test_a_store_made_with_a_tokenizer_json_loads_without_naming_it_again(tmp_path, docs, bpe_path):
    # The default tokenizer is the store's own: prepare --tokenizer X, then create_dataloader(Path(store)) just works
    store = prepare(write_docs(tmp_path / "in", docs[:4]), tmp_path / "s", tokenizer=bpe_path, workers=1)
    loader = create_dataloader(store.path, batch_size=2, max_length=8, stride=8, shuffle=False)
    assert next(iter(loader))[0][0].tolist() == store.tokens[:8].tolist()
    # raw text still means GPT-2's ids by default, as in the seed
    text_loader = create_dataloader(docs[0], batch_size=1, max_length=4, stride=4, shuffle=False)
    assert next(iter(text_loader))[0][0].tolist() == get_tokenizer("gpt2").encode(docs[0])[:4]


def test_a_store_is_read_only_with_its_own_vocabulary(tmp_path, docs, bpe_path):
    store = prepare(write_docs(tmp_path / "in", docs[:3]), tmp_path / "s", tokenizer=bpe_path, workers=1)
    with pytest.raises(ValueError, match="has another vocabulary"):
        create_dataloader(store.path, batch_size=1, max_length=4, tokenizer="gpt2")
    # another vocabulary that also calls itself gpt2 (#15 item 5)
    gpt2 = get_tokenizer("gpt2")
    fake = tiktoken.Encoding("gpt2", pat_str=gpt2._pat_str, mergeable_ranks={bytes([b]): b for b in range(256)},
                             special_tokens={ENDOFTEXT: 256})
    fake_store = prepare(write_docs(tmp_path / "in2", docs[:3]), tmp_path / "fake", tokenizer=fake, workers=1)
    with pytest.raises(ValueError, match="has another vocabulary"):
        create_dataloader(fake_store.path, batch_size=1, max_length=4, tokenizer="gpt2")
    with pytest.raises(StoreError, match="vocabulary"):
        _ = TokenStore.open(fake_store.path).tokenizer  # its name says gpt2, its fingerprint does not
    with pytest.raises(StoreError, match="vocabulary"):
        TokenStore.open(store.path, tokenizer="gpt2")
    moved = tmp_path / "elsewhere.json"
    moved.write_bytes(Path(bpe_path).read_bytes())  # the same vocabulary under another path is the same
    create_dataloader(store.path, batch_size=1, max_length=4, tokenizer=str(moved))


def test_existing_store_untouched_when_the_tokenizer_is_bad(tmp_path, docs):
    files = write_docs(tmp_path / "in", docs[:2])
    store = prepare(files, tmp_path / "s", workers=1)
    before = dir_bytes(store.path)
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        prepare(files, tmp_path / "s", tokenizer=str(tmp_path / "bad.json"), force=True, workers=1)
    assert dir_bytes(store.path) == before


def test_a_bos_store_puts_position_0_on_the_bos_token(tmp_path, docs, bos_tokenizer):
    enc = get_tokenizer(bos_tokenizer)
    files = write_docs(tmp_path / "in", docs[:6])
    store = prepare(files, tmp_path / "s", tokenizer=bos_tokenizer, separator="bos", workers=1)
    loader = create_dataloader(store, batch_size=4, max_length=64, stride=64, shuffle=False, drop_last=False,
                               tokenizer=enc, return_documents=True)
    starts = set(store.doc_starts.tolist())
    for k, (inputs, _, positions, _, _, _) in enumerate(loader):
        for b, (row, pos) in enumerate(zip(inputs.tolist(), positions.tolist(), strict=True)):
            s = 64 * (4 * k + b)  # brute force from the index: the BOS token opens its document at position 0
            p = -1
            for j in range(len(row)):
                p = 0 if j == 0 or s + j in starts else p + 1
                assert pos[j] == p
                if j and row[j] == enc.bos_token:
                    assert pos[j] == 0
    packed = create_dataloader(store, batch_size=2, max_length=64, tokenizer=enc, packing="best_fit", pad_id=0,
                               return_documents=True, shuffle=False, drop_last=False)
    for batch in packed:
        at_bos = batch.inputs == enc.bos_token
        assert (batch.position_ids[at_bos] == 0).all()  # each BOS begins a segment of the packed row
