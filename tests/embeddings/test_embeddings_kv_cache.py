"""KVCache with every scheme: a pass in pieces equals one pass; positions continue across the boundary; document
masks and restarted positions; the errors (another width, a gap, a mixed use of document ids)."""

from __future__ import annotations

import pytest
import torch

import lmfeed.embeddings as E
from lmfeed.embeddings.attention import SCHEMES

ALL = list(SCHEMES)
DISTANCE = ["relative_key", "relative_key_query", "xl"]


def layer(positional, dim=16, heads=4, seed=0):
    torch.manual_seed(seed)
    attn = E.CausalSelfAttention(dim, heads, positional=positional, max_distance=6).eval()
    if positional in DISTANCE:  # large scheme weights, so that a wrong distance would show
        with torch.no_grad():
            for name, p in attn.named_parameters():
                if not name.startswith(("qkv", "out")):
                    torch.nn.init.normal_(p, std=0.5)
    return attn


def test_the_list_of_schemes_is_the_described_one() -> None:
    assert SCHEMES == (None, *E.positional_kinds("attention"))
    assert E.positional_kinds() == (*E.positional_kinds("input"), *E.positional_kinds("attention"))


@pytest.mark.parametrize("positional", ALL)
def test_pieces_with_a_cache_equal_one_pass(positional: str | None) -> None:
    attn = layer(positional)
    x = torch.randn(2, 11, 16)
    cache = E.KVCache()
    with torch.no_grad():
        whole = attn(x)
        pieces = [attn(x[:, a:b], kv_cache=cache) for a, b in ((0, 4), (4, 5), (5, 11))]  # 5: one decoding step
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole, rtol=1e-5, atol=1e-6)
    assert len(cache) == 11 and cache.position_ids is not None and cache.position_ids[0].tolist() == list(range(11))


@pytest.mark.parametrize("positional", [p for p in ALL if p is not None])
def test_shifting_every_position_changes_nothing(positional: str) -> None:
    attn = layer(positional)
    x = torch.randn(2, 9, 16)
    with torch.no_grad():
        base = attn(x)
        torch.testing.assert_close(attn(x, torch.arange(9) + 37), base, rtol=1e-5, atol=1e-5)
        cache = E.KVCache()  # and with a memory: positions 100.. then its continuation
        attn(x[:, :4], torch.arange(100, 104), kv_cache=cache)
        torch.testing.assert_close(attn(x[:, 4:], kv_cache=cache), base[:, 4:], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("positional", ALL)
def test_documents_attend_within_themselves_with_restarted_positions(positional: str | None) -> None:
    attn = layer(positional)
    x = torch.randn(1, 7, 16)
    documents = torch.tensor([[0, 0, 0, 1, 1, 1, 1]])
    positions = torch.tensor([[0, 1, 2, 0, 1, 2, 3]])
    with torch.no_grad():
        packed = attn(x, positions, document_ids=documents)
        torch.testing.assert_close(packed[:, :3], attn(x[:, :3]), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(packed[:, 3:], attn(x[:, 3:]), rtol=1e-5, atol=1e-6)
        # the same with a cache that ends inside the second document
        cache = E.KVCache()
        first = attn(x[:, :5], positions[:, :5], document_ids=documents[:, :5], kv_cache=cache)
        second = attn(x[:, 5:], positions[:, 5:], document_ids=documents[:, 5:], kv_cache=cache)
    torch.testing.assert_close(torch.cat([first, second], dim=1), packed, rtol=1e-5, atol=1e-6)


def test_a_memory_of_another_width_is_refused_with_the_fix() -> None:
    cache = E.KVCache()
    with torch.no_grad():
        E.CausalSelfAttention(16, 4, positional="xl")(torch.randn(2, 3, 16), kv_cache=cache)
        with pytest.raises(ValueError, match=r"kv_cache holds keys of shape \(2, 4, 3, 4\) \(batch 2, 4 heads of 4\), "
                                             r"but this layer makes batch 2, 2 heads of 16.*one KVCache per layer"):
            E.CausalSelfAttention(32, 2, positional="xl")(torch.randn(2, 3, 32), kv_cache=cache)
        with pytest.raises(ValueError, match=r"batch 2, .* but this layer makes batch 3.*cache\.reset\(\)"):
            E.CausalSelfAttention(16, 4, positional="xl")(torch.randn(3, 3, 16), kv_cache=cache)
    with pytest.raises(TypeError, match="kv_cache must be a lmfeed KVCache, but got dict"):
        E.CausalSelfAttention(16, 4)(torch.randn(1, 3, 16), kv_cache={})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_length must be at least 1, but got 0"):
        E.KVCache(max_length=0)


@pytest.mark.parametrize("positional", DISTANCE)
def test_a_position_gap_is_refused_with_the_value_and_the_fix(positional: str) -> None:
    attn = layer(positional)
    x = torch.randn(2, 5, 16)
    with pytest.raises(ValueError, match=r"position_ids jump from 2 to 5 at index \(3,\), but positional="
                                         rf"'{positional}' needs .*restart at 0 .*Leave position_ids=None"):
        attn(x, torch.tensor([0, 1, 2, 5, 6]))
    with pytest.raises(ValueError, match=r"jump from 3 to 2 at index \(1, 4\)"):
        attn(x, torch.tensor([[0, 1, 2, 3, 4], [0, 1, 2, 3, 2]]))
    attn(x, torch.tensor([[7, 8, 0, 1, 2], [0, 0, 0, 1, 2]]))  # an offset and restarts are fine
    cache = E.KVCache()
    attn(x, kv_cache=cache)
    with pytest.raises(ValueError, match=r"jump from 4 to 9 at index \(0, 0\).*continue the cached positions"):
        attn(x, torch.arange(9, 14), kv_cache=cache)


def test_rope_alibi_t5_keep_free_positions_without_a_cache() -> None:
    x = torch.randn(1, 4, 16)
    for positional in ("rope", "alibi", "t5"):
        layer(positional)(x, torch.tensor([0, 5, 10, 15]))  # strided positions stay allowed there


def test_document_ids_on_some_calls_only_are_refused() -> None:
    attn = layer("xl")
    cache = E.KVCache()
    attn(torch.randn(1, 3, 16), kv_cache=cache)
    with pytest.raises(ValueError, match="kv_cache holds tokens without document_ids, but this call passes some"):
        attn(torch.randn(1, 2, 16), document_ids=torch.tensor([[0, 0]]), kv_cache=cache)
    with pytest.raises(ValueError, match=r"document_ids has shape \(1, 3\), but x of shape \(1, 2, 16\) needs"):
        layer(None)(torch.randn(1, 2, 16), document_ids=torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="document_ids must hold integer ids"):
        layer(None)(torch.randn(1, 2, 16), document_ids=torch.zeros(1, 2))


def test_a_bounded_memory_keeps_the_last_tokens_and_stops_gradients() -> None:
    attn = layer("xl")
    cache = E.KVCache(max_length=3)
    x = torch.randn(1, 5, 16, requires_grad=True)
    attn(x, kv_cache=cache)
    assert len(cache) == 3 and cache.position_ids is not None and cache.position_ids.tolist() == [[2, 3, 4]]
    assert cache.keys is not None and not cache.keys.requires_grad
    assert repr(cache) == "KVCache(max_length=3, cached=3)"
    cache.reset()
    assert len(cache) == 0 and cache.next_position_ids(2) is None
