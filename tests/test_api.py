"""``lmfeed.prepare``: the engine dispatch offers every option of the local ``prepare``, and refuses mixed ones."""

from __future__ import annotations

import inspect

import pytest

import lmfeed
import lmfeed.store.prepare as local


def test_every_option_of_the_local_prepare_is_offered_with_the_same_default():
    ours = inspect.signature(lmfeed.prepare).parameters
    for name, p in inspect.signature(local.prepare).parameters.items():
        assert name in ours, f"lmfeed.prepare lacks {name!r}: add it to lmfeed/_api.py and pass it on"
        assert ours[name].default == p.default and ours[name].kind == p.kind, name


def test_options_of_the_other_engine_are_refused(tmp_path):
    (tmp_path / "a.txt").write_text("Hello world")
    with pytest.raises(ValueError, match="num_tasks=4 is an option of engine='ray'"):
        lmfeed.prepare([tmp_path / "a.txt"], tmp_path / "s", num_tasks=4)
    with pytest.raises(ValueError, match="engine='ray' plans its own tasks"):
        lmfeed.prepare([tmp_path / "a.txt"], tmp_path / "s", engine="ray", num_shards=2)
    with pytest.raises(ValueError, match="Unknown engine 'spark'"):
        lmfeed.prepare([tmp_path / "a.txt"], tmp_path / "s", engine="spark")  # type: ignore[arg-type]
    assert not (tmp_path / "s").exists()
    assert lmfeed.prepare([tmp_path / "a.txt"], tmp_path / "s", workers=1).tokens.tolist() == [15496, 995]
