"""The battery: bad input, faults and properties across the public API and the CLI.

Every bad input must give the right exception type with a message that names the value, the limit and the fix
(for the CLI: one ``Error:`` line on stderr, a non-zero exit, no traceback), and nothing already written may be
lost. Hypothesis runs with a fixed example budget (tests/conftest.py) so CI time stays bounded.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, strategies as st

import lmfeed
from lmfeed import create_dataloader, get_tokenizer
from lmfeed.cli import main as cli
from lmfeed.loading.sampler import WindowBatchSampler, WindowOrder

TEXT = "The quick brown fox jumps over the lazy dog. " * 40  # 400 tokens


# -- arguments ---------------------------------------------------------------------------------------------------

BAD_LOADER_ARGS = [
    # (argument, value, exception, what the message must say)
    ("batch_size", 0, ValueError, "batch_size must be at least 1, but got 0"),
    ("batch_size", -3, ValueError, "batch_size must be at least 1, but got -3"),
    ("batch_size", 2.0, TypeError, "batch_size must be an integer, but got 2.0"),
    ("batch_size", True, TypeError, "batch_size must be an integer, but got True"),
    ("batch_size", 10**12, ValueError, "batch_size=1000000000000 with drop_last=True needs at least"),
    ("max_length", 0, ValueError, "max_length must be at least 1, but got 0"),
    ("max_length", -1, ValueError, "max_length must be at least 1"),
    ("max_length", 4.5, TypeError, "max_length must be an integer"),
    ("max_length", False, TypeError, "max_length must be an integer"),
    ("max_length", 10**12, ValueError,
     "max_length=1000000000000 needs at least 1,000,000,000,001 tokens.*Lower max_length"),
    ("stride", 0, ValueError, "stride must be at least 1, but got 0"),
    ("stride", "4", TypeError, "stride must be an integer, but got '4'"),
    ("stride", 10**12, ValueError, "needs at least 4 windows.*Lower batch_size, max_length or stride"),
    ("num_workers", -1, ValueError, "num_workers must be at least 0, but got -1"),
    ("num_workers", 10**9, ValueError, "num_workers must be at most"),
    ("num_workers", 1.5, TypeError, "num_workers must be an integer"),
    ("seed", -5, ValueError, "seed must be at least 0, but got -5"),
    ("seed", 1.5, TypeError, "seed must be an integer"),
    ("sampling", "shuffle", ValueError, "Unknown sampling 'shuffle'. Choose one of: 'windows', 'random'"),
    ("tokenizer", "gpt-2", ValueError, "Unknown tokenizer 'gpt-2'. Known tokenizers: 'gpt2'"),
    ("tokenizer", 42, TypeError, "tokenizer must be a name such as 'gpt2', the path of a tokenizer.json"),
]


@pytest.mark.parametrize(("name", "value", "error", "message"), BAD_LOADER_ARGS)
def test_bad_loader_arguments(name, value, error, message):
    kwargs = dict(batch_size=4, max_length=8, stride=8, shuffle=False)
    kwargs[name] = value
    with pytest.raises(error, match=message):
        create_dataloader(TEXT, **kwargs)


@pytest.mark.parametrize(
    ("rank", "world_size", "error", "message"),
    [
        (2, 2, ValueError, "rank must be at most 1, but got 2. rank counts from 0 to world_size - 1 = 1"),
        (-1, 2, ValueError, "rank must be at least 0, but got -1"),
        (0, 0, ValueError, "world_size must be at least 1, but got 0"),
        (0, 2.0, TypeError, "world_size must be an integer"),
        (0, None, ValueError, "Pass both rank and world_size, or neither"),
        (0, 10**6, ValueError, r"needs at least 4 windows per rank \(1000000 ranks\)"),
    ],
)
def test_bad_distributed_arguments(rank, world_size, error, message):
    with pytest.raises(error, match=message):
        create_dataloader(TEXT, batch_size=4, max_length=8, stride=8, rank=rank, world_size=world_size)


def test_stride_larger_than_max_length_skips_tokens_as_documented():
    ids = list(range(100))
    loader = create_dataloader(ids, batch_size=1, max_length=4, stride=10, shuffle=False, drop_last=False)
    starts = [int(x[0, 0]) for x, _ in loader]
    assert starts == list(range(0, 96, 10))  # tokens 4..9, 14..19, ... are never an input


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(vocab_size=50257, embed_dim=0, context_length=4), ValueError, "embed_dim must be at least 1, but got 0"),
        (dict(vocab_size=50257, embed_dim=-8, context_length=4), ValueError, "embed_dim must be at least 1"),
        (dict(vocab_size=50257, embed_dim=2.5, context_length=4), TypeError, "embed_dim must be an integer"),
        (dict(vocab_size=50257, embed_dim=True, context_length=4), TypeError, "embed_dim must be an integer"),
        (dict(vocab_size=50257, embed_dim=10**9, context_length=4), ValueError, "201.0 TB, but this machine has"),
        (dict(vocab_size=50257, embed_dim=8, context_length=0), ValueError, "context_length must be at least 1"),
        (dict(vocab_size=50257, embed_dim=8, context_length=4.0), TypeError, "context_length must be an integer"),
        (dict(vocab_size=50257, embed_dim=8, context_length=10**13), ValueError, "Lower context_length"),
        (dict(vocab_size=50257, embed_dim=8, context_length=4, positional="rotary"), ValueError,
         "Unknown positional 'rotary'. Choose one of: 'learned', 'sinusoidal', 'none'"),
    ],
)
def test_bad_embedding_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        lmfeed.InputEmbedding(**kwargs)


def test_unknown_attention_scheme_is_named():
    with pytest.raises(ValueError, match="alibi"):
        lmfeed.CausalSelfAttention(16, 4, positional="xpos")


# -- ids ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedding():
    torch.manual_seed(0)
    return lmfeed.InputEmbedding(50257, 8, context_length=16)


@pytest.mark.parametrize(
    ("ids", "error", "message"),
    [
        (torch.tensor([[1, -2, 3]]), ValueError, r"token_ids must not be negative, but contains -2 at index \(0, 1\)"),
        (torch.tensor([[1, 50257]]), ValueError, r"must be < vocab_size=50,257, but contains 50,257 at index \(0, 1\)"),
        (torch.tensor([[1.0, 2.0]]), TypeError, "must hold integer ids.*float32"),
        (torch.tensor([[True, False]]), TypeError, "must hold integer ids.*bool"),
        ([[1, 2]], TypeError, r"must be a torch.Tensor.*torch.as_tensor"),
        (torch.zeros(1, 17, dtype=torch.int64), ValueError, "17 tokens, but context_length=16"),
    ],
)
def test_bad_ids_for_an_embedding(embedding, ids, error, message):
    with pytest.raises(error, match=message):
        embedding(ids)


def test_small_integer_dtypes_are_accepted_as_ids(embedding):
    ids = torch.tensor([[1, 2, 3]])
    expected = embedding(ids)
    assert torch.equal(embedding(ids.to(torch.int8)), expected)
    assert torch.equal(embedding(ids.to(torch.uint8)), expected)
    assert torch.equal(embedding(torch.from_numpy(np.array([[1, 2, 3]], dtype=np.uint16))), expected)


def test_bad_ids_for_a_loader():
    with pytest.raises(ValueError, match="negative id, -1, at position 2"):
        create_dataloader([5, 6, -1, 7], batch_size=1, max_length=1, stride=1)
    with pytest.raises(TypeError, match="integer token ids.*float64"):
        create_dataloader(np.array([1.0, 2.0, 3.0]), batch_size=1, max_length=1, stride=1)
    with pytest.raises(TypeError, match="bytes; decode it first"):
        create_dataloader(b"raw bytes", batch_size=1, max_length=1, stride=1)


# -- text --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("   \n\t  ", None), ("a\x00b", None)],
)
def test_too_little_text_says_how_much_there_is(text, tokens):
    count = len(get_tokenizer().encode(text)) if tokens is None else tokens
    with pytest.raises(ValueError, match=f"max_length=256 needs at least 257 tokens.*the text has {count}\\. Lower"):
        create_dataloader(text)


def test_nul_bytes_and_mixed_newlines_are_kept_as_text():
    text = "line one\r\nline two\rline three\nnul\x00here " * 20
    enc = get_tokenizer()
    ids = enc.encode(text)
    loader = create_dataloader(text, batch_size=1, max_length=len(ids) - 1, stride=1, shuffle=False)
    inputs, targets = next(iter(loader))
    assert enc.decode(inputs[0].tolist() + targets[0, -1:].tolist()) == text


def test_endoftext_in_raw_text_is_a_boundary_like_the_seed():
    ids = create_dataloader("a<|endoftext|>b " * 10, batch_size=1, max_length=4, stride=4, shuffle=False).dataset
    assert 50256 in ids.token_ids.tolist()


def test_empty_and_non_utf8_files(tmp_path):
    from pathlib import Path

    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="the text has 0"):
        create_dataloader(Path(empty))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good text " * 10 + b"\xff\xfe" + b"more")
    with pytest.raises(ValueError, match=r"byte 100 is 0xff .*Convert the file to UTF-8.*errors='replace'"):
        create_dataloader(Path(bad))
    result = CliRunner().invoke(cli, ["batch", str(bad)])  # the command line gets a fix it can run
    assert result.exit_code == 1 and "`lmfeed prepare FILE --errors replace -o STORE`" in result.output


# -- the CLI: one Error line, no traceback ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--batch-size", "0", "--no-plots"], "Error: batch_size must be at least 1, but got 0"),
        (["demo", "--stride", "-4", "--no-plots"], "Error: stride must be at least 1, but got -4"),
        (["demo", "--embed-dim", "0", "--no-plots"], "Error: embed_dim must be at least 1, but got 0"),
        (["demo", "--max-length", "100000000", "--no-plots"], "Error: max_length=100000000 needs at least"),
        (["demo", "--embed-dim", "30", "--positional", "rope", "--no-plots"],
         "Error: embed_dim=30 is not divisible by num_heads=4"),
        (["batch", "--index", "10000000"], "Error: --index 10000000 does not exist"),
        (["embed", "x" + " x" * 39, "--context-length", "8"], "Error: TEXT is 40 tokens, but --context-length is 8"),
        (["info", "no-such-store"], "Error: No such store: 'no-such-store'"),
        (["demo", "no-such.txt"], "Error: No such file or store: 'no-such.txt'. Check the path, or leave SOURCE out"),
        (["batch", "no-such.txt"], "Error: No such file or store: 'no-such.txt'. Check the path, or leave SOURCE out"),
        (["prepare", __file__, "-o", "never-written.store", "--workers", "100000"],
         "Error: workers must be at most "),  # 64, or 8 per core on bigger machines
    ],
)
def test_cli_errors_are_one_line(args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.output
    assert "Traceback" not in result.output


def test_cli_usage_errors_exit_2():
    result = CliRunner().invoke(cli, ["demo", "--batch-size", "many"])
    assert result.exit_code == 2 and "Invalid value for '--batch-size'" in result.output


# -- properties ----------------------------------------------------------------------------------------------------


@given(st.text(st.characters(), max_size=200))
def test_tokenizer_round_trip_on_arbitrary_unicode(text):
    enc = get_tokenizer()
    cleaned = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")  # what tiktoken encodes
    assert enc.decode(enc.encode_ordinary(text)) == cleaned


@given(n=st.integers(2, 400), max_length=st.integers(1, 30), stride=st.integers(1, 40), seed=st.integers(0, 10**6),
       batch_size=st.integers(1, 5))
def test_windows_counts_shift_and_shuffle_permutation(n, max_length, stride, seed, batch_size):
    ids = np.arange(n)
    if n <= max_length:
        return
    count = (n - max_length - 1) // stride + 1
    plain = create_dataloader(ids, batch_size, max_length, stride, False, False)
    assert len(plain.dataset) == count
    rows = torch.cat([x for x, _ in plain]) if len(plain) else torch.empty(0, max_length)
    targets = torch.cat([y for _, y in plain]) if len(plain) else torch.empty(0, max_length)
    assert torch.equal(targets, rows + 1)  # every target is its input shifted by one (ids are 0..n-1)
    assert rows[:, 0].tolist() == list(range(0, count * stride, stride))
    shuffled = create_dataloader(ids, batch_size, max_length, stride, True, False, seed=seed)
    srows = torch.cat([x for x, _ in shuffled])
    assert sorted(srows[:, 0].tolist()) == rows[:, 0].tolist()  # a permutation of the unshuffled epoch


@given(n=st.integers(1, 300), world_size=st.integers(1, 8), batch_size=st.integers(1, 6), drop_last=st.booleans())
def test_distributed_shares_are_disjoint_and_complete(n, world_size, batch_size, drop_last):
    shares = [np.concatenate(list(s)) if len(s) else np.zeros(0, dtype=np.int64) for s in (
        WindowBatchSampler(WindowOrder(n, shuffle=True), batch_size, seed=1, drop_last=drop_last, rank=r,
                           world_size=world_size) for r in range(world_size))]
    sizes = {len(s) for s in shares}
    assert len(sizes) == 1
    seen = np.concatenate(shares).tolist()
    if drop_last:
        assert len(seen) == len(set(seen))
    else:
        assert set(seen) == set(range(n))


@given(k=st.integers(0, 40), shuffle=st.booleans())
def test_resume_at_any_batch_equals_the_uninterrupted_tail(k, shuffle):
    ids = np.arange(300)
    kwargs = dict(batch_size=3, max_length=5, stride=4, shuffle=shuffle, seed=7)
    loader = create_dataloader(ids, **kwargs)
    full = [x.clone() for x, _ in loader] + [x.clone() for x, _ in loader]
    probe = create_dataloader(ids, **kwargs)
    taken = 0
    while taken < k:
        for _ in probe:
            taken += 1
            if taken == k:
                break
    resumed = create_dataloader(ids, **kwargs)
    resumed.load_state_dict(probe.state_dict())
    tail = [x for x, _ in resumed]
    if len(tail) < len(full) - k:
        tail += [x for x, _ in resumed]
    assert len(tail) == len(full) - k
    assert all(torch.equal(a, b) for a, b in zip(tail, full[k:], strict=True))


# -- stores ---------------------------------------------------------------------------------------------------------

import errno  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from lmfeed.store import writer as store_writer  # noqa: E402
from lmfeed.store.format import StoreError, TokenStore  # noqa: E402
from lmfeed.store.prepare import prepare  # noqa: E402


def _write_docs(root: Path, copies: int = 1) -> Path:
    from lmfeed.text.sources import python_reference

    root.mkdir(parents=True, exist_ok=True)
    for c in range(copies):
        for i, doc in enumerate(python_reference()):
            (root / f"{c:03d}-{i:02d}.txt").write_text(f"copy {c}\n{doc}", encoding="utf-8")
    return root


def _tree_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("battery")
    return prepare(_write_docs(root / "docs"), root / "small.store", workers=1)


def test_store_read_with_another_tokenizer_is_refused(small_store):
    import tiktoken

    with pytest.raises(ValueError, match=r"Unknown tokenizer 'r50k'"):
        create_dataloader(small_store.path, tokenizer="r50k")
    bytes_only = tiktoken.Encoding("bytes", pat_str=r"\S+|\s+", mergeable_ranks={bytes([b]): b for b in range(256)},
                                   special_tokens={"<|endoftext|>": 256})
    with pytest.raises(ValueError, match=r"was made with tokenizer 'gpt2' .*has another vocabulary.*tokenizer='gpt2'"):
        create_dataloader(small_store.path, tokenizer=bytes_only)
    with pytest.raises(StoreError, match="vocabulary"):
        TokenStore.open(small_store.path, tokenizer=bytes_only)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "tokens.npy").write_bytes((p / "tokens.npy").read_bytes()[:-10]), "tokens.npy is truncated"),
        (lambda p: (p / "metadata.json").write_text((p / "metadata.json").read_text().replace(
            '"num_tokens": ', '"num_tokens": 1')), "metadata says"),
        (lambda p: (p / "metadata.json").write_text((p / "metadata.json").read_text().replace(
            '"version": 1', '"version": 99')), "version 99"),
        (lambda p: (p / "metadata.json").unlink(), "incomplete store"),
        (lambda p: (p / "metadata.json").write_text("{not json"), "not valid JSON"),
    ],
)
def test_damaged_stores_are_refused_by_api_and_cli(small_store, tmp_path, damage, message):
    copy = tmp_path / "copy.store"
    shutil.copytree(small_store.path, copy)
    damage(copy)
    with pytest.raises(StoreError, match=message):
        TokenStore.open(copy)
    with pytest.raises(ValueError, match=message):
        create_dataloader(copy)
    result = CliRunner().invoke(cli, ["info", str(copy)])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and len(result.output.splitlines()) == 1


def test_a_directory_that_is_not_a_store(tmp_path):
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(StoreError,
                       match="is not a token store: it has no metadata.json. Create one with `lmfeed prepare`"):
        create_dataloader(tmp_path)


def test_a_read_only_store_directory_trains(small_store, tmp_path):
    copy = tmp_path / "ro.store"
    shutil.copytree(small_store.path, copy)
    for p in [*copy.iterdir(), copy]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        loader = create_dataloader(copy, batch_size=4, max_length=32, stride=32, seed=0)
        assert len(list(loader)) == len(loader)
    finally:
        copy.chmod(0o755)


def test_output_on_a_read_only_location_is_a_clear_error(tmp_path):
    docs = _write_docs(tmp_path / "docs")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    target = locked / "out.store"
    if os.geteuid() == 0:  # root writes anywhere it has permission bits for; use a file system root cannot write
        target = Path("/sys/lmfeed-battery.store")
    result = CliRunner().invoke(cli, ["prepare", str(docs), "-o", str(target), "--workers", "1", "--quiet"])
    locked.chmod(0o700)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: Cannot write") and "Choose a writable location" in result.output
    assert not target.exists()


def test_existing_output_is_kept_without_force(small_store, tmp_path):
    out = tmp_path / "kept.store"
    shutil.copytree(small_store.path, out)
    before = _tree_bytes(out)
    result = CliRunner().invoke(cli, ["prepare", str(_write_docs(tmp_path / "d")), "-o", str(out), "--quiet"])
    assert result.exit_code == 1 and "already exists. Pass --force" in result.output
    assert _tree_bytes(out) == before


def test_disk_full_keeps_the_previous_store_and_leaves_nothing_partial(small_store, tmp_path, monkeypatch):
    out = tmp_path / "full.store"
    shutil.copytree(small_store.path, out)
    before = _tree_bytes(out)

    written = []
    write_chunk = store_writer.StoreWriter.write_chunk

    def no_space(self, ids, starts):  # noqa: ANN001
        if written:  # the disk fills up part way: after the first chunk is on disk
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(len(ids))
        return write_chunk(self, ids, starts)

    monkeypatch.setattr(store_writer.StoreWriter, "write_chunk", no_space)
    result = CliRunner().invoke(cli, ["prepare", str(_write_docs(tmp_path / "d", copies=24)), "-o", str(out),
                                      "--force", "--workers", "1", "--quiet"])
    assert written and written[0] > 0  # some ids were written before the failure
    assert result.exit_code == 1 and result.output.startswith("Error: No space left on the device while writing")
    assert "is unchanged" in result.output
    assert len(result.output.splitlines()) == 1
    assert _tree_bytes(out) == before  # the old store, whole
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging directory left
    TokenStore.open(out)


# -- interruption and concurrency (real processes) -------------------------------------------------------------------


def _lmfeed() -> str:
    return shutil.which("lmfeed", path=str(Path(sys.executable).parent)) or "lmfeed"


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("big")
    docs = _write_docs(root / "docs", copies=24)  # ~11 MB
    reference = root / "reference.store"
    start = time.perf_counter()
    subprocess.run([_lmfeed(), "prepare", str(docs), "-o", str(reference), "--workers", "2", "--quiet"], check=True)
    return docs, _tree_bytes(reference), time.perf_counter() - start


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
@pytest.mark.parametrize("fraction", [0.0, 0.4, 0.8])
def test_killed_prepare_leaves_no_partial_store_and_a_rerun_gives_the_same_bytes(big_corpus, tmp_path, sig, fraction):
    docs, reference, duration = big_corpus
    out = tmp_path / "out.store"
    args = [_lmfeed(), "prepare", str(docs), "-o", str(out), "--workers", "2", "--quiet"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.perf_counter()
    while not list(tmp_path.glob(".out.store.tmp-*")) and time.perf_counter() - started < 30:
        time.sleep(0.005)  # wait for the work to begin: a Ctrl-C during Python's own start-up is Python's
    time.sleep(fraction * duration)  # early, in the middle, and near the end of the work
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if fraction == 0.0:
        assert not out.exists() and proc.returncode != 0  # killed as soon as it began
    if out.exists():  # it finished before the signal: then it is whole
        assert _tree_bytes(out) == reference
    else:
        if sig == signal.SIGINT:
            assert "Traceback" not in err
            assert [p for p in tmp_path.iterdir() if p.name.startswith(".out.store.tmp-")] == []
        for leftover in tmp_path.iterdir():  # whatever a kill left behind never opens as a store
            with pytest.raises((StoreError, FileNotFoundError)):
                TokenStore.open(leftover)
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run(args, check=True, capture_output=True)
    assert _tree_bytes(out) == reference
    assert [p.name for p in tmp_path.iterdir()] == ["out.store"]  # the rerun cleared a killed run's staging


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_forced_prepare_leaves_the_old_store_or_the_new_one_never_neither(big_corpus, small_store, tmp_path,
                                                                                 sig):
    docs, reference, duration = big_corpus
    out = tmp_path / "out.store"
    shutil.copytree(small_store.path, out)
    old = _tree_bytes(out)
    args = [_lmfeed(), "prepare", str(docs), "-o", str(out), "--workers", "2", "--quiet", "--force"]
    for fraction in (0.5, 0.95):  # in the middle, and near the swap at the end
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started = time.perf_counter()
        while not list(tmp_path.glob(".out.store.tmp-*")) and time.perf_counter() - started < 30:
            time.sleep(0.005)
        time.sleep(fraction * duration)
        proc.send_signal(sig)
        proc.communicate(timeout=60)
        assert _tree_bytes(out) in (old, reference)  # one whole store at the name, whenever the kill came
        TokenStore.open(out)
    subprocess.run(args, check=True, capture_output=True)
    assert _tree_bytes(out) == reference and [p.name for p in tmp_path.iterdir()] == ["out.store"]


def test_forced_replace_without_an_atomic_swap_and_recovery_after_a_kill(small_store, tmp_path, monkeypatch):
    out = tmp_path / "out.store"
    shutil.copytree(small_store.path, out)
    old = _tree_bytes(out)
    monkeypatch.setattr(store_writer, "_exchange", lambda a, b: False)  # a system without renameat2
    new = prepare(_write_docs(tmp_path / "d", copies=2), out, force=True, workers=1)
    assert _tree_bytes(new.path) != old and sorted(p.name for p in tmp_path.iterdir()) == ["d", "out.store"]
    # a kill between the two renames of that path leaves the old store aside in the dead run's staging directory,
    # whose lock file nobody holds any more:
    shutil.rmtree(out)
    staging = tmp_path / ".out.store.tmp-4242-0000abcd"
    staging.mkdir()
    (staging / ".lock").touch()
    shutil.copytree(small_store.path, staging / "old")
    # names that only look alike are another output's: a glob character in the name, a name with a dash in it
    for name in (".outXstore.tmp-4242-0000abcd", ".out.store.tmp-4242-x.tmp-4242-0000abcd"):
        shutil.copytree(staging, tmp_path / name)
    with pytest.raises(FileExistsError, match="already exists. Pass --force"):  # the next run, without --force,
        prepare(_write_docs(tmp_path / "d2"), out, workers=1)  # sees the store put back before any work
    assert _tree_bytes(out) == old and sorted(p.name for p in tmp_path.glob(".*")) == [
        ".out.store.tmp-4242-x.tmp-4242-0000abcd", ".outXstore.tmp-4242-0000abcd"]
    store_writer._remove_stale(Path(str(tmp_path / "out?store")).absolute())  # a name, not a pattern:
    assert (tmp_path / ".outXstore.tmp-4242-0000abcd").exists()


def test_a_failed_second_rename_puts_the_old_store_back(small_store, tmp_path, monkeypatch):
    out = tmp_path / "out.store"
    shutil.copytree(small_store.path, out)
    old = _tree_bytes(out)
    monkeypatch.setattr(store_writer, "_exchange", lambda a, b: False)
    rename = os.rename

    def full_on_the_new_name(src, dst):  # noqa: ANN001
        if Path(src).parent.name.startswith(".out.store.tmp-") and Path(src).name == "store":
            raise OSError(errno.ENOSPC, "No space left on device")
        return rename(src, dst)

    monkeypatch.setattr(store_writer.os, "rename", full_on_the_new_name)
    with pytest.raises(OSError, match="is unchanged"):
        prepare(_write_docs(tmp_path / "d", copies=2), out, force=True, workers=1)
    assert _tree_bytes(out) == old and sorted(p.name for p in tmp_path.iterdir()) == ["d", "out.store"]


@pytest.mark.slow
def test_two_prepares_to_one_output_one_wins_the_other_fails_clearly(big_corpus, tmp_path):
    docs, reference, _ = big_corpus
    out = tmp_path / "race.store"
    args = [_lmfeed(), "prepare", str(docs), "-o", str(out), "--workers", "1", "--quiet"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, err in results if code == 1)
    assert loser.startswith("Error: ") and len(loser.strip().splitlines()) == 1, loser
    assert _tree_bytes(out) == reference


# -- text at the extremes: one long line, long runs of one character ---------------------------------------------


_PERIOD = ["word", "another", "Jack's", "1999", "--"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "make",
    [
        lambda: " ".join(_PERIOD * 3_800_000),  # 106 MB, no newline at all
        lambda: "a" * 1_000_000,
        lambda: " " * 1_000_000 + "x",
        lambda: "\n" * 1_000_000,
        lambda: "7" * 1_000_000,
        lambda: "é" * 500_000,
    ],
    ids=["100MB-single-line", "1M-a", "1M-spaces", "1M-newlines", "1M-digits", "500k-e-acute"],
)
def test_prepare_handles_long_lines_and_runs_with_tiktokens_ids(tmp_path, make):
    text = make()
    (tmp_path / "doc.txt").write_text(text, encoding="utf-8")
    store = prepare(tmp_path / "doc.txt", tmp_path / "s", workers=2, backend="tiktoken")
    enc = get_tokenizer()
    try:
        if text.startswith(" ".join(_PERIOD) + " "):  # the long line: every " word" starts a piece, so its ids
            period = enc.encode_ordinary(" " + " ".join(_PERIOD))  # are the first period's, then the rest repeating
            expected = enc.encode_ordinary(" ".join(_PERIOD)) + period * (text.count(_PERIOD[0]) - 1)
        else:
            expected = enc.encode_ordinary(text)
    except BaseException:  # tiktoken alone overflows its regex stack on 1M spaces before a letter: ask fastokens
        pytest.importorskip("fastokens")
        from lmfeed.text.backends import batch_encoder

        expected = batch_encoder("fastokens", get_tokenizer())([text])[0].tolist()
    assert store.num_documents == 1 and len(store) == len(expected)
    assert np.array_equal(store.tokens, np.array(expected, dtype=np.uint16))
