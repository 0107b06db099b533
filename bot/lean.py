"""Optional modules a library imports when they happen to be installed, refused where this
process never uses them (peak RSS, issue 20).

Some libraries probe for extras at import (``try: import x`` / ``except ImportError``) and
load them whether or not anything will call them. A finder at the front of ``sys.meta_path``
that raises ImportError for those names (the import system's own way to refuse an import)
makes the library take its fallback. Modules already imported are not affected.
"""
from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from types import ModuleType


class Refuse(importlib.abc.MetaPathFinder):
    """Refuses to import ``roots`` (top-level package names) and everything under them."""

    def __init__(self, roots: Sequence[str]) -> None:
        self.roots = frozenset(roots)

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname.partition(".")[0] in self.roots:
            raise ModuleNotFoundError(f"{fullname} is not used in this process", name=fullname)
        return None


def refuse(*roots: str) -> Refuse:
    """Refuse ``roots`` for the rest of the process's life."""
    finder = Refuse(roots)
    sys.meta_path.insert(0, finder)
    return finder


@contextmanager
def refused(*roots: str) -> Iterator[None]:
    """Refuse ``roots`` while the block runs (while a library that probes for them loads)."""
    finder = refuse(*roots) if roots else None
    try:
        yield
    finally:
        if finder is not None:
            sys.meta_path.remove(finder)
