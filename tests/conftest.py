"""Shared fixtures. Tests use only files inside the repository and the Python standard library's own text."""

from __future__ import annotations

import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None)
settings.load_profile("ci")


@pytest.fixture(scope="session")
def reference_text() -> str:
    """~465 KB of English prose and code that every CPython ships: the Python language reference."""
    from lmfeed.text.sources import python_reference

    return "<|endoftext|>".join(python_reference())


@pytest.fixture(scope="session")
def short_text() -> str:
    """A few thousand characters: one topic of the language reference."""
    from pydoc_data.topics import topics

    return topics["assignment"]
