"""``make bench``: lmfeed against its peers, side by side, in one run; prints a Markdown table of medians and ratios.

    python benchmarks/run.py                 # full: 200 MB corpus, 10M-token cases, 3 rounds (~16 min idle, 2 cores)
    python benchmarks/run.py --quick         # 10 MB corpus, 1M-token cases, 1 round (under 3 min)
    python benchmarks/run.py --corpus-mb 50 --rounds 5
    python benchmarks/run.py --peers-only    # only litdata, datatrove, HF datasets and Mosaic (peers.py)

What runs (every case in a fresh process, so its peak memory is its own; all of them children of this one):

- peers (``peers.py``, whose docstring says how each is installed and called): litdata, datatrove, Hugging Face
  ``datasets`` and Mosaic ``streaming`` tokenize a 16 MB JSON Lines corpus (``--quick``: 2 MB) with 2 workers; their
  ids are checked equal to lmfeed's store before any of their figures is kept; then they serve shuffled 8 x 1024
  batches with ``num_workers`` 0 and 2, and resume after 10 batches where they offer loader state.

- prepare: ``lmfeed prepare --workers 2`` on a JSON Lines corpus built offline from the Python standard library's
  own ``.py``/``.txt``/``.rst`` files and language reference, repeated deterministically to ``--corpus-mb``
  (``bench_prepare.build_corpus``; cached under ``benchmarks/.cache/``), against tiktoken's ``encode_ordinary``
  on one thread (``bench_prepare.baseline``, timed around the encode calls only, one file's texts in memory at a
  time). Peak memory of prepare is that of its whole process tree (``bench_prepare.run_prepare``).
- loading and embeddings: the cases of ``loader_cases.py`` on the first 10M ids (``--quick``: 1M) of the store that
  the last prepare round wrote, against the seed's ``GPTDatasetV1``/``create_dataloader_v1`` (package
  ``llms-from-scratch``, installed with ``--no-deps``), a nanoGPT-style ``get_batch`` and a bare zero-copy gather.

Contenders alternate within each round (A B A B ...) so that machine noise falls on both; figures are medians over
``--rounds``. The table goes to stdout and to ``benchmarks/results.md`` (``--quick``:
``benchmarks/.cache/results-quick.md``), written whole, then renamed into place; progress goes to stderr. The seed's
``tiktoken.get_encoding("gpt2")`` finds GPT-2's files offline in a private ``TIKTOKEN_CACHE_DIR``
(``benchmarks/.cache/tiktoken``), filled with lmfeed's hash-verified copies and set only in the cases' environment.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import bench_prepare  # noqa: E402  (the prepare benchmark beside this file: corpus, baseline, run_prepare)
import peers  # noqa: E402  (litdata, datatrove, HF datasets, Mosaic streaming: their environments and cases)

CACHE = bench_prepare.CACHE
RESULTS = BENCH / "results.md"
MB = 10**6  # every memory figure is in MB = 10^6 bytes
# The URLs tiktoken_ext.openai_public.gpt2 fetches; tiktoken caches each under sha1(url) in TIKTOKEN_CACHE_DIR.
TIKTOKEN_GPT2 = {
    "vocab.bpe": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
    "encoder.json": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
}


@dataclass(frozen=True)
class Settings:
    corpus_mb: int
    rounds: int
    workers: int = 2
    tokens: int = 10_000_000  # ids the construction and epoch cases read from the store
    seed_stride1_tokens: int = 100_000  # the seed's stride-1 dataset needs ~17 KB per token: measured here only
    random_batches: int = 500  # batches of 64 x 1024 per random-offset case
    embed_steps: int = 30  # forward + backward steps per embedding case
    run_chars: int = 1_000_000  # runs of one character: this long, and 8x longer
    records: int = 1_000_000  # JSON Lines records of ~5 tokens (#15 item 19)
    nospace_mb: int = 8  # one document without space or newline: this many MB, and 4x more (#15 item 21)
    peer_mb: int = 16  # the peers' corpus (they tokenize at 1-3 M tokens/s on 2 cores: 16 MB is ~5 s each)
    peer_batches: int = 1000  # serving: batches of 8 x 1024 timed after the first


FULL = dict(tokens=10_000_000, seed_stride1_tokens=100_000, random_batches=500, embed_steps=30, run_chars=1_000_000,
            peer_mb=16, peer_batches=1000, records=1_000_000, nospace_mb=8)
QUICK = dict(tokens=1_000_000, seed_stride1_tokens=5_000, random_batches=100, embed_steps=5, run_chars=100_000,
             peer_mb=2, peer_batches=200, records=100_000, nospace_mb=2)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------- machine


def machine() -> dict[str, str]:
    """Cores, memory and CPU model of this machine, and its load when the run starts."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    memory = "unknown"
    try:
        with open("/proc/meminfo") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
        memory = f"{kib / 2**20:.1f} GiB"
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {"cores": str(len(os.sched_getaffinity(0))), "memory": memory, "cpu": model, "load": load,
            "python": platform.python_version()}


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH, capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


# ------------------------------------------------------------------------------------------------------ set-up


def tiktoken_cache() -> Path:
    """A TIKTOKEN_CACHE_DIR holding GPT-2's files (lmfeed's hash-verified copies), so the seed's loader runs offline."""
    from lmfeed.text.tokenizer import gpt2_file

    cache = CACHE / "tiktoken"
    cache.mkdir(parents=True, exist_ok=True)
    for name, url in TIKTOKEN_GPT2.items():
        target = cache / hashlib.sha1(url.encode()).hexdigest()
        if not target.exists():
            tmp = target.with_suffix(".tmp")
            shutil.copyfile(gpt2_file(name), tmp)
            tmp.replace(target)
    return cache


def case_env() -> dict[str, str]:
    env = dict(os.environ, TIKTOKEN_CACHE_DIR=str(tiktoken_cache()))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCH), env.get("PYTHONPATH", "")) if p)
    return env


# ------------------------------------------------------------------------------------------------------- cases


def tiktoken_baseline_case(corpus: Path) -> dict:
    """Runs in a fresh process: tiktoken's encode_ordinary on one thread over the corpus, one file at a time."""
    tokens, seconds = 0, 0.0
    for part in sorted(corpus.glob("part-*.jsonl")):
        with open(part, encoding="utf-8") as f:
            docs = [json.loads(line)["text"] for line in f]
        n, s = bench_prepare.baseline(docs)  # times the encode calls only
        tokens, seconds = tokens + n, seconds + s
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"tokens": tokens, "seconds": seconds, "peak_bytes": peak}


RUN_CHARS = {"a": "a", "space": " ", "newline": "\n", "digit": "7", "é": "é"}


def runs_case(sizes: str) -> dict:
    """Runs in a fresh process: ``lmfeed.prepare`` (2 workers, default backend) and tiktoken's ``encode_ordinary`` on a
    run of one character, at each of ``sizes`` ("1000000,8000000") characters: seconds per contender, char, size."""
    import tempfile

    import lmfeed
    from lmfeed.text.tokenizer import get_tokenizer

    enc, out = get_tokenizer(), {}
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        (Path(tmp) / "warm.txt").write_text("warm up: load the backend once, untimed", encoding="utf-8")
        lmfeed.prepare(Path(tmp) / "warm.txt", Path(tmp) / "run.store", workers=2, force=True, progress=False)
        for name, char in RUN_CHARS.items():
            for n in map(int, sizes.split(",")):
                text = char * n
                path = Path(tmp) / "run.txt"
                path.write_text(text, encoding="utf-8")
                start = time.perf_counter()
                lmfeed.prepare(path, Path(tmp) / "run.store", workers=2, force=True, progress=False)
                out[f"lmfeed {name} {n}"] = time.perf_counter() - start
                start = time.perf_counter()
                try:
                    enc.encode_ordinary(text)
                    out[f"tiktoken {name} {n}"] = time.perf_counter() - start
                except BaseException:  # noqa: BLE001 - tiktoken's regex can overflow its stack on long runs
                    out[f"tiktoken {name} {n}"] = None
    return out


def records_corpus(n: int) -> Path:
    """``n`` JSON Lines records of about 5 GPT-2 tokens each (#15 item 19), written once under the cache."""
    out = CACHE / f"records-{n}"
    if not (out / "DONE").exists():
        out.mkdir(parents=True, exist_ok=True)
        words = ["alpha", "beta", "gamma", "delta", "the", "of", "model", "token", "42", "data"]
        with open(out / "part-0000.jsonl", "w", encoding="utf-8") as f:
            for i in range(n):
                f.write(json.dumps({"id": i, "text": " ".join(words[(i * 7 + k) % 10] for k in range(1 + i % 5))})
                        + "\n")
        (out / "DONE").write_text(str(n))
    return out


def records_baseline_case(corpus: Path) -> dict:
    """Runs in a fresh process: the plain loop, ``json.loads`` + ``encode_ordinary`` per line, one thread."""
    from lmfeed.text.tokenizer import get_tokenizer

    enc = get_tokenizer("gpt2")
    enc.encode_ordinary("warm up")
    start = time.perf_counter()
    tokens = 0
    with open(corpus / "part-0000.jsonl", encoding="utf-8") as f:
        for line in f:
            tokens += len(enc.encode_ordinary(json.loads(line)["text"]))
    return {"tokens": tokens, "seconds": time.perf_counter() - start}


def nospace_case(corpus_mb: int) -> Path:
    """One document of ``corpus_mb`` MB with no space or newline (minified-code-like, #15 item 21), written once."""
    out = CACHE / f"nospace-{corpus_mb}mb"
    if not (out / "DONE").exists():
        out.mkdir(parents=True, exist_ok=True)
        unit = "".join(f"v{i}=f({i},'k{i % 7}');" for i in range(1000))
        (out / "part-0000.txt").write_text(unit * (corpus_mb * 10**6 // len(unit) + 1), encoding="utf-8")
        (out / "DONE").write_text(str(corpus_mb))
    return out


def run_json(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=case_env())
    if proc.returncode:
        raise SystemExit(f"benchmark case failed ({' '.join(cmd[1:4])} ...):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def baseline(corpus: Path) -> dict:
    return run_json([sys.executable, __file__, "--tiktoken-baseline", str(corpus)])


def backends() -> list[str]:
    """prepare's encoders to measure: tiktoken always, fastokens when installed (the bench extra brings it)."""
    import importlib.util

    return ["tiktoken"] + (["fastokens"] if importlib.util.find_spec("fastokens") else [])


def prepare(corpus: Path, store: Path, workers: int, backend: str) -> dict:
    from lmfeed.store.format import TokenStore

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds, tree_peak, largest = bench_prepare.run_prepare(corpus, store, workers, backend)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # prepare reaps its workers, so their CPU is in here too
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    opened = TokenStore.open(store)
    return {"tokens": len(opened), "documents": opened.num_documents, "seconds": seconds, "cpu_seconds": cpu,
            "peak_bytes": tree_peak, "largest_bytes": largest}


def loader_case(case: str, store: Path, **options: int) -> dict:
    cmd = [sys.executable, str(BENCH / "loader_cases.py"), case, str(store)]
    for key, value in options.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    return run_json(cmd)


def backend_key(backend: str) -> str:
    return f"lmfeed-{backend}"


def comparisons(s: Settings, store_tokens: int) -> dict[str, dict[str, dict]]:
    """Comparison -> contender -> loader_cases options. Contenders of one comparison run one after the other."""
    t, n = s.tokens, store_tokens  # random offsets range over the whole store
    return {
        "construct": {"lmfeed": dict(case="construct_lmfeed", tokens=t, max_length=256, stride=128),
                      "seed": dict(case="construct_seed", tokens=t, max_length=256, stride=128)},
        "construct1": {"lmfeed": dict(case="construct_lmfeed", tokens=t, max_length=1024, stride=1),
                       "seed": dict(case="construct_seed", tokens=s.seed_stride1_tokens, max_length=1024, stride=1)},
        "epoch": {"lmfeed": dict(case="epoch_lmfeed", tokens=t, batch_size=8, max_length=256, stride=128),
                  "seed": dict(case="epoch_seed", tokens=t, batch_size=8, max_length=256, stride=128)},
        "random": {name: dict(case=f"random_{name}", tokens=n, batch_size=64, max_length=1024,
                              batches=s.random_batches) for name in ("lmfeed", "nanogpt", "bare")},
        "embed": {"lmfeed": dict(case="embed_lmfeed", batch_size=8, max_length=1024, embed_dim=768,
                                 batches=s.embed_steps),
                  "torch": dict(case="embed_torch", batch_size=8, max_length=1024, embed_dim=768,
                                batches=s.embed_steps)},
    }


def measure(s: Settings) -> tuple[dict, dict]:
    """Run every comparison ``s.rounds`` times, contenders alternating; returns (results, facts)."""
    return list(core_rounds(s))[-1]


def core_rounds(s: Settings) -> Iterator[tuple[dict, dict]]:
    """``measure`` one round at a time: yields (results, facts) so far after each round."""
    started = time.perf_counter()
    corpus = bench_prepare.build_corpus(s.corpus_mb, "jsonl")
    corpus_bytes = sum(p.stat().st_size for p in corpus.glob("part-*"))
    log(f"corpus: {corpus} ({corpus_bytes / MB:,.1f} MB of JSON Lines; ready in {time.perf_counter() - started:.1f} s)")
    store = CACHE / f"run-store-{s.corpus_mb}mb"
    results: dict[str, dict[str, list[dict]]] = {}

    def record(comparison: str, contender: str, result: dict) -> None:
        results.setdefault(comparison, {}).setdefault(contender, []).append(result)
        figures = ", ".join(f"{k}={v:,.4g}" if isinstance(v, float) else f"{k}={v:,}" for k, v in result.items()
                            if k != "case")
        log(f"  {comparison:<10} {contender:<8} {figures}")

    for r in range(s.rounds):
        log(f"round {r + 1}/{s.rounds}")
        record("prepare", "tiktoken", baseline(corpus))
        theirs = results["prepare"]["tiktoken"][-1]
        for backend in backends():  # the last one's store feeds the loader cases (all backends write the same bytes)
            record("prepare", backend_key(backend), prepare(corpus, store, s.workers, backend))
            ours = results["prepare"][backend_key(backend)][-1]
            if ours["tokens"] - (ours["documents"] - 1) != theirs["tokens"]:  # the same ids, less the separators
                raise SystemExit(f"prepare --backend {backend} wrote {ours['tokens']:,} tokens with "
                                 f"{ours['documents'] - 1:,} separators, but tiktoken counted {theirs['tokens']:,}")
        limit = run_json([sys.executable, str(BENCH / "peers.py"), "limit", "lmfeed", "--corpus", str(corpus)])
        record("prepare", "limit", limit)
        if ours["tokens"] < s.tokens + 1:
            raise SystemExit(f"the store has {ours['tokens']:,} tokens, fewer than the {s.tokens:,} the loader "
                             "cases read: raise --corpus-mb.")
        record("runs", "both", run_json([sys.executable, __file__, "--runs-case", f"{s.run_chars},{8 * s.run_chars}"]))
        records = records_corpus(s.records)
        record("records", "plain", run_json([sys.executable, __file__, "--records-baseline", str(records)]))
        seconds, tree_peak, _ = bench_prepare.run_prepare(records, CACHE / "records.store", s.workers)
        record("records", "lmfeed", {"seconds": seconds, "peak_bytes": tree_peak})
        for mb in (s.nospace_mb, 4 * s.nospace_mb):
            seconds, tree_peak, _ = bench_prepare.run_prepare(nospace_case(mb), CACHE / "nospace.store", s.workers)
            record("nospace", f"{mb}", {"seconds": seconds, "peak_bytes": tree_peak})
        for comparison, contenders in comparisons(s, ours["tokens"]).items():
            for contender, options in contenders.items():
                options = dict(options)
                record(comparison, contender, loader_case(options.pop("case"), store, **options))
        facts = {"corpus_bytes": corpus_bytes, "store_tokens": results["prepare"]["lmfeed-tiktoken"][-1]["tokens"],
                 "minutes": (time.perf_counter() - started) / 60, "rounds_done": r + 1}
        # the raw figures of every round so far: `--report-only` makes the table again from them
        (CACHE / f"core-{s.corpus_mb}mb-results.json").write_text(json.dumps({"results": results, "facts": facts}))
        yield results, facts


# ------------------------------------------------------------------------------------------------------- table


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def rate(runs: list[dict]) -> float:
    """Median tokens/s over rounds."""
    return statistics.median(run["tokens"] / run["seconds"] for run in runs)


def extra_mb(runs: list[dict]) -> float:
    """Median resident memory a construction case added on top of its imports and mapped ids."""
    return statistics.median((run["rss_mb"] - run["base_rss_mb"]) * 2**20 / MB for run in runs)


def built_served(runs: list[dict]) -> str:
    built = statistics.median((run["built_rss_mb"] - run["base_rss_mb"]) * 2**20 / MB for run in runs)
    return f"+{built:,.1f} MB built, +{extra_mb(runs):,.0f} MB serving"


def small_memory(runs: list[dict], ids_mb: float) -> bool:
    """Memory of the order of the ids: (almost) nothing to build; once serving, the ids' pages plus 8 MB (one batch,
    allocator slack). A copy of the ids as int64, or anything per window, fails this."""
    built = statistics.median((run["built_rss_mb"] - run["base_rss_mb"]) * 2**20 / MB for run in runs)
    return built <= 1 and extra_mb(runs) <= ids_mb + 8


def mtok(x: float) -> str:
    return f"{x / 1e6:,.2f} M tokens/s"


def secs(x: float) -> str:
    return f"{x * 1e3:,.2f} ms" if x < 1 else f"{x:,.1f} s" if x < 1000 else f"{x:,.0f} s"


def mem(x_mb: float) -> str:
    return f"{x_mb / 1000:,.1f} GB" if x_mb >= 10_000 else f"{x_mb:,.0f} MB"


def verdict(ok: bool, target: str) -> str:
    return f"{target}: {'met' if ok else '**not met**'}"


def table(results: dict, facts: dict, s: Settings) -> tuple[str, list[str]]:
    """The Markdown table and, for each figure, a note on how it was measured."""
    rows, notes = [], []
    tok, t1 = f"{s.tokens / 1e6:g}M", s.seed_stride1_tokens
    ids_mb = s.tokens * 2 / MB  # GPT-2 ids are stored as uint16

    p = results["prepare"]
    base, base_peak = rate(p["tiktoken"]), median(p["tiktoken"], "peak_bytes") / MB
    targets = {"tiktoken": 1.7, "fastokens": 6.0}  # the store issue's, and the fast-backend issue's
    corpus = f"{facts['corpus_bytes'] / MB:,.0f} MB corpus"
    for backend in (b for b in targets if backend_key(b) in p):
        ours = rate(p[backend_key(backend)])
        rows.append((f"prepare, tokens/s, {s.workers} workers, {corpus}, `--backend {backend}`", mtok(ours),
                     f"tiktoken `encode_ordinary`, 1 thread: {mtok(base)}", f"{ours / base:.3f}x",
                     verdict(ours / base >= targets[backend], f">= {targets[backend]:g}x")))
    if "limit" in p and backend_key("fastokens") in p:
        ours, limit = rate(p[backend_key("fastokens")]), rate(p["limit"])
        rows.append((f"prepare against its limit: the fast backend's own batch encoding of the same documents on "
                     f"{s.workers} processes, nothing around it", mtok(ours), f"fastokens `encode_batch_flat`, ~1 MB "
                     f"a call, {s.workers} forked processes: {mtok(limit)}", f"{ours / limit:.2f}x",
                     verdict(ours / limit >= 0.8, ">= 0.8x (#20)")))
        notes.append("prepare's limit: what is left between the two is reading and parsing the JSON Lines, "
                     "moving texts to the workers and ids back, writing and fsync, and start-up (about a second: "
                     "interpreter, tiktoken's build, fastokens' load and self-check).")
    cores = int(machine_info.get("cores", "2"))
    for backend in (b for b in targets if backend_key(b) in p):
        runs = p[backend_key(backend)]
        cpu, wall = median(runs, "cpu_seconds"), median(runs, "seconds")
        floor = facts["store_tokens"] / (cpu / min(cores, s.workers)) / base
        notes.append(f"what bounds prepare `--backend {backend}`: CPU. It used {cpu:.1f} s of CPU in all its "
                     f"processes for {wall:.1f} s of wall time; spread perfectly over {min(cores, s.workers)} cores "
                     f"that is at best {floor:.2f}x the baseline, whose encode calls alone took "
                     f"{median(p['tiktoken'], 'seconds'):.1f} s.")
    for backend in (b for b in targets if backend_key(b) in p):
        peak = median(p[backend_key(backend)], "peak_bytes") / MB
        rows.append((f"prepare peak memory, `--backend {backend}` (process tree: main + workers)", mem(peak),
                     f"the tiktoken baseline's process: {mem(base_peak)}", f"{peak / base_peak:.2f}x",
                     verdict(peak < 1000, "< 1 GB")))
    notes.append(f"prepare: {facts['store_tokens']:,} tokens; lmfeed's time is the whole `lmfeed prepare` command "
                 "(start-up, reading, JSON parsing, encoding, writing, fsync); the baseline's is only its "
                 "`encode_ordinary` calls, one corpus file's texts in memory at a time, ids counted, not kept. "
                 "Peak memory of prepare is the largest sum of resident sets over its processes (sampled every "
                 "20 ms), which counts the pages the forked workers share with the main process once per process: "
                 "an upper bound.")
    if facts["corpus_bytes"] < 100 * MB:
        notes.append("a small corpus: prepare's fixed start-up (interpreter, tiktoken build, fastokens load and "
                     "self-check; about a second) weighs on its rate here; its targets are for >= 200 MB.")

    small, big = s.run_chars, 8 * s.run_chars
    growth: dict[str, dict[str, float | None]] = {"lmfeed": {}, "tiktoken": {}}
    for who in growth:
        for name in RUN_CHARS:
            a = [run[f"{who} {name} {small}"] for run in results["runs"]["both"]]
            b = [run[f"{who} {name} {big}"] for run in results["runs"]["both"]]
            growth[who][name] = None if None in a + b else statistics.median(b) / statistics.median(a)
    worst = max(growth["lmfeed"].values())
    peer = [g for g in growth["tiktoken"].values() if g is not None]
    rows.append((f"prepare on a run of one character, {big:,} vs {small:,} characters: time grows by (worst of "
                 f"{', '.join(map(repr, RUN_CHARS.values()))})", f"{worst:.1f}x for 8x the text",
                 f"tiktoken `encode_ordinary`: {max(peer):.1f}x" if peer else "tiktoken `encode_ordinary`: failed",
                 "-", verdict(worst <= 16, "near-linear: <= 16x for 8x (quadratic: 64x)")))
    notes.append("runs: " + "; ".join(
        f"{name!r} lmfeed {growth['lmfeed'][name]:.1f}x, tiktoken "
        + (f"{growth['tiktoken'][name]:.1f}x" if growth["tiktoken"][name] is not None else "failed")
        for name in RUN_CHARS) + ". What bounds it: a run of one character is one pre-token piece, encoded in "
        "one call by one worker, and BPE merges inside a piece grow a little faster than its length, as the "
        f"peer's figures show. lmfeed's figure is the whole `prepare` call (2 workers, default backend), "
        f"{max(run[f'lmfeed {n} {big}'] for run in results['runs']['both'] for n in RUN_CHARS):.2f} s at most for "
        f"{big:,} characters.")

    rec = results["records"]
    plain, ours = median(rec["plain"], "seconds"), median(rec["lmfeed"], "seconds")
    rows.append((f"prepare, {s.records:,} JSON Lines records of ~5 tokens, {s.workers} workers (whole command)",
                 secs(ours), f"a plain `json.loads` + `encode_ordinary` loop, 1 thread: {secs(plain)}",
                 f"{plain / ours:.2f}x", verdict(plain / ours >= 1.5, ">= 1.5x (#15 item 19)")))
    notes.append("records: lmfeed's time is the whole `lmfeed prepare` command, start-up included; the loop's is the "
                 "loop only (file read line by line, `json.loads`, `encode_ordinary`, ids counted). Short records "
                 "travel ~1 MB of lines at a time to the workers, which parse a block as one JSON array.")
    ns = results["nospace"]
    small_mb, big_mb = s.nospace_mb, 4 * s.nospace_mb
    peak_small, peak_big = (median(ns[str(mb)], "peak_bytes") / MB for mb in (small_mb, big_mb))
    rows.append((f"prepare, one document of {big_mb} MB with no space or newline (minified code), peak memory",
                 f"{mem(peak_big)} ({secs(median(ns[str(big_mb)], 'seconds'))})",
                 f"the same at {small_mb} MB: {mem(peak_small)} ({secs(median(ns[str(small_mb)], 'seconds'))})",
                 f"{peak_big / peak_small:.2f}x for 4x the text",
                 verdict(peak_big / peak_small <= 1.5, "bounded: <= 1.5x (#15 item 21)")))
    notes.append("no space or newline: such a document is cut exactly between ASCII letters, digits and other "
                 "characters (never after an apostrophe), so pieces stay ~1 MB; a run of one class (\"aaaa...\") "
                 "has no exact cut: it is encoded whole, with a warning, as the runs row measures.")

    c, c1 = results["construct"], results["construct1"]
    ours, seed = median(c["lmfeed"], "seconds"), median(c["seed"], "seconds")
    seed_mb = extra_mb(c["seed"])
    rows.append((f"dataset construction at {tok} tokens, max_length 256, stride 128",
                 f"{secs(ours)}, {built_served(c['lmfeed'])}",
                 f"the seed's `GPTDatasetV1`: {secs(seed)}, +{mem(seed_mb)}",
                 f"{seed / ours:,.0f}x faster",
                 verdict(seed / ours >= 1000 and small_memory(c["lmfeed"], ids_mb), ">= 1000x, memory ~ the ids")))
    ours1 = median(c1["lmfeed"], "seconds")
    seed1, seed1_mb = median(c1["seed"], "seconds"), extra_mb(c1["seed"])
    scale = s.tokens / t1
    rows.append((f"dataset construction at {tok} tokens, max_length 1024, stride 1",
                 f"{secs(ours1)}, {built_served(c1['lmfeed'])}",
                 f"`GPTDatasetV1` measured at {t1:,} tokens: {secs(seed1)}, +{mem(seed1_mb)}; "
                 f"extrapolated to {tok}: {secs(seed1 * scale)}, +{mem(seed1_mb * scale)}",
                 f"{seed1 * scale / ours1:,.0f}x (extrapolated)",
                 verdict(small_memory(c1["lmfeed"], ids_mb), "served within the same memory")))
    notes.append("construction: the seed gets the ids ready-made (a stand-in tokenizer returns them), so only its "
                 "windowing is timed; lmfeed's dataset is built over the store's memory map. \"+MB\" is the peak "
                 "resident memory added on top of imports and ids: for lmfeed once built, and once every 1,000th "
                 f"window has been served (the ids' pages mapped in; the {tok} ids are {mem(ids_mb)} as uint16). "
                 "Memory target: at most 1 MB to build, and at most the ids' size + 8 MB while serving. "
                 f"The seed's stride-1 dataset is measured at {t1:,} tokens only (it holds two int64 tensors of "
                 f"1,024 per token); its {tok} figures are a linear extrapolation, not a measurement.")

    e = results["epoch"]
    ours, seed = rate(e["lmfeed"]), rate(e["seed"])
    rows.append(("epoch tokens/s, batch 8, max_length 256, stride 128, shuffled", mtok(ours),
                 f"the seed's `create_dataloader_v1`: {mtok(seed)}", f"{ours / seed:.2f}x",
                 verdict(ours / seed >= 2, ">= 2x")))
    notes.append(f"epoch: tokens/s counts the input tokens served (at stride 128 each token is in two windows); "
                 f"one epoch over {tok} tokens, `lmfeed.create_dataloader` on the store's ids vs the seed's "
                 "`create_dataloader_v1` on the same tokens as text (its construction and tokenization not timed).")

    r = results["random"]
    ours, nano, bare = rate(r["lmfeed"]), rate(r["nanogpt"]), rate(r["bare"])
    rows.append(("random-offset tokens/s, batch 64, max_length 1024", mtok(ours),
                 f"nanoGPT-style `get_batch`, memmap kept open: {mtok(nano)}", f"{ours / nano:.2f}x",
                 verdict(ours / nano >= 2, ">= 2x")))
    rows.append(("random-offset tokens/s, the same, against the limit", mtok(ours),
                 f"bare zero-copy gather (`sliding_window_view` indexed, no loader): {mtok(bare)}",
                 f"{ours / bare:.2f}x", verdict(bare / ours <= 4, "within 4x (>= 0.25x)")))
    notes.append(f"random offsets: {s.random_batches} batches over all {facts['store_tokens']:,} ids of the store; "
                 "lmfeed through `create_dataloader(..., sampling=\"random\")`.")

    m = results["embed"]
    ours, peer = rate(m["lmfeed"]), rate(m["torch"])
    rows.append(("`InputEmbedding` forward + backward, (8, 1024) ids, D=768, float32", mtok(ours),
                 f"`nn.Embedding` pair summed by hand: {mtok(peer)}", f"{ours / peer:.2f}x", "no target (same work)"))
    notes.append(f"embeddings: {s.embed_steps} steps after 2 warm-up steps, torch on 1 thread, tokens = 8 x 1024 per "
                 "step; both contenders compute the same thing (token lookup + learned positions).")

    head = ["what", "lmfeed", "peer", "ratio", "target"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines), notes


def report(results: dict | None, facts: dict, s: Settings, command: str, peer_results: dict | None) -> str:
    m = machine_info
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# lmfeed against its peers",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory']} memory, Python {m['python']}; load average at "
        f"start {m['load']}, at the end {', '.join(f'{x:.2f}' for x in os.getloadavg())}. lmfeed {git_commit()}, "
        f"{when}. Medians of {facts.get('rounds_done', s.rounds)} round(s) (the peers: "
        f"{len(peer_results['limit']) if peer_results else 0}), contenders alternating; the run took "
        f"{facts['minutes']:.1f} min."
        + (" This report was written with `--report-only` from the figures of the rounds that finished before the "
           "run was stopped." if facts.get("report_only") else ""),
        "",
        f"Reproduce: `{command}`",
        "",
    ]
    if peer_results is not None:
        body, notes, targets = peers.peer_table(peer_results, s.peer_mb)
        out += ["## Against litdata, datatrove, Hugging Face datasets and Mosaic streaming", "", body, "",
                "| target | lmfeed | verdict |", "| --- | --- | --- |",
                *[f"| {what} | {figure} | {verdict} |" for what, figure, verdict in targets], "",
                *[f"- {note}" for note in notes], ""]
    if results is not None:
        body, notes = table(results, facts, s)
        out += ["## Against tiktoken, the seed's loader, nanoGPT's get_batch", "", body, "",
                *[f"- {note}" for note in notes], ""]
    return "\n".join(out)


machine_info: dict[str, str] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus-mb", type=int, default=None, help="corpus size in MB (default 200; 10 with --quick)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per comparison (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a small version: 10 MB, 1M tokens, 1 round")
    parser.add_argument("--output", type=Path, default=None,
                        help="where to write the table (default benchmarks/results.md; with --quick "
                             "benchmarks/.cache/results-quick.md, so a quick run never replaces the committed one)")
    parser.add_argument("--no-peers", action="store_true", help="skip litdata, datatrove, HF datasets and Mosaic")
    parser.add_argument("--peers-only", action="store_true", help="only the peer table")
    parser.add_argument("--report-only", action="store_true",
                        help="write the tables again from the raw figures the last run kept (its finished rounds)")
    parser.add_argument("--tiktoken-baseline", metavar="CORPUS", help=argparse.SUPPRESS)  # the baseline's process
    parser.add_argument("--runs-case", metavar="SIZES", help=argparse.SUPPRESS)  # the runs' process
    parser.add_argument("--records-baseline", metavar="CORPUS", help=argparse.SUPPRESS)  # the records' baseline
    args = parser.parse_args()
    if args.tiktoken_baseline:
        print(json.dumps(tiktoken_baseline_case(Path(args.tiktoken_baseline))))
        return
    if args.runs_case:
        print(json.dumps(runs_case(args.runs_case)))
        return
    if args.records_baseline:
        print(json.dumps(records_baseline_case(Path(args.records_baseline))))
        return
    sizes = QUICK if args.quick else FULL
    s = Settings(corpus_mb=(10 if args.quick else 200) if args.corpus_mb is None else args.corpus_mb,
                 rounds=(1 if args.quick else 3) if args.rounds is None else args.rounds, **sizes)
    if s.corpus_mb < 1 or s.rounds < 1:
        parser.error("--corpus-mb and --rounds must be at least 1")
    machine_info.update(machine())
    log(f"machine: {machine_info['cores']} cores, {machine_info['memory']}, {machine_info['cpu']}, "
        f"load {machine_info['load']}")
    started = time.perf_counter()
    peer_results = None
    if args.report_only:
        kept = CACHE / f"peers-{s.peer_mb}mb" / "results.json"
        peer_results = None if args.no_peers or not kept.exists() else json.loads(kept.read_text())
        core = CACHE / f"core-{s.corpus_mb}mb-results.json"
        results, facts = (None, {}) if args.peers_only or not core.exists() else json.loads(core.read_text()).values()
        facts = dict(facts)
        facts.setdefault("minutes", 0.0)
        facts["report_only"] = True
    else:  # round by round, the peers' then the core's, so that a run cut short still has both
        rounds_of_peers = None
        if not args.no_peers:
            peers.install()
            corpus = bench_prepare.build_corpus(s.peer_mb, "jsonl")
            rounds_of_peers = peers.peer_rounds(corpus, CACHE / f"peers-{s.peer_mb}mb", s.rounds, s.peer_batches)
        rounds_of_core = None if args.peers_only else core_rounds(s)
        results, facts = None, {}
        for _ in range(s.rounds):
            if rounds_of_peers is not None:
                peer_results = next(rounds_of_peers)
            if rounds_of_core is not None:
                results, facts = next(rounds_of_core)
        facts = dict(facts)
        facts["minutes"] = (time.perf_counter() - started) / 60
    command = "make bench" + (" QUICK=1" if args.quick else "")
    if args.corpus_mb or args.rounds or args.no_peers or args.peers_only:
        command = "python benchmarks/run.py " + " ".join(sys.argv[1:])
    text = report(results, facts, s, command, peer_results)
    print(text)
    output = args.output or (CACHE / "results-quick.md" if args.quick else RESULTS)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(output)
    log(f"wrote {output}")


if __name__ == "__main__":
    main()
