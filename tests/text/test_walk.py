"""Directory inputs: links to directories followed once, hidden and version-control files skipped, globs that stay
inside the directory, and lmfeed's own stores never read back as text (issue #15, items 6, 7, 12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, strategies as st

from lmfeed.cli import main
from lmfeed.store.prepare import prepare
from lmfeed.text.sources import expand_inputs
from lmfeed.text.tokenizer import ENDOFTEXT, get_tokenizer
from lmfeed.text.walk import check_glob, glob_matches, walk_files

ENC = get_tokenizer()


def names(files, root: Path) -> list[str]:
    return [Path(f.path if hasattr(f, "path") else f).relative_to(root).as_posix() for f in files]


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "corpus"
    for rel in ("a.txt", "b.md", "sub/c.txt", "sub/deep/d.txt", ".env", ".git/config", "sub/.hidden.txt",
                "CVS/Entries", ".cache/e.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"text of {rel}")
    return root


# ---- item 7: hidden files, version control, links ---------------------------------------------------------------


def test_hidden_files_and_version_control_are_skipped_unless_asked(tree):
    assert names(walk_files(tree), tree) == ["a.txt", "b.md", "sub/c.txt", "sub/deep/d.txt"]
    assert names(walk_files(tree, include_hidden=True), tree) == [
        ".cache/e.txt", ".env", ".git/config", "CVS/Entries", "a.txt", "b.md", "sub/.hidden.txt", "sub/c.txt",
        "sub/deep/d.txt"]
    files = expand_inputs([tree])
    assert [f.name for f in files] == [f"{tree}/a.txt", f"{tree}/b.md", f"{tree}/sub/c.txt", f"{tree}/sub/deep/d.txt"]


def test_links_to_directories_are_followed_each_directory_once(tree, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.txt").write_text("linked in")
    (tree / "linked").symlink_to(outside, target_is_directory=True)
    (tree / "sub" / "loop").symlink_to(tree, target_is_directory=True)  # a loop back to the top
    (tree / "twice").symlink_to(tree / "sub", target_is_directory=True)  # a second way to sub/
    found = names(walk_files(tree, "*.txt"), tree)
    assert found == ["a.txt", "linked/x.txt", "sub/c.txt", "sub/deep/d.txt"]  # every file once, no endless loop


def test_help_says_what_is_read():
    out = CliRunner().invoke(main, ["prepare", "--help"]).output
    assert "hidden files and directories" in out and "--include-hidden" in out and "links to" in out
    assert "stores" in out


# ---- item 12: globs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("glob", "message"), [
    ("/etc/*", r"glob '/etc/\*' is absolute.*lmfeed prepare /etc --glob '\*'"),
    ("../*", r"glob '../\*' leaves the input directory"),
    ("sub/../../x", r"leaves the input directory"),
    ("", r"glob must be a pattern"),
])
def test_globs_that_leave_the_directory_are_refused(tree, glob, message):
    with pytest.raises(ValueError, match=message):
        expand_inputs([tree], glob=glob)
    result = CliRunner().invoke(main, ["prepare", str(tree), "--glob", glob, "-o", str(tree.parent / "o")])
    assert result.exit_code == 1 and "Traceback" not in result.output and result.output.startswith("Error: glob")


@pytest.mark.parametrize(("glob", "want"), [
    ("**", ["a.txt", "b.md", "sub/c.txt", "sub/deep/d.txt"]),  # every file (rglob('**') gave only directories)
    ("**/*.txt", ["a.txt", "sub/c.txt", "sub/deep/d.txt"]),
    ("*.txt", ["a.txt", "sub/c.txt", "sub/deep/d.txt"]),  # at any depth, as before
    ("sub/*.txt", ["sub/c.txt"]),
    ("sub/**", ["sub/c.txt", "sub/deep/d.txt"]),
    ("deep/*", ["sub/deep/d.txt"]),
    ("./a.txt", ["a.txt"]),
])
def test_globs_match_relative_paths_at_any_depth(tree, glob, want):
    assert names(walk_files(tree, glob), tree) == want


@given(st.lists(st.sampled_from(["a", "b", "x.txt", "y.md"]), min_size=1, max_size=4),
       st.sampled_from(["*", "*.txt", "a/*", "b/*.md", "*/x.txt", "a/b/*"]))
def test_globs_without_double_stars_agree_with_rglob(parts, glob):
    """pathlib's rglob is the reference for the patterns it handles (every one here has no '**')."""
    from pathlib import PurePosixPath

    path = PurePosixPath(*parts)
    assert glob_matches(path.parts, check_glob(glob)) == path.match(glob)


# ---- item 6: stores inside input directories --------------------------------------------------------------------


def test_a_store_inside_an_input_directory_is_not_read_back(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    docs = ["First document.", "Second document.", "Third document."]
    for i, doc in enumerate(docs):
        (corpus / f"{i}.txt").write_text(doc)
    want = ENC.encode(ENDOFTEXT.join(docs), allowed_special={ENDOFTEXT})
    first = prepare([corpus], corpus / "out.store", workers=1)
    assert first.num_documents == 3 and first.tokens.tolist() == want
    prepare([corpus], corpus / "split", workers=1, val_fraction=0.5, seed=3)  # a split, also inside
    (corpus / ".out.store.tmp-99999-0123abcd" / "store").mkdir(parents=True)  # a killed run's staging directory
    (corpus / ".out.store.tmp-99999-0123abcd" / "store" / "tokens.npy").write_bytes(b"\x00\x01")
    for include_hidden in (False, True):
        again = prepare([corpus], corpus / "out.store", workers=1, force=True, errors="replace",
                        include_hidden=include_hidden)
        assert again.num_documents == 3 and again.tokens.tolist() == want  # not 6 documents of binary ids
    assert json.loads((corpus / "out.store" / "metadata.json").read_text())["sources"][0]["files"] == 3


def test_a_store_named_as_the_input_is_not_text(tmp_path):
    (tmp_path / "a.txt").write_text("Hello")
    store = prepare([tmp_path / "a.txt"], tmp_path / "a.store", workers=1)
    with pytest.raises(ValueError, match=r"is a token store \(binary ids\), not text"):
        prepare([store.path], tmp_path / "b.store", workers=1, errors="replace")
