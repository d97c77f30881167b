"""Which files a directory input gives: a recursive walk with a relative glob, links followed once, hidden skipped.

``walk_files(root, glob)`` returns the files under ``root`` whose path relative to it matches ``glob``, sorted by
that relative path (so the document order never depends on the file system):

- ``glob`` is relative to ``root`` and matches at any depth, as ``pathlib``'s ``rglob`` does: ``"*.txt"`` is every
  ``.txt`` file, ``"sub/*.txt"`` those directly in any ``sub/``; ``**`` is any number of directories, so ``"**"``
  is every file. An absolute glob or one with ``..`` would leave ``root`` and is refused.
- Links to directories are followed, each real directory read once (a link loop, or two links to one directory,
  never reads a file twice); links to files are read as files.
- Hidden files and directories (a name starting with ``.``) and version-control directories (``.git``, ``CVS``,
  ...) are skipped unless ``include_hidden``; directories for which ``skip_dir`` says so (token stores, for
  ``prepare``) are always skipped.

Example:
    >>> walk_files(Path("corpus"), "*.txt")  # doctest: +SKIP
    [PosixPath('corpus/a.txt'), PosixPath('corpus/sub/b.txt')]
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path, PurePath

__all__ = ["VCS_DIRS", "WalkStats", "check_glob", "glob_matches", "walk_files"]

logger = logging.getLogger(__name__)

VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr", ".jj", ".pijul", "_darcs", "CVS", "RCS", "SCCS"})


@dataclasses.dataclass
class WalkStats:
    """What a walk left out, for messages: hidden entries, skipped directories, directories reached twice."""

    hidden: int = 0
    skipped: list[str] = dataclasses.field(default_factory=list)
    repeated: int = 0


def check_glob(glob: object) -> list[str]:
    """The segments of a relative glob, or a ValueError naming why it cannot be one.

    Example:
        >>> check_glob("sub/*.txt")
        ['sub', '*.txt']
    """
    if not isinstance(glob, str) or not glob:
        raise (TypeError if not isinstance(glob, str) else ValueError)(
            f"glob must be a pattern such as '*.txt', but got {glob!r}.")
    if PurePath(glob).is_absolute() or glob.startswith("/"):
        raise ValueError(f"glob {glob!r} is absolute, but it is matched inside each input directory. Name the "
                         f"directory as an input instead (e.g. `lmfeed prepare {os.path.dirname(glob) or '/'} "
                         f"--glob {os.path.basename(glob) or '*'!r}`).")
    segments = [s for s in glob.replace("\\", "/").split("/") if s not in ("", ".")]
    if ".." in segments:
        raise ValueError(f"glob {glob!r} leaves the input directory ('..'). Name the other directory as an input "
                         "instead.")
    if not segments:
        raise ValueError(f"glob {glob!r} matches no file name. Use e.g. '*' or '*.txt'.")
    return segments


def glob_matches(parts: tuple[str, ...] | list[str], segments: list[str]) -> bool:
    """Whether a relative path (its parts) matches glob segments, ``**`` being any number of parts, at any depth."""
    pattern = ["**", *segments] if segments[0] != "**" else segments  # relative globs match at any depth (rglob)

    def match(i: int, j: int) -> bool:
        while j < len(pattern):
            if pattern[j] == "**":
                while j + 1 < len(pattern) and pattern[j + 1] == "**":
                    j += 1
                if j + 1 == len(pattern):
                    return i < len(parts)  # a trailing ** takes the rest, at least the file name
                return any(match(k, j + 1) for k in range(i, len(parts)))
            if i >= len(parts) or not fnmatchcase(parts[i], pattern[j]):
                return False
            i, j = i + 1, j + 1
        return i == len(parts)

    return match(0, 0)


def walk_files(root: Path, glob: str = "*", *, include_hidden: bool = False,
               skip_dir: Callable[[Path], bool] | None = None, stats: WalkStats | None = None) -> list[Path]:
    """The files under ``root`` matching ``glob``, sorted by relative path (see the module docstring).

    Args:
        root: the directory.
        glob: a relative pattern (default ``"*"``: every file).
        include_hidden: also read hidden files and directories and version-control directories (default False).
        skip_dir: ``skip_dir(path) -> True`` leaves a directory out whatever its name (e.g. a token store).
        stats: filled with what was left out.

    Raises:
        ValueError: the glob is absolute, leaves ``root`` or is empty.
    """
    segments = check_glob(glob)
    stats = stats if stats is not None else WalkStats()
    seen: set[tuple[int, int]] = set()
    found: list[tuple[tuple[str, ...], Path]] = []

    def visit(directory: Path, rel: tuple[str, ...]) -> None:
        try:
            st = directory.stat()
        except OSError:
            return
        key = (st.st_dev, st.st_ino)
        if key in seen:  # a link loop, or a second link to a directory already read
            stats.repeated += 1
            logger.info("not reading %s again: it is a directory already read (through a link)", directory)
            return
        seen.add(key)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise OSError(exc.errno, f"Cannot read directory {str(directory)!r} ({exc.strerror})", str(directory)) \
                from None
        for entry in entries:
            name = entry.name
            if not include_hidden and (name.startswith(".") or name in VCS_DIRS):
                stats.hidden += 1
                continue
            path = directory / name
            try:
                is_dir = entry.is_dir()  # follows links
            except OSError:
                continue
            if is_dir:
                if skip_dir is not None and skip_dir(path):
                    stats.skipped.append(str(path))
                    logger.info("skipping %s: a token store (or a run's staging directory), not text", path)
                    continue
                visit(path, (*rel, name))
            elif entry.is_file() and glob_matches((*rel, name), segments):
                found.append(((*rel, name), path))

    visit(root, ())
    found.sort(key=lambda item: "/".join(item[0]))  # the relative path as text: the order lmfeed always used
    return [path for _, path in found]
