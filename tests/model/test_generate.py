"""Generation: the KV cache gives the logits of running the whole window, for every scheme; sampling is seeded."""

from __future__ import annotations

import pytest
import torch

from lmfeed.embeddings import KVCache, positional_kinds
from lmfeed.model.generate import generate
from lmfeed.model.gpt import GPT

SMALL = {"vocab_size": 97, "embed_dim": 32, "context_length": 12, "num_layers": 2, "num_heads": 4}


@pytest.mark.parametrize("positional", positional_kinds())
def test_cached_decoding_gives_the_logits_of_the_whole_window(positional):
    torch.manual_seed(0)
    model = GPT(**SMALL, positional=positional).eval()
    ids = torch.randint(0, 97, (2, 9))
    caches = [KVCache() for _ in model.blocks]
    with torch.no_grad():
        full, _ = model(ids)
        first, _ = model(ids[:, :5], kv_cache=caches)
        steps = [model(ids[:, i:i + 1], kv_cache=caches)[0] for i in range(5, 9)]
    torch.testing.assert_close(torch.cat([first, *steps], dim=1), full, atol=2e-5, rtol=0)


@pytest.mark.parametrize("positional", ["learned", "rope", "alibi"])
def test_generate_with_and_without_the_cache_agree_past_the_context(positional):
    torch.manual_seed(1)
    model = GPT(**SMALL, positional=positional)
    prompt = torch.randint(0, 97, (2, 3))
    cached = generate(model, prompt, 20, temperature=0)  # 23 tokens: the window slides past context_length=12
    plain = generate(model, prompt, 20, temperature=0, use_cache=False)
    assert cached.shape == (2, 23) and torch.equal(cached[:, :3], prompt)
    assert torch.equal(cached, plain)
    # greedy: each new token is the argmax of a full forward over the window before it
    with torch.no_grad():
        for n in range(3, 23):
            window = plain[:, max(0, n - 12):n]
            assert torch.equal(model(window)[0][:, -1].argmax(-1), plain[:, n])


def test_sampling_is_reproducible_with_a_generator_and_respects_top_k():
    torch.manual_seed(2)
    model = GPT(**SMALL)
    prompt = torch.zeros(1, 1, dtype=torch.long)
    a = generate(model, prompt, 15, top_k=3, generator=torch.Generator().manual_seed(5))
    b = generate(model, prompt, 15, top_k=3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    one = generate(model, prompt, 15, top_k=1, generator=torch.Generator().manual_seed(9))
    assert torch.equal(one, generate(model, prompt, 15, temperature=0))  # top-1 sampling is greedy


def test_bad_arguments():
    model = GPT(**SMALL)
    with pytest.raises(ValueError, match="N >= 1"):
        generate(model, torch.zeros(1, 0, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, torch.zeros(1, 1, dtype=torch.long), 3, temperature=-1)
    with pytest.raises(ValueError, match="top_k"):
        generate(model, torch.zeros(1, 1, dtype=torch.long), 3, top_k=0)
