"""``lmfeed generate``: read what a trained model learned, as text sampled from its checkpoint."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="generate")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--prompt", default="\n", show_default="a newline", help="The text to continue.")
@click.option("--max-new-tokens", default=60, show_default=True, help="Tokens to sample.")
@click.option("--temperature", default=0.8, show_default=True, help="Softmax temperature; 0 is greedy.")
@click.option("--top-k", default=40, show_default=True, help="Sample among the k most likely tokens; 0 for all.")
@click.option("--seed", default=1234, show_default=True, help="Seed of the sampling.")
@click.option("--num-samples", default=1, show_default=True, help="Independent continuations of the prompt.")
def command(run_dir: Path, prompt: str, max_new_tokens: int, temperature: float, top_k: int, seed: int,
            num_samples: int) -> None:
    """Sample text from the model that `lmfeed train` saved in RUN_DIR.

    \b
    Example:
        lmfeed generate lmfeed-run --prompt "The with statement"
    """
    import torch

    from lmfeed._validate import as_int, as_seed
    from lmfeed.model.generate import generate, load_run

    num_samples = as_int("num_samples", num_samples, minimum=1, maximum=64)
    top_k = as_int("top_k", top_k, minimum=0)
    model, tokenizer, _ = load_run(run_dir)
    ids = tokenizer.encode_ordinary(prompt)
    if not ids:
        raise ValueError("The prompt encodes to no tokens. Pass some text with --prompt.")
    generator = torch.Generator().manual_seed(as_seed("--seed", seed))
    prompt_ids = torch.tensor([ids] * num_samples)
    out = generate(model, prompt_ids, max_new_tokens, temperature=temperature, top_k=top_k or None,
                   generator=generator)
    for i, row in enumerate(out.tolist()):
        if num_samples > 1:
            click.echo(f"--- sample {i + 1}")
        click.echo(tokenizer.decode(row))
