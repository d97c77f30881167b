"""lmfeed train under torchrun: two ranks on the CPU (gloo), DDP; the loss goes down and resume is exact there too."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lmfeed.model.checkpoint import load_checkpoint
from train_corpus import TOKENIZER, write_corpus

pytestmark = pytest.mark.slow

TINY = ["--tokenizer", TOKENIZER, "--embed-dim", "16", "--num-layers", "2", "--num-heads", "2",
        "--context-length", "16",
        "--batch-size", "4", "--lr", "0.01", "--eval-every", "4", "--log-every", "1", "--seed", "3", "--device", "cpu",
        "--no-plots"]


def torchrun(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    assert exe, "torchrun comes with torch"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([exe, "--standalone", "--nproc-per-node", "2", "-m", "lmfeed", "train", *args],
                          env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_two_ranks_train_and_resume_exactly(tmp_path):
    corpus = str(write_corpus(tmp_path / "text.txt", batches=6, batch_size=4))  # 3 steps an epoch on 2 ranks
    whole = tmp_path / "whole"
    proc = torchrun(corpus, "-o", str(whole), "--steps", "10", *TINY)
    assert proc.stdout.count("unigram baseline") == 1  # rank 0 reports, rank 1 does not
    rows = [json.loads(x) for x in (whole / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(11))  # one writer: no line twice
    assert rows[-1]["tokens"] == 10 * 2 * 4 * 16  # both ranks' batches count
    assert rows[-1]["val_loss"] < rows[0]["val_loss"] - 0.5
    assert rows[-1]["train_loss"] < rows[1]["train_loss"]
    config = json.loads((whole / "config.json").read_text())
    assert config["world_size"] == 2

    part = tmp_path / "part"
    torchrun(corpus, "-o", str(part), "--steps", "10", "--stop-after", "4", *TINY)  # mid-epoch 2
    assert load_checkpoint(part)["step"] == 4
    torchrun("--resume", str(part), "--quiet")
    a, b = load_checkpoint(whole), load_checkpoint(part)
    assert b["step"] == 10 and len(b["rng"]) == 2
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
