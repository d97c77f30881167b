"""``--positional``'s choices for every command that takes a scheme: the one list, read when first needed.

The names come from :func:`lmfeed.embeddings.positional_kinds`, so a scheme added there is offered by ``demo``,
``train`` and ``compare-positions`` without an edit here. They are read lazily: listing the commands
(``lmfeed --help``) must not import torch.
"""

from __future__ import annotations

from typing import Any, Literal

import click


class PositionalChoice(click.Choice):
    """``click.Choice`` over :func:`lmfeed.embeddings.positional_kinds` (``where``: all, "input" or "attention").

    Example:
        >>> @click.option("--positional", type=PositionalChoice(), default="learned")
    """

    def __init__(self, where: Literal["input", "attention"] | None = None) -> None:
        self._where = where
        super().__init__((), case_sensitive=True)

    @property
    def choices(self) -> tuple[Any, ...]:
        from lmfeed.embeddings.describe import positional_kinds

        return positional_kinds(self._where)

    @choices.setter
    def choices(self, value: Any) -> None:  # click's __init__ assigns the empty tuple given above
        pass
