"""`lmfeed batch --packing` / `--documents`: a packed batch with its document starts and padding marked, equal to
the library's batch."""

from __future__ import annotations

import json

from click.testing import CliRunner

from lmfeed.cli import main
from lmfeed.loading.loader import create_dataloader
from lmfeed.text.sources import python_reference
from lmfeed.text.tokenizer import ENDOFTEXT


def run(*args: str):
    return CliRunner().invoke(main, ["batch", *args], catch_exceptions=False)


def test_a_packed_batch_marks_document_starts_and_padding():
    result = run("--packing", "best_fit", "--max-length", "16", "--batch-size", "2", "--index", "-1")
    assert result.exit_code == 0, result.output
    assert "packing=best_fit" in result.output and "pad id 50256" in result.output
    assert "│pos 0" in result.output  # a document starts inside a row
    assert "<pad>" in result.output and "-100" in result.output  # the last row is padded, its targets ignored


def test_packed_json_equals_the_library_batch():
    result = run("--packing", "best_fit", "--max-length", "16", "--batch-size", "2", "--index", "-1", "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    loader = create_dataloader(ENDOFTEXT.join(python_reference()), batch_size=2, max_length=16, shuffle=False,
                               packing="best_fit", return_documents=True)
    batch = list(loader)[-1]
    assert got["inputs"] == batch.inputs.tolist() and got["targets"] == batch.targets.tolist()
    assert got["position_ids"] == batch.position_ids.tolist() and got["document_ids"] == batch.document_ids.tolist()
    assert got["pad_id"] == 50256 and got["padding_fraction"] == loader.padding_fraction
    # padding: every slot after the last real token of a row, where the targets are -100
    for row, targets, pads in zip(got["inputs"], got["targets"], got["padding"], strict=True):
        if any(pads):
            first = pads.index(True)
            assert all(pads[first:]) and all(t == -100 for t in targets[first - 1 :])
            assert all(x == 50256 for x in row[first:])


def test_documents_heads_columns_with_positions_in_their_document():
    result = run("--documents", "--max-length", "64", "--batch-size", "1", "--stride", "64", "--index", "0",
                 "--width", "4000")
    assert result.exit_code == 0, result.output
    assert "│pos 0" in result.output or "pos 63" in result.output  # a start inside the window, or none in it
    assert "<pad>" not in result.output
