"""lmfeed against the pipelines users pick instead: litdata, datatrove, Hugging Face ``datasets``, Mosaic ``streaming``.

    python benchmarks/peers.py --install            # the peers' environments (``make bench`` runs this)
    python benchmarks/peers.py CASE PEER ...        # one case in this process; prints one JSON line (run.py calls it)

**Environments.** Every peer runs with this interpreter (so ``torch==2.13.0`` CPU and the project's numpy stay the
ones under test) and its own ``pip install --target`` folder first on ``PYTHONPATH``: ``benchmarks/.peers/NAME``
(git-ignored), installed ``--no-deps`` from the pins in ``PEERS`` plus the dependencies its code paths import. The
project's own environment is never changed. Mosaic pins ``numpy<2.2`` (its folder holds numpy 2.1.3, which the CPU
torch accepts) and imports ``torchvision`` at import time for its image datasets; the registry's torchvision is a
CUDA build that does not load against the CPU torch, so ``benchmarks/stubs/torchvision`` stands in (anything in it
that is called raises: no image is ever read). Mosaic's cloud back-ends (boto3, Google, Azure, OCI, paramiko) and
its ``transformers<5`` pin are left out: only local MDS shards are read. litdata's ``torchvision`` is optional in
its code and is not installed. Hugging Face ``datasets`` and ``transformers`` are the project's own
(``datasets`` 5.2.0, ``transformers`` 5.24.0).

**The same ids.** Every peer tokenizes with GPT-2 through the ``tokenizer.json`` lmfeed's fast backend generates
from the hash-checked vocabulary (``gpt2_tokenizer_json``), with ``<|endoftext|>`` (50256) added as a special token
for the peers that append it through the tokenizer (datatrove's ``eos_token``); each appends end-of-text after every
document, as lmfeed separates them. Tokenizers run on one thread per worker (``RAYON_NUM_THREADS=1``), so
"2 workers" is 2 cores for everyone. Before any figure of a peer is kept, its output is compared with lmfeed's
store (``check``): the stream itself where the peer keeps it (litdata's chunks, datatrove's documents, which it
shuffles, compared document for document), or for the formats cut into fixed blocks of 1,025 ids (Mosaic's
samples, ``group_texts``'s blocks) every block is checked to be the next slice of lmfeed's stream, and the ids
dropped between blocks are counted. A peer whose ids differ is reported and not timed.

**Cases** (each a fresh process; the clock starts after imports):

- ``tokenize``: the JSON Lines corpus into the peer's training format with 2 workers. run.py times the whole
  process from outside (start-up included) and samples the resident memory of its process tree.
- ``serve``: shuffled batches of 8 x 1024 (input, target), ``num_workers`` 0 or 2; the time from opening the
  data to the first batch, then tokens/s over the following batches.
- ``resume``: 10 batches, ``state_dict()``, a new loader with ``load_state_dict``; is its next batch the 11th of
  the uninterrupted run? Only where the tool offers loader state (lmfeed, litdata, Mosaic). run.py has the first
  round's ``serve`` process check it after its clocked part (``--resume``), so no process starts for it alone.
- ``limit``: the fast backend's own batch encoding of the same documents on 2 processes, nothing around it.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
PEERS_DIR = BENCH / ".peers"
STUBS = BENCH / "stubs"
EOT = 50256
MAX_LENGTH, BATCH_SIZE = 1024, 8
BLOCK = MAX_LENGTH + 1  # one (input, target) window of 1,024: 1,025 ids

# name -> (what pip installs into benchmarks/.peers/NAME with --no-deps, extra folders for PYTHONPATH)
PEERS: dict[str, tuple[list[str], list[Path]]] = {
    "litdata": (["litdata==0.2.76", "lightning-utilities==0.15.3", "obstore==0.12.1", "tifffile==2026.3.3"], []),
    "datatrove": (["datatrove==0.10.1", "loguru==0.7.3", "humanize==4.17.0", "orjson==3.13.0"], []),
    "mosaic": (["mosaicml-streaming==0.13.0", "numpy==2.1.3", "xxhash==3.8.2", "zstd==1.5.7.2", "Brotli==1.2.1",
                "python-snappy==0.7.3", "cramjam==2.14.0", "catalogue==2.0.10"], [STUBS]),
    "hf": ([], []),  # datasets and transformers come with the project's environment
    "lmfeed": ([], []),
}
CONTENDERS = ["lmfeed", "litdata", "datatrove", "hf", "mosaic"]
LABELS = {"lmfeed": "lmfeed", "litdata": "litdata", "datatrove": "datatrove", "hf": "HF datasets",
          "mosaic": "Mosaic streaming"}
RESUMABLE = ("lmfeed", "litdata", "mosaic")


def _stamp(name: str) -> Path:
    return PEERS_DIR / name / ".installed"


def install(names: list[str] | None = None) -> None:
    """Install each peer's pinned packages into its own folder (once; a changed pin list installs again)."""
    for name, (packages, _) in PEERS.items():
        if not packages or (names and name not in names):
            continue
        want = "\n".join(packages)
        stamp = _stamp(name)
        if stamp.exists() and stamp.read_text() == want:
            continue
        target = PEERS_DIR / name
        shutil.rmtree(target, ignore_errors=True)
        print(f"installing {name}: {' '.join(packages)} -> {target}", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                        "--target", str(target), *packages], check=True)
        stamp.write_text(want)


def env_for(name: str) -> dict[str, str]:
    """The environment a peer's case runs in: its folder (and stubs) before the project's packages."""
    _, extra = PEERS[name]
    paths = ([str(PEERS_DIR / name)] if PEERS[name][0] else []) + [str(p) for p in extra] + [str(BENCH)]
    env = dict(os.environ, RAYON_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1",
               HF_DATASETS_DISABLE_PROGRESS_BARS="1", HF_HUB_OFFLINE="1", TQDM_DISABLE="1")
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


# ----------------------------------------------------------------------------------------------- shared pieces


def corpus_files(corpus: Path) -> list[str]:
    return sorted(str(p) for p in corpus.glob("part-*.jsonl"))


def tokenizer_json(work: Path) -> str:
    """lmfeed's GPT-2 tokenizer.json with <|endoftext|> = 50256 added as a special token (for datatrove's eos)."""
    from lmfeed.text.backends import gpt2_tokenizer_json

    path = work / "gpt2-with-eot.json"
    if not path.exists():
        doc = json.loads(gpt2_tokenizer_json()[1])
        doc["added_tokens"] = [{"id": EOT, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                                "rstrip": False, "normalized": False, "special": True}]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
    return str(path)


def _tokenizer(work: Path) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(tokenizer_json(work))


def _file_stream(path: str, tok: Any) -> np.ndarray:
    """One JSON Lines file's documents, each encoded and followed by end-of-text: (n,) uint16."""
    with open(path, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    ids: list[int] = []
    for enc in tok.encode_batch(texts, add_special_tokens=False):
        ids.extend(enc.ids)
        ids.append(EOT)
    return np.asarray(ids, dtype=np.uint16)


# ------------------------------------------------------------------------------------------------ tokenize


def tokenize(peer: str, corpus: Path, out: Path, work: Path) -> dict:
    """The corpus into ``peer``'s training format at ``out`` with 2 workers."""
    files = corpus_files(corpus)
    if peer == "litdata":
        from functools import partial

        from litdata import TokensLoader, optimize

        optimize(fn=partial(_litdata_fn, str(work)), inputs=files, output_dir=str(out), num_workers=2,
                 chunk_size=BLOCK * 2048, item_loader=TokensLoader(), verbose=False)
    elif peer == "datatrove":
        from datatrove.executor import LocalPipelineExecutor
        from datatrove.pipeline.readers import JsonlReader
        from datatrove.pipeline.tokens import DocumentTokenizer

        LocalPipelineExecutor(
            pipeline=[JsonlReader(str(corpus), glob_pattern="part-*.jsonl", text_key="text"),
                      DocumentTokenizer(str(out), tokenizer_name_or_path=tokenizer_json(work),
                                        eos_token="<|endoftext|>", local_working_dir=str(work / "datatrove-tmp"))],
            tasks=2, workers=2, logging_dir=str(work / "datatrove-logs")).run()
    elif peer == "hf":
        from itertools import chain

        from datasets import load_dataset
        from transformers import PreTrainedTokenizerFast

        tok = PreTrainedTokenizerFast(tokenizer_file=tokenizer_json(work))
        raw = load_dataset("json", data_files=files, split="train", cache_dir=str(work / "hf-cache"))

        def tokenize_function(examples: dict) -> dict:  # run_clm.py's, with end-of-text after each document
            output = tok(examples["text"])
            output["input_ids"] = [ids + [EOT] for ids in output["input_ids"]]
            output["attention_mask"] = [mask + [1] for mask in output["attention_mask"]]
            return output

        def group_texts(examples: dict) -> dict:  # run_clm.py's, blocks of 1,025: 1,024 inputs and their targets
            concatenated = {k: list(chain(*examples[k])) for k in examples}
            total = (len(concatenated["input_ids"]) // BLOCK) * BLOCK
            return {k: [t[i : i + BLOCK] for i in range(0, total, BLOCK)] for k, t in concatenated.items()}

        tokenized = raw.map(tokenize_function, batched=True, num_proc=2, remove_columns=["text"])
        tokenized.map(group_texts, batched=True, num_proc=2).save_to_disk(str(out), num_proc=2)
    elif peer == "mosaic":
        import multiprocessing

        from streaming import MDSWriter

        with multiprocessing.get_context("fork").Pool(2) as pool, \
                MDSWriter(out=str(out), columns={"tokens": f"ndarray:uint16:{BLOCK}"}, size_limit=1 << 26) as writer:
            carry = np.zeros(0, dtype=np.uint16)
            for ids in pool.imap(_mosaic_fn, [(f, str(work)) for f in files]):  # in file order: one stream
                carry = np.concatenate([carry, ids])
                n = len(carry) // BLOCK
                for block in carry[: n * BLOCK].reshape(n, BLOCK):
                    writer.write({"tokens": block})
                carry = carry[n * BLOCK :]  # llm-foundry's ConcatTokensDataset drops the last partial block too
    else:
        raise SystemExit(f"unknown peer {peer!r}")
    return {"peer": peer}


_TOK: dict[str, Any] = {}


def _cached_tokenizer(work: str) -> Any:
    if "tok" not in _TOK:
        _TOK["tok"] = _tokenizer(Path(work))
    return _TOK["tok"]


def _litdata_fn(work: str, path: str) -> Any:
    """litdata's tokenize function: one file in, one array of ids per document out (end-of-text appended)."""
    tok = _cached_tokenizer(work)
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                ids = tok.encode(json.loads(line)["text"], add_special_tokens=False).ids
                ids.append(EOT)
                yield np.asarray(ids, dtype=np.uint16)


def _mosaic_fn(args: tuple[str, str]) -> np.ndarray:
    return _file_stream(args[0], _cached_tokenizer(args[1]))


# --------------------------------------------------------------------------------------------------- check


def _lmfeed_stream(store: Path) -> np.ndarray:
    """lmfeed's stream with end-of-text after the last document too, as the peers write it: (n,) uint16."""
    from lmfeed.store.format import TokenStore

    tokens = np.asarray(TokenStore.open(store).tokens)
    return np.concatenate([tokens, np.array([EOT], dtype=tokens.dtype)]).astype(np.uint16)


def _documents(stream: np.ndarray) -> list[bytes]:
    ends = np.flatnonzero(stream == EOT)
    starts = np.concatenate([[0], ends[:-1] + 1])
    return [stream[a : b + 1].tobytes() for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def _compare_documents(theirs: np.ndarray, ours: np.ndarray) -> dict:
    if len(theirs) and theirs[-1] != EOT:
        return {"same": False, "detail": "the stream does not end with end-of-text"}
    if np.array_equal(theirs, ours):
        return {"same": True, "detail": "stream for stream"}
    a, b = _documents(theirs), _documents(ours)
    digest = [sorted(hashlib.sha1(d).digest() for d in x) for x in (a, b)]
    if digest[0] == digest[1]:
        return {"same": True, "detail": f"document for document ({len(a):,} documents, in another order)"}
    return {"same": False, "detail": f"{len(a):,} documents and {len(theirs):,} ids against lmfeed's {len(b):,} and "
                                     f"{len(ours):,}; first difference at id {_first_difference(theirs, ours):,}"}


def _first_difference(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if len(diff) else n


def _compare_blocks(blocks: np.ndarray, ours: np.ndarray) -> dict:
    """Blocks of 1,025 ids: each must be the next slice of lmfeed's stream (a gap where the tool drops a tail)."""
    position, dropped = 0, 0
    for k, block in enumerate(blocks):
        if not np.array_equal(ours[position : position + BLOCK], block):
            # group_texts drops each map batch's last partial block: find where this block starts, ahead only
            candidates = np.flatnonzero(ours[position : position + 64 * BLOCK] == block[0]) + position
            found = next((int(c) for c in candidates if np.array_equal(ours[c : c + BLOCK], block)), None)
            if found is None:
                return {"same": False, "detail": f"block {k:,} is no slice of lmfeed's stream after id {position:,}"}
            dropped, position = dropped + found - position, found
        position += BLOCK
    dropped += len(ours) - position
    return {"same": True, "detail": f"stream for stream in {len(blocks):,} blocks of {BLOCK:,}; the format drops "
                                    f"{dropped:,} ids ({dropped / max(len(ours), 1):.2%}: the partial blocks)"}


def check(peer: str, out: Path, store: Path) -> dict:
    """Whether ``peer``'s output at ``out`` holds lmfeed's ids (see the module notes)."""
    ours = _lmfeed_stream(store)
    if peer == "lmfeed":
        return {"same": True, "detail": "the reference"}
    if peer == "litdata":
        index = json.loads((out / "index.json").read_text())
        parts = []
        for chunk in index["chunks"]:
            header = (1 + chunk["chunk_size"] + 1) * 4  # num_items, offsets: litdata's chunk header
            parts.append(np.fromfile(out / chunk["filename"], dtype=np.uint16, offset=header))
        return _compare_documents(np.concatenate(parts), ours)
    if peer == "datatrove":
        files = sorted(glob.glob(str(out / "*.ds")))
        return _compare_documents(np.concatenate([np.fromfile(f, dtype=np.uint16) for f in files]), ours)
    if peer == "hf":
        from datasets import load_from_disk

        blocks = load_from_disk(str(out)).with_format("numpy")["input_ids"]
        return _compare_blocks(np.asarray(blocks, dtype=np.uint16), ours)
    if peer == "mosaic":
        from streaming import StreamingDataset

        ds = StreamingDataset(local=str(out), shuffle=False, batch_size=1)
        blocks = np.stack([ds[i]["tokens"] for i in range(ds.num_samples)]) if ds.num_samples else np.zeros((0, BLOCK))
        return _compare_blocks(blocks.astype(np.uint16), ours)
    raise SystemExit(f"unknown peer {peer!r}")


# --------------------------------------------------------------------------------------------------- serve


def open_loader(peer: str, out: Path, workers: int, seed: int = 0) -> Any:
    """A loader of shuffled (8, 1025) blocks or (inputs, targets) batches over ``peer``'s output."""
    import torch
    from torch.utils.data import DataLoader

    if peer == "lmfeed":
        from lmfeed import create_dataloader

        return create_dataloader(out, BATCH_SIZE, MAX_LENGTH, MAX_LENGTH, shuffle=True, seed=seed,
                                 num_workers=workers)
    if peer == "litdata":
        from litdata import StreamingDataLoader, StreamingDataset, TokensLoader

        ds = StreamingDataset(str(out), item_loader=TokensLoader(block_size=BLOCK), shuffle=True, seed=seed)
        return StreamingDataLoader(ds, batch_size=BATCH_SIZE, num_workers=workers, drop_last=True)
    if peer == "datatrove":
        from datatrove.utils.dataset import DatatroveFolderDataset

        ds = DatatroveFolderDataset(str(out), seq_len=MAX_LENGTH, filename_pattern="*.ds", shuffle=True, seed=seed)
        return DataLoader(ds, batch_size=BATCH_SIZE, shuffle=True, num_workers=workers, drop_last=True,
                          generator=torch.Generator().manual_seed(seed))
    if peer == "hf":
        from datasets import load_from_disk

        ds = load_from_disk(str(out)).with_format("torch", columns=["input_ids"])
        return DataLoader(ds, batch_size=BATCH_SIZE, shuffle=True, num_workers=workers, drop_last=True,
                          generator=torch.Generator().manual_seed(seed))
    if peer == "mosaic":
        from streaming import StreamingDataLoader, StreamingDataset
        from streaming.base.util import clean_stale_shared_memory

        clean_stale_shared_memory()
        ds = StreamingDataset(local=str(out), shuffle=True, shuffle_seed=seed, batch_size=BATCH_SIZE)
        return StreamingDataLoader(ds, batch_size=BATCH_SIZE, num_workers=workers, drop_last=True)
    raise SystemExit(f"unknown peer {peer!r}")


def as_pair(batch: Any) -> tuple[Any, Any]:
    """Any peer's batch as (inputs, targets), each (8, 1024) int64."""
    import torch

    if isinstance(batch, (list, tuple)) and len(batch) >= 2:
        return batch[0], batch[1]
    if isinstance(batch, dict):
        batch = batch.get("input_ids", batch.get("tokens"))
    blocks = torch.as_tensor(batch).to(torch.int64)
    return blocks[:, :-1], blocks[:, 1:]


def _imports(peer: str) -> None:
    """What ``open_loader`` imports for ``peer``, imported before the clock starts."""
    import torch.utils.data  # noqa: F401

    modules = {"lmfeed": ["lmfeed.loading.loader", "lmfeed.store.format"], "litdata": ["litdata"],
               "datatrove": ["datatrove.utils.dataset"], "hf": ["datasets"],
               "mosaic": ["streaming", "streaming.base.util"]}[peer]
    for name in modules:
        __import__(name)


def serve(peer: str, out: Path, workers: int, batches: int) -> dict:
    _imports(peer)
    start = time.perf_counter()
    loader = open_loader(peer, out, workers)
    it = iter(loader)
    inputs, targets = as_pair(next(it))
    first = time.perf_counter() - start
    assert inputs.shape == (BATCH_SIZE, MAX_LENGTH) and targets.shape == inputs.shape, inputs.shape
    tokens, t = 0, time.perf_counter()
    half_tokens, half_t = 0, t
    last = t
    for k in range(batches):
        try:
            inputs, _ = as_pair(next(it))
        except StopIteration:  # the epoch ended first: DataLoader shuts its workers down inside this next()
            break
        last = time.perf_counter()
        tokens += inputs.numel()
        if k + 1 == batches // 2:  # the second half: after every worker is up and the pipeline is full
            half_tokens, half_t = tokens, last
    end = time.perf_counter()
    del it
    # steady: the second half up to the last batch (serving only); all: up to the end, worker shut-down included
    return {"first_s": first, "tokens": tokens, "seconds": end - t, "steady_tokens": tokens - half_tokens,
            "steady_seconds": last - half_t, "shutdown_s": end - last}


def resume(peer: str, out: Path, workers: int) -> dict:
    """10 batches, save, resume in a new loader: is the next batch the uninterrupted run's 11th?"""
    if peer not in RESUMABLE:
        return {"equal": None, "detail": "no loader state to save (a plain torch DataLoader)"}
    import torch

    straight = iter(open_loader(peer, out, workers, seed=3))
    want = [as_pair(next(straight)) for _ in range(11)][10]
    loader = open_loader(peer, out, workers, seed=3)
    it = iter(loader)
    for _ in range(10):
        next(it)
    state = loader.state_dict()
    del it
    again = open_loader(peer, out, workers, seed=3)
    again.load_state_dict(state)
    got = as_pair(next(iter(again)))
    equal = bool(torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]))
    return {"equal": equal, "detail": "the 11th batch" if equal else "another batch than the 11th"}


# --------------------------------------------------------------------------------------------------- limit


def limit(corpus: Path) -> dict:
    """The fast backend's batch encoding of the corpus's documents on 2 processes, ~1 MB a call, nothing else."""
    from lmfeed.text.backends import batch_encoder
    from lmfeed.text.tokenizer import get_tokenizer

    encode = batch_encoder("fastokens", get_tokenizer("gpt2"))
    texts = []
    for path in corpus_files(corpus):
        with open(path, encoding="utf-8") as f:
            texts.extend(json.loads(line)["text"] for line in f if line.strip())
    batches, batch, size = [], [], 0
    for text in texts:
        batch.append(text)
        size += len(text)
        if size >= 1 << 20:
            batches.append(batch)
            batch, size = [], 0
    batches.append(batch)
    halves = [batches[0::2], batches[1::2]]
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    children = []
    for half in halves:
        pid = os.fork()
        if pid == 0:
            os.read(go_r, 1)
            n = sum(len(encode(b)[0]) for b in half)
            os.write(done_w, f"{n}\n".encode())
            os._exit(0)
        children.append(pid)
    os.close(done_w)  # the children hold their copies: reading to the end waits for both, however they arrive
    start = time.perf_counter()
    os.write(go_w, b"xx")
    report = b""
    while chunk := os.read(done_r, 64):
        report += chunk
    seconds = time.perf_counter() - start
    counts = [int(line) for line in report.decode().split()]
    if len(counts) != len(children):
        raise SystemExit(f"limit: {len(children)} encoders started, {len(counts)} reported")
    for pid in children:
        os.waitpid(pid, 0)
    return {"tokens": sum(counts), "seconds": seconds}


# ------------------------------------------------------------------------------------- run.py's side: orchestration


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _case(peer: str, args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, str(Path(__file__)), *args], capture_output=True, text=True,
                          env=env_for(peer))
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{peer} {args[0]} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def _timed_tree(cmd: list[str], env: dict[str, str]) -> dict:
    """Wall seconds of a whole process and the largest resident set of its process tree (sampled every 20 ms)."""
    from bench_prepare import timed_tree

    seconds, peak, _, _ = timed_tree(cmd, env, capture_stderr=True)
    return {"seconds": seconds, "peak_bytes": peak}


def _tokenize_timed(peer: str, corpus: Path, work: Path) -> dict:
    out = output_of(peer, work)
    for stale in (out, work / "hf-cache", work / "datatrove-logs", work / "datatrove-tmp"):
        shutil.rmtree(stale, ignore_errors=True)  # datatrove skips tasks its logs call done: always start clean
    if peer == "lmfeed":
        cmd = [sys.executable, "-c", "from lmfeed.cli import main; main()", "prepare", str(corpus), "--glob",
               "part-*", "-o", str(out), "--workers", "2", "--quiet"]
    else:
        cmd = [sys.executable, str(Path(__file__)), "tokenize", peer, "--corpus", str(corpus), "--out", str(out),
               "--work", str(work)]
    return _timed_tree(cmd, env_for(peer))


def output_of(peer: str, work: Path) -> Path:
    return work / ("lmfeed.store" if peer == "lmfeed" else f"{peer}.out")


def measure_peers(corpus: Path, work: Path, rounds: int, batches: int) -> dict:
    """Every row of the peer table, ``rounds`` times, contenders alternating (rotated each round)."""
    return list(peer_rounds(corpus, work, rounds, batches))[-1]


def peer_rounds(corpus: Path, work: Path, rounds: int, batches: int) -> Iterator[dict]:
    """``measure_peers`` one round at a time: yields the figures so far after each (also kept in results.json)."""
    from lmfeed.store.format import TokenStore

    work.mkdir(parents=True, exist_ok=True)
    tokenizer_json(work)
    res: dict[str, Any] = {"tokenize": {}, "serve": {}, "resume": {}, "check": {}, "limit": [], "load": []}
    excluded: dict[str, str] = {}
    tokens = 0
    for r in range(rounds):
        order = CONTENDERS[r % len(CONTENDERS):] + CONTENDERS[: r % len(CONTENDERS)]
        res["load"].append(os.getloadavg()[0])
        _log(f"peers round {r + 1}/{rounds} (load {res['load'][-1]:.1f}): {', '.join(order)}")
        for peer in order:
            if peer in excluded:
                continue
            figures = _tokenize_timed(peer, corpus, work)
            if peer == "lmfeed":
                tokens = len(TokenStore.open(output_of("lmfeed", work)))
            res["tokenize"].setdefault(peer, []).append(figures)
            _log(f"  tokenize {peer:<10} {figures['seconds']:.2f} s, peak {figures['peak_bytes'] / 1e6:,.0f} MB")
        if r == 0:
            for peer in CONTENDERS:
                res["check"][peer] = _case(peer, ["check", peer, "--out", str(output_of(peer, work)),
                                                  "--store", str(output_of("lmfeed", work))])
                _log(f"  ids      {peer:<10} {res['check'][peer]}")
                if not res["check"][peer]["same"]:
                    excluded[peer] = res["check"][peer]["detail"]
                    res["tokenize"].pop(peer, None)
        res["limit"].append(_case("lmfeed", ["limit", "lmfeed", "--corpus", str(corpus)]))
        _log(f"  limit    fastokens  {res['limit'][-1]['seconds']:.2f} s")
        for workers in (0, 2):
            for peer in order:
                if peer in excluded:
                    continue
                # the first round's serving process also checks resume afterwards (no clock in it): one process
                # start per peer and num_workers fewer
                again = ["--resume"] if r == 0 and peer in RESUMABLE else []
                figures = _case(peer, ["serve", peer, "--out", str(output_of(peer, work)), "--workers", str(workers),
                                       "--batches", str(batches), *again])
                if again:
                    res["resume"][f"{peer} {workers}"] = figures.pop("resume")
                res["serve"].setdefault(f"{peer} {workers}", []).append(figures)
                _log(f"  serve    {peer:<10} num_workers={workers}: first {figures['first_s'] * 1e3:,.0f} ms, "
                     f"{figures['tokens'] / figures['seconds'] / 1e6:,.1f} M tokens/s")
        for peer in CONTENDERS if r == 0 else ():  # once: no clock in it
            if peer in excluded:
                continue
            for workers in (0, 2):
                if peer not in RESUMABLE:  # a plain DataLoader has no state: no process is started to say so
                    res["resume"][f"{peer} {workers}"] = resume(peer, output_of(peer, work), workers)
            _log(f"  resume   {peer:<10} {res['resume'][f'{peer} 0']} / {res['resume'][f'{peer} 2']}")
        res["tokens"], res["excluded"], res["serve_batches"] = tokens, excluded, batches
        res["load_end"] = os.getloadavg()[0]
        (work / "results.json").write_text(json.dumps(res, indent=1))  # each round: --report-only reads it
        yield res


def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def peer_table(res: dict, corpus_mb: float) -> tuple[str, list[str], list[tuple[str, str, str]]]:
    """The peer table (Markdown), its notes, and (target, figure, verdict) for each target."""
    n = res["tokens"]
    peers = [p for p in CONTENDERS if p not in res["excluded"]]

    def tok_rate(p: str) -> float:
        return _median([n / f["seconds"] for f in res["tokenize"][p]])

    def serve_rate(p: str, w: int) -> float:  # the second half of the batches: steady serving
        return _median([f["steady_tokens"] / f["steady_seconds"] for f in res["serve"][f"{p} {w}"]])

    def whole_rate(p: str, w: int) -> float:  # every batch after the first, worker start-up included
        return _median([f["tokens"] / f["seconds"] for f in res["serve"][f"{p} {w}"]])

    def shutdown(p: str, w: int) -> str:  # the next() that raises StopIteration: DataLoader joins its workers
        runs = res["serve"][f"{p} {w}"]
        if any("shutdown_s" not in f for f in runs):  # figures kept from before the row existed
            return "not measured"
        return fmt_s(_median([f["shutdown_s"] for f in runs]))

    def first(p: str, w: int) -> float:
        return _median([f["first_s"] for f in res["serve"][f"{p} {w}"]])

    def peak(p: str) -> float:
        return _median([f["peak_bytes"] for f in res["tokenize"][p]]) / 1e6

    def cell(p: str, text: str) -> str:
        return text if p in peers else "not timed"

    def fmt_rate(x: float) -> str:
        return f"{x / 1e6:,.1f} M tok/s" if x >= 1e6 else f"{x / 1e6:.2f} M tok/s"

    def fmt_s(x: float) -> str:
        return f"{x * 1e3:,.1f} ms" if x < 1 else f"{x:,.2f} s"

    def fmt_mb(x: float) -> str:
        return f"{x / 1000:,.2f} GB" if x >= 1000 else f"{x:,.0f} MB"

    def resumed(p: str) -> str:
        if p not in peers:
            return "not timed"
        out = []
        for w in (0, 2):
            r = res["resume"][f"{p} {w}"]
            out.append("no state API" if r["equal"] is None else "exact" if r["equal"] else "**differs**")
        return " / ".join(out) if out[0] != out[1] else out[0]

    rows = [("ids equal lmfeed's store", [res["check"][p]["detail"] if res["check"][p]["same"] else
                                          f"**differ**: {res['check'][p]['detail']}" for p in CONTENDERS])]
    def wall(p: str) -> str:
        return f"{fmt_s(_median([f['seconds'] for f in res['tokenize'][p]]))} = {fmt_rate(tok_rate(p))}"

    rows.append(("tokenize, 2 workers, whole process", [cell(p, wall(p)) if p in peers else "not timed"
                                                      for p in CONTENDERS]))
    rows.append(("tokenize peak memory (process tree)", [cell(p, fmt_mb(peak(p))) if p in peers else "not timed"
                                                          for p in CONTENDERS]))
    for w in (0, 2):
        rows.append((f"serve 8 x 1024 shuffled, `num_workers={w}`, steady (second half, to its last batch)",
                     [fmt_rate(serve_rate(p, w)) if p in peers else "not timed" for p in CONTENDERS]))
        rows.append((f"serve, `num_workers={w}`, all batches after the first (start-up and shut-down included)",
                     [fmt_rate(whole_rate(p, w)) if p in peers else "not timed" for p in CONTENDERS]))
        if w:
            rows.append((f"workers' shut-down when the epoch ends, `num_workers={w}`",
                         [shutdown(p, w) if p in peers else "not timed" for p in CONTENDERS]))
        rows.append((f"time to first batch, `num_workers={w}`",
                     [fmt_s(first(p, w)) if p in peers else "not timed" for p in CONTENDERS]))
    rows.append(("resume after 10 batches (`num_workers` 0 / 2)", [resumed(p) for p in CONTENDERS]))
    head = ["work"] + [LABELS[p] for p in CONTENDERS]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join([what, *cells]) + " |" for what, cells in rows]

    others = [p for p in peers if p != "lmfeed"]
    limit_rate = _median([f["tokens"] / f["seconds"] for f in res["limit"]])
    targets = []
    if "lmfeed" in peers and others:
        ours = tok_rate("lmfeed")
        best = max(others, key=tok_rate)
        targets.append((f"tokenize >= 10x the fastest peer ({LABELS[best]}, {fmt_rate(tok_rate(best))})",
                        f"{ours / tok_rate(best):.1f}x", "met" if ours >= 10 * tok_rate(best) else "**not met**"))
        lighter = [p for p in others if peak("lmfeed") < peak(p)]
        targets.append(("tokenize peak memory below each peer's",
                        f"{fmt_mb(peak('lmfeed'))}; the lightest peer {fmt_mb(min(peak(p) for p in others))}",
                        "met" if len(lighter) == len(others) else "**not met**"))
        targets.append((f"tokenize >= 80% of the fast backend's own batch encoding on 2 cores ({fmt_rate(limit_rate)}; "
                        f"on {corpus_mb:,.0f} MB the whole command's start-up weighs: the 200 MB row below is the "
                        "measure)",
                        f"{ours / limit_rate:.0%}", "met" if ours >= 0.8 * limit_rate else "**not met**"))
        for w, factor in ((0, 3), (2, 10)):
            best = max(others, key=lambda p, w=w: serve_rate(p, w))
            ratio = serve_rate("lmfeed", w) / serve_rate(best, w)
            targets.append((f"serve `num_workers={w}` (steady) >= {factor}x the fastest peer ({LABELS[best]}, "
                            f"{fmt_rate(serve_rate(best, w))})", f"{ratio:.1f}x",
                            "met" if ratio >= factor else "**not met**"))
        half = serve_rate("lmfeed", 2) / serve_rate("lmfeed", 0)
        targets.append(("serve `num_workers=2` >= half of lmfeed's own `num_workers=0` (steady)",
                        f"{fmt_rate(serve_rate('lmfeed', 2))} = {half:.2f}x of {fmt_rate(serve_rate('lmfeed', 0))}",
                        "met" if half >= 0.5 else "**not met**"))
        whole = whole_rate("lmfeed", 2) / whole_rate("lmfeed", 0)
        targets.append(("the same with the workers' start-up and shut-down in the window (all batches after the "
                        "first)",
                        f"{fmt_rate(whole_rate('lmfeed', 2))} = {whole:.2f}x of {fmt_rate(whole_rate('lmfeed', 0))}",
                        "met" if whole >= 0.5 else "**not met**"))
        for w in (0, 2):
            best = min(others, key=lambda p, w=w: first(p, w))
            targets.append((f"first batch at `num_workers={w}` the shortest of all (next: {LABELS[best]}, "
                            f"{fmt_s(first(best, w))})", fmt_s(first("lmfeed", w)),
                            "met" if first("lmfeed", w) < first(best, w) else "**not met**"))
        exact = all(res["resume"][f"lmfeed {w}"]["equal"] for w in (0, 2))
        targets.append(("resume after 10 batches exact for lmfeed", "exact" if exact else "differs",
                        "met" if exact else "**not met**"))
    loads = ", ".join(f"{x:.1f}" for x in [*res["load"], res.get("load_end", res["load"][-1])])
    notes = [
        f"peers: a {corpus_mb:,.0f} MB JSON Lines corpus (the same stdlib text as above), {n:,} GPT-2 tokens in "
        f"lmfeed's store; {len(res['limit'])} round(s), contenders rotated each round, medians. One-minute load "
        f"average at the start of each round and at the end: {loads} (2 cores).",
        "tokenize: the whole process from outside (interpreter start, imports, reading, tokenizing, writing); "
        "tokens/s is lmfeed's token count over that time for every contender (they hold the same ids). lmfeed: "
        "`lmfeed prepare --workers 2`; litdata: `optimize(fn, inputs=files, num_workers=2, item_loader=TokensLoader())`"
        ", one uint16 array per document; datatrove: `LocalPipelineExecutor([JsonlReader, DocumentTokenizer], "
        "tasks=2, workers=2)` (it shuffles documents, its default); HF: `load_dataset('json')`, `.map(tokenize, "
        "batched=True, num_proc=2)` then `.map(group_texts, ...)` as `run_clm.py` (blocks of 1,025 ids), "
        "`save_to_disk`; Mosaic: a 2-process `Pool.imap` tokenizing files into one `MDSWriter` of 1,025-id samples "
        "(llm-foundry's concatenated-tokens layout). The limit: lmfeed's fast backend (fastokens) encoding the same "
        "documents in ~1 MB batches on 2 forked processes, no reading, parsing or writing: "
        f"{fmt_rate(limit_rate)}.",
        "serve: shuffled (input, target) batches of 8 x 1024 as int64, the clock from opening the data (dataset and "
        f"loader built) to the first batch, then tokens/s over up to {res['serve_batches']:,} further batches (an "
        "epoch at most), and over their second half up to its last batch (steady: every worker up, the pipeline "
        "full; the `next()` that ends the epoch, in which `DataLoader` shuts its workers down, is not serving and "
        "has its own row). lmfeed: "
        "`create_dataloader(store, 8, 1024, 1024, "
        "shuffle=True, seed=0)`; litdata: `StreamingDataset(TokensLoader(block_size=1025), shuffle=True)` + "
        "`StreamingDataLoader`; datatrove: `DatatroveFolderDataset(seq_len=1024)` + `DataLoader(shuffle=True)` "
        "(it is written for sequential reads of pre-shuffled documents; random access is its slow path); HF: "
        "`load_from_disk(...).with_format('torch')` + `DataLoader(shuffle=True)`; Mosaic: `StreamingDataset("
        "shuffle=True)` + `StreamingDataLoader`.",
        "resume: 10 batches, `state_dict()`, a new loader and `load_state_dict()`, compared with the 11th batch of an "
        "uninterrupted run with the same seed. datatrove and HF datasets hand a plain `torch.utils.data.DataLoader`, "
        "which has no state.",
    ]
    return "\n".join(lines), notes, targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--install", action="store_true", help="install the peers' environments and exit")
    parser.add_argument("case", nargs="?", choices=["tokenize", "check", "serve", "resume", "limit"])
    parser.add_argument("peer", nargs="?")
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--store", type=Path)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--resume", action="store_true", help="serve: then check resume in the same process")
    args = parser.parse_args()
    if args.install:
        install()
        return
    sys.path.insert(0, str(BENCH))
    if args.case == "tokenize":
        result = tokenize(args.peer, args.corpus, args.out, args.work)
    elif args.case == "check":
        result = check(args.peer, args.out, args.store)
    elif args.case == "serve":
        result = serve(args.peer, args.out, args.workers, args.batches)
        if args.resume:  # after the clocked part: the same process checks resume too
            result["resume"] = resume(args.peer, args.out, args.workers)
    elif args.case == "resume":
        result = resume(args.peer, args.out, args.workers)
    else:
        result = limit(args.corpus)
    print(json.dumps(result), flush=True)
    sys.stdout.flush()
    os._exit(0)  # some peers leave non-daemon threads or shared memory handlers behind: the figure is out


if __name__ == "__main__":
    main()
