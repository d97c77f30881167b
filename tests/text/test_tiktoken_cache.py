"""Item 27 of #15: one call and one command put lmfeed's verified GPT-2 files in tiktoken's cache, so the book's
``tiktoken.get_encoding("gpt2")`` runs unmodified with the network unreachable."""

import hashlib
import os
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from lmfeed import install_tiktoken_cache
from lmfeed.cli import main

# the book's line, in a fresh interpreter whose every socket connection fails
OFFLINE_BOOK = textwrap.dedent("""
    import socket

    def unreachable(*args, **kwargs):
        raise OSError(101, "Network is unreachable (blocked by the test)")

    socket.socket.connect = unreachable
    socket.create_connection = unreachable
    socket.getaddrinfo = unreachable

    import tiktoken
    tokenizer = tiktoken.get_encoding("gpt2")
    print(tokenizer.encode("Hello, do you like tea? <|endoftext|> In the sunlit terraces",
                           allowed_special={"<|endoftext|>"}))
""")
# the seed document's ids for that text (the book's chapter 2 example), from tiktoken itself
BOOK_IDS = "[15496, 11, 466, 345, 588, 8887, 30, 220, 50256, 554, 262, 4252, 18250, 8812, 2114]"


def offline_book(env):
    return subprocess.run([sys.executable, "-c", OFFLINE_BOOK], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture()
def env(tmp_path):
    environ = {k: v for k, v in os.environ.items() if k not in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR")}
    return {**environ, "TIKTOKEN_CACHE_DIR": str(tmp_path / "cache")}


def test_the_books_get_encoding_fails_offline_without_the_cache(env):
    done = offline_book(env)
    assert done.returncode != 0 and "unreachable" in done.stderr.lower()


def test_after_install_the_books_get_encoding_works_offline(env, monkeypatch, tmp_path):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", env["TIKTOKEN_CACHE_DIR"])
    assert install_tiktoken_cache() == tmp_path / "cache"
    names = sorted(p.name for p in (tmp_path / "cache").iterdir())
    urls = ["https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
            "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json"]
    assert names == sorted(hashlib.sha1(u.encode()).hexdigest() for u in urls)  # tiktoken's cache key: sha1(url)
    done = offline_book(env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == BOOK_IDS
    assert install_tiktoken_cache() == tmp_path / "cache"  # again: nothing to do, nothing broken


def test_the_command_places_them_and_says_where(env, tmp_path):
    result = CliRunner().invoke(main, ["tiktoken-cache"], env={"TIKTOKEN_CACHE_DIR": env["TIKTOKEN_CACHE_DIR"]})
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Placed GPT-2's vocab.bpe and encoder.json in {tmp_path / 'cache'}")
    assert offline_book(env).stdout.strip() == BOOK_IDS


def test_another_directory_says_to_point_tiktoken_at_it(env, tmp_path):
    other = tmp_path / "elsewhere"
    result = CliRunner().invoke(main, ["tiktoken-cache", "--dir", str(other)],
                                env={"TIKTOKEN_CACHE_DIR": env["TIKTOKEN_CACHE_DIR"]})
    assert result.exit_code == 0 and f"set TIKTOKEN_CACHE_DIR={other}" in result.output
    assert offline_book({**env, "TIKTOKEN_CACHE_DIR": str(other)}).stdout.strip() == BOOK_IDS


def test_a_disabled_cache_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    with pytest.raises(ValueError, match="turns tiktoken's cache off"):
        install_tiktoken_cache()
    result = CliRunner().invoke(main, ["tiktoken-cache"], env={"TIKTOKEN_CACHE_DIR": ""})
    assert result.exit_code == 1 and result.output.startswith("Error: TIKTOKEN_CACHE_DIR is set to ''")
