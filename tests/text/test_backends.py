"""backends: fastokens gives tiktoken's ids exactly (a differential test over real files, every kind of code point
and generated strings), the tokenizer.json is pinned and cached whole, the self-check catches a real inexact
loader, fallback warns once, and a store prepared by either backend has the same bytes.

Set LMFEED_FULL_SWEEP=1 to sweep every code point in every context (~15 s more); by default code points above the
BMP are taken with a stride of 3, except the blocks new in Unicode 15 to 17, which are swept whole.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lmfeed.store.prepare import prepare
from lmfeed.text import backends
from lmfeed.text.backends import (
    batch_encoder,
    clean_text,
    select_backend,
    self_check,
    split_batch,
    whitespace_cuts,
)
from lmfeed.text.tokenizer import ENDOFTEXT, get_tokenizer

fastokens = pytest.importorskip("fastokens", reason="the fast backend is the optional extra lmfeed[fast]")

ENC = get_tokenizer("gpt2")


@pytest.fixture(scope="module")
def fast():
    return batch_encoder("fastokens", ENC)


def tiktoken_ids(texts: list[str]) -> list[list[int]]:
    """The reference, independent of lmfeed's wrappers: tiktoken's own encode_ordinary (which cleans surrogates)."""
    return [ENC.encode_ordinary(t) for t in texts]


def assert_same_ids(fast, texts: list[str], what: str) -> None:
    got = [ids.tolist() for ids in split_batch(*fast(texts))]
    want = tiktoken_ids(texts)
    for text, g, w in zip(texts, got, want, strict=True):
        assert g == w, f"{what}: {text[:80]!r}"


# ---- the differential test --------------------------------------------------------------------------------------


def stdlib_texts() -> list[str]:
    """Every .py and .txt file of this Python's standard library (no tests, no site-packages), and pydoc's topics."""
    from pydoc_data.topics import topics

    root = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for p in sorted(root.rglob("*")):
        if p.suffix in (".py", ".txt") and not {"site-packages", "test", "tests"} & set(p.parts) and p.is_file():
            try:
                texts.append(p.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, OSError):
                continue
    texts.extend(topics[k] for k in sorted(topics))
    return texts


def test_mixed_corpus_from_files_every_machine_has(fast):
    texts = stdlib_texts()
    assert sum(map(len, texts)) > 5_000_000  # the test means something only on a real corpus
    tabbed = [t.replace("    ", "\t") for t in texts[::10]]  # tab-indented code, where one fast BPE went wrong
    crlf = [t.replace("\n", "\r\n") for t in texts[::25]]
    for start in range(0, len(texts), 200):  # batches as prepare makes them
        assert_same_ids(fast, texts[start : start + 200], "stdlib")
    assert_same_ids(fast, tabbed, "tab-indented")
    assert_same_ids(fast, crlf, "CRLF")


_CONTEXTS = ["{c}", "a{c}b", " {c}", "{c}{c}", "\t{c}\n", "1{c}2", "{c}'s", "  {c} ", "\u00e9{c}\u4e2d"]
_QUICK_CONTEXTS = [" {c}", "a{c}b", "{c}'s", "\t{c}\n"]
# the newest letters and scripts, where Unicode tables of different ages disagree (Unicode 15, 15.1, 16, 17)
_NEW_BLOCKS = [(0x11F00, 0x11F5F), (0x2EBF0, 0x2EE5F), (0x10D40, 0x10D8F), (0x105C0, 0x105FF), (0x16D40, 0x16D7F),
               (0x10940, 0x1095F), (0x11DB0, 0x11DEF), (0x16EA0, 0x16EDF), (0x1E6C0, 0x1E6FF), (0x323B0, 0x3347F)]


def _sweep(fast, code_points: list[int], contexts: list[str]) -> None:
    texts, where = [], []
    for context in contexts:
        for i in range(0, len(code_points), 256):
            chunk = code_points[i : i + 256]
            texts.append(" | ".join(context.format(c=chr(c)) for c in chunk))
            where.append((context, chunk))
    got = split_batch(*fast(texts))
    want = tiktoken_ids(texts)
    for g, w, (context, chunk) in zip(got, want, where, strict=True):
        if g.tolist() != w:  # name the code point
            bad = [hex(c) for c in chunk
                   if fast([context.format(c=chr(c))])[0].tolist() != ENC.encode_ordinary(context.format(c=chr(c)))]
            pytest.fail(f"code points {bad[:10] or 'in combination'} in context {context!r} encode differently")


def test_code_point_sweep(fast):
    full = os.environ.get("LMFEED_FULL_SWEEP") == "1"
    stride = 1 if full else 3
    everyday = [c for c in range(0x10000) if not 0xD800 <= c < 0xE000]  # surrogates: see the clean_text tests
    rest = list(range(0x10000, 0x110000, stride))
    _sweep(fast, everyday + rest, _CONTEXTS if full else _QUICK_CONTEXTS)
    _sweep(fast, everyday[::7], _CONTEXTS)
    _sweep(fast, [c for lo, hi in _NEW_BLOCKS for c in range(lo, hi + 1)], _CONTEXTS)


_ALPHABET = ["\u180e", " ", "  ", "a", "\n", "\t", "1", "!", "'s", "\u00a0", "\U00010940", "\ud800", "<|endoftext|>"]


def test_every_short_combination_of_hard_pieces(fast):
    import itertools

    texts = ["".join(p) for n in (1, 2, 3) for p in itertools.product(_ALPHABET, repeat=n)]
    assert_same_ids(fast, texts, "combination")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=()), max_size=200), min_size=1, max_size=8))
def test_generated_strings_including_surrogates(texts):
    fast = batch_encoder("fastokens", ENC)
    assert_same_ids(fast, texts, "generated")
    assert ([t.tolist() for t in split_batch(*fast(texts))]
            == [ENC.encode(clean_text(t), disallowed_special=()) for t in texts])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["Hello", " world", ENDOFTEXT, "\n", "\ud83d", "\ude00", "\u180e's", " 42"]),
                max_size=12).map("".join))
def test_allow_special_equals_tiktoken_encode(text):
    want = ENC.encode(text, allowed_special={ENDOFTEXT})
    for backend in ("fastokens", "tiktoken"):
        ids, offsets = batch_encoder(backend, ENC, allow_special=True)([text, "x"])
        assert ids[: offsets[1]].tolist() == want and ids[offsets[1] :].tolist() == [87]


def test_texts_sharing_long_prefixes_one_after_another(fast):
    # a fast tokenizer once gave ids that depended on what the same thread encoded before (a reused match cache)
    base = (stdlib_texts()[3] * 3)[:5000]
    texts = [base + "x" * 700, base + " " * 700, base + " " * 700 + "y", base + "\t" * 700, base]
    for text in texts + texts[::-1]:
        assert fast([text])[0].tolist() == ENC.encode_ordinary(text)


# ---- surrogates --------------------------------------------------------------------------------------------------


def test_clean_text_is_what_tiktoken_encodes():
    assert clean_text("a\ud800b") == "a\ufffdb"
    assert clean_text("\ud83d\ude00") == "\U0001f600"  # a pair written as two code points joins, as in UTF-16
    assert clean_text("plain") == "plain"
    for text in ["a\ud800b", "\ud83d\ude00", "\udfff\ud800", "x\ud83d"]:
        assert ENC.encode_ordinary(text) == ENC.encode_ordinary(clean_text(text))


# ---- the tokenizer.json -------------------------------------------------------------------------------------------


def test_tokenizer_json_is_gpt2_pinned_and_cached_whole(tmp_path):
    path, text = backends.gpt2_tokenizer_json(cache_dir=tmp_path)
    assert path is not None and path.read_text(encoding="utf-8") == text
    assert hashlib.sha256(text.encode()).hexdigest() == backends.TOKENIZER_JSON_SHA256
    doc = json.loads(text)
    assert doc["added_tokens"] == [] and doc["pre_tokenizer"]["type"] == "ByteLevel"
    assert doc["pre_tokenizer"]["add_prefix_space"] is False
    vocab, merges = doc["model"]["vocab"], doc["model"]["merges"]
    assert len(vocab) == 50256 and len(merges) == 50000 and merges[0] == "\u0120 t"  # GPT-2's first merge: " t"
    # the same vocabulary as tiktoken's ranks (byte-level characters mapped back to bytes)
    byte_of = {ch: b for b, ch in _bytes_to_unicode().items()}
    ranks = {bytes(byte_of[ch] for ch in token): i for token, i in vocab.items()}
    assert ranks == ENC._mergeable_ranks
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind

    path.write_text(text[:-1] + " ")  # damaged: generated again
    assert backends.gpt2_tokenizer_json(cache_dir=tmp_path)[1] == text
    assert hashlib.sha256(path.read_bytes()).hexdigest() == backends.TOKENIZER_JSON_SHA256


def test_tokenizer_json_works_from_memory_when_the_cache_cannot_be_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    path, text = backends.gpt2_tokenizer_json(cache_dir=blocker / "lmfeed")
    assert path is None and hashlib.sha256(text.encode()).hexdigest() == backends.TOKENIZER_JSON_SHA256


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, written out here from its definition (independent of lmfeed)."""
    keep = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1))
            + list(range(ord("\u00ae"), ord("\u00ff") + 1)))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


# ---- the self-check and the choice of backend ----------------------------------------------------------------------


def test_self_check_passes_quickly_for_the_real_loader(fast):
    import time

    start = time.perf_counter()
    assert self_check(fast, ENC) == ""
    assert time.perf_counter() - start < 1.0  # generous: it takes about a millisecond (a slow machine is not a bug)
    assert select_backend("auto", ENC) == "fastokens"


def test_self_check_catches_a_real_inexact_loader(tmp_path):
    # fastokens' from_tiktoken loader reads U+180E differently from tiktoken: the self-check must say so
    bpe = tmp_path / "gpt2.tiktoken"
    bpe.write_text("".join(f"{base64.b64encode(t).decode()} {r}\n"
                           for t, r in sorted(ENC._mergeable_ranks.items(), key=lambda kv: kv[1])))
    loose = fastokens.Tokenizer.from_tiktoken(str(bpe), pattern=ENC._pat_str, special_tokens={})
    problem = self_check(backends._flat_encoder(loose), ENC)
    assert "\\u180e's" in problem and "tiktoken as" in problem


def test_self_check_names_the_first_difference():
    def off_by_one(texts):
        ids, offsets = batch_encoder("tiktoken", ENC)(texts)
        return ids + (ids == 995), offsets  # "world" -> another id

    assert self_check(off_by_one, ENC).startswith("fastokens encodes 'Hello world' as [15496, 996]")


def test_auto_falls_back_with_one_warning_and_fastokens_refuses(monkeypatch, caplog):
    monkeypatch.setattr(backends, "_load_fastokens", lambda: (None, "fastokens encodes 'x' as [1], tiktoken as [87]"))
    with caplog.at_level(logging.WARNING, logger="lmfeed.text.backends"):
        assert select_backend("auto", ENC) == "tiktoken"
    assert [r.getMessage() for r in caplog.records] == [
        "lmfeed: using tiktoken, not fastokens: fastokens encodes 'x' as [1], tiktoken as [87]"]
    with pytest.raises(ValueError,
                       match=r"backend='fastokens' cannot be used: fastokens encodes 'x'.*backend='tiktoken'"):
        select_backend("fastokens", ENC)


def test_without_fastokens_auto_is_quiet_and_fastokens_says_how_to_install(monkeypatch, caplog):
    monkeypatch.setattr(backends, "fastokens_available", lambda: False)
    monkeypatch.setattr(backends, "_load_fastokens", lambda: (None, "fastokens is not installed"))
    with caplog.at_level(logging.WARNING, logger="lmfeed.text.backends"):
        assert select_backend("auto", ENC) == "tiktoken"
    assert caplog.records == []
    with pytest.raises(ValueError, match=r"not installed.*pip install 'lmfeed\[fast\]'"):
        select_backend("fastokens", ENC)


def test_preload_is_joined_before_anyone_could_fork():
    code = ("from lmfeed.text import backends; from lmfeed.text.tokenizer import get_tokenizer; backends.preload(); "
            "t = backends._preload.get('thread'); e = get_tokenizer(); "
            "print(t is not None, backends.select_backend('auto', e), t.is_alive(), len(backends._preload))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "fastokens", "False", "0"]


def test_an_early_error_exits_cleanly_while_fastokens_still_loads(tmp_path):
    # the input check fails while the preload thread is inside fastokens; a daemon thread there made the
    # interpreter abort at exit ("FATAL: exception not rethrown", exit 134) about one run in three
    args = [sys.executable, "-c", "from lmfeed.cli import main; main()", "prepare", str(tmp_path / "missing.txt"),
            "-o", str(tmp_path / "s")]
    for _ in range(5):
        done = subprocess.run(args, capture_output=True, text=True)
        assert (done.returncode, done.stderr.strip().splitlines()) == (1, [
            f"Error: No such file or directory: {str(tmp_path / 'missing.txt')!r}. Check the path."])


def test_a_failed_preload_falls_back_with_its_reason(monkeypatch, caplog):
    def broken():
        raise RuntimeError("no memory for the automaton")

    backends._load_fastokens.cache_clear()
    monkeypatch.setattr(backends, "_loaded", [])
    monkeypatch.setattr(backends, "_new_fastokens", broken)
    try:
        backends.preload()
        with caplog.at_level(logging.WARNING, logger="lmfeed.text.backends"):
            assert select_backend("auto", ENC) == "tiktoken"
        assert "(RuntimeError: no memory for the automaton)" in caplog.records[0].getMessage()
    finally:
        backends._load_fastokens.cache_clear()  # the next test loads the real one again


def test_other_tokenizers_use_tiktoken():
    import tiktoken

    other = tiktoken.Encoding(name="gpt2-big", pat_str=ENC._pat_str, mergeable_ranks=ENC._mergeable_ranks,
                              special_tokens={ENDOFTEXT: 70_000})
    assert select_backend("auto", other) == "tiktoken"
    with pytest.raises(ValueError, match="only the GPT-2 tokenizer, but tokenizer 'gpt2-big'"):
        select_backend("fastokens", other)
    with pytest.raises(ValueError, match="Unknown backend 'rust'"):
        select_backend("rust", ENC)  # type: ignore[arg-type]


def test_one_thread_per_process_whatever_the_environment():
    # FASTOKENS_BPE_THREADS=2 asked for, large inputs encoded: lmfeed must still run them on the calling thread only.
    # Threads are counted before and after (numpy's BLAS starts its own at import); with 2 BPE threads fastokens
    # starts its pool at the first input above ~100 KB.
    code = ("import os; from lmfeed.text.backends import batch_encoder; "
            "from lmfeed.text.tokenizer import get_tokenizer; "
            "e = batch_encoder('fastokens', get_tokenizer()); n = len(os.listdir('/proc/self/task')); "
            "e(['Hello world, ' * 200_000, 'x' * 300_000]); e(['Bye. ' * 100_000]); "
            "print(os.environ['FASTOKENS_BPE_THREADS'], len(os.listdir('/proc/self/task')) - n)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "FASTOKENS_BPE_THREADS": "2"}).stdout.split()
    assert out == ["1", "0"]


# ---- stores ---------------------------------------------------------------------------------------------------------


def test_stores_are_byte_identical_across_backends_and_workers(tmp_path):
    docs = stdlib_texts()[:40] + ["", "tabs\t\tend", "a\u180e's \U00010940's", "x" * 3000 + " " * 700]
    d = tmp_path / "in"
    d.mkdir()
    for i, doc in enumerate(docs):
        (d / f"doc{i:03d}.txt").write_text(doc, encoding="utf-8")
    # JSON escapes can carry lone surrogates and pairs written as two code points: a pair joins, and a lone one is
    # U+FFFD under errors="replace" (under the default "strict" it is an error, as undecodable bytes are)
    (d / "z.jsonl").write_text('{"text": "lone \\ud800 here"}\n{"text": "pair \\ud83d\\ude00 <|endoftext|> x"}\n')
    stores = {}
    for backend in ("tiktoken", "fastokens"):
        for workers in (1, 2):
            for allow in (False, True):
                out = tmp_path / f"{backend}-{workers}-{allow}"
                prepare([d], out, backend=backend, workers=workers, allow_special=allow, val_fraction=0.25, seed=3,
                        errors="replace")
                stores[backend, workers, allow] = {str(f.relative_to(out)): f.read_bytes()
                                                   for f in sorted(out.rglob("*")) if f.is_file()}
    for allow in (False, True):
        reference = stores["tiktoken", 1, allow]
        assert all(stores[b, w, allow] == reference for b in ("tiktoken", "fastokens") for w in (1, 2))
    assert stores["tiktoken", 1, False] != stores["tiktoken", 1, True]  # the special literal did change something
    tokens = np.load(tmp_path / "fastokens-2-False" / "train" / "tokens.npy", mmap_mode="r")
    assert len(tokens) > 100_000


def test_cli_backend_option(tmp_path):
    from click.testing import CliRunner

    from lmfeed.cli import main

    (tmp_path / "a.txt").write_text("Hello world")
    result = CliRunner().invoke(main, ["prepare", str(tmp_path / "a.txt"), "-o", str(tmp_path / "s"),
                                       "--backend", "fastokens", "--quiet", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "s" / "tokens.npy").tolist() == [15496, 995]
    result = CliRunner().invoke(main, ["prepare", "--help"])
    assert "--backend [auto|tiktoken|fastokens]" in result.output


@given(st.text(st.sampled_from(["a", "b", " ", "\n", "\t", "\x1f", "\u3000", "\xa0", "'", "s", "1", "é", "!"]),
               max_size=60), st.integers(1, 4))
def test_cutting_long_whitespace_runs_keeps_tiktokens_ids(text, min_run):
    enc = get_tokenizer()
    cuts = whitespace_cuts(text, min_run=min_run)
    bounds = [0, *cuts, len(text)]
    pieces = [enc.encode_ordinary(text[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
    assert [i for p in pieces for i in p] == enc.encode_ordinary(text)


def test_a_million_spaces_before_a_letter_encode_where_tiktoken_alone_overflows():
    enc = get_tokenizer()
    text = "x" + " " * 1_000_000 + "y"
    ids, _ = batch_encoder("tiktoken", enc)([text])
    assert len(ids) == 1_000_001 and ids[0] == 87 and ids[-1] == 331  # "x", 999,999 x " ", " y"
    assert (ids[1:-1] == 220).all()
