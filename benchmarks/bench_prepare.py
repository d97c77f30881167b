"""Benchmark ``lmfeed prepare`` against tiktoken's own single-thread ``encode_ordinary`` on the same corpus.

The corpus is built offline from the Python standard library's ``.py``, ``.txt`` and ``.rst`` files and the
language reference (``pydoc_data.topics``), shuffled and repeated deterministically until it reaches
``--corpus-mb``; one stdlib file is one document. It is cached under ``benchmarks/.cache/`` (git-ignored).

Measured in one run:
  1. baseline: ``enc.encode_ordinary(doc)`` for every document, one thread, texts already in memory;
  2. ``lmfeed prepare CORPUS -o STORE --workers N --backend B --quiet`` as a subprocess, for B = tiktoken and
     fastokens, wall time from start to exit (start-up, reading, JSON parsing, writing and fsync included), and its
     peak memory: the largest resident set of the process tree (main + workers, summed) sampled every 20 ms, and
     the largest single process's high-water mark (VmHWM); the two stores must be byte-identical;
  3. what bounds prepare with fastokens: the same work done once, in phases, on one thread (reading the lines,
     parsing the JSON, encoding, writing the ids), and the fixed start-up (interpreter, tiktoken, fastokens).

Usage:
    python benchmarks/bench_prepare.py                   # 200 MB, JSON Lines, 2 workers (a few minutes)
    python benchmarks/bench_prepare.py --corpus-mb 5     # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"


def stdlib_documents() -> list[str]:
    """Every .py/.txt/.rst file of the standard library (sorted paths) plus the language reference's topics."""
    from pydoc_data.topics import topics

    root = Path(sysconfig.get_paths()["stdlib"])
    docs = []
    for p in sorted(root.rglob("*")):
        if p.suffix in (".py", ".txt", ".rst") and "site-packages" not in p.parts and p.is_file():
            try:
                docs.append(p.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, OSError):
                continue  # a few test files are deliberately not UTF-8
    docs.extend(topics[k] for k in sorted(topics))
    return [d for d in docs if d]


def build_corpus(corpus_mb: int, layout: str) -> Path:
    """Write (once) a corpus of at least ``corpus_mb`` MB: JSON Lines files or plain text files of ~4 MB."""
    out = CACHE / f"corpus-{corpus_mb}mb-{layout}"
    if (out / "DONE").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    docs = stdlib_documents()
    rng = random.Random(0)
    target, written, part, buf, buf_bytes = corpus_mb * 10**6, 0, 0, [], 0
    while written < target:
        order = list(range(len(docs)))
        rng.shuffle(order)
        for i in order:
            text = docs[i]
            size = len(text.encode("utf-8"))
            buf.append(text)
            buf_bytes += size
            written += size
            if buf_bytes >= 4 * 10**6 or written >= target:
                if layout == "jsonl":
                    lines = "".join(json.dumps({"text": t}) + "\n" for t in buf)
                    (out / f"part-{part:04d}.jsonl").write_text(lines, encoding="utf-8")
                else:  # one file per document would be ~50,000 files: concatenate into ~4 MB documents
                    (out / f"part-{part:04d}.txt").write_text("\n".join(buf), encoding="utf-8")
                part, buf, buf_bytes = part + 1, [], 0
            if written >= target:
                break
    (out / "DONE").write_text(str(written))
    return out


def corpus_documents(corpus: Path, layout: str) -> list[str]:
    docs = []
    for p in sorted(corpus.glob(f"part-*.{layout if layout == 'jsonl' else 'txt'}")):
        if layout == "jsonl":
            with open(p, encoding="utf-8") as f:
                docs.extend(json.loads(line)["text"] for line in f)
        else:
            docs.append(p.read_text(encoding="utf-8"))
    return docs


def baseline(docs: list[str]) -> tuple[int, float]:
    """tiktoken's encode_ordinary on one thread: (tokens, seconds)."""
    from lmfeed.text.tokenizer import get_tokenizer

    enc = get_tokenizer("gpt2")
    enc.encode_ordinary("warm up")
    start = time.perf_counter()
    n = sum(len(enc.encode_ordinary(d)) for d in docs)
    return n, time.perf_counter() - start


def _tree_rss(pid: int, hwm: dict[int, int]) -> int:
    """Resident bytes of a process and all its descendants (from /proc); records each one's VmHWM in ``hwm``."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                    elif line.startswith("VmHWM:"):
                        hwm[p] = max(hwm.get(p, 0), int(line.split()[1]) * 1024)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return total


def timed_tree(cmd: list[str], env: dict[str, str] | None = None,
               capture_stderr: bool = False) -> tuple[float, int, int, str]:
    """Run ``cmd`` as a whole process: wall seconds, the peak resident set of its process tree (sampled every
    20 ms), the largest single process's peak, and its stderr when captured (else it goes to ours)."""
    os.sync()  # the last run's dirty pages and freed blocks are flushed now, not during this run
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE if capture_stderr else None,
                            env=env)
    peak = [0]
    hwm: dict[int, int] = {}

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(proc.pid, hwm))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    seconds = time.perf_counter() - start
    sampler.join()
    if proc.returncode:
        tail = err.decode(errors="replace")[-3000:] if err else ""
        raise SystemExit(f"{' '.join(cmd[:6])} ... failed (exit {proc.returncode})" + (f":\n{tail}" if tail else ""))
    return seconds, peak[0], max(hwm.values(), default=0), err.decode(errors="replace") if err else ""


def run_prepare(corpus: Path, store: Path, workers: int, backend: str = "auto",
                extra: tuple[str, ...] = ()) -> tuple[float, int, int]:
    """Wall seconds, peak RSS of the process tree, and the largest single process's peak, of `lmfeed prepare`
    (``extra``: more options, e.g. ``("--tokenizer", path)``)."""
    shutil.rmtree(store, ignore_errors=True)
    cmd = [sys.executable, "-c", "from lmfeed.cli import main; main()", "prepare", str(corpus), "--glob", "part-*",
           "-o", str(store), "--workers", str(workers), "--backend", backend, "--quiet", *extra]
    seconds, peak, largest, _ = timed_tree(cmd)
    return seconds, peak, largest


def _same_files(a: Path, b: Path) -> bool:
    """Whether two directories hold the same files with the same bytes (compared 8 MiB at a time)."""
    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    if names != sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file()):
        return False
    for name in names:
        with open(a / name, "rb") as fa, open(b / name, "rb") as fb:
            while True:
                x, y = fa.read(1 << 23), fb.read(1 << 23)
                if x != y:
                    return False
                if not x:
                    break
    return True


def phases(corpus: Path, layout: str) -> None:
    """Time prepare's phases with fastokens once, on one thread, and the fixed start-up costs: what bounds it."""
    import tempfile

    import numpy as np

    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import lmfeed.cli, lmfeed.store.prepare"], check=True)
    interpreter = time.perf_counter() - t
    code = ("import time; t = time.perf_counter(); from lmfeed.text.tokenizer import get_tokenizer; "
            "e = get_tokenizer(); a = time.perf_counter(); from lmfeed.text.backends import select_backend; "
            "select_backend('fastokens', e); "
            "print(a - t, time.perf_counter() - a)")
    tiktoken_s, fastokens_s = map(float, subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                                        text=True).stdout.split())
    from lmfeed.text.backends import batch_encoder
    from lmfeed.text.tokenizer import get_tokenizer

    encode = batch_encoder("fastokens", get_tokenizer("gpt2"))
    read_s = parse_s = encode_s = write_s = 0.0
    nbytes = 0
    with tempfile.TemporaryFile() as out:
        for p in sorted(corpus.glob("part-*")):
            t = time.perf_counter()
            with open(p, "rb") as f:
                lines = f.readlines() if layout == "jsonl" else [f.read()]
            nbytes += sum(map(len, lines))
            a = time.perf_counter()
            texts = [json.loads(line)["text"] for line in lines] if layout == "jsonl" else [lines[0].decode("utf-8")]
            b = time.perf_counter()
            ids, _ = encode(texts)
            c = time.perf_counter()
            ids.astype(np.uint16).tofile(out)
            d = time.perf_counter()
            read_s, parse_s, encode_s, write_s = read_s + a - t, parse_s + b - a, encode_s + c - b, write_s + d - c
    mb = nbytes / 1e6
    total = read_s + parse_s + encode_s + write_s
    print(f"phases, one thread, fastokens ({mb:,.0f} MB): read {read_s:.2f} s, JSON/UTF-8 decode {parse_s:.2f} s, "
          f"encode {encode_s:.2f} s ({mb / encode_s:.0f} MB/s), write {write_s:.2f} s; "
          f"sum {total:.2f} s ({encode_s / total:.0%} encoding)")
    print(f"fixed start-up: interpreter + imports {interpreter:.2f} s, tiktoken GPT-2 build {tiktoken_s:.2f} s, "
          f"fastokens load + self-check {fastokens_s:.2f} s "
          "(run alone here; prepare overlaps it with the tiktoken build)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus-mb", type=int, default=200, help="corpus size in MB (default 200)")
    parser.add_argument("--layout", choices=["jsonl", "text"], default="jsonl",
                        help="jsonl: one stdlib file per record (many documents); "
                             "text: ~4 MB text files (few, long documents)")
    parser.add_argument("--workers", type=int, nargs="+", default=[2], help="worker counts to run (default: 2)")
    args = parser.parse_args()

    t = time.perf_counter()
    corpus = build_corpus(args.corpus_mb, args.layout)
    size = sum(p.stat().st_size for p in corpus.glob("part-*"))
    print(f"corpus: {corpus} ({size / 1e6:,.1f} MB on disk, {args.layout}; ready in {time.perf_counter() - t:.1f} s)")
    docs = corpus_documents(corpus, args.layout)
    text_bytes = sum(len(d.encode("utf-8")) for d in docs)
    print(f"documents: {len(docs):,}, text: {text_bytes / 1e6:,.1f} MB (UTF-8)")

    base_tokens, base_s = baseline(docs)
    del docs
    base_rate = base_tokens / base_s
    print(f"baseline  tiktoken encode_ordinary, 1 thread: {base_tokens:,} tokens in {base_s:.2f} s = "
          f"{base_rate / 1e6:.2f} M tokens/s ({text_bytes / base_s / 1e6:.1f} MB/s)")

    from lmfeed.store.format import TokenStore

    for workers in args.workers:
        stores = {}
        for backend in ("tiktoken", "fastokens"):
            store_path = CACHE / f"store-{args.corpus_mb}mb-{args.layout}-{backend}"
            seconds, peak, largest = run_prepare(corpus, store_path, workers, backend)
            store = TokenStore.open(store_path)
            separators = store.num_documents - 1
            if len(store) - separators != base_tokens:
                raise SystemExit(f"token counts differ: store {len(store) - separators:,} vs baseline {base_tokens:,}")
            rate = len(store) / seconds
            print(f"prepare   --workers {workers} --backend {backend}: {len(store):,} tokens in {seconds:.2f} s = "
                  f"{rate / 1e6:.2f} M tokens/s ({text_bytes / seconds / 1e6:.1f} MB/s), "
                  f"{rate / base_rate:.2f}x the baseline; "
                  f"peak memory {peak / 2**20:,.0f} MiB (process tree), "
                  f"{largest / 2**20:,.0f} MiB (largest process, VmHWM)")
            stores[backend] = store_path
        same = _same_files(stores["tiktoken"], stores["fastokens"])
        print(f"stores of the two backends byte-identical: {same}")
        for path in stores.values():
            shutil.rmtree(path, ignore_errors=True)
        if not same:
            raise SystemExit("the fastokens store differs from the tiktoken store")
    phases(corpus, args.layout)
    print(f"cpu cores available: {len(os.sched_getaffinity(0))}")


if __name__ == "__main__":
    main()
