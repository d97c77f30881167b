"""lmfeed.GPT against the seed's book model, GPT-2's initialisation, and every position scheme."""

from __future__ import annotations

import math

import pytest
import torch

from lmfeed.embeddings import positional_kinds
from lmfeed.model.gpt import GPT, is_absolute

ch04 = pytest.importorskip("llms_from_scratch.ch04", reason="the seed's book package (make test installs it)")

SMALL = {"vocab_size": 97, "embed_dim": 32, "context_length": 16, "num_layers": 2, "num_heads": 4}


def copy_into_book(model: GPT) -> torch.nn.Module:
    """The book's GPTModel with lmfeed's weights copied in, parameter by parameter (an independent forward)."""
    cfg = {"vocab_size": model.vocab_size, "context_length": model.context_length, "emb_dim": model.embed_dim,
           "n_heads": model.num_heads, "n_layers": model.num_layers, "drop_rate": 0.0, "qkv_bias": True}
    book = ch04.GPTModel(cfg).eval()
    d = model.embed_dim
    with torch.no_grad():
        book.tok_emb.weight.copy_(model.embedding.token_embedding.weight)
        book.pos_emb.weight.copy_(model.embedding.position_embedding.weight)
        for ours, theirs in zip(model.blocks, book.trf_blocks, strict=True):
            w, b = ours.attn.qkv.weight, ours.attn.qkv.bias  # (3D, D): query rows, then key rows, then value rows
            for k, lin in enumerate((theirs.att.W_query, theirs.att.W_key, theirs.att.W_value)):
                lin.weight.copy_(w[k * d:(k + 1) * d])
                lin.bias.copy_(b[k * d:(k + 1) * d])
            theirs.att.out_proj.load_state_dict(ours.attn.out.state_dict())
            theirs.ff.layers[0].load_state_dict(ours.mlp.fc.state_dict())
            theirs.ff.layers[2].load_state_dict(ours.mlp.proj.state_dict())
            theirs.norm1.scale.copy_(ours.ln_1.weight)
            theirs.norm1.shift.copy_(ours.ln_1.bias)
            theirs.norm2.scale.copy_(ours.ln_2.weight)
            theirs.norm2.shift.copy_(ours.ln_2.bias)
        book.final_norm.scale.copy_(model.ln_f.weight)
        book.final_norm.shift.copy_(model.ln_f.bias)
        book.out_head.weight.copy_(model.lm_head.weight)
    return book


@pytest.mark.parametrize("tie_weights", [True, False])
def test_logits_equal_the_books_gptmodel_with_the_same_weights(tie_weights):
    torch.manual_seed(0)
    model = GPT(**SMALL, tie_weights=tie_weights).eval()
    with torch.no_grad():  # random LayerNorm affine and biases, so that no copy could pass by being 1 or 0
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    book = copy_into_book(model)
    ids = torch.randint(0, SMALL["vocab_size"], (3, SMALL["context_length"]))
    with torch.no_grad():
        ours, _ = model(ids)
        theirs = book(ids)
    assert ours.shape == (3, 16, 97)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_gpt2_initialisation():
    torch.manual_seed(0)
    model = GPT(vocab_size=512, embed_dim=256, context_length=64, num_layers=8, num_heads=4)
    residual_std = 0.02 / math.sqrt(2 * 8)
    for block in model.blocks:
        assert block.attn.out.weight.std().item() == pytest.approx(residual_std, rel=0.05)
        assert block.mlp.proj.weight.std().item() == pytest.approx(residual_std, rel=0.05)
        assert block.attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert block.mlp.fc.weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert block.attn.qkv.bias.abs().max().item() == 0.0
        assert torch.equal(block.ln_1.weight, torch.ones(256))
    assert model.embedding.token_embedding.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.embedding.position_embedding.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.lm_head.weight is model.embedding.token_embedding.weight  # tied: one table
    # small logits at init, so the first loss is about ln(V): a uniform guess
    ids = torch.randint(0, 512, (4, 64))
    _, loss = model(ids, targets=torch.randint(0, 512, (4, 64)))
    assert loss.item() == pytest.approx(math.log(512), abs=0.15)


def test_parameter_count_matches_the_formula():
    v, d, t, n = 97, 32, 16, 2
    model = GPT(v, d, t, n, 4)
    block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    assert model.num_parameters() == v * d + t * d + n * block + 2 * d
    assert model.num_parameters(non_embedding=True) == n * block + 2 * d
    assert GPT(v, d, t, n, 4, tie_weights=False).num_parameters() == model.num_parameters() + v * d


def test_loss_is_the_mean_cross_entropy_and_ignores_minus_100():
    torch.manual_seed(1)
    model = GPT(**SMALL)
    ids = torch.randint(0, 97, (2, 8))
    targets = torch.randint(0, 97, (2, 8))
    targets[0, :3] = -100
    logits, loss = model(ids, targets)
    logp = torch.log_softmax(logits, dim=-1)
    keep = targets != -100
    expected = -logp[keep].gather(-1, targets[keep][:, None]).mean()
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize("positional", positional_kinds())
def test_every_scheme_builds_and_learns_a_few_steps(positional):
    torch.manual_seed(0)
    model = GPT(**SMALL, positional=positional)
    assert (model.embedding.positional == positional) == is_absolute(positional)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    ids = torch.randint(0, 97, (4, 17))
    losses = []
    for _ in range(8):
        _, loss = model(ids[:, :-1], ids[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5


@pytest.mark.parametrize("positional", [k for k in positional_kinds() if not is_absolute(k)])
def test_relative_schemes_see_only_distances_through_position_ids(positional):
    # position_ids reach every block: shifting all positions by 5 changes nothing for a relative scheme
    torch.manual_seed(0)
    model = GPT(**SMALL, positional=positional).eval()
    ids = torch.randint(0, 97, (2, 8))
    with torch.no_grad():
        base, _ = model(ids)
        shifted, _ = model(ids, position_ids=torch.arange(5, 13))
        restarted, _ = model(ids, position_ids=torch.tensor([0, 1, 2, 3, 0, 1, 2, 3]))
    torch.testing.assert_close(base, shifted, atol=1e-5, rtol=0)
    assert not torch.allclose(base[:, 4:], restarted[:, 4:], atol=1e-4)


def test_learned_positions_follow_position_ids():
    torch.manual_seed(0)
    model = GPT(**SMALL).eval()
    ids = torch.randint(0, 97, (1, 4))
    with torch.no_grad():
        a, _ = model(ids)
        b, _ = model(ids, position_ids=torch.arange(4, 8))
    assert not torch.allclose(a, b)


def test_bad_arguments_name_the_value_and_the_fix():
    with pytest.raises(ValueError, match="num_heads"):
        GPT(97, 30, 16, 2, 4)
    with pytest.raises(ValueError, match="Choose one of"):
        GPT(97, 32, 16, 2, 4, positional="relative_xyz")
    with pytest.raises(TypeError, match="num_layers"):
        GPT(97, 32, 16, 2.0, 4)
    model = GPT(**SMALL)
    with pytest.raises(ValueError, match="context_length=16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="vocab_size"):
        model(torch.full((1, 4), 97))
    with pytest.raises(ValueError, match="targets must have the shape"):
        model(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))


def test_config_rebuilds_the_same_shape():
    model = GPT(**SMALL, positional="rope", tie_weights=False)
    again = GPT(**model.config())
    assert again.load_state_dict(model.state_dict()) is not None
    assert again.config() == model.config()
