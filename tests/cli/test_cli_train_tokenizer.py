"""train-tokenizer and --tokenizer / --separator on prepare: exit codes, stdout, one Error line, nothing touched."""

from __future__ import annotations

import json

from tokenizers import Tokenizer

from cli_helpers import error_line, run
from lmfeed.store.format import TokenStore
from lmfeed.text.sources import python_reference


def test_train_then_prepare_then_info(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, d in enumerate(python_reference()[:10]):
        (corpus / f"{i}.txt").write_text(d, encoding="utf-8")
    out = tmp_path / "tok.json"
    result = run("train-tokenizer", corpus, "--vocab-size", 500, "-o", out)
    assert result.exit_code == 0, result.output
    assert result.output == f"Wrote {out}: byte-level BPE, 500 ids, <|endoftext|> = 0\n"
    again = run("train-tokenizer", corpus, "--vocab-size", 500, "-o", tmp_path / "again.json", "--json")
    assert json.loads(again.output)["vocab_size"] == 500
    assert (tmp_path / "again.json").read_bytes() == out.read_bytes()  # deterministic
    assert "already exists" in error_line(run("train-tokenizer", corpus, "--vocab-size", 500, "-o", out))
    result = run("prepare", corpus, "-o", tmp_path / "s", "--tokenizer", out, "--quiet", "--workers", "1")
    assert result.exit_code == 0, result.output
    store = TokenStore.open(tmp_path / "s")
    tok = Tokenizer.from_file(str(out))
    assert store.document(0).tolist() == tok.encode(python_reference()[0], add_special_tokens=False).ids
    info = run("info", tmp_path / "s")
    assert info.exit_code == 0 and f"tokenizer:  {out} (500 ids" in info.output, info.output


def test_errors_are_one_line_and_the_store_is_kept(tmp_path):
    (tmp_path / "a.txt").write_text("Hello world")
    assert run("prepare", tmp_path / "a.txt", "-o", tmp_path / "s", "--quiet", "--workers", "1").exit_code == 0
    before = (tmp_path / "s" / "tokens.npy").read_bytes()
    (tmp_path / "bad.json").write_text("{not json")
    line = error_line(run("prepare", tmp_path / "a.txt", "-o", tmp_path / "s", "--force",
                          "--tokenizer", tmp_path / "bad.json"))
    assert "bad.json" in line and "not valid JSON" in line
    line = error_line(run("prepare", tmp_path / "a.txt", "-o", tmp_path / "s", "--force", "--separator", "bos"))
    assert "separator='bos'" in line and "'none'" in line
    line = error_line(run("prepare", tmp_path / "a.txt", "-o", tmp_path / "s", "--force", "--tokenizer", "llama9"))
    assert "Unknown tokenizer 'llama9'" in line and "train-tokenizer" in line
    assert (tmp_path / "s" / "tokens.npy").read_bytes() == before
    line = error_line(run("train-tokenizer", tmp_path / "a.txt", "--vocab-size", 10, "-o", tmp_path / "t.json"))
    assert "vocab_size" in line and "257" in line
    assert not (tmp_path / "t.json").exists()


def test_help_names_the_tokenizer_kinds():
    assert "tokenizer.json" in run("prepare", "--help").output
    assert "--vocab-size" in run("train-tokenizer", "--help").output


def test_batch_and_embed_take_a_tokenizer_json(tmp_path, bpe_path):
    (tmp_path / "t.txt").write_text(" ".join(python_reference()[:2]), encoding="utf-8")
    tok = Tokenizer.from_file(bpe_path)
    ids = tok.encode((tmp_path / "t.txt").read_text(encoding="utf-8"), add_special_tokens=False).ids
    result = run("batch", tmp_path / "t.txt", "--tokenizer", bpe_path, "--json", "--batch-size", 1)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["inputs"][0] == ids[:4]
    result = run("embed", "Hello world", "--tokenizer", bpe_path, "--json")
    assert result.exit_code == 0, result.output
    want = tok.encode("Hello world", add_special_tokens=False).ids
    assert [t["id"] for t in json.loads(result.output)["tokens"]] == want
