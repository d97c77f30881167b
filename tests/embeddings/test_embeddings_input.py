"""InputEmbedding and the absolute positional embeddings against the seed's pipeline and the paper's formula."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, strategies as st

import lmfeed.embeddings as E

# The seed's first batch: create_dataloader_v1(the-verdict.txt, batch_size=8, max_length=4, stride=4),
# GPT-2 ids of "I HAD always thought Jack Gisburn rather a cheap genius--though a good fellow enough--so it..."
SEED_INPUTS = torch.tensor(
    [
        [40, 367, 2885, 1464],
        [1807, 3619, 402, 271],
        [10899, 2138, 257, 7026],
        [15632, 438, 2016, 257],
        [922, 5891, 1576, 438],
        [568, 340, 373, 645],
        [1049, 5975, 284, 502],
        [284, 3285, 326, 11],
    ]
)


def seed_pipeline(seed: int) -> torch.Tensor:
    """The seed's code, verbatim in substance: two nn.Embedding layers, token first, then positions."""
    torch.manual_seed(seed)
    vocab_size, output_dim, max_length = 50257, 256, 4
    token_embedding_layer = torch.nn.Embedding(vocab_size, output_dim)
    token_embeddings = token_embedding_layer(SEED_INPUTS)
    context_length = max_length
    pos_embedding_layer = torch.nn.Embedding(context_length, output_dim)
    pos_embeddings = pos_embedding_layer(torch.arange(max_length))
    return token_embeddings + pos_embeddings


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_reproduces_the_seed_pipeline_exactly(mode: str) -> None:
    expected = seed_pipeline(123)
    torch.manual_seed(123)
    emb = E.InputEmbedding(50257, 256, context_length=4)
    emb.train(mode == "train")
    out = emb(SEED_INPUTS)
    assert out.shape == (8, 4, 256)
    assert torch.equal(out, expected)


def test_same_seed_same_token_table_as_token_embedding() -> None:
    torch.manual_seed(123)
    emb = E.InputEmbedding(6, 3, context_length=2, positional="sinusoidal")
    torch.manual_seed(123)
    assert torch.equal(emb.token_embedding.weight, torch.nn.Embedding(6, 3).weight)


def test_all_weights_trainable_and_receive_gradients() -> None:
    emb = E.InputEmbedding(100, 8, context_length=5)
    emb(torch.tensor([[1, 2, 3]])).sum().backward()
    grads = {name: p.grad for name, p in emb.named_parameters()}
    assert set(grads) == {"token_embedding.weight", "position_embedding.weight"}
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values())


def test_per_document_position_restarts_b_t() -> None:
    # a loader restarts positions at 0 after each <|endoftext|> (50256); positions (B, T)
    emb = E.InputEmbedding(50257, 16, context_length=4)
    ids = torch.tensor([[15496, 50256, 995, 11], [40, 367, 2885, 1464]])
    positions = torch.tensor([[0, 1, 0, 1], [0, 1, 2, 3]])
    out = emb(ids, position_ids=positions)
    tok, pos = emb.token_embedding.weight, emb.position_embedding.weight
    for b in range(2):
        for t in range(4):
            assert torch.equal(out[b, t], tok[ids[b, t]] + pos[positions[b, t]])


def test_offsets_agree_with_the_full_sequence() -> None:
    ids = torch.randint(0, 100, (3, 10))
    for positional in ("learned", "sinusoidal", "none"):
        emb = E.InputEmbedding(100, 12, context_length=10, positional=positional)
        full = emb(ids)
        for k in (0, 1, 6):
            part = emb(ids[:, k:], position_ids=torch.arange(k, 10))
            torch.testing.assert_close(part, full[:, k:], rtol=0, atol=1e-6)


def test_unbatched_ids() -> None:
    emb = E.InputEmbedding(10, 4, context_length=3)
    assert torch.equal(emb(torch.tensor([1, 2, 3])), emb(torch.tensor([[1, 2, 3]]))[0])


def test_sequence_longer_than_context_length() -> None:
    emb = E.InputEmbedding(10, 4, context_length=4, positional="sinusoidal")
    with pytest.raises(ValueError, match=r"5 tokens.*context_length=4.*windows"):
        emb(torch.zeros(2, 5, dtype=torch.long))


def test_learned_position_past_context_length() -> None:
    emb = E.InputEmbedding(10, 4, context_length=4)
    with pytest.raises(ValueError, match=r"context_length=4.*contains 4 .*larger context_length"):
        emb(torch.zeros(1, 2, dtype=torch.long), position_ids=torch.tensor([3, 4]))
    # sinusoidal has no table to run out of: a decoding step past context_length works
    sin = E.InputEmbedding(10, 4, context_length=4, positional="sinusoidal")
    assert sin(torch.zeros(1, 1, dtype=torch.long), position_ids=torch.tensor([4000])).shape == (1, 1, 4)


@pytest.mark.parametrize(
    ("ids", "positions", "error", "match"),
    [
        (torch.tensor([[1, 2]]), torch.tensor([0, 1, 2]), ValueError, r"shape \(3,\).*\(2,\) or \(1, 2\)"),
        (torch.tensor([[1, 2]]), torch.tensor([0.0, 1.0]), TypeError, "integer"),
        (torch.tensor([[1, 2]]), torch.tensor([-1, 0]), ValueError, "negative"),
        (torch.tensor([[1, 20]]), None, ValueError, "vocab_size=10"),
        (torch.tensor([[[1]]]), None, ValueError, r"\(B, T\) or \(T,\)"),
        (torch.tensor([[1.0, 2.0]]), None, TypeError, "integer ids"),
    ],
)
def test_bad_input(ids: torch.Tensor, positions: torch.Tensor | None, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        E.InputEmbedding(10, 4, context_length=4)(ids, position_ids=positions)


def test_none_is_token_embedding_only_and_has_no_positional_parameters() -> None:
    emb = E.InputEmbedding(10, 4, context_length=4, positional="none")
    assert emb.position_embedding is None
    ids = torch.tensor([[1, 2, 3]])
    assert torch.equal(emb(ids), emb.token_embedding(ids))
    assert [n for n, _ in emb.named_parameters()] == ["token_embedding.weight"]


def test_dropout_zeroes_and_scales_in_training_only() -> None:
    emb = E.InputEmbedding(10, 64, context_length=4, dropout=0.5)
    ids = torch.tensor([[1, 2, 3, 4]])
    emb.eval()
    clean = emb(ids)
    emb.train()
    noisy = emb(ids)
    kept = noisy != 0
    assert 0 < kept.float().mean() < 1
    torch.testing.assert_close(noisy[kept], 2 * clean[kept])


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="positional"):
        E.InputEmbedding(10, 4, 4, positional="rope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dropout"):
        E.InputEmbedding(10, 4, 4, dropout=1.5)


def test_meta_device_then_to_empty_and_reset_repeats_the_seed() -> None:
    with torch.device("meta"):
        emb = E.InputEmbedding(50257, 256, context_length=4)
    assert emb(SEED_INPUTS.to("meta")).shape == (8, 4, 256)
    emb.to_empty(device="cpu")
    torch.manual_seed(123)
    emb.reset_parameters()
    assert torch.equal(emb(SEED_INPUTS), seed_pipeline(123))


def test_bf16_tables_with_sinusoidal_positions() -> None:
    emb = E.InputEmbedding(10, 8, context_length=600, positional="sinusoidal", dtype=torch.bfloat16)
    out = emb(torch.zeros(1, 600, dtype=torch.long))
    assert out.dtype == torch.bfloat16
    # computed in float32: positions past 256 still differ (in bfloat16 257.0 == 256.0)
    assert not torch.equal(out[0, 256], out[0, 257])


# ---- absolute positional embeddings on their own


def paper_pe(pos: int, dim: int, embed_dim: int, base: float = 10000.0) -> float:
    """Vaswani et al. 3.5: PE(pos, 2i) = sin(pos / base^(2i/D)), PE(pos, 2i+1) = cos(pos / base^(2i/D))."""
    i = dim // 2
    angle = pos / base ** (2 * i / embed_dim)
    return math.sin(angle) if dim % 2 == 0 else math.cos(angle)


@pytest.mark.parametrize("embed_dim", [4, 7, 256])
@pytest.mark.parametrize("pos", [0, 1, 2, 17, 255, 1000])
def test_sinusoidal_values_match_the_paper(pos: int, embed_dim: int) -> None:
    pe = E.SinusoidalPositionalEmbedding(embed_dim)(torch.tensor([pos]))[0]
    assert pe.shape == (embed_dim,)
    expected = torch.tensor([paper_pe(pos, d, embed_dim) for d in range(embed_dim)])
    torch.testing.assert_close(pe, expected, rtol=0, atol=2e-4)


def test_sinusoidal_has_no_parameters_and_honours_base_and_dtype() -> None:
    pe = E.SinusoidalPositionalEmbedding(6, base=100.0)
    assert list(pe.parameters()) == [] and pe.state_dict() == {}
    out = pe(torch.tensor([[3, 5]]), dtype=torch.float64)
    assert out.shape == (1, 2, 6) and out.dtype == torch.float64
    assert out[0, 1, 2].item() == pytest.approx(math.sin(5 / 100.0 ** (2 / 6)), abs=1e-6)


def test_learned_positional_is_the_seeds_pos_embedding_layer() -> None:
    torch.manual_seed(5)
    ours = E.LearnedPositionalEmbedding(4, 256)
    torch.manual_seed(5)
    theirs = torch.nn.Embedding(4, 256)
    assert torch.equal(ours(torch.arange(4)), theirs(torch.arange(4)))
    assert ours(torch.tensor([[0, 1], [2, 3]])).shape == (2, 2, 256)


def test_meta_device_creation_of_positional_modules() -> None:
    with torch.device("meta"):
        learned = E.LearnedPositionalEmbedding(8, 4)
        sinusoidal = E.SinusoidalPositionalEmbedding(4)
    learned.to_empty(device="cpu")
    learned.reset_parameters()
    assert torch.isfinite(learned.weight).all()
    assert sinusoidal(torch.arange(3)).shape == (3, 4)


@given(st.integers(0, 100_000), st.integers(1, 64))
def test_sinusoidal_pairs_lie_on_the_unit_circle(pos: int, half: int) -> None:
    pe = E.SinusoidalPositionalEmbedding(2 * half)(torch.tensor([pos]))[0].double()
    torch.testing.assert_close(pe[0::2] ** 2 + pe[1::2] ** 2, torch.ones(half, dtype=torch.float64), rtol=0, atol=1e-6)


def test_at_gpt2_init_the_sinusoid_has_a_learned_tables_scale():
    # unit amplitude would be 35x tokens drawn N(0, 0.02^2) and drown them: a small GPT then learns nothing
    from lmfeed.embeddings.absolute import SinusoidalPositionalEmbedding, sinusoidal_table

    positions = torch.arange(64)
    unit = sinusoidal_table(positions, 128)
    gpt2 = E.InputEmbedding(1000, 128, 64, positional="sinusoidal", init="gpt2").position_embedding
    seed = E.InputEmbedding(1000, 128, 64, positional="sinusoidal").position_embedding
    assert torch.equal(seed(positions), unit)  # the seed's nn.Embedding scale: the paper's table, unchanged
    assert torch.allclose(gpt2(positions), unit * 0.02 * math.sqrt(2))
    assert abs(float(gpt2(positions).pow(2).mean().sqrt()) - 0.02) < 1e-3  # rms 0.02, as N(0, 0.02^2) has
    assert "scale=0.0282843" in repr(gpt2)
    for bad in (0, -1.0, float("nan"), True, "1"):
        with pytest.raises(ValueError, match="scale must be a positive number"):
            SinusoidalPositionalEmbedding(128, scale=bad)
