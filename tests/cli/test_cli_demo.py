import re

from click.testing import CliRunner

from lmfeed.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_demo_runs_the_seeds_pipeline_on_the_default_corpus(tmp_path):
    result = run("demo", "--out", str(tmp_path / "pictures"))
    assert result.exit_code == 0, result.output
    out = result.output
    assert re.search(r"corpus +\d+ documents, [\d,]+ characters", out)
    assert "(8, 4, 256)" in out and "(4, 256)" in out and "weight (50257, 256)" in out
    assert "inputs (8, 4) and targets (8, 4)" in out
    # the first sample's target row is its input row shifted by one
    block = out[out.index("sample 0"):]
    ids = [list(map(int, re.findall(r"\d+", line))) for line in block.splitlines()[1:4:2]]
    assert ids[1][:-1] == ids[0][1:]
    pictures = sorted((tmp_path / "pictures").glob("*.png"))
    assert pictures and all(str(p) in out for p in pictures)


def test_demo_on_a_text_file_and_a_relative_scheme(tmp_path):
    from pydoc_data.topics import topics

    path = tmp_path / "t.txt"
    path.write_text(topics["if"], encoding="utf-8")
    result = run("demo", str(path), "--positional", "alibi", "--embed-dim", "32", "--num-heads", "4", "--no-plots")
    assert result.exit_code == 0, result.output
    assert "CausalSelfAttention(32, 4, positional='alibi')(x)" in result.output
    assert "slopes (4 heads): 0.25, 0.0625, 0.015625, 0.00390625" in result.output


def test_demo_errors_are_one_line_without_traceback(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["demo", str(tmp_path / "missing.txt")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: No such file") and "Traceback" not in result.output
    result = runner.invoke(main, ["demo", "--max-length", "0", "--no-plots"])
    assert result.exit_code == 1 and "Error: max_length must be at least 1, but got 0" in result.output
    short = tmp_path / "short.txt"
    short.write_text("Hello world", encoding="utf-8")
    result = runner.invoke(main, ["demo", str(short)])
    assert result.exit_code == 1 and "needs at least 5 tokens" in result.output and "has 2" in result.output


def test_demo_shows_every_value_of_a_narrow_embedding_and_says_so():
    out = run("demo", "--embed-dim", "3", "--no-plots").output
    assert ": its 3 values" in out and "first 4" not in out
    rows = re.findall(r"(?:token embedding|position 0 embedding|input embedding) +\[([^\]]*)\]", out)
    assert len(rows) == 3 and all(len(r.split(", ")) == 3 and "..." not in r for r in rows)
    token, position, total = ([float(v) for v in r.split(", ")] for r in rows)
    assert all(abs(t + p - s) < 2e-4 for t, p, s in zip(token, position, total, strict=True))  # the sum is the sum


def test_every_offered_positional_choice_runs():
    from lmfeed.cli.demo import command
    from lmfeed.embeddings import positional_kinds

    offered = next(p.type.choices for p in command.params if p.name == "positional")
    assert offered == positional_kinds() and {"relative_key", "relative_key_query", "xl"} <= set(offered)
    for kind in offered:
        result = run("demo", "--positional", kind, "--embed-dim", "16", "--no-plots")
        assert result.exit_code == 0 and f"5. the position scheme\n   {kind}: " in result.output, (kind, result.output)
        if kind == "none":  # attention without any position
            assert "CausalSelfAttention(16, 4, positional=None)(x)" in result.output
