"""Any tokenizer.json: ids are the tokenizers library's, special tokens in a document are text, the separator comes
from the file, and the fast path is used only after it agrees with the reference."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from hypothesis import given, strategies as st
from tokenizers import Tokenizer

from lmfeed.text import hf_backends
from lmfeed.text.backends import SELF_CHECK_TEXTS, batch_encoder, gpt2_tokenizer_json, split_batch
from lmfeed.text.hf_tokenizer import HFTokenizer, TokenizerFileError, load_tokenizer_json
from lmfeed.text.tokenizer import ENDOFTEXT, get_tokenizer, vocabulary_fingerprint


def reference(path: str) -> Tokenizer:
    """The reference, loaded independently: tokenizers' own Tokenizer with special tokens taken as text."""
    tok = Tokenizer.from_file(path)
    tok.encode_special_tokens = True
    return tok


def test_get_tokenizer_takes_a_tokenizer_json_path(bpe_path):
    enc = get_tokenizer(bpe_path)
    assert isinstance(enc, HFTokenizer) and enc.name == bpe_path
    assert enc.n_vocab == 2000 and enc.eot_token == 0 and enc.eos_name == ENDOFTEXT
    assert get_tokenizer(bpe_path) is enc  # cached per file version


@pytest.mark.parametrize("text", [*SELF_CHECK_TEXTS, "", "x" * 5000])
def test_ids_are_the_reference_libraries(bpe_path, text):
    enc = get_tokenizer(bpe_path)
    want = reference(bpe_path).encode(text, add_special_tokens=False).ids
    assert enc.encode_ordinary(text) == want
    for backend in ("tiktoken", "fastokens", "auto"):
        ids, offsets = batch_encoder(backend, enc)([text, text])  # type: ignore[arg-type]
        assert [a.tolist() for a in split_batch(ids, offsets)] == [want, want], backend


@given(st.text(max_size=200))
def test_fast_path_equals_reference_on_any_text(text):
    path, _ = gpt2_tokenizer_json()
    enc = load_tokenizer_json(str(path)) if path is not None else None
    if enc is None:
        pytest.skip("no cache directory")
    fast = batch_encoder("fastokens", enc)([text])[0].tolist()
    assert fast == reference(str(path)).encode(text, add_special_tokens=False).ids


def test_gpt2_as_a_tokenizer_json_gives_tiktokens_ids(tmp_path, reference_text):
    _, text = gpt2_tokenizer_json()
    (tmp_path / "tokenizer.json").write_text(text, encoding="utf-8")
    enc = get_tokenizer(tmp_path)  # a directory holding tokenizer.json, as save_pretrained writes
    sample = reference_text[:20000]
    assert enc.encode_ordinary(sample) == get_tokenizer("gpt2").encode_ordinary(sample)


def test_literal_special_token_is_text_unless_allowed(bpe_path):
    enc = get_tokenizer(bpe_path)
    assert 0 not in enc.encode_ordinary(f"a{ENDOFTEXT}b")
    want = [*enc.encode_ordinary("a"), 0, *enc.encode_ordinary("b")]
    assert enc.encode(f"a{ENDOFTEXT}b", allowed_special={ENDOFTEXT}) == want
    with pytest.raises(ValueError, match="disallowed special token"):
        enc.encode(f"a{ENDOFTEXT}b")
    ids, _ = batch_encoder("auto", enc, allow_special=True)([f"a{ENDOFTEXT}b"])
    assert ids.tolist() == [*enc.encode_ordinary("a"), 0, *enc.encode_ordinary("b")]


def test_decode_round_trips_and_token_bytes(bpe_path):
    enc = get_tokenizer(bpe_path)
    text = "def f(x):\n    return x  # é 中文"
    ids = enc.encode_ordinary(text)
    assert enc.decode(ids) == text
    assert b"".join(enc.decode_single_token_bytes(i) for i in ids) == text.encode("utf-8")


def test_roles_from_tokenizer_config(tmp_path, bpe_path):
    doc = json.loads(open(bpe_path, encoding="utf-8").read())
    n = len(doc["model"]["vocab"])
    doc["added_tokens"] += [{"id": n, "content": "<s>", "single_word": False, "lstrip": False, "rstrip": False,
                             "normalized": False, "special": True},
                            {"id": n + 1, "content": "</s>", "single_word": False, "lstrip": False, "rstrip": False,
                             "normalized": False, "special": True}]
    (tmp_path / "tokenizer.json").write_text(json.dumps(doc), encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>", "bos_token": {"content": "<s>"}}))
    enc = get_tokenizer(str(tmp_path))
    assert (enc.eos_name, enc.eot_token, enc.bos_name, enc.bos_token) == ("</s>", n + 1, "<s>", n)
    assert enc.n_vocab == n + 2


def test_pickles_by_its_text(bpe_path):
    enc = get_tokenizer(bpe_path)
    again = pickle.loads(pickle.dumps(enc))
    assert again.encode_ordinary("Hello world") == enc.encode_ordinary("Hello world")
    assert vocabulary_fingerprint(again) == vocabulary_fingerprint(enc)


def test_fingerprint_follows_the_vocabulary_not_the_formatting(tmp_path, bpe_path):
    doc = json.loads(open(bpe_path, encoding="utf-8").read())
    (tmp_path / "pretty.json").write_text(json.dumps(doc, indent=4), encoding="utf-8")
    original = vocabulary_fingerprint(get_tokenizer(bpe_path))
    assert vocabulary_fingerprint(get_tokenizer(tmp_path / "pretty.json")) == original
    merges = doc["model"]["merges"]
    merges[0], merges[1] = merges[1], merges[0]  # other merge order: other ids for some texts
    (tmp_path / "other.json").write_text(json.dumps(doc), encoding="utf-8")
    assert vocabulary_fingerprint(get_tokenizer(tmp_path / "other.json")) != original


def test_self_check_failure_falls_back_with_one_warning(bpe_path, monkeypatch, caplog):
    enc = load_tokenizer_json(bpe_path, name="broken")
    monkeypatch.setattr(hf_backends, "_fast", {})
    monkeypatch.setattr("lmfeed.text.backends.self_check", lambda encode, enc, texts: "fastokens encodes 'x' as [1]")
    with caplog.at_level("WARNING"):
        assert hf_backends.hf_select_backend("auto", enc) == "tiktoken"
    assert len([r for r in caplog.records if "not fastokens" in r.getMessage()]) == 1
    with pytest.raises(ValueError, match="backend='fastokens' cannot be used"):
        hf_backends.hf_select_backend("fastokens", enc)
    ids, _ = batch_encoder("auto", enc)(["Hello world"])
    assert ids.tolist() == reference(bpe_path).encode("Hello world", add_special_tokens=False).ids


@pytest.mark.parametrize(("content", "match"), [
    ("{not json", "not valid JSON"),
    ('{"version": "1.0"}', "no \"model\""),
    ('{"model": {"type": "Nonsense"}}', "tokenizers library can load"),
])
def test_a_bad_tokenizer_json_is_one_clear_error(tmp_path, content, match):
    (tmp_path / "tokenizer.json").write_text(content)
    with pytest.raises(TokenizerFileError, match=match):
        get_tokenizer(tmp_path / "tokenizer.json")


def test_missing_file_and_directory_without_one(tmp_path):
    with pytest.raises(ValueError, match=r"Unknown tokenizer .*tokenizer\.json"):
        get_tokenizer(str(tmp_path / "nope.json"))
    with pytest.raises(FileNotFoundError, match="has no tokenizer.json"):
        get_tokenizer(tmp_path)


def test_numpy_encoding_matches_list(bpe_path):
    enc = get_tokenizer(bpe_path)
    arr = enc.encode_to_numpy("Hello world")
    assert arr.dtype == np.uint32 and arr.tolist() == enc.encode_ordinary("Hello world")
