"""`lmfeed batch`: its JSON equals the library's batch K, its table shows targets as inputs shifted by one."""

from __future__ import annotations

import itertools
import json
import re

import pytest
from click.testing import CliRunner

from lmfeed.cli import main
from lmfeed.loading.loader import create_dataloader
from lmfeed.text.sources import python_reference
from lmfeed.text.tokenizer import ENDOFTEXT


def run(*args: str):
    return CliRunner().invoke(main, ["batch", *args], catch_exceptions=False)


def library_batch(source, k: int, **kwargs):
    inputs, targets = next(itertools.islice(iter(create_dataloader(source, **kwargs)), k, None))
    return inputs.tolist(), targets.tolist()


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    from pydoc_data.topics import topics

    path = tmp_path_factory.mktemp("text") / "if.txt"
    path.write_text(topics["if"] + "<|endoftext|>" + topics["while"], encoding="utf-8")
    return path


@pytest.mark.parametrize("args, kwargs, k", [
    ([], dict(batch_size=8, max_length=4, stride=4, shuffle=False), 0),
    (["--index", "7", "--batch-size", "3", "--max-length", "6", "--stride", "2"],
     dict(batch_size=3, max_length=6, stride=2, shuffle=False), 7),
    (["--index", "4", "--shuffle", "--seed", "11"],
     dict(batch_size=8, max_length=4, stride=4, shuffle=True, seed=11), 4),
])
def test_json_ids_are_the_loaders_batch_k(text_file, args, kwargs, k):
    result = run(str(text_file), "--json", *args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["inputs"], data["targets"]) == library_batch(text_file, k, **kwargs)
    assert data["index"] == k and data["num_batches"] == len(create_dataloader(text_file, **kwargs))
    assert {key: data[key] for key in ("batch_size", "max_length", "stride")} == {
        key: kwargs[key] for key in ("batch_size", "max_length", "stride")}


def test_json_pieces_decode_the_ids(text_file):
    from lmfeed.text.tokenizer import get_tokenizer

    data = json.loads(run(str(text_file), "--json", "--index", "2").output)
    enc = get_tokenizer("gpt2")
    for ids, pieces in zip(data["inputs"] + data["targets"], data["input_pieces"] + data["target_pieces"], strict=True):
        assert "".join(pieces) == enc.decode(ids)


def test_default_source_is_the_language_reference_joined_by_endoftext():
    data = json.loads(run("--json", "--index", "5").output)
    text = ENDOFTEXT.join(python_reference())
    assert (data["inputs"], data["targets"]) == library_batch(text, 5, batch_size=8, max_length=4, stride=4,
                                                              shuffle=False)


def test_store_source_and_negative_index(tmp_path, text_file):
    from lmfeed.store.prepare import prepare

    store = prepare([text_file], tmp_path / "s.store", workers=1)
    data = json.loads(run(str(store.path), "--json", "--index", "-1").output)
    loader = create_dataloader(store.path, batch_size=8, max_length=4, stride=4, shuffle=False)
    assert data["index"] == len(loader) - 1
    assert [data["inputs"], data["targets"]] == [t.tolist() for t in list(loader)[-1]]


def test_table_shows_each_target_row_as_its_input_row_shifted_by_one(text_file):
    result = run(str(text_file), "--index", "3")
    assert result.exit_code == 0, result.output
    inputs, targets = library_batch(text_file, 3, batch_size=8, max_length=4, stride=4, shuffle=False)
    blocks = result.output.split("sample ")[1:]
    assert len(blocks) == 8
    for b, block in enumerate(blocks):
        lines = block.splitlines()
        assert lines[0].startswith(f"{b} ") and "pos 0" in lines[0] and "pos 3" in lines[0]
        shown_in = [int(v) for v in re.findall(r"\d+", lines[1])]
        shown_out = [int(v) for v in re.findall(r"\d+", lines[3])]
        assert lines[1].lstrip().startswith("input") and lines[3].lstrip().startswith("target")
        assert shown_in == inputs[b] and shown_out == targets[b]
        assert shown_out[:-1] == shown_in[1:]  # the shift by one, plain to see
    assert "·" in result.output  # spaces made visible


def test_wide_batches_wrap_or_truncate_within_80_columns(text_file):
    wrapped = run(str(text_file), "--max-length", "40", "--stride", "40", "--batch-size", "2").output
    cut = run(str(text_file), "--max-length", "40", "--stride", "40", "--batch-size", "2", "--truncate").output
    for out in (wrapped, cut):
        assert max(len(line) for line in out.splitlines()) <= 80  # the header lines too
    header = run("--batch-size", "2", "--max-length", "64", "--truncate").output  # the longest source name
    assert max(len(line) for line in header.splitlines()) <= 80 and "(pydoc_data.topics)" in header
    assert "pos 39" in wrapped and "pos 39" not in cut
    assert re.search(r"cut to fit 80 columns: each sample shows its first \d+( to \d+)? of 40 positions", cut)


def test_errors(text_file):
    runner = CliRunner()
    result = runner.invoke(main, ["batch", str(text_file), "--index", "100000"])
    n = len(create_dataloader(text_file, batch_size=8, max_length=4, stride=4, shuffle=False))
    assert result.exit_code == 1
    assert result.output.startswith("Error: --index 100000 does not exist") and f"give {n:,} batches" in result.output
    result = runner.invoke(main, ["batch", str(text_file), "--index", f"-{n + 1}"])
    assert result.exit_code == 1 and f"0 to {n - 1:,}, or -1 to -{n:,} from the end. Pass an --index in that range" in (
        result.output)
    result = runner.invoke(main, ["batch", str(text_file), "--seed", "3"])
    assert result.exit_code == 2 and "pass --shuffle" in result.output
    result = runner.invoke(main, ["batch", str(text_file.parent / "missing.txt")])
    assert result.exit_code == 1 and result.output.startswith("Error: No such file")


def test_the_last_short_batch_with_no_drop_last(text_file):
    kwargs = dict(batch_size=7, max_length=4, stride=4, shuffle=False)
    full = create_dataloader(text_file, **kwargs)
    short = create_dataloader(text_file, **kwargs, drop_last=False)
    assert len(short) == len(full) + 1  # the text's windows do not divide by 7
    out = json.loads(run(str(text_file), "--batch-size", "7", "--no-drop-last", "--index", "-1", "--json").output)
    assert out["inputs"] == list(short)[-1][0].tolist() and len(out["inputs"]) < 7 and out["drop_last"] is False


def test_control_characters_never_reach_the_terminal_raw(tmp_path):
    path = tmp_path / "controls.txt"
    path.write_text("a\x00b \x1b[31mred\r\n\x7f end of text here", encoding="utf-8")
    out = run(str(path), "--batch-size", "1", "--max-length", "14", "--stride", "14").output
    assert not any(c in out for c in "\x00\x1b\r\x7f")
    assert "␀" in out and "␛" in out and "␍" in out and "␡" in out
