"""Item 17 of #15 (loader and embedding side): messages that named the wrong thing now name the right one."""

import pytest
from click.testing import CliRunner

from lmfeed.cli import main

HUGE = "99999999999999999999999"


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize(("args", "name"), [
    (["demo", "--no-plots", "--seed", HUGE], "--seed"),
    (["demo", "--no-plots", "--seed", "-1"], "--seed"),
    (["embed", "Hello world", "--seed", str(2**64)], "--seed"),
    (["plot", "--seed", HUGE], "seed"),
    (["batch", "--shuffle", "--seed", HUGE], "seed"),
])
def test_a_seed_out_of_range_is_one_error_line_with_the_range(args, name, tmp_path):
    if args[0] == "plot":
        args = [*args, "--out", str(tmp_path)]
    result = run(*args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith(f"Error: {name} must be at ") and "2**64 - 1 = 18,446,744,073,709,551,615" in lines[0]
    assert "Overflow" not in result.output


def test_the_largest_seed_runs():
    assert run("embed", "Hello world", "--seed", str(2**64 - 1)).exit_code == 0


def test_rope_with_too_many_heads_names_num_heads_not_head_dim():
    result = run("demo", "--no-plots", "--positional", "rope", "--num-heads", "256")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: positional='rope' rotates pairs of dimensions in each head, so head_dim = embed_dim / num_heads must "
        "be even, but embed_dim=256 / num_heads=256 = 1. Use num_heads in {1, 2, 4, ..., 128}, or a larger "
        "embed_dim.")


def test_rope_with_an_odd_head_dim_in_python():
    from lmfeed import CausalSelfAttention

    with pytest.raises(ValueError, match=r"embed_dim=12 / num_heads=4 = 3\. Use num_heads in \{1, 2, 3, 6\}"):
        CausalSelfAttention(12, 4, positional="rope")
