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
        (d / name).write_bytes(gzip.compress(b"") if name.endswith(".gz") else b"")  # compression: by first bytes
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
    with pytest.raises(ValueError, match=r"l.jsonl:1: the line is a JSON array"):
        list(iter_document_blocks(expand_inputs(tmp_path / "l.jsonl")))


def test_corrupt_gzip_names_the_file(tmp_path):
    (tmp_path / "x.txt.gz").write_bytes(gzip.compress(b"hello world")[:-6])
    with pytest.raises(ValueError, match=r"x.txt.gz: the gzip stream ends early \(a truncated file\) at byte [\d,]+"):
        list(iter_document_blocks(expand_inputs(tmp_path / "x.txt.gz")))


# ---- issue #15: JSON Lines records and inputs that used to give Python's own errors ------------------------------


def _read(path, **kwargs):
    return ["".join(t if isinstance(t, str) else t.text() for _, t in blocks)
            for blocks in [list(iter_document_blocks(expand_inputs([path]), **kwargs))]][0]


def test_a_lone_surrogate_in_json_is_an_error_under_strict(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"text": "a\\ud800b"}\n{"text": "pair \\ud83d\\ude00 is fine"}\n')
    with pytest.raises(ValueError, match=r"s.jsonl:1: field 'text' holds a lone surrogate \(\\ud800, half of a UTF-16 "
                                         r"pair\) at character 1: it is not text.*--errors replace"):
        _read(path)
    texts = [t.text() if not isinstance(t, str) else t
             for _, t in iter_document_blocks(expand_inputs([path]), errors="replace")]
    assert texts == ["a\ufffdb", "pair \U0001f600 is fine"]  # as undecodable bytes: U+FFFD, or dropped
    assert [t for _, t in iter_document_blocks(expand_inputs([path]), errors="skip")][0] == "ab"


def test_a_deeply_nested_record_is_one_clear_error(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text('{"text": "ok", "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.raises(ValueError, match=r"deep.jsonl:1: the record is nested too deeply to parse"):
        _read(path)


def test_a_byte_order_mark_on_the_first_line_is_skipped(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"text": "first"}\n{"text": "second"}\n')
    assert [t for _, t in iter_document_blocks(expand_inputs([path]))] == ["first", "second"]
    path.write_bytes(b'\xef\xbb\xbf{"text": "\xff"}\n')  # offsets still count the mark's 3 bytes
    with pytest.raises(ValueError, match=r"bom.jsonl:1: byte 13 of the file is not valid UTF-8"):
        _read(path)


@pytest.mark.parametrize(("line", "message"), [
    ('{"text": null}', r"field 'text' is null, not a string"),
    ('{"text": [1]}', r"field 'text' is a JSON array, not a string"),
    ('{"text": {"a": 1}}', r"field 'text' is a JSON object, not a string"),
    ('{"text": true}', r"field 'text' is a JSON boolean, not a string"),
    ('{"text": 1.5}', r"field 'text' is a JSON number, not a string"),
    ("[1, 2]", r"the line is a JSON array, not an object"),
    ("null", r"the line is a JSON null, not an object"),
])
def test_json_types_are_named_as_json_names_them(tmp_path, line, message):
    path = tmp_path / "t.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ValueError, match=message):
        _read(path)


def test_gzip_that_is_not_named_gz_is_read_by_its_first_bytes(tmp_path):
    (tmp_path / "a.txt").write_bytes(gzip.compress(b"Hello world\n"))  # compression comes from the magic bytes
    (tmp_path / "a.jsonl").write_bytes(gzip.compress(b'{"text": "Hello world"}\n'))
    assert [t for _, t in iter_document_blocks(expand_inputs(tmp_path / "a.txt"))] == ["Hello world\n"]
    assert [t for _, t in iter_document_blocks(expand_inputs(tmp_path / "a.jsonl"))] == ["Hello world"]


def test_gzip_piped_to_stdin_gets_a_hint(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "from lmfeed.cli import main; main()", "prepare", "-", "-o",
                           str(tmp_path / "s"), "-q", "--workers", "1"],
                          input=gzip.compress(b"Hello world\n"), capture_output=True, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and err.startswith("Error: -: byte 1 is not valid UTF-8") and "gzip" in err, err


def test_closed_stdin_is_a_clear_error(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "from lmfeed.cli import main; main()", "prepare", "-", "-o",
                           str(tmp_path / "s"), "-q"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          check=False, preexec_fn=lambda: __import__("os").close(0))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == ("Error: stdin ('-') is closed: there is nothing to read. Pipe the text in "
                                   "(`cat FILE | lmfeed prepare - ...`) or name the files."), proc.stderr


@pytest.mark.parametrize(("inputs", "error", "message"), [
    (None, TypeError, r"inputs must be a path \(str or os.PathLike\), '-' for stdin, or a list of them, but got None"),
    ([None], TypeError, r"Each input must be a path \(str or os.PathLike\) or '-', but got None"),
    ([3], TypeError, r"but got 3 \(int\)"),
    ([""], ValueError, r"An input is the empty string ''"),
])
def test_inputs_that_are_not_paths(inputs, error, message):
    with pytest.raises(error, match=message):
        expand_inputs(inputs)


def test_bytes_paths_are_paths(tmp_path):
    (tmp_path / "a.txt").write_text("Hello")
    assert [f.path for f in expand_inputs(bytes(tmp_path / "a.txt"))] == [tmp_path / "a.txt"]
