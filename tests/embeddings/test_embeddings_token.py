"""TokenEmbedding: the seed's printed table, nn.Embedding compatibility, and clear errors for bad ids."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, strategies as st

import lmfeed.embeddings as E

# Printed by the seed: torch.manual_seed(123); torch.nn.Embedding(6, 3).weight
SEED_TABLE = [
    [0.3374, -0.1778, -0.1690],
    [0.9178, 1.5810, 1.3010],
    [1.2753, -0.2010, -0.1606],
    [-0.4015, 0.9666, -1.1481],
    [-1.1589, 0.3255, -0.6315],
    [-2.8400, -0.7849, -1.4096],
]


def test_seed_table_and_lookup_of_id_3() -> None:
    torch.manual_seed(123)
    emb = E.TokenEmbedding(6, 3)
    torch.testing.assert_close(emb.weight.detach(), torch.tensor(SEED_TABLE), atol=5e-5, rtol=0)
    row_3 = emb(torch.tensor([3])).detach()
    torch.testing.assert_close(row_3, torch.tensor([[-0.4015, 0.9666, -1.1481]]), atol=5e-5, rtol=0)


def test_same_seed_same_table_as_nn_embedding_and_state_dicts_swap() -> None:
    torch.manual_seed(7)
    ours = E.TokenEmbedding(100, 16)
    torch.manual_seed(7)
    theirs = torch.nn.Embedding(100, 16)
    assert torch.equal(ours.weight, theirs.weight)
    other = torch.nn.Embedding(100, 16)
    other.load_state_dict(ours.state_dict())
    ids = torch.tensor([[0, 99, 5]])
    assert torch.equal(other(ids), ours(ids))


def test_weights_are_trainable() -> None:
    emb = E.TokenEmbedding(10, 4)
    assert [name for name, p in emb.named_parameters() if p.requires_grad] == ["weight"]
    emb(torch.tensor([1, 1, 2])).sum().backward()
    assert emb.weight.grad[1].eq(2).all() and emb.weight.grad[2].eq(1).all() and emb.weight.grad[0].eq(0).all()


def test_gpt2_init_is_normal_with_std_002() -> None:
    torch.manual_seed(0)
    w = E.TokenEmbedding(50257, 64, init="gpt2").weight.detach()
    assert abs(w.mean().item()) < 1e-3
    assert abs(w.std().item() - 0.02) < 2e-4


@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64, torch.uint16])
def test_any_integer_dtype_is_used_as_int64(dtype: torch.dtype) -> None:
    emb = E.TokenEmbedding(50, 3)
    ids = torch.tensor([[0, 3, 49]], dtype=dtype)
    assert torch.equal(emb(ids), emb.weight[[0, 3, 49]].unsqueeze(0))


def test_uint8_ids_index_rows_not_a_mask() -> None:
    # torch treats a uint8 index as a boolean mask in some places; here 1 must mean row 1
    emb = E.TokenEmbedding(4, 2)
    assert torch.equal(emb(torch.tensor([1, 1], dtype=torch.uint8)), emb.weight[[1, 1]])


def test_id_past_vocab_names_value_limit_and_fix() -> None:
    emb = E.TokenEmbedding(50257, 8)
    with pytest.raises(ValueError) as info:
        emb(torch.tensor([[15496, 995], [50257, 1]]))
    message = str(info.value)
    assert "50,257" in message and "vocab_size" in message and "(1, 0)" in message and "tokenizer" in message


def test_negative_id() -> None:
    with pytest.raises(ValueError, match=r"negative.*-1.*index \(2,\)"):
        E.TokenEmbedding(10, 2)(torch.tensor([0, 1, -1]))


@pytest.mark.parametrize("bad", [torch.tensor([1.0, 2.0]), torch.tensor([True, False])])
def test_float_or_bool_ids_are_type_errors(bad: torch.Tensor) -> None:
    with pytest.raises(TypeError, match="integer ids.*dtype"):
        E.TokenEmbedding(10, 2)(bad)


def test_a_list_is_a_type_error_with_the_fix() -> None:
    with pytest.raises(TypeError, match=r"torch.as_tensor"):
        E.TokenEmbedding(10, 2)([1, 2])


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [((0, 3), {}, ValueError), ((6, 3.0), {}, TypeError), ((6, 3), {"init": "xavier"}, ValueError)],
)
def test_constructor_checks(args: tuple, kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        E.TokenEmbedding(*args, **kwargs)


def test_meta_device_then_to_empty_and_reset() -> None:
    with torch.device("meta"):
        emb = E.TokenEmbedding(6, 3)
    assert emb.weight.is_meta
    assert emb(torch.tensor([3], device="meta")).shape == (1, 3)  # shape-only forward works
    emb.to_empty(device="cpu")
    torch.manual_seed(123)
    emb.reset_parameters()
    torch.testing.assert_close(emb.weight.detach(), torch.tensor(SEED_TABLE), atol=5e-5, rtol=0)


@given(st.lists(st.integers(0, 999), min_size=1, max_size=20))
def test_lookup_is_row_selection(ids: list[int]) -> None:
    emb = E.TokenEmbedding(1000, 5)
    out = emb(torch.tensor(ids))
    for row, i in zip(out, ids, strict=True):
        assert torch.equal(row, emb.weight[i])


def test_reexported_from_lmfeed_as_the_issue_spells_it() -> None:
    import lmfeed

    torch.manual_seed(123)
    weight = lmfeed.TokenEmbedding(6, 3).weight
    torch.testing.assert_close(weight.detach()[0], torch.tensor([0.3374, -0.1778, -0.1690]), atol=5e-5, rtol=0)
    for name in ["LearnedPositionalEmbedding", "SinusoidalPositionalEmbedding", "InputEmbedding", "RotaryEmbedding",
                 "ALiBiBias", "RelativePositionBias", "CausalSelfAttention"]:
        assert getattr(lmfeed, name) is getattr(E, name) and name in lmfeed.__all__


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: E.TokenEmbedding(50257, 10**9),
         r"token embedding table is 50,257 x 1,000,000,000 values.*Lower embed_dim"),
        (lambda: E.LearnedPositionalEmbedding(10**12, 256), r"positional embedding table .* Lower context_length"),
    ],
)
def test_a_table_larger_than_memory_is_refused_before_allocating(build, match):
    with pytest.raises(ValueError, match=match):
        build()
