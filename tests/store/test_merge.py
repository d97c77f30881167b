"""merge and export: shards merged give the single run's bytes; concatenation; nanoGPT and llm.c files."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from lmfeed.store.export import export
from lmfeed.store.format import TokenStore
from lmfeed.store.merge import merge
from lmfeed.store.prepare import TrainVal, prepare
from lmfeed.text.sources import python_reference

prepare_module = importlib.import_module("lmfeed.store.prepare")  # the module (lmfeed.prepare is the function)


def dir_bytes(path: Path) -> dict[str, bytes]:
    return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Path]:
    """11 text files and a JSON Lines file of 9 records (one empty): 20 documents."""
    d = tmp_path_factory.mktemp("corpus")
    docs = python_reference()[:20]
    files = []
    for i, doc in enumerate(docs[:11]):
        files.append(d / f"{i:02d}.txt")
        files[-1].write_text(doc)
    jsonl = d / "rest.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t}) + "\n" for t in [*docs[11:19], ""]))
    return [*files, jsonl]


@pytest.mark.parametrize("num_shards", [1, 3, 7])
def test_merged_shards_equal_a_single_run(tmp_path, corpus, num_shards, monkeypatch):
    monkeypatch.setattr(prepare_module, "_PIECE_CHARS", 4000)  # cut documents too
    single = prepare(corpus, tmp_path / "single", workers=1)
    shards = [prepare(corpus, tmp_path / f"shard{i}", workers=2, num_shards=num_shards, shard_index=i)
              for i in range(num_shards)]
    assert sum(s.num_documents for s in shards) == single.num_documents == 20
    merged = merge([s.path for s in reversed(shards)], tmp_path / "merged")  # any order: shards name their index
    assert dir_bytes(merged.path) == dir_bytes(single.path)


def test_merged_split_shards_equal_a_single_split_run(tmp_path, corpus):
    single = prepare(corpus, tmp_path / "single", workers=1, val_fraction=0.25, seed=3)
    for i in range(3):
        prepare(corpus, tmp_path / f"shard{i}", workers=1, num_shards=3, shard_index=i, val_fraction=0.25, seed=3)
    merged = merge([tmp_path / f"shard{i}" for i in range(3)], tmp_path / "merged")
    assert isinstance(single, TrainVal) and isinstance(merged, TrainVal)
    assert dir_bytes(tmp_path / "merged") == dir_bytes(tmp_path / "single")


def test_missing_duplicate_or_foreign_shards_are_refused(tmp_path, corpus):
    for i in range(3):
        prepare(corpus, tmp_path / f"shard{i}", workers=1, num_shards=3, shard_index=i)
    with pytest.raises(ValueError, match="Shards 1 of 3 are missing"):
        merge([tmp_path / "shard0", tmp_path / "shard2"], tmp_path / "m")
    with pytest.raises(ValueError, match="Shard 0 of 3 is given twice"):
        merge([tmp_path / "shard0", tmp_path / "shard0", tmp_path / "shard1"], tmp_path / "m")
    prepare(corpus[:5], tmp_path / "other1", workers=1, num_shards=3, shard_index=1)
    with pytest.raises(ValueError, match="not a shard of the same run"):
        merge([tmp_path / "shard0", tmp_path / "other1", tmp_path / "shard2"], tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_concatenating_stores_equals_one_run_over_all_inputs(tmp_path, corpus):
    a = prepare(corpus[:4], tmp_path / "a", workers=1)
    b = prepare(corpus[4:], tmp_path / "b", workers=1)
    both = prepare(corpus, tmp_path / "both", workers=1)
    merged = merge([a, b.path], tmp_path / "merged")
    assert dir_bytes(merged.path) == dir_bytes(both.path)


def test_stores_of_different_tokenization_do_not_merge(tmp_path, corpus):
    a = prepare(corpus[:2], tmp_path / "a", workers=1)
    b = prepare(corpus[2:4], tmp_path / "b", workers=1, eot=False)
    with pytest.raises(ValueError, match=r"differ in separator \(none vs eos \(id 50256\)\)"):
        merge([a, b], tmp_path / "m")


def test_export_nanogpt_and_llmc(tmp_path, corpus):
    store = prepare(corpus[:3], tmp_path / "s", workers=1)
    bin_path = export(store, tmp_path / "train.bin")
    # as nanoGPT's train.py reads it
    assert np.array_equal(np.memmap(bin_path, dtype=np.uint16, mode="r"), store.tokens)
    llmc = export(store.path, tmp_path / "train_llmc.bin", format="llmc")
    header = np.fromfile(llmc, dtype="<i4", count=256)
    assert header[:3].tolist() == [20240520, 1, len(store)] and not header[3:].any()
    assert np.array_equal(np.fromfile(llmc, dtype="<u2", offset=1024), store.tokens)
    with pytest.raises(FileExistsError, match="--force"):
        export(store, bin_path)
    with pytest.raises(FileNotFoundError, match=r"directory '.*missing' does not exist. Create it first."):
        export(store, tmp_path / "missing" / "train.bin")  # names the directory, not a temporary file


def test_export_refuses_uint32(tmp_path):
    import tiktoken

    from lmfeed.text.tokenizer import ENDOFTEXT, get_tokenizer

    enc = get_tokenizer()
    big = tiktoken.Encoding(name="big", pat_str=enc._pat_str, mergeable_ranks=enc._mergeable_ranks,
                            special_tokens={ENDOFTEXT: 70_000})
    (tmp_path / "a.txt").write_text("Hello")
    store = prepare([tmp_path / "a.txt"], tmp_path / "s", tokenizer=big, workers=1)
    with pytest.raises(ValueError, match="uint16 ids, but .* holds uint32"):
        export(TokenStore.open(store.path, tokenizer=big), tmp_path / "x.bin")
    assert not (tmp_path / "x.bin").exists()


# ---- issue #15, item 17: merging more stores than the open-file limit allows --------------------------------------


def _merge_under_limit(tmp_path, soft: int, hard: int):
    import subprocess
    import sys

    lines = "".join(json.dumps({"text": f"document {i}"}) + "\n" for i in range(120))
    (tmp_path / "c.jsonl").write_text(lines)
    for i in range(40):
        prepare([tmp_path / "c.jsonl"], tmp_path / f"s{i:02d}", workers=1, num_shards=40, shard_index=i)
    code = ("import resource, sys\n"
            f"resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))\n"
            "from lmfeed.cli import main\n"
            "main()")
    args = [sys.executable, "-c", code, "merge", *[str(tmp_path / f"s{i:02d}") for i in range(40)],
            "-o", str(tmp_path / "m")]
    return subprocess.run(args, capture_output=True, text=True, check=False), lines


def test_forty_shards_merge_under_a_soft_limit_of_64_open_files(tmp_path):
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 200:
        pytest.skip("the hard limit on open files is too low here to raise the soft one")
    done, _ = _merge_under_limit(tmp_path, 64, hard)
    assert done.returncode == 0, done.stderr
    assert TokenStore.open(tmp_path / "m").num_documents == 120


def test_forty_shards_under_a_hard_limit_of_64_say_how_many_files_they_need(tmp_path):
    done, _ = _merge_under_limit(tmp_path, 64, 64)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("Error: Merging 40 stores keeps about 112 files open (2 per store), but this "
                                  "process may open at most 64 (ulimit -Hn). Raise the limit (ulimit -n 112")
