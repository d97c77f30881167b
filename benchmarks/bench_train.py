"""Training speed of ``lmfeed.GPT`` against the seed's book model, ``llms_from_scratch.ch04.GPTModel``, side by side.

    python benchmarks/bench_train.py            # D=128, 4 layers, 4 heads, T=128, B=16, V=8192; 5 rounds of 10 steps
    python benchmarks/bench_train.py --quick    # 2 rounds of 3 steps (a smoke run)

Both models get the same configuration (embed_dim, layers, heads, context length, batch, vocabulary; dropout 0; qkv
biases; no weight tying, as the book has none), the same AdamW and the same random batches. A step is forward,
cross-entropy, backward and the optimizer update. The contenders alternate (A B A B ...) so that machine noise falls
on both; the figure is the median tokens/s over the rounds, after one warm-up step each. Peak memory is not compared
here (one process); ``lmfeed train`` reports its own.

The book's attention builds the (T, T) mask and softmax by hand; lmfeed's goes through
``scaled_dot_product_attention`` with one fused q/k/v projection, so lmfeed is expected at >= 1.0x.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch


def models(vocab: int, dim: int, layers: int, heads: int, length: int) -> dict[str, torch.nn.Module]:
    from llms_from_scratch.ch04 import GPTModel

    from lmfeed.model.gpt import GPT

    torch.manual_seed(0)
    ours = GPT(vocab, dim, length, layers, heads, tie_weights=False)
    book = GPTModel({"vocab_size": vocab, "context_length": length, "emb_dim": dim, "n_heads": heads,
                     "n_layers": layers, "drop_rate": 0.0, "qkv_bias": True})
    return {"lmfeed.GPT": ours, "book GPTModel": book}


def step_fn(name: str, model: torch.nn.Module, opt: torch.optim.Optimizer):
    def step(inputs: torch.Tensor, targets: torch.Tensor) -> None:
        if name == "lmfeed.GPT":
            _, loss = model(inputs, targets)
        else:
            logits = model(inputs)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--embed-dim", type=int, default=128)
    parser.add_argument("--num-layers", type=int, default=4)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--context-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 5)
    steps = args.steps or (3 if args.quick else 10)
    contenders = models(args.vocab_size, args.embed_dim, args.num_layers, args.num_heads, args.context_length)
    gen = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, args.vocab_size, (args.batch_size, args.context_length + 1), generator=gen)
               for _ in range(steps)]
    steps_of = {}
    for name, model in contenders.items():
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
        steps_of[name] = step_fn(name, model.train(), opt)
        steps_of[name](batches[0][:, :-1], batches[0][:, 1:])  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    tokens = steps * args.batch_size * args.context_length
    for r in range(rounds):
        for name, step in steps_of.items():
            start = time.perf_counter()
            for b in batches:
                step(b[:, :-1], b[:, 1:])
            rates[name].append(tokens / (time.perf_counter() - start))
            print(f"round {r + 1}/{rounds} {name}: {rates[name][-1]:,.0f} tokens/s", file=sys.stderr, flush=True)
    ours, book = statistics.median(rates["lmfeed.GPT"]), statistics.median(rates["book GPTModel"])
    print(f"| training step (forward, loss, backward, AdamW), V={args.vocab_size}, D={args.embed_dim}, "
          f"{args.num_layers} layers, {args.num_heads} heads, T={args.context_length}, B={args.batch_size}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads | lmfeed.GPT {ours:,.0f} tokens/s | "
          f"book GPTModel {book:,.0f} tokens/s | {ours / book:.2f}x | medians of {rounds} rounds of {steps} steps |")


if __name__ == "__main__":
    main()
