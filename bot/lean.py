"""What keeps `bot run` lean (issue 20): optional modules a library imports when they happen
to be installed, refused where this process never uses them (peak RSS); glibc's heap kept
from creeping up over hours (``steady_malloc``).

Some libraries probe for extras at import (``try: import x`` / ``except ImportError``) and
load them whether or not anything will call them. A finder at the front of ``sys.meta_path``
that raises ImportError for those names (the import system's own way to refuse an import)
makes the library take its fallback. Modules already imported are not affected.
"""

from __future__ import annotations

import ctypes
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

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
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


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MALLOC_THRESHOLD = 128 * 1024  # glibc's own starting value for both


def steady_malloc() -> bool:
    """Keep glibc's heap from creeping up in a long-running process (the soak, issue 20).

    glibc starts by serving blocks of 128 KiB or more with mmap and trimming its heap above
    128 KiB free; but the first time such a block is freed it raises both thresholds to that
    block's size (up to 32 MiB), after which big blocks come from the heap and freed space stays
    in it: under an hour of steady traffic the heap's free space grew ~0.5 MB a minute while
    what was in use stayed flat. Pinning both at 128 KiB (as ``MALLOC_MMAP_THRESHOLD_`` and
    ``MALLOC_TRIM_THRESHOLD_`` would) stops that. False where there is no glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MALLOC_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, MALLOC_THRESHOLD))
