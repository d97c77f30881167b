"""sources: the default corpus, read_text, and streaming documents from files, directories, .gz and JSON Lines."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import given, strategies as st

from lmfeed.text.sources import ReadStats, expand_inputs, iter_document_blocks, python_reference, read_text


def test_python_reference_is_sorted_topics():
    from pydoc_data.topics import topics

    docs = python_reference()
    assert docs == [topics[k] for k in sorted(topics)] and len(docs) > 50


def test_read_text_errors(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"abc\x80")
    with pytest.raises(ValueError, match="byte 3 is 0x80"):
        read_text(tmp_path / "bad.txt")
    assert read_text(tmp_path / "bad.txt", errors="replace") == "abc\ufffd"
    with pytest.raises(FileNotFoundError):
        read_text(tmp_path / "missing.txt")


def test_expand_inputs_order_formats_and_errors(tmp_path):
    d = tmp_path / "d"
    (d / "z").mkdir(parents=True)
    for name in ("b.txt", "a.jsonl", "z/c.ndjson.gz", "z/e.txt.gz"):
        (d / name).write_bytes(b"")
    files = expand_inputs([d, "-"])
    assert [f.name for f in files] == [f"{d}/a.jsonl", f"{d}/b.txt", f"{d}/z/c.ndjson.gz", f"{d}/z/e.txt.gz", "-"]
    assert [f.format for f in files] == ["jsonl", "text", "jsonl", "text", "text"]
    assert [f.compressed for f in files] == [False, False, True, True, False]
    assert {f.input for f in files[:4]} == {str(d)}
    assert [f.name for f in expand_inputs(d, glob="*.txt")] == [f"{d}/b.txt"]
    assert expand_inputs(d / "b.txt", format="jsonl")[0].format == "jsonl"
    with pytest.raises(ValueError, match="no files matching glob"):
        expand_inputs(d, glob="*.csv")
    with pytest.raises(ValueError, match="more than once"):
        expand_inputs(["-", "-"])
    with pytest.raises(FileNotFoundError, match="nope"):
        expand_inputs([tmp_path / "nope"])
    with pytest.raises(ValueError, match="No inputs"):
        expand_inputs([])


@given(st.text(max_size=300), st.integers(min_value=1, max_value=64))
def test_text_blocks_reassemble_whatever_the_block_size(tmp_path_factory, text, block_size):
    path = tmp_path_factory.mktemp("t") / "doc.txt"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    blocks = list(iter_document_blocks(expand_inputs(path), block_size=block_size))
    assert {d for d, _ in blocks} == {0} and "".join(b for _, b in blocks) == text.encode(
        "utf-8", "surrogatepass").decode("utf-8", "surrogatepass")


def test_select_skips_documents_but_counts_them(tmp_path):
    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "b.jsonl").write_text('{"text": "B0"}\n\n{"text": "B1"}\nnot json, but not selected\n')
    with gzip.open(tmp_path / "c.txt.gz", "wt") as f:
        f.write("C")
    files = expand_inputs([tmp_path / "a.txt", tmp_path / "b.jsonl", tmp_path / "c.txt.gz"])
    stats = ReadStats()
    got = list(iter_document_blocks(files, select=lambda k: k % 2 == 0, stats=stats))
    assert got == [(0, "A"), (2, "B1"), (4, "C")]
    assert stats.documents == 5 and stats.bytes_read == sum(f.size for f in files)


def test_empty_text_file_is_one_empty_document(tmp_path):
    (tmp_path / "e.txt").write_text("")
    assert list(iter_document_blocks(expand_inputs(tmp_path / "e.txt"))) == [(0, "")]


def test_jsonl_record_that_is_not_an_object(tmp_path):
    (tmp_path / "l.jsonl").write_text(json.dumps(["a list"]) + "\n")
    with pytest.raises(ValueError, match=r"l.jsonl:1: the line is a JSON list"):
        list(iter_document_blocks(expand_inputs(tmp_path / "l.jsonl")))


def test_corrupt_gzip_names_the_file(tmp_path):
    (tmp_path / "x.txt.gz").write_bytes(gzip.compress(b"hello world")[:-6])
    with pytest.raises(ValueError, match="x.txt.gz: not a readable gzip file"):
        list(iter_document_blocks(expand_inputs(tmp_path / "x.txt.gz")))
