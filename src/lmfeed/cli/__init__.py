"""The ``lmfeed`` command line: one click group, one small module per command.

Results go to stdout, progress and errors to stderr. A user error (bad value, missing file) exits 1 with one
``Error: ...`` line and no traceback; a usage error (unknown option) exits 2, as click does.
Heavy imports (torch, matplotlib) happen inside the commands, so ``lmfeed --help`` starts fast.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

# command name -> module under lmfeed.cli that defines a click command of that name
_COMMANDS = {
    "demo": "demo",
    "batch": "batch",
    "embed": "embed",
    "plot": "plot",
    "prepare": "prepare",
    "info": "info",
    "merge": "merge",
    "export": "export",
    "import": "import_bin",
    "train": "train",
    "generate": "generate",
    "train-tokenizer": "train_tokenizer",
    "tiktoken-cache": "tiktoken_cache",
    "compare-positions": "compare_positions",
}


class _LazyGroup(click.Group):
    """Imports a command's module only when that command runs (or when help lists it)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = _COMMANDS.get(cmd_name)
        if module is None:
            return None
        return importlib.import_module(f"lmfeed.cli.{module}").command

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's signature
        try:
            return super().invoke(ctx)
        except click.ClickException:
            raise
        except BrokenPipeError:  # `lmfeed ... | head`: the reader left; not an error
            sys.stderr.close()
            ctx.exit(0)
        except (ValueError, TypeError, OSError, LookupError) as exc:
            raise click.ClickException(_one_line(exc)) from None
        except MemoryError as exc:  # numpy's allocation errors say how much: keep that, add the fix
            raise click.ClickException(
                f"Out of memory: {_one_line(exc)}. Lower the sizes asked for (see --help for their defaults)."
            ) from None
        except BaseException as exc:
            if type(exc).__name__ != "PanicException":  # KeyboardInterrupt, SystemExit: click's to handle
                raise
            # a Rust tokenizer gave up on the input (pyo3 panics are BaseExceptions, so nothing above caught it)
            raise click.ClickException(
                f"The tokenizer crashed on this input ({_one_line(exc)}). Try --backend tiktoken or fastokens "
                "where the command has it, and please report the input."
            ) from None


def count(n: int, noun: str) -> str:
    """``count(1, "document")`` -> ``"1 document"``, ``count(79, "document")`` -> ``"79 documents"``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def check_source(source: Path | None) -> None:
    """The optional SOURCE of ``demo`` and ``batch`` exists; if not, say that leaving it out uses the default corpus."""
    if source is not None and not source.exists():
        raise FileNotFoundError(f"No such file or store: {str(source)!r}. Check the path, or leave SOURCE out to use "
                                "the default corpus (the Python language reference).")


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:  # not "[Errno 28] ...": the sentence, and the file if any
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return " ".join(text.split())


def _restore_interrupt() -> None:
    """Put back Python's Ctrl-C (KeyboardInterrupt), which lmfeed/__init__.py held off while the command imported."""
    import signal

    from lmfeed import _exit_quietly

    if signal.getsignal(signal.SIGINT) is _exit_quietly:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="lmfeed")
def main() -> None:
    """lmfeed: raw text in, the tensors a GPT-style model trains on out.

    Start with `lmfeed demo`: the whole pipeline (tokens, windows, batches, embeddings) on the Python language
    reference that ships with every Python.
    """


_restore_interrupt()  # last: everything above is the start-up that a Ctrl-C ends quietly
