"""Item 25 of #15: TokenEmbedding and LearnedPositionalEmbedding are nn.Embeddings, so code that finds embeddings by
isinstance (nanoGPT's _init_weights, FSDP wrap policies) reaches them, and the seed's printed tables are unchanged."""

import math

import pytest
import torch
from torch import nn

from lmfeed import InputEmbedding, LearnedPositionalEmbedding, TokenEmbedding


def nanogpt_init_weights(module):
    """nanoGPT's GPT._init_weights (model.py), verbatim but for the self."""
    if isinstance(module, nn.Linear):
        torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if module.bias is not None:
            torch.nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)


def test_both_tables_are_nn_embeddings_and_nanogpts_init_reaches_them():
    torch.manual_seed(0)
    embedding = InputEmbedding(5000, 64, context_length=1024)
    assert isinstance(embedding.token_embedding, nn.Embedding)
    assert isinstance(embedding.position_embedding, nn.Embedding)
    embedding.apply(nanogpt_init_weights)
    for table in (embedding.token_embedding.weight, embedding.position_embedding.weight):
        assert math.isclose(float(table.detach().std()), 0.02, rel_tol=0.05)  # was 0.995 for wpe: skipped by isinstance


@pytest.mark.parametrize(("ours", "rows"), [(TokenEmbedding, 6), (LearnedPositionalEmbedding, 4)])
def test_the_seeds_printed_tables_print_identically(ours, rows):
    torch.manual_seed(123)
    reference = nn.Embedding(rows, 3)  # the seed: torch.nn.Embedding(vocab_size, output_dim) after manual_seed(123)
    torch.manual_seed(123)
    module = ours(rows, 3)
    assert str(module.weight) == str(reference.weight)
    ids = torch.tensor([3])
    assert str(module(ids)) == str(reference(ids))  # tensor([[-0.4015,  0.9666, -1.1481]], grad_fn=<Embedding...>)
    assert list(module.state_dict()) == ["weight"]
    reference.load_state_dict(module.state_dict())
    module.load_state_dict(reference.state_dict())


def test_nn_embedding_attributes_and_options_hold():
    module = TokenEmbedding(10, 4)
    assert (module.num_embeddings, module.embedding_dim, module.padding_idx) == (10, 4, None)
    assert repr(module) == "TokenEmbedding(10, 4, init='torch')"
    module.max_norm = 1.0  # nn.Embedding's option, set after construction, still applies
    out = module(torch.tensor([1, 2]))
    assert torch.all(out.norm(dim=-1) <= 1.0 + 1e-5)


def test_from_pretrained_gives_our_module_with_the_table():
    table = torch.arange(12, dtype=torch.float32).view(4, 3)
    module = TokenEmbedding.from_pretrained(table)
    assert isinstance(module, TokenEmbedding) and not module.weight.requires_grad
    assert torch.equal(module(torch.tensor([2])), table[2:3])
    with pytest.raises(ValueError, match="token_ids must be < vocab_size=4"):
        module(torch.tensor([4]))
    positions = LearnedPositionalEmbedding.from_pretrained(table, freeze=False, padding_idx=-1)
    assert positions.weight.requires_grad and positions.padding_idx == 3 and positions.context_length == 4


def test_meta_then_reset_parameters_still_works():
    module = TokenEmbedding(50257, 16, device="meta").to_empty(device="cpu")
    torch.manual_seed(1)
    module.reset_parameters()
    torch.manual_seed(1)
    assert torch.equal(module.weight, nn.Embedding(50257, 16).weight)
