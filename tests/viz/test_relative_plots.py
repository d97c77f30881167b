"""The relative schemes' pictures: relative_tables' values against the formulas, the PNGs decoded, demo writes one."""

from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import lmfeed.embeddings as E
from lmfeed.cli import main

pytest.importorskip("matplotlib")
from lmfeed.viz.relative import plot_relative_positions  # noqa: E402  (needs matplotlib)


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_relative_tables_hold_the_first_layers_tensors() -> None:
    torch.manual_seed(0)
    layers = torch.nn.Sequential(E.CausalSelfAttention(8, 2, positional="xl"), E.CausalSelfAttention(8, 2))
    tables = E.relative_tables(layers, 5)
    xl = layers[0].xl
    assert set(tables) == {"xl_u", "xl_v", "xl_d"} and torch.equal(tables["xl_u"], xl.u.detach())
    for d in range(5):  # term d = v_h . (W_R r_d)_h, r_d = [sin(d f), cos(d f)], f_m = 10000^(-2m/8)
        angles = [d / 10000 ** (2 * m / 8) for m in range(4)]
        r = torch.tensor([math.sin(a) for a in angles] + [math.cos(a) for a in angles], dtype=torch.float64)
        wr = (xl.r_net.weight.double() @ r).view(2, 4)
        want = (xl.v.double() * wr).sum(-1)
        torch.testing.assert_close(tables["xl_d"][:, d].double(), want, rtol=1e-5, atol=1e-6)
    bert = E.CausalSelfAttention(8, 2, positional="relative_key_query", max_distance=3)
    assert torch.equal(E.relative_tables(bert, 5)["relative_key"], bert.relative_key.weight.detach())
    assert E.relative_tables(E.CausalSelfAttention(8, 2, positional="t5"), 5) == {}


@pytest.mark.parametrize(("positional", "size"), [("relative_key", (800, 500)), ("xl", (1000, 800))])
def test_before_and_after_pictures(tmp_path, positional: str, size: tuple[int, int]) -> None:
    attn = E.CausalSelfAttention(16, 2, positional=positional, max_distance=40)  # type: ignore[arg-type]
    before = E.relative_tables(attn, 32)
    with torch.no_grad():
        for p in attn.parameters():
            p.add_(1.0)
    path = plot_relative_positions(before, E.relative_tables(attn, 32), tmp_path / "r.png", step=10,
                                   context_length=32)
    assert path == tmp_path / "r.png" and png_size(path) == size
    assert [p.name for p in tmp_path.iterdir()] == ["r.png"]  # written whole: no temporary file left
    assert png_size(plot_relative_positions(before, None, tmp_path / "one.png")) == size


def test_tables_of_another_kind_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"holds \['position'\], not a relative scheme's tensors.*relative_tables"):
        plot_relative_positions({"position": torch.zeros(2, 2)}, None, tmp_path / "r.png")


@pytest.mark.parametrize("positional", ["relative_key_query", "xl"])
def test_demo_draws_the_scheme(tmp_path, monkeypatch, positional: str) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo", "--positional", positional, "--embed-dim", "16", "--out", "pics"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "pics/relative-positions.png" in result.output
    assert png_size(tmp_path / "pics" / "relative-positions.png") == ((1000, 800) if positional == "xl" else (800, 500))


@pytest.mark.slow  # a (tiny) training run: about 30 s on a loaded 2-core machine
def test_train_draws_the_table_before_and_after(tmp_path) -> None:
    text = tmp_path / "text.txt"
    text.write_text(" ".join(f"word{i % 50}" for i in range(3000)))
    out = tmp_path / "run"
    args = ["train", str(text), "-o", str(out), "--positional", "relative_key", "--embed-dim", "16", "--num-layers",
            "1", "--num-heads", "2", "--context-length", "16", "--batch-size", "4", "--steps", "2", "--eval-every", "2",
            "--device", "cpu"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    picture = out / "relative-positions.png"
    assert str(picture) in result.output and png_size(picture) == (800, 500)
