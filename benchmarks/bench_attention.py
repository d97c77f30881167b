"""Forward + backward of ``CausalSelfAttention`` for every position scheme, side by side with plain SDPA, on CPU.

    python benchmarks/bench_attention.py                       # (8, 1024), D=256, 4 heads, 3 rounds
    python benchmarks/bench_attention.py --rounds 1 --steps 1  # a smoke run
    python benchmarks/bench_attention.py --batch-size 2 --max-length 256
    python benchmarks/bench_attention.py --schemes xl,relative_key_query

Every scheme is one ``CausalSelfAttention(embed_dim, num_heads, positional=...)``; "plain SDPA" is the same layer
with ``positional=None`` (``scaled_dot_product_attention(is_causal=True)``, no term on the logits). Each step is
``layer(x).sum().backward()`` on a fresh ``x`` of shape ``(B, T, D)``; contenders alternate within a round (A B C
... A B C ...) so machine noise falls on all of them, and each figure is the median over rounds of the mean step
time. Targets (issue 21): Transformer-XL and BERT's relative_key / relative_key_query within 3x of T5's bias, which
also adds a ``(H, T, T)`` term to the logits. The table goes to stdout; ``--json`` prints the raw figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lmfeed.embeddings import CausalSelfAttention, positional_kinds  # noqa: E402  (after the path above)

TARGETS = {"relative_key": 3.0, "relative_key_query": 3.0, "xl": 3.0}  # x T5's time


def step_seconds(layer: CausalSelfAttention, shape: tuple[int, int, int], steps: int) -> float:
    """Mean seconds of one forward + backward over ``steps`` steps."""
    x = torch.randn(*shape, requires_grad=True)
    start = time.perf_counter()
    for _ in range(steps):
        layer(x).sum().backward()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--embed-dim", type=int, default=256)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="forward + backward steps per contender per round")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--schemes", default="", help="comma-separated subset (plain SDPA and t5 always run)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for name in ("batch_size", "max_length", "embed_dim", "num_heads", "rounds", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    shape = (args.batch_size, args.max_length, args.embed_dim)
    schemes: list[str | None] = [None, *positional_kinds("attention")]
    if args.schemes:
        wanted = {"t5", *args.schemes.split(",")}
        unknown = wanted - set(positional_kinds("attention"))
        if unknown:
            known = ", ".join(positional_kinds("attention"))
            parser.error(f"unknown --schemes {sorted(unknown)}; choose among {known}")
        schemes = [s for s in schemes if s is None or s in wanted]
    torch.manual_seed(0)
    layers = {s: CausalSelfAttention(args.embed_dim, args.num_heads, positional=s,  # type: ignore[arg-type]
                                     max_distance=args.max_length) for s in schemes}
    for layer in layers.values():
        step_seconds(layer, shape, 1)  # warm up: allocator, kernels
    times: dict[str | None, list[float]] = {s: [] for s in schemes}
    for r in range(args.rounds):
        for s in schemes:
            times[s].append(step_seconds(layers[s], shape, args.steps))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    median = {s: statistics.median(t) for s, t in times.items()}
    tokens = args.batch_size * args.max_length
    if args.json:
        print(json.dumps({str(s): {"seconds": median[s], "times": times[s]} for s in schemes}, indent=2))
        return
    print(f"CausalSelfAttention forward + backward, (B, T) = ({args.batch_size}, {args.max_length}), "
          f"D={args.embed_dim}, {args.num_heads} heads, CPU, {torch.get_num_threads()} threads, torch "
          f"{torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"median of {args.rounds} rounds x {args.steps} steps\n")
    print("| scheme | ms / step | tokens / s | x plain SDPA | x T5 | target |")
    print("| --- | --- | --- | --- | --- | --- |")
    for s in schemes:
        x_t5 = median[s] / median["t5"]
        target = TARGETS.get(str(s))
        verdict = "" if target is None else f"<= {target:g}x T5: {'met' if x_t5 <= target else '**not met**'}"
        print(f"| {'plain SDPA (None)' if s is None else s} | {median[s] * 1e3:,.0f} | {tokens / median[s]:,.0f} | "
              f"{median[s] / median[None]:.2f}x | {x_t5:.2f}x | {verdict} |")


if __name__ == "__main__":
    main()
