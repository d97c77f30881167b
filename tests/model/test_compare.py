"""compare-positions: every scheme trained at T and scored at longer lengths; a learned table only at T."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from lmfeed.cli import main
from lmfeed.model.compare import compare_positions
from lmfeed.model.config import TrainConfig
from train_corpus import TOKENIZER, write_corpus

TINY = {"tokenizer": TOKENIZER, "embed_dim": 16, "num_layers": 1, "num_heads": 2, "context_length": 8,
        "batch_size": 4, "steps": 3, "eval_every": 3, "device": "cpu"}


def test_each_scheme_is_scored_at_every_length_but_learned_only_at_t(tmp_path):
    corpus = write_corpus(tmp_path / "text.txt", batches=8, max_length=8)
    base = TrainConfig(source=str(corpus), **TINY)
    out = tmp_path / "cmp"
    results = compare_positions(base, out, schemes=["learned", "alibi", "rope"], multiples=(1, 2, 4))
    assert [r.scheme for r in results] == ["learned", "alibi", "rope"]
    learned, alibi, rope = results
    assert learned.losses[8] is not None and learned.losses[16] is None and learned.losses[32] is None
    for r in (alibi, rope):
        assert all(v is not None and 0 < v < 10 for v in r.losses.values())
        assert r.windows[8] > r.windows[16] > r.windows[32] >= 1  # non-overlapping windows of each length
    # a second run reuses the finished schemes: nothing is trained again
    stamp = (out / "runs" / "alibi" / "checkpoint.pt").stat().st_mtime_ns
    again = compare_positions(base, out, schemes=["alibi"], multiples=(1, 2, 4))
    assert again[0].losses == alibi.losses
    assert (out / "runs" / "alibi" / "checkpoint.pt").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="embed_dim=16 there, 32 asked"):
        compare_positions(TrainConfig(source=str(corpus), **{**TINY, "embed_dim": 32}), out, schemes=["alibi"])
    with pytest.raises(ValueError, match="Unknown scheme"):
        compare_positions(base, out, schemes=["nope"])


def test_the_command_writes_its_table_and_plot(tmp_path):
    corpus = write_corpus(tmp_path / "text.txt", batches=30, max_length=8)  # 8T = 64: validation needs 65 tokens
    out = tmp_path / "cmp"
    result = CliRunner().invoke(main, [
        "compare-positions", str(corpus), "-o", str(out), "--schemes", "learned,sinusoidal", "--steps", "2",
        "--context-length", "8", "--embed-dim", "16", "--num-layers", "1", "--num-heads", "2", "--batch-size", "4",
        "--tokenizer", TOKENIZER, "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    table = (out / "compare.md").read_text()
    assert "| learned |" in table and "| sinusoidal |" in table and "n/a" in table
    assert "cannot run past T" in table and "cannot run past T" in result.output
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "compare.json").is_file()
