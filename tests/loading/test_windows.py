import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from lmfeed.loading.windows import (
    DocumentOffsets,
    SlidingWindowDataset,
    as_token_array,
    document_window_starts,
    num_windows,
    restart_positions,
)
from seed_reference import SeedDataset

# "I HAD always thought Jack Gisburn rather a cheap" in GPT-2 ids (tiktoken)
VERDICT_START = [40, 367, 2885, 1464, 1807, 3619, 402, 271, 10899]


def test_seed_windows_by_hand():
    ds = SlidingWindowDataset(VERDICT_START, max_length=4, stride=4)
    assert len(ds) == 2
    x, y = ds[0]
    assert x.tolist() == [40, 367, 2885, 1464] and y.tolist() == [367, 2885, 1464, 1807]
    x, y = ds[1]
    assert x.tolist() == [1807, 3619, 402, 271] and y.tolist() == [3619, 402, 271, 10899]
    assert x.dtype == torch.int64 and x.shape == (4,)
    assert ds[-1][0].tolist() == ds[1][0].tolist()
    with pytest.raises(IndexError, match="out of range for 2 windows"):
        ds[2]


@given(
    ids=st.lists(st.integers(0, 50256), min_size=2, max_size=300),
    max_length=st.integers(1, 40),
    stride=st.integers(1, 50),
)
def test_windows_equal_the_seeds_and_targets_are_shifted_inputs(ids, max_length, stride):
    if len(ids) <= max_length:
        with pytest.raises(ValueError, match=f"needs at least {max_length + 1}"):
            SlidingWindowDataset(ids, max_length, stride)
        return
    ds = SlidingWindowDataset(ids, max_length, stride)
    seed = SeedDataset(ids, max_length, stride)
    assert len(ds) == len(seed) == num_windows(len(ids), max_length, stride)
    batch = ds.__getitems__(list(range(len(ds))))
    for k in range(len(ds)):
        s = k * stride
        assert s + max_length < len(ids)
        assert torch.equal(batch.inputs[k], seed[k][0]) and torch.equal(batch.targets[k], seed[k][1])
        assert batch.inputs[k].tolist() == ids[s : s + max_length]
        assert batch.targets[k][:-1].tolist() == batch.inputs[k][1:].tolist()
    # every window start is covered: the next one would not have a full target
    assert len(ds) * stride + max_length >= len(ids)


def test_ids_are_held_once_not_per_window():
    ids = (np.arange(1_000_000) % 50257).astype(np.uint16)
    ds = SlidingWindowDataset(ids, max_length=1024, stride=1)
    assert len(ds) == 1_000_000 - 1024
    assert ds.token_ids is ids  # no copy of an array
    assert np.shares_memory(ds._all_windows, ids)
    x, y = ds[123_456]
    assert x.tolist() == ids[123_456 : 123_456 + 1024].tolist()


def test_lists_are_stored_narrow_and_tensors_not_copied():
    assert as_token_array([1, 2, 50256]).dtype == np.uint16
    assert as_token_array([1, 70_000]).dtype == np.uint32
    t = torch.tensor([5, 6, 7])
    assert np.shares_memory(as_token_array(t), t.numpy())


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (torch.tensor([1.0, 2.0]), TypeError, "integer token ids.*float32"),
        (np.array([1.5, 2.5]), TypeError, "integer token ids"),
        ("some text", TypeError, "not str"),
        ([1, -3, 4], ValueError, "negative id, -3, at position 1"),
        (np.zeros((2, 3), dtype=np.int64), ValueError, r"1-D.*\(2, 3\)"),
        ([[1, 2], [3]], TypeError, "flat sequence"),
    ],
)
def test_bad_ids_are_clear_errors(bad, error, match):
    with pytest.raises(error, match=match):
        SlidingWindowDataset(bad, 1, 1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(max_length=0, stride=1), ValueError, "max_length must be at least 1, but got 0"),
        (dict(max_length=4, stride=-2), ValueError, "stride must be at least 1, but got -2"),
        (dict(max_length=4.0, stride=1), TypeError, "max_length must be an integer, but got 4.0"),
        (dict(max_length=True, stride=1), TypeError, "max_length must be an integer"),
        (dict(max_length=9, stride=1), ValueError, "max_length=9 needs at least 10 tokens.*has 9. Lower max_length"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        SlidingWindowDataset(VERDICT_START, **kwargs)


def test_restart_positions_restart_after_every_endoftext():
    ids = torch.tensor([[5, 6, 50256, 7, 8, 50256], [50256, 1, 2, 3, 4, 5]])
    # EOS style: end-of-text is the last token of its document; the token after it is position 0
    assert restart_positions(ids, 50256).tolist() == [[0, 1, 2, 0, 1, 2], [0, 0, 1, 2, 3, 4]]
    # BOS style: the separator opens its document at position 0
    assert restart_positions(ids, 50256, separator="bos").tolist() == [[0, 1, 0, 1, 2, 0], [0, 1, 2, 3, 4, 5]]


@given(
    lengths=st.lists(st.integers(1, 30), min_size=1, max_size=12),
    max_length=st.integers(1, 12),
    stride=st.integers(1, 12),
)
def test_document_windows_never_cross_a_boundary(lengths, max_length, stride):
    eot = 99
    stream = []
    for i, n in enumerate(lengths):
        if i:
            stream.append(eot)
        stream.extend([1] * n)
    ids = np.array(stream)
    starts, dropped = document_window_starts(ids, max_length, stride, eot_id=eot)
    expected, expected_dropped, a = [], 0, 0
    for i, n in enumerate(lengths):  # chunk = the document plus its separator (none after the last)
        chunk = n + (1 if i < len(lengths) - 1 else 0)
        found = [a + s for s in range(0, chunk - max_length, stride)]
        expected += found
        expected_dropped += 0 if found else chunk
        a += chunk
    assert starts.tolist() == expected and dropped == expected_dropped
    for s in starts:
        assert eot not in ids[s : s + max_length]  # inputs stay inside one document


@given(lengths=st.lists(st.integers(1, 30), min_size=1, max_size=12), max_length=st.integers(1, 12))
def test_document_offsets_number_every_safe_offset_once(lengths, max_length):
    eot = 99
    stream = []
    for i, n in enumerate(lengths):
        stream += ([eot] if i else []) + [1] * n
    ids = np.array(stream)
    table = DocumentOffsets(ids, max_length, eot_id=eot)
    # independently: every offset whose input holds no separator (its target stays in the stream)
    safe = [s for s in range(len(ids) - max_length) if eot not in ids[s : s + max_length]]
    assert table.offsets(np.arange(len(table))).tolist() == safe
    assert table.dropped_tokens == document_window_starts(ids, max_length, 1, eot_id=eot)[1]


@pytest.mark.parametrize("packing", [None, "best_fit"])
def test_a_dataset_over_in_memory_ids_pickles_as_its_ids_not_as_every_window(packing):
    # a spawn context (macOS, Windows) pickles the dataset into each worker: the window view must not be written out
    import pickle

    from lmfeed import create_dataloader

    ids = torch.from_numpy(np.random.default_rng(0).integers(0, 50_000, 100_000))
    ids[::700] = 50256  # documents, for packing
    loader = create_dataloader(ids, batch_size=8, max_length=1024, stride=1024, shuffle=False,
                               **({"packing": packing, "respect_documents": True} if packing else {}))
    data = pickle.dumps(loader.dataset)
    assert len(data) < 3 * ids.numpy().nbytes  # the ids (and for packing, its segment table), not 100,000 windows
    again = pickle.loads(data)
    for indices in ([0, 1, 2], [len(again) - 1, 5]):
        want, got = loader.dataset.__getitems__(indices), again.__getitems__(indices)
        assert torch.equal(want.inputs, got.inputs) and torch.equal(want.targets, got.targets)
