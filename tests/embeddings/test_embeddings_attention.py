"""CausalSelfAttention with each position scheme against attention written out by hand; describe_positional."""

from __future__ import annotations

import math

import pytest
import torch

import lmfeed.embeddings as E
from lmfeed.embeddings.attention import SCHEMES as SCHEMES_OFFERED

SCHEMES = [None, "rope", "alibi", "t5"]  # written out below; the distance-table schemes have their own test files
EVERY = list(SCHEMES_OFFERED)  # every scheme CausalSelfAttention offers


def manual_attention(attn: E.CausalSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + bias + causal mask) v, with the layer's own weights and scheme modules."""
    batch, length, dim = x.shape
    heads, head_dim = attn.num_heads, dim // attn.num_heads
    q, k, v = (x @ attn.qkv.weight.T + attn.qkv.bias).split(dim, dim=-1)
    q, k, v = (t.view(batch, length, heads, head_dim).transpose(1, 2) for t in (q, k, v))
    if attn.positional == "rope":
        q, k = attn.rope(q, k)
    logits = q @ k.transpose(-1, -2) / math.sqrt(head_dim)  # (B, H, T, T)
    if attn.positional == "alibi":
        slopes = attn.alibi.slopes.view(-1, 1, 1)
        i, j = torch.arange(length).view(-1, 1), torch.arange(length).view(1, -1)
        logits = logits - slopes * (i - j).abs()
    elif attn.positional == "t5":
        weight = attn.t5.weight
        for i in range(length):
            for j in range(length):
                n = max(i - j, 0)  # causal T5: distance to an earlier key
                bucket = n if n < 16 else min(16 + int(math.log(n / 16) / math.log(128 / 16) * 16), 31)
                logits[:, :, i, j] += weight[bucket]
    future = torch.ones(length, length, dtype=torch.bool).triu(1)
    weights = logits.masked_fill(future, float("-inf")).softmax(dim=-1)
    y = (weights @ v).transpose(1, 2).reshape(batch, length, dim)
    return y @ attn.out.weight.T + attn.out.bias


@pytest.mark.parametrize("positional", SCHEMES)
def test_matches_attention_written_out(positional: str | None) -> None:
    torch.manual_seed(0)
    attn = E.CausalSelfAttention(32, 4, positional=positional)
    x = torch.randn(2, 40, 32)  # 40 > 16: T5's log-spaced buckets are exercised too
    with torch.no_grad():
        torch.testing.assert_close(attn(x), manual_attention(attn, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("positional", EVERY)
def test_causal_future_tokens_do_not_change_the_past(positional: str | None) -> None:
    attn = E.CausalSelfAttention(16, 2, positional=positional)
    x = torch.randn(1, 6, 16)
    y = x.clone()
    y[:, 4:] = torch.randn(1, 2, 16)
    with torch.no_grad():
        torch.testing.assert_close(attn(x)[:, :4], attn(y)[:, :4])
        assert not torch.allclose(attn(x)[:, 4:], attn(y)[:, 4:])


@pytest.mark.parametrize("positional", ["rope", "alibi", "t5"])
def test_relative_schemes_ignore_a_common_offset_and_see_order(positional: str) -> None:
    attn = E.CausalSelfAttention(16, 4, positional=positional)
    x = torch.randn(2, 7, 16)
    with torch.no_grad():
        base = attn(x)
        torch.testing.assert_close(attn(x, position_ids=torch.arange(500, 507)), base, rtol=1e-4, atol=1e-4)
        # per-row positions (B, T): a restart after an end-of-text token changes what follows it
        restarted = attn(x, position_ids=torch.tensor([[0, 1, 2, 0, 1, 2, 3], [0, 1, 2, 3, 4, 5, 6]]))
    torch.testing.assert_close(restarted[1], base[1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(restarted[0, :3], base[0, :3], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(restarted[0, 3:], base[0, 3:], rtol=1e-4, atol=1e-4)


def test_relative_front_end_trains() -> None:
    # InputEmbedding(positional="none") + CausalSelfAttention(positional="rope"): every weight learns
    torch.manual_seed(0)
    emb = E.InputEmbedding(50257, 32, context_length=4, positional="none")
    attn = E.CausalSelfAttention(32, 4, positional="rope")
    head = torch.nn.Linear(32, 50257)
    ids = torch.tensor([[40, 367, 2885, 1464], [1807, 3619, 402, 271]])
    targets = torch.tensor([[367, 2885, 1464, 1807], [3619, 402, 271, 10899]])
    params = [*emb.parameters(), *attn.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    losses = []
    for _ in range(15):
        logits = head(attn(emb(ids)))
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        optimizer.zero_grad()
        loss.backward()
        if not losses:
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in [*emb.parameters(), *attn.parameters()])
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_dropout_only_while_training() -> None:
    attn = E.CausalSelfAttention(16, 2, dropout=0.5)
    x = torch.randn(1, 5, 16)
    attn.eval()
    assert torch.equal(attn(x), attn(x))
    attn.train()
    assert not torch.equal(attn(x), attn(x))


@pytest.mark.parametrize("positional", EVERY)
def test_meta_device_creation(positional: str | None) -> None:
    with torch.device("meta"):
        attn = E.CausalSelfAttention(16, 4, positional=positional)
    attn.to_empty(device="cpu")
    attn.reset_parameters()
    assert all(torch.isfinite(t).all() for t in [*attn.parameters(), *attn.buffers()])
    if positional == "alibi":
        assert torch.equal(attn.alibi.slopes, E.ALiBiBias(4).slopes)
    assert attn(torch.randn(1, 3, 16)).shape == (1, 3, 16)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"embed_dim": 30, "num_heads": 4}, ValueError, "not divisible by num_heads=4"),
        ({"embed_dim": 12, "num_heads": 4, "positional": "rope"}, ValueError,
         r"head_dim = embed_dim / num_heads must be even, but embed_dim=12 / num_heads=4 = 3"),
        ({"embed_dim": 16, "num_heads": 4, "positional": "learned"}, ValueError, "Choose one of"),
    ],
)
def test_bad_construction(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        E.CausalSelfAttention(**kwargs)


def test_bad_input() -> None:
    attn = E.CausalSelfAttention(16, 4, positional="alibi")
    with pytest.raises(ValueError, match=r"\(B, T, embed_dim=16\).*unsqueeze"):
        attn(torch.randn(5, 16))
    with pytest.raises(ValueError, match=r"position_ids has shape \(4,\)"):
        attn(torch.randn(1, 5, 16), position_ids=torch.arange(4))
    with pytest.raises(TypeError, match="floating tensor .* but got dtype torch.int64. Embed token ids first"):
        attn(torch.ones(1, 5, 16, dtype=torch.long))


# ---- describe_positional: what `lmfeed demo --positional KIND` shows


@pytest.mark.parametrize("kind", E.positional_kinds())
def test_describe_names_the_scheme_and_keeps_the_callers_rng(kind: str) -> None:
    torch.manual_seed(9)
    text = E.describe_positional(kind)
    after = torch.rand(1)
    torch.manual_seed(9)
    assert torch.equal(after, torch.rand(1))  # the caller's random state is untouched
    assert text.startswith(f"{kind}: ") and text == E.describe_positional(kind)


def test_describe_shows_real_values() -> None:
    sinusoidal = E.describe_positional("sinusoidal", embed_dim=4, length=3)  # 10000^(2/4) = 100
    values = ", ".join(f"{v:+.4f}" for v in (math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)))
    assert f"position 2: [{values}]" in sinusoidal
    learned = E.describe_positional("learned", embed_dim=3, length=2)  # labelled as its own example table
    torch.manual_seed(123)
    first = ", ".join(f"{v:+.4f}" for v in torch.nn.Embedding(2, 3).weight[0].tolist())  # the seed's [0.3374, ...]
    assert "a fresh 2 x 3 table drawn under torch.manual_seed(123)" in learned and f"position 0: [{first}]" in learned
    alibi = E.describe_positional("alibi", num_heads=8)
    assert "slopes (8 heads): 0.5, 0.25, 0.125" in alibi and "[-1.5000, -1.0000, -0.5000, +0.0000]" in alibi
    with pytest.raises(ValueError, match="Choose one of"):
        E.describe_positional("xpos")
