"""The same documents give byte-identical ids and document index whichever container they came in (plain, gz, zst,
bz2, xz, Parquet, a Python list, a datasets.Dataset, an s3:// copy on a local moto server), for any workers."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings, strategies as st

from lmfeed.store.prepare import prepare
from lmfeed.text.tokenizer import ENDOFTEXT, get_tokenizer
from s3_server import local_s3

ENC = get_tokenizer("gpt2")


@pytest.fixture(scope="module")
def s3():
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    with local_s3() as endpoint:
        import fsspec

        fs = fsspec.filesystem("s3")
        fs.mkdir("corpus")
        yield fs, endpoint


def ids_bytes(store) -> bytes:
    return (store.path / "tokens.npy").read_bytes() + (store.path / "doc_starts.npy").read_bytes()


documents = st.lists(st.text(st.characters(codec="utf-8"), max_size=40), min_size=1, max_size=12).filter(any)


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=documents)
def test_same_documents_same_bytes_in_every_container(tmp_path_factory, s3, docs):
    datasets = pytest.importorskip("datasets")
    fs, _ = s3
    d = tmp_path_factory.mktemp("c")
    lines = "".join(json.dumps({"text": t}) + "\n" for t in docs).encode()
    (d / "plain.jsonl").write_bytes(lines)
    (d / "g.jsonl.gz").write_bytes(gzip.compress(lines))
    (d / "z.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines))
    (d / "b.jsonl.bz2").write_bytes(bz2.compress(lines))
    (d / "x.jsonl.xz").write_bytes(lzma.compress(lines))
    pq.write_table(pa.table({"text": docs}), d / "p.parquet", row_group_size=3)
    key = f"corpus/{d.name}/web.jsonl.zst"
    fs.pipe(key, zstandard.ZstdCompressor().compress(lines))
    inputs = [[d / "plain.jsonl"], [d / "g.jsonl.gz"], [d / "z.jsonl.zst"], [d / "b.jsonl.bz2"], [d / "x.jsonl.xz"],
              [d / "p.parquet"], iter(list(docs)), [{"text": t} for t in docs],
              datasets.Dataset.from_dict({"text": docs}), f"s3://{key}"]
    want = None
    for i, source in enumerate(inputs):
        store = prepare(source, d / f"s{i}", workers=1 + i % 2)
        got = ids_bytes(store)
        want = want or got
        assert got == want, f"container {i} differs"
    assert store.tokens.tolist() == ENC.encode(ENDOFTEXT.join(docs), allowed_special={ENDOFTEXT}) or any(
        ENDOFTEXT in t for t in docs)


def test_s3_prefix_glob_and_refusals(tmp_path, s3):
    fs, _ = s3
    fs.pipe("corpus/web/a.jsonl", b'{"text": "Hello world"}\n')
    fs.pipe("corpus/web/b.jsonl.zst", zstandard.ZstdCompressor().compress(b'{"text": "Bye"}\n'))
    store = prepare("s3://corpus/web", tmp_path / "s", workers=1)
    assert store.tokens.tolist() == [15496, 995, 50256, *ENC.encode_ordinary("Bye")]
    assert [s["input"] for s in store.metadata["sources"]] == ["s3://corpus/web"]
    assert prepare("s3://corpus/web/*.zst", tmp_path / "z", workers=1).tokens.tolist() == ENC.encode_ordinary("Bye")
    with pytest.raises(FileNotFoundError, match=r"s3://corpus/nothing: no such file or prefix"):
        prepare("s3://corpus/nothing", tmp_path / "x", workers=1)
    with pytest.raises(FileNotFoundError, match=r"s3://no-such-bucket/a\.jsonl"):
        prepare("s3://no-such-bucket/a.jsonl", tmp_path / "x", workers=1)
    assert not (tmp_path / "x").exists()


def test_bad_records_skip_counts_them_in_metadata(tmp_path):
    (tmp_path / "r.jsonl").write_text('{"text": "a"}\n{"text": null}\n{"other": 1}\n{"text": "b"}\n')
    with pytest.raises(ValueError, match=r"r\.jsonl:2: field 'text' is null"):
        prepare([tmp_path / "r.jsonl"], tmp_path / "s", workers=1)
    store = prepare([tmp_path / "r.jsonl"], tmp_path / "s", workers=2, on_bad_record="skip")
    assert store.num_documents == 2 and store.metadata["bad_records"] == {"on_bad_record": "skip", "skipped": 2}
    assert store.tokens.tolist() == [*ENC.encode_ordinary("a"), 50256, *ENC.encode_ordinary("b")]


def test_corrupt_input_leaves_the_existing_store_untouched(tmp_path):
    (tmp_path / "ok.jsonl").write_text('{"text": "a"}\n')
    store = prepare([tmp_path / "ok.jsonl"], tmp_path / "s", workers=1)
    before = ids_bytes(store) + (store.path / "metadata.json").read_bytes()
    data = zstandard.ZstdCompressor().compress(b'{"text": "x"}\n' * 10_000)
    (tmp_path / "cut.jsonl.zst").write_bytes(data[: len(data) // 2])
    pq.write_table(pa.table({"n": [1, 2]}), tmp_path / "nums.parquet")
    for bad, message in ((tmp_path / "cut.jsonl.zst", "ends inside a frame at byte"),
                         (tmp_path / "nums.parquet", r"no column 'text'; its columns: n \(int64\)")):
        with pytest.raises(ValueError, match=message):
            prepare([bad], tmp_path / "s", workers=2, force=True)
        assert ids_bytes(store) + (store.path / "metadata.json").read_bytes() == before
