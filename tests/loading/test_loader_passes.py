"""Items 23 and 24 of #15: nested passes leave the training pass alone, and the loader reports its settings.

The book's ch05 loop (``train_model_simple``) calls ``evaluate_model`` between training steps, which iterates a few
batches of the *training* loader while the training pass is live. That nested pass must not move the training
pass: ``state_dict()`` describes the training pass, a resumed run continues it exactly, and only a completed
training pass advances the epoch.
"""

import pytest
import torch
from llms_from_scratch.ch04 import GPTModel
from llms_from_scratch.ch05 import calc_loss_batch, calc_loss_loader, evaluate_model

from lmfeed import create_dataloader

IDS = list(range(3000, 3400))  # 99 windows of 4 at stride 4
KW = {"batch_size": 4, "max_length": 4, "stride": 4}


def clone(batch):
    return tuple(t.clone() for t in batch)


@pytest.mark.parametrize("seed", [None, 5])
@pytest.mark.parametrize("num_workers", [0, 1])
def test_a_nested_pass_leaves_the_training_pass_alone(seed, num_workers):
    loader = create_dataloader(IDS, **KW, seed=seed, num_workers=num_workers)
    reference = create_dataloader(IDS, **KW, seed=seed)
    torch.manual_seed(0)
    expected = [clone(b) for b in reference]
    torch.manual_seed(0)
    got, states = [], []
    for k, batch in enumerate(loader):
        got.append(clone(batch))
        before = loader.state_dict()
        for i, _ in enumerate(loader):  # the book's evaluate_model: a few batches, then break
            if i == 2:
                break
        if k == 5:
            assert len(list(loader)) == len(loader)  # a nested pass to the very end: still no epoch change
        assert loader.state_dict() == before
        states.append(before)
    if seed is not None:  # without a seed the nested passes draw from the global RNG, as DataLoader's would
        assert all(torch.equal(x[0], y[0]) for x, y in zip(got, expected, strict=True))
    assert len(got) == len(loader) == 24
    assert loader.epoch == 1 and loader.state_dict()["position"] == 0  # the training pass completed: one epoch
    assert [s["position"] for s in states[:3]] == [4, 8, 12] and states[0]["epoch"] == 0


def test_a_state_saved_between_evaluations_resumes_the_training_order_without_a_seed():
    torch.manual_seed(11)
    loader = create_dataloader(IDS, **KW)
    it = iter(loader)
    head = [clone(next(it)) for _ in range(3)]
    for i, _ in enumerate(loader):  # evaluation: a new shuffle is drawn for it
        if i == 1:
            break
    state = loader.state_dict()
    rest = [clone(b) for b in it]
    resumed = create_dataloader(IDS, **KW)
    resumed.load_state_dict(state)
    assert all(torch.equal(x[0], y[0]) for x, y in zip(resumed, rest, strict=True)) and len(head) + len(rest) == 24


def test_a_completed_pass_advances_the_epoch_also_a_loss_over_the_whole_loader():
    loader = create_dataloader(IDS, **KW, seed=1)
    model = lambda x: torch.zeros(*x.shape, 50257)  # noqa: E731 - only the loop over the loader matters here
    calc_loss_loader(loader, model, "cpu")  # the book's train loss over the whole loader, before training
    assert loader.epoch == 1
    loader2 = create_dataloader(IDS, **KW, seed=1)
    loader2.set_epoch(1)
    assert all(torch.equal(x[0], y[0]) for x, y in zip(loader, loader2, strict=True))


def test_an_abandoned_training_pass_restarts_and_a_held_one_is_still_live():
    loader = create_dataloader(IDS, **KW, seed=2)
    first = [clone(b) for b in loader]
    loader.set_epoch(0)
    for _ in loader:
        break  # abandoned: dropped at once, so the next iter() is a training pass from the start again
    assert all(torch.equal(x[0], y[0]) for x, y in zip(loader, first, strict=True))
    assert loader.epoch == 1
    held = iter(loader)
    start = next(held)
    nested = iter(loader)  # made while `held` is live: nested, starts its own walk of the same epoch
    assert torch.equal(next(nested)[0], start[0]) and loader.state_dict() == {**loader.state_dict(), "epoch": 1,
                                                                              "position": 4}


# -- the book's loop: train pass, evaluation passes inside, save, resume ------------------------------------------

CFG = {"vocab_size": 128, "context_length": 4, "emb_dim": 8, "n_heads": 2, "n_layers": 1, "drop_rate": 0.1,
       "qkv_bias": False}


def book_loop(model, optimizer, train_loader, val_loader, *, epochs, eval_freq, eval_iter, global_step=-1,
              stop_at=None):
    """train_model_simple's shape: the epoch loop, a training step per batch, evaluate_model every eval_freq steps."""
    losses = []
    while train_loader.epoch < epochs:
        model.train()
        for input_batch, target_batch in train_loader:
            optimizer.zero_grad()
            loss = calc_loss_batch(input_batch, target_batch, model, "cpu")
            loss.backward()
            optimizer.step()
            global_step += 1
            if global_step % eval_freq == 0:
                losses.append(evaluate_model(model, train_loader, val_loader, "cpu", eval_iter))
            if global_step == stop_at:  # a checkpoint, then the run is killed
                return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "loader": train_loader.state_dict(), "rng": torch.get_rng_state(), "step": global_step,
                        "losses": losses}
    return {"model": model.state_dict(), "losses": losses}


def build(seed):
    torch.manual_seed(123)
    model = GPTModel(CFG)
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1)
    train = create_dataloader(list(range(100)), batch_size=2, max_length=4, stride=4, shuffle=True, seed=seed)
    val = create_dataloader(list(range(28, 128)), batch_size=2, max_length=4, stride=4, shuffle=False,
                            drop_last=False)
    return model, optimizer, train, val


@pytest.mark.parametrize("seed", [None, 7])
@pytest.mark.parametrize("stop_at", [6, 11, 17])  # after an evaluation, the last step of epoch 0, mid-epoch 1
def test_the_books_loop_resumed_equals_the_uninterrupted_run(seed, stop_at):
    settings = {"epochs": 2, "eval_freq": 3, "eval_iter": 2}  # 24 windows: 12 steps an epoch
    model, optimizer, train, val = build(seed)
    uninterrupted = book_loop(model, optimizer, train, val, **settings)

    model, optimizer, train, val = build(seed)
    saved = book_loop(model, optimizer, train, val, **settings, stop_at=stop_at)
    model, optimizer, train, val = build(seed)  # a new process: everything from the checkpoint
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    train.load_state_dict(saved["loader"])
    torch.set_rng_state(saved["rng"])
    rest = book_loop(model, optimizer, train, val, **settings, global_step=saved["step"])

    assert saved["losses"] + rest["losses"] == uninterrupted["losses"]
    for name, value in uninterrupted["model"].items():
        assert torch.equal(rest["model"][name], value), name


# -- item 24: what the loader reports ---------------------------------------------------------------------------

def test_batch_size_drop_last_and_sampler_are_the_configured_values():
    loader = create_dataloader(IDS, batch_size=2, max_length=4, stride=4, shuffle=True, drop_last=True, seed=0)
    assert (loader.batch_size, loader.drop_last) == (2, True)
    assert len(loader) * loader.batch_size == 98 == len(loader.sampler)  # the book's count of training windows
    assert loader.sampler.shuffle and loader.sampler.seed == 0
    flat = [i for b in loader.batch_sampler.batches(loader.sampler._current()) for i in b.tolist()]
    assert list(loader.sampler) == flat and sorted(flat) == sorted(set(flat))
    kept = create_dataloader(IDS, batch_size=2, max_length=4, stride=4, shuffle=False, drop_last=False)
    assert (kept.batch_size, kept.drop_last, kept.sampler.shuffle) == (2, False, False)
    assert list(kept.sampler) == list(range(99)) and len(kept) == 50
    with pytest.raises(ValueError, match="batch_size attribute should not be set"):
        loader.batch_size = 3  # as DataLoader: fixed once built
