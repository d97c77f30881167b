"""RotaryEmbedding against an independent complex-number RoPE, and RoPE's defining properties."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, strategies as st

import lmfeed.embeddings as E


def complex_rope(x: torch.Tensor, positions: torch.Tensor, convention: str, base: float = 10000.0) -> torch.Tensor:
    """RoPE as the paper writes it: multiply each pair, read as a complex number, by exp(i * pos * theta_j).

    float64 throughout; ``x`` is ``(..., T, d)``, ``positions`` is ``(T,)``.
    """
    d = x.shape[-1]
    theta = torch.tensor([base ** (-2 * j / d) for j in range(d // 2)], dtype=torch.float64)
    phase = torch.polar(torch.ones(len(positions), d // 2, dtype=torch.float64), positions.double()[:, None] * theta)
    x = x.double()
    if convention == "interleaved":
        z = torch.complex(x[..., 0::2], x[..., 1::2]) * phase
        return torch.stack((z.real, z.imag), dim=-1).flatten(-2)
    z = torch.complex(x[..., : d // 2], x[..., d // 2 :]) * phase
    return torch.cat((z.real, z.imag), dim=-1)


@pytest.mark.parametrize("convention", ["half", "interleaved"])
def test_matches_the_complex_formula(convention: str) -> None:
    torch.manual_seed(0)
    q, k = torch.randn(2, 3, 9, 16), torch.randn(2, 3, 9, 16)
    positions = torch.tensor([0, 1, 2, 3, 10, 100, 255, 256, 1000])
    rope = E.RotaryEmbedding(16, convention=convention)
    q_rot, k_rot = rope(q, k, position_ids=positions)
    torch.testing.assert_close(q_rot.double(), complex_rope(q, positions, convention), rtol=0, atol=1e-4)
    torch.testing.assert_close(k_rot.double(), complex_rope(k, positions, convention), rtol=0, atol=1e-4)


@pytest.mark.parametrize("convention", ["half", "interleaved"])
def test_score_depends_only_on_the_offset(convention: str) -> None:
    torch.manual_seed(1)
    head_dim = 64
    rope = E.RotaryEmbedding(head_dim, convention=convention)
    q, k = torch.randn(head_dim), torch.randn(head_dim)
    scale = (q.norm() * k.norm()).item()

    def score(m: int, n: int) -> float:
        q_rot = rope.rotate(q.view(1, 1, 1, -1), torch.tensor([m]))
        k_rot = rope.rotate(k.view(1, 1, 1, -1), torch.tensor([n]))
        return (q_rot * k_rot).sum().item()

    for m, n in [(0, 0), (5, 2), (2, 5), (37, 0), (0, 37), (900, 1000)]:
        reference = score(m - min(m, n), n - min(m, n))
        for offset in (1, 10, 100, 1000):
            assert abs(score(m + offset, n + offset) - reference) <= 1e-5 * scale + 1e-4, (m, n, offset)
    # and it does depend on the offset m - n (so the test above could fail)
    assert abs(score(5, 2) - score(2, 5)) > 1e-3 * scale


def test_identity_at_position_zero() -> None:
    x = torch.randn(2, 4, 1, 32)
    for convention in ("half", "interleaved"):
        out, _ = E.RotaryEmbedding(32, convention=convention)(x, x, position_ids=torch.tensor([0]))
        assert torch.equal(out, x)


@given(st.lists(st.integers(0, 100_000), min_size=1, max_size=8), st.sampled_from(["half", "interleaved"]))
def test_rotation_keeps_norms(positions: list[int], convention: str) -> None:
    x = torch.randn(1, 2, len(positions), 32)
    out = E.RotaryEmbedding(32, convention=convention).rotate(x, torch.tensor(positions))
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1), rtol=1e-5, atol=1e-5)


@given(st.integers(0, 5000), st.integers(1, 12))
def test_an_offset_step_equals_the_full_sequence(start: int, length: int) -> None:
    rope = E.RotaryEmbedding(8)
    x = torch.randn(1, 2, start % 7 + length, 8)
    total = x.shape[-2]
    first = start  # positions first .. first + total - 1
    full = rope.rotate(x, torch.arange(first, first + total))
    k = total - length
    step = rope.rotate(x[..., k:, :], torch.arange(first + k, first + total))
    torch.testing.assert_close(step, full[..., k:, :], rtol=0, atol=1e-6)


def test_default_positions_are_zero_to_t_minus_one_and_per_row_positions() -> None:
    rope = E.RotaryEmbedding(8)
    x = torch.randn(2, 3, 5, 8)
    assert torch.equal(rope.rotate(x), rope.rotate(x, torch.arange(5)))
    per_row = torch.tensor([[0, 1, 2, 0, 1], [4, 5, 6, 7, 8]])  # a document restart in row 0, an offset in row 1
    out = rope.rotate(x, per_row)
    assert torch.equal(out[0], rope.rotate(x[:1], per_row[0])[0])
    assert torch.equal(out[1], rope.rotate(x[1:], per_row[1])[0])


def attention_scores(x, wq, wk, num_heads, rope):
    batch, length, _ = x.shape
    q = (x @ wq.T).view(batch, length, num_heads, -1).transpose(1, 2)
    k = (x @ wk.T).view(batch, length, num_heads, -1).transpose(1, 2)
    q, k = rope(q, k)
    return q @ k.transpose(-1, -2)  # (B, H, T, T)


def test_conventions_give_the_same_scores_once_weights_are_converted() -> None:
    torch.manual_seed(2)
    embed_dim, num_heads = 32, 4
    x = torch.randn(2, 7, embed_dim)
    wq, wk = torch.randn(embed_dim, embed_dim), torch.randn(embed_dim, embed_dim)
    interleaved = E.RotaryEmbedding(8, convention="interleaved")
    half = E.RotaryEmbedding(8, convention="half")
    reference = attention_scores(x, wq, wk, num_heads, interleaved)
    converted = attention_scores(
        x, E.interleaved_to_half(wq, num_heads), E.interleaved_to_half(wk, num_heads), num_heads, half
    )
    torch.testing.assert_close(converted, reference, rtol=1e-4, atol=1e-3)
    # and back
    back = attention_scores(
        x, E.half_to_interleaved(wq, num_heads), E.half_to_interleaved(wk, num_heads), num_heads, interleaved
    )
    torch.testing.assert_close(back, attention_scores(x, wq, wk, num_heads, half), rtol=1e-4, atol=1e-3)
    # unconverted weights do not agree, so the conversion is what makes the scores equal
    assert not torch.allclose(attention_scores(x, wq, wk, num_heads, half), reference, rtol=1e-4, atol=1e-3)


def test_conversion_round_trips_and_handles_biases() -> None:
    w, b = torch.randn(24, 5), torch.randn(24)
    assert torch.equal(E.half_to_interleaved(E.interleaved_to_half(w, 3), 3), w)
    assert torch.equal(E.interleaved_to_half(b, 3)[:4], b[[0, 2, 4, 6]])  # head 0: the even rows come first
    with pytest.raises(ValueError, match="num_heads=5"):
        E.interleaved_to_half(w, 5)


def test_bf16_input_keeps_positions_past_256_distinct() -> None:
    rope = E.RotaryEmbedding(16)
    x = torch.randn(1, 1, 1, 16).expand(1, 1, 300, 16).contiguous()
    out = rope.rotate(x.bfloat16())
    assert out.dtype == torch.bfloat16
    reference = rope.rotate(x)  # float32
    torch.testing.assert_close(out.float(), reference, rtol=0, atol=3e-2)
    # with bfloat16 positions 256.0 == 257.0 == 257.5...; here every position from 256 on is distinct
    rows = out[0, 0, 256:].float()
    assert len({tuple(r.tolist()) for r in rows}) == len(rows)


def test_q_and_k_keep_their_dtypes_and_head_counts() -> None:
    rope = E.RotaryEmbedding(8)
    q, k = torch.randn(2, 8, 5, 8, dtype=torch.float64), torch.randn(2, 2, 5, 8, dtype=torch.float16)
    q_rot, k_rot = rope(q, k)
    assert (q_rot.shape, q_rot.dtype, k_rot.shape, k_rot.dtype) == (q.shape, q.dtype, k.shape, k.dtype)


def test_meta_device_creation_then_reset() -> None:
    with torch.device("meta"):
        rope = E.RotaryEmbedding(16)
    assert rope.inv_freq.is_meta
    rope.to_empty(device="cpu")
    rope.reset_parameters()
    assert torch.equal(rope.inv_freq, E.RotaryEmbedding(16).inv_freq)
    assert "inv_freq" not in rope.state_dict()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: E.RotaryEmbedding(63), ValueError, "head_dim=63 is odd"),
        (lambda: E.RotaryEmbedding(8, convention="gptj"), ValueError, "convention"),
        (lambda: E.RotaryEmbedding(8).rotate(torch.randn(1, 1, 3, 6)), ValueError, r"head_dim=8"),
        (lambda: E.RotaryEmbedding(8).rotate(torch.ones(1, 1, 3, 8, dtype=torch.long)), TypeError, "floating"),
        (lambda: E.RotaryEmbedding(8).rotate(torch.randn(1, 1, 3, 8), torch.arange(4)), ValueError, r"\(3,\)"),
        (lambda: E.RotaryEmbedding(8)(torch.randn(1, 1, 3, 8), torch.randn(1, 1, 4, 8)), ValueError, "rotate"),
    ],
)
def test_errors(call, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()
