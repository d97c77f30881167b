"""Document masks: a packed row with its document mask computes what each document alone computes, for every
position scheme; the mask against a brute-force one; the kernels agree."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st

import lmfeed.embeddings as E
from lmfeed.embeddings.masks import (
    cu_seqlens_of,
    document_causal_mask,
    flex_attention_available,
)
from lmfeed.loading.documents import cu_seqlens, documents_from_starts

VOCAB, DIM, HEADS, CONTEXT = 64, 16, 4, 48
# (absolute scheme in InputEmbedding, relative scheme in attention): every scheme once
SCHEMES = [("learned", None), ("sinusoidal", None), ("none", "rope"), ("none", "alibi"), ("none", "t5"),
           ("none", "relative_key"), ("none", "relative_key_query"), ("none", "xl")]


def layers(absolute: str, relative: str | None, kernel: str = "sdpa") -> tuple[E.InputEmbedding, E.CausalSelfAttention]:
    torch.manual_seed(0)
    embedding = E.InputEmbedding(VOCAB, DIM, context_length=CONTEXT, positional=absolute)
    attention = E.CausalSelfAttention(DIM, HEADS, positional=relative, kernel=kernel)  # type: ignore[arg-type]
    with torch.no_grad():  # T5's biases start near 0: make them matter
        if relative == "t5":
            attention.t5.weight.normal_(0, 1.0)
    return embedding.eval(), attention.eval()


def packed(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[list[torch.Tensor]]]:
    """Rows of documents of the given lengths: tokens, document ids, reset positions, and each row's documents."""
    length = max(sum(r) for r in rows)
    gen = torch.Generator().manual_seed(sum(map(sum, rows)))
    tokens, starts, documents = [], [], []
    for lengths in rows:
        lengths = lengths + ([length - sum(lengths)] if sum(lengths) < length else [])  # fill with one more document
        docs = [torch.randint(0, VOCAB, (n,), generator=gen) for n in lengths]
        documents.append(docs)
        tokens.append(torch.cat(docs))
        start = torch.zeros(length, dtype=torch.bool)
        offsets = torch.tensor([0] + [int(n) for n in torch.tensor(lengths).cumsum(0)[:-1]])
        start[offsets] = True
        starts.append(start)
    document_ids, position_ids = documents_from_starts(torch.stack(starts))
    return torch.stack(tokens), document_ids, position_ids, documents


rows_of_documents = st.lists(st.lists(st.integers(1, 12), min_size=1, max_size=4), min_size=1, max_size=3)


@pytest.mark.parametrize(("absolute", "relative"), SCHEMES)
@settings(max_examples=12, deadline=None)
@given(rows=rows_of_documents)
def test_a_packed_row_equals_each_document_alone(absolute, relative, rows):
    embedding, attention = layers(absolute, relative)
    tokens, document_ids, position_ids, documents = packed(rows)
    with torch.no_grad():
        together = attention(embedding(tokens, position_ids), position_ids, document_ids=document_ids)
        for b, docs in enumerate(documents):
            offset = 0
            for doc in docs:
                alone = attention(embedding(doc.unsqueeze(0)))  # positions 0..n-1, no mask but causal
                got = together[b, offset : offset + len(doc)]
                assert (got - alone[0]).abs().max().item() <= 1e-5, (absolute, relative)
                offset += len(doc)


@pytest.mark.parametrize(("absolute", "relative"), SCHEMES)
def test_without_the_mask_documents_see_each_other(absolute, relative):
    embedding, attention = layers(absolute, relative)
    tokens, _, position_ids, documents = packed([[5, 7]])
    with torch.no_grad():
        unmasked = attention(embedding(tokens, position_ids), position_ids)
        alone = attention(embedding(documents[0][1].unsqueeze(0)))
    assert (unmasked[0, 5:] - alone[0]).abs().max() > 1e-3  # the test above can fail: the mask is what holds


@pytest.mark.skipif(not flex_attention_available(), reason="this torch has no FlexAttention")
@pytest.mark.parametrize(("absolute", "relative"), SCHEMES)
def test_flex_attention_gives_the_same_as_the_boolean_mask(absolute, relative):
    import warnings

    embedding, sdpa = layers(absolute, relative)
    _, flex = layers(absolute, relative, kernel="flex")
    tokens, document_ids, position_ids, _ = packed([[3, 9, 4], [16]])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "flex_attention called without torch.compile()": the CPU reference path
        x = embedding(tokens, position_ids)
        a = sdpa(x, position_ids, document_ids=document_ids)
        b = flex(x, position_ids, document_ids=document_ids)
    assert (a - b).abs().max().item() <= 1e-5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="varlen kernels run on CUDA")
@pytest.mark.parametrize("relative", [None, "rope"])
def test_varlen_kernel_on_cuda_gives_the_same_as_the_boolean_mask(relative):
    torch.manual_seed(0)
    sdpa = E.CausalSelfAttention(64, 2, positional=relative).cuda().half().eval()  # type: ignore[arg-type]
    varlen = E.CausalSelfAttention(64, 2, positional=relative, kernel="varlen").cuda().half().eval()  # type: ignore[arg-type]
    varlen.load_state_dict(sdpa.state_dict())
    _, document_ids, position_ids, _ = packed([[30, 50, 48], [128]])
    x = torch.randn(2, 128, 64, device="cuda", dtype=torch.half)
    with torch.no_grad():
        a = sdpa(x, position_ids.cuda(), document_ids=document_ids.cuda())
        b = varlen(x, position_ids.cuda(), document_ids=document_ids.cuda())
    assert (a.float() - b.float()).abs().max().item() <= 2e-3


def test_the_mask_equals_a_brute_force_one():
    ids = torch.tensor([[0, 0, 1, 1, 1, 2], [0, 1, 1, 1, 1, 1]])
    mask = document_causal_mask(ids)
    assert mask.shape == (2, 1, 6, 6)
    for b in range(2):
        for i in range(6):
            for j in range(6):
                assert bool(mask[b, 0, i, j]) == (j <= i and bool(ids[b, i] == ids[b, j]))


@given(st.lists(st.lists(st.integers(1, 6), min_size=1, max_size=4), min_size=1, max_size=3))
def test_the_two_cu_seqlens_agree(rows):
    _, document_ids, _, _ = packed(rows)
    a, b = cu_seqlens(document_ids), cu_seqlens_of(document_ids)
    assert torch.equal(a[0], b[0]) and a[1] == b[1]


def test_bad_document_ids_and_kernels_are_clear_errors():
    attention = E.CausalSelfAttention(16, 2)
    x = torch.randn(2, 5, 16)
    with pytest.raises(ValueError, match="document_ids has shape"):
        attention(x, document_ids=torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="document_ids"):
        attention(x, document_ids=torch.zeros(2, 5))
    with pytest.raises(ValueError, match="kernel"):
        E.CausalSelfAttention(16, 2, kernel="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no attention bias"):
        E.CausalSelfAttention(16, 2, positional="alibi", kernel="varlen")
    with pytest.raises(ValueError, match="CUDA only"):
        E.CausalSelfAttention(16, 2, kernel="varlen")(x, document_ids=torch.zeros(2, 5, dtype=torch.long))
