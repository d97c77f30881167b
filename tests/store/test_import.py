"""nanoGPT's train.bin and llm.c's shards as token sources and back into stores (issue #15, item 26)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from lmfeed.cli import main
from lmfeed.loading.loader import create_dataloader
from lmfeed.store.export import export
from lmfeed.store.format import StoreError, TokenStore
from lmfeed.store.import_bin import import_tokens
from lmfeed.store.prepare import prepare
from lmfeed.text.tokenizer import get_tokenizer

ENC = get_tokenizer()
EOT = ENC.eot_token
import_module = importlib.import_module("lmfeed.store.import_bin")


def llmc_file(path, ids) -> None:
    """llm.c's write_datafile: 256 int32 (magic, version 1, count), then uint16 ids."""
    header = np.zeros(256, dtype="<i4")
    header[:3] = (20240520, 1, len(ids))
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(np.array(ids, dtype="<u2").tobytes())


def documents(store: TokenStore) -> list[str]:
    return [ENC.decode(store.document(i).tolist()) for i in range(store.num_documents)]


DOCS = ["First Citizen:\nBefore we proceed any further, hear me speak.", "All:\nSpeak, speak.", "You are all resolved."]


def test_nanogpts_own_layout_imports_as_its_documents(tmp_path):
    # nanoGPT's data/openwebtext/prepare.py: ids = enc.encode_ordinary(text); ids.append(enc.eot_token)
    ids = [i for doc in DOCS for i in [*ENC.encode_ordinary(doc), EOT]]
    np.array(ids, dtype=np.uint16).tofile(tmp_path / "train.bin")
    store = import_tokens(tmp_path / "train.bin", tmp_path / "s")
    assert documents(store) == DOCS and store.tokens.tolist() == ids[:-1]  # the closing end-of-text is not a document
    assert store.metadata["sources"][0]["format"] == "nanogpt"


def test_llmcs_own_layout_imports_as_its_documents(tmp_path):
    # llm.c's dev/data/fineweb.py: tokens = [eot]; tokens.extend(enc.encode_ordinary(doc))
    ids = [i for doc in DOCS for i in [EOT, *ENC.encode_ordinary(doc)]]
    llmc_file(tmp_path / "shard_000000.bin", ids)
    store = import_tokens([tmp_path / "shard_000000.bin"], tmp_path / "s")
    assert documents(store) == DOCS and store.metadata["sources"][0]["format"] == "llmc"


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(alphabet="ab \n", max_size=12), min_size=1, max_size=8).filter(lambda d: d[0] and d[-1]),
       st.sampled_from(["nanogpt", "llmc"]), st.booleans(), st.sampled_from([3, 1 << 24]))
def test_import_gives_back_what_export_wrote(tmp_path_factory, docs, format, eot_after_last, block):
    tmp = tmp_path_factory.mktemp("roundtrip")
    for i, doc in enumerate(docs):
        (tmp / f"{i:02d}.txt").write_text(doc)
    store = prepare(sorted(tmp.glob("*.txt")), tmp / "s", workers=1)
    export(store, tmp / "x.bin", format=format, eot_after_last=eot_after_last)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(import_module, "_BLOCK", block)  # blocks of 3 ids: documents cut across block edges
        back = import_tokens(tmp / "x.bin", tmp / "back")
    assert back.tokens.tolist() == store.tokens.tolist()
    assert back.doc_starts.tolist() == store.doc_starts.tolist()


def test_export_eot_after_last(tmp_path):
    (tmp_path / "a.txt").write_text("Hello world")
    store = prepare([tmp_path / "a.txt"], tmp_path / "s", workers=1)
    r = CliRunner().invoke(main, ["export", str(store.path), "-o", str(tmp_path / "t.bin"), "--eot-after-last"])
    assert r.exit_code == 0, r.output
    assert np.fromfile(tmp_path / "t.bin", dtype=np.uint16).tolist() == [15496, 995, EOT]
    llmc = export(store, tmp_path / "t_llmc.bin", format="llmc", eot_after_last=True)
    assert np.fromfile(llmc, dtype="<i4", count=3).tolist() == [20240520, 1, 3]
    none = prepare([tmp_path / "a.txt"], tmp_path / "n", workers=1, eot=False)
    with pytest.raises(ValueError, match="has no end-of-text id"):
        export(none, tmp_path / "u.bin", eot_after_last=True)


def test_batch_and_the_loader_read_a_bin_file_as_ids(tmp_path):
    ids = [i for doc in DOCS for i in [*ENC.encode_ordinary(doc), EOT]]
    np.array(ids, dtype=np.uint16).tofile(tmp_path / "train.bin")
    x, y = next(iter(create_dataloader(tmp_path / "train.bin", batch_size=1, max_length=4, stride=4,
                                       shuffle=False)))
    assert x.tolist() == [ids[:4]] and y.tolist() == [ids[1:5]]
    r = CliRunner().invoke(main, ["batch", str(tmp_path / "train.bin"), "--batch-size", "1", "--max-length", "4",
                                  "--json"])
    assert r.exit_code == 0 and "not valid UTF-8" not in r.output, r.output
    import json

    assert json.loads(r.output)["inputs"] == [ids[:4]]


def test_bad_token_files_are_named(tmp_path):
    np.array([15496, 65535, 995], dtype=np.uint16).tofile(tmp_path / "bad.bin")
    with pytest.raises(StoreError, match=r"bad.bin: token 1 is id 65535, at or above the vocabulary size 50,257"):
        import_tokens(tmp_path / "bad.bin", tmp_path / "s")
    (tmp_path / "odd.bin").write_bytes(b"\x01\x02\x03")
    with pytest.raises(ValueError, match=r"3 bytes, an odd number: not whole uint16 ids"):
        import_tokens(tmp_path / "odd.bin", tmp_path / "s")
    llmc_file(tmp_path / "short.bin", [1, 2, 3])
    (tmp_path / "short.bin").write_bytes((tmp_path / "short.bin").read_bytes()[:-2])
    with pytest.raises(ValueError, match=r"says it holds 3 tokens .* truncated"):
        import_tokens(tmp_path / "short.bin", tmp_path / "s")
    header = np.zeros(256, dtype="<i4")
    header[:3] = (20240520, 7, 0)
    (tmp_path / "v7.bin").write_bytes(header.tobytes())
    with pytest.raises(ValueError, match=r"llm.c token file version 7; lmfeed reads version 1"):
        import_tokens(tmp_path / "v7.bin", tmp_path / "s")
    assert not (tmp_path / "s").exists()
    r = CliRunner().invoke(main, ["import", str(tmp_path / "bad.bin"), "-o", str(tmp_path / "s")])
    assert r.exit_code == 1 and r.output.startswith("Error: ") and "token 1 is id 65535" in r.output
