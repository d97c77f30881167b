"""train_tokenizer: a byte-level BPE of the vocabulary size asked for, deterministic, from prepare's inputs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from lmfeed.text.sources import python_reference
from lmfeed.text.train_bpe import _chunks, train_tokenizer


def test_vocab_size_and_endoftext(tmp_path):
    enc = train_tokenizer(python_reference()[:30], vocab_size=600, out=tmp_path / "t.json")
    assert enc.n_vocab == 600 and enc.eot_token == 0
    assert Tokenizer.from_file(str(tmp_path / "t.json")).get_vocab_size() == 600
    # every byte is in the alphabet: any text encodes and decodes back
    text = "\x00\x7f\u00e9\U0001f600 tab\there"
    assert enc.decode(enc.encode_ordinary(text)) == text


def test_deterministic_and_the_same_from_files_as_from_documents(tmp_path):
    docs = python_reference()[:20]
    (tmp_path / "in").mkdir()
    for i, d in enumerate(docs):
        (tmp_path / "in" / f"{i:02d}.txt").write_text(d, encoding="utf-8")
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    a = train_tokenizer(docs, vocab_size=800, out=tmp_path / "a.json")
    b = train_tokenizer([tmp_path / "in"], vocab_size=800, out=tmp_path / "b.json")
    c = train_tokenizer(tmp_path / "docs.jsonl", vocab_size=800, out=tmp_path / "c.json")
    d = train_tokenizer([{"text": x} for x in docs], vocab_size=800)
    saved = {(tmp_path / f"{x}.json").read_bytes() for x in "abc"}
    assert len(saved) == 1
    assert a.fingerprint == b.fingerprint == c.fingerprint == d.fingerprint


def test_chunks_cut_only_before_spaces():
    rng = random.Random(0)
    text = " ".join("".join(rng.choice("ab\n") for _ in range(rng.randrange(1, 9))) for _ in range(600_000))
    pieces = list(_chunks(text))
    assert "".join(pieces) == text and len(pieces) > 2
    assert all(p[-1] not in " \n" and q[0] in " \n" for p, q in zip(pieces, pieces[1:], strict=False))


def test_refusals(tmp_path):
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(["a b"], vocab_size=100)
    with pytest.raises(TypeError, match="vocab_size"):
        train_tokenizer(["a b"], vocab_size=300.0)
    with pytest.raises(ValueError, match="empty"):
        train_tokenizer([""], vocab_size=300)
    with pytest.raises(TypeError, match="document 1 is a int"):
        train_tokenizer(["a", 3], vocab_size=300)
    with pytest.raises(ValueError, match="no string 'text'"):
        train_tokenizer([{"body": "x"}], vocab_size=300)
    (tmp_path / "t.json").write_text("keep me")
    with pytest.raises(FileExistsError, match="already exists"):
        train_tokenizer(["a b"], vocab_size=300, out=tmp_path / "t.json")
    assert (tmp_path / "t.json").read_text() == "keep me"
    with pytest.raises(FileNotFoundError):
        train_tokenizer([Path(tmp_path / "missing.txt")], vocab_size=300)


@pytest.mark.slow
def test_more_than_65536_ids(big_bpe_path):
    enc = Tokenizer.from_file(big_bpe_path)
    assert enc.get_vocab_size() > 65_536
