"""The worker transport (lmfeed.loading.transport): batches through the shared ring equal the in-process ones."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch.utils.data import get_worker_info

from lmfeed import create_dataloader
from lmfeed.loading.transport import RingBatches, ring_layout

pytestmark = pytest.mark.slow  # worker processes


def _ids(n: int = 3_000, high: int = 50_257, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, n).astype(np.uint16 if high <= 2**16 else np.uint32)


def _batches(loader, limit: int | None = None) -> list[list[torch.Tensor]]:  # noqa: ANN001
    out = []
    for batch in loader:
        # contiguous, as in-process batches are: a loss may .view(-1) its targets (nanoGPT does)
        assert all(t.is_contiguous() for t in batch), [t.stride() for t in batch]
        out.append([t.clone() for t in batch])
        if limit is not None and len(out) == limit:
            break
    return out


def _same(a: list[list[torch.Tensor]], b: list[list[torch.Tensor]]) -> bool:
    return len(a) == len(b) and all(
        len(x) == len(y)
        and all(u.dtype == v.dtype == torch.int64 and torch.equal(u, v) for u, v in zip(x, y, strict=True))
        for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("persistent", [False, True])
def test_ring_batches_equal_in_process_batches_over_epochs(persistent: bool) -> None:
    # 3,000 ids, max_length 4, stride 3, batch 2: ~500 batches a pass, many times the ring's 5 x 32 slots, so
    # every slot is reused while the workers run ahead
    kwargs = dict(batch_size=2, max_length=4, stride=3, seed=7)
    reference = create_dataloader(_ids(), **kwargs, num_workers=0)
    ring = create_dataloader(_ids(), **kwargs, num_workers=2, persistent_workers=persistent)
    assert isinstance(ring._get_iterator(), RingBatches)
    for _ in range(2):  # two epochs: a new order each, the same in both loaders
        want = _batches(reference)
        assert len(want) > 5 * 32
        assert _same(_batches(ring), want)
    assert ring.epoch == reference.epoch == 2


def test_ring_carries_positions_random_offsets_blends_and_uint32_ids(tmp_path) -> None:  # noqa: ANN001
    eot = 50_256
    ids = _ids(4_000)
    ids[::37] = eot
    cases = [
        (ids, dict(return_positions=True, tokenizer="gpt2")),  # not in the ring: DataLoader's transport, same batches
        (ids, dict(sampling="random", num_samples=300)),
        (_ids(4_000, high=70_000), dict()),  # a vocabulary above 16 bits: the ring holds uint32
    ]
    for source, extra in cases:
        kwargs = dict(batch_size=3, max_length=8, stride=5, seed=3, **extra)
        want = _batches(create_dataloader(source, **kwargs, num_workers=0))
        got = create_dataloader(source, **kwargs, num_workers=2)
        assert _same(_batches(got), want), extra
        assert isinstance(got._get_iterator(), RingBatches) is ("return_positions" not in extra)
    assert ring_layout(create_dataloader(_ids(4_000, high=70_000), 2, 8).dataset, 2)[1] == np.uint32


def test_ring_blend_of_two_stores_equals_in_process(tmp_path) -> None:  # noqa: ANN001
    from lmfeed.store.prepare import prepare

    for name, text in (("a", "alpha beta gamma delta. " * 300), ("b", "one two three four five. " * 200)):
        (tmp_path / f"{name}.txt").write_text(text, encoding="utf-8")
        prepare(tmp_path / f"{name}.txt", tmp_path / f"{name}.store", workers=1, backend="tiktoken")
    source = {tmp_path / "a.store": 0.7, tmp_path / "b.store": 0.3}
    kwargs = dict(batch_size=2, max_length=8, stride=8, seed=1)
    want = _batches(create_dataloader(source, **kwargs, num_workers=0))
    assert _same(_batches(create_dataloader(source, **kwargs, num_workers=2)), want)


def test_resume_with_workers_after_ten_batches_equals_the_uninterrupted_run() -> None:
    kwargs = dict(batch_size=2, max_length=4, stride=3, seed=11, num_workers=2)
    uninterrupted = _batches(create_dataloader(_ids(), **kwargs))
    first = create_dataloader(_ids(), **kwargs)
    it = iter(first)
    for _ in range(10):
        next(it)
    state = first.state_dict()
    resumed = create_dataloader(_ids(), **kwargs)
    resumed.load_state_dict(state)
    assert _same(_batches(resumed), uninterrupted[10:])


def _record_worker(folder: str, worker_id: int) -> None:
    open(f"{folder}/worker-{worker_id}", "w").close()
    info = get_worker_info()
    assert info is not None and info.id == worker_id and info.num_workers == 2
    # the dataset a worker_init_fn sees answers as the loader's own (attributes pass through the ring's wrapper)
    assert info.dataset.max_length == 4
    torch.manual_seed(1000 + worker_id)


def test_worker_init_fn_runs_in_each_worker_and_the_global_rng_advances_as_with_dataloader(tmp_path) -> None:  # noqa: ANN001
    # the loader keeps DataLoader's contract: its workers run worker_init_fn (an assertion there fails the pass),
    # and a pass draws the workers' base seed from the global RNG as DataLoader does: an unseeded shuffle of two
    # passes gives the same batches with and without workers
    kwargs = dict(batch_size=2, max_length=4, stride=3)
    torch.manual_seed(5)
    want = [_batches(create_dataloader(_ids(), **kwargs, num_workers=0)) for _ in range(2)]
    torch.manual_seed(5)
    loader = create_dataloader(_ids(), **kwargs, num_workers=2)
    loader.worker_init_fn = functools.partial(_record_worker, str(tmp_path))
    got = [_batches(loader), _batches(create_dataloader(_ids(), **kwargs, num_workers=2))]
    assert _same(got[0], want[0]) and _same(got[1], want[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["worker-0", "worker-1"]


def test_batches_held_by_the_caller_are_never_overwritten() -> None:
    # a ring slot is written again while the caller may still hold batches taken from it: keep a random, changing
    # set of batches (every batch at first, as list(loader) does; then a few), and every one kept must still hold
    # its ids at the end (batches handed out as views of the ring, not copies, fail this)
    kwargs = dict(batch_size=2, max_length=4, stride=3, seed=5)
    want = _batches(create_dataloader(_ids(), **kwargs, num_workers=0))
    for pattern in range(3):
        rng = np.random.default_rng(pattern)
        kept: dict[int, list[torch.Tensor]] = {}
        for k, batch in enumerate(create_dataloader(_ids(), **kwargs, num_workers=2)):
            if pattern == 0 or rng.random() < 0.1:
                kept[k] = batch
            if kept and pattern > 0 and rng.random() < 0.05:
                kept.pop(int(rng.choice(list(kept))))
            del batch
        assert len(kept) > 10 and all(_same([kept[k]], [want[k]]) for k in kept), pattern
    assert len(kept) < len(want)

