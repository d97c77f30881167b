"""lmfeed.viz.plots and `lmfeed plot` / `lmfeed demo` pictures: the numbers against independent formulas, the PNGs
decoded."""

from __future__ import annotations

import collections
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, strategies as st
from PIL import Image

from lmfeed.cli import main
from lmfeed.text.tokenizer import get_tokenizer
from lmfeed.viz import plots

WIDTH, HEIGHT = 800, 500  # FIGSIZE (8, 5) inches at DPI 100


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()  # decodes the whole file: a truncated PNG fails here
        return image.size


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A small token store of three documents, written by lmfeed.prepare."""
    from pydoc_data.topics import topics

    from lmfeed.store.prepare import prepare

    root = tmp_path_factory.mktemp("store")
    docs = root / "docs"
    docs.mkdir()
    for i, name in enumerate(["if", "while", "assignment"]):
        (docs / f"{i}.txt").write_text(topics[name], encoding="utf-8")
    return prepare([docs], root / "s.store", workers=1)


# ---- the numbers ------------------------------------------------------------------------------------------------

def test_cosine_similarity_matches_torch_pairwise():
    torch.manual_seed(0)
    table = torch.randn(7, 5)
    expected = torch.nn.functional.cosine_similarity(table[:, None, :], table[None, :, :], dim=-1)
    np.testing.assert_allclose(plots.cosine_similarity_matrix(table), expected.numpy(), atol=1e-6)
    with_zero = np.vstack([np.zeros(5), table.numpy()])
    sim = plots.cosine_similarity_matrix(with_zero)
    assert np.all(sim[0] == 0) and np.all(sim[:, 0] == 0)  # a zero row: 0, not NaN


def test_sinusoidal_similarity_depends_only_on_distance_as_the_formula_says():
    from lmfeed.embeddings import SinusoidalPositionalEmbedding

    d, t = 16, 20
    sim = plots.cosine_similarity_matrix(SinusoidalPositionalEmbedding(d)(torch.arange(t)))
    # |PE[p]|^2 = D/2 (sin^2 + cos^2 per pair), so cos(PE[i], PE[j]) = mean_k cos((i - j) * 10000^(-2k/D))
    freqs = [10000 ** (-2 * k / d) for k in range(d // 2)]
    for i in range(t):
        for j in range(t):
            expected = sum(math.cos((i - j) * w) for w in freqs) / len(freqs)
            assert sim[i, j] == pytest.approx(expected, abs=1e-5)


def test_pca_finds_the_direction_the_points_lie_along():
    rng = np.random.default_rng(0)
    direction = rng.normal(size=10)
    direction /= np.linalg.norm(direction)
    t = np.linspace(-3, 3, 25)
    points = 5.0 + t[:, None] * direction + 1e-3 * rng.normal(size=(25, 10))
    coords, explained = plots.pca_2d(points)
    assert explained[0] > 0.999 and explained[1] < 1e-3
    assert abs(np.corrcoef(coords[:, 0], t)[0, 1]) > 0.9999


@given(st.integers(3, 12), st.integers(2, 8), st.integers(0, 2**32 - 1))
def test_pca_variances_are_the_covariance_eigenvalues(n, d, seed):
    x = np.random.default_rng(seed).normal(size=(n, d))
    coords, explained = plots.pca_2d(x)
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False)))[::-1]  # another method: eig of covariance
    np.testing.assert_allclose(coords.var(axis=0, ddof=1), eigenvalues[:2], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(explained, eigenvalues[:2] / eigenvalues.sum(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(coords.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_array_equal(plots.pca_2d(x)[0], coords)  # same picture every run


def test_pca_refuses_too_few_points():
    with pytest.raises(ValueError, match="N >= 2"):
        plots.pca_2d(np.zeros((1, 4)))


def test_word_ids_are_tiktokens_single_tokens_with_a_leading_space():
    enc = get_tokenizer("gpt2")
    words = [w for ws in plots.COMMON_WORDS.values() for w in ws]
    assert len(words) == 40
    assert plots.word_token_ids(enc, words) == [enc.encode(" " + w)[0] for w in words]
    assert plots.word_token_ids(enc, ["king", "the"]) == [5822, 262]
    with pytest.raises(ValueError, match="'antidisestablishmentarianism' is [0-9]+ GPT-2 tokens"):
        plots.word_token_ids(enc, ["king", "antidisestablishmentarianism"])


def test_token_counts_across_chunk_boundaries():
    ids = np.random.default_rng(1).integers(0, 50, size=1001).astype(np.uint16)
    counts = plots.token_counts(ids, 60, chunk=64)
    expected = collections.Counter(ids.tolist())
    assert counts.tolist() == [expected.get(i, 0) for i in range(60)]


def test_document_lengths_are_the_documents_token_counts(store):
    from pydoc_data.topics import topics

    enc = get_tokenizer("gpt2")
    expected = [len(enc.encode_ordinary(topics[n])) for n in ["if", "while", "assignment"]]
    assert plots.document_lengths(store).tolist() == expected


# ---- the pictures -----------------------------------------------------------------------------------------------

def test_every_figure_is_an_800_by_500_png_written_whole(tmp_path, store):
    import matplotlib

    enc = get_tokenizer("gpt2")
    torch.manual_seed(0)
    paths = plots.write_embedding_plots(tmp_path, embed_dim=8, num_positions=16, seed=1)
    paths += plots.write_store_plots(store, tmp_path, top=5)
    paths.append(plots.plot_batch_embeddings(torch.tensor([[15496, 995]] * 3), torch.randn(3, 2, 8), enc,
                                             tmp_path / "batch.png"))
    assert [p.name for p in paths] == ["positional-embeddings.png", "position-similarity.png",
                                       "token-embeddings-pca.png", "document-lengths.png", "top-tokens.png",
                                       "batch.png"]
    for path in paths:
        assert png_size(path) == (WIDTH, HEIGHT), path
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)  # no temporary files left
    umask = os.umask(0o022)
    os.umask(umask)
    assert {p.stat().st_mode & 0o777 for p in paths} == {0o666 & ~umask}  # readable as any file, not 0600
    assert matplotlib.get_backend().lower() == "agg"


def test_random_tables_repeat_under_a_seed_and_leave_the_global_rng_alone(tmp_path):
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    plots.write_embedding_plots(tmp_path / "a", embed_dim=4, num_positions=4, seed=7, words=["king", "queen"])
    assert torch.rand(1) == before
    plots.write_embedding_plots(tmp_path / "b", embed_dim=4, num_positions=4, seed=7, words=["king", "queen"])
    for name in ("positional-embeddings.png", "token-embeddings-pca.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_importing_the_cli_and_plots_modules_loads_neither_matplotlib_nor_torch():
    code = ("import sys, lmfeed.cli, lmfeed.cli.batch, lmfeed.cli.embed, lmfeed.cli.plot, lmfeed.viz.plots; "
            "print(sorted(m for m in ('matplotlib', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- the commands -----------------------------------------------------------------------------------------------

def test_lmfeed_plot_prints_the_paths_of_the_pngs_it_wrote(tmp_path, store):
    out = tmp_path / "pics"
    result = CliRunner().invoke(main, ["plot", "--out", str(out), "--embed-dim", "8", "--positions", "16",
                                       "--store", str(store.path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.rsplit("/", 1)[-1] for line in lines] == [
        "positional-embeddings.png", "position-similarity.png", "token-embeddings-pca.png",
        "document-lengths.png", "top-tokens.png"]
    for line in lines:
        assert png_size(line) == (WIDTH, HEIGHT)


def test_lmfeed_plot_errors_are_one_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["plot", "--out", str(tmp_path), "--words", "king,antidisestablishmentarianism"])
    assert result.exit_code == 1 and result.output.startswith("Error: 'antidisestablishmentarianism' is")
    result = runner.invoke(main, ["plot", "--out", str(tmp_path), "--store", str(tmp_path / "missing")])
    assert result.exit_code == 1 and result.output.startswith("Error: No such store")
    assert list(tmp_path.iterdir()) == []  # nothing drawn before the store was found
    result = runner.invoke(main, ["plot", "--out", str(tmp_path), "--positions", "100000"])  # not a 75 GB matrix
    assert result.exit_code == 1 and result.output.startswith(
        "Error: num_positions must be at most 1,024, but got 100,000. A picture is 800 pixels wide")
    assert result.output.rstrip().endswith("Draw fewer (--positions).") and len(result.output.splitlines()) == 1


def test_an_allocation_failure_is_one_error_line(monkeypatch, tmp_path):
    import lmfeed.viz.plots

    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 74.5 GiB for an array with shape (100000, 100000) and data type float64")

    monkeypatch.setattr(lmfeed.viz.plots, "write_embedding_plots", exhausted)
    result = CliRunner().invoke(main, ["plot", "--out", str(tmp_path)])
    assert result.exit_code == 1 and result.output == (
        "Error: Out of memory: Unable to allocate 74.5 GiB for an array with shape (100000, 100000) and data type "
        "float64. Lower the sizes asked for (see --help for their defaults).\n")


def test_demo_writes_its_pictures_and_says_where(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["demo", "--embed-dim", "16", "--out", "pics"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    section = result.output[result.output.index("6. pictures in pics/"):]
    written = [line.strip() for line in section.splitlines()[1:]]
    assert [p.rsplit("/", 1)[-1] for p in written] == [
        "batch-embeddings.png", "positional-embeddings.png", "position-similarity.png", "token-embeddings-pca.png"]
    for path in written:
        assert png_size(tmp_path / path) == (WIDTH, HEIGHT)
    result = runner.invoke(main, ["demo", "--embed-dim", "16", "--no-plots", "--out", "other"], catch_exceptions=False)
    assert result.exit_code == 0 and "6. pictures" not in result.output
    assert not (tmp_path / "other").exists()


def test_demo_on_a_store_adds_the_store_pictures(tmp_path, store):
    result = CliRunner().invoke(main, ["demo", str(store.path), "--embed-dim", "16", "--out", str(tmp_path)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "batch-embeddings.png", "document-lengths.png", "position-similarity.png", "positional-embeddings.png",
        "token-embeddings-pca.png", "top-tokens.png"]


def test_without_matplotlib_demo_says_how_to_get_it_and_plot_fails_cleanly(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    runner = CliRunner()
    result = runner.invoke(main, ["demo", "--embed-dim", "16", "--out", str(tmp_path / "d")], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output.rstrip().splitlines()[-1] == "   (none: pictures need matplotlib; pip install 'lmfeed[plot]')"
    result = runner.invoke(main, ["plot", "--out", str(tmp_path / "p")])
    assert result.exit_code == 1 and result.output == "Error: Pictures need matplotlib: pip install 'lmfeed[plot]'\n"
    assert not (tmp_path / "d").exists() and not (tmp_path / "p").exists()
