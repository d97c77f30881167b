"""prepare: the store's ids are tiktoken's ids for the documents joined with end-of-text, for any workers,
with long documents cut where cutting changes nothing, and clear errors for bad input."""

from __future__ import annotations

import gzip
import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import tiktoken
from hypothesis import given, strategies as st

from lmfeed.store.format import StoreError, TokenStore
from lmfeed.store.prepare import TrainVal, _pieces, prepare, safe_split, val_mask
from lmfeed.text.sources import python_reference
from lmfeed.text.tokenizer import ENDOFTEXT, get_tokenizer

prepare_module = importlib.import_module("lmfeed.store.prepare")  # the module (lmfeed.prepare is the function)

ENC = get_tokenizer("gpt2")


def joined_ids(docs: list[str], enc: tiktoken.Encoding = ENC) -> list[int]:
    """The reference: tiktoken's own encoding of the documents joined with the end-of-text literal."""
    return enc.encode(ENDOFTEXT.join(docs), allowed_special={ENDOFTEXT})


def write_docs(directory: Path, docs: list[str]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, doc in enumerate(docs):
        p = directory / f"doc{i:03d}.txt"
        p.write_text(doc, encoding="utf-8")
        paths.append(p)
    return paths


def dir_bytes(path: Path) -> dict[str, bytes]:
    return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def docs() -> list[str]:
    return python_reference()[:24]


def test_ids_equal_tiktoken_on_joined_documents(tmp_path, docs):
    files = write_docs(tmp_path / "in", docs)
    store = prepare(files, tmp_path / "out", workers=1)
    assert store.tokens.dtype == np.uint16
    assert store.tokens.tolist() == joined_ids(docs)
    assert store.num_documents == len(docs) and store.eot_id == 50256
    for i in (0, 7, len(docs) - 1):
        assert store.document(i).tolist() == ENC.encode_ordinary(docs[i])
        assert store.tokenizer.decode(store.document(i).tolist()) == docs[i]
    assert np.array_equal(store.doc_ends - store.doc_starts, [len(ENC.encode_ordinary(d)) for d in docs])


def test_golden_hello_world(tmp_path):
    (tmp_path / "a.txt").write_text("Hello world")
    (tmp_path / "b.txt").write_text("Hello world")
    store = prepare([tmp_path / "a.txt", tmp_path / "b.txt"], tmp_path / "s", workers=1)
    assert store.tokens.tolist() == [15496, 995, 50256, 15496, 995]  # tiktoken's GPT-2 ids
    assert store.doc_starts.tolist() == [0, 3] and store.doc_ends.tolist() == [2, 5]


def test_identical_bytes_for_one_and_two_workers(tmp_path, docs, monkeypatch):
    # small pieces, so documents are cut and tasks interleave across the two processes
    monkeypatch.setattr(prepare_module, "_PIECE_CHARS", 2000)
    files = write_docs(tmp_path / "in", docs)
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs[:5]))
    one = prepare([*files, jsonl], tmp_path / "w1", workers=1)
    two = prepare([*files, jsonl], tmp_path / "w2", workers=2)
    assert dir_bytes(one.path) == dir_bytes(two.path)
    assert one.tokens.tolist() == joined_ids(docs + docs[:5])


def test_literal_endoftext_is_text_unless_allowed(tmp_path):
    doc = "before <|endoftext|> after"
    (tmp_path / "a.txt").write_text(doc)
    plain = prepare([tmp_path / "a.txt"], tmp_path / "plain", workers=1)
    assert plain.tokens.tolist() == ENC.encode_ordinary(doc) and 50256 not in plain.tokens.tolist()
    special = prepare([tmp_path / "a.txt"], tmp_path / "special", workers=1, allow_special=True)
    assert special.tokens.tolist() == ENC.encode(doc, allowed_special={ENDOFTEXT})
    assert special.tokens.tolist().count(50256) == 1


def test_no_eot_concatenates_documents(tmp_path, docs):
    files = write_docs(tmp_path / "in", docs[:3])
    store = prepare(files, tmp_path / "s", workers=1, eot=False)
    assert store.eot_id is None
    assert store.tokens.tolist() == sum((ENC.encode_ordinary(d) for d in docs[:3]), [])
    assert store.document(1).tolist() == ENC.encode_ordinary(docs[1])


def test_empty_documents_keep_their_place(tmp_path):
    docs = ["a", "", "b", ""]
    store = prepare(write_docs(tmp_path / "in", docs), tmp_path / "s", workers=1)
    assert store.tokens.tolist() == joined_ids(docs)
    assert [store.document(i).tolist() for i in range(4)] == [ENC.encode_ordinary(d) for d in docs]


def test_directories_gzip_and_jsonl(tmp_path, docs):
    d = tmp_path / "corpus"
    (d / "sub").mkdir(parents=True)
    (d / "b.txt").write_text(docs[1])
    (d / "sub" / "a.txt").write_text(docs[0])
    (d / "skip.md").write_text("not matched by the glob")
    with gzip.open(d / "c.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps({"body": docs[2]}) + "\n\n" + json.dumps({"body": docs[3]}) + "\n")
    store = prepare([d], tmp_path / "s", workers=1, glob="*.txt")
    assert store.tokens.tolist() == joined_ids([docs[1], docs[0]])  # sorted relative paths: b.txt < sub/a.txt
    store = prepare([d / "c.jsonl.gz"], tmp_path / "j", workers=1, field="body")
    assert store.tokens.tolist() == joined_ids([docs[2], docs[3]])
    options = {"allow_special": False, "errors": "strict", "field": "body", "format": "auto", "glob": "*"}
    assert store.metadata["sources"] == [{"input": str(d / "c.jsonl.gz"), "files": 1,
                                          "bytes": (d / "c.jsonl.gz").stat().st_size, "options": options}]


def test_uint32_for_a_vocabulary_above_65536_ids(tmp_path):
    big = tiktoken.Encoding(name="gpt2-big", pat_str=ENC._pat_str, mergeable_ranks=ENC._mergeable_ranks,
                            special_tokens={ENDOFTEXT: 70_000})
    docs = ["Hello world", "Bye"]
    store = prepare(write_docs(tmp_path / "in", docs), tmp_path / "s", tokenizer=big, workers=2)
    assert store.tokens.dtype == np.uint32 and store.metadata["dtype"] == "uint32"
    assert store.tokens.tolist() == [15496, 995, 70_000, *ENC.encode_ordinary("Bye")]
    with pytest.raises(StoreError, match="does not know"):
        _ = TokenStore.open(store.path).tokenizer
    assert TokenStore.open(store.path, tokenizer=big).tokenizer.decode([15496, 995]) == "Hello world"
    with pytest.raises(StoreError, match="vocabulary"):
        TokenStore.open(store.path, tokenizer=ENC)


# ---- cutting long documents -----------------------------------------------------------------------------------

_ALPHABET = st.sampled_from(
    list("ab Z1 9.,!'s\n\n\t\r ") + ["'ll", "'re", " ", "  ", "\n\n", "\u00a0", "\u2028", "\u3000", "\x85", "\x1c",
                                     "\u200b", "é", "中文", "😀", "<|endoftext|>", "123456", "...", " \n", "\r\n"]
)
texts = st.lists(_ALPHABET, min_size=1, max_size=60).map("".join)


@given(texts)
def test_every_safe_cut_keeps_the_ids(text):
    whole = ENC.encode_ordinary(text)
    cuts = {m.start() + 1 for p in (prepare_module._NEWLINE_CUT, prepare_module._SPACE_CUT) for m in p.finditer(text)}
    cuts |= {m.start() + 1 for m in __import__("re").finditer(r"(?=\S[\n ])", text)}  # overlapping ones too
    for cut in cuts:
        assert ENC.encode_ordinary(text[:cut]) + ENC.encode_ordinary(text[cut:]) == whole, (text, cut)


@given(texts, st.integers(min_value=1, max_value=12))
def test_pieces_reassemble_to_the_same_ids(text, piece_chars):
    blocks = [(0, text[i : i + 5]) for i in range(0, len(text), 5)] + [(1, text)]
    pieces = list(_pieces(blocks, True, piece_chars))
    for doc in (0, 1):
        mine = [(t, s) for d, t, s in pieces if d == doc]
        assert "".join(t for t, _ in mine) == text and [s for _, s in mine][0] and not any(s for _, s in mine[1:])
        assert sum((ENC.encode_ordinary(t) for t, _ in mine), []) == ENC.encode_ordinary(text)


_NO_SPACE = st.sampled_from(list("abZ19.,!'sdlvret_-/+=()[]{}\"#@~`") + ["'ll", "'re", "'S", "é", "中", "😀", "\u200b",
                                                                        "123", "...", "\x00", "\x7f", "ab12"])


@given(st.lists(_NO_SPACE, min_size=1, max_size=60).map("".join))
def test_every_class_cut_keeps_the_ids(text):
    # #15 item 21: text without spaces or newlines is cut between ASCII classes; tiktoken itself is the judge
    whole = ENC.encode_ordinary(text)
    for m in prepare_module._CLASS_CUT.finditer(text):
        cut = m.start() + 1
        assert ENC.encode_ordinary(text[:cut]) + ENC.encode_ordinary(text[cut:]) == whole, (text, cut)


def test_a_long_document_without_spaces_is_cut_into_bounded_pieces(tmp_path):
    # minified-code-like text with no space or newline: pieces stay near piece_chars, ids stay tiktoken's
    text = "".join(f"var{i}=f({i},'x{i % 7}');" for i in range(3_000))
    pieces = list(_pieces([(0, text[i : i + 1000]) for i in range(0, len(text), 1000)], True, 2_000))
    assert len(pieces) > 10 and max(len(t) for _, t, _ in pieces) < 2_000 + 1_000
    assert "".join(t for _, t, _ in pieces) == text
    assert sum((ENC.encode_ordinary(t) for _, t, _ in pieces), []) == ENC.encode_ordinary(text)
    (tmp_path / "min.js").write_text(text * 20, encoding="utf-8")  # ~1.5 MB: above prepare's 1 MB piece size
    store = prepare(tmp_path / "min.js", tmp_path / "s", workers=2, backend="tiktoken")
    assert store.tokens.tolist() == ENC.encode_ordinary(text * 20)


def test_safe_split_examples():
    assert safe_split("Hello world\nBye") == 11
    assert safe_split("Hello world") == 5  # before the space
    assert safe_split("Hello  \n\nworld") == -1 + 6  # only "o " qualifies: between "Hello" and the spaces
    assert safe_split("aaaa") == -1
    assert safe_split("ab12cd") == 4 and safe_split("x's") == 1 and safe_split("'sa") == -1  # never after "'"


# ---- validation split ------------------------------------------------------------------------------------------


def test_val_split_is_by_whole_documents_and_deterministic(tmp_path, docs):
    files = write_docs(tmp_path / "in", docs)
    tv = prepare(files, tmp_path / "s", workers=1, val_fraction=0.3, seed=7)
    assert isinstance(tv, TrainVal) and TokenStore.is_store(tmp_path / "s" / "train")
    is_val = val_mask(np.arange(len(docs)), val_fraction=0.3, seed=7)
    assert 0 < is_val.sum() < len(docs)
    assert tv.val.tokens.tolist() == joined_ids([d for d, v in zip(docs, is_val, strict=True) if v])
    assert tv.train.tokens.tolist() == joined_ids([d for d, v in zip(docs, is_val, strict=True) if not v])
    again = prepare(files, tmp_path / "s2", workers=2, val_fraction=0.3, seed=7)
    assert dir_bytes(tmp_path / "s") == dir_bytes(again.train.path.parent)
    assert not np.array_equal(val_mask(np.arange(200), val_fraction=0.3, seed=8),
                              val_mask(np.arange(200), val_fraction=0.3, seed=7))
    with pytest.raises(StoreError, match="train/validation split"):
        TokenStore.open(tmp_path / "s")


def test_val_mask_fraction_is_about_right():
    frac = val_mask(np.arange(100_000), val_fraction=0.1, seed=0).mean()
    assert 0.095 < frac < 0.105  # binomial sd is ~0.001


# ---- errors ----------------------------------------------------------------------------------------------------


def test_missing_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        prepare([tmp_path / "nope.txt"], tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_non_utf8_names_file_and_byte_offset(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine text \xff more")
    with pytest.raises(ValueError, match=r"bad.txt: byte 10 is not valid UTF-8 \(0xff"):
        prepare([bad], tmp_path / "s", workers=1)
    assert not (tmp_path / "s").exists() and not list(tmp_path.glob(".s.tmp-*"))
    assert (prepare([bad], tmp_path / "r", workers=1, errors="replace").tokens.tolist()
            == ENC.encode_ordinary("fine text \ufffd more"))
    assert (prepare([bad], tmp_path / "k", workers=1, errors="skip").tokens.tolist()
            == ENC.encode_ordinary("fine text  more"))


def test_non_utf8_offset_across_read_blocks(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes("é".encode() * 700_000 + b"\xc3(")  # the bad byte sits past the first 1 MiB block
    with pytest.raises(ValueError, match="byte 1,400,000 "):
        prepare([bad], tmp_path / "s", workers=1)


def test_jsonl_errors_name_file_and_line(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text('{"text": "ok"}\n\n{"body": "no text field"}\n')
    with pytest.raises(ValueError, match=r"c.jsonl:3: the record has no field 'text' \(its fields: 'body'\)"):
        prepare([f], tmp_path / "s", workers=1)
    f.write_text('{"text": "ok"}\n{"text": 3}\n')
    with pytest.raises(ValueError, match=r"c.jsonl:2: field 'text' is a JSON number, not a string"):
        prepare([f], tmp_path / "s", workers=1)
    f.write_text('{"text": "ok"}\n{"text": \n')
    with pytest.raises(ValueError, match=r"c.jsonl:2: not valid JSON"):
        prepare([f], tmp_path / "s", workers=1)
    f.write_bytes(b'{"text": "ok"}\n{"text": "bad \xff byte"}\n')  # decoded in a worker process
    with pytest.raises(ValueError, match=r"c.jsonl:2: byte 29 of the file is not valid UTF-8 \(0xff"):
        prepare([f], tmp_path / "s", workers=2)
    assert not (tmp_path / "s").exists() and not list(tmp_path.glob(".s.tmp-*"))


def test_empty_corpus(tmp_path):
    (tmp_path / "e.jsonl").write_text("\n\n")
    with pytest.raises(ValueError, match=r"corpus is empty: no documents in .*e\.jsonl\. Check"):
        prepare([tmp_path / "e.jsonl"], tmp_path / "s")
    (tmp_path / "e.txt").write_text("")
    with pytest.raises(ValueError, match=r"corpus is empty: 1 document in .*e\.txt, but no text"):
        prepare([tmp_path / "e.txt"], tmp_path / "s", eot=False)


def test_existing_output_needs_force_and_only_replaces_stores(tmp_path):
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "b.txt").write_text("two")
    prepare([tmp_path / "a.txt"], tmp_path / "s", workers=1)
    with pytest.raises(FileExistsError, match="--force"):
        prepare([tmp_path / "b.txt"], tmp_path / "s", workers=1)
    assert TokenStore.open(tmp_path / "s").tokens.tolist() == ENC.encode_ordinary("one")
    assert (prepare([tmp_path / "b.txt"], tmp_path / "s", workers=1, force=True).tokens.tolist()
            == ENC.encode_ordinary("two"))
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError, match="not a token store"):
        prepare([tmp_path / "a.txt"], tmp_path / "precious", workers=1, force=True)
    assert (tmp_path / "precious" / "thesis.tex").exists()


@pytest.mark.parametrize("kwargs, match", [
    ({"workers": 0}, "workers must be at least 1"),
    ({"num_shards": 2, "shard_index": 2}, "shard_index must be at most 1"),
    ({"val_fraction": 1.0}, r"val_fraction must be in \[0, 1\)"),
    ({"errors": "ignore"}, "Unknown errors 'ignore'"),
    ({"tokenizer": "gpt5"}, "Unknown tokenizer 'gpt5'"),
])
def test_bad_options(tmp_path, kwargs, match):
    (tmp_path / "a.txt").write_text("one")
    with pytest.raises(ValueError, match=match):
        prepare([tmp_path / "a.txt"], tmp_path / "s", **kwargs)


def test_create_dataloader_from_store_path_equals_from_text(tmp_path, docs):
    import torch

    from lmfeed.loading.loader import create_dataloader

    store = prepare(write_docs(tmp_path / "in", docs[:6]), tmp_path / "s", workers=2)
    text = ENDOFTEXT.join(docs[:6])
    for kwargs in ({"shuffle": False}, {"shuffle": True, "seed": 5}):
        from_store = list(create_dataloader(store.path, batch_size=4, max_length=16, stride=8, **kwargs))
        from_text = list(create_dataloader(text, batch_size=4, max_length=16, stride=8, **kwargs))
        assert len(from_store) == len(from_text) > 10
        for (x1, y1), (x2, y2) in zip(from_store, from_text, strict=True):
            assert torch.equal(x1, x2) and torch.equal(y1, y2) and x1.dtype == torch.int64


def test_package_reexports_the_function_not_the_module():
    import lmfeed
    import lmfeed._api
    import lmfeed.store.merge  # noqa: F401 - imports the submodule lmfeed.store.prepare, which must not shadow the function

    # lmfeed.prepare is the engine dispatch (lmfeed._api), a function either way, never the module
    assert lmfeed.prepare is lmfeed._api.prepare and callable(lmfeed.prepare) and callable(prepare_module.prepare)
    assert lmfeed.TokenStore is TokenStore
