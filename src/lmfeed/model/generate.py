"""Text from a trained model: sampling with temperature and top-k, one KV cache per block.

Each step feeds only the newest token through the model, attending to the cached keys and values of the ones
before (:class:`lmfeed.KVCache`). When the text outgrows ``context_length`` the window slides: the cache is
dropped and the last ``context_length`` tokens are run again (the model never sees more than it was trained on).

Example:
    >>> model, tokenizer, config = load_run("lmfeed-run")                      # doctest: +SKIP
    >>> ids = torch.tensor([tokenizer.encode_ordinary("The with statement")])  # doctest: +SKIP
    >>> tokenizer.decode(generate(model, ids, 40, top_k=20)[0].tolist())       # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from lmfeed._validate import as_int
from lmfeed.embeddings import KVCache
from lmfeed.model.checkpoint import load_checkpoint
from lmfeed.model.config import TrainConfig
from lmfeed.model.gpt import GPT

__all__ = ["generate", "load_run"]


def _next_logits(model: GPT, ids: torch.Tensor, caches: list[KVCache] | None) -> torch.Tensor:
    logits, _ = model(ids, kv_cache=caches)
    return logits[:, -1, :].float()  # (B, V)


@torch.no_grad()
def generate(
    model: GPT,
    token_ids: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """Continue each row of ``token_ids`` by ``max_new_tokens`` sampled tokens.

    Args:
        model: a :class:`GPT` (put in eval mode here).
        token_ids: integer ``(B, N)`` prompt ids, N >= 1.
        max_new_tokens: tokens to add (0 returns the prompt).
        temperature: divides the logits; 0 takes the most likely token (greedy). Default 1.0.
        top_k: sample only among the k most likely tokens (default: all).
        generator: a ``torch.Generator`` for reproducible samples (default: torch's global RNG).
        use_cache: feed one token per step through per-block KV caches (default); False runs the whole window
            every step (the reference the cache is tested against).

    Returns:
        ``(B, N + max_new_tokens)`` int64: the prompt followed by the new tokens.

    Raises:
        ValueError, TypeError: an empty prompt, a negative count or temperature, top_k < 1.
    """
    max_new_tokens = as_int("max_new_tokens", max_new_tokens, minimum=0)
    if top_k is not None:
        top_k = as_int("top_k", top_k, minimum=1)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature < 0:
        raise ValueError(f"temperature must be a number >= 0 (0: greedy), but got {temperature!r}.")
    if not isinstance(token_ids, torch.Tensor) or token_ids.dim() != 2 or token_ids.shape[1] == 0:
        raise ValueError("token_ids must be a (B, N) tensor of prompt ids with N >= 1. Encode a non-empty prompt.")
    model.eval()
    device = next(model.parameters()).device
    ids = token_ids.to(device=device, dtype=torch.long)
    t = model.context_length
    caches = [KVCache() for _ in model.blocks] if use_cache else None
    logits = _next_logits(model, ids[:, -t:], caches)
    for _ in range(max_new_tokens):
        if temperature == 0:
            new = logits.argmax(dim=-1, keepdim=True)
        else:
            scaled = logits / temperature
            if top_k is not None and top_k < scaled.shape[-1]:
                kth = torch.topk(scaled, top_k, dim=-1).values[:, -1:]
                scaled = scaled.masked_fill(scaled < kth, float("-inf"))
            probs = torch.softmax(scaled, dim=-1)
            new = torch.multinomial(probs, 1, generator=generator)
        ids = torch.cat([ids, new], dim=1)
        if caches is not None and len(caches[0]) < t:
            logits = _next_logits(model, new, caches)  # one token, at position len(cache)
        else:  # past the context: slide the window and run it whole
            if caches is not None:
                for cache in caches:
                    cache.reset()
            logits = _next_logits(model, ids[:, -t:], caches)
    return ids


def run_tokenizer(tokenizer: str, run_dir: str | os.PathLike[str]) -> Any:
    """The tokenizer a run was trained with: a name or path, or ``bpe:N`` (the run's own ``tokenizer.json``)."""
    from lmfeed.model.data import bpe_size
    from lmfeed.text.tokenizer import get_tokenizer

    if bpe_size(tokenizer) is not None:
        path = Path(run_dir) / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(f"{str(run_dir)!r} was trained with its own BPE ({tokenizer}), but its "
                                    "tokenizer.json is missing. Copy the whole run directory.")
        return get_tokenizer(str(path))
    return get_tokenizer(tokenizer)


def load_run(run_dir: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> tuple[GPT, Any, TrainConfig]:
    """The trained model of a run directory (from its checkpoint), its tokenizer and its settings.

    Raises:
        FileNotFoundError: no run or no checkpoint there. CheckpointError: a damaged checkpoint.
    """
    state = load_checkpoint(run_dir, purpose="generate from")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in state["config"].items() if k in known})
    tokenizer = run_tokenizer(config.tokenizer, run_dir)
    model = GPT(tokenizer.n_vocab, config.embed_dim, config.context_length, config.num_layers, config.num_heads,
                positional=config.positional, dropout=config.dropout, tie_weights=config.tie_weights)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), tokenizer, config
