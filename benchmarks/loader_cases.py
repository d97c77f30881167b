"""Loader and embedding benchmark cases, each run in a fresh process so that its peak memory is its own.

    python benchmarks/loader_cases.py CASE STORE [options]      # prints one JSON line

STORE is a token store (``lmfeed prepare``); the cases read its first ``--tokens`` ids. Peers:

- the seed's ``GPTDatasetV1`` / ``create_dataloader_v1`` from the ``llms-from-scratch`` package (installed with
  ``--no-deps``); ``GPTDatasetV1`` is handed the ids through a stand-in tokenizer whose ``encode`` returns them, so
  that only its windowing is timed, and ``create_dataloader_v1`` gets the ids' text and is timed over one epoch
  only (it needs GPT-2's files in ``TIKTOKEN_CACHE_DIR`` offline);
- a nanoGPT-style ``get_batch`` (random offsets, ``torch.stack`` of per-row slices of a memory map kept open),
  written here as the baseline;
- a bare zero-copy gather (``sliding_window_view`` indexed by the batch's offsets): the limit on this machine.

Figures: ``seconds`` (wall, ``time.perf_counter``), ``tokens`` (input tokens served), ``rss_mb`` (peak resident
memory of the process, from ``resource.getrusage``), ``base_rss_mb`` (the same before the case's own work:
imports done, ids mapped) and, for ``construct_lmfeed``, ``built_rss_mb`` (after construction, before serving
windows). The random-offset cases draw one batch before the clock starts, so all three pay their first-call set-up
outside it.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import torch


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _GivenIds:
    """Stands in for ``tiktoken.get_encoding("gpt2")`` inside the seed's dataset: returns ids already made."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids

    def encode(self, text: str, allowed_special=None) -> list[int]:  # noqa: ANN001, ARG002
        return self.ids


def _ids(args: argparse.Namespace) -> np.ndarray:
    from lmfeed.store.format import TokenStore

    tokens = TokenStore.open(args.store).tokens
    return tokens[: args.tokens]


def construct_seed(args: argparse.Namespace) -> dict:
    from llms_from_scratch.ch02 import GPTDatasetV1

    ids = _ids(args).tolist()
    base = _peak_mb()
    start = time.perf_counter()
    dataset = GPTDatasetV1("", _GivenIds(ids), args.max_length, args.stride)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "windows": len(dataset), "base_rss_mb": base, "rss_mb": _peak_mb()}


def construct_lmfeed(args: argparse.Namespace) -> dict:
    from lmfeed import SlidingWindowDataset

    ids = _ids(args)  # a slice of the memory map: nothing read yet
    base = _peak_mb()
    start = time.perf_counter()
    dataset = SlidingWindowDataset(ids, args.max_length, args.stride)
    seconds = time.perf_counter() - start
    built = _peak_mb()
    # serve every 1,000th window once, so the figure covers a dataset that works, not only one that exists
    picks = np.arange(0, len(dataset), max(1, len(dataset) // 1000))
    for k in range(0, len(picks), 64):
        dataset.__getitems__(picks[k : k + 64])
    return {"seconds": seconds, "windows": len(dataset), "base_rss_mb": base, "built_rss_mb": built,
            "rss_mb": _peak_mb()}


def epoch_seed(args: argparse.Namespace) -> dict:
    """The seed's own ``create_dataloader_v1`` on the text of the ids; only the epoch is timed.

    Its ``tiktoken.get_encoding("gpt2")`` needs GPT-2's files: offline, put them in ``TIKTOKEN_CACHE_DIR``
    (``run.py`` does).
    """
    from llms_from_scratch.ch02 import create_dataloader_v1

    from lmfeed.text.tokenizer import get_tokenizer

    text = get_tokenizer("gpt2").decode(_ids(args).tolist())  # end-of-text ids become the literal, kept by the seed
    torch.manual_seed(0)
    loader = create_dataloader_v1(text, args.batch_size, args.max_length, args.stride, shuffle=True, drop_last=True)
    start = time.perf_counter()
    tokens = sum(inputs.numel() for inputs, _ in loader)
    return {"seconds": time.perf_counter() - start, "tokens": tokens, "rss_mb": _peak_mb()}


def epoch_lmfeed(args: argparse.Namespace) -> dict:
    from lmfeed import create_dataloader

    torch.manual_seed(0)
    loader = create_dataloader(_ids(args), args.batch_size, args.max_length, args.stride, True, True, 0)
    start = time.perf_counter()
    tokens = sum(inputs.numel() for inputs, _ in loader)
    return {"seconds": time.perf_counter() - start, "tokens": tokens, "rss_mb": _peak_mb()}


def random_nanogpt(args: argparse.Namespace) -> dict:
    data = _ids(args)
    b, t = args.batch_size, args.max_length

    def get_batch() -> tuple[torch.Tensor, torch.Tensor]:
        ix = torch.randint(len(data) - t, (b,))
        x = torch.stack([torch.from_numpy(data[i : i + t].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(data[i + 1 : i + 1 + t].astype(np.int64)) for i in ix])
        return x, y

    torch.manual_seed(0)
    get_batch()  # warm up: first calls pay for lazy set-up in numpy and torch, as in every contender
    start = time.perf_counter()
    for _ in range(args.batches):
        x, y = get_batch()
    del x, y
    return {"seconds": time.perf_counter() - start, "tokens": args.batches * b * t, "rss_mb": _peak_mb()}


def random_bare(args: argparse.Namespace) -> dict:
    data = _ids(args)
    b, t = args.batch_size, args.max_length
    windows = np.lib.stride_tricks.sliding_window_view(data, t + 1)
    rng = np.random.default_rng(0)

    def get_batch() -> tuple[torch.Tensor, torch.Tensor]:
        chunk = windows[rng.integers(0, len(data) - t, b)]
        return torch.from_numpy(chunk[:, :-1].astype(np.int64)), torch.from_numpy(chunk[:, 1:].astype(np.int64))

    get_batch()  # warm up
    start = time.perf_counter()
    for _ in range(args.batches):
        x, y = get_batch()
    del x, y
    return {"seconds": time.perf_counter() - start, "tokens": args.batches * b * t, "rss_mb": _peak_mb()}


def random_lmfeed(args: argparse.Namespace) -> dict:
    from lmfeed import create_dataloader

    b, t = args.batch_size, args.max_length
    next(iter(create_dataloader(_ids(args), b, t, sampling="random", num_samples=b, seed=1)))  # warm up
    loader = create_dataloader(_ids(args), b, t, sampling="random", num_samples=args.batches * b, seed=0)
    start = time.perf_counter()
    tokens = sum(inputs.numel() for inputs, _ in loader)
    return {"seconds": time.perf_counter() - start, "tokens": tokens, "rss_mb": _peak_mb()}


def _embedding_step(module, ids: torch.Tensor, steps: int, forward) -> float:  # noqa: ANN001
    for _ in range(2):  # warm up the allocator and kernels
        forward(ids).sum().backward()
    start = time.perf_counter()
    for _ in range(steps):
        module.zero_grad(set_to_none=True)
        forward(ids).sum().backward()
    return time.perf_counter() - start


def embed_lmfeed(args: argparse.Namespace) -> dict:
    from lmfeed import InputEmbedding

    torch.manual_seed(0)
    module = InputEmbedding(50257, args.embed_dim, context_length=args.max_length)
    ids = torch.randint(0, 50257, (args.batch_size, args.max_length))
    seconds = _embedding_step(module, ids, args.batches, module)
    return {"seconds": seconds, "tokens": args.batches * ids.numel(), "rss_mb": _peak_mb()}


def embed_torch(args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    tok, pos = torch.nn.Embedding(50257, args.embed_dim), torch.nn.Embedding(args.max_length, args.embed_dim)
    module = torch.nn.ModuleList([tok, pos])
    ids = torch.randint(0, 50257, (args.batch_size, args.max_length))
    positions = torch.arange(args.max_length)
    seconds = _embedding_step(module, ids, args.batches, lambda x: tok(x) + pos(positions))
    return {"seconds": seconds, "tokens": args.batches * ids.numel(), "rss_mb": _peak_mb()}


CASES = {f.__name__: f for f in (construct_seed, construct_lmfeed, epoch_seed, epoch_lmfeed, random_nanogpt,
                                   random_bare, random_lmfeed, embed_lmfeed, embed_torch)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("store")
    parser.add_argument("--tokens", type=int, default=10_000_000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--stride", type=int, default=128)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--embed-dim", type=int, default=768)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(json.dumps({"case": args.case, **CASES[args.case](args)}))


if __name__ == "__main__":
    main()
