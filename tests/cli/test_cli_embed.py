"""`lmfeed embed`: the values are the seed's two nn.Embedding layers under torch.manual_seed, or the paper's
sinusoid."""

from __future__ import annotations

import json
import math

import torch
from click.testing import CliRunner

from lmfeed.cli import main


def run(*args: str):
    return CliRunner().invoke(main, ["embed", *args], catch_exceptions=False)


def seed_tables(ids: list[int], seed: int = 123, embed_dim: int = 256, context_length: int = 1024):
    """The seed's code: token_embedding_layer then pos_embedding_layer, both nn.Embedding."""
    torch.manual_seed(seed)
    token_embedding_layer = torch.nn.Embedding(50257, embed_dim)
    pos_embedding_layer = torch.nn.Embedding(context_length, embed_dim)
    with torch.no_grad():
        tok = token_embedding_layer(torch.tensor(ids))
        pos = pos_embedding_layer(torch.arange(len(ids)))
    return tok, pos


def test_hello_world_prints_the_seeds_values_and_shapes():
    result = run("Hello world")
    assert result.exit_code == 0, result.output
    out = result.output
    tok, pos = seed_tables([15496, 995])  # tiktoken's ids of "Hello world"
    assert "position 0   id 15496   Hello" in out and "position 1   id 995   ·world" in out
    for label, table in (("token embedding", tok), ("+ position embedding", pos), ("= input embedding", tok + pos)):
        shown = [line.split(label, 1)[1].strip() for line in out.splitlines() if line.lstrip().startswith(label)]
        assert shown == ["[" + ", ".join(f"{v:+.4f}" for v in row[:4].tolist()) + ", ...]" for row in table], label
    for line in ("token_ids = tensor([15496, 995])", "(2,)", "token_embeddings = token_embedding(token_ids)",
                 "pos_embeddings = learned_embedding(arange(2))", "(2, 256)"):
        assert line in out
    assert max(map(len, out.splitlines())) <= 80


def test_json_values_equal_the_seeds_layers():
    text = "The cat sat on the mat"
    data = json.loads(run(text, "--json", "--embed-dim", "16", "--values", "16", "--seed", "7").output)
    ids = [t["id"] for t in data["tokens"]]
    assert ids == [464, 3797, 3332, 319, 262, 2603]
    tok, pos = seed_tables(ids, seed=7, embed_dim=16)
    for t, row in enumerate(data["tokens"]):
        torch.testing.assert_close(torch.tensor(row["token"]), tok[t])
        torch.testing.assert_close(torch.tensor(row["position_embedding"]), pos[t])
        torch.testing.assert_close(torch.tensor(row["input"]), tok[t] + pos[t])
    assert "".join(t["piece"] for t in data["tokens"]) == text
    assert data["shapes"] == {"token_ids": [6], "token_embeddings": [6, 16], "pos_embeddings": [6, 16],
                              "input_embeddings": [6, 16]}


def test_sinusoidal_positions_follow_the_papers_formula():
    d = 8
    data = json.loads(run("a b c", "--json", "--positional", "sinusoidal", "--embed-dim", str(d),
                          "--values", "8").output)
    for row in data["tokens"]:
        p = row["position"]
        expected = []
        for i in range(d // 2):  # PE[p, 2i] = sin(p / 10000^(2i/D)), PE[p, 2i+1] = cos(same)
            angle = p / 10000 ** (2 * i / d)
            expected += [math.sin(angle), math.cos(angle)]
        torch.testing.assert_close(torch.tensor(row["position_embedding"]), torch.tensor(expected))


def test_no_positions_shows_token_embeddings_only():
    result = run("a b", "--positional", "none")
    assert result.exit_code == 0
    assert "position embedding" not in result.output and "pos_embeddings" not in result.output
    assert "input_embeddings = token_embeddings (no absolute positions)" in result.output


def test_long_texts_are_cut_in_the_display_but_all_embedded():
    result = run("one two three four five", "--max-tokens", "2")
    assert result.output.count("token embedding ") == 2
    assert "... 3 more tokens not shown" in result.output and "(5, 256)" in result.output


def test_errors_are_one_line():
    runner = CliRunner()
    result = runner.invoke(main, ["embed", " ".join(["word"] * 30), "--context-length", "8"])
    assert result.exit_code == 1
    assert result.output == ("Error: TEXT is 30 tokens, but --context-length is 8. "
                             "Pass --context-length 30 or more, or a shorter TEXT.\n")
    result = runner.invoke(main, ["embed", ""])
    assert result.exit_code == 1 and result.output.startswith("Error: TEXT is empty")
    result = runner.invoke(main, ["embed", "hi", "--embed-dim", "0"])
    assert result.exit_code == 1 and "embed_dim must be at least 1" in result.output


def test_invalid_utf8_is_an_error_with_its_byte_offset_never_a_silent_replacement():
    runner = CliRunner()
    result = runner.invoke(main, ["embed", "-"], input=b"ab\xffcd")
    assert result.exit_code == 1
    assert result.output == ("Error: stdin is not valid UTF-8: byte 2 is 0xff (invalid start byte). "
                             "Convert it to UTF-8 (e.g. iconv -t UTF-8).\n")
    result = runner.invoke(main, ["embed", "ab\udcffcd"])  # how Python hands over the byte 0xff of an argument
    assert result.exit_code == 1 and result.output.startswith("Error: TEXT is not valid UTF-8: byte 2 is 0xff")
    good = json.loads(runner.invoke(main, ["embed", "-", "--json"], input="wörld ✓".encode()).output)
    assert [t["id"] for t in good["tokens"]] == [86, 30570, 335, 24762]  # 'wörld ✓' read from stdin bytes as UTF-8
