"""Planning and part stores without Ray: tasks cover every byte once, cut where no id changes, and the merged parts
are the single-machine store byte for byte (the parts are written here, in this process)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from lmfeed.engines.location import PartsLocation
from lmfeed.engines.parts import PartOptions, part_key, part_name, write_part
from lmfeed.engines.plan import Unit, plan_tasks
from lmfeed.engines.ray_engine import _merge, default_num_tasks, shared_filesystem_message
from lmfeed.store.prepare import prepare
from lmfeed.text.sources import expand_inputs
from lmfeed.text.tokenizer import get_tokenizer, vocabulary_fingerprint

STORE_FILES = ("tokens.npy", "doc_starts.npy", "metadata.json")


def same_bytes(a: Path, b: Path) -> bool:
    return all((a / f).read_bytes() == (b / f).read_bytes() for f in STORE_FILES)


def options(**kw) -> PartOptions:
    enc = get_tokenizer("gpt2")
    base = dict(tokenizer="gpt2", fingerprint=vocabulary_fingerprint(enc), backend="tiktoken", allow_special=False,
                errors="strict", field="text", dtype="uint16", eot_id=50256, splittable=True)
    return PartOptions(**{**base, **kw})


def prepare_in_parts(inputs: list[Path], out: Path, num_tasks: int, *, val_fraction: float = 0.0,
                     errors: str = "strict", parts_url: str | None = None) -> list:
    """What prepare_ray does, with the tasks run one after the other here instead of on Ray workers."""
    files = expand_inputs([str(i) for i in inputs])
    stamps = [(f.size, 0) for f in files]
    opts = options(errors=errors)
    planned = plan_tasks(files, num_tasks, gpt2_pattern=True)
    parts = PartsLocation(parts_url or str(out.parent / f".{out.name}.parts"))
    parts.create()
    names = []
    for t in planned:
        key = part_key(t, files, opts, stamps)
        write_part(t, files, opts, parts, key)
        names.append(part_name(t, key))
    assert parts.names() == names
    _merge(out, parts, names, get_tokenizer("gpt2"), files, allow_special=False, errors=errors, field="text",
           format="auto", glob="*", val_fraction=val_fraction, seed=0, force=False, dtype="uint16", eot_id=50256)
    assert parts.names() == []  # deleted once the store is in place
    assert not (out.parent / f".{out.name}.parts").exists()
    return planned


def covered(planned, files) -> dict[int, list[tuple[int, int]]]:
    spans: dict[int, list[tuple[int, int]]] = {}
    for t in planned:
        for u in t.units:
            spans.setdefault(u.file, []).append((u.start, files[u.file].size if u.end is None else u.end))
    return spans


def test_tasks_cover_every_byte_once_and_cut_at_line_starts_and_safe_points(tmp_path):
    lines = [json.dumps({"text": f"record {i} " * (i % 7 + 1)}) + "\n" for i in range(300)]
    (tmp_path / "a.jsonl").write_text("".join(lines))
    (tmp_path / "b.txt").write_text("word " * 5000 + "end")
    (tmp_path / "c.txt").write_text("tiny")
    files = expand_inputs([str(tmp_path)])
    for n in (1, 2, 3, 5, 17):
        planned = plan_tasks(files, n, gpt2_pattern=True)
        assert planned == plan_tasks(files, n, gpt2_pattern=True)  # a pure function of the files
        assert [t.index for t in planned] == list(range(len(planned)))
        assert len(planned) <= n + 1
        for i, spans in covered(planned, files).items():
            assert spans[0][0] == 0 and spans[-1][1] == files[i].size
            # consecutive: no gap, no overlap
            assert all(a[1] == b[0] for a, b in zip(spans[:-1], spans[1:], strict=True))
            data = files[i].path.read_bytes()
            for _, end in spans[:-1]:
                if files[i].format == "jsonl":
                    assert data[end - 1 : end] == b"\n"
                else:
                    assert data[end - 1 : end].isalpha() and data[end : end + 1] in (b" ", b"\n")
    # a continuation starts every later range of a text file, never a JSON Lines one
    units = [u for t in plan_tasks(files, 17, gpt2_pattern=True) for u in t.units]
    assert any(u.continues for u in units)
    assert all(u.continues == (u.start > 0 and files[u.file].format == "text") for u in units)


def test_compressed_files_and_other_pre_tokenizers_are_planned_whole(tmp_path):
    import gzip

    (tmp_path / "a.txt.gz").write_bytes(gzip.compress(b"word " * 20000))
    (tmp_path / "b.txt").write_text("word " * 20000)
    files = expand_inputs([str(tmp_path)])
    units = [u for t in plan_tasks(files, 8, gpt2_pattern=False) for u in t.units]
    assert units == [Unit(0), Unit(1)]  # whole files, each once
    assert len(plan_tasks(files, 8, gpt2_pattern=True)) > 2  # b.txt alone is cut under GPT-2


def test_default_num_tasks():
    assert default_num_tasks(100 << 20, 2) == 8  # 4 per CPU
    assert default_num_tasks(10 << 20, 8) == 3  # but tasks of at least 4 MB
    assert default_num_tasks(20 << 20, 2) == 6  # in whole waves (5 tasks would leave a CPU idle at the end)
    assert default_num_tasks(100 << 30, 2) == 400  # and at most 256 MB
    assert default_num_tasks(0, 4) == 1


_text = st.lists(st.sampled_from(list("ab \n\t.é😀") + ["<|endoftext|>", "  ", "\n\n", "word "]),
                 max_size=120).map("".join)


@settings(max_examples=25, deadline=None)
@given(docs=st.lists(_text, min_size=1, max_size=6), big=_text, num_tasks=st.integers(1, 12),
       val=st.sampled_from([0.0, 0.5]))
def test_merged_parts_are_the_single_machine_store(docs, big, num_tasks, val):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "in").mkdir()
        (root / "in" / "a.jsonl").write_text("".join(json.dumps({"text": t}) + "\n\n" for t in docs))
        (root / "in" / "b.txt").write_text(big * 5)
        (root / "in" / "c.txt").write_text(docs[0])
        if val:
            expected = root / "one.store"
            try:
                prepare([str(root / "in")], expected, workers=1, backend="tiktoken", val_fraction=val)
            except ValueError:
                return  # a split left empty: the same refusal is tested below
        else:
            prepare([str(root / "in")], root / "one.store", workers=1, backend="tiktoken")
        prepare_in_parts([root / "in"], root / "parts.store", num_tasks, val_fraction=val)
        if val:
            for part in ("train", "val"):
                assert same_bytes(root / "one.store" / part, root / "parts.store" / part)
            assert (root / "one.store/split.json").read_bytes() == (root / "parts.store/split.json").read_bytes()
        else:
            assert same_bytes(root / "one.store", root / "parts.store")


def test_a_part_already_written_is_kept_not_encoded_again(tmp_path):
    (tmp_path / "a.txt").write_text("Hello world " * 1000)
    files = expand_inputs([str(tmp_path / "a.txt")])
    opts = options()
    (task,) = plan_tasks(files, 1, gpt2_pattern=True)
    key = part_key(task, files, opts, [(files[0].size, 0)])
    first = write_part(task, files, opts, PartsLocation(str(tmp_path)), key)
    again = write_part(task, files, opts, PartsLocation(str(tmp_path)), key)
    assert not first.reused and again.reused and again.num_tokens == first.num_tokens
    assert first.num_tokens == len(get_tokenizer("gpt2").encode_ordinary("Hello world " * 1000))
    assert np.load(tmp_path / part_name(task, key) / "tokens.npy")[:2].tolist() == [15496, 995]  # "Hello world"
    # the key names what decides the bytes: another size or modification time, another key
    assert part_key(task, files, opts, [(files[0].size, 1)]) != key
    assert part_key(task, files, options(errors="replace"), [(files[0].size, 0)]) != key


def test_bad_json_inside_a_range_names_the_file_line_and_byte(tmp_path):
    lines = [json.dumps({"text": f"record {i}"}) + "\n" for i in range(200)]
    lines[150] = '{"text": "broken\n'
    (tmp_path / "a.jsonl").write_text("".join(lines))
    offset = sum(len(x) for x in lines[:150])
    files = expand_inputs([str(tmp_path / "a.jsonl")])
    planned = plan_tasks(files, 4, gpt2_pattern=True)
    task = next(t for t in planned if t.units[0].start <= offset < t.units[0].end)
    assert task.units[0].start > 0  # the record is in a later range, whose line numbers are not known up front
    with pytest.raises(ValueError, match=r"a\.jsonl:151: not valid JSON"):
        write_part(task, files, options(), PartsLocation(str(tmp_path)), "0" * 16)
    assert [p.name for p in tmp_path.iterdir()] == ["a.jsonl"]  # no part, not even a temporary one


def test_bad_utf8_inside_a_text_range_names_the_files_byte(tmp_path):
    data = b"word " * 4000 + b"\xff" + b" word" * 10
    (tmp_path / "a.txt").write_bytes(data)
    files = expand_inputs([str(tmp_path / "a.txt")])
    last = plan_tasks(files, 4, gpt2_pattern=True)[-1]
    assert last.units[0].start > 0
    bad = data.index(b"\xff")
    with pytest.raises(ValueError, match=f"a.txt: byte {bad:,} is not valid UTF-8"):
        write_part(last, files, options(), PartsLocation(str(tmp_path)), "0" * 16)


def test_the_probe_reports_what_a_node_cannot_see(tmp_path):
    from lmfeed.engines.ray_engine import _probe

    token = "0123456789abcdef"
    (tmp_path / f".visible-{token}").write_text(token)
    (tmp_path / "a.txt").write_text("12345")
    assert _probe(PartsLocation(str(tmp_path)), token, [(str(tmp_path / "a.txt"), 5)]) == []
    problems = _probe(PartsLocation(str(tmp_path / "elsewhere")), token, [(str(tmp_path / "a.txt"), 4),
                                                                         (str(tmp_path / "gone.txt"), 1)])
    assert len(problems) == 2
    assert problems[0].endswith(f"cannot see {tmp_path / 'elsewhere'} (the directory beside OUT)")
    assert problems[1].endswith(f"sees input {tmp_path / 'a.txt'} with 5 bytes, not 4")
    assert _probe(PartsLocation(str(tmp_path)), "fedcba9876543210", []) != []  # another run's marker is not ours


def test_the_shared_filesystem_message_names_the_nodes_and_the_fix():
    message = shared_filesystem_message(["node w1 cannot see /data/.out.store.parts (the directory beside OUT)"])
    assert "node w1 cannot see /data/.out.store.parts" in message
    assert "every node sees" in message and "shared mount" in message


def test_parts_at_an_fsspec_url_merge_into_the_same_bytes(tmp_path, reference_text):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text(reference_text[:200_000])
    (tmp_path / "in" / "b.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in ["x", "", "y z"] * 50))
    prepare([str(tmp_path / "in")], tmp_path / "one.store", workers=1, backend="tiktoken")
    (tmp_path / "bucket").mkdir()
    (tmp_path / "bucket" / "keep.txt").write_text("not ours")
    planned = prepare_in_parts([tmp_path / "in"], tmp_path / "url.store", 5, parts_url=f"file://{tmp_path}/bucket")
    assert len(planned) >= 4
    assert same_bytes(tmp_path / "one.store", tmp_path / "url.store")
    assert sorted(p.name for p in (tmp_path / "bucket").iterdir()) == ["keep.txt"]  # only our parts were removed
    assert not list(tmp_path.glob(".url.store*"))  # no download scratch left beside OUT


def test_parts_on_s3_merge_into_the_same_bytes(tmp_path, reference_text):
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    import fsspec

    from s3_server import local_s3  # moto on 127.0.0.1, fsspec's s3:// pointed at it

    with local_s3():
        fsspec.filesystem("s3").mkdir("parts-bucket")
        (tmp_path / "a.txt").write_text(reference_text[:100_000])
        prepare([str(tmp_path / "a.txt")], tmp_path / "one.store", workers=1, backend="tiktoken")
        prepare_in_parts([tmp_path / "a.txt"], tmp_path / "s3.store", 3, parts_url="s3://parts-bucket/run1")
        assert same_bytes(tmp_path / "one.store", tmp_path / "s3.store")
        assert fsspec.filesystem("s3").ls("parts-bucket") == []


def write_parquet(path: Path, texts: list[str], row_group_size: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": list(range(len(texts))), "text": texts}), path, row_group_size=row_group_size)


def test_parquet_is_cut_between_row_groups_and_merges_into_the_same_bytes(tmp_path, reference_text):
    pytest.importorskip("pyarrow")
    docs = [reference_text[i : i + 700 + i % 300] for i in range(0, 120_000, 1000)]  # 120 rows
    (tmp_path / "in").mkdir()
    write_parquet(tmp_path / "in" / "a.parquet", docs, row_group_size=10)  # 12 row groups
    (tmp_path / "in" / "b.txt").write_text(reference_text[:30_000])
    prepare([str(tmp_path / "in")], tmp_path / "one.store", workers=1, backend="tiktoken")
    files = expand_inputs([str(tmp_path / "in")])
    for n in (1, 3, 5):
        planned = prepare_in_parts([tmp_path / "in"], tmp_path / f"parts{n}.store", n)
        assert same_bytes(tmp_path / "one.store", tmp_path / f"parts{n}.store"), n
        groups = [(u.start, u.end) for t in planned for u in t.units if u.row_groups]
        if n > 1:  # cut into consecutive runs of row groups covering all 12
            assert groups[0][0] == 0 and groups[-1][1] == 12 and len(groups) >= 2
            assert all(a[1] == b[0] for a, b in zip(groups[:-1], groups[1:], strict=True))
        else:
            assert groups == [] and planned[0].units[0] == Unit(0)
    assert files[0].format == "parquet"


def test_probes_ask_every_other_live_node_with_cpus_and_not_the_drivers_own(tmp_path):
    pytest.importorskip("ray")
    from lmfeed.engines.ray_engine import _check_probes, _start_probes

    asked = []
    HEAD, W1, W2, DEAD, GPU_ONLY = ("aa" * 28, "b1" * 28, "b2" * 28, "dd" * 28, "ee" * 28)  # Ray's hex node ids

    class Remote:  # what ray.remote(_probe).options(...).remote(...) records, without a cluster
        def options(self, **kwargs):
            self.strategy = kwargs["scheduling_strategy"]
            return self

        def remote(self, parts, token, sizes):
            asked.append(self.strategy.node_id)
            return ["node w2 cannot see it"] if self.strategy.node_id == W2 else []

    class FakeRay:
        def get_runtime_context(self):
            return type("Context", (), {"get_node_id": lambda self: HEAD})()

        def nodes(self):
            return [{"NodeID": HEAD, "Alive": True, "Resources": {"CPU": 2}},
                    {"NodeID": W1, "Alive": True, "Resources": {"CPU": 8}},
                    {"NodeID": W2, "Alive": True, "Resources": {"CPU": 8}},
                    {"NodeID": DEAD, "Alive": False, "Resources": {"CPU": 8}},
                    {"NodeID": GPU_ONLY, "Alive": True, "Resources": {"GPU": 1}}]

        def remote(self, fn):
            return Remote()

        def put(self, value):
            return value

        def get(self, refs):
            return refs

    parts = PartsLocation(str(tmp_path))
    parts.create()
    refs, where, token = _start_probes(FakeRay(), parts, [])
    assert asked == [W1, W2] and (tmp_path / f".visible-{token}").exists()
    with pytest.raises(Exception, match="node w2 cannot see it"):
        _check_probes(FakeRay(), refs, where, token)
    assert not (tmp_path / f".visible-{token}").exists()  # the marker goes, whatever the answer

    class OneNode(FakeRay):
        def nodes(self):
            return super().nodes()[:1]

    asked.clear()
    refs, where, token = _start_probes(OneNode(), parts, [])
    assert refs == [] and asked == [] and not list(tmp_path.glob(".visible-*"))
    _check_probes(OneNode(), refs, where, token)  # nothing to ask, nothing to clean
