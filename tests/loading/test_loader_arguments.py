"""Items 9 and 17 of #15 (loader side): arguments that were silently misread or gave Python's own messages."""

import numpy as np
import pytest
import torch

from lmfeed import create_dataloader, create_train_val_loaders

IDS = list(range(100, 300))
KW = {"batch_size": 2, "max_length": 4, "stride": 4}


@pytest.mark.parametrize("name", ["shuffle", "drop_last", "respect_documents", "return_positions", "pin_memory",
                                  "persistent_workers"])
@pytest.mark.parametrize("value", ["False", "True", 0, 1, None, "no"])
def test_every_bool_option_refuses_what_is_not_a_bool(name, value):
    with pytest.raises(TypeError, match=rf"{name} must be True or False, but got {value!r}"):
        create_dataloader(IDS, **KW, **{name: value})


def test_a_string_bool_says_to_drop_the_quotes():
    with pytest.raises(TypeError, match=r"shuffle=False without quotes"):
        create_dataloader(IDS, **KW, shuffle="False")


def test_numpy_bools_are_bools():
    loader = create_dataloader(IDS, **KW, shuffle=np.False_, drop_last=np.True_)
    assert (loader.drop_last, loader.sampler.shuffle) == (True, False)


@pytest.mark.parametrize(("ids", "first", "where"), [
    ([2**63] * 50, 2**63, 0),
    (np.full(50, 2**63 + 5, dtype=np.uint64), 2**63 + 5, 0),
    (torch.full((50,), 2**63 + 5, dtype=torch.uint64), 2**63 + 5, 0),
    ([*range(40), 2**64 + 3, *range(9)], 2**64 + 3, 40),  # past uint64: numpy holds it only as objects
])
def test_ids_past_int64_are_refused_with_the_real_id(ids, first, where):
    with pytest.raises(ValueError, match=rf"holds the id {first:,} at position {where}, "):
        create_dataloader(ids, **KW)


def test_uint64_ids_that_fit_are_served_unchanged():
    ids = np.arange(100, 300, dtype=np.uint64)
    inputs, targets = next(iter(create_dataloader(ids, **KW, shuffle=False)))
    assert inputs.tolist() == [[100, 101, 102, 103], [104, 105, 106, 107]]


def test_num_samples_with_sliding_windows_is_refused():
    with pytest.raises(ValueError, match=r"num_samples=7 is for sampling='random'.*Pass sampling='random', or drop"):
        create_dataloader(IDS, **KW, num_samples=7)


def test_a_huge_num_samples_is_a_range_error():
    with pytest.raises(ValueError, match=r"num_samples must be at most 281,474,976,710,656, but got"):
        create_dataloader(IDS, **KW, sampling="random", num_samples=2**70)


@pytest.mark.parametrize("seed", [2**64, 2**70, -1])
def test_a_seed_out_of_range_is_a_range_error(seed):
    with pytest.raises(ValueError, match=r"seed must be at (most 18,446,744,073,709,551,615|least 0)"):
        create_dataloader(IDS, **KW, seed=seed)


def test_the_largest_seed_works():
    assert len(list(create_dataloader(IDS, **KW, seed=2**64 - 1))) == 24


def test_an_unknown_tokenizer_is_refused_for_ids_too():
    with pytest.raises(ValueError, match="Unknown tokenizer 'gpt-two'"):
        create_dataloader(IDS, **KW, tokenizer="gpt-two")


def test_a_str_naming_a_file_is_text_as_in_the_seed_but_warns(tmp_path, monkeypatch):
    (tmp_path / "story.txt").write_text("a story " * 50)
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match=r"names an existing path.*pass pathlib.Path\('story.txt'\)"):
        loader = create_dataloader("story.txt", batch_size=1, max_length=1, stride=1, shuffle=False)
    inputs, _ = next(iter(loader))
    assert inputs.tolist() == [[13571]]  # GPT-2's "story": the name itself, as the seed would read it


def test_train_val_loaders_take_shuffle_and_drop_last_and_name_unknown_options(tmp_path):
    from lmfeed.store.prepare import prepare
    from lmfeed.text.sources import python_reference

    root = tmp_path / "docs"
    root.mkdir()
    for i, doc in enumerate(python_reference()[:20]):
        (root / f"{i:02d}.txt").write_text(doc)
    split = tmp_path / "split"
    prepare(root, split, workers=1, val_fraction=0.3, seed=0)
    train, val = create_train_val_loaders(split, batch_size=2, max_length=8, stride=8, shuffle=False,
                                          drop_last=False)
    assert (train.sampler.shuffle, train.drop_last, val.sampler.shuffle, val.drop_last) == (False, False, False,
                                                                                           False)
    with pytest.raises(TypeError, match=r"unknown option 'shufle'.*respect_documents"):
        create_train_val_loaders(split, shufle=False)
    with pytest.raises(TypeError, match="shuffle must be True or False"):
        create_train_val_loaders(split, shuffle="no")


@pytest.mark.parametrize("build", [
    lambda: __import__("lmfeed").SlidingWindowDataset(IDS, 4, 4, return_positions="False", eot_id=0),
    lambda: __import__("lmfeed").RelativePositionBias(4, bidirectional="False"),
    lambda: __import__("lmfeed").TokenEmbedding.from_pretrained(torch.zeros(3, 2), freeze="False"),
])
def test_the_same_bool_check_guards_the_other_public_bool_options(build):
    with pytest.raises(TypeError, match=r"must be True or False, but got 'False' \(str\)"):
        build()
