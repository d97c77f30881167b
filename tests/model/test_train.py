"""lmfeed.model.train: exact resume (bit for bit on the CPU), refusals that change nothing, the baseline numbers."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lmfeed.model.baseline import position_structure, unigram_cross_entropy
from lmfeed.model.checkpoint import CheckpointError, load_checkpoint
from lmfeed.model.train import TrainConfig, train
from train_corpus import TOKENIZER, write_corpus

BATCHES_PER_EPOCH = 5


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    # one text cut so that the training split makes exactly BATCHES_PER_EPOCH batches of 4 windows of 16 tokens
    return write_corpus(tmp_path_factory.mktemp("corpus") / "text.txt", batches=BATCHES_PER_EPOCH)


def tiny(corpus: Path, out: Path, **overrides) -> TrainConfig:
    settings = {"source": str(corpus), "tokenizer": TOKENIZER, "embed_dim": 16, "num_layers": 2, "num_heads": 2,
                "context_length": 16, "batch_size": 4, "steps": 12, "lr": 1e-2, "dropout": 0.1,
                "eval_every": 4, "log_every": 1, "seed": 7, "device": "cpu", "out_dir": str(out)}
    settings.update(overrides)
    return TrainConfig(**settings)


def run_files(run: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.iterdir())}


def test_the_fixture_makes_the_epoch_length_the_tests_rely_on(corpus, tmp_path):
    from lmfeed.loading.loader import create_dataloader
    from lmfeed.model.data import training_splits

    splits = training_splits(str(corpus), TOKENIZER)
    assert len(create_dataloader(splits.train, 4, 16, 16, drop_last=True)) == BATCHES_PER_EPOCH


@pytest.fixture(scope="module")
def whole_run(corpus, tmp_path_factory):
    """12 steps without stopping: the run every resumed one must equal."""
    out = tmp_path_factory.mktemp("whole") / "run"
    result = train(tiny(corpus, out))
    assert result.step == 12 and result.reason == "done"
    return out, result


@pytest.mark.parametrize("stop", [3, BATCHES_PER_EPOCH, 7])  # mid-epoch, at the epoch boundary, in epoch 2
def test_stop_and_resume_gives_the_parameters_of_the_run_that_never_stopped(corpus, whole_run, tmp_path, stop):
    whole_dir, whole = whole_run
    part = train(tiny(corpus, tmp_path / "part"), stop_after=stop)
    assert part.step == stop and part.reason == "stopped" and part.interrupted
    resumed = train(tiny(corpus, tmp_path / "part"), resume=True)
    assert resumed.step == 12
    a = load_checkpoint(whole_dir)
    b = load_checkpoint(tmp_path / "part")
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name  # bit for bit, not allclose
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"]) and torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])
    assert a["loader"] == b["loader"] and a["loader"]["epoch"] == 12 // BATCHES_PER_EPOCH
    assert whole.val_loss == resumed.val_loss
    # one metrics line per step, none lost or repeated by the resume, and train losses equal step by step
    rows_a = [json.loads(x) for x in (whole_dir / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(x) for x in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows_b] == list(range(13))
    assert [r["train_loss"] for r in rows_a] == [r["train_loss"] for r in rows_b]


def test_a_different_shape_is_refused_by_name_and_the_run_dir_is_untouched(corpus, tmp_path):
    run = tmp_path / "run"
    train(tiny(corpus, run, steps=4))
    before = run_files(run)
    with pytest.raises(ValueError, match=r"embed_dim=16 in the checkpoint, 32 asked.*num_layers=2 in the checkpoint"):
        train(tiny(corpus, run, embed_dim=32, num_layers=3, steps=8), resume=True)
    with pytest.raises(ValueError, match=r"positional='learned' in the checkpoint, 'rope' asked"):
        train(tiny(corpus, run, positional="rope", steps=8), resume=True)
    with pytest.raises(ValueError, match=r"lr=0.01 in the checkpoint, 0.02 asked"):
        train(tiny(corpus, run, lr=0.02, steps=8), resume=True)
    with pytest.raises(ValueError, match="already holds a run"):
        train(tiny(corpus, run))  # a new run into it, without resume
    assert run_files(run) == before


def test_a_missing_or_damaged_checkpoint_is_an_error_that_changes_nothing(corpus, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(tiny(corpus, tmp_path / "nowhere"), resume=True)
    assert not (tmp_path / "nowhere").exists()
    run = tmp_path / "run"
    train(tiny(corpus, run, steps=4))
    path = run / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated, as by a full disk
    before = run_files(run)
    with pytest.raises(CheckpointError, match="damaged"):
        train(tiny(corpus, run, steps=8), resume=True)
    path.write_bytes(b"not a checkpoint at all")
    before = run_files(run)
    with pytest.raises(CheckpointError):
        train(tiny(corpus, run, steps=8), resume=True)
    assert run_files(run) == before


def test_checkpoint_holds_everything_that_decides_the_next_step(corpus, tmp_path):
    train(tiny(corpus, tmp_path / "run", steps=4))
    state = load_checkpoint(tmp_path / "run")
    assert {"model", "optimizer", "schedule", "loader", "rng", "step", "config", "init"} <= state.keys()
    assert state["step"] == 4 and state["schedule"]["last_epoch"] == 4
    assert {"torch", "numpy", "python"} <= state["rng"][0].keys()
    assert state["loader"]["position"] == 4 * 4 and state["loader"]["epoch"] == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["embed_dim"] == 16 and config["vocab_size"] == 300
    assert (tmp_path / "run" / "tokenizer.json").is_file()  # the run's own BPE, trained on its training split
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]  # no temporary file left


def test_the_schedule_warms_up_then_decays_to_a_tenth():
    config = TrainConfig(steps=100, warmup_steps=10)
    lrs = [config.lr_at(s) for s in range(101)]
    assert lrs[0] == pytest.approx(1 / 11) and lrs[9] == pytest.approx(10 / 11)
    assert lrs[10] == pytest.approx(1.0) and lrs[100] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))


def test_bad_settings_name_the_setting():
    with pytest.raises(ValueError, match="Unknown positional"):
        TrainConfig(positional="nope").validated()
    with pytest.raises(ValueError, match="lr must be a number above 0"):
        TrainConfig(lr=0.0).validated()
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        TrainConfig(embed_dim=30, num_heads=4).validated()
    with pytest.raises(ValueError, match="minutes"):
        TrainConfig(minutes=0).validated()
    assert dataclasses.replace(TrainConfig(), steps=5).validated().steps == 5


def test_unigram_cross_entropy_is_the_add_one_formula():
    train_ids = np.array([0, 0, 1, 2, 2, 2])
    targets = np.array([[0, 2, -100], [3, 1, 1]])
    # counts + 1 = [3, 2, 4, 1] over 6 + 4 = 10
    expected = -np.mean(np.log([3 / 10, 4 / 10, 1 / 10, 2 / 10, 2 / 10]))
    assert unigram_cross_entropy(train_ids, targets, vocab_size=4) == pytest.approx(expected)
    with pytest.raises(ValueError, match="vocab_size=3"):
        unigram_cross_entropy(train_ids, targets, vocab_size=3)


def test_position_structure_is_about_zero_for_noise_and_high_for_a_smooth_table():
    torch.manual_seed(0)
    assert abs(position_structure(torch.randn(128, 64))) < 0.05
    t = torch.arange(128, dtype=torch.float64)[:, None]
    smooth = torch.cat([torch.sin(t / 20 * (k + 1)) for k in range(8)], dim=1)  # slow waves: neighbours alike
    assert position_structure(smooth) > 0.5
    with pytest.raises(ValueError, match="T >= 4"):
        position_structure(torch.zeros(3, 8))
