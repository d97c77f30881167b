"""What TokenStore.open, verify, merge and export refuse: damaged indexes and metadata, ids outside the vocabulary,
outputs that would overwrite what they read (issue #15, items 1, 3, 4, 16, 18)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lmfeed.cli import main
from lmfeed.store.export import export
from lmfeed.store.format import StoreError, TokenStore
from lmfeed.store.merge import merge
from lmfeed.store.prepare import prepare
from lmfeed.text.tokenizer import ENDOFTEXT, get_tokenizer

ENC = get_tokenizer()
DOCS = ["Hello world", "The second document.\nIt has two lines.", "", "Last one"]
merge_module = importlib.import_module("lmfeed.store.merge")


def tree(path: Path) -> dict[str, bytes]:
    return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.fixture
def docs_dir(tmp_path) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    for i, doc in enumerate(DOCS):
        (d / f"{i}.txt").write_text(doc)
    return d


@pytest.fixture
def store(docs_dir, tmp_path) -> TokenStore:
    return prepare(sorted(docs_dir.iterdir()), tmp_path / "s.store", workers=1)


def rewrite(path: Path, **change) -> None:
    meta = json.loads((path / "metadata.json").read_text())
    for key, value in change.items():
        if "__" in key:
            outer, inner = key.split("__")
            meta[outer] = {**meta[outer], inner: value}
        else:
            meta[key] = value
    (path / "metadata.json").write_text(json.dumps(meta))


def write_starts(path: Path, starts: list[int]) -> None:
    np.save(path / "doc_starts.npy", np.array(starts, dtype=np.int64))


# ---- item 1: an output never is, contains, or lies inside what is read -----------------------------------------


def test_export_into_the_store_it_reads_is_refused(store):
    before = tree(store.path)
    for out in (store.path / "tokens.npy", store.path / "new.bin"):
        with pytest.raises(ValueError, match=r"lies inside the store being exported"):
            export(store, out, force=True)
    line = one_error_line(cli("export", store.path, "-o", store.path / "tokens.npy", "--force"))
    assert "lies inside the store being exported" in line
    assert tree(store.path) == before and TokenStore.open(store.path).tokens.tolist() == store.tokens.tolist()


def test_prepare_never_reads_its_own_output(store, tmp_path):
    before = tree(store.path)
    link = tmp_path / "link.store"
    link.symlink_to(store.path)
    cases = [
        ([store.path], "is an input"),  # the issue's `prepare out.store -o out.store --force --errors replace`
        ([link], "is an input"),  # through a symbolic link
        ([store.path / "tokens.npy"], "contains an input"),
    ]
    for inputs, message in cases:
        with pytest.raises(ValueError, match=message):
            prepare(inputs, store.path, force=True, errors="replace", workers=1)
        line = one_error_line(cli("prepare", *inputs, "-o", store.path, "--force", "--errors", "replace", "-q"))
        assert message in line
    assert tree(store.path) == before


def test_merge_never_replaces_an_input(store, tmp_path):
    other = prepare([tmp_path / "corpus" / "0.txt"], tmp_path / "o.store", workers=1)
    before = tree(store.path)
    with pytest.raises(ValueError, match="is an input store"):
        merge([store.path, other.path], store.path, force=True)
    split = prepare(sorted((tmp_path / "corpus").iterdir()), tmp_path / "split", workers=1, val_fraction=0.5, seed=1)
    with pytest.raises(ValueError, match="contains an input store"):
        merge([split.train.path, other.path], tmp_path / "split", force=True)
    assert "is an input store" in one_error_line(cli("merge", store.path, other.path, "-o", store.path, "--force"))
    assert tree(store.path) == before and TokenStore.open(tmp_path / "split" / "train")


# ---- item 3: the document index, the counts, the separator, the version ----------------------------------------


@pytest.mark.parametrize(("starts", "message"), [
    ([0, 12, 3, 20], r"not in increasing order: entry 2 is 3, after 12"),  # garbage documents before
    ([0, -5, 3, 20], r"not in increasing order: entry 1 is -5"),  # negative dropped_tokens before
    ([0, 3, 3, 20], r"entry 2 is 3, after 3 at entry 1 \(documents are separated by one token\)"),
    ([0, 3, 4, 2**40], r"points past the end of the tokens: its last entry is 1,099,511,627,776"),  # 931 GiB before
    ([5, 7, 9, 11], r"does not start at token 0"),
])
def test_document_index_is_checked_whole(store, starts, message):
    write_starts(store.path, starts)
    with pytest.raises(StoreError, match=message):
        TokenStore.open(store.path)
    assert message.split(":")[0].split(r" \(")[0].replace("\\", "") in one_error_line(cli("info", store.path))


@pytest.mark.parametrize(("change", "message"), [
    ({"version": True}, r"format version True; this lmfeed reads version 1"),
    ({"version": 1.0}, r"format version 1.0"),
    ({"eot_id": 60000}, r"eot_id 60000 is not an id of the vocabulary \(0 to 50,256\)"),
    ({"eot_id": True}, r"eot_id True is not an id"),
    ({"num_documents": 3}, r"num_documents 3 is not the corpus's 4 documents"),
    ({"corpus_documents": 7}, r"num_documents 4 is not the corpus's 7 documents"),
    ({"tokenizer__n_vocab": 70000}, r"dtype uint16 cannot hold the ids of a vocabulary of 70,000"),
    ({"tokenizer__n_vocab": "50257"}, r"tokenizer has no name, fingerprint and n_vocab"),
    ({"num_tokens": True}, r"num_tokens True is not a count"),
])
def test_metadata_counts_and_types_are_strict(store, change, message):
    rewrite(store.path, **change)
    with pytest.raises(StoreError, match=message):
        TokenStore.open(store.path)


def test_separator_and_vocabulary_size_are_checked_against_the_tokenizer(store):
    rewrite(store.path, eot_id=100)  # an id of the vocabulary, but not a special token
    opened = TokenStore.open(store.path)
    with pytest.raises(StoreError, match=r"separated by id 100, which is not a special token of tokenizer 'gpt2' "
                                         r"\(its special ids: 50256\)"):
        _ = opened.tokenizer
    rewrite(store.path, eot_id=50256, tokenizer__n_vocab=50300)
    with pytest.raises(StoreError, match=r"says the vocabulary has 50,300 ids, but tokenizer 'gpt2'.*has 50,257"):
        _ = TokenStore.open(store.path).tokenizer


def test_shard_counts_are_cross_checked(docs_dir, tmp_path):
    shard = prepare(sorted(docs_dir.iterdir()), tmp_path / "shard", workers=1, num_shards=3, shard_index=0)
    assert shard.num_documents == 2  # documents 0 and 3 of 4
    rewrite(shard.path, corpus_documents=9)
    with pytest.raises(StoreError, match=r"num_documents 2 is not what shard 0 of 3 takes of 9 documents"):
        TokenStore.open(shard.path)


def test_a_merged_store_is_validated_before_it_takes_the_name(store, tmp_path, monkeypatch):
    concatenate = merge_module._concatenate

    def wrong_count(writer, stores):  # noqa: ANN001 - a merge whose metadata came out inconsistent
        return {**concatenate(writer, stores), "corpus_documents": 10**6}

    monkeypatch.setattr(merge_module, "_concatenate", wrong_count)
    with pytest.raises(StoreError, match="num_documents 8 is not the corpus's 1,000,000 documents"):
        merge([store.path, store.path], tmp_path / "m.store")
    assert not (tmp_path / "m.store").exists() and not list(tmp_path.glob(".m.store*"))


# ---- item 4: ids at or above the vocabulary size --------------------------------------------------------------


def poison(store: TokenStore, offsets: list[int], value: int = 65535) -> None:
    tokens = np.load(store.path / "tokens.npy", mmap_mode="r+")
    tokens[offsets] = value
    tokens.flush()
    del tokens


def test_ids_outside_the_vocabulary_are_found_and_named(store, tmp_path):
    poison(store, [3, 7])
    damaged = TokenStore.open(store.path)  # opening reads no ids
    message = rf"{store.path / 'tokens.npy'}: token 3 is id 65535, at or above the vocabulary size 50,257 \(2 such ids"
    with pytest.raises(StoreError, match=message):
        damaged.verify()
    assert "token 3 is id 65535" in one_error_line(cli("info", store.path, "--verify", "--head", "1"))
    assert "token 3 is id 65535" in one_error_line(cli("info", store.path))  # not 'Invalid token for decoding'
    line = one_error_line(cli("batch", store.path, "--batch-size", "1", "--max-length", "2", "--stride", "2",
                              "--index", "1"))
    assert "token 3 is id 65535" in line  # not Error: '65535'
    with pytest.raises(StoreError, match="token 3 is id 65535"):
        export(damaged, tmp_path / "x.bin")
    with pytest.raises(StoreError, match="token 3 is id 65535"):
        merge([damaged, damaged], tmp_path / "m.store")
    assert not (tmp_path / "x.bin").exists() and not (tmp_path / "m.store").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "s.store"]


def test_merged_shards_with_a_bad_id_are_refused(docs_dir, tmp_path):
    shards = [prepare(sorted(docs_dir.iterdir()), tmp_path / f"shard{i}", workers=1, num_shards=2, shard_index=i)
              for i in range(2)]
    poison(shards[1], [1])
    with pytest.raises(StoreError, match=r"shard1/tokens.npy: token 1 is id 65535"):
        merge([s.path for s in shards], tmp_path / "m.store")


def test_verify_checks_every_separator(store):
    poison(store, [int(store.doc_starts[2]) - 1], value=11)  # the separator before document 2
    with pytest.raises(StoreError, match=r"document 2 starts at token \d+, but token \d+ before it is id 11, not the "
                                         r"separator 50256"):
        TokenStore.open(store.path).verify()


def test_info_verify_reports_what_it_checked(store):
    r = cli("info", store.path, "--verify")
    assert r.exit_code == 0, r.output
    assert f"verified:   {len(store):,} ids below 50,257, 3 separators in place" in r.output
    assert json.loads(cli("info", store.path, "--verify", "--json").output)["verified"] == {
        "tokens": len(store), "separators": 3}


# ---- item 16: damaged optional metadata is named ----------------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    ({"shard": {"num_shards": 2}}, r"shard \{'num_shards': 2\} is not \{num_shards, shard_index\}"),
    ({"shard": {"num_shards": 2, "shard_index": 2}}, r"with shard_index below num_shards"),
    ({"split": "train"}, r"split 'train' is not \{part: train or val"),
    ({"sources": [{"files": 1}]}, r"sources .* is not a list of \{input, ...\}"),
    ({"sources": "a.txt"}, r"sources 'a.txt' is not a list"),
    ({"options": []}, r"options \[\] is not an object"),
    ({"tokenizer": {"name": "gpt2", "fingerprint": "x"}}, r"tokenizer has no name, fingerprint and n_vocab"),
])
def test_damaged_optional_metadata_is_named(store, change, message):
    rewrite(store.path, **change)
    with pytest.raises(StoreError, match=message):
        TokenStore.open(store.path)
    line = one_error_line(cli("info", store.path))
    assert "metadata.json is damaged" in line and "Cannot specify" not in line


# ---- item 17: a file this user may not read is not a damaged store ----------------------------------------------


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file whatever its mode")
@pytest.mark.parametrize("name", ["tokens.npy", "metadata.json", ""])
def test_an_unreadable_store_is_not_called_damaged(store, name):
    target = store.path / name if name else store.path
    target.chmod(0o000)
    try:
        with pytest.raises(PermissionError, match=r"Cannot read .*: permission denied. The store is not damaged"):
            TokenStore.open(store.path)
    finally:
        target.chmod(0o755 if not name else 0o644)


def test_an_unreadable_store_is_not_called_damaged_as_root_too(store, monkeypatch):
    """Root reads any file, so the refusal the kernel would give is simulated where numpy opens the file."""
    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("lmfeed.store.format.open", refuse, raising=False)
    with pytest.raises(PermissionError, match=r"Cannot read .*tokens.npy: permission denied. The store is not damaged"):
        TokenStore.open(store.path)


# ---- item 18: merge compares only what decides the ids ---------------------------------------------------------


def test_stores_read_with_other_options_merge_and_keep_their_options(docs_dir, tmp_path):
    (tmp_path / "c.jsonl").write_text(json.dumps({"body": "From JSON Lines"}) + "\n")
    a = prepare([docs_dir], tmp_path / "a.store", workers=1, glob="*.txt")
    b = prepare([tmp_path / "c.jsonl"], tmp_path / "b.store", workers=1, field="body", errors="replace")
    merged = merge([a, b], tmp_path / "m.store")
    want = ENC.encode(ENDOFTEXT.join([*DOCS, "From JSON Lines"]), allowed_special={ENDOFTEXT})
    assert merged.tokens.tolist() == want
    sources = merged.metadata["sources"]
    assert [(s["options"]["glob"], s["options"]["field"], s["options"]["errors"]) for s in sources] == [
        ("*.txt", "text", "strict"), ("*", "body", "replace")]
    assert merged.metadata["options"] == {"allow_special": False, "format": "auto"}  # what they share
    special = prepare([docs_dir], tmp_path / "sp.store", workers=1, allow_special=True)
    with pytest.raises(ValueError, match=r"differ in allow_special \(True vs False\), which decides the ids"):
        merge([a, special], tmp_path / "m2.store")


def test_vocabulary_is_compared_by_fingerprint(store, tmp_path):
    other = tmp_path / "other.store"
    shutil.copytree(store.path, other)
    rewrite(other, tokenizer__fingerprint="0" * 64)
    with pytest.raises(ValueError, match=r"differ in vocabulary \(gpt2 \(50,257 ids, fingerprint 000000000000\)"):
        merge([store.path, other], tmp_path / "m.store")
