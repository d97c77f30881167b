"""Documents: best-fit padding, packed batches against plain windows, document-masked attention, two-store blends.

    python benchmarks/bench_documents.py [--rounds 5] [--batches 50] [--quick]

Every figure is a median over ``--rounds`` rounds, the compared cases alternating within each round (so a change of
machine load hits both sides alike). Cases:

1. **best-fit padding** on the default corpus (the Python language reference, 79 documents, 139,015 GPT-2
   tokens) at ``max_length`` 256 and 1024: padding slots over all slots (target <= 2%), and the cropped share with
   ``packing="crop"`` for comparison.
2. **packed vs plain tokens/s**: batches of 64 from a store of the standard library's ``.py`` files (``--mb`` MB,
   one document per file), ``max_length`` 256 and 1024: ``packing="best_fit"`` against plain windows
   (``stride = max_length``), and both with ``return_documents=True`` (positions, document ids, cu_seqlens);
   target >= 0.5x.
3. **document-masked attention** on CPU: ``CausalSelfAttention(256, 4)`` forward on (8, 1024) with the documents of
   a packed batch, through the boolean mask (SDPA) and FlexAttention (unfused on CPU without ``torch.compile``),
   against unmasked causal SDPA (``is_causal=True``).
4. **two-store blend vs one store** (#15 item 20): tokens/s of ``create_dataloader({a: 0.5, b: 0.5})`` against
   ``create_dataloader(a)`` at batch 64, ``max_length`` 32 and 1024, shuffled with a seed (the two halves of the
   ``.py`` files); target >= 0.5x.

Prints a Markdown table on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _corpus_store(root: Path, name: str, documents: list[str]) -> Path:
    from lmfeed.store.prepare import prepare

    folder = root / name
    folder.mkdir()
    for i, text in enumerate(documents):
        (folder / f"{i:03d}.txt").write_text(text, encoding="utf-8")
    return prepare(folder, root / f"{name}.store", workers=2).path  # type: ignore[union-attr]


def _tokens_per_second(loader: Any, batches: int) -> float:
    it = iter(loader)
    next(it)  # first-call set-up outside the clock
    served = 0
    start = time.perf_counter()
    for _ in range(batches):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        served += batch[0].numel()
    return served / (time.perf_counter() - start)


def _alternate(cases: dict[str, Any], rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, run in cases.items():
            times[name].append(run())
    return {name: statistics.median(values) for name, values in times.items()}


def padding(rows: list[list[str]]) -> None:
    import lmfeed
    from lmfeed.text.sources import python_reference
    from lmfeed.text.tokenizer import ENDOFTEXT

    text = ENDOFTEXT.join(python_reference())
    for max_length in (256, 1024):
        best = lmfeed.create_dataloader(text, batch_size=1, max_length=max_length, packing="best_fit")
        crop = lmfeed.create_dataloader(text, batch_size=1, max_length=max_length, packing="crop")
        verdict = "met" if best.padding_fraction <= 0.02 else "not met"
        rows.append([f"best-fit padding, default corpus, max_length={max_length}",
                     f"{best.padding_fraction:.2%} of {len(best.dataset) * (max_length + 1):,} slots "
                     f"({len(best.dataset):,} rows, 0 tokens cropped)",
                     f"crop: {crop.cropped_fraction:.1%} of tokens cropped, 0 padding", f"<= 2%: {verdict}"])


def packed_vs_plain(rows: list[list[str]], store: Path, rounds: int, batches: int) -> None:
    import lmfeed

    for max_length in (256, 1024):
        for documents in (False, True):
            plain = lmfeed.create_dataloader(store, batch_size=64, max_length=max_length, stride=max_length, seed=0,
                                             return_documents=documents)
            packed = lmfeed.create_dataloader(store, batch_size=64, max_length=max_length, seed=0, packing="best_fit",
                                              return_documents=documents)
            speed = _alternate({"plain": lambda p=plain: _tokens_per_second(p, batches),
                                "packed": lambda p=packed: _tokens_per_second(p, batches)}, rounds)
            ratio = speed["packed"] / speed["plain"]
            what = ", both return_documents=True" if documents else ""
            rows.append([f"packed batches (best_fit, B=64, T={max_length}{what}) vs plain windows",
                         f"{speed['packed'] / 1e6:.1f} M tokens/s", f"plain: {speed['plain'] / 1e6:.1f} M tokens/s",
                         f"{ratio:.2f}x (target >= 0.5x: {'met' if ratio >= 0.5 else 'not met'})"])


def attention(rows: list[list[str]], store: Path, rounds: int) -> None:
    import lmfeed
    from lmfeed.embeddings.masks import flex_attention_available

    batch = next(iter(lmfeed.create_dataloader(store, batch_size=8, max_length=1024, seed=0, packing="best_fit",
                                               return_documents=True)))
    torch.manual_seed(0)
    x = torch.randn(8, 1024, 256)
    sdpa = lmfeed.CausalSelfAttention(256, 4).eval()
    flex = lmfeed.CausalSelfAttention(256, 4, kernel="flex").eval()
    flex.load_state_dict(sdpa.state_dict())

    def timed(run: Any) -> Any:
        def go() -> float:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                run()
                return time.perf_counter() - start
        go()  # warm-up
        return go

    cases = {"causal": timed(lambda: sdpa(x)),
             "masked": timed(lambda: sdpa(x, document_ids=batch.document_ids))}
    if flex_attention_available():
        cases["flex"] = timed(lambda: flex(x, document_ids=batch.document_ids))
    seconds = _alternate(cases, rounds)
    documents = int(batch.cu_seqlens.numel() - 1)
    flex_note = f"; FlexAttention (unfused, no compile): {seconds['flex'] * 1e3:.0f} ms" if "flex" in seconds else ""
    rows.append([f"document-masked attention, CPU, (8, 1024), D=256, 4 heads, {documents} documents",
                 f"bool mask + SDPA: {seconds['masked'] * 1e3:.0f} ms",
                 f"unmasked causal SDPA: {seconds['causal'] * 1e3:.0f} ms{flex_note}",
                 f"{seconds['masked'] / seconds['causal']:.2f}x the unmasked time"])


def blend(rows: list[list[str]], a: Path, b: Path, rounds: int, batches: int) -> None:
    import lmfeed

    for max_length in (32, 1024):
        kwargs = {"batch_size": 64, "max_length": max_length, "stride": max_length, "seed": 0}
        one = lmfeed.create_dataloader(a, **kwargs)
        two = lmfeed.create_dataloader({a: 0.5, b: 0.5}, **kwargs)
        speed = _alternate({"one": lambda o=one: _tokens_per_second(o, batches),
                            "two": lambda t=two: _tokens_per_second(t, batches)}, rounds)
        ratio = speed["two"] / speed["one"]
        rows.append([f"two-store blend vs one store (B=64, T={max_length})", f"{speed['two'] / 1e6:.2f} M tokens/s",
                     f"one store: {speed['one'] / 1e6:.2f} M tokens/s",
                     f"{ratio:.2f}x (target >= 0.5x: {'met' if ratio >= 0.5 else 'not met'})"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--mb", type=float, default=8.0, help="MB of standard-library .py files for the stores")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 20 batches: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.batches = 3, 20
    if args.rounds < 1 or args.batches < 1 or args.mb <= 0:
        parser.error("--rounds and --batches must be at least 1, --mb above 0")
    import sysconfig

    stdlib = sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py"))
    files, size = [], 0
    for path in stdlib:
        if size >= args.mb * 1e6:
            break
        try:
            files.append(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue
        size += len(files[-1])
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _log(f"preparing stores of {len(files):,} standard-library files ({size / 1e6:.1f} MB) ...")
        store = _corpus_store(root, "all", files)
        a = _corpus_store(root, "a", files[::2])
        b = _corpus_store(root, "b", files[1::2])
        _log("padding ...")
        padding(rows)
        _log("packed vs plain ...")
        packed_vs_plain(rows, store, args.rounds, args.batches)
        _log("attention ...")
        attention(rows, store, args.rounds)
        _log("blend ...")
        blend(rows, a, b, args.rounds, args.batches)
    print(f"| case | lmfeed | compared with | verdict |  ({args.rounds} rounds, {args.batches} batches, medians)")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
