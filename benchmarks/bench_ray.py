"""Benchmark ``prepare --engine ray`` against the local ``prepare --workers 2`` on the bench corpus.

Both run on this machine's 2 cores, each in a fresh Python process, alternating, ``--rounds`` times; the figure is
the median tokens/s of ``lmfeed.prepare`` itself (reading, encoding, writing, fsync; for Ray also planning, the
per-node check, scheduling, the workers' imports and tokenizer set-up, and the merge). Ray's own start-up
(``ray.init`` and its 2 worker processes booted, as a real run finds a cluster already running) is timed apart and
reported, not counted. The target: Ray at least
0.8x the local tokens/s, so the engine's overhead stays bounded. The two stores must be byte-identical.

The corpus is ``bench_prepare.build_corpus`` (JSON Lines of the standard library's text, cached in
``benchmarks/.cache/``). The local Ray instance listens on 127.0.0.1 only.

Usage:
    python benchmarks/bench_ray.py                       # 100 MB, 3 rounds
    python benchmarks/bench_ray.py --corpus-mb 20 --rounds 1   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_prepare  # noqa: E402  (the corpus builder beside this file)


def child(engine: str, corpus: str, out: str, num_tasks: int | None) -> None:
    """Run one prepare in this process and print its figures as JSON."""
    init_s = 0.0
    if engine == "ray":
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # bind 127.0.0.1 only
        import ray

        start = time.perf_counter()
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")

        @ray.remote(num_cpus=1)
        def boot() -> int:
            time.sleep(0.5)  # hold the CPU, so that each call gets a worker process of its own
            return os.getpid()

        # a running cluster has its worker processes up (they have not imported lmfeed yet): so have we
        assert len(set(ray.get([boot.remote() for _ in range(2)]))) == 2
        init_s = time.perf_counter() - start
    import lmfeed
    from lmfeed.engines.ray_engine import default_num_tasks
    from lmfeed.text.sources import expand_inputs

    total = sum(f.size or 0 for f in expand_inputs([corpus]))
    start = time.perf_counter()
    warm = None
    if engine == "ray":
        store = lmfeed.prepare([corpus], out, engine="ray", num_tasks=num_tasks)
        tasks = num_tasks or default_num_tasks(total, 2)
        seconds = time.perf_counter() - start
        # the same again in this job: its workers have imported lmfeed and built their tokenizer (a long job's
        # state after its first task on each CPU); shows what the first run's fixed cost was
        start = time.perf_counter()
        lmfeed.prepare([corpus], out, engine="ray", num_tasks=num_tasks, force=True)
        warm = time.perf_counter() - start
    else:
        store = lmfeed.prepare([corpus], out, workers=2)
        tasks = 0
        seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "tokens": len(store), "init_s": init_s, "tasks": tasks, "warm_s": warm}))


def run(engine: str, corpus: Path, out: Path, num_tasks: int | None) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, __file__, "--child", engine, "--corpus", str(corpus), "--out", str(out)]
    if num_tasks:
        cmd += ["--num-tasks", str(num_tasks)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus-mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--num-tasks", type=int, default=None, help="default: lmfeed's (4 per CPU, >= 4 MB each)")
    parser.add_argument("--child", choices=["local", "ray"], help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.corpus, args.out, args.num_tasks)
        return
    if args.corpus_mb < 1 or args.rounds < 1:
        parser.error("--corpus-mb and --rounds must be at least 1")
    corpus = bench_prepare.build_corpus(args.corpus_mb, "jsonl")
    work = bench_prepare.CACHE / "bench-ray"
    work.mkdir(parents=True, exist_ok=True)
    figures: dict[str, list[dict]] = {"local": [], "ray": []}
    for r in range(args.rounds):
        for engine in ("local", "ray") if r % 2 == 0 else ("ray", "local"):
            figures[engine].append(run(engine, corpus, work / f"{engine}.store", args.num_tasks))
            f = figures[engine][-1]
            extra = (f", ray.init + boot {f['init_s']:.1f} s; again with warm workers "
                     f"{f['tokens'] / f['warm_s'] / 1e6:.2f} M tokens/s" if engine == "ray" else "")
            print(f"round {r + 1} {engine:5}: {f['tokens'] / f['seconds'] / 1e6:6.2f} M tokens/s "
                  f"({f['seconds']:.2f} s{extra})", file=sys.stderr)
        same = all((work / "local.store" / n).read_bytes() == (work / "ray.store" / n).read_bytes()
                   for n in ("tokens.npy", "doc_starts.npy", "metadata.json"))
        if not same:
            sys.exit("the Ray store differs from the local one")
    rate = {e: statistics.median(f["tokens"] / f["seconds"] for f in figures[e]) for e in figures}
    tokens = figures["local"][0]["tokens"]
    size = sum(p.stat().st_size for p in corpus.glob("part-*.jsonl"))
    ratio = rate["ray"] / rate["local"]
    print(f"| corpus | {size / 1e6:.0f} MB JSON Lines, {tokens:,} tokens, {args.rounds} round(s) |")
    print(f"| local `--workers 2` | {rate['local'] / 1e6:.2f} M tokens/s |")
    print(f"| `--engine ray`, {figures['ray'][0]['tasks']} tasks, 2 CPUs | {rate['ray'] / 1e6:.2f} M tokens/s "
          f"(ray.init and worker boot {statistics.median(f['init_s'] for f in figures['ray']):.1f} s, not counted) |")
    warm = statistics.median(f["tokens"] / f["warm_s"] for f in figures["ray"])
    print(f"| `--engine ray` again, warm workers | {warm / 1e6:.2f} M tokens/s ({warm / rate['local']:.3f}x) |")
    print(f"| ratio | {ratio:.3f}x (target >= 0.8x: {'met' if ratio >= 0.8 else 'NOT met'}); stores identical |")


if __name__ == "__main__":
    main()
