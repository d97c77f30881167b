"""`lmfeed train` and `lmfeed generate` from the command line: results on stdout, pictures, one-line errors, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from lmfeed.cli import main
from lmfeed.model.checkpoint import load_checkpoint
from train_corpus import TOKENIZER, write_corpus

TINY = ["--tokenizer", TOKENIZER, "--embed-dim", "16", "--num-layers", "1", "--num-heads", "2",
        "--context-length", "16",
        "--batch-size", "4", "--lr", "0.01", "--seed", "3", "--device", "cpu"]


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-train")
    corpus = write_corpus(root / "text.txt", batches=4)
    out = root / "run"
    result = run("train", str(corpus), "-o", str(out), "--steps", "6", "--eval-every", "6", "--quiet", *TINY)
    return corpus, out, result


def test_train_prints_the_baseline_and_the_result_and_writes_the_run(trained):
    _, out, result = trained
    assert result.exit_code == 0, result.output
    assert "unigram baseline" in result.output and "validation loss" in result.output
    assert "position structure" in result.output  # learned positions: before -> after
    for name in ("config.json", "metrics.jsonl", "checkpoint.pt", "loss.png", "token-embeddings.png",
                 "position-embeddings.png", "neighbours.md"):
        assert (out / name).is_file(), name
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| word | step 0 (random) | after training |" in (out / "neighbours.md").read_text()


def test_generate_prints_the_prompt_and_its_continuation(trained):
    _, out, _ = trained
    result = run("generate", str(out), "--prompt", "The expression", "--max-new-tokens", "8", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("The expression") and len(result.output) > len("The expression\n")
    again = run("generate", str(out), "--prompt", "The expression", "--max-new-tokens", "8", "--seed", "1")
    assert again.output == result.output


def test_errors_are_one_line_and_change_nothing(trained, tmp_path):
    corpus, out, _ = trained
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    cases = [
        (["train", "--resume", str(tmp_path / "nowhere")], "nothing to resume"),
        (["train", "--resume", str(out), "--embed-dim", "32"], "embed_dim=16 in the checkpoint, 32 asked"),
        (["train", str(corpus), "-o", str(out), *TINY], "already holds a run"),
        (["train", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "r")], "No such file"),
        (["train", "--positional", "nope", "-o", str(tmp_path / "r")], "Unknown positional 'nope'"),
        (["generate", str(tmp_path / "nowhere")], "nothing to generate from"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        lines = result.output.strip().splitlines()
        assert lines[-1].startswith("Error: ") and message in lines[-1], (args, result.output)
        assert "Traceback" not in result.output
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert not (tmp_path / "r").exists()


def test_help_names_the_options_in_the_librarys_words():
    result = run("train", "--help")
    for option in ("--positional", "--embed-dim", "--num-layers", "--num-heads", "--context-length", "--batch-size",
                   "--steps", "--minutes", "--lr", "--weight-decay", "--grad-clip", "--eval-every", "--seed",
                   "--device", "--resume", "--tokenizer"):
        assert option in result.output


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    corpus = write_corpus(tmp_path / "text.txt", batches=4)
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "lmfeed", "train", str(corpus), "-o", str(out), "--steps",
                             "100000", "--log-every", "1", "--no-plots", *TINY],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and (not metrics.is_file() or len(metrics.read_text().splitlines()) < 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "Interrupted at step" in stderr
    step = load_checkpoint(out)["step"]
    assert step >= 2 and f"at step {step:,}" in stdout
    resumed = run("train", "--resume", str(out), "--steps", str(step + 2), "--no-plots", "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert load_checkpoint(out)["step"] == step + 2
