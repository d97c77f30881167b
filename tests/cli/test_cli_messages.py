"""CLI and API messages that used to name the wrong thing or give Python's own words (issue #15, items 17, 22, 29)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import lmfeed
from lmfeed.cli import main
from lmfeed.loading.loader import create_dataloader


def cli(*args, input=None):  # noqa: A002 - click's name
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.mark.parametrize("command", [["prepare", "{a}"], ["merge", "{s}"], ["export", "{s}"]])
def test_an_empty_output_is_named_as_empty(tmp_path, command):
    (tmp_path / "a.txt").write_text("Hello")
    assert cli("prepare", tmp_path / "a.txt", "-o", tmp_path / "s", "-q").exit_code == 0
    args = [c.format(a=tmp_path / "a.txt", s=tmp_path / "s") for c in command]
    line = error_line(cli(*args, "-o", ""))
    assert line.startswith("Error: The output is empty ('')") and "'.' already exists" not in line


def test_prepare_arguments_that_are_not_paths():
    with pytest.raises(TypeError, match=r"inputs must be a path .* but got None"):
        lmfeed.prepare(None, "out.store")
    with pytest.raises(TypeError, match=r"The output must be a path \(the store's directory\), but got None"):
        lmfeed.prepare(["-"], None)


def test_prepare_accepts_bytes_paths(tmp_path):
    (tmp_path / "a.txt").write_text("Hello world")
    store = lmfeed.prepare(bytes(tmp_path / "a.txt"), bytes(tmp_path / "s"), workers=1)
    assert store.tokens.tolist() == [15496, 995]


def test_one_empty_document_is_one_document(tmp_path):
    line = error_line(cli("prepare", "-", "-o", tmp_path / "s", "-q", "--workers", "1", input=""))
    assert line.endswith("1 document in -, but no text in it. Check the inputs.")


def test_plot_embed_dim_zero_says_how_small_not_how_large(tmp_path):
    line = error_line(cli("plot", "--out", tmp_path, "--embed-dim", "0"))
    assert "embed_dim must be at least 2, but got 0" in line and "Draw fewer" not in line
    assert "--embed-dim 2 or more" in line
    line = error_line(cli("plot", "--out", tmp_path, "--positions", "1"))
    assert "--positions 2 or more" in line and "Draw fewer" not in line


# ---- item 22: batch K is gathered directly ----------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [[], ["--shuffle", "--seed", "3"]])
def test_batch_index_gathers_only_that_batch(tmp_path, monkeypatch, shuffle):
    from lmfeed.loading.windows import SlidingWindowDataset

    text = tmp_path / "t.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 30)
    loader = create_dataloader(text, batch_size=4, max_length=8, stride=8, shuffle=bool(shuffle),
                               seed=3 if shuffle else None)
    batches = list(loader)  # the reference: every batch of the pass, in order
    gathered = []
    getitems = SlidingWindowDataset.__getitems__

    def counting(self, indices):  # noqa: ANN001
        gathered.append(len(indices))
        return getitems(self, indices)

    monkeypatch.setattr(SlidingWindowDataset, "__getitems__", counting)
    for index in (-1, 3, 0):
        gathered.clear()
        r = cli("batch", text, "--batch-size", 4, "--max-length", 8, "--stride", 8, "--index", index, "--json",
                *shuffle)
        assert r.exit_code == 0, r.output
        import json

        data = json.loads(r.output)
        want = batches[index]
        assert data["inputs"] == want[0].tolist() and data["targets"] == want[1].tolist()
        assert gathered == [4]  # one batch gathered, not the index + 1 before it
    assert np.array_equal(batches[-1][0].numpy(), np.array(json.loads(
        cli("batch", text, "--batch-size", 4, "--max-length", 8, "--stride", 8, "--index", len(batches) - 1,
            "--json", *shuffle).output)["inputs"]))


# ---- item 29: Ctrl-C while the command starts ------------------------------------------------------------------

_STARTING = """
import os, signal, sys, time
sys.argv[0] = {argv0!r}
import lmfeed
{then}
"""


def _python(code: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)


def test_ctrl_c_while_the_command_starts_exits_quietly():
    # the signal lands after `import lmfeed` and before lmfeed.cli is loaded: the command's start-up
    done = _python(_STARTING.format(argv0="/usr/local/bin/lmfeed",
                                    then="os.kill(os.getpid(), signal.SIGINT); time.sleep(30); import lmfeed.cli"))
    assert (done.returncode, done.stderr) == (130, ""), done.stderr


def test_once_started_ctrl_c_is_a_keyboard_interrupt_again_and_programs_are_untouched():
    done = _python(_STARTING.format(argv0="/usr/local/bin/lmfeed", then=(
        "import lmfeed.cli\n"
        "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)")))
    assert done.stdout == "True\n", done.stderr  # click's "Aborted!" and prepare's clean-up see KeyboardInterrupt
    done = _python(_STARTING.format(argv0="train.py", then="print(signal.getsignal(signal.SIGINT) is "
                                                           "signal.default_int_handler)"))
    assert done.stdout == "True\n", done.stderr  # `import lmfeed` in a program changes nothing


def test_embed_from_a_closed_stdin_is_one_error_line():
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "from lmfeed.cli import main; main()", "embed", "-"],
                          capture_output=True, text=True, check=False, preexec_fn=lambda: os.close(0))
    assert done.returncode == 1 and done.stderr.startswith("Error: stdin ('-') is closed"), done.stderr
