"""tiktoken rank files: OpenAI's published files are recognised by the sha256 tiktoken expects (GPT-2's ranks
written in that format are r50k_base), any other file needs a pattern; bad files are refused by line."""

from __future__ import annotations

import base64
import hashlib

import pytest
from tiktoken_ext import openai_public

from lmfeed.text.tiktoken_file import TiktokenFileError, known_patterns, load_tiktoken_file, recognise
from lmfeed.text.tokenizer import get_tokenizer, gpt2_mergeable_ranks


def rank_file(ranks: dict[bytes, int]) -> bytes:
    """tiktoken's format, as its load_tiktoken_bpe reads it: base64 token, a space, the rank; in rank order."""
    return b"".join(base64.b64encode(t) + b" %d\n" % r for t, r in sorted(ranks.items(), key=lambda kv: kv[1]))


@pytest.fixture(scope="module")
def r50k(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("tk") / "ranks.tiktoken"
    path.write_bytes(rank_file(gpt2_mergeable_ranks()))
    return str(path)


def test_gpt2_ranks_in_tiktoken_format_are_r50k_base(r50k):
    data = open(r50k, "rb").read()
    # the hash tiktoken's own r50k_base() passes to load_tiktoken_bpe (independent of lmfeed's table)
    assert "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930" in open(openai_public.__file__).read()
    assert hashlib.sha256(data).hexdigest() == "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
    assert recognise(data) == "r50k_base"
    enc = get_tokenizer(r50k)
    assert enc.name == "r50k_base" and enc.n_vocab == 50257 and enc.eot_token == 50256
    text = "Hello, world. Is this-- a test? I'll 1234 é 中文"
    assert enc.encode(text) == get_tokenizer("gpt2").encode(text)


def test_another_file_needs_a_pattern(tmp_path):
    ranks = {bytes([b]): b for b in range(256)}
    (tmp_path / "bytes.tiktoken").write_bytes(rank_file(ranks))
    with pytest.raises(TiktokenFileError, match=r"not one of OpenAI's published.*pass pattern=.*cl100k_base"):
        load_tiktoken_file(tmp_path / "bytes.tiktoken")
    enc = load_tiktoken_file(tmp_path / "bytes.tiktoken", pattern="r50k_base", special_tokens={"<|endoftext|>": 256})
    assert enc.encode_ordinary("hi") == [104, 105] and enc.eot_token == 256
    enc = load_tiktoken_file(tmp_path / "bytes.tiktoken", pattern=r"\S+|\s+")
    assert enc.encode_ordinary("a b") == [97, 32, 98]


def test_refusals_name_the_lines_and_the_fix(tmp_path):
    (tmp_path / "dup.tiktoken").write_bytes(b"YQ== 0\nYg== 1\nYw== 1\n")
    with pytest.raises(TiktokenFileError, match=r"rank 1 appears twice \(lines 2 and 3\)"):
        load_tiktoken_file(tmp_path / "dup.tiktoken", pattern="r50k_base")
    (tmp_path / "dupt.tiktoken").write_bytes(b"YQ== 0\nYQ== 1\n")
    with pytest.raises(TiktokenFileError, match=r"token b'a' appears twice \(lines 1 and 2\)"):
        load_tiktoken_file(tmp_path / "dupt.tiktoken", pattern="r50k_base")
    (tmp_path / "bad.tiktoken").write_bytes(b"YQ== 0\n!!!! x\n")
    with pytest.raises(TiktokenFileError, match=r"line 2 is not 'base64-token rank'"):
        load_tiktoken_file(tmp_path / "bad.tiktoken", pattern="r50k_base")
    (tmp_path / "ok.tiktoken").write_bytes(rank_file({bytes([b]): b for b in range(256)}))
    with pytest.raises(TiktokenFileError, match=r"Unknown pattern name 'gpt7'. Known names: .*r50k_base"):
        load_tiktoken_file(tmp_path / "ok.tiktoken", pattern="gpt7")
    with pytest.raises(TiktokenFileError, match=r"neither a known pattern name .* nor a regex that compiles"):
        load_tiktoken_file(tmp_path / "ok.tiktoken", pattern="(unclosed")
    with pytest.raises(TiktokenFileError, match=r"special token id 5 is already the rank of an ordinary token"):
        load_tiktoken_file(tmp_path / "ok.tiktoken", pattern="r50k_base", special_tokens={"<|x|>": 5})
    assert {"r50k_base", "cl100k_base", "o200k_base"} <= set(known_patterns())
