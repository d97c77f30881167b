"""BERT's relative_key and relative_key_query against the formulas written out (float64, loops over i and j), against
an independent public implementation (transformers' Wav2Vec2-BERT relative_key), and in CausalSelfAttention."""

from __future__ import annotations

import math

import pytest
import torch

import lmfeed.embeddings as E
from lmfeed.embeddings.relative_key import RelativeKeyPositions


def formula_logits(q, k, table, max_distance, query_positions, key_positions, *, key_query, causal):
    """(q_i . k_j + q_i . r_{i-j} [+ k_j . r_{i-j}]) / sqrt(head_dim), r_d = table[clip(d) + max_distance - 1].

    q: (T_q, head_dim), k: (T_k, head_dim), float64; causal: -inf where key j comes after query i (by order,
    the queries being the last T_q keys). Shaw et al. 2018, eq. 4 with a_ij^K = r_{clip(i - j)}; Huang et al. 2020.
    """
    length_q, length_k = q.shape[0], k.shape[0]
    out = torch.empty(length_q, length_k, dtype=torch.float64)
    for i in range(length_q):
        for j in range(length_k):
            d = int(query_positions[i]) - int(key_positions[j])
            d = max(-(max_distance - 1), min(max_distance - 1, d))
            r = table[d + max_distance - 1]
            score = float(q[i] @ k[j]) + float(q[i] @ r) + (float(k[j] @ r) if key_query else 0.0)
            out[i, j] = score / math.sqrt(q.shape[1])
            if causal and j > length_k - length_q + i:
                out[i, j] = -math.inf
    return out


def attention_written_out(attn, x, *, causal=True, position_ids=None):
    """The whole layer in float64 loops: q, k, v from attn.qkv, formula_logits, softmax, v, attn.out."""
    batch, length, dim = x.shape
    heads, head_dim = attn.num_heads, dim // attn.num_heads
    rk = attn.relative_key
    positions = torch.arange(length) if position_ids is None else position_ids
    q, k, v = (x @ attn.qkv.weight.T + attn.qkv.bias).split(dim, dim=-1)
    y = torch.empty(batch, length, dim, dtype=torch.float64)
    for b in range(batch):
        for h in range(heads):
            cols = slice(h * head_dim, (h + 1) * head_dim)
            logits = formula_logits(q[b, :, cols], k[b, :, cols], rk.weight, rk.max_distance, positions, positions,
                                    key_query=rk.key_query, causal=causal)
            y[b, :, cols] = logits.softmax(-1) @ v[b, :, cols]
    return y @ attn.out.weight.T + attn.out.bias


@pytest.mark.parametrize("key_query", [False, True])
@pytest.mark.parametrize("max_distance", [1, 3, 50])  # 1: one shared vector; 3 < T: clipped; 50 > T: never clipped
@pytest.mark.parametrize("runs", [True, False])  # one run of positions (the relative shift) or restarts (a gather)
def test_terms_match_the_formula_bidirectional(key_query: bool, max_distance: int, runs: bool) -> None:
    torch.manual_seed(0)
    rk = RelativeKeyPositions(8, max_distance=max_distance, key_query=key_query).double()
    q, k = torch.randn(2, 3, 7, 8, dtype=torch.float64), torch.randn(2, 3, 9, 8, dtype=torch.float64)
    key_positions = torch.arange(9) if runs else torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 4])
    query_positions = key_positions[2:]
    with torch.no_grad():
        got = (q @ k.transpose(-1, -2) + rk(q, k, query_positions, key_positions)) / math.sqrt(8)
        for b in range(2):
            for h in range(3):
                want = formula_logits(q[b, h], k[b, h], rk.weight, max_distance, query_positions, key_positions,
                                      key_query=key_query, causal=False)
                torch.testing.assert_close(got[b, h], want, rtol=1e-12, atol=1e-12)


def test_clipping_at_max_distance() -> None:
    rk = RelativeKeyPositions(4, max_distance=3)
    assert rk.weight.shape == (5, 4) and rk.distances().tolist() == [-2, -1, 0, 1, 2]
    index = rk.index(torch.arange(6), torch.arange(6))
    assert index[5].tolist() == [4, 4, 4, 4, 3, 2] and index[0].tolist() == [2, 1, 0, 0, 0, 0]
    # every distance past the edge reads the edge row: its q . r is the edge's
    q = torch.randn(1, 1, 1, 4)
    k = torch.randn(1, 1, 40, 4)
    with torch.no_grad():
        term = rk(q, k, torch.tensor([39]), torch.arange(40))[0, 0, 0]
    torch.testing.assert_close(term[:38], (q[0, 0, 0] @ rk.weight[4]).expand(38))


@pytest.mark.parametrize("positional", ["relative_key", "relative_key_query"])
def test_causal_layer_matches_the_formula(positional: str) -> None:
    torch.manual_seed(1)
    attn = E.CausalSelfAttention(16, 2, positional=positional, max_distance=4).double()
    x = torch.randn(2, 9, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.nn.init.normal_(attn.relative_key.weight, std=1.0)  # large enough that a wrong row would show
        torch.testing.assert_close(attn(x), attention_written_out(attn, x), rtol=1e-10, atol=1e-10)
        # positions that restart (two documents' positions, no document mask): distances from the positions
        positions = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 4])
        torch.testing.assert_close(attn(x, positions), attention_written_out(attn, x, position_ids=positions),
                                   rtol=1e-10, atol=1e-10)


def test_bidirectional_attention_equals_transformers_wav2vec2_bert_relative_key() -> None:
    """transformers 5 dropped BERT's relative_key; Wav2Vec2-BERT keeps Shaw's, with distance j - i (rows flipped)."""
    w2v = pytest.importorskip("transformers.models.wav2vec2_bert.modeling_wav2vec2_bert")
    from transformers import Wav2Vec2BertConfig

    dim, heads, max_distance, length = 32, 4, 5, 12
    config = Wav2Vec2BertConfig(hidden_size=dim, num_attention_heads=heads, position_embeddings_type="relative_key",
                                left_max_position_embeddings=max_distance - 1,
                                right_max_position_embeddings=max_distance - 1, attention_dropout=0.0)
    config._attn_implementation = "eager"
    torch.manual_seed(2)
    reference = w2v.Wav2Vec2BertSelfAttention(config).eval()
    attn = E.CausalSelfAttention(dim, heads, positional="relative_key", max_distance=max_distance).eval()
    with torch.no_grad():
        torch.nn.init.normal_(attn.relative_key.weight, std=0.5)
        wq, wk, wv = attn.qkv.weight.split(dim)
        bq, bk, bv = attn.qkv.bias.split(dim)
        for linear, w, b in ((reference.linear_q, wq, bq), (reference.linear_k, wk, bk), (reference.linear_v, wv, bv),
                             (reference.linear_out, attn.out.weight, attn.out.bias)):
            linear.weight.copy_(w)
            linear.bias.copy_(b)
        reference.distance_embedding.weight.copy_(attn.relative_key.weight.flip(0))  # row of j - i = ours of i - j
    x = torch.randn(2, length, dim)
    future = torch.ones(length, length, dtype=torch.bool).triu(1)
    with torch.no_grad():
        # bidirectional: the scores and weights of our module against the reference's
        q, k, v = (t.view(2, length, heads, dim // heads).transpose(1, 2) for t in attn.qkv(x).split(dim, dim=-1))
        ours = (q @ k.transpose(-1, -2) + attn.relative_key(q, k)) / math.sqrt(dim // heads)
        _, weights = reference(x, output_attentions=True)
        torch.testing.assert_close(ours.softmax(-1), weights, rtol=1e-5, atol=1e-5)
        # causal: the whole layer against the reference given a causal mask
        causal = torch.zeros(1, 1, length, length).masked_fill(future, torch.finfo(torch.float32).min)
        out, _ = reference(x, attention_mask=causal)
        torch.testing.assert_close(attn(x), out, rtol=1e-5, atol=1e-5)


def test_hugging_face_bert_no_longer_has_relative_key() -> None:
    """Says so if it comes back: then BertSelfAttention should become the reference of both variants."""
    bert = pytest.importorskip("transformers.models.bert.modeling_bert")
    from transformers import BertConfig

    layer = bert.BertSelfAttention(BertConfig(hidden_size=16, num_attention_heads=2))
    assert not hasattr(layer, "distance_embedding")


@pytest.mark.parametrize("positional", ["relative_key", "relative_key_query"])
def test_max_distance_below_one_is_refused(positional: str) -> None:
    with pytest.raises(ValueError, match=r"max_distance must be at least 1, but got 0\. .*max_distance=512"):
        E.CausalSelfAttention(16, 2, positional=positional, max_distance=0)
    with pytest.raises(TypeError, match="max_distance must be an integer"):
        RelativeKeyPositions(8, max_distance=2.5)  # type: ignore[arg-type]


def test_trains_its_table() -> None:
    torch.manual_seed(0)
    attn = E.CausalSelfAttention(16, 2, positional="relative_key_query", max_distance=8)
    x = torch.randn(2, 6, 16)
    attn(x).square().sum().backward()
    grad = attn.relative_key.weight.grad
    assert grad is not None
    # causal, positions 0..5: distances 0..5 were read (rows 7..12), nothing else
    used = grad.abs().sum(-1) > 0
    assert used.nonzero().flatten().tolist() == list(range(7, 13))
