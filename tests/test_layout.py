"""The package layout keeps the data flow: no import runs back up the stages (DESIGN.md, "Layout").

text -> store -> loading -> embeddings -> model, engines beside store; viz and cli sit on top. The walk reads every
module's source with ``ast`` (imports inside functions count too: a lazy import is still an arrow).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lmfeed"

# stage -> the stages it may import (itself always allowed; _validate and _files are shared by all).
SHARED = ("_validate", "_files")
ALLOWED: dict[str, set[str]] = {
    "_validate": set(),
    "_files": set(),
    "text": set(),
    "store": {"text"},
    "loading": {"text", "store"},
    "embeddings": set(),
    "model": {"embeddings", "loading", "text", "store"},
    "engines": {"store", "text"},
    "_api": {"store", "engines", "text"},  # lmfeed.prepare: the engine= dispatch sits above store and engines
    "viz": {"*"},
    "cli": {"*"},
    "__init__": {"*"},
    "__main__": {"*"},
}


def stage_of(module: str) -> str | None:
    """``lmfeed.store.prepare`` -> ``store``; ``lmfeed`` itself -> ``__init__``; another package -> None."""
    parts = module.split(".")
    if parts[0] != "lmfeed":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def imported_modules(path: Path, module: str) -> list[tuple[int, str]]:
    """Every module named by an import statement in ``path`` (relative imports resolved against ``module``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.append((node.lineno, base))
    return found


def violations(root: Path) -> list[str]:
    """Each import that runs back up the stages, as ``file:line: stage imports stage``."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        own = stage_of(module)
        assert own is not None
        allowed = ALLOWED.get(own)
        if allowed is None:
            bad.append(f"{path}: stage {own!r} is not in the layout (add it to DESIGN.md and ALLOWED)")
            continue
        for lineno, target in imported_modules(path, module):
            other = stage_of(target)
            if other is None or other == own or other in SHARED or "*" in allowed:
                continue
            if other not in allowed:
                bad.append(f"{path.relative_to(root.parent)}:{lineno}: {own} imports {target}")
    return bad


def test_no_import_runs_back_up_the_stages():
    assert violations(PACKAGE) == []


def test_every_stage_is_a_package_with_a_docstring():
    for stage in ("text", "store", "loading", "embeddings", "model", "viz", "cli"):
        init = PACKAGE / stage / "__init__.py"
        assert init.is_file(), f"{stage}/ is not a package"
        assert ast.get_docstring(ast.parse(init.read_text())), f"{stage}/__init__.py has no docstring"


def test_the_walk_catches_an_arrow_back_up(tmp_path):
    # A copy of the layout's shape with one bad arrow (text importing loading): the check must see it.
    root = tmp_path / "lmfeed"
    for stage in ("text", "loading", "embeddings"):
        (root / stage).mkdir(parents=True)
        (root / stage / "__init__.py").write_text('"""doc"""\n')
    (root / "__init__.py").write_text("")
    (root / "text" / "bad.py").write_text("def f():\n    from lmfeed.loading import windows\n")
    (root / "embeddings" / "rel.py").write_text("from ..store import format\n")
    (root / "loading" / "ok.py").write_text("from lmfeed.text import bad\nimport numpy\n")
    assert violations(root) == [
        "lmfeed/embeddings/rel.py:1: embeddings imports lmfeed.store",
        "lmfeed/text/bad.py:2: text imports lmfeed.loading",
    ]


@pytest.mark.parametrize(
    "name", ["create_dataloader", "prepare", "TokenStore", "get_tokenizer", "InputEmbedding", "GPT"]
)
def test_public_names_resolve(name):
    import lmfeed

    assert name in lmfeed.__all__ and getattr(lmfeed, name) is not None
