"""Transformer-XL's relative attention against Dai et al. 2019 section 3.3 written out (float64, loops over i and j),
term by term, with and without memory; against transformers' XLNet attention core (the same relative attention);
and segment recurrence: two segments with memory equal one pass over both."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

import lmfeed.embeddings as E
from lmfeed.embeddings.transformer_xl import TransformerXLPositions


def sinusoid(distance: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """r_d = [sin(d / base^(2m/D)) for m < D/2] + [cos(same)], float64 (the reference's PositionalEmbedding)."""
    angles = [distance / base ** (2 * m / dim) for m in range(dim // 2)]
    return torch.tensor([math.sin(a) for a in angles] + [math.cos(a) for a in angles], dtype=torch.float64)


def formula_terms(xl, q, k, query_positions, key_positions):
    """The four terms for one batch row: {a, b, c, d} each (H, T_q, T_k), float64 loops."""
    heads, length_q, head_dim = q.shape
    length_k = k.shape[1]
    terms = {name: torch.empty(heads, length_q, length_k, dtype=torch.float64) for name in "abcd"}
    w_r = xl.r_net.weight.double()
    for i in range(length_q):
        for j in range(length_k):
            wr = (w_r @ sinusoid(int(query_positions[i]) - int(key_positions[j]), xl.embed_dim)).view(heads, head_dim)
            for h in range(heads):
                terms["a"][h, i, j] = q[h, i] @ k[h, j]
                terms["b"][h, i, j] = q[h, i] @ wr[h]
                terms["c"][h, i, j] = xl.u[h].double() @ k[h, j]
                terms["d"][h, i, j] = xl.v[h].double() @ wr[h]
    return terms


def layer_written_out(attn, x, *, memory=None, position_ids=None):
    """CausalSelfAttention(positional="xl") in float64 loops: memory is the previous segment's layer input (its
    keys and values are W_k, W_v of it), distances count across the boundary, query i sees memory + keys j <= i."""
    batch, length, dim = x.shape
    heads, head_dim = attn.num_heads, dim // attn.num_heads
    past = 0 if memory is None else memory.shape[1]
    full = x if memory is None else torch.cat([memory, x], dim=1)
    positions = torch.arange(past + length) if position_ids is None else position_ids
    q = (x @ attn.qkv.weight.T + attn.qkv.bias)[..., :dim]
    _, k, v = (full @ attn.qkv.weight.T + attn.qkv.bias).split(dim, dim=-1)
    split = lambda t: t.view(batch, -1, heads, head_dim).transpose(1, 2)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    y = torch.empty(batch, heads, length, head_dim, dtype=torch.float64)
    for b in range(batch):
        terms = formula_terms(attn.xl, q[b], k[b], positions[past:], positions)
        logits = sum(terms.values()) / math.sqrt(head_dim)
        for i in range(length):
            logits[:, i, past + i + 1:] = -math.inf
        y[b] = logits.softmax(-1) @ v[b]
    return y.transpose(1, 2).reshape(batch, length, dim) @ attn.out.weight.T + attn.out.bias


def make_layer(dim=16, heads=2, seed=0):
    torch.manual_seed(seed)
    attn = E.CausalSelfAttention(dim, heads, positional="xl").double()
    with torch.no_grad():  # u and v start at 0.02: make them large enough that a wrong term would show
        torch.nn.init.normal_(attn.xl.u, std=1.0)
        torch.nn.init.normal_(attn.xl.v, std=1.0)
    return attn


def test_each_of_the_four_terms_matches_the_paper() -> None:
    attn = make_layer()
    xl = attn.xl
    q, k = torch.randn(1, 2, 5, 8, dtype=torch.float64), torch.randn(1, 2, 9, 8, dtype=torch.float64)
    query_positions, key_positions = torch.arange(4, 9), torch.arange(9)  # 4 tokens of memory
    with torch.no_grad():
        got = xl.terms(q, k, query_positions, key_positions)
        want = formula_terms(xl, q[0], k[0], query_positions, key_positions)
        for name in "abcd":
            torch.testing.assert_close(got[name][0], want[name], rtol=1e-10, atol=1e-10, msg=name)
        # the fast path: (q + u) . k gives a + c, forward gives b + d
        torch.testing.assert_close((xl.content_query(q) @ k.transpose(-1, -2))[0], want["a"] + want["c"])
        torch.testing.assert_close(xl(q, query_positions, key_positions)[0], want["b"] + want["d"])
        # positions that restart (no run: a gather instead of the relative shift), bidirectional
        restarted = torch.tensor([0, 1, 2, 0, 1, 2, 3, 4, 5])
        want = formula_terms(xl, q[0], k[0], restarted[4:], restarted)
        torch.testing.assert_close(xl(q, restarted[4:], restarted)[0], want["b"] + want["d"])


def test_r_is_the_sinusoid_and_not_learned() -> None:
    xl = TransformerXLPositions(8, 2)
    want = torch.stack([sinusoid(3, 8), sinusoid(-2, 8)])
    torch.testing.assert_close(xl.encoding(torch.tensor([3, -2])), want)
    assert {n for n, _ in xl.named_parameters()} == {"r_net.weight", "u", "v"}


def test_layer_matches_the_paper_without_memory() -> None:
    attn = make_layer()
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(attn(x), layer_written_out(attn, x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("max_length", [None, 3])  # the whole previous segment, or its last 3 tokens (mem_len)
def test_layer_matches_the_paper_with_memory(max_length: int | None) -> None:
    attn = make_layer()
    first, second = torch.randn(2, 5, 16, dtype=torch.float64), torch.randn(2, 4, 16, dtype=torch.float64)
    cache = E.KVCache(max_length=max_length)
    with torch.no_grad():
        attn(first, kv_cache=cache)
        got = attn(second, kv_cache=cache)
        memory = first if max_length is None else first[:, -max_length:]
        positions = torch.arange(5 + 4)[-(memory.shape[1] + 4):]  # the memory's own positions, then 5..8
        torch.testing.assert_close(got, layer_written_out(attn, second, memory=memory, position_ids=positions),
                                   rtol=1e-10, atol=1e-10)
    assert len(cache) == (9 if max_length is None else 3)


def test_two_segments_with_memory_equal_one_pass_over_both() -> None:
    torch.manual_seed(3)
    attn = E.CausalSelfAttention(32, 4, positional="xl")
    x = torch.randn(2, 12, 32)
    cache = E.KVCache(max_length=8)
    with torch.no_grad():
        whole = attn(x)
        first = attn(x[:, :8], kv_cache=cache)
        second = attn(x[:, 8:], kv_cache=cache)
    torch.testing.assert_close(first, whole[:, :8], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(second, whole[:, 8:], rtol=1e-5, atol=1e-6)


def test_attention_equals_transformers_xlnet_relative_attention_core() -> None:
    """XLNet's rel_attn_core is Transformer-XL's: (q + r_w_bias) . k + rel_shift((q + r_r_bias) . W_R r)."""
    xlnet = pytest.importorskip("transformers.models.xlnet.modeling_xlnet")
    from transformers import XLNetConfig

    dim, heads, batch, past, length = 32, 4, 2, 5, 6
    head_dim = dim // heads
    torch.manual_seed(4)
    attn = E.CausalSelfAttention(dim, heads, positional="xl").eval()
    with torch.no_grad():
        attn.qkv.bias.zero_()  # XLNet's projections have no bias
        torch.nn.init.normal_(attn.xl.u, std=0.5)
        torch.nn.init.normal_(attn.xl.v, std=0.5)
    reference = xlnet.XLNetRelativeAttention(XLNetConfig(d_model=dim, n_head=heads, d_head=head_dim, dropout=0.0))
    reference.eval()
    heads_of = lambda w: w.T.reshape(dim, heads, head_dim)  # noqa: E731 - nn.Linear (out, in) -> XLNet's (in, n, d)
    wq, wk, wv = attn.qkv.weight.split(dim)
    with torch.no_grad():
        reference.q.copy_(heads_of(wq))
        reference.k.copy_(heads_of(wk))
        reference.v.copy_(heads_of(wv))
        reference.r.copy_(heads_of(attn.xl.r_net.weight))
        reference.r_w_bias.copy_(attn.xl.u)
        reference.r_r_bias.copy_(attn.xl.v)

    memory, x = torch.randn(batch, past, dim), torch.randn(batch, length, dim)
    cache = E.KVCache()
    with torch.no_grad():
        attn(memory, kv_cache=cache)
        ours = attn(x, kv_cache=cache)
        # XLNet's layout is (T, B, ...); its memory is the previous segment's layer input
        h, cat = x.transpose(0, 1), torch.cat([memory, x], dim=1).transpose(0, 1)
        q_head = torch.einsum("ibh,hnd->ibnd", h, reference.q)
        k_head = torch.einsum("ibh,hnd->ibnd", cat, reference.k)
        v_head = torch.einsum("ibh,hnd->ibnd", cat, reference.v)
        settings = SimpleNamespace(d_model=dim, attn_type="uni", bi_data=False, clamp_len=-1,
                                   positional_embedding=xlnet.XLNetModel.positional_embedding)
        pos_emb = xlnet.XLNetModel.relative_positional_encoding(settings, length, past + length, bsz=batch)
        k_head_r = torch.einsum("ibh,hnd->ibnd", pos_emb, reference.r)
        mask = torch.ones(length, past + length).triu_(past + 1)[:, :, None, None]  # XLNetModel.create_mask
        vec, prob = reference.rel_attn_core(q_head, k_head, v_head, k_head_r, attn_mask=mask, output_attentions=True)
        theirs = attn.out(vec.permute(1, 0, 2, 3).reshape(batch, length, dim))
        # our attention weights, from the scores our modules give
        q, k, _ = (t.view(batch, -1, heads, head_dim).transpose(1, 2) for t in attn.qkv(x).split(dim, dim=-1))
        keys = cache.keys
        positions = torch.arange(past + length)
        scores = (attn.xl.content_query(q) @ keys.transpose(-1, -2) + attn.xl(q, positions[past:], positions))
        scores = (scores / math.sqrt(head_dim)).masked_fill(mask[:, :, 0, 0].bool(), -math.inf)
    torch.testing.assert_close(scores.softmax(-1), prob.permute(2, 3, 0, 1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_odd_width_is_refused() -> None:
    with pytest.raises(ValueError, match=r"even embed_dim .* embed_dim=9, num_heads=3.*Use e\.g\. embed_dim=12"):
        E.CausalSelfAttention(9, 3, positional="xl")


def test_every_weight_learns() -> None:
    torch.manual_seed(0)
    attn = E.CausalSelfAttention(16, 2, positional="xl")
    cache = E.KVCache()
    x = torch.randn(2, 6, 16)
    attn(x[:, :3], kv_cache=cache)
    attn(x[:, 3:], kv_cache=cache).square().sum().backward()
    grads = {n: p.grad for n, p in attn.named_parameters()}
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values()), [n for n, g in grads.items() if g is None]
    assert cache.keys is not None and not cache.keys.requires_grad  # the memory is a stop-gradient
