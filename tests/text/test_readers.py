"""Readers: compression by magic bytes, Parquet by row group, Python iterables and datasets, fsspec URLs, bad
records; every refusal names the file and the offset (or row) and the fix."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from lmfeed.text.compression import CorruptInputError, detect
from lmfeed.text.parquet import ParquetError, iter_row_group_texts, num_row_groups
from lmfeed.text.records import BadRecordError
from lmfeed.text.sources import ReadStats, expand_inputs, iter_document_blocks

DOCS = [f"document {i}: " + "word " * (i % 7) for i in range(300)]
LINES = "".join(json.dumps({"text": d}) + "\n" for d in DOCS).encode()
COMPRESS = {"gzip": gzip.compress, "zstd": zstandard.ZstdCompressor().compress, "bz2": bz2.compress,
            "xz": lzma.compress}


def texts(inputs, **kwargs) -> list[str]:
    files = expand_inputs(inputs, format=kwargs.pop("format", "auto"))
    return [t if isinstance(t, str) else t.text() for _, t in iter_document_blocks(files, **kwargs)]


@pytest.mark.parametrize("kind", sorted(COMPRESS))
def test_compression_is_read_by_magic_bytes_whatever_the_name(tmp_path, kind):
    (tmp_path / "data.jsonl").write_bytes(COMPRESS[kind](LINES))  # no compression suffix at all
    (files,) = expand_inputs(tmp_path / "data.jsonl")
    assert files.compression == kind and files.format == "jsonl"
    assert texts(tmp_path / "data.jsonl") == DOCS


def test_zstd_of_several_frames_and_json_gz_as_json_lines(tmp_path):
    half = len(LINES) // 2
    cut = LINES.rindex(b"\n", 0, half) + 1
    c = zstandard.ZstdCompressor()
    (tmp_path / "web.jsonl.zst").write_bytes(c.compress(LINES[:cut]) + c.compress(LINES[cut:]))
    assert texts(tmp_path / "web.jsonl.zst") == DOCS
    (tmp_path / "dolma.json.gz").write_bytes(gzip.compress(LINES))  # Dolma's naming
    assert texts(tmp_path / "dolma.json.gz") == DOCS


@pytest.mark.parametrize("kind", sorted(COMPRESS))
def test_truncated_compressed_input_names_file_and_offset(tmp_path, kind):
    data = COMPRESS[kind](LINES * 20)
    (tmp_path / "t.jsonl").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptInputError, match=r"t\.jsonl: the .* (ends|stream).* at byte [\d,]+"):
        texts(tmp_path / "t.jsonl")


def test_corrupt_zstd_names_the_offset(tmp_path):
    data = bytearray(COMPRESS["zstd"](LINES * 20))
    data[40:60] = b"\xff" * 20
    (tmp_path / "c.jsonl.zst").write_bytes(bytes(data))
    with pytest.raises(CorruptInputError, match=r"c\.jsonl\.zst: corrupt zstd data before byte [\d,]+.*zstd -t"):
        texts(tmp_path / "c.jsonl.zst")


def test_detect():
    assert [detect(m) for m in (b"\x1f\x8b\x08", b"\x28\xb5\x2f\xfd", b"BZh9", b"\xfd7zXZ\x00", b"PAR1")] == \
        ["gzip", "zstd", "bz2", "xz", None]


def write_parquet(path, docs, *, row_group_size=50, **columns):
    pq.write_table(pa.table({"text": docs, **columns}), path, row_group_size=row_group_size)


def test_parquet_rows_are_documents_one_row_group_at_a_time(tmp_path):
    write_parquet(tmp_path / "a.parquet", DOCS, id=list(range(len(DOCS))))
    assert num_row_groups(tmp_path / "a.parquet") == 6
    assert texts(tmp_path / "a.parquet") == DOCS
    assert list(iter_row_group_texts(tmp_path / "a.parquet", row_groups=[2])) == DOCS[100:150]
    pq.write_table(pa.table({"body": pa.array(DOCS).dictionary_encode()}), tmp_path / "dict.bin")
    assert texts(tmp_path / "dict.bin", field="body") == DOCS  # recognised by PAR1, not by name


def test_parquet_refusals_name_columns_types_and_offsets(tmp_path):
    write_parquet(tmp_path / "a.parquet", DOCS, id=list(range(len(DOCS))))
    with pytest.raises(ParquetError, match=r"has no column 'content'; its columns: text \(string\), id \(int64\)"):
        texts(tmp_path / "a.parquet", field="content")
    with pytest.raises(ParquetError, match=r"column 'id' holds int64, not text"):
        texts(tmp_path / "a.parquet", field="id")
    data = (tmp_path / "a.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(ParquetError, match=r"cut\.parquet: not a readable Parquet file \([\d,]+ bytes.*download"):
        texts(tmp_path / "cut.parquet")
    corrupt = bytearray(data)
    corrupt[200:4000] = b"\x07" * 3800
    (tmp_path / "bad.parquet").write_bytes(bytes(corrupt))
    with pytest.raises(ParquetError, match=r"bad\.parquet: row group \d+ \(from byte [\d,]+\) does not decode"):
        texts(tmp_path / "bad.parquet")


def test_null_rows_are_an_error_or_skipped_and_counted(tmp_path):
    write_parquet(tmp_path / "n.parquet", ["a", None, "b", None, "c"])
    with pytest.raises(ParquetError, match=r"row 1 \(row group 0\) has a null 'text'.*--on-bad-record skip"):
        texts(tmp_path / "n.parquet")
    stats = ReadStats()
    assert texts(tmp_path / "n.parquet", on_bad_record="skip", stats=stats) == ["a", "b", "c"]
    assert (stats.documents, stats.skipped) == (3, 2)


def test_bad_json_lines_records_are_skipped_without_an_index(tmp_path):
    lines = ['{"text": "a"}', '{"text": null}', '{"body": "x"}', '{"text": 5}', 'not json', '[1]', '{"text": "b"}']
    (tmp_path / "r.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(BadRecordError, match=r"r\.jsonl:2: field 'text' is null, not a string.*skip"):
        texts(tmp_path / "r.jsonl")
    stats = ReadStats()
    got = list(iter_document_blocks(expand_inputs(tmp_path / "r.jsonl"), on_bad_record="skip", stats=stats,
                                    raw_below=1 << 20))
    assert got == [(0, "a"), (1, "b")] and stats.skipped == 5


def test_python_records_and_their_refusals():
    assert texts(iter(["x", {"text": "y"}])) == ["x", "y"]
    assert texts([{"text": "x"}, {"text": "y"}]) == ["x", "y"]  # not paths: a list of mappings
    with pytest.raises(BadRecordError, match=r"record 1 has no 'text' field \(its keys: 'body'\)"):
        texts([{"text": "x"}, {"body": "y"}])
    stats = ReadStats()
    assert texts([{"text": "x"}, {"text": None}], on_bad_record="skip", stats=stats) == ["x"]
    assert stats.skipped == 1
    with pytest.raises(TypeError, match="record 0 is a int"):
        texts(iter([3]))


def test_datasets_are_streamed_by_column():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"text": DOCS, "n": list(range(len(DOCS)))})
    assert texts(ds) == DOCS
    assert texts(ds.to_iterable_dataset()) == DOCS
    with pytest.raises(BadRecordError, match=r"has no column 'body'; its columns: 'text', 'n'"):
        texts(ds, field="body")
    with pytest.raises(BadRecordError, match="column 'n' holds int64, not text"):
        texts(ds, field="n")


def test_memory_urls_with_globs(tmp_path):
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    fs.pipe("/corpus/b.jsonl.zst", COMPRESS["zstd"](LINES))
    fs.pipe("/corpus/a.txt", b"first")
    fs.pipe("/corpus/.hidden", b"never")
    assert texts("memory://corpus") == ["first", *DOCS]
    assert texts("memory://corpus/*.zst") == DOCS
    with pytest.raises(FileNotFoundError, match=r"memory://nowhere: no such file or prefix"):
        expand_inputs("memory://nowhere")
