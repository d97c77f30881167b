import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from lmfeed import create_dataloader, get_tokenizer
from lmfeed.loading.sampler import WindowBatchSampler, WindowOrder
from seed_reference import seed_dataloader


def batches(loader):
    return [tuple(t.clone() for t in b) for b in loader]


def same(a, b):
    return len(a) == len(b) and all(all(torch.equal(x, y) for x, y in zip(p, q, strict=True))
                                    for p, q in zip(a, b, strict=True))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(batch_size=8, max_length=4, stride=4, shuffle=False),  # the seed's example
        dict(),  # the seed's defaults: batch 4, max_length 256, stride 128, shuffle, drop_last
        dict(batch_size=3, max_length=7, stride=2, shuffle=True, drop_last=False),
        dict(batch_size=5, max_length=16, stride=20, shuffle=False, drop_last=False),
    ],
)
def test_same_batches_and_same_global_rng_as_the_seeds_loader(reference_text, kwargs):
    text = reference_text[:60_000]
    ids = get_tokenizer().encode(text, allowed_special={"<|endoftext|>"})
    torch.manual_seed(123)
    expected = batches(seed_dataloader(ids, **kwargs))
    after_seed = torch.rand(3)
    torch.manual_seed(123)
    got = batches(create_dataloader(text, **kwargs))
    assert same(got, expected)
    assert torch.equal(torch.rand(3), after_seed)  # the global RNG advanced exactly as the seed's code's
    assert all(x.dtype == torch.int64 and x.shape[1] == kwargs.get("max_length", 256) for b in got for x in b)


def test_text_ids_and_tensor_sources_agree(short_text):
    ids = get_tokenizer().encode(short_text)
    kwargs = dict(batch_size=2, max_length=8, stride=5, shuffle=False)
    a = batches(create_dataloader(short_text, **kwargs))
    assert same(a, batches(create_dataloader(ids, **kwargs)))
    assert same(a, batches(create_dataloader(torch.tensor(ids), **kwargs)))
    assert same(a, batches(create_dataloader(np.array(ids, dtype=np.uint16), **kwargs)))


def test_text_file_source(tmp_path, short_text):
    path = tmp_path / "doc.txt"
    path.write_text(short_text, encoding="utf-8")
    kwargs = dict(batch_size=2, max_length=8, stride=8, shuffle=False)
    assert same(batches(create_dataloader(path, **kwargs)), batches(create_dataloader(short_text, **kwargs)))


def test_seeded_order_depends_on_seed_and_epoch_only(short_text):
    def epoch_orders(seed, epochs=2):
        torch.manual_seed(np.random.randint(1 << 30))  # the global RNG must not matter
        loader = create_dataloader(short_text, batch_size=2, max_length=4, stride=4, seed=seed)
        return [batches(loader) for _ in range(epochs)]

    first, second = epoch_orders(7), epoch_orders(7)
    assert same(first[0], second[0]) and same(first[1], second[1])
    assert not same(first[0], first[1])  # a new order each epoch
    assert not same(first[0], epoch_orders(8)[0])
    # each epoch is a permutation of the unshuffled windows
    plain = batches(create_dataloader(short_text, batch_size=2, max_length=4, stride=4, shuffle=False))
    key = lambda bs: sorted(tuple(x.tolist()) for b in bs for x in b[0])  # noqa: E731
    assert key(first[0]) == key(plain) == key(first[1])


def test_set_epoch_selects_the_order(short_text):
    loader = create_dataloader(short_text, batch_size=2, max_length=4, stride=4, seed=3)
    e0, e1 = batches(loader), batches(loader)
    loader.set_epoch(1)
    assert same(batches(loader), e1)
    loader.set_epoch(0)
    assert same(batches(loader), e0)


def test_an_abandoned_pass_restarts_like_a_dataloader(short_text):
    loader = create_dataloader(short_text, batch_size=2, max_length=4, stride=4, shuffle=False)
    first = next(iter(loader))
    again = next(iter(loader))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


@pytest.mark.parametrize("drop_last", [True, False])
@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_share_one_global_order_disjointly(world_size, drop_last):
    ids = np.arange(1000)  # distinct ids, so a window's first id names it
    kwargs = dict(batch_size=3, max_length=4, stride=3, seed=11, drop_last=drop_last)
    n = len(create_dataloader(ids, **kwargs).dataset)
    per_rank = [
        [int(x[0]) for b in create_dataloader(ids, **kwargs, rank=r, world_size=world_size) for x in b[0]]
        for r in range(world_size)
    ]
    assert len({len(p) for p in per_rank}) == 1  # every rank gets as many windows
    got = [w for p in per_rank for w in p]
    assert set(got) <= set(range(0, 3 * n, 3))
    if drop_last:
        assert len(got) == len(set(got))  # disjoint
    else:
        assert set(got) == set(range(0, 3 * n, 3))  # complete, padded by repeating


@given(n=st.integers(1, 200), world_size=st.integers(1, 6), batch_size=st.integers(1, 7), drop_last=st.booleans(),
       seed=st.integers(0, 2**32))
def test_rank_shares_are_disjoint_and_complete(n, world_size, batch_size, drop_last, seed):
    shares = []
    for rank in range(world_size):
        s = WindowBatchSampler(WindowOrder(n, shuffle=True), batch_size, seed=seed, drop_last=drop_last, rank=rank,
                               world_size=world_size)
        shares.append(np.concatenate(list(s)) if len(s) else np.array([], dtype=np.int64))
        assert len(list(s)) == len(s)
    assert len({len(x) for x in shares}) == 1
    everything = np.concatenate(shares)
    per_rank = n // world_size if drop_last else -(-n // world_size)
    if drop_last:
        assert len(set(everything.tolist())) == len(everything)
        assert len(everything) == (per_rank // batch_size) * batch_size * world_size
    else:
        assert set(everything.tolist()) == set(range(n))
        assert len(everything) == per_rank * world_size


@pytest.mark.parametrize("where", ["start", "first", "middle", "epoch end", "after epoch end"])
def test_resume_equals_the_uninterrupted_run(short_text, where):
    loader = create_dataloader(short_text, batch_size=2, max_length=4, stride=7, seed=5)
    per_epoch = len(loader)
    k = {"start": 0, "first": 1, "middle": per_epoch // 2, "epoch end": per_epoch,
         "after epoch end": per_epoch + 3}[where]
    full = batches(loader) + batches(loader)
    probe = create_dataloader(short_text, batch_size=2, max_length=4, stride=7, seed=5)
    taken = 0
    while taken < k:  # consume k batches, crossing the epoch boundary when k > per_epoch
        for _ in probe:
            taken += 1
            if taken == k:
                break
    state = probe.state_dict()
    assert set(state) >= {"epoch", "position", "epoch_seed"} and len(str(state)) < 400
    resumed = create_dataloader(short_text, batch_size=2, max_length=4, stride=7, seed=5)
    resumed.load_state_dict(state)
    tail = batches(resumed)
    if len(tail) < 2 * per_epoch - k:
        tail += batches(resumed)
    assert same(tail, full[k:])


def test_resume_with_workers_and_unseeded_shuffle(short_text):
    torch.manual_seed(0)
    kwargs = dict(batch_size=2, max_length=4, stride=5, num_workers=2)
    loader = create_dataloader(short_text, **kwargs)
    it = iter(loader)
    head = [tuple(t.clone() for t in next(it)) for _ in range(3)]
    state = loader.state_dict()
    rest = [tuple(t.clone() for t in b) for b in it]
    resumed = create_dataloader(short_text, **{**kwargs, "num_workers": 0})
    resumed.load_state_dict(state)
    assert same(batches(resumed), rest)
    assert len(head) + len(rest) == len(loader)


def test_resume_on_another_world_size_continues_the_global_order(short_text):
    kwargs = dict(batch_size=2, max_length=4, stride=3, seed=9, drop_last=True)
    # two ranks each take 3 batches: 12 global positions consumed
    loaders = [create_dataloader(short_text, **kwargs, rank=r, world_size=2) for r in range(2)]
    iters = [iter(x) for x in loaders]
    for _ in range(3):
        for it in iters:
            next(it)
    state = loaders[0].state_dict()
    assert state["position"] == 12
    # resume on one rank: it must serve exactly the global order from position 12 on
    single = create_dataloader(short_text, **kwargs, rank=0, world_size=1)
    whole = [x for b in batches(single) for x in b[0]]
    single.load_state_dict(state)
    rest = [x for b in batches(single) for x in b[0]]
    assert all(torch.equal(a, b) for a, b in zip(rest, whole[12:], strict=True))
    assert len(rest) == len(whole) - 12


def test_resume_where_nothing_is_left_for_the_new_world_size_starts_the_next_epoch():
    ids = np.arange(10_031)  # 1,003 windows of 10 at stride 10
    kwargs = dict(batch_size=1, max_length=10, stride=10, seed=1)
    one = create_dataloader(ids, **kwargs)
    it = iter(one)
    for _ in range(1001):  # two windows left: less than one batch for each of 4 ranks
        next(it)
    state = one.state_dict()
    ranks = [create_dataloader(ids, **kwargs, rank=r, world_size=4) for r in range(4)]
    fresh = [create_dataloader(ids, **kwargs, rank=r, world_size=4) for r in range(4)]
    for loader, reference in zip(ranks, fresh, strict=True):
        loader.load_state_dict(state)
        assert list(loader) == [] and loader.epoch == 1  # the rest of epoch 0 is empty here: the epoch ends
        reference.set_epoch(1)
        assert torch.equal(next(iter(loader))[0], next(iter(reference))[0])  # then epoch 1, not epoch 0 again


def test_random_sampling_is_reproducible_and_in_range(short_text):
    ids = get_tokenizer().encode(short_text)
    kwargs = dict(batch_size=4, max_length=16, sampling="random", num_samples=40, seed=1)
    a, b = batches(create_dataloader(short_text, **kwargs)), batches(create_dataloader(short_text, **kwargs))
    assert same(a, b) and len(a) == 10
    stream = np.array(ids)
    for x, y in a:
        for row_x, row_y in zip(x.numpy(), y.numpy(), strict=True):
            starts = np.flatnonzero(
                np.all(np.lib.stride_tricks.sliding_window_view(stream, 17)[:, :16] == row_x, axis=1))
            assert len(starts) >= 1 and (stream[starts[0] + 1 : starts[0] + 17] == row_y).all()
    # ranks split the same global draws
    r0 = batches(create_dataloader(short_text, **kwargs, rank=0, world_size=2))
    r1 = batches(create_dataloader(short_text, **kwargs, rank=1, world_size=2))
    merged = [row for pair in zip(*(torch.cat([bb[0] for bb in r], 0) for r in (r0, r1)), strict=True) for row in pair]
    assert all(torch.equal(p, q) for p, q in zip(merged, torch.cat([bb[0] for bb in a], 0), strict=True))


def test_positions_restart_after_every_endoftext():
    text = "one two three<|endoftext|>four five<|endoftext|>six seven eight nine ten"
    loader = create_dataloader(text, batch_size=1, max_length=10, stride=10, shuffle=False, return_positions=True)
    inputs, targets, positions = next(iter(loader))
    eot = get_tokenizer().eot_token
    for row, pos in zip(inputs.tolist(), positions.tolist(), strict=True):
        expected, p = [], 0
        for j, _tok in enumerate(row):  # EOS style: end-of-text closes its document, the next token is position 0
            p = 0 if j == 0 or row[j - 1] == eot else p + 1
            expected.append(p)
        assert pos == expected
    assert eot in inputs[0].tolist()
    # "one two three" + eot are positions 0..3 of the first document, "four" opens the second at 0
    assert positions[0].tolist()[:6] == [0, 1, 2, 3, 0, 1]


def test_respect_documents_keeps_windows_inside_documents(reference_text):
    loader = create_dataloader(reference_text[:80_000], batch_size=4, max_length=32, stride=32, shuffle=False,
                               drop_last=False, respect_documents=True)
    eot = get_tokenizer().eot_token
    seen = 0
    for inputs, _targets in loader:
        assert not (inputs == eot).any()
        seen += len(inputs)
    assert seen == len(loader.dataset) > 0
    assert loader.dataset.dropped_tokens >= 0


def test_respect_documents_holds_for_random_offsets_too(reference_text):
    eot = get_tokenizer().eot_token
    kwargs = dict(batch_size=50, max_length=64, sampling="random", num_samples=2000, seed=3)
    crossing = create_dataloader(reference_text[:80_000], **kwargs)
    assert any((inputs == eot).any() for inputs, _ in crossing)  # without it, random windows do cross documents
    loader = create_dataloader(reference_text[:80_000], respect_documents=True, **kwargs)
    starts = set()
    for inputs, targets in loader:
        assert not (inputs == eot).any() and torch.equal(inputs[:, 1:], targets[:, :-1])
        starts.update(map(tuple, inputs[:, :4].tolist()))
    assert len(starts) > 1500  # offsets, not a few aligned windows
    assert loader.dataset.dropped_tokens == create_dataloader(  # the same short documents as the windows skip
        reference_text[:80_000], batch_size=1, max_length=64, stride=1, respect_documents=True).dataset.dropped_tokens
    again = create_dataloader(reference_text[:80_000], respect_documents=True, **kwargs)
    assert [b[0].tolist() for b in again] == [b[0].tolist() for b in create_dataloader(  # the seed decides
        reference_text[:80_000], respect_documents=True, **kwargs)]
    with pytest.raises(ValueError, match=r"no document is longer than 20000 tokens.*Lower max_length"):
        create_dataloader(reference_text[:80_000], respect_documents=True, **{**kwargs, "max_length": 20_000})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(batch_size=0), ValueError, "batch_size must be at least 1, but got 0"),
        (dict(batch_size=2.5), TypeError, "batch_size must be an integer"),
        (dict(num_workers=-1), ValueError, "num_workers must be at least 0"),
        (dict(max_length=100_000), ValueError, r"max_length=100000 needs at least 100,001 tokens"),
        (dict(batch_size=10_000), ValueError, "batch_size=10000 with drop_last=True needs at least 10000 windows"),
        (dict(rank=2, world_size=2), ValueError, "rank must be at most 1"),
        (dict(rank=0), ValueError, "Pass both rank and world_size"),
        (dict(sampling="random"), ValueError, "needs num_samples"),
        (dict(sampling="sometimes"), ValueError, "Unknown sampling 'sometimes'"),
        (dict(seed=-1), ValueError, "seed must be at least 0"),
    ],
)
def test_bad_arguments_are_clear_errors(short_text, kwargs, error, match):
    with pytest.raises(error, match=match):
        create_dataloader(short_text, **kwargs)


def test_missing_file_and_non_utf8_file(tmp_path):
    from pathlib import Path

    with pytest.raises(FileNotFoundError, match="No such file"):
        create_dataloader(Path(tmp_path / "nope.txt"))
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(ValueError, match=r"not valid UTF-8: byte 3 is 0xe9"):
        create_dataloader(bad)


def test_a_path_given_as_str_gets_a_hint(tmp_path, short_text):
    path = tmp_path / "story.txt"
    path.write_text(short_text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"names an existing path.*pass pathlib.Path"), pytest.warns(UserWarning):
        create_dataloader(str(path), batch_size=2, max_length=64, stride=64)
    # also when the path's few tokens do make a window but not a batch (the seed's sizes on a store's path)
    with pytest.raises(ValueError, match=r"names an existing path.*pass pathlib.Path.*too few for one batch of 8"), \
            pytest.warns(UserWarning, match="names an existing path"):
        create_dataloader(str(tmp_path), batch_size=8, max_length=4, stride=4, shuffle=False)


def test_state_from_other_data_is_refused(short_text):
    a = create_dataloader(short_text, batch_size=2, max_length=4, stride=4, seed=1)
    b = create_dataloader(short_text, batch_size=2, max_length=8, stride=8, seed=1)
    with pytest.raises(ValueError, match="taken with max_length=4, but this loader has max_length=8"):
        b.load_state_dict(a.state_dict())  # the setting that makes the window counts differ, named
    c = create_dataloader(short_text[:2000], batch_size=2, max_length=4, stride=4, seed=1)
    with pytest.raises(ValueError, match="Build the loader from the same data"):
        c.load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="Not a lmfeed loader state"):
        b.load_state_dict({"epoch": 1})


def _two_corpora(tmp_path):
    from pydoc_data.topics import topics

    a, b = tmp_path / "prose.txt", tmp_path / "code.txt"
    a.write_text(topics["assignment"] + topics["if"], encoding="utf-8")
    b.write_text(topics["for"], encoding="utf-8")
    return a, b


def test_weighted_sources_are_drawn_in_proportion_deterministically(tmp_path):
    a, b = _two_corpora(tmp_path)
    kwargs = dict(batch_size=8, max_length=4, stride=4, seed=2, num_samples=4000)
    loader = create_dataloader({a: 0.7, b: 0.3}, **kwargs)
    rows = np.concatenate(list(loader.batch_sampler))  # (source, window) per draw
    assert rows.shape == (4000, 2)
    share_a = float((rows[:, 0] == 0).mean())
    assert abs(share_a - 0.7) < 0.03  # 4,000 draws: the standard error is 0.007
    # a source is read without repeats until its windows are used up
    sizes = [len(s) for s in loader.dataset.sources]
    for k in (0, 1):
        drawn = rows[rows[:, 0] == k, 1]
        first_cycle = drawn[: sizes[k]]
        assert len(set(first_cycle.tolist())) == len(first_cycle)
    # the batches hold exactly those windows
    first = next(iter(create_dataloader({a: 0.7, b: 0.3}, **kwargs)))[0]
    for row, (k, w) in zip(first, rows[:8], strict=True):
        assert torch.equal(row, loader.dataset.sources[k][w][0])
    again = batches(create_dataloader({a: 0.7, b: 0.3}, **kwargs))
    assert same(again, batches(create_dataloader({a: 0.7, b: 0.3}, **kwargs)))
    assert not same(again, batches(create_dataloader({a: 0.7, b: 0.3}, **{**kwargs, "seed": 3})))


def test_weighted_sources_resume_and_split_across_ranks(tmp_path):
    a, b = _two_corpora(tmp_path)
    kwargs = dict(batch_size=4, max_length=4, stride=4, seed=5, num_samples=600)
    full = batches(create_dataloader({str(a): 1, str(b): 3}, **kwargs))
    probe = create_dataloader({str(a): 1, str(b): 3}, **kwargs)
    it = iter(probe)
    for _ in range(37):
        next(it)
    resumed = create_dataloader({str(a): 1, str(b): 3}, **kwargs)
    resumed.load_state_dict(probe.state_dict())
    assert same(batches(resumed), full[37:])
    ranks = [batches(create_dataloader({str(a): 1, str(b): 3}, **kwargs, rank=r, world_size=2)) for r in range(2)]
    interleaved = [row for pair in zip(*(torch.cat([x[0] for x in r]) for r in ranks), strict=True) for row in pair]
    assert all(torch.equal(p, q) for p, q in zip(interleaved, torch.cat([x[0] for x in full]), strict=True))


def test_bad_weights_are_clear_errors(tmp_path):
    a, b = _two_corpora(tmp_path)
    with pytest.raises(ValueError, match="weight of .*code.txt must be a positive number, but got 0"):
        create_dataloader({a: 1.0, b: 0}, batch_size=2, max_length=4, stride=4)
    with pytest.raises(TypeError, match="must be a number"):
        create_dataloader({a: "lots"}, batch_size=2, max_length=4, stride=4)


def test_text_backends_give_the_same_batches(reference_text):
    pytest.importorskip("fastokens")
    kwargs = dict(batch_size=4, max_length=32, stride=16, seed=3)
    assert same(batches(create_dataloader(reference_text, backend="fastokens", **kwargs)),
                batches(create_dataloader(reference_text, backend="tiktoken", **kwargs)))
