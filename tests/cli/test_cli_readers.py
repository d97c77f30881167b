"""prepare on Parquet, zstd and bad input from the command line: the summary, and one Error line that names the
value and the fix, with an existing store untouched."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from cli_helpers import error_line, run


def test_parquet_and_zstd_then_bad_records_skipped(tmp_path):
    pq.write_table(pa.table({"text": ["Hello world", "Bye"]}), tmp_path / "a.parquet")
    result = run("prepare", tmp_path / "a.parquet", "-o", tmp_path / "p", "--quiet", "--workers", "1")
    assert result.exit_code == 0 and "5 tokens in 2 documents" in result.output, result.output
    lines = b'{"text": "Hello world"}\n{"text": null}\n{"text": "Bye"}\n'
    (tmp_path / "w.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines))
    line = error_line(run("prepare", tmp_path / "w.jsonl.zst", "-o", tmp_path / "z", "--quiet"))
    assert "w.jsonl.zst:2: field 'text' is null" in line and "--on-bad-record skip" in line
    result = run("prepare", tmp_path / "w.jsonl.zst", "-o", tmp_path / "z", "--quiet", "--on-bad-record", "skip",
                 "--workers", "1")
    assert result.exit_code == 0 and "5 tokens in 2 documents" in result.output
    assert "1 bad record skipped" in result.output
    assert json.loads((tmp_path / "z" / "metadata.json").read_text())["bad_records"]["skipped"] == 1


def test_bad_inputs_are_one_error_line_and_keep_the_store(tmp_path):
    (tmp_path / "ok.txt").write_text("Hello world")
    assert run("prepare", tmp_path / "ok.txt", "-o", tmp_path / "s", "--quiet", "--workers", "1").exit_code == 0
    before = (tmp_path / "s" / "tokens.npy").read_bytes()
    pq.write_table(pa.table({"body": ["x"], "n": [1]}), tmp_path / "a.parquet")
    data = (tmp_path / "a.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[:-20])
    big = zstandard.ZstdCompressor().compress(b'{"text": "x"}\n' * 5000)
    (tmp_path / "cut.jsonl.zst").write_bytes(big[:-30])
    (tmp_path / "dup.tiktoken").write_text("YQ== 0\nYg== 0\n")
    cases = [
        ((tmp_path / "a.parquet",), "no column 'text'; its columns: body (string), n (int64)"),
        ((tmp_path / "a.parquet", "--field", "n"), "column 'n' holds int64, not text"),
        ((tmp_path / "cut.parquet",), "cut.parquet: not a readable Parquet file"),
        ((tmp_path / "cut.jsonl.zst",), "cut.jsonl.zst: the zstd stream ends inside a frame at byte"),
        ((tmp_path / "ok.txt", "--tokenizer", tmp_path / "dup.tiktoken"), "rank 0 appears twice (lines 1 and 2)"),
    ]
    for args, message in cases:
        line = error_line(run("prepare", *args, "-o", tmp_path / "s", "--force", "--quiet"))
        assert message in line, line
        assert (tmp_path / "s" / "tokens.npy").read_bytes() == before


def test_tiktoken_file_with_pattern_and_special_tokens(tmp_path):
    import base64

    (tmp_path / "a.txt").write_text("hi")
    (tmp_path / "b.txt").write_text("yo")
    (tmp_path / "bytes.tiktoken").write_bytes(b"".join(base64.b64encode(bytes([b])) + b" %d\n" % b for b in range(256)))
    tok = tmp_path / "bytes.tiktoken"
    line = error_line(run("prepare", tmp_path / "a.txt", "-o", tmp_path / "s", "--tokenizer", tok))
    assert "pass pattern= (--pattern)" in line
    line = error_line(run("prepare", tmp_path / "a.txt", "-o", tmp_path / "s", "--tokenizer", tok, "--pattern", "gpt9"))
    assert "Unknown pattern name 'gpt9'" in line
    result = run("prepare", tmp_path / "a.txt", tmp_path / "b.txt", "-o", tmp_path / "s", "--quiet", "--workers", "1",
                 "--tokenizer", tmp_path / "bytes.tiktoken", "--pattern", "r50k_base",
                 "--special-token", "<|endoftext|>=256")
    assert result.exit_code == 0, result.output
    import numpy as np

    assert np.load(tmp_path / "s" / "tokens.npy").tolist() == [104, 105, 256, 121, 111]
