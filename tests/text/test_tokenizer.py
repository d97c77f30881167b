import hashlib

import pytest
import tiktoken
from hypothesis import given, strategies as st

from lmfeed.text import tokenizer as tk
from lmfeed.text.tokenizer import ENDOFTEXT, get_tokenizer


# Golden ids from tiktoken's own test suite for the gpt2 encoding.
@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("Hello, world. Is this-- a test?", [15496, 11, 995, 13, 1148, 428, 438, 257, 1332, 30]),
        ("Akwirw ier", [33901, 86, 343, 86, 220, 959]),
        ("Hello world", [15496, 995]),
        ("hello world", [31373, 995]),
        ("I HAD always thought", [40, 367, 2885, 1464, 1807]),
        ("", []),
    ],
)
def test_gpt2_golden_ids(text, ids):
    assert get_tokenizer("gpt2").encode(text) == ids


def test_is_a_real_tiktoken_encoding_with_gpt2_shape():
    enc = get_tokenizer()
    assert isinstance(enc, tiktoken.Encoding)
    assert enc.n_vocab == 50257
    assert enc.eot_token == 50256
    assert enc.name == "gpt2"


def test_endoftext_is_refused_by_plain_encode_and_allowed_on_request():
    enc = get_tokenizer()
    with pytest.raises(ValueError, match="disallowed special token"):
        enc.encode(f"a{ENDOFTEXT}b")
    assert enc.encode(ENDOFTEXT, allowed_special={ENDOFTEXT}) == [50256]
    # as ordinary text it is seven ordinary tokens, never the special id
    assert 50256 not in enc.encode_ordinary(ENDOFTEXT)


def test_construction_is_cached_however_it_is_called():
    enc = get_tokenizer()
    assert get_tokenizer("gpt2") is enc and get_tokenizer(name="gpt2") is enc  # one build, not one per call form


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match=r"Unknown tokenizer 'gpt5'.*'gpt2'"):
        get_tokenizer("gpt5")


def test_vocabulary_files_are_hash_checked(monkeypatch):
    for name, digest in tk._GPT2_FILES.items():
        with open(tk.gpt2_file(name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest
    monkeypatch.setitem(tk._GPT2_FILES, "vocab.bpe", "0" * 64)
    with pytest.raises(tk.VocabularyError, match="sha256"):
        tk.gpt2_file("vocab.bpe")


def test_fingerprint_tells_vocabularies_apart():
    enc = get_tokenizer()
    other = tiktoken.Encoding("tiny", pat_str=enc._pat_str, mergeable_ranks={bytes([b]): b for b in range(256)},
                              special_tokens={ENDOFTEXT: 256})
    assert tk.vocabulary_fingerprint(enc) == tk.vocabulary_fingerprint(enc)
    assert tk.vocabulary_fingerprint(enc) != tk.vocabulary_fingerprint(other)


@given(st.text())
def test_decode_inverts_encode_for_any_unicode(text):
    enc = get_tokenizer()
    # tiktoken replaces lone surrogates (not encodable as UTF-8) with U+FFFD before encoding
    expected = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    assert enc.decode(enc.encode_ordinary(text)) == expected


def test_ranks_equal_tiktoken_s_own_loader_of_the_two_files():
    # independent source: tiktoken derives the ranks from vocab.bpe's merges and checks them against encoder.json
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    reference = data_gym_to_mergeable_bpe_ranks(vocab_bpe_file=tk.gpt2_file("vocab.bpe"),
                                                encoder_json_file=tk.gpt2_file("encoder.json"))
    ranks = tk.gpt2_mergeable_ranks()
    assert len(ranks) == 50256
    assert ranks == reference
    assert ranks[b" the"] == 262 and ranks[b"\n"] == 198 and ranks[bytes([0])] == 188


def test_pinned_fingerprints_are_those_of_the_tokenizers_built_here():
    # stores made with a registered tokenizer are recognised by the pinned value, without building it
    # (and the tokenizer built here reports the pinned value without hashing it again: so it must be its hash)
    import tiktoken

    from lmfeed.text.tokenizer import KNOWN_FINGERPRINTS, _encoding_fingerprint, tokenizer_names, vocabulary_fingerprint

    assert sorted(KNOWN_FINGERPRINTS) == tokenizer_names()
    for name, fingerprint in KNOWN_FINGERPRINTS.items():
        built = get_tokenizer(name)
        assert _encoding_fingerprint(built) == fingerprint  # hashed token by token
        assert vocabulary_fingerprint(built) == fingerprint
        twin = tiktoken.Encoding(name=built.name, pat_str=built._pat_str, mergeable_ranks=built._mergeable_ranks,
                                 special_tokens=built._special_tokens)  # another object, the same vocabulary
        assert vocabulary_fingerprint(twin) == fingerprint
        other = tiktoken.Encoding(name=built.name, pat_str=built._pat_str, mergeable_ranks=built._mergeable_ranks,
                                  special_tokens={**built._special_tokens, "<|pad|>": built.n_vocab})
        assert vocabulary_fingerprint(other) != fingerprint  # same name, other vocabulary: never the pinned value
