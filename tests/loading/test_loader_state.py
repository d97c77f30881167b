"""Item 8 of #15: load_state_dict validates types and ranges, and refuses a state taken in another mode by name."""

import json

import pytest
import torch

from lmfeed import create_dataloader

KW = {"batch_size": 2, "max_length": 4, "stride": 4, "seed": 3}


@pytest.fixture(scope="module")
def ids():
    return list(range(1000, 1250))  # 62 windows of 4: 31 batches of 2


def taken(ids, k=3, **kwargs):
    loader = create_dataloader(ids, **{**KW, **kwargs})
    it = iter(loader)
    for _ in range(k):
        next(it)
    return loader.state_dict()


def test_the_state_records_the_mode_and_survives_json(ids):
    state = taken(ids)
    assert state["mode"] == {"shuffle": True, "drop_last": True, "sampling": "windows", "respect_documents": False,
                             "max_length": 4, "stride": 4, "packing": None, "long_documents": None,
                             "weights": None}
    loader = create_dataloader(ids, **KW)
    loader.load_state_dict(json.loads(json.dumps(state)))  # a checkpoint written as JSON loads as it was
    assert len(list(loader)) == 31 - 3


@pytest.mark.parametrize(("position", "message"), [
    (-8, r"'position'.* at least 0"),
    (10**9, r"position=1,000,000,000 is past the end of an epoch: 62 windows at world_size=1 give 62 positions"),
    (64, "past the end of an epoch"),
])
def test_a_position_out_of_range_is_refused(ids, position, message):
    state = {**taken(ids), "position": position}
    loader = create_dataloader(ids, **KW)
    with pytest.raises(ValueError, match=message):
        loader.load_state_dict(state)
    assert len(list(loader)) == 31  # nothing was loaded


def test_a_position_at_the_end_of_the_epoch_is_the_next_epoch(ids):
    loader = create_dataloader(ids, **KW)
    loader.load_state_dict({**taken(ids), "position": 62})
    assert list(loader) == [] and loader.epoch == 1


@pytest.mark.parametrize(("setting", "other"), [
    ("shuffle", {"shuffle": False}),
    ("drop_last", {"drop_last": False}),
    ("respect_documents", {"respect_documents": True}),
    ("sampling", {"sampling": "random", "num_samples": 62}),
    ("max_length", {"max_length": 3}),  # over these 250 ids also 62 windows: only the setting tells them apart
    ("stride", {"stride": 5, "extra": 60}),  # 310 ids at stride 5: 62 windows again
    ("packing", {"packing": "best_fit"}),
])
def test_a_state_from_another_mode_is_refused_with_the_setting_named(ids, setting, other):
    eot_ids = [*ids[:120], 50256, *ids[120:]]  # one end-of-text, so respect_documents has documents
    state = taken(eot_ids)
    extra = other.pop("extra", 0)
    loader = create_dataloader([*eot_ids, *range(2000, 2000 + extra)], **{**KW, **other})
    with pytest.raises(ValueError, match=rf"taken with {setting}=.*but this loader has {setting}="):
        loader.load_state_dict(state)


def test_a_shuffled_state_in_an_unshuffled_loader_is_refused(ids):
    with pytest.raises(ValueError, match="shuffle=True, but this loader has shuffle=False"):
        create_dataloader(ids, **{**KW, "shuffle": False}).load_state_dict(taken(ids))


def test_blend_weights_are_part_of_the_mode(tmp_path):
    import numpy as np

    from lmfeed.store.prepare import prepare

    for name, part in (("a", range(100, 300)), ("b", range(400, 600))):
        (tmp_path / f"{name}.txt").write_text(" ".join(f"w{i}" for i in part))
        prepare(tmp_path / f"{name}.txt", tmp_path / f"{name}.store", workers=1)
    sources = {str(tmp_path / "a.store"): 0.7, str(tmp_path / "b.store"): 0.3}
    first = create_dataloader(sources, **KW, num_samples=40)
    next(iter(first))
    state = first.state_dict()
    assert np.allclose(state["mode"]["weights"], [0.7, 0.3])
    swapped = dict(zip(sources, (0.3, 0.7), strict=True))
    with pytest.raises(ValueError, match=r"source weights=\[0\.7.*0\.3.*\], but this loader has source weights"):
        create_dataloader(swapped, **KW, num_samples=40).load_state_dict(state)


@pytest.mark.parametrize(("key", "value", "error", "message"), [
    ("position", "12", TypeError, r"the loader state's 'position' must be an integer, but got '12'"),
    ("epoch", 1.0, TypeError, r"'epoch' must be an integer"),
    ("epoch", -1, ValueError, r"'epoch' must be at least 0"),
    ("epoch_seed", "x", TypeError, r"'epoch_seed' must be an integer"),
    ("epoch_seed", 2**64, ValueError, r"'epoch_seed' must be at most"),
    ("epoch_seed", 12345, ValueError, r"epoch_seed=12345 is not the one seed=3 gives epoch 0"),
    ("num_items", True, TypeError, r"'num_items' must be an integer"),
    ("world_size", 0, ValueError, r"'world_size' must be at least 1"),
    ("mode", None, ValueError, r"'mode' should be a dict"),
    ("version", True, ValueError, r"version True"),
    ("version", 3, ValueError, r"version 3; this lmfeed reads versions 1 and 2"),
])
def test_bad_values_are_clear_errors(ids, key, value, error, message):
    with pytest.raises(error, match=message):
        create_dataloader(ids, **KW).load_state_dict({**taken(ids), key: value})


@pytest.mark.parametrize("key", ["epoch", "position", "epoch_seed", "seed", "num_items"])
def test_a_missing_key_is_named(ids, key):
    state = taken(ids)
    del state[key]
    with pytest.raises(ValueError, match=rf"The loader state has no '{key}' \(it holds .*\)\. Pass the dict"):
        create_dataloader(ids, **KW).load_state_dict(state)


def test_a_mode_missing_a_setting_is_named(ids):
    state = taken(ids)
    del state["mode"]["drop_last"]
    with pytest.raises(ValueError, match="mode has no 'drop_last'"):
        create_dataloader(ids, **KW).load_state_dict(state)


@pytest.mark.parametrize("state", [None, [1, 2], {"epoch": 1}, {}])
def test_not_a_state(ids, state):
    with pytest.raises(ValueError, match="Not a lmfeed loader state"):
        create_dataloader(ids, **KW).load_state_dict(state)


def test_a_version_1_state_still_loads_unchecked(ids, caplog):
    state = taken(ids)
    state.pop("mode")
    state["version"] = 1
    loader = create_dataloader(ids, **KW)
    loader.load_state_dict(state)
    assert "version-1 loader state" in caplog.text
    expected = create_dataloader(ids, **KW)
    expected.load_state_dict(taken(ids))
    assert all(torch.equal(x[0], y[0]) for x, y in zip(loader, expected, strict=True))


def test_an_unshuffled_state_with_an_epoch_seed_is_refused(ids):
    state = {**taken(ids, shuffle=False), "epoch_seed": 5}
    with pytest.raises(ValueError, match="draws none"):
        create_dataloader(ids, **{**KW, "shuffle": False}).load_state_dict(state)
