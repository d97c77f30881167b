"""Real corpora and real tokenizers: Parquet and .jsonl.zst against plain JSON Lines, flat memory, tokenizer.json.

    python benchmarks/bench_corpora.py                  # 100 MB corpus, 3 rounds
    python benchmarks/bench_corpora.py --quick          # 4 MB, 1 round (a smoke run)

What runs (each prepare in a fresh process, ``lmfeed prepare --workers 2``, contenders alternating in each round,
medians over ``--rounds``):

- containers: the same documents (``bench_prepare.build_corpus``, JSON Lines of the standard library's text) as
  plain ``.jsonl``, as ``.jsonl.zst`` and as Parquet (row groups of 1,000 rows); tokens/s of each, as a ratio to
  plain JSON Lines (target: at least 0.9x). The three stores' ``tokens.npy`` must be byte-identical.
- memory: one Parquet file and one 4x larger (the same rows four times); peak RSS of prepare's process tree
  (target: the 4x file adds under 10%).
- tokenizer.json: the fast path (``prepare --workers 2 --tokenizer tokenizer.json``, fastokens behind its
  self-check) against ``tokenizers``' own ``encode_batch`` on the same documents with 2 threads (batches of 1,000
  documents, timed around the calls), for a BPE of up to 32,000 ids trained here on the corpus and for GPT-2's
  tokenizer.json; ids
  checked identical document by document (target: at least 3x).

Prints a Markdown table to stdout; progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_prepare  # noqa: E402  (corpus builder and run_prepare beside this file)

CACHE = bench_prepare.CACHE


def log(message: str) -> None:
    print(f"[bench_corpora] {message}", file=sys.stderr, flush=True)


def containers(corpus_mb: int) -> dict[str, Path]:
    """The corpus as plain JSON Lines, .jsonl.zst and Parquet, each in its own directory of part-* files."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    plain = bench_prepare.build_corpus(corpus_mb, "jsonl")
    out = {"jsonl": plain, "zst": CACHE / f"corpus-{corpus_mb}mb-zst",
           "parquet": CACHE / f"corpus-{corpus_mb}mb-parquet"}
    if not (out["zst"] / "DONE").exists() or not (out["parquet"] / "DONE").exists():
        for d in (out["zst"], out["parquet"]):
            d.mkdir(parents=True, exist_ok=True)
        for part in sorted(plain.glob("part-*.jsonl")):
            data = part.read_bytes()
            (out["zst"] / f"{part.stem}.jsonl.zst").write_bytes(zstandard.ZstdCompressor(level=3).compress(data))
            texts = [json.loads(line)["text"] for line in data.splitlines() if line.strip()]
            pq.write_table(pa.table({"text": texts}), out["parquet"] / f"{part.stem}.parquet", row_group_size=1000)
        for d in (out["zst"], out["parquet"]):
            (d / "DONE").write_text("done")
    return out


def one_parquet(corpus_mb: int, times: int) -> Path:
    """All of the corpus in one Parquet file, repeated ``times`` times (row groups of 1,000 rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = CACHE / f"one-parquet-{corpus_mb}mb-x{times}"
    if (d / "DONE").exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    texts = bench_prepare.corpus_documents(bench_prepare.build_corpus(corpus_mb, "jsonl"), "jsonl")
    with pq.ParquetWriter(d / "part-0.parquet", pa.schema([("text", pa.string())])) as w:
        for _ in range(times):
            for i in range(0, len(texts), 1000):
                w.write_table(pa.table({"text": texts[i : i + 1000]}))
    (d / "DONE").write_text("done")
    return d


def prepare_run(corpus: Path, store: Path, tokenizer: str = "gpt2") -> dict:
    seconds, peak, _ = run_prepare(corpus, store, tokenizer)
    from lmfeed.store.format import TokenStore

    s = TokenStore.open(store, tokenizer=tokenizer if tokenizer != "gpt2" else None)
    return {"seconds": seconds, "tokens": len(s), "tok_s": len(s) / seconds, "peak": peak}


def run_prepare(corpus: Path, store: Path, tokenizer: str) -> tuple[float, int, int]:
    """bench_prepare.run_prepare with a tokenizer (its command line plus --tokenizer)."""
    return bench_prepare.run_prepare(corpus, store, 2, extra=() if tokenizer == "gpt2" else ("--tokenizer", tokenizer))


def tokenizers_encode_batch(path: str, docs: list[str]) -> tuple[float, list[list[int]]]:
    """tokenizers' own encode_batch, 2 threads, ordinary text (special tokens as text), timed around the calls."""
    code = (
        "import json, sys, time, os\n"
        "os.environ['TOKENIZERS_PARALLELISM'] = 'true'; os.environ['RAYON_NUM_THREADS'] = '2'\n"
        "from tokenizers import Tokenizer\n"
        f"tok = Tokenizer.from_file({path!r}); tok.encode_special_tokens = True\n"
        "docs = json.load(open(sys.argv[1]))\n"
        "tok.encode_batch(docs[:10], add_special_tokens=False)\n"
        "t = time.perf_counter(); out = []\n"
        "for i in range(0, len(docs), 1000):\n"
        "    out += [e.ids for e in tok.encode_batch(docs[i:i+1000], add_special_tokens=False)]\n"
        "s = time.perf_counter() - t\n"
        "json.dump({'seconds': s, 'ids': out}, open(sys.argv[2], 'w'))\n"
    )
    src, dst = CACHE / "docs.json", CACHE / "ids.json"
    src.write_text(json.dumps(docs))
    subprocess.run([sys.executable, "-c", code, str(src), str(dst)], check=True)
    result = json.loads(dst.read_text())
    return result["seconds"], result["ids"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus-mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="4 MB, 1 round")
    args = parser.parse_args()
    mb, rounds = (4, 1) if args.quick else (args.corpus_mb, args.rounds)
    if mb < 1 or rounds < 1:
        raise SystemExit("--corpus-mb and --rounds must be at least 1.")
    CACHE.mkdir(parents=True, exist_ok=True)
    rows: list[str] = []

    # ---- containers ------------------------------------------------------------------------------------------
    dirs = containers(mb)
    runs: dict[str, list[dict]] = {k: [] for k in dirs}
    for r in range(rounds):
        for kind, d in dirs.items():
            log(f"round {r + 1}: prepare {kind}")
            runs[kind].append(prepare_run(d, CACHE / f"store-{kind}"))
    same = len({(CACHE / f"store-{k}" / "tokens.npy").read_bytes() for k in dirs}) == 1
    base = statistics.median(x["tok_s"] for x in runs["jsonl"])
    for kind in dirs:
        v = statistics.median(x["tok_s"] for x in runs[kind])
        target = "" if kind == "jsonl" else f" (target 0.9x: {'met' if v / base >= 0.9 else 'NOT met'})"
        rows.append(f"| prepare {mb} MB as {kind}, 2 workers | {v / 1e6:.2f} M tokens/s | plain JSON Lines: "
                    f"{base / 1e6:.2f} M tokens/s | {v / base:.2f}x{target} |")
    rows.append(f"| the three stores' tokens.npy | {'byte-identical' if same else 'DIFFERENT'} | | |")

    # ---- memory ----------------------------------------------------------------------------------------------
    small, large = one_parquet(mb, 1), one_parquet(mb, 4)
    peaks: dict[str, list[int]] = {"1x": [], "4x": []}
    for r in range(rounds):
        for name, d in (("1x", small), ("4x", large)):
            log(f"round {r + 1}: peak memory, Parquet {name}")
            peaks[name].append(prepare_run(d, CACHE / f"store-mem-{name}")["peak"])
    p1, p4 = statistics.median(peaks["1x"]), statistics.median(peaks["4x"])
    rows.append(f"| prepare peak RSS, one Parquet file 4x larger | {p4 / 1e6:.0f} MB | the 1x file: {p1 / 1e6:.0f} MB "
                f"| +{(p4 / p1 - 1) * 100:.1f}% (target < 10%: {'met' if p4 / p1 < 1.10 else 'NOT met'}) |")

    # ---- tokenizer.json fast path ---------------------------------------------------------------------------
    from lmfeed.store.format import TokenStore
    from lmfeed.text.backends import gpt2_tokenizer_json
    from lmfeed.text.train_bpe import train_tokenizer

    docs = bench_prepare.corpus_documents(dirs["jsonl"], "jsonl")
    trained = CACHE / "trained-32000.json"
    if not trained.exists():
        log("training a 32,000-id BPE")
        train_tokenizer(docs, vocab_size=32000, out=trained, force=True)
    gpt2_path, gpt2_text = gpt2_tokenizer_json()
    if gpt2_path is None:
        gpt2_path = CACHE / "gpt2-tokenizer.json"
        gpt2_path.write_text(gpt2_text, encoding="utf-8")
    from lmfeed.text.tokenizer import get_tokenizer

    trained_label = f"a BPE of {get_tokenizer(str(trained)).n_vocab:,} ids trained here"
    for label, path in ((trained_label, str(trained)), ("GPT-2's tokenizer.json", str(gpt2_path))):
        ours, theirs, identical = [], [], True
        for r in range(rounds):
            log(f"round {r + 1}: {label}: lmfeed prepare")
            ours.append(prepare_run(dirs["jsonl"], CACHE / "store-tok", tokenizer=path))
            log(f"round {r + 1}: {label}: tokenizers encode_batch")
            seconds, ids = tokenizers_encode_batch(path, docs)
            theirs.append(sum(map(len, ids)) / seconds)
            store = TokenStore.open(CACHE / "store-tok", tokenizer=path)
            identical = identical and all(store.document(i).tolist() == ids[i] for i in range(len(ids)))
        a, b = statistics.median(x["tok_s"] for x in ours), statistics.median(theirs)
        rows.append(f"| tokenizer.json fast path: {label}, prepare --workers 2 | {a / 1e6:.2f} M tokens/s | "
                    f"tokenizers encode_batch, 2 threads: {b / 1e6:.2f} M tokens/s | {a / b:.2f}x (target 3x: "
                    f"{'met' if a / b >= 3 else 'NOT met'}); ids {'identical' if identical else 'DIFFER'} |")

    print(f"\nlmfeed corpora benchmark: {mb} MB, {rounds} round(s), {os.cpu_count()} CPUs\n")
    print("| what | lmfeed | peer | ratio |\n| --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
