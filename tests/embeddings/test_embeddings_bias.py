"""ALiBi and T5 relative position biases against published slopes and T5's bucket function in plain Python."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, strategies as st

import lmfeed.embeddings as E

# ---- ALiBi (Press et al.): published slopes


def test_alibi_slopes_for_8_heads() -> None:
    # the paper, section 3: "for 8 heads, the slopes are 1/2^1, 1/2^2, ..., 1/2^8"
    expected = [2.0**-i for i in range(1, 9)]
    assert E.alibi_slopes(8) == pytest.approx(expected, rel=1e-12)
    torch.testing.assert_close(E.ALiBiBias(8).slopes, torch.tensor(expected, dtype=torch.float32))


def test_alibi_slopes_for_12_heads() -> None:
    # closest power of two (8) first, then every other slope of 16 heads: 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5
    expected = [2.0**-i for i in range(1, 9)] + [2.0**-0.5, 2.0**-1.5, 2.0**-2.5, 2.0**-3.5]
    assert E.alibi_slopes(12) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("num_heads", [1, 2, 3, 4, 5, 6, 16, 20, 32])
def test_alibi_slopes_other_counts(num_heads: int) -> None:
    # 16 heads: 2^-0.5 ... 2^-8 (ratio 2^-0.5); a power of two n starts at 2^(-8/n)
    slopes = E.alibi_slopes(num_heads)
    assert len(slopes) == num_heads and len(set(slopes)) == num_heads
    power = 2 ** int(math.log2(num_heads))
    assert slopes[0] == pytest.approx(2 ** (-8 / power))
    assert slopes[power - 1] == pytest.approx(2.0**-8)


def test_alibi_bias_is_minus_slope_times_distance() -> None:
    alibi = E.ALiBiBias(4)
    bias = alibi(3, 5)  # queries at positions 2, 3, 4 of 0..4
    assert bias.shape == (4, 3, 5) and bias.dtype == torch.float32
    for h, slope in enumerate([2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8]):
        for qi, i in enumerate((2, 3, 4)):
            for j in range(5):
                assert bias[h, qi, j].item() == pytest.approx(-slope * abs(i - j))


def test_alibi_decoding_step_is_the_last_row_and_positions_give_the_same() -> None:
    alibi = E.ALiBiBias(6)
    full = alibi(9, 9)
    assert torch.equal(alibi(1, 9), full[:, -1:, :])
    assert torch.equal(alibi(4, 9), full[:, -4:, :])
    assert torch.equal(alibi.from_positions(torch.arange(9)), full)
    # positions offset by k give the same distances, hence the same bias
    assert torch.equal(alibi.from_positions(torch.arange(100, 109)), full)
    batched = alibi.from_positions(torch.tensor([[0, 1, 2], [0, 1, 0]]))
    assert batched.shape == (2, 6, 3, 3) and batched[1, 0, 2, 0].item() == 0.0  # restart: distance 0


def test_alibi_meta_device_and_errors() -> None:
    with torch.device("meta"):
        alibi = E.ALiBiBias(12)
    alibi.to_empty(device="cpu")
    alibi.reset_parameters()
    assert torch.equal(alibi.slopes, E.ALiBiBias(12).slopes)
    assert list(alibi.parameters()) == [] and alibi.state_dict() == {}
    with pytest.raises(ValueError, match=r"q_len=5 is larger than k_len=4"):
        alibi(5, 4)
    with pytest.raises(ValueError, match="num_heads"):
        E.ALiBiBias(0)


# ---- T5 (Raffel et al.): the bucket function, written out in plain Python from T5's reference


def t5_bucket(relative_position: int, bidirectional: bool, num_buckets: int, max_distance: int) -> int:
    """Mesh TensorFlow's _relative_position_bucket for one int, with Python's math (float64)."""
    bucket = 0
    n = -relative_position  # the reference works on memory position - query position negated
    if bidirectional:
        num_buckets //= 2
        if n < 0:
            bucket += num_buckets
        n = abs(n)
    else:
        n = max(n, 0)
    max_exact = num_buckets // 2
    if n < max_exact:
        return bucket + n
    large = max_exact + int(math.log(n / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact))
    return bucket + min(large, num_buckets - 1)


# T5's defaults (32 buckets, max_distance 128, bidirectional), worked out by hand: 16 buckets a side, 8 exact,
# then 8 + int(2 * log2(n / 8)): n = 12 -> 9, n = 16 -> 10, n >= 128 -> capped at 15; keys after the query + 16.
KNOWN = {0: 0, -1: 1, -7: 7, -8: 8, -12: 9, -16: 10, -128: 15, -10_000: 15, 1: 17, 7: 23, 8: 24, 128: 31, 10_000: 31}


def test_t5_known_buckets() -> None:
    rel = torch.tensor(list(KNOWN))
    assert E.relative_position_bucket(rel).tolist() == list(KNOWN.values())


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize(("num_buckets", "max_distance"), [(32, 128), (64, 256), (16, 64), (8, 20), (32, 100)])
def test_t5_buckets_match_the_reference(bidirectional: bool, num_buckets: int, max_distance: int) -> None:
    rel = torch.arange(-3000, 3001)
    settings = {"bidirectional": bidirectional, "num_buckets": num_buckets, "max_distance": max_distance}
    ours = E.relative_position_bucket(rel, **settings)
    expected = [t5_bucket(r, bidirectional, num_buckets, max_distance) for r in rel.tolist()]
    assert ours.tolist() == expected


def test_t5_causal_future_keys_share_bucket_zero() -> None:
    t5 = E.RelativePositionBias(2, bidirectional=False)
    assert t5.bucket(torch.tensor([0, 1, 5, 1000])).tolist() == [0, 0, 0, 0]
    assert t5.bucket(torch.tensor([-1, -15, -16, -127, -128, -5000])).tolist() == [1, 15, 16, 31, 31, 31]


def test_t5_bias_looks_up_the_learned_table() -> None:
    t5 = E.RelativePositionBias(3, num_buckets=8, max_distance=16)
    bias = t5(2, 6)  # queries at positions 4, 5 of 0..5
    assert bias.shape == (3, 2, 6) and bias.dtype == torch.float32
    for qi, i in enumerate((4, 5)):
        for j in range(6):
            bucket = t5_bucket(j - i, True, 8, 16)
            assert torch.equal(bias[:, qi, j], t5.weight[bucket])
    assert torch.equal(t5(1, 6), t5(6, 6)[:, -1:])
    assert torch.equal(t5.from_positions(torch.arange(50, 56)), t5(6, 6))


def test_t5_bias_is_trainable_and_meta_creatable() -> None:
    t5 = E.RelativePositionBias(4)
    assert [n for n, p in t5.named_parameters() if p.requires_grad] == ["weight"]
    t5(3, 3).sum().backward()
    assert t5.weight.grad is not None and t5.weight.grad.abs().sum() > 0
    with torch.device("meta"):
        meta = E.RelativePositionBias(4)
    meta.to_empty(device="cpu")
    meta.reset_parameters()
    assert torch.isfinite(meta.weight).all() and meta.weight.shape == (32, 4)


def test_t5_bad_settings() -> None:
    with pytest.raises(ValueError, match="max_distance"):
        E.RelativePositionBias(4, num_buckets=32, max_distance=8)
    with pytest.raises(ValueError, match="num_buckets"):
        E.RelativePositionBias(4, num_buckets=2)
    with pytest.raises(TypeError, match="integer tensor .* but has dtype torch.float32. Build it from integer"):
        E.RelativePositionBias(4).bucket(torch.tensor([1.0]))
    with pytest.raises(TypeError, match="but has dtype torch.float64"):
        E.ALiBiBias(4).relative_bias(torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="but got list. Wrap it first"):
        E.ALiBiBias(4).relative_bias([[0, -1]])


@given(st.integers(-100_000, 100_000), st.booleans())
def test_t5_bucket_property_in_range_and_monotone_in_distance(rel: int, bidirectional: bool) -> None:
    further = rel - 1 if rel <= 0 else rel + 1
    bucket = E.relative_position_bucket(torch.tensor([rel, further]), bidirectional=bidirectional)
    assert 0 <= bucket[0] < 32
    assert bucket[1] >= bucket[0]  # one step further away never lands in a nearer bucket
