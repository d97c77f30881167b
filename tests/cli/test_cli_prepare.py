"""The prepare, info, merge and export commands: exit codes, stdout, the one-line errors, stdin."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from lmfeed.cli import main
from lmfeed.store.format import TokenStore
from lmfeed.text.tokenizer import get_tokenizer

ENC = get_tokenizer()


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def test_prepare_then_info(tmp_path):
    (tmp_path / "a.txt").write_text("Hello world")
    (tmp_path / "b.txt").write_text("Bye now")
    result = run("prepare", tmp_path / "a.txt", tmp_path / "b.txt", "-o", tmp_path / "s", "--quiet", "--workers", "1")
    n = len(ENC.encode_ordinary("Hello world")) + 1 + len(ENC.encode_ordinary("Bye now"))
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Wrote {tmp_path / 's'}: {n} tokens in 2 documents (uint16, ")
    info = run("info", tmp_path / "s")
    assert info.exit_code == 0, info.output
    assert f"tokens:     {n}" in info.output and "documents:  2" in info.output and "dtype:      uint16" in info.output
    assert "tokenizer:  gpt2 (50,257 ids" in info.output
    assert "decoded:    'Hello world<|endoftext|>Bye now'" in info.output
    data = json.loads(run("info", tmp_path / "s", "--json", "--head", "2").output)
    assert data["tokens"] == n and data["head_ids"] == [15496, 995] and data["head_text"] == "Hello world"
    assert data["bytes"] == sum(f.stat().st_size for f in (tmp_path / "s").iterdir())


def test_prepare_from_stdin_jsonl_with_shards_and_merge(tmp_path):
    lines = "".join(json.dumps({"text": f"document number {i}"}) + "\n" for i in range(5))
    for i in range(2):
        r = run("prepare", "-", "--format", "jsonl", "-o", tmp_path / f"s{i}", "-q",
                "--num-shards", 2, "--shard-index", i, input=lines)
        assert r.exit_code == 0, r.output
    r = run("merge", tmp_path / "s0", tmp_path / "s1", "-o", tmp_path / "m")
    assert r.exit_code == 0, r.output
    want = ENC.encode("<|endoftext|>".join(f"document number {i}" for i in range(5)), allowed_special="all")
    assert TokenStore.open(tmp_path / "m").tokens.tolist() == want


def test_prepare_progress_goes_to_stderr(tmp_path):
    (tmp_path / "a.txt").write_text("Hello world")
    result = run("prepare", tmp_path / "a.txt", "-o", tmp_path / "s", "--json")  # click >= 8.2 keeps the streams apart
    assert result.exit_code == 0 and json.loads(result.stdout)["tokens"] == 2
    assert result.stderr == ""  # stderr is not a terminal here: no bar in logs, an error stays one line
    result = run("prepare", tmp_path / "a.txt", "-o", tmp_path / "s2", "--json", "--progress")
    assert result.exit_code == 0 and json.loads(result.stdout)["tokens"] == 2
    assert "prepare" in result.stderr and "B/s" in result.stderr


def test_export_nanogpt(tmp_path):
    (tmp_path / "a.txt").write_text("Hello world")
    run("prepare", tmp_path / "a.txt", "-o", tmp_path / "s", "-q")
    r = run("export", tmp_path / "s", "--format", "nanogpt", "-o", tmp_path / "train.bin")
    assert r.exit_code == 0 and r.output == f"Wrote {tmp_path / 'train.bin'}: 4 bytes (nanogpt)\n"
    assert np.fromfile(tmp_path / "train.bin", dtype=np.uint16).tolist() == [15496, 995]


def test_errors_are_one_line(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"ok \xfe")
    (tmp_path / "c.jsonl").write_text('{"title": "x"}\n')
    (tmp_path / "a.txt").write_text("fine")
    run("prepare", tmp_path / "a.txt", "-o", tmp_path / "exists", "-q")
    cases = [
        (["prepare", tmp_path / "missing.txt", "-o", tmp_path / "s"], "Error: No such file or directory: "),
        (["prepare", tmp_path / "bad.txt", "-o", tmp_path / "s", "-q"], "bad.txt: byte 3 is not valid UTF-8 (0xfe"),
        (["prepare", tmp_path / "c.jsonl", "-o", tmp_path / "s", "-q"], "c.jsonl:1: the record has no field 'text'"),
        (["prepare", tmp_path / "a.txt", "-o", tmp_path / "exists", "-q"], "already exists. Pass --force"),
        (["info", tmp_path / "a.txt"], "is a file, not a token store"),
        (["prepare", tmp_path / "a.txt", "-o", tmp_path / "s", "--num-shards", "2", "--shard-index", "5"],
         "shard_index must be at most 1"),
    ]
    for args, message in cases:
        r = run(*args)
        assert r.exit_code == 1, (args, r.output)
        lines = [line for line in r.output.splitlines() if line.startswith("Error:")]
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.output, r.output
    assert not (tmp_path / "s").exists()


def test_each_command_has_help_with_an_example():
    for name, example in [("prepare", "lmfeed prepare the-verdict.txt -o verdict.store"),
                          ("info", "lmfeed info verdict.store"),
                          ("merge", "lmfeed merge shards/web.* -o web.store"), ("export", "--format nanogpt")]:
        r = run(name, "--help")
        assert r.exit_code == 0 and example in r.output, r.output
