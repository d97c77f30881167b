"""Running the ``lmfeed`` command in-process for tests, and reading its one-line errors."""

from __future__ import annotations

from click.testing import CliRunner, Result

from lmfeed.cli import main


def run(*args: object) -> Result:
    """``lmfeed ARGS...`` through click's runner (each argument as a string)."""
    return CliRunner().invoke(main, [str(a) for a in args])


def error_line(result: Result) -> str:
    """The run failed with exit status 1 and printed exactly one line, ``Error: ...``: that line."""
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]
