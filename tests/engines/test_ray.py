"""``prepare(engine="ray")`` on a local Ray instance (2 CPUs, 127.0.0.1 only, started once for this module):
the single-machine bytes for any task count, a killed worker retried, a bad input failing with its place, resumed.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import lmfeed
from lmfeed.cli import main
from lmfeed.engines.ray_engine import parts_dir_for

STORE_FILES = ("tokens.npy", "doc_starts.npy", "metadata.json")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster():
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before ray is imported: bind 127.0.0.1 only
    ray = pytest.importorskip("ray")
    # address="local": a new instance of our own, even if another `ray start` runs on this machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    assert ray.nodes()[0]["NodeManagerAddress"] == "127.0.0.1"
    yield ray
    ray.shutdown()


def same_bytes(a: Path, b: Path) -> bool:
    return all((a / f).read_bytes() == (b / f).read_bytes() for f in STORE_FILES)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Text files (one large, one empty, one gzipped), JSON Lines with blank lines, and Parquet (8 row groups)."""
    from pydoc_data.topics import topics

    root = tmp_path_factory.mktemp("corpus")
    names = sorted(topics)
    (root / "a.txt").write_text("\n\n".join(topics[n] for n in names[:30]))  # ~200 KB: cut into ranges
    with open(root / "b.jsonl", "w") as f:
        for n in names[30:]:
            f.write(json.dumps({"text": topics[n]}) + "\n\n")
    (root / "c.txt").write_text("")
    (root / "d.txt.gz").write_bytes(gzip.compress(topics[names[0]].encode()))
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    rows = [topics[n] for n in names[10:50]]  # a row a document; 8 row groups, cut between them
    pq.write_table(pa.table({"text": rows}), root / "e.parquet", row_group_size=5)
    return root


@pytest.fixture(scope="module")
def single(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "one.store"
    lmfeed.prepare([str(corpus)], out, workers=1)
    return out


@pytest.mark.parametrize("num_tasks", [1, 3, 8])
def test_the_store_has_the_single_machine_bytes_for_any_task_count_and_a_parquet_input(ray_cluster, corpus, single,
                                                                                      tmp_path, num_tasks):
    store = lmfeed.prepare([str(corpus)], tmp_path / "ray.store", engine="ray", num_tasks=num_tasks)
    assert same_bytes(single, tmp_path / "ray.store")
    from pydoc_data.topics import topics

    assert store.num_documents == 1 + len(topics) - 30 + 2 + 40  # a.txt, b.jsonl's records, c, d, e's rows
    if num_tasks == 8:  # the Parquet file was cut between row groups
        from lmfeed.engines.plan import plan_tasks
        from lmfeed.text.sources import expand_inputs

        units = [u for t in plan_tasks(expand_inputs([str(corpus)]), 8, gpt2_pattern=True) for u in t.units]
        assert sum(u.row_groups for u in units) >= 2
    assert not parts_dir_for(tmp_path / "ray.store").exists()


def test_a_validation_split_has_the_single_machine_bytes(ray_cluster, corpus, tmp_path):
    lmfeed.prepare([str(corpus)], tmp_path / "one", workers=1, val_fraction=0.3, seed=7)
    lmfeed.prepare([str(corpus)], tmp_path / "ray", engine="ray", num_tasks=5, val_fraction=0.3, seed=7)
    for part in ("train", "val"):
        assert same_bytes(tmp_path / "one" / part, tmp_path / "ray" / part)


def test_a_killed_worker_is_retried_and_the_store_is_the_same(ray_cluster, tmp_path):
    from pydoc_data.topics import topics

    text = "\n".join(topics.values())
    for i in range(4):
        (tmp_path / f"{i}.txt").write_text(text * 2)  # ~1 MB each, about a second of tiktoken per task
    lmfeed.prepare([str(tmp_path)], tmp_path.parent / "kill-one.store", workers=1, backend="tiktoken", force=True)
    raylet = ray_cluster._private.worker._global_node.all_processes["raylet"][0].process.pid
    killed: list[int] = []

    def kill_a_running_task() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                    parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                if cmdline.startswith(b"ray::_run_part") and parent == raylet:  # one of ours, inside a task
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(int(pid))
                    return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_a_running_task)
    killer.start()
    out = tmp_path.parent / "kill-ray.store"
    lmfeed.prepare([str(tmp_path)], out, engine="ray", num_tasks=4, backend="tiktoken", force=True)
    killer.join()
    assert killed, "no worker was caught running a task"
    assert not Path(f"/proc/{killed[0]}").exists()
    assert same_bytes(tmp_path.parent / "kill-one.store", out)


def test_bad_input_fails_with_its_place_keeps_finished_parts_and_a_rerun_resumes(ray_cluster, tmp_path, caplog):
    corpus = tmp_path / "in"
    corpus.mkdir()
    out = corpus / "out.store"  # inside the input directory: the rerun must not read the kept parts as text
    good = [json.dumps({"text": f"record {i} " * 50}) + "\n" for i in range(400)]
    (corpus / "a.jsonl").write_text("".join(good))
    bad = [json.dumps({"text": f"late {i}"}) + "\n" for i in range(20)]
    bad[12] = '{"text": "cut short\n'
    (corpus / "b.jsonl").write_text("".join(bad))
    parts = parts_dir_for(out)
    with pytest.raises(ValueError, match=r"b\.jsonl:13: not valid JSON .*run the same command again") as info:
        lmfeed.prepare([str(corpus)], out, engine="ray", num_tasks=4)
    assert str(parts) in str(info.value)
    assert not out.exists()
    kept = sorted(p.name for p in parts.iterdir() if p.name.startswith("part-"))
    assert len(kept) >= 3  # every task but the bad one finished, and its part is kept

    # the same command again: the finished parts are skipped, and the same error comes back
    caplog.set_level(logging.INFO, logger="lmfeed.engines.ray_engine")
    with pytest.raises(ValueError, match=r"b\.jsonl:13"):
        lmfeed.prepare([str(corpus)], out, engine="ray", num_tasks=4)
    assert f"resuming: {len(kept)} of {len(kept) + 1} parts are already done" in caplog.text

    # fixed in place (same size, so the plan is unchanged): only the fixed file's task runs
    fixed = '{"text": "cut short"}'
    bad[12] = fixed + " " * (len(bad[12]) - len(fixed) - 1) + "\n"
    (corpus / "b.jsonl").write_text("".join(bad))
    caplog.clear()
    lmfeed.prepare([str(corpus)], out, engine="ray", num_tasks=4)
    assert f"resuming: {len(kept)} of {len(kept) + 1} parts are already done" in caplog.text
    lmfeed.prepare([str(corpus / "a.jsonl"), str(corpus / "b.jsonl")], tmp_path / "one.store", workers=1)
    for name in ("tokens.npy", "doc_starts.npy"):  # (the metadata's sources name the inputs as given: a dir here)
        assert (tmp_path / "one.store" / name).read_bytes() == (out / name).read_bytes()
    assert not parts.exists()


def test_cli_engine_ray(ray_cluster, corpus, single, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli.store"
    result = runner.invoke(main, ["prepare", str(corpus), "-o", str(out), "--engine", "ray", "--num-tasks", "3"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Wrote {out}: ")
    assert same_bytes(single, out)
    result = runner.invoke(main, ["prepare", str(corpus), "-o", str(tmp_path / "bar.store"), "--engine", "ray",
                                  "--num-tasks", "2", "--progress"])
    assert result.exit_code == 0, result.output
    bar = result.stderr.replace("\r", "\n").strip().splitlines()[-1]  # one bar for the whole run, on stderr
    assert bar.startswith("prepare (ray): 100%") and "2/2" in bar and "tok/s" in bar, bar
    encoded = int(re.search(r"([\d,]+) tokens", bar)[1].replace(",", ""))
    assert len(lmfeed.TokenStore.open(out)) - 2 <= encoded <= len(lmfeed.TokenStore.open(out))  # all but separators
    assert "prepare (ray)" not in result.stdout
    result = runner.invoke(main, ["prepare", str(corpus), "-o", str(tmp_path / "x"), "--engine", "ray",
                                  "--workers", "2"])
    assert result.exit_code == 1 and "Error: workers=2 counts this machine's processes" in result.output
    result = runner.invoke(main, ["prepare", "-", "-o", str(tmp_path / "x"), "--engine", "ray"], input="hi")
    assert result.exit_code == 1 and "Error: engine='ray' cannot read stdin" in result.output
    assert not (tmp_path / "x").exists()


def test_parts_at_a_url_when_nodes_share_no_filesystem(ray_cluster, corpus, single, tmp_path):
    # file:// stands in for s3:// here (the S3 path of the same code is tested against moto in test_plan.py)
    (tmp_path / "bucket").mkdir()
    out = tmp_path / "url.store"
    result = CliRunner().invoke(main, ["prepare", str(corpus), "-o", str(out), "--engine", "ray", "--num-tasks", "4",
                                       "--parts", f"file://{tmp_path}/bucket/run"])
    assert result.exit_code == 0, result.output
    assert same_bytes(single, out)
    assert list((tmp_path / "bucket" / "run").iterdir()) == [] and not parts_dir_for(out).exists()


def test_url_inputs_are_read_by_the_workers(ray_cluster, corpus, tmp_path):
    # an fsspec URL input (file:// here; s3:// reads the same way, with each node's own credentials)
    lmfeed.prepare([f"file://{corpus}/b.jsonl"], tmp_path / "one.store", workers=1)
    lmfeed.prepare([f"file://{corpus}/b.jsonl"], tmp_path / "ray.store", engine="ray", num_tasks=3)
    assert same_bytes(tmp_path / "one.store", tmp_path / "ray.store")
